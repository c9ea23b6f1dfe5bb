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
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "pg_trickle/util.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/stream_table.h"

PG_FUNCTION_INFO_V1(pgt_catalog_restore_row);
PG_FUNCTION_INFO_V1(pgt_on_restore_ddl);
PG_FUNCTION_INFO_V1(pgt_catalog_restore_attach);

static int	column_of(TupleDesc desc, const char *name);
static void catalog_row_from_definition(Oid relid, const char *definition);
static void restored_capture(Oid relid);
static void lock_attach(void);
static void restored_immediate(Oid relid);

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
 * pgt_catalog_restore_attach is the AFTER INSERT statement trigger of
 * pgtrickle.pgt_stream_tables: restored rows whose storage table already
 * has its guard trigger (a parallel pg_restore may create it before it
 * loads the catalog) are attached now.
 */
Datum
pgt_catalog_restore_attach(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	List	   *pending;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "pgt_catalog_restore_attach: not called by trigger manager");
	pending = pgt_catalog_restore_pending();
	if (pending == NIL)
		return PointerGetDatum(NULL);
	lock_attach();
	foreach(lc, pending)
	{
		Oid			relid = lfirst_oid(lc);

		if (OidIsValid(get_trigger_oid(relid, "__pgt_guard", true)))
			(void) pgt_st_attach_restored(relid);
	}
	return PointerGetDatum(NULL);
}

/*
 * pgt_on_restore_ddl is a ddl_command_end event trigger on CREATE TRIGGER
 * and COMMENT, the statements by which a restore brings back what a stream
 * table needs after its rows (pg_restore creates a table's triggers after
 * its data, also in parallel):
 *
 * - CREATE TRIGGER __pgt_guard on a stream table whose catalog row waits
 *   (restore_pending): attach it.
 * - COMMENT ON TRIGGER __pgt_guard of a table that has no catalog row (a
 *   --schema-only dump carries none): create the row from the definition
 *   in the comment; the catalog's statement trigger attaches it.
 * - CREATE TRIGGER of a capture trigger (not by pg_trickle): rows may have
 *   arrived in that table without capture, so its DIFFERENTIAL readers
 *   refresh FULL next time.
 * - CREATE TRIGGER completing the IMMEDIATE triggers of a table (not by
 *   pg_trickle): its rows are all there now; its attached IMMEDIATE readers
 *   are recomputed, and writers maintain them from here on.
 */
Datum
pgt_on_restore_ddl(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Node	   *parsetree;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_restore_ddl: not fired by event trigger manager");
	if (!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();
	parsetree = trigdata->parsetree;

	if (IsA(parsetree, CreateTrigStmt))
	{
		CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

		if (!OidIsValid(relid) || pgt_installing_triggers > 0)
			PG_RETURN_VOID();
		if (strcmp(stmt->trigname, "__pgt_guard") == 0)
		{
			PgtStreamTable *st;

			lock_attach();
			st = pgt_catalog_get(relid, false);

			if (st != NULL && st->restore_pending)
				(void) pgt_st_attach_restored(relid);
		}
		else if (strncmp(stmt->trigname, "__pgt_cdc_", 10) == 0)
			restored_capture(relid);
		else if (strncmp(stmt->trigname, "__pgt_ivm_", 10) == 0)
			restored_immediate(relid);
	}
	else if (IsA(parsetree, CommentStmt) &&
			 ((CommentStmt *) parsetree)->objtype == OBJECT_TRIGGER &&
			 ((CommentStmt *) parsetree)->comment != NULL)
	{
		CommentStmt *stmt = (CommentStmt *) parsetree;
		List	   *names = castNode(List, stmt->object);

		/* (schema, table, trigger) or (table, trigger) */
		if (list_length(names) >= 2 &&
			strcmp(strVal(llast(names)), "__pgt_guard") == 0)
		{
			RangeVar   *rv = makeRangeVarFromNameList(list_truncate(list_copy(names),
																	 list_length(names) - 1));
			Oid			relid = RangeVarGetRelid(rv, NoLock, true);

			if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_RELATION &&
				!pgt_catalog_is_stream_table(relid))
				catalog_row_from_definition(relid, stmt->comment);
		}
	}
	PG_RETURN_VOID();
}

/*
 * restored_capture: a restore created a capture trigger on table relid
 * after loading its rows; the DIFFERENTIAL stream tables reading it (or an
 * ancestor) start from a FULL refresh.
 */
static void
restored_capture(Oid relid)
{
	ListCell   *lc;

	foreach(lc, lcons_oid(relid, pgt_relation_ancestors(relid)))
	{
		ListCell   *lc2;

		foreach(lc2, pgt_catalog_readers_of(lfirst_oid(lc)))
		{
			PgtStreamTable *st = pgt_catalog_get(lfirst_oid(lc2), false);

			if (st != NULL && !st->restore_pending &&
				strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
				pgt_catalog_set_needs_reinit(st->pgt_id);
		}
	}
}

/*
 * restored_immediate: a restore created an IMMEDIATE trigger on table
 * relid; once all of them are there, its rows are loaded and every further
 * write is maintained, so the IMMEDIATE stream tables reading it (or an
 * ancestor) are recomputed.
 */
static void
restored_immediate(Oid relid)
{
	ListCell   *lc;

	if (!pgt_ivm_has_all_triggers(relid))
		return;
	CommandCounterIncrement();
	foreach(lc, lcons_oid(relid, pgt_relation_ancestors(relid)))
	{
		ListCell   *lc2;

		foreach(lc2, pgt_catalog_immediate_readers(lfirst_oid(lc)))
		{
			PgtStreamTable *st = pgt_catalog_get(lfirst_oid(lc2), false);

			if (st == NULL || st->restore_pending)
				continue;
			pgt_ivm_lock(st->relid);
			pgt_refresh_immediate_full(st->relid);
		}
	}
}

/*
 * catalog_row_from_definition inserts the catalog row of storage table
 * relid from definition, the JSON that record_definition() (stream_table.c)
 * wrote as its guard trigger's comment.  The insert goes through
 * pgt_catalog_restore_row() like a restored row.  Anything that is not such
 * a definition is left alone.
 */
static void
catalog_row_from_definition(Oid relid, const char *definition)
{
	PgtRoleSave save;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];

	/* json_build_object's output, as record_definition() writes it */
	if (strncmp(definition, "{\"pg_trickle\" : 1,", 18) != 0)
		return;
	values[0] = CStringGetTextDatum(get_rel_name(relid));
	values[1] = CStringGetTextDatum(get_namespace_name(get_rel_namespace(relid)));
	values[2] = CStringGetTextDatum(definition);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_stream_tables "
					  "(pgt_relid, pgt_name, pgt_schema, defining_query, original_query, "
					  " schedule, refresh_mode, diamond_consistency, diamond_schedule_policy, "
					  " cdc_mode, append_only, pooler_compatibility_mode, partition_by, "
					  " max_differential_joins, max_delta_fraction, status) "
					  "SELECT 0, $1, $2, j->>'query', coalesce(j->>'original_query', j->>'query'), "
					  " j->>'schedule', j->>'refresh_mode', j->>'diamond_consistency', "
					  " j->>'diamond_schedule_policy', j->>'cdc_mode', "
					  " (j->>'append_only')::pg_catalog.bool, "
					  " (j->>'pooler_compatibility_mode')::pg_catalog.bool, j->>'partition_by', "
					  " (j->>'max_differential_joins')::pg_catalog.int4, "
					  " (j->>'max_delta_fraction')::pg_catalog.float8, 'ACTIVE' "
					  "FROM (SELECT $3::pg_catalog.jsonb AS j) d "
					  "WHERE pg_catalog.jsonb_typeof(j) = 'object' AND j->>'pg_trickle' = '1' "
					  "AND j ? 'query' AND j ? 'refresh_mode'",
					  3, argtypes, values, NULL, false, SPI_OK_INSERT);
	pgt_role_restore(&save);
	SPI_finish();
	CommandCounterIncrement();
}

/*
 * lock_attach serializes the two places that attach restored stream tables
 * (after the catalog's COPY, and at the creation of a guard trigger) until
 * the end of the transaction.  pg_restore -j runs them in parallel
 * sessions: without it, each could check before the other commits, see
 * nothing of the other's work, and leave the stream table unattached.
 * With it, the second one waits for the first to commit and then sees its
 * rows or its trigger (its queries take new snapshots).  Attaching takes
 * no lock that a session waiting here could hold: it reads other tables,
 * and writes only the stream table whose guard trigger exists (so whose
 * creator has committed) and the catalog rows it alone sees.
 */
static void
lock_attach(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, PGT_RESTORE_LOCKTAG_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

static int
column_of(TupleDesc desc, const char *name)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "pg_trickle catalog has no column \"%s\"", name);
	return attno;
}
