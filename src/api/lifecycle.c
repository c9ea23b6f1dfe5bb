/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  SQL entry points that create, change, refresh and drop stream tables.
 *
 *	  Each function only unpacks its arguments and calls stream_table.c.
 *
 * IDENTIFICATION
 *	  src/api/lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "pg_trickle/stream_table.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_create_stream_table);
PG_FUNCTION_INFO_V1(pgt_create_stream_table_if_not_exists);
PG_FUNCTION_INFO_V1(pgt_create_or_replace_stream_table);
PG_FUNCTION_INFO_V1(pgt_alter_stream_table);
PG_FUNCTION_INFO_V1(pgt_drop_stream_table);
PG_FUNCTION_INFO_V1(pgt_refresh_stream_table);
PG_FUNCTION_INFO_V1(pgt_resume_stream_table);
PG_FUNCTION_INFO_V1(pgt_export_definition);
PG_FUNCTION_INFO_V1(pgt_repair_stream_table);

static Datum create_common(FunctionCallInfo fcinfo, PgtCreateKind kind);
static char *text_arg(FunctionCallInfo fcinfo, int n);
static char *name_arg(FunctionCallInfo fcinfo, int n);

#define ARG_GIVEN(n) (!PG_ARGISNULL(n))

Datum
pgt_create_stream_table(PG_FUNCTION_ARGS)
{
	return create_common(fcinfo, PGT_CREATE);
}

Datum
pgt_create_stream_table_if_not_exists(PG_FUNCTION_ARGS)
{
	return create_common(fcinfo, PGT_CREATE_IF_NOT_EXISTS);
}

Datum
pgt_create_or_replace_stream_table(PG_FUNCTION_ARGS)
{
	return create_common(fcinfo, PGT_CREATE_OR_REPLACE);
}

/*
 * create_common unpacks the 13 arguments shared by the three create
 * functions: name, query, schedule, refresh_mode, initialize,
 * diamond_consistency, diamond_schedule_policy, cdc_mode, append_only,
 * pooler_compatibility_mode, partition_by, max_differential_joins,
 * max_delta_fraction.
 */
static Datum
create_common(FunctionCallInfo fcinfo, PgtCreateKind kind)
{
	PgtSettingsArgs args;
	char	   *name = name_arg(fcinfo, 0);
	char	   *query = text_arg(fcinfo, 1);
	bool		initialize = ARG_GIVEN(4) ? PG_GETARG_BOOL(4) : true;

	memset(&args, 0, sizeof(args));
	args.schedule = text_arg(fcinfo, 2);
	args.schedule_given = true;
	args.refresh_mode = ARG_GIVEN(3) ? pgt_text_arg_upper(PG_GETARG_TEXT_PP(3)) : "AUTO";
	args.diamond_consistency = ARG_GIVEN(5) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(5)) : NULL;
	args.diamond_schedule_policy = ARG_GIVEN(6) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(6)) : NULL;
	args.cdc_mode = ARG_GIVEN(7) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(7)) : NULL;
	args.append_only_given = true;
	args.append_only = ARG_GIVEN(8) ? PG_GETARG_BOOL(8) : false;
	args.pooler_compatibility_mode_given = true;
	args.pooler_compatibility_mode = ARG_GIVEN(9) ? PG_GETARG_BOOL(9) : false;
	args.partition_by = text_arg(fcinfo, 10);
	args.max_differential_joins_given = ARG_GIVEN(11);
	if (ARG_GIVEN(11))
		args.max_differential_joins = PG_GETARG_INT32(11);
	args.max_delta_fraction_given = ARG_GIVEN(12);
	if (ARG_GIVEN(12))
		args.max_delta_fraction = PG_GETARG_FLOAT8(12);

	pgt_st_create(name, query, &args, initialize, kind);
	PG_RETURN_VOID();
}

/*
 * pgt_alter_stream_table: name, query, schedule, refresh_mode, status,
 * diamond_consistency, diamond_schedule_policy, cdc_mode, append_only,
 * pooler_compatibility_mode, tier, fuse, fuse_ceiling, fuse_sensitivity,
 * partition_by, max_differential_joins, max_delta_fraction.
 */
Datum
pgt_alter_stream_table(PG_FUNCTION_ARGS)
{
	PgtSettingsArgs args;
	char	   *name = name_arg(fcinfo, 0);
	char	   *query = text_arg(fcinfo, 1);
	char	   *status = ARG_GIVEN(4) ? pgt_text_arg_upper(PG_GETARG_TEXT_PP(4)) : NULL;

	if (ARG_GIVEN(10) || ARG_GIVEN(11) || ARG_GIVEN(12) || ARG_GIVEN(13))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported by this version of pg_trickle",
						ARG_GIVEN(10) ? "tier" : "fuse"),
				 errhint("Leave tier, fuse, fuse_ceiling and fuse_sensitivity NULL.")));

	memset(&args, 0, sizeof(args));
	args.schedule_given = ARG_GIVEN(2);
	args.schedule = text_arg(fcinfo, 2);
	args.refresh_mode = ARG_GIVEN(3) ? pgt_text_arg_upper(PG_GETARG_TEXT_PP(3)) : NULL;
	args.diamond_consistency = ARG_GIVEN(5) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(5)) : NULL;
	args.diamond_schedule_policy = ARG_GIVEN(6) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(6)) : NULL;
	args.cdc_mode = ARG_GIVEN(7) ? pgt_text_arg_lower(PG_GETARG_TEXT_PP(7)) : NULL;
	args.append_only_given = ARG_GIVEN(8);
	if (ARG_GIVEN(8))
		args.append_only = PG_GETARG_BOOL(8);
	args.pooler_compatibility_mode_given = ARG_GIVEN(9);
	if (ARG_GIVEN(9))
		args.pooler_compatibility_mode = PG_GETARG_BOOL(9);
	args.partition_by = text_arg(fcinfo, 14);
	args.max_differential_joins_given = ARG_GIVEN(15);
	if (ARG_GIVEN(15))
		args.max_differential_joins = PG_GETARG_INT32(15);
	args.max_delta_fraction_given = ARG_GIVEN(16);
	if (ARG_GIVEN(16))
		args.max_delta_fraction = PG_GETARG_FLOAT8(16);

	pgt_st_alter(name, query, &args, status);
	PG_RETURN_VOID();
}

Datum
pgt_drop_stream_table(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cascade must not be null")));
	pgt_st_drop(name_arg(fcinfo, 0), PG_GETARG_BOOL(1));
	PG_RETURN_VOID();
}

Datum
pgt_refresh_stream_table(PG_FUNCTION_ARGS)
{
	pgt_st_refresh(name_arg(fcinfo, 0));
	PG_RETURN_VOID();
}

Datum
pgt_resume_stream_table(PG_FUNCTION_ARGS)
{
	pgt_st_resume(name_arg(fcinfo, 0));
	PG_RETURN_VOID();
}

Datum
pgt_export_definition(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pgt_st_export_definition(name_arg(fcinfo, 0))));
}

Datum
pgt_repair_stream_table(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pgt_st_repair(name_arg(fcinfo, 0))));
}

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static char *
name_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream table name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}
