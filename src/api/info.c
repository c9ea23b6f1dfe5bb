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

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/schedule.h"
#include "pg_trickle/stream_table.h"

PG_FUNCTION_INFO_V1(pgt_resolve);
PG_FUNCTION_INFO_V1(pgt_parse_schedule);
PG_FUNCTION_INFO_V1(pgt_explain_refresh_mode);

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
