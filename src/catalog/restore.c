/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Stream tables through pg_dump and pg_restore.
 *
 *	  What a dump carries: the catalog table pgtrickle.pgt_stream_tables
 *	  (an extension configuration table, so pg_dump dumps its rows, also
 *	  with --schema-only), the storage tables with their rows, indexes,
 *	  grants and comments (they are ordinary tables), and the capture and
 *	  IMMEDIATE triggers on the sources (ordinary triggers).  What it does
 *	  not carry: change buffers (extension members: their rows name
 *	  transactions of the dumped cluster), the other catalog tables, and
 *	  pg_depend.
 *
 *	  A restore runs in three sections.  Pre-data creates the extension
 *	  (empty catalog), the sources and the storage tables.  Data copies the
 *	  rows, among them the catalog rows: pgt_catalog_restore_row(), a BEFORE
 *	  INSERT trigger on the catalog, sees a row that pg_trickle itself is not
 *	  writing and makes it this database's: pgt_relid is looked up by
 *	  schema and name (OIDs differ between databases), the frontier is
 *	  cleared, needs_reinit and restore_pending are set.  Post-data creates
 *	  indexes and triggers; the first CREATE TRIGGER (every stream table has
 *	  its guard trigger) fires pgt_on_restore_ddl(), which attaches the
 *	  restored stream tables (pgt_st_attach_restored: sources, pg_depend,
 *	  buffers; IMMEDIATE ones recomputed).  A refresh attaches them too, if
 *	  no trigger ever came.
 *
 *	  The triggers on sources find what to do through the catalog, not
 *	  through their OID arguments, so the dumped ones work as restored, and
 *	  before the stream tables are attached they do nothing: sources stay
 *	  writable through every section of the restore.
 *
 * IDENTIFICATION
 *	  src/catalog/restore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/stream_table.h"

PG_FUNCTION_INFO_V1(pgt_catalog_restore_row);
PG_FUNCTION_INFO_V1(pgt_on_restore_ddl);

static int	column_of(TupleDesc desc, const char *name);

/*
 * pgt_catalog_restore_row is the BEFORE INSERT row trigger of
 * pgtrickle.pgt_stream_tables.  Rows pg_trickle writes pass unchanged; any
 * other row comes from a restored dump and is made this database's.  A row
 * whose storage table is missing (the dump left it out) is skipped with a
 * WARNING.
 */
Datum
pgt_catalog_restore_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *schema;
	char	   *name;
	Oid			nspid;
	Oid			relid = InvalidOid;
	int			cols[5];
	Datum		values[5];
	bool		nulls[5];

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtrickle._catalog_restore_row() must be fired BEFORE INSERT FOR EACH ROW")));
	tup = td->tg_trigtuple;
	if (pgt_catalog_inserting)
		return PointerGetDatum(tup);

	desc = RelationGetDescr(td->tg_relation);
	schema = SPI_getvalue(tup, desc, column_of(desc, "pgt_schema"));
	name = SPI_getvalue(tup, desc, column_of(desc, "pgt_name"));
	nspid = schema ? get_namespace_oid(schema, true) : InvalidOid;
	if (OidIsValid(nspid) && name != NULL)
		relid = get_relname_relid(name, nspid);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
	{
		ereport(WARNING,
				(errmsg("skipping restored stream table \"%s.%s\": its table was not restored",
						schema ? schema : "?", name ? name : "?"),
				 errhint("Restore the table with the catalog, or create the stream table again with pgtrickle.create_stream_table().")));
		return PointerGetDatum(NULL);
	}

	cols[0] = column_of(desc, "pgt_relid");
	values[0] = ObjectIdGetDatum(relid);
	nulls[0] = false;
	cols[1] = column_of(desc, "frontier");
	values[1] = (Datum) 0;
	nulls[1] = true;
	cols[2] = column_of(desc, "needs_reinit");
	values[2] = BoolGetDatum(true);
	nulls[2] = false;
	cols[3] = column_of(desc, "is_populated");
	values[3] = BoolGetDatum(false);
	nulls[3] = false;
	cols[4] = column_of(desc, "restore_pending");
	values[4] = BoolGetDatum(true);
	nulls[4] = false;
	return PointerGetDatum(heap_modify_tuple_by_cols(tup, desc, 5, cols, values, nulls));
}

/*
 * pgt_on_restore_ddl is a ddl_command_end event trigger on CREATE TRIGGER:
 * the post-data section of a restore, after every row is loaded, creates
 * the guard trigger of each stream table.  It attaches the restored stream
 * tables, if any are waiting.
 */
Datum
pgt_on_restore_ddl(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_restore_ddl: not fired by event trigger manager");
	if (!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();
	if (pgt_catalog_restore_pending() != NIL)
		(void) pgt_st_attach_restored();
	PG_RETURN_VOID();
}

static int
column_of(TupleDesc desc, const char *name)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "pg_trickle catalog has no column \"%s\"", name);
	return attno;
}
