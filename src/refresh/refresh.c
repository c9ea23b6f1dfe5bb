/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  Bringing a stream table up to date.
 *
 *	  A refresh locks the stream table's catalog row (FOR UPDATE), which
 *	  serializes refreshes and definition changes of one stream table; a
 *	  second refresh waits and then sees what the first committed.  Only
 *	  after the lock does it take the snapshot it reads the sources with,
 *	  and every statement of the refresh runs with that one snapshot
 *	  (SPI_execute_snapshot), so the result is the query's answer at a
 *	  single instant even in READ COMMITTED.  That snapshot is stored as the
 *	  stream table's frontier: the set of committed transactions whose
 *	  changes the stream table now reflects.
 *
 *	  The writes run as the stream table's owner, as a security-restricted
 *	  operation with search_path locked to pg_catalog, pg_temp (the stored
 *	  query is fully qualified), exactly as REFRESH MATERIALIZED VIEW does.
 *	  Any error aborts the caller's transaction and so leaves the stream
 *	  table as it was.
 *
 * IDENTIFICATION
 *	  src/refresh/refresh.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

typedef struct RefreshCounts
{
	int64		inserted;
	int64		deleted;
} RefreshCounts;

static void refresh_full(PgtStreamTable *st, Snapshot snap,
						 RefreshCounts *counts);
static uint64 exec_with_snapshot(const char *sql, Snapshot snap,
								 bool read_only, int expected_rc);
static char *snapshot_text(Snapshot snap);
static void refresh_error_callback(void *arg);
static const char *initiator_name(PgtInitiator initiator);

/*
 * pgt_refresh_run refreshes stream table relid.
 *
 * Must run inside a transaction; errors propagate (the caller's transaction
 * aborts and the stream table is unchanged).  A manual refresh of a
 * SUSPENDED stream table is refused.
 */
void
pgt_refresh_run(Oid relid, PgtInitiator initiator)
{
	PgtStreamTable *st;
	TimestampTz start_time;
	Snapshot	snap;
	RefreshCounts counts = {0, 0};
	ErrorContextCallback errcallback;
	char	   *frontier;
	char	   *stname;

	st = pgt_catalog_get(relid, true);
	if (st == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a stream table",
						pgt_relation_display_name(relid))));
	stname = pgt_relation_display_name(relid);

	if (initiator == PGT_INITIATED_MANUAL && strcmp(st->status, "SUSPENDED") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream table \"%s\" is suspended", stname),
				 errhint("Resume it with pgtrickle.resume_stream_table().")));

	start_time = GetCurrentTimestamp();

	errcallback.callback = refresh_error_callback;
	errcallback.arg = stname;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* taken after the row lock: see the file header */
	snap = RegisterSnapshot(GetLatestSnapshot());

	refresh_full(st, snap, &counts);
	frontier = snapshot_text(snap);

	UnregisterSnapshot(snap);
	error_context_stack = errcallback.previous;

	pgt_catalog_record_refresh(st, "FULL", initiator_name(initiator), start_time,
							   counts.inserted, counts.deleted, 0,
							   NULL, frontier);
}

/*
 * refresh_full replaces the rows of st with a fresh run of its query.
 */
static void
refresh_full(PgtStreamTable *st, Snapshot snap, RefreshCounts *counts)
{
	Relation	rel;
	Oid			owner;
	PgtAnalysis *analysis;
	PgtRoleSave save;
	StringInfoData sql;
	char	   *qualified = pgt_qualified_name(st->relid);
	List	   *colnames;
	ListCell   *lc;
	bool		first = true;

	rel = relation_open(st->relid, RowExclusiveLock);
	owner = rel->rd_rel->relowner;
	relation_close(rel, NoLock);

	/*
	 * Re-analyze the stored query as the owner: this resolves it against
	 * the current catalog and gives the column list.
	 */
	pgt_role_switch(owner, true, &save);
	analysis = pgt_analyze_query(st->defining_query, st->name);
	colnames = pgt_storage_column_names(analysis->columns);

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (", qualified);
	foreach(lc, colnames)
	{
		if (!first)
			appendStringInfoString(&sql, ", ");
		first = false;
		appendStringInfoString(&sql, (char *) lfirst(lc));
	}
	appendStringInfo(&sql, ", %s) SELECT q.*, %s FROM (%s) AS q (", PGT_ROW_ID_COLUMN,
					 pgt_storage_row_id_expr(analysis->columns, st->identity, "q"),
					 st->defining_query);
	first = true;
	foreach(lc, colnames)
	{
		if (!first)
			appendStringInfoString(&sql, ", ");
		first = false;
		appendStringInfoString(&sql, (char *) lfirst(lc));
	}
	appendStringInfoChar(&sql, ')');

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	pgt_internal_write_depth++;
	PG_TRY();
	{
		counts->deleted = exec_with_snapshot(psprintf("DELETE FROM %s", qualified),
											 snap, false, SPI_OK_DELETE);
		counts->inserted = exec_with_snapshot(sql.data, snap, false,
											  SPI_OK_INSERT);
	}
	PG_FINALLY();
	{
		pgt_internal_write_depth--;
	}
	PG_END_TRY();

	SPI_finish();
	pgt_role_restore(&save);
}

/*
 * exec_with_snapshot plans and runs sql so that it sees the data of snap
 * (plus this transaction's own earlier writes).  Returns SPI_processed.
 */
static uint64
exec_with_snapshot(const char *sql, Snapshot snap, bool read_only,
				   int expected_rc)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s: %s",
			 SPI_result_code_string(SPI_result), sql);
	rc = SPI_execute_snapshot(plan, NULL, NULL, snap, InvalidSnapshot,
							  read_only, true, 0);
	if (rc != expected_rc)
		elog(ERROR, "SPI_execute_snapshot failed: %s: %s",
			 SPI_result_code_string(rc), sql);
	SPI_freeplan(plan);
	return SPI_processed;
}

/*
 * snapshot_text returns snap in pg_snapshot's text form.
 */
static char *
snapshot_text(Snapshot snap)
{
	char	   *result;
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	exec_with_snapshot("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text",
					   snap, true, SPI_OK_SELECT);
	result = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return result;
}

static void
refresh_error_callback(void *arg)
{
	errcontext("while refreshing stream table \"%s\"", (const char *) arg);
}

static const char *
initiator_name(PgtInitiator initiator)
{
	switch (initiator)
	{
		case PGT_INITIATED_MANUAL:
			return "MANUAL";
		case PGT_INITIATED_SCHEDULER:
			return "SCHEDULER";
		case PGT_INITIATED_INITIAL:
			return "INITIAL";
	}
	return "MANUAL";			/* keep compiler quiet */
}
