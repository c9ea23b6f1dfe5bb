/*-------------------------------------------------------------------------
 *
 * info.c
 *	  SQL entry points that describe stream tables without changing them.
 *
 * IDENTIFICATION
 *	  src/api/info.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/fmgrprotos.h"
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"

#include "miscadmin.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/resowner.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/util.h"
#include "pg_trickle/schedule.h"
#include "pg_trickle/stream_table.h"

PG_FUNCTION_INFO_V1(pgt_resolve);
PG_FUNCTION_INFO_V1(pgt_parse_schedule);
PG_FUNCTION_INFO_V1(pgt_explain_refresh_mode);
PG_FUNCTION_INFO_V1(pgt_explain_st);
PG_FUNCTION_INFO_V1(pgt_validate_query);

static Datum make_text_record(FunctionCallInfo fcinfo, int n,
							  const char **values);

/*
 * pgt_resolve returns the OID of the stream table called name.
 */
Datum
pgt_resolve(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(pgt_st_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 AccessShareLock, false));
}

/*
 * pgt_parse_schedule shows how a schedule string is read: kind, interval in
 * seconds (durations) and the canonical cron fields (cron).  Errors on an
 * invalid schedule, with the reason in DETAIL.
 */
Datum
pgt_parse_schedule(PG_FUNCTION_ARGS)
{
	PgtSchedule sched;
	char	   *detail = NULL;
	char	   *str;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule must not be null")));
	str = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!pgt_schedule_parse(str, &sched, &detail))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\"", str),
				 errdetail_internal("%s", detail)));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	switch (sched.kind)
	{
		case PGT_SCHEDULE_CALCULATED:
			values[0] = CStringGetTextDatum("calculated");
			break;
		case PGT_SCHEDULE_INTERVAL:
			values[0] = CStringGetTextDatum("interval");
			values[1] = Int64GetDatum(sched.interval_seconds);
			nulls[1] = false;
			break;
		case PGT_SCHEDULE_CRON:
			values[0] = CStringGetTextDatum("cron");
			values[2] = CStringGetTextDatum(pgt_schedule_to_text(&sched));
			nulls[2] = false;
			break;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * pgt_explain_refresh_mode returns the configured and effective refresh
 * mode of a stream table and the reason they differ.
 */
Datum
pgt_explain_refresh_mode(PG_FUNCTION_ARGS)
{
	Oid			relid = pgt_st_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									   AccessShareLock, false);
	PgtStreamTable *st = pgt_catalog_get(relid, false);
	const char *values[3];

	values[0] = st->settings.refresh_mode;
	values[1] = st->effective_refresh_mode;
	values[2] = st->refresh_mode_reason;
	return make_text_record(fcinfo, 3, values);
}

static Datum
make_text_record(FunctionCallInfo fcinfo, int n, const char **values)
{
	TupleDesc	tupdesc;
	Datum	   *d = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (int i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		d[i] = values[i] ? CStringGetTextDatum(values[i]) : (Datum) 0;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, d, nulls)));
}

/*
 * pgt_explain_st describes how a stream table is maintained, as (property,
 * value) rows, including the SQL a differential refresh runs when every
 * captured source has changes.
 */
Datum
pgt_explain_st(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = pgt_st_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									   AccessShareLock, false);
	PgtStreamTable *st = pgt_catalog_get(relid, false);
	PgtAnalysis *analysis;
	List	   *captured = NIL;
	const char *blocker;
	PgtRoleSave save;
	char	   *sql = NULL;
	PgtDeltaStrategy strategy = PGT_DELTA_MULTISET;
	const char *strategy_name;
	List	   *props = NIL;
	ListCell   *lc;
	StringInfoData srcs;

	pgt_compat_init_materialized_srf(fcinfo);

	pgt_role_switch(GetUserId(), false, &save);
	analysis = pgt_analyze_query(st->defining_query, st->name);
	blocker = pgt_dvm_blocker(analysis->query, &captured);
	initStringInfo(&srcs);
	foreach(lc, captured)
		appendStringInfo(&srcs, "%s%s", srcs.len ? ", " : "",
						 get_rel_name(((PgtDeltaSource *) lfirst(lc))->relid));
	if (blocker == NULL && strcmp(st->effective_refresh_mode, "FULL") != 0)
	{
		List	   *changed = NIL;

		foreach(lc, captured)
			changed = lappend_oid(changed, ((PgtDeltaSource *) lfirst(lc))->relid);
		sql = pgt_dvm_apply_sql(analysis->query, analysis, pgt_qualified_name(relid),
								st->frontier ? st->frontier : "1:1:", changed, &strategy);
	}
	pgt_role_restore(&save);

	if (analysis->agg_layout != NULL)
		strategy_name = "ALGEBRAIC_AGGREGATE";
	else
		strategy_name = strategy == PGT_DELTA_MULTISET ? "MULTISET" :
			strategy == PGT_DELTA_KEYED ? "KEYED_RECOMPUTE" :
			strategy == PGT_DELTA_TOPK ? "TOPK" :
			strategy == PGT_DELTA_SETOP ? "SETOP_RECOMPUTE" :
			strategy == PGT_DELTA_WINDOW ? "PARTITION_RECOMPUTE" :
			strategy == PGT_DELTA_RECURSIVE ? "RECURSIVE" : "SINGLETON_RECOMPUTE";

	props = lappend(props, list_make2("refresh_mode", st->settings.refresh_mode));
	props = lappend(props, list_make2("effective_refresh_mode", st->effective_refresh_mode));
	props = lappend(props, list_make2("refresh_mode_reason", (void *) st->refresh_mode_reason));
	props = lappend(props, list_make2("differential_blocker", (void *) blocker));
	props = lappend(props, list_make2("row_identity", (void *) pgt_identity_name(st->identity)));
	props = lappend(props, list_make2("delta_strategy", (void *) (blocker ? NULL : strategy_name)));
	props = lappend(props, list_make2("captured_sources", srcs.data));
	props = lappend(props, list_make2("frontier", st->frontier));
	props = lappend(props, list_make2("defining_query", st->defining_query));
	props = lappend(props, list_make2("delta_sql", sql));

	/* EXPLAIN ANALYZE runs the delta: only for the owner, and as a refresh would */
	if (PG_GETARG_BOOL(1) && !pgt_compat_class_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of stream table \"%s\" to explain it with analyze",
						st->name)));

	/* EXPLAIN ANALYZE of the delta, run in a subtransaction rolled back after */
	if (PG_GETARG_BOOL(1) && sql != NULL)
	{
		Relation	strel = relation_open(relid, AccessShareLock);
		Oid			st_owner = strel->rd_rel->relowner;
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		StringInfoData plan;

		relation_close(strel, AccessShareLock);
		initStringInfo(&plan);
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		pgt_internal_write_depth++;
		PG_TRY();
		{
			pgt_role_switch(st_owner, true, &save);
			/* as a refresh runs it (refresh.c): without JIT */
			(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			{
				Oid			ptypes[1] = {PG_SNAPSHOTOID};
				Datum		pvals[1];

				pvals[0] = DirectFunctionCall1(pg_snapshot_in,
											   CStringGetDatum(st->frontier ? st->frontier : "1:1:"));
				if (SPI_execute_with_args(psprintf("EXPLAIN (ANALYZE, BUFFERS) %s", sql),
										  1, ptypes, pvals, NULL, false, 0) != SPI_OK_UTILITY)
					elog(ERROR, "EXPLAIN failed");
			}
			for (uint64 i = 0; i < SPI_processed; i++)
				appendStringInfo(&plan, "%s\n",
								 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				props = lappend(props, list_make2("delta_plan", pstrdup(plan.data)));
				MemoryContextSwitchTo(old);
			}
			SPI_finish();
			pgt_role_restore(&save);
		}
		PG_FINALLY();
		{
			pgt_internal_write_depth--;
		}
		PG_END_TRY();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}

	foreach(lc, props)
	{
		List	   *p = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(linitial(p));
		nulls[1] = lsecond(p) == NULL;
		values[1] = nulls[1] ? (Datum) 0 : CStringGetTextDatum(lsecond(p));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * pgt_validate_query reports whether query could be a stream table and
 * how it would be maintained: (valid, differential, reason).  Errors in
 * the query itself are reported as valid = false with the error message.
 */
Datum
pgt_validate_query(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *values[3] = {"true", "true", NULL};
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TupleDesc	tupdesc;
	Datum		d[3];
	bool		nulls[3] = {false, false, false};

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		PgtAnalysis *analysis;
		List	   *captured = NIL;
		const char *blocker;

		/* names resolve on the caller's search_path, as at creation */
		analysis = pgt_analyze_query(query, "validate_query");
		blocker = analysis->time_function != NULL ?
			psprintf("The query reads the clock through %s.", analysis->time_function) :
			pgt_dvm_blocker(analysis->query, &captured);
		if (blocker == NULL && analysis->has_volatile &&
			pgt_volatile_function_policy == PGT_VOLATILE_REJECT)
			blocker = psprintf("The query calls volatile function %s().", analysis->volatile_name);
		if (blocker != NULL)
		{
			values[1] = "false";
			values[2] = MemoryContextStrdup(cxt, blocker);
		}
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		values[0] = "false";
		values[1] = "false";
		values[2] = edata->message;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	d[0] = BoolGetDatum(strcmp(values[0], "true") == 0);
	d[1] = BoolGetDatum(strcmp(values[1], "true") == 0);
	nulls[2] = values[2] == NULL;
	d[2] = values[2] ? CStringGetTextDatum(values[2]) : (Datum) 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, d, nulls)));
}
