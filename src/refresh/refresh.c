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
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/typcache.h"
#include "commands/trigger.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "catalog/pg_type.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access/transam.h"
#include "access/xact.h"
#include "pg_trickle/analyze.h"
#include "pg_trickle/cdc.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/stream_table.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

typedef struct RefreshCounts
{
	int64		inserted;
	int64		deleted;
	int64		delta_rows;
} RefreshCounts;

static void refresh_full(PgtStreamTable *st, PgtAnalysis *analysis,
						 Snapshot snap, RefreshCounts *counts);
static bool refresh_differential(PgtStreamTable *st, Snapshot snap,
								 List *changed, RefreshCounts *counts,
								 const char **reason);
static const char *pending_changes(PgtStreamTable *st, List *captured,
								   Snapshot snap, List **changed,
								   int64 *pending, bool *auto_full);
static char *col_names(List *columns);
static uint64 exec_with_snapshot(const char *sql, Snapshot snap,
								 bool read_only, int expected_rc);
static char *frontier_text(Snapshot snap);
static void refresh_error_callback(void *arg);
static const char *initiator_name(PgtInitiator initiator);

/*
 * pgt_refresh_run refreshes stream table relid: FULL when forced, when its
 * effective mode is FULL, when it was never populated or needs
 * reinitializing, when a source was truncated, or (AUTO) when the pending
 * changes are too many; otherwise DIFFERENTIAL, or NO_DATA when nothing
 * changed.  Every outcome writes one history row.
 *
 * Must run inside a transaction; errors propagate (the caller's transaction
 * aborts and the stream table is unchanged).  A manual refresh of a
 * SUSPENDED stream table is refused.  Returns true if rows changed.
 */
bool
pgt_refresh_run(Oid relid, PgtInitiator initiator, bool force_full)
{
	PgtStreamTable *st;
	TimestampTz start_time;
	Snapshot	snap;
	RefreshCounts counts = {0, 0, 0};
	ErrorContextCallback errcallback;
	char	   *frontier;
	char	   *stname;
	Relation	rel;
	Oid			owner;
	PgtRoleSave save;
	const char *action;
	const char *full_reason = NULL;
	List	   *captured = NIL;
	List	   *changed = NIL;
	ListCell   *lc;

	st = pgt_catalog_get(relid, true);
	if (st == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a stream table",
						pgt_relation_display_name(relid))));
	/*
	 * Restored from a dump and not attached yet.  The scheduler leaves it
	 * alone: a restore may still be loading its rows (the post-data section
	 * attaches it).  A manual refresh attaches it now.
	 */
	if (st->restore_pending)
	{
		if (initiator == PGT_INITIATED_SCHEDULER)
		{
			pgt_catalog_history_discard(pgt_running_history_id);
			return false;
		}
		(void) pgt_st_attach_restored(relid);
		st = pgt_catalog_get(relid, true);
	}
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

	rel = relation_open(st->relid, RowExclusiveLock);
	owner = rel->rd_rel->relowner;
	relation_close(rel, NoLock);

	if (strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
		captured = pgt_catalog_captured_sources(st->pgt_id);
	else if (strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
	{
		/* writers maintain it: recompute, with their maintenance held off */
		pgt_ivm_lock(st->relid);
		force_full = true;
	}

	/* taken after the row lock: see the file header */
	if (pgt_refresh_pinned_snapshot != NULL)
	{
		/* a diamond group: the group's snapshot, seeing what members wrote */
		PushCopiedSnapshot(pgt_refresh_pinned_snapshot);
		UpdateActiveSnapshotCommandId();
		snap = RegisterSnapshot(GetActiveSnapshot());
		PopActiveSnapshot();
	}
	else
		snap = RegisterSnapshot(GetLatestSnapshot());
	PGT_WAITPOINT("refresh-after-snapshot", 1);

	pgt_role_switch(owner, true, &save);

	if (force_full)
		action = "FULL";
	else if (strcmp(st->effective_refresh_mode, "FULL") == 0)
		action = "FULL";
	else if (!st->is_populated || st->frontier == NULL || st->needs_reinit)
	{
		action = "FULL";
		full_reason = st->needs_reinit ? "The stream table needed reinitializing." :
			"The stream table was not populated yet.";
	}
	else
	{
		int64		pending = 0;
		bool		auto_full = false;

		full_reason = pending_changes(st, captured, snap, &changed, &pending,
									  &auto_full);
		if (full_reason != NULL)
			action = "FULL";
		else if (changed == NIL)
			action = "NO_DATA";
		else
			action = "DIFFERENTIAL";
		counts.delta_rows = pending;
	}

	if (strcmp(action, "DIFFERENTIAL") == 0 &&
		!refresh_differential(st, snap, changed, &counts, &full_reason))
	{
		action = "FULL";
		if (full_reason == NULL)
		{
			full_reason = "The delta did not match the stored rows; the stream table was recomputed.";
			ereport(WARNING,
					(errmsg("stream table \"%s\" was inconsistent with its change history and was fully refreshed",
							stname)));
		}
	}
	if (strcmp(action, "FULL") == 0)
		refresh_full(st, pgt_analyze_query_ext(st->defining_query, st->name, false),
					 snap, &counts);

	pgt_role_restore(&save);

	frontier = frontier_text(snap);
	UnregisterSnapshot(snap);

	/* this transaction's own earlier changes count as consumed now */
	if (FullTransactionIdIsValid(GetTopFullTransactionIdIfAny()))
	{
		foreach(lc, captured)
			pgt_cdc_note_consumed(lfirst_oid(lc));
	}

	error_context_stack = errcallback.previous;
	PGT_WAITPOINT("refresh-before-record", 2);

	pgt_catalog_record_refresh(st, action, initiator_name(initiator), start_time,
							   counts.inserted, counts.deleted, counts.delta_rows,
							   strcmp(action, "FULL") == 0 ? full_reason : NULL,
							   frontier);
	if (captured != NIL && strcmp(action, "NO_DATA") != 0)
	{
		CommandCounterIncrement();
		pgt_catalog_trim_buffers(captured);
	}
	return counts.inserted + counts.deleted > 0;
}

/*
 * pgt_refresh_immediate_full recomputes IMMEDIATE stream table relid inside
 * the current transaction (after a TRUNCATE of a source), reading the
 * sources as the transaction sees them now.  No history row: this runs on
 * a writer's path.  The caller holds the maintenance lock.
 */
void
pgt_refresh_immediate_full(Oid relid)
{
	PgtStreamTable *st = pgt_catalog_get(relid, false);
	RefreshCounts counts = {0, 0, 0};
	Relation	rel;
	Oid			owner;
	PgtRoleSave save;
	Snapshot	snap;

	if (st == NULL)
		elog(ERROR, "relation %u is not a stream table", relid);
	rel = relation_open(relid, RowExclusiveLock);
	owner = rel->rd_rel->relowner;
	relation_close(rel, NoLock);

	PushCopiedSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = RegisterSnapshot(GetActiveSnapshot());
	PopActiveSnapshot();
	pgt_role_switch(owner, true, &save);
	refresh_full(st, pgt_analyze_query_ext(st->defining_query, st->name, false), snap,
				 &counts);
	pgt_role_restore(&save);
	UnregisterSnapshot(snap);
}

/*
 * pending_changes looks at the change buffers of st's captured sources in
 * the window (frontier, snap]: which sources changed, how many change rows
 * there are, and whether the refresh must be FULL instead (a TRUNCATE, or
 * for AUTO too many changes); returns the reason for FULL, or NULL.
 */
static const char *
pending_changes(PgtStreamTable *st, List *captured, Snapshot snap,
				List **changed, int64 *pending, bool *auto_full)
{
	ListCell   *lc;
	const char *reason = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	PgtRoleSave save;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* buffers are readable by the extension owner only; this runs no user code */
	pgt_role_switch(pgt_extension_owner(), true, &save);
	foreach(lc, captured)
	{
		PgtDeltaSource srcbuf;
		PgtDeltaSource *src = &srcbuf;
		char	   *sql;
		bool		isnull;
		int64		n;
		bool		truncated;
		char	   *lit = quote_literal_cstr(st->frontier);

		srcbuf.relid = lfirst_oid(lc);

		sql = psprintf("SELECT pg_catalog.count(*) FILTER (WHERE " PGT_BUFFER_W_COLUMN " <> 0), "
					   "COALESCE(pg_catalog.bool_or(" PGT_BUFFER_W_COLUMN " = 0), false), "
					   "(SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = %u) "
					   "FROM %s WHERE " PGT_BUFFER_XID_COLUMN " >= pg_catalog.pg_snapshot_xmin(%s::pg_catalog.pg_snapshot) "
					   "AND NOT pg_catalog.pg_visible_in_snapshot(" PGT_BUFFER_XID_COLUMN ", %s::pg_catalog.pg_snapshot)",
					   src->relid,
					   quote_qualified_identifier(PGT_CHANGES_SCHEMA, pgt_cdc_buffer_name(src->relid)),
					   lit, lit);
		exec_with_snapshot(sql, snap, true, SPI_OK_SELECT);
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		truncated = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		if (truncated && reason == NULL)
			reason = MemoryContextStrdup(cxt, psprintf("Source \"%s\" was truncated.",
													   get_rel_name(src->relid)));
		if (n > 0 || truncated)
		{
			float4		reltuples = DatumGetFloat4(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 3, &isnull));
			MemoryContext old = MemoryContextSwitchTo(cxt);

			/* results outlive SPI_finish */
			*changed = lappend_oid(*changed, src->relid);
			MemoryContextSwitchTo(old);
			*pending += n;
			if (strcmp(st->settings.refresh_mode, "AUTO") == 0 && reason == NULL &&
				reltuples >= 1000 &&
				(double) n / reltuples > pgt_differential_max_change_ratio)
			{
				*auto_full = true;
				reason = MemoryContextStrdup(cxt, psprintf("%lld pending changes of \"%s\" exceed pg_trickle.differential_max_change_ratio (%g) of its %.0f rows.",
								  (long long) n, get_rel_name(src->relid),
								  pgt_differential_max_change_ratio, reltuples));
			}
		}
	}
	pgt_role_restore(&save);
	SPI_finish();
	return reason;
}

/*
 * Backend-local cache of prepared delta statements, one per stream table
 * and set of changed sources; an entry is rebuilt when the definition
 * changed or a referenced relation was altered (SPI_plan_is_valid).
 */
typedef struct DeltaPlanEntry
{
	char		key[128];		/* "<relid>:<changed relids>", maybe cut */
	char	   *full_key;		/* the whole key: a cut one can collide */
	char	   *defining_query;
	SPIPlanPtr	plan;
	PgtDeltaStrategy strategy;
	char	   *sql;
} DeltaPlanEntry;

static HTAB *delta_plans = NULL;

int64		pgt_running_history_id = 0;

/*
 * When set, refreshes read their sources with this snapshot (plus this
 * transaction's own writes) instead of a new one: the members of a diamond
 * group see one moment.  Their catalog rows must be locked before it was
 * taken.
 */
Snapshot	pgt_refresh_pinned_snapshot = NULL;

/*
 * refresh_differential applies the delta of the window to st.  Returns
 * false if the refresh must be FULL instead: *reason set when the query
 * can no longer be maintained differentially, NULL when the stored rows
 * turned out not to match the delta (the caller then refreshes FULL in the
 * same transaction).
 */
static bool
refresh_differential(PgtStreamTable *st, Snapshot snap, List *changed,
					 RefreshCounts *counts, const char **reason)
{
	MemoryContext cxt = CurrentMemoryContext;
	DeltaPlanEntry *entry;
	StringInfoData key;
	ListCell   *lc;
	bool		found;
	bool		ok = true;
	Datum		param[1];
	int			rc;

	/* generated delta SQL is large and its work small: JIT would dominate */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	initStringInfo(&key);
	appendStringInfo(&key, "%u:", st->relid);
	foreach(lc, changed)
		appendStringInfo(&key, "%u,", lfirst_oid(lc));

	if (delta_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = 128;
		ctl.entrysize = sizeof(DeltaPlanEntry);
		ctl.hcxt = TopMemoryContext;
		delta_plans = hash_create("pg_trickle delta plans", 64, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	{
		char		hkey[128];

		strlcpy(hkey, key.data, sizeof(hkey));
		entry = hash_search(delta_plans, hkey, HASH_ENTER, &found);
	}
	if (!found)
	{
		entry->plan = NULL;
		entry->full_key = NULL;
		entry->defining_query = NULL;
		entry->sql = NULL;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (entry->plan == NULL || entry->defining_query == NULL ||
		strcmp(entry->full_key, key.data) != 0 ||
		strcmp(entry->defining_query, st->defining_query) != 0 ||
		!SPI_plan_is_valid(entry->plan))
	{
		PgtAnalysis *analysis = pgt_analyze_query_ext(st->defining_query, st->name, false);
		List	   *captured = NIL;
		const char *blocker = pgt_dvm_blocker(analysis->query, &captured);
		char	   *sql;
		Oid			ptypes[1] = {PG_SNAPSHOTOID};
		SPIPlanPtr	plan;

		if (entry->plan != NULL)
			SPI_freeplan(entry->plan);
		entry->plan = NULL;
		if (entry->full_key != NULL)
		{
			pfree(entry->full_key);
			pfree(entry->defining_query);
			pfree(entry->sql);
			entry->full_key = entry->defining_query = entry->sql = NULL;
		}
		if (blocker != NULL)
		{
			/* the reason is in SPI's memory, which SPI_finish frees */
			*reason = MemoryContextStrdup(cxt, blocker);
			SPI_finish();
			return false;
		}
		sql = pgt_dvm_apply_sql(analysis->query, analysis, pgt_qualified_name(st->relid),
								st->frontier, changed, &entry->strategy);
		if (sql == NULL)
		{
			SPI_finish();
			return true;
		}
		plan = SPI_prepare(sql, 1, ptypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s: %s",
				 SPI_result_code_string(SPI_result), sql);
		SPI_keepplan(plan);
		entry->plan = plan;
		entry->full_key = MemoryContextStrdup(TopMemoryContext, key.data);
		entry->defining_query = MemoryContextStrdup(TopMemoryContext, st->defining_query);
		entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	}
	elog(DEBUG1, "pg_trickle delta SQL for \"%s\": %s", st->name, entry->sql);

	param[0] = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(st->frontier));
	pgt_internal_write_depth++;
	PG_TRY();
	{
		rc = SPI_execute_snapshot(entry->plan, param, NULL, snap, InvalidSnapshot,
								  false, true, 0);
		if (entry->strategy == PGT_DELTA_KEYED)
		{
			if (rc != SPI_OK_MERGE)
				elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
			counts->inserted = SPI_processed;
		}
		else
		{
			bool		isnull;
			HeapTuple	tup;
			TupleDesc	desc;

			if (rc != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
			tup = SPI_tuptable->vals[0];
			desc = SPI_tuptable->tupdesc;
			counts->deleted = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			counts->inserted = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			if (entry->strategy == PGT_DELTA_MULTISET || entry->strategy == PGT_DELTA_TOPK ||
				entry->strategy == PGT_DELTA_SETOP || entry->strategy == PGT_DELTA_WINDOW ||
				entry->strategy == PGT_DELTA_RECURSIVE)
			{
				int64		expected = DatumGetInt64(DirectFunctionCall1(numeric_int8,
																		 SPI_getbinval(tup, desc, 4, &isnull)));

				counts->delta_rows = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
				ok = (expected == counts->deleted);
				/* -1: the delta gave up (a recursive delta did not converge) */
				if (expected == -1)
					*reason = "The recursive delta did not converge within its bounds (1000 iterations, or ten times the stored rows plus the changes); the stream table was recomputed.";
			}
		}
	}
	PG_FINALLY();
	{
		pgt_internal_write_depth--;
	}
	PG_END_TRY();
	SPI_finish();
	return ok;
}

/*
 * refresh_full replaces the rows of st with a fresh run of its query.
 *
 * When other stream tables read st (it carries capture triggers), the new
 * rows are diffed against the stored ones and only the difference is
 * written, so readers receive a delta the size of the real change instead
 * of every row deleted and inserted again.
 */
static void
refresh_full(PgtStreamTable *st, PgtAnalysis *analysis, Snapshot snap,
			 RefreshCounts *counts)
{
	char	   *qualified = pgt_qualified_name(st->relid);
	char	   *select_sql = pgt_dvm_full_sql(analysis->query, analysis, qualified);
	StringInfoData cols;
	StringInfoData ccols;
	StringInfoData grp;
	StringInfoData sel;
	StringInfoData recheck;
	Relation	rel;
	TupleDesc	desc;
	bool		diff = OidIsValid(get_trigger_oid(st->relid, "__pgt_cdc_ins", true));

	initStringInfo(&cols);
	initStringInfo(&ccols);
	initStringInfo(&grp);
	initStringInfo(&sel);
	initStringInfo(&recheck);
	rel = relation_open(st->relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *qn;
		TypeCacheEntry *tc;

		if (att->attisdropped)
			continue;
		qn = quote_identifier(NameStr(att->attname));
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", qn);
		appendStringInfo(&ccols, "%sc.%s", ccols.len ? ", " : "", qn);
		tc = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR);
		if (grp.len)
		{
			appendStringInfoString(&grp, ", ");
			appendStringInfoString(&sel, ", ");
			appendStringInfoString(&recheck, " AND ");
		}
		if (OidIsValid(tc->eq_opr))
		{
			appendStringInfo(&grp, "d.%s", qn);
			appendStringInfo(&sel, "d.%s", qn);
			pgt_append_equal(&recheck, psprintf("t.%s", qn), psprintf("c.%s", qn),
							 tc->eq_opr, true);
			if (!pgt_storage_equal_is_identity(att->atttypid, att->attcollation))
			{
				appendStringInfo(&grp, ", d.%s::pg_catalog.text", qn);
				appendStringInfo(&recheck, " AND t.%s::pg_catalog.text IS NOT DISTINCT FROM c.%s::pg_catalog.text",
								 qn, qn);
			}
		}
		else
		{
			appendStringInfo(&grp, "d.%s::pg_catalog.text", qn);
			appendStringInfo(&sel, "(pg_catalog.min(d.%s::pg_catalog.text))::%s AS %s", qn,
							 format_type_extended(att->atttypid, att->atttypmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY), qn);
			appendStringInfo(&recheck, "t.%s::pg_catalog.text IS NOT DISTINCT FROM c.%s::pg_catalog.text",
							 qn, qn);
		}
	}
	relation_close(rel, AccessShareLock);

	if (select_sql == NULL)
	{
		/* a UNION ALL recursion over a cycle errors instead of filling the disk */
		char	   *query_sql = pgt_dvm_recursive_full_sql(analysis->query, analysis,
														   pgt_relation_display_name(st->relid));

		select_sql = psprintf("SELECT q.*, %s FROM (%s) AS q (%s)",
							  pgt_storage_row_id_expr(analysis->columns, st->identity, "q"),
							  query_sql != NULL ? query_sql : st->defining_query,
							  col_names(analysis->columns));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	pgt_internal_write_depth++;
	PG_TRY();
	{
		if (diff)
		{
			bool		isnull;

			exec_with_snapshot(psprintf("WITH __pgt_n(%s) AS (%s), "
										"__pgt_d AS (SELECT n.*, 1::pg_catalog.int8 AS __pgt_w FROM __pgt_n n "
										"UNION ALL SELECT %s, -1::pg_catalog.int8 FROM %s), "
										"__pgt_c AS (SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8 AS __pgt_w, "
										"pg_catalog.row_number() OVER () AS __pgt_cid FROM __pgt_d d "
										"GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0), "
										"__pgt_del AS (DELETE FROM %s WHERE ctid = ANY (ARRAY("
										"SELECT x.ctid FROM (SELECT t.ctid, -c.__pgt_w AS n, "
										"pg_catalog.row_number() OVER (PARTITION BY c.__pgt_cid ORDER BY t.ctid) AS rn "
										"FROM __pgt_c c JOIN %s t ON t." PGT_ROW_ID_COLUMN " = c." PGT_ROW_ID_COLUMN
										" AND %s WHERE c.__pgt_w < 0) x WHERE x.rn <= x.n)) RETURNING 1), "
										"__pgt_ins AS (INSERT INTO %s (%s) SELECT %s FROM __pgt_c c "
										"CROSS JOIN LATERAL pg_catalog.generate_series(1::pg_catalog.int8, c.__pgt_w) "
										"WHERE c.__pgt_w > 0 RETURNING 1) "
										"SELECT (SELECT pg_catalog.count(*) FROM __pgt_del), "
										"(SELECT pg_catalog.count(*) FROM __pgt_ins)",
										cols.data, select_sql, cols.data, qualified, sel.data, grp.data,
										qualified, qualified, recheck.data,
										qualified, cols.data, ccols.data),
							   snap, false, SPI_OK_SELECT);
			counts->deleted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));
			counts->inserted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 2, &isnull));
		}
		else
		{
			counts->deleted = exec_with_snapshot(psprintf("DELETE FROM %s", qualified),
												 snap, false, SPI_OK_DELETE);
			counts->inserted = exec_with_snapshot(psprintf("INSERT INTO %s (%s) %s",
														   qualified, cols.data, select_sql),
												  snap, false, SPI_OK_INSERT);
		}
		/*
		 * Fresh statistics let delta plans use the row identity index.
		 * Only if nobody holds the stream table in a conflicting mode: an
		 * alter_stream_table() holding it waits for this refresh's catalog
		 * row lock, and waiting here would deadlock.
		 */
		if (ConditionalLockRelationOid(st->relid, ShareUpdateExclusiveLock))
			pgt_spi_exec(psprintf("ANALYZE %s", qualified), SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		pgt_internal_write_depth--;
	}
	PG_END_TRY();

	SPI_finish();
}

/* col_names: quoted visible column names, comma-separated */
static char *
col_names(List *columns)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, pgt_storage_column_names(columns))
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.data;
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
 * frontier_text returns, in pg_snapshot's text form, the set of
 * transactions whose changes the refresh applied: those visible in snap,
 * plus this transaction itself (the refresh read its earlier writes).
 */
static char *
frontier_text(Snapshot snap)
{
	char	   *text;
	MemoryContext cxt = CurrentMemoryContext;
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	uint64		xmin;
	uint64		xmax;
	uint64		ownx;
	char	   *p;
	StringInfoData buf;
	bool		first = true;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	exec_with_snapshot("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text",
					   snap, true, SPI_OK_SELECT);
	text = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1));
	SPI_finish();

	if (!FullTransactionIdIsValid(own))
		return text;

	/* xmin:xmax:xip,... -- make own visible, keep everything else as is */
	ownx = U64FromFullTransactionId(own);
	xmin = strtou64(text, &p, 10);
	xmax = strtou64(p + 1, &p, 10);
	p++;
	initStringInfo(&buf);
	while (*p != '\0')
	{
		uint64		x = strtou64(p, &p, 10);

		if (*p == ',')
			p++;
		if (x == ownx)
			continue;
		appendStringInfo(&buf, "%s" UINT64_FORMAT, first ? "" : ",", x);
		first = false;
	}
	for (uint64 x = xmax; x < ownx; x++)
	{
		appendStringInfo(&buf, "%s" UINT64_FORMAT, first ? "" : ",", x);
		first = false;
	}
	if (ownx >= xmax)
		xmax = ownx + 1;
	if (ownx < xmin)
		return text;			/* already visible */
	return psprintf(UINT64_FORMAT ":" UINT64_FORMAT ":%s", xmin, xmax, buf.data);
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
