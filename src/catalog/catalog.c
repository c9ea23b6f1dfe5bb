/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reading and writing pg_trickle's catalog tables.
 *
 *	  The catalog (pgtrickle.pgt_stream_tables, pgt_dependencies,
 *	  pgt_refresh_history) is readable by everyone and writable only by the
 *	  extension owner; every statement here runs as that owner through
 *	  pgt_role_switch(), which is what lets an ordinary user create and
 *	  refresh their own stream tables without being able to edit anyone
 *	  else's definition.  Columns are addressed by name, never by position,
 *	  so upgrade scripts may add columns freely.
 *
 *	  These are cold paths (API calls, one refresh) and use SPI.  Each
 *	  function opens and closes its own SPI connection; results are copied
 *	  into the caller's memory context.
 *
 * IDENTIFICATION
 *	  src/catalog/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/util.h"

static void close_history(const char *sql, int64 id, const char *message);
static List *oid_list(const char *sql, Oid argtype, Datum value);
static void catalog_begin(PgtRoleSave *save);
static void catalog_end(PgtRoleSave *save);
static char *get_text(HeapTuple tup, TupleDesc desc, const char *col,
					  MemoryContext cxt);
static bool get_bool(HeapTuple tup, TupleDesc desc, const char *col);
static Datum get_datum(HeapTuple tup, TupleDesc desc, const char *col,
					   bool *isnull);
static Datum cstring_or_null(const char *s, char *nullflag);
static void fill_settings_args(const PgtStreamTable *st, Datum *values,
							   char *nulls);

#define SETTINGS_NARGS 12
static Oid	settings_types[SETTINGS_NARGS] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, BOOLOID, TEXTOID,
	INT4OID, FLOAT8OID, TEXTOID, NAMEARRAYOID
};

/*
 * pgt_catalog_get returns the catalog row of stream table relid, or NULL if
 * relid is not a stream table.  With for_update the row is locked until the
 * end of the transaction, which serializes refreshes and changes of one
 * stream table.  The result is allocated in CurrentMemoryContext.
 */
PgtStreamTable *
pgt_catalog_get(Oid relid, bool for_update)
{
	MemoryContext cxt = CurrentMemoryContext;
	PgtRoleSave save;
	PgtStreamTable *st = NULL;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	char		sql[512];

	values[0] = ObjectIdGetDatum(relid);
	snprintf(sql, sizeof(sql),
			 "SELECT * FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1%s",
			 for_update ? " FOR UPDATE" : "");

	catalog_begin(&save);
	if (pgt_spi_exec_args(sql, 1, argtypes, values, NULL, false,
						  SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PgtSettings *s;
		bool		isnull;
		Datum		d;
		char	   *identity;

		st = MemoryContextAllocZero(cxt, sizeof(PgtStreamTable));
		s = &st->settings;
		st->pgt_id = DatumGetInt64(get_datum(tup, desc, "pgt_id", &isnull));
		st->relid = relid;
		st->name = get_text(tup, desc, "pgt_name", cxt);
		st->schema = get_text(tup, desc, "pgt_schema", cxt);
		st->defining_query = get_text(tup, desc, "defining_query", cxt);
		st->original_query = get_text(tup, desc, "original_query", cxt);
		s->schedule = get_text(tup, desc, "schedule", cxt);
		s->refresh_mode = get_text(tup, desc, "refresh_mode", cxt);
		s->diamond_consistency = get_text(tup, desc, "diamond_consistency", cxt);
		s->diamond_schedule_policy = get_text(tup, desc, "diamond_schedule_policy", cxt);
		s->cdc_mode = get_text(tup, desc, "cdc_mode", cxt);
		s->append_only = get_bool(tup, desc, "append_only");
		s->pooler_compatibility_mode = get_bool(tup, desc, "pooler_compatibility_mode");
		s->partition_by = get_text(tup, desc, "partition_by", cxt);
		d = get_datum(tup, desc, "max_differential_joins", &isnull);
		s->max_differential_joins_isnull = isnull;
		s->max_differential_joins = isnull ? 0 : DatumGetInt32(d);
		d = get_datum(tup, desc, "max_delta_fraction", &isnull);
		s->max_delta_fraction_isnull = isnull;
		s->max_delta_fraction = isnull ? 0 : DatumGetFloat8(d);
		st->effective_refresh_mode = get_text(tup, desc, "effective_refresh_mode", cxt);
		st->refresh_mode_reason = get_text(tup, desc, "refresh_mode_reason", cxt);
		st->status = get_text(tup, desc, "status", cxt);
		st->is_populated = get_bool(tup, desc, "is_populated");
		st->needs_reinit = get_bool(tup, desc, "needs_reinit");
		/* 0.2.0 column: absent until ALTER EXTENSION ... UPDATE */
		st->restore_pending = SPI_fnumber(desc, "restore_pending") > 0 &&
			get_bool(tup, desc, "restore_pending");
		st->frontier = get_text(tup, desc, "frontier", cxt);
		st->consecutive_errors =
			DatumGetInt32(get_datum(tup, desc, "consecutive_errors", &isnull));

		identity = get_text(tup, desc, "row_identity", cxt);
		if (strcmp(identity, "GROUP_KEY") == 0)
			st->identity = PGT_IDENTITY_GROUP_KEY;
		else if (strcmp(identity, "SINGLETON") == 0)
			st->identity = PGT_IDENTITY_SINGLETON;
		else
			st->identity = PGT_IDENTITY_ALL_COLUMNS;

		d = get_datum(tup, desc, "identity_columns", &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			nelems;
			MemoryContext old = MemoryContextSwitchTo(cxt);

			deconstruct_array(DatumGetArrayTypeP(d), NAMEOID, NAMEDATALEN,
							  false, TYPALIGN_CHAR, &elems, NULL, &nelems);
			for (int i = 0; i < nelems; i++)
				st->identity_columns = lappend(st->identity_columns,
											   pstrdup(NameStr(*DatumGetName(elems[i]))));
			MemoryContextSwitchTo(old);
		}
	}
	catalog_end(&save);

	return st;
}

/*
 * pgt_catalog_is_stream_table is true if relid has a catalog row.
 */
bool
pgt_catalog_is_stream_table(Oid relid)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	bool		result;

	values[0] = ObjectIdGetDatum(relid);
	catalog_begin(&save);
	result = pgt_spi_exec_args("SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1",
							   1, argtypes, values, NULL, true,
							   SPI_OK_SELECT) > 0;
	catalog_end(&save);
	return result;
}

/*
 * True while pgt_catalog_insert writes a row: any other insert into
 * pgt_stream_tables comes from restoring a dump (see restore.c).
 */
bool		pgt_catalog_inserting = false;

/*
 * pgt_catalog_insert adds the catalog row for st and returns its pgt_id.
 */
int64
pgt_catalog_insert(PgtStreamTable *st)
{
	PgtRoleSave save;
	Oid			argtypes[SETTINGS_NARGS + 7];
	Datum		values[SETTINGS_NARGS + 7];
	char		nulls[SETTINGS_NARGS + 7];
	int64		id;
	bool		isnull;

	memcpy(argtypes, settings_types, sizeof(settings_types));
	fill_settings_args(st, values, nulls);
	argtypes[12] = OIDOID;
	values[12] = ObjectIdGetDatum(st->relid);
	nulls[12] = ' ';
	argtypes[13] = TEXTOID;
	values[13] = CStringGetTextDatum(st->name);
	nulls[13] = ' ';
	argtypes[14] = TEXTOID;
	values[14] = CStringGetTextDatum(st->schema);
	nulls[14] = ' ';
	argtypes[15] = TEXTOID;
	values[15] = CStringGetTextDatum(st->defining_query);
	nulls[15] = ' ';
	argtypes[16] = TEXTOID;
	values[16] = CStringGetTextDatum(st->original_query);
	nulls[16] = ' ';
	argtypes[17] = TEXTOID;
	values[17] = CStringGetTextDatum(pgt_identity_name(st->identity));
	nulls[17] = ' ';
	argtypes[18] = TEXTOID;
	values[18] = cstring_or_null(st->effective_refresh_mode, &nulls[18]);

	catalog_begin(&save);
	pgt_catalog_inserting = true;
	PG_TRY();
	{
		pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_stream_tables "
						  "(schedule, refresh_mode, diamond_consistency, diamond_schedule_policy, "
						  " cdc_mode, append_only, pooler_compatibility_mode, partition_by, "
						  " max_differential_joins, max_delta_fraction, refresh_mode_reason, "
						  " identity_columns, pgt_relid, pgt_name, pgt_schema, defining_query, "
						  " original_query, row_identity, effective_refresh_mode) "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
						  "$14, $15, $16, $17, $18, $19) RETURNING pgt_id",
						  SETTINGS_NARGS + 7, argtypes, values, nulls, false,
						  SPI_OK_INSERT_RETURNING);
	}
	PG_FINALLY();
	{
		pgt_catalog_inserting = false;
	}
	PG_END_TRY();
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	catalog_end(&save);

	st->pgt_id = id;
	return id;
}

/*
 * pgt_catalog_restore_pending returns the storage relids of the stream
 * tables restored from a dump and not attached yet, oldest first.
 */
List *
pgt_catalog_restore_pending(void)
{
	return oid_list("SELECT pgt_relid FROM pgtrickle.pgt_stream_tables "
					"WHERE restore_pending ORDER BY pgt_id", InvalidOid, (Datum) 0);
}

/*
 * pgt_catalog_clear_restore_pending marks stream table pgt_id attached.
 */
void
pgt_catalog_clear_restore_pending(int64 pgt_id)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(pgt_id);
	catalog_begin(&save);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET restore_pending = false "
					  "WHERE pgt_id = $1", 1, argtypes, values, NULL, false,
					  SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_update_definition writes st's query, identity and settings
 * back to its catalog row.
 */
void
pgt_catalog_update_definition(PgtStreamTable *st)
{
	PgtRoleSave save;
	Oid			argtypes[SETTINGS_NARGS + 8];
	Datum		values[SETTINGS_NARGS + 8];
	char		nulls[SETTINGS_NARGS + 8];

	memcpy(argtypes, settings_types, sizeof(settings_types));
	fill_settings_args(st, values, nulls);
	argtypes[12] = INT8OID;
	values[12] = Int64GetDatum(st->pgt_id);
	nulls[12] = ' ';
	argtypes[13] = TEXTOID;
	values[13] = CStringGetTextDatum(st->defining_query);
	nulls[13] = ' ';
	argtypes[14] = TEXTOID;
	values[14] = CStringGetTextDatum(st->original_query);
	nulls[14] = ' ';
	argtypes[15] = TEXTOID;
	values[15] = CStringGetTextDatum(pgt_identity_name(st->identity));
	nulls[15] = ' ';
	argtypes[16] = TEXTOID;
	values[16] = cstring_or_null(st->effective_refresh_mode, &nulls[16]);
	argtypes[17] = OIDOID;
	values[17] = ObjectIdGetDatum(st->relid);
	nulls[17] = ' ';

	catalog_begin(&save);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET "
					  "schedule = $1, refresh_mode = $2, diamond_consistency = $3, "
					  "diamond_schedule_policy = $4, cdc_mode = $5, append_only = $6, "
					  "pooler_compatibility_mode = $7, partition_by = $8, "
					  "max_differential_joins = $9, max_delta_fraction = $10, "
					  "refresh_mode_reason = $11, identity_columns = $12, "
					  "defining_query = $14, original_query = $15, row_identity = $16, "
					  "effective_refresh_mode = $17, pgt_relid = $18, "
					  "pgt_name = (SELECT relname FROM pg_catalog.pg_class WHERE oid = $18), "
					  "pgt_schema = (SELECT n.nspname FROM pg_catalog.pg_class c "
					  "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $18), "
					  "updated_at = pg_catalog.now() "
					  "WHERE pgt_id = $13",
					  SETTINGS_NARGS + 6, argtypes, values, nulls, false,
					  SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_set_status sets the status of a stream table; reset_errors
 * also clears its error count and last error.
 */
void
pgt_catalog_set_status(int64 pgt_id, const char *status, bool reset_errors)
{
	PgtRoleSave save;
	Oid			argtypes[3] = {INT8OID, TEXTOID, BOOLOID};
	Datum		values[3];

	values[0] = Int64GetDatum(pgt_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = BoolGetDatum(reset_errors);
	catalog_begin(&save);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET status = $2, "
					  "consecutive_errors = CASE WHEN $3 THEN 0 ELSE consecutive_errors END, "
					  "last_error_message = CASE WHEN $3 THEN NULL ELSE last_error_message END, "
					  "updated_at = pg_catalog.now() WHERE pgt_id = $1",
					  3, argtypes, values, NULL, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_set_needs_reinit makes the next refresh of pgt_id FULL.
 */
void
pgt_catalog_set_needs_reinit(int64 pgt_id)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(pgt_id);
	catalog_begin(&save);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET needs_reinit = true "
					  "WHERE pgt_id = $1",
					  1, argtypes, values, NULL, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_delete removes the catalog rows of stream table relid (its
 * dependencies and history go with it).  No error if there are none.
 */
void
pgt_catalog_delete(Oid relid)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(relid);
	catalog_begin(&save);
	pgt_spi_exec_args("DELETE FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1",
					  1, argtypes, values, NULL, false, SPI_OK_DELETE);
	catalog_end(&save);
}

/*
 * pgt_catalog_set_sources replaces the recorded sources of stream table
 * pgt_id with sources (a List of PgtSource *).  captured (a List of
 * PgtDeltaSource *) names the sources whose changes are captured for this
 * stream table, with the columns it reads.
 */
void
pgt_catalog_set_sources(int64 pgt_id, List *sources, List *captured)
{
	PgtRoleSave save;
	Oid			argtypes[5] = {INT8OID, OIDOID, TEXTOID, TEXTOID, NAMEARRAYOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', 'n'};
	ListCell   *lc;

	values[0] = Int64GetDatum(pgt_id);
	catalog_begin(&save);
	pgt_spi_exec_args("DELETE FROM pgtrickle.pgt_dependencies WHERE pgt_id = $1",
					  1, argtypes, values, NULL, false, SPI_OK_DELETE);
	foreach(lc, sources)
	{
		PgtSource  *src = lfirst(lc);
		PgtDeltaSource *cap = NULL;
		ListCell   *lc2;

		foreach(lc2, captured)
		{
			if (((PgtDeltaSource *) lfirst(lc2))->relid == src->relid)
				cap = lfirst(lc2);
		}
		values[1] = ObjectIdGetDatum(src->relid);
		values[2] = CStringGetTextDatum(pgt_source_type_name(src->type));
		values[3] = CStringGetTextDatum(cap ? "TRIGGER" : "NONE");
		nulls[4] = 'n';
		if (cap != NULL)
		{
			int			n = bms_num_members(cap->attnums);
			Datum	   *elems = palloc(sizeof(Datum) * (n + 1));
			int			i = 0;
			int			att = -1;

			while ((att = bms_next_member(cap->attnums, att)) >= 0)
			{
				char	   *attname = get_attname(src->relid, att, true);

				if (attname)
					elems[i++] = DirectFunctionCall1(namein, CStringGetDatum(attname));
			}
			values[4] = PointerGetDatum(construct_array(elems, i, NAMEOID, NAMEDATALEN,
														false, TYPALIGN_CHAR));
			nulls[4] = ' ';
		}
		pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_dependencies "
						  "(pgt_id, source_relid, source_type, cdc_mode, columns_used) "
						  "VALUES ($1, $2, $3, $4, $5)",
						  5, argtypes, values, nulls, false, SPI_OK_INSERT);
	}
	catalog_end(&save);
}

/*
 * oid_list runs sql, whose one parameter $1 of type argtype is value, as the
 * extension owner and returns its first column as a List of Oid.
 */
static List *
oid_list(const char *sql, Oid argtype, Datum value)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {argtype};
	Datum		values[1] = {value};
	List	   *result = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	uint64		n;

	catalog_begin(&save);
	n = pgt_spi_exec_args(sql, OidIsValid(argtype) ? 1 : 0, argtypes, values, NULL, false,
						  SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			r = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc,
													   1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = lappend_oid(result, r);
		MemoryContextSwitchTo(old);
	}
	catalog_end(&save);
	return result;
}

/*
 * pgt_catalog_readers_of returns the relids (as a List of Oid) of the
 * stream tables that read relid directly.
 */
List *
pgt_catalog_readers_of(Oid relid)
{
	return oid_list("SELECT s.pgt_relid FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
					"WHERE d.source_relid = $1 ORDER BY s.pgt_id",
					OIDOID, ObjectIdGetDatum(relid));
}

/*
 * pgt_catalog_captured_sources returns the relids whose change buffers
 * stream table pgt_id reads, in a stable order.
 */
List *
pgt_catalog_captured_sources(int64 pgt_id)
{
	return oid_list("SELECT source_relid FROM pgtrickle.pgt_dependencies "
					"WHERE pgt_id = $1 AND cdc_mode = 'TRIGGER' ORDER BY source_relid",
					INT8OID, Int64GetDatum(pgt_id));
}

/*
 * pgt_catalog_immediate_readers returns the IMMEDIATE stream tables that
 * read source, in creation order.
 */
List *
pgt_catalog_immediate_readers(Oid source)
{
	return oid_list("SELECT s.pgt_relid FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
					"WHERE d.source_relid = $1 AND s.effective_refresh_mode = 'IMMEDIATE' "
					"ORDER BY s.pgt_id",
					OIDOID, ObjectIdGetDatum(source));
}

/*
 * pgt_catalog_immediate_sources returns the tables that carry IMMEDIATE
 * triggers as a source (the root of their partitions) or that an IMMEDIATE
 * stream table reads.
 */
List *
pgt_catalog_immediate_sources(void)
{
	return oid_list("SELECT t.tgrelid FROM pg_catalog.pg_trigger t "
					"WHERE t.tgname = '__pgt_ivm_ins' AND NOT EXISTS ("
					" SELECT 1 FROM pg_catalog.pg_inherits i "
					" JOIN pg_catalog.pg_trigger p ON p.tgrelid = i.inhparent "
					" AND p.tgname = '__pgt_ivm_ins' WHERE i.inhrelid = t.tgrelid) "
					"UNION SELECT d.source_relid FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
					"WHERE s.effective_refresh_mode = 'IMMEDIATE' AND d.cdc_mode = 'TRIGGER'",
					InvalidOid, (Datum) 0);
}

/*
 * pgt_catalog_ivm_trigger_tables returns the tables (roots of partitions)
 * whose IMMEDIATE triggers name stream table st, in OID order.
 */
List *
pgt_catalog_ivm_trigger_tables(Oid st)
{
	return oid_list("SELECT t.tgrelid FROM pg_catalog.pg_trigger t "
					"WHERE t.tgname = '__pgt_ivm_ins' AND pg_catalog.split_part("
					"pg_catalog.encode(t.tgargs, 'escape'), '\\000', 1)::pg_catalog.oid = t.tgrelid "
					"AND $1::pg_catalog.text = ANY (pg_catalog.string_to_array("
					"pg_catalog.encode(t.tgargs, 'escape'), '\\000')) "
					"ORDER BY t.tgrelid",
					OIDOID, ObjectIdGetDatum(st));
}

/*
 * pgt_catalog_stream_sources returns the relids of the stream tables that
 * stream table relid reads directly.
 */
List *
pgt_catalog_stream_sources(Oid relid)
{
	return oid_list("SELECT d.source_relid FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
					"WHERE s.pgt_relid = $1 AND d.source_type = 'STREAM_TABLE' "
					"ORDER BY d.source_relid",
					OIDOID, ObjectIdGetDatum(relid));
}

/*
 * pgt_catalog_record_refresh writes a COMPLETED history row (except for a
 * NO_DATA refresh by the scheduler) for a refresh
 * of st that started at start_time, and marks st populated, ACTIVE (unless
 * SUSPENDED) and error-free.  frontier (pg_snapshot text, NULL = unchanged)
 * is the snapshot whose committed changes the stream table now reflects.
 */
void
pgt_catalog_record_refresh(PgtStreamTable *st, const char *action,
						   const char *initiated_by, TimestampTz start_time,
						   int64 rows_inserted, int64 rows_deleted,
						   int64 delta_rows, const char *fallback_reason,
						   const char *frontier)
{
	PgtRoleSave save;
	Oid			argtypes[9] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(st->pgt_id);
	values[1] = CStringGetTextDatum(action);
	values[2] = CStringGetTextDatum(initiated_by);
	values[3] = TimestampTzGetDatum(start_time);
	values[4] = Int64GetDatum(rows_inserted);
	values[5] = Int64GetDatum(rows_deleted);
	values[6] = Int64GetDatum(delta_rows);
	values[7] = cstring_or_null(fallback_reason, &nulls[7]);
	values[8] = cstring_or_null(frontier, &nulls[8]);

	catalog_begin(&save);
	if (pgt_running_history_id != 0)
	{
		Oid			rtypes[1] = {INT8OID};
		Datum		rvals[1];

		/* the scheduler committed a RUNNING row for this refresh */
		rvals[0] = Int64GetDatum(pgt_running_history_id);
		pgt_spi_exec_args("DELETE FROM pgtrickle.pgt_refresh_history WHERE refresh_id = $1",
						  1, rtypes, rvals, NULL, false, SPI_OK_DELETE);
	}
	/* the scheduler's empty refreshes would only bloat the history */
	if (strcmp(action, "NO_DATA") != 0 || strcmp(initiated_by, "SCHEDULER") != 0)
		pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_refresh_history "
					  "(pgt_id, data_timestamp, start_time, end_time, action, rows_inserted, "
					  " rows_deleted, delta_row_count, was_full_fallback, fallback_reason, "
					  " status, initiated_by) "
					  "VALUES ($1, $4, $4, pg_catalog.clock_timestamp(), $2, $5, $6, $7, "
					  " $8 IS NOT NULL, $8, 'COMPLETED', $3)",
					  8, argtypes, values, nulls, false, SPI_OK_INSERT);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET "
					  "is_populated = true, data_timestamp = $4, last_refresh_at = $4, "
					  "frontier = COALESCE($9::pg_catalog.pg_snapshot, frontier), "
					  "consecutive_errors = 0, last_error_message = NULL, needs_reinit = false, "
					  "pgt_name = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = pgt_relid), "
					  "pgt_schema = (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
					  "  ON n.oid = c.relnamespace WHERE c.oid = pgt_relid), "
					  "status = CASE WHEN status = 'SUSPENDED' THEN status ELSE 'ACTIVE' END "
					  "WHERE pgt_id = $1",
					  9, argtypes, values, nulls, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_trim_buffers deletes from the change buffers of sources (a
 * List of relids) the rows every differential reader has consumed: those
 * of transactions older than the oldest reader frontier's xmin, which are
 * visible in every reader's frontier.
 */
void
pgt_catalog_trim_buffers(List *sources)
{
	PgtRoleSave save;
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};

	catalog_begin(&save);
	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);
		Datum		values[1];
		char	   *sql;

		values[0] = ObjectIdGetDatum(relid);
		sql = psprintf("DELETE FROM %s.%s WHERE " "__pgt_xid < ("
					   "SELECT pg_catalog.min(pg_catalog.pg_snapshot_xmin(s.frontier)) "
					   "FROM pgtrickle.pgt_stream_tables s JOIN pgtrickle.pgt_dependencies d "
					   "USING (pgt_id) WHERE d.source_relid = $1 AND d.cdc_mode = 'TRIGGER' "
					   "AND s.effective_refresh_mode = 'DIFFERENTIAL')",
					   PGT_CHANGES_SCHEMA, quote_identifier(psprintf("changes_%u", relid)));
		pgt_spi_exec_args(sql, 1, argtypes, values, NULL, false, SPI_OK_DELETE);
	}
	catalog_end(&save);
}

/*
 * pgt_catalog_history_start commits nothing itself: it inserts a RUNNING
 * history row for a refresh of pgt_id by the scheduler (which commits it
 * before refreshing, so a crash leaves evidence) and returns its id.
 */
int64
pgt_catalog_history_start(int64 pgt_id)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	int64		id;
	bool		isnull;

	values[0] = Int64GetDatum(pgt_id);
	catalog_begin(&save);
	pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_refresh_history "
					  "(pgt_id, start_time, action, status, initiated_by) "
					  "SELECT $1, pg_catalog.now(), "
					  "CASE WHEN s.effective_refresh_mode = 'FULL' THEN 'FULL' ELSE 'DIFFERENTIAL' END, "
					  "'RUNNING', 'SCHEDULER' FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_id = $1 "
					  "RETURNING refresh_id",
					  1, argtypes, values, NULL, false, SPI_OK_INSERT_RETURNING);
	id = SPI_processed > 0 ?
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) : 0;
	catalog_end(&save);
	return id;
}

/*
 * pgt_catalog_fail_interrupted marks RUNNING history rows left by a
 * scheduler that stopped mid-refresh as FAILED.
 */
void
pgt_catalog_fail_interrupted(void)
{
	PgtRoleSave save;

	catalog_begin(&save);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_refresh_history SET status = 'FAILED', "
					  "end_time = pg_catalog.now(), "
					  "error_message = 'interrupted: the worker running this refresh stopped' "
					  "WHERE status = 'RUNNING'",
					  0, NULL, NULL, NULL, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_fail_running closes the RUNNING history rows of pgt_id as
 * FAILED with message.
 */
void
pgt_catalog_fail_running(int64 pgt_id, const char *message)
{
	close_history("UPDATE pgtrickle.pgt_refresh_history SET status = 'FAILED', "
				  "end_time = pg_catalog.clock_timestamp(), error_message = $2 "
				  "WHERE pgt_id = $1 AND status = 'RUNNING'",
				  pgt_id, message);
}

/*
 * pgt_catalog_history_discard deletes the RUNNING history row refresh_id
 * (0: none) of a refresh that did not take place.
 */
void
pgt_catalog_history_discard(int64 refresh_id)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	if (refresh_id == 0)
		return;
	values[0] = Int64GetDatum(refresh_id);
	catalog_begin(&save);
	pgt_spi_exec_args("DELETE FROM pgtrickle.pgt_refresh_history WHERE refresh_id = $1",
					  1, argtypes, values, NULL, false, SPI_OK_DELETE);
	catalog_end(&save);
}

/*
 * pgt_catalog_history_skip closes the RUNNING history row refresh_id as
 * SKIPPED with message: a member of a diamond group that was rolled back
 * because another member failed.
 */
void
pgt_catalog_history_skip(int64 refresh_id, const char *message)
{
	close_history("UPDATE pgtrickle.pgt_refresh_history SET status = 'SKIPPED', "
				  "action = 'SKIP', end_time = pg_catalog.clock_timestamp(), "
				  "error_message = $2 WHERE refresh_id = $1",
				  refresh_id, message);
}

/* close_history runs sql with $1 = id and $2 = message */
static void
close_history(const char *sql, int64 id, const char *message)
{
	PgtRoleSave save;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(message);
	catalog_begin(&save);
	pgt_spi_exec_args(sql, 2, argtypes, values, NULL, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

/*
 * pgt_catalog_record_failure records a failed refresh of pgt_id: a FAILED
 * history row, one more consecutive error, and status ERROR once
 * max_errors is reached.
 */
void
pgt_catalog_record_failure(int64 pgt_id, const char *initiated_by,
						   const char *message, int max_errors)
{
	PgtRoleSave save;
	Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4];

	values[0] = Int64GetDatum(pgt_id);
	values[1] = CStringGetTextDatum(initiated_by);
	values[2] = CStringGetTextDatum(message ? message : "unknown error");
	values[3] = Int32GetDatum(max_errors);
	catalog_begin(&save);
	if (pgt_running_history_id != 0)
	{
		Oid			rtypes[1] = {INT8OID};
		Datum		rvals[1];

		rvals[0] = Int64GetDatum(pgt_running_history_id);
		pgt_spi_exec_args("DELETE FROM pgtrickle.pgt_refresh_history WHERE refresh_id = $1",
						  1, rtypes, rvals, NULL, false, SPI_OK_DELETE);
	}
	pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_refresh_history "
					  "(pgt_id, start_time, end_time, action, error_message, status, initiated_by) "
					  "SELECT $1, pg_catalog.now(), pg_catalog.clock_timestamp(), "
					  "CASE WHEN s.effective_refresh_mode = 'FULL' THEN 'FULL' ELSE 'DIFFERENTIAL' END, "
					  "$3, 'FAILED', $2 FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_id = $1",
					  4, argtypes, values, NULL, false, SPI_OK_INSERT);
	pgt_spi_exec_args("UPDATE pgtrickle.pgt_stream_tables SET "
					  "consecutive_errors = consecutive_errors + 1, last_error_message = $3, "
					  "status = CASE WHEN consecutive_errors + 1 >= $4 THEN 'ERROR' ELSE status END, "
					  "updated_at = pg_catalog.now() WHERE pgt_id = $1",
					  4, argtypes, values, NULL, false, SPI_OK_UPDATE);
	catalog_end(&save);
}

static void
catalog_begin(PgtRoleSave *save)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, save);
}

static void
catalog_end(PgtRoleSave *save)
{
	pgt_role_restore(save);
	SPI_finish();
}

static Datum
get_datum(HeapTuple tup, TupleDesc desc, const char *col, bool *isnull)
{
	int			attno = SPI_fnumber(desc, col);

	if (attno <= 0)
		elog(ERROR, "pg_trickle catalog has no column \"%s\"", col);
	return SPI_getbinval(tup, desc, attno, isnull);
}

static char *
get_text(HeapTuple tup, TupleDesc desc, const char *col, MemoryContext cxt)
{
	int			attno = SPI_fnumber(desc, col);
	char	   *v;

	if (attno <= 0)
		elog(ERROR, "pg_trickle catalog has no column \"%s\"", col);
	v = SPI_getvalue(tup, desc, attno);
	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

static bool
get_bool(HeapTuple tup, TupleDesc desc, const char *col)
{
	bool		isnull;
	Datum		d = get_datum(tup, desc, col, &isnull);

	return isnull ? false : DatumGetBool(d);
}

static Datum
cstring_or_null(const char *s, char *nullflag)
{
	*nullflag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* fills parameter slots 0..11 ($1..$12): the settings, reason and identity */
static void
fill_settings_args(const PgtStreamTable *st, Datum *values, char *nulls)
{
	const PgtSettings *s = &st->settings;
	int			n = list_length(st->identity_columns);
	Datum	   *elems = palloc(sizeof(Datum) * (n + 1));
	int			i = 0;
	ListCell   *lc;

	values[0] = cstring_or_null(s->schedule, &nulls[0]);
	values[1] = cstring_or_null(s->refresh_mode, &nulls[1]);
	values[2] = cstring_or_null(s->diamond_consistency, &nulls[2]);
	values[3] = cstring_or_null(s->diamond_schedule_policy, &nulls[3]);
	values[4] = cstring_or_null(s->cdc_mode, &nulls[4]);
	values[5] = BoolGetDatum(s->append_only);
	nulls[5] = ' ';
	values[6] = BoolGetDatum(s->pooler_compatibility_mode);
	nulls[6] = ' ';
	values[7] = cstring_or_null(s->partition_by, &nulls[7]);
	values[8] = Int32GetDatum(s->max_differential_joins);
	nulls[8] = s->max_differential_joins_isnull ? 'n' : ' ';
	values[9] = Float8GetDatum(s->max_delta_fraction);
	nulls[9] = s->max_delta_fraction_isnull ? 'n' : ' ';
	values[10] = cstring_or_null(st->refresh_mode_reason, &nulls[10]);
	foreach(lc, st->identity_columns)
		elems[i++] = DirectFunctionCall1(namein, CStringGetDatum(lfirst(lc)));
	values[11] = PointerGetDatum(construct_array(elems, n, NAMEOID, NAMEDATALEN,
												 false, TYPALIGN_CHAR));
	nulls[11] = ' ';
}
