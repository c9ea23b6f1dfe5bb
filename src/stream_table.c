/*-------------------------------------------------------------------------
 *
 * stream_table.c
 *	  Creating, changing and dropping stream tables.
 *
 *	  Every function here runs in the caller's transaction and either
 *	  completes or errors; an error aborts the transaction, so a failed call
 *	  leaves no table, trigger, catalog row or dependency behind.
 *
 *	  Settings are validated in one place (apply_settings) for create and
 *	  alter alike.  The refresh mode a stream table actually uses is decided
 *	  by resolve_refresh_mode from the query and the requested mode, and the
 *	  reason for any difference is stored so explain_refresh_mode() can show
 *	  it.
 *
 *	  Locking: an existing stream table is located with its storage table
 *	  locked (AccessExclusiveLock when its storage may be replaced), then its
 *	  catalog row is locked FOR UPDATE, the same lock a refresh takes.
 *
 * IDENTIFICATION
 *	  src/stream_table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "optimizer/optimizer.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "utils/inval.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "catalog/pg_trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/cdc.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/schedule.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/stream_table.h"
#include "pg_trickle/util.h"

static Oid	resolve_rv(RangeVar *rv, const char *name, LOCKMODE lockmode,
					   bool require_owner);
static void apply_settings(PgtSettings *s, PgtSettingsArgs *args,
						   const char *stname, bool creating);
static List *resolve_refresh_mode(PgtStreamTable *st, PgtAnalysis *analysis,
								  bool new_query,
								  const char *stname, bool quiet);
static const char *differential_blocker(PgtAnalysis *analysis,
										List **captured);
static void install_capture(List *captured);
static void setup_maintenance(PgtStreamTable *st, List *cap, bool was_immediate);
static void warn_volatile(PgtAnalysis *analysis, const char *stname);
static void check_topk_limit(PgtAnalysis *analysis, const char *stname);
static void fill_identity(PgtStreamTable *st, PgtAnalysis *analysis);
static void check_no_cycle(Oid relid, PgtAnalysis *analysis,
						   const char *stname);
static bool reaches(Oid from, Oid target, List **path);
static void replace_query(PgtStreamTable *st, PgtAnalysis *analysis,
						  const char *query, const char *stname);
static bool settings_equal(const PgtSettings *a, const PgtSettings *b);
static bool str_equal(const char *a, const char *b);
static void drop_recursive(Oid relid, bool cascade);
static void check_can_read(PgtAnalysis *analysis);
static void record_definition(PgtStreamTable *st);
static void lock_immediate_for_change(RangeVar *rv);
static void check_can_capture(List *captured, const char *effective,
							  const char *requested, const char *stname);

/*
 * pgt_st_create creates stream table name defined by query.
 *
 * kind says what to do if a stream table of that name exists: error,
 * nothing (with a NOTICE), or bring it to the new definition.
 */
void
pgt_st_create(const char *name, const char *query, PgtSettingsArgs *args,
			  bool initialize, PgtCreateKind kind)
{
	RangeVar   *rv = pgt_parse_name(name);
	Oid			nspid;
	Oid			existing;
	PgtAnalysis *analysis;
	PgtStreamTable *st;
	List	   *captured;

	pgt_refuse_read_only("create", name);
	nspid = RangeVarGetAndCheckCreationNamespace(rv, NoLock, &existing);
	if (isAnyTempNamespace(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream table \"%s\" cannot be created in a temporary schema",
						rv->relname)));

	if (OidIsValid(existing))
	{
		bool		is_st = pgt_catalog_is_stream_table(existing);

		if (!is_st)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("relation \"%s\" already exists", rv->relname),
					 errdetail("It is not a stream table.")));
		if (kind == PGT_CREATE)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("stream table \"%s\" already exists", rv->relname),
					 errhint("Use create_or_replace_stream_table() to change it, or create_stream_table_if_not_exists() to skip it.")));
		if (kind == PGT_CREATE_IF_NOT_EXISTS)
		{
			ereport(NOTICE,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("stream table \"%s\" already exists, skipping",
							rv->relname)));
			return;
		}

		/* create or replace */
		{
			PgtStreamTable *cur;
			PgtSettings new_settings;

			lock_immediate_for_change(rv);
			existing = resolve_rv(rv, name, AccessExclusiveLock, true);
			cur = pgt_catalog_get(existing, true);
			if (strcmp(cur->effective_refresh_mode, "IMMEDIATE") == 0)
				pgt_ivm_lock(existing);
			analysis = pgt_analyze_query(query, rv->relname);
			pgt_warn_ignored_order(analysis, rv->relname);
			new_settings = cur->settings;
			/* unlike alter, every setting takes its given or default value */
			memset(&new_settings, 0, sizeof(new_settings));
			apply_settings(&new_settings, args, rv->relname, true);

			if (strcmp(analysis->defining_query, cur->defining_query) == 0 &&
				settings_equal(&new_settings, &cur->settings))
			{
				ereport(NOTICE,
						(errmsg("stream table \"%s\" already has this definition, skipping",
								rv->relname)));
				return;
			}
			cur->settings = new_settings;
			if (strcmp(analysis->defining_query, cur->defining_query) != 0)
			{
				check_no_cycle(existing, analysis, rv->relname);
				check_can_read(analysis);
				replace_query(cur, analysis, query, rv->relname);
			}
			else
			{
				bool		was_full = strcmp(cur->effective_refresh_mode, "FULL") == 0;
				bool		was_immediate = strcmp(cur->effective_refresh_mode, "IMMEDIATE") == 0;
				List	   *cap = resolve_refresh_mode(cur, analysis, false, rv->relname, false);

				if (was_full && cap != NIL)
					pgt_catalog_set_needs_reinit(cur->pgt_id);
				pgt_catalog_update_definition(cur);
				pgt_catalog_set_sources(cur->pgt_id, analysis->sources, cap);
				setup_maintenance(cur, cap, was_immediate);
			}
			record_definition(cur);
			return;
		}
	}

	analysis = pgt_analyze_query(query, rv->relname);
	pgt_warn_ignored_order(analysis, rv->relname);
	check_can_read(analysis);

	st = palloc0(sizeof(PgtStreamTable));
	apply_settings(&st->settings, args, rv->relname, true);
	captured = resolve_refresh_mode(st, analysis, true, rv->relname, false);
	fill_identity(st, analysis);

	st->relid = pgt_storage_create(nspid, rv->relname, analysis);
	st->name = rv->relname;
	st->schema = get_namespace_name(nspid);
	st->defining_query = analysis->defining_query;
	st->original_query = pstrdup(query);
	pgt_catalog_insert(st);
	pgt_catalog_set_sources(st->pgt_id, analysis->sources, captured);
	record_definition(st);
	if (strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
		install_capture(captured);
	else if (strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
		pgt_ivm_sync();

	/* make the new catalog rows visible to the refresh */
	CommandCounterIncrement();

	/* writers maintain an IMMEDIATE one from now on: it must start full */
	if (initialize || strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
		pgt_refresh_run(st->relid, PGT_INITIATED_INITIAL, true);
	else
		pgt_catalog_set_status(st->pgt_id, "ACTIVE", false);
}

/*
 * pgt_st_alter changes the query, settings or status of stream table name.
 * Arguments not given are left as they are.
 */
void
pgt_st_alter(const char *name, const char *query, PgtSettingsArgs *args,
			 const char *status)
{
	Oid			relid;
	PgtStreamTable *st;
	char	   *stname;
	char	   *new_status = NULL;
	RangeVar   *rv;

	pgt_refuse_read_only("alter", name);
	rv = pgt_parse_name(name);
	lock_immediate_for_change(rv);
	relid = resolve_rv(rv, name, query ? AccessExclusiveLock : ShareUpdateExclusiveLock,
					   true);
	stname = pgt_relation_display_name(relid);
	st = pgt_catalog_get(relid, true);
	/* writers maintaining it wait, and see the new definition afterwards */
	if (strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
		pgt_ivm_lock(relid);

	apply_settings(&st->settings, args, stname, false);

	if (status != NULL)
	{
		if (strcmp(status, "ACTIVE") == 0 || strcmp(status, "SUSPENDED") == 0)
			new_status = pstrdup(status);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid status \"%s\" for stream table \"%s\"",
							status, stname),
					 errhint("Use 'ACTIVE' or 'SUSPENDED'.")));
	}

	if (query != NULL)
	{
		PgtAnalysis *analysis = pgt_analyze_query(query, stname);

		pgt_warn_ignored_order(analysis, stname);
		check_no_cycle(relid, analysis, stname);
		check_can_read(analysis);
		replace_query(st, analysis, query, stname);
	}
	else
	{
		PgtAnalysis *analysis = pgt_analyze_query(st->defining_query, stname);
		bool		was_full = strcmp(st->effective_refresh_mode, "FULL") == 0;
		bool		was_immediate = strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0;
		List	   *cap = resolve_refresh_mode(st, analysis, false, stname, false);

		pgt_catalog_update_definition(st);
		pgt_catalog_set_sources(st->pgt_id, analysis->sources, cap);
		/* nothing was captured while FULL: the next refresh must be FULL */
		if (was_full && cap != NIL)
			pgt_catalog_set_needs_reinit(st->pgt_id);
		setup_maintenance(st, cap, was_immediate);
	}

	if (new_status != NULL)
		pgt_catalog_set_status(st->pgt_id, new_status,
							   strcmp(new_status, "ACTIVE") == 0);
	record_definition(st);
}

/*
 * pgt_st_drop drops stream table name; with cascade, the stream tables (and
 * other objects) that read it go first.
 */
void
pgt_st_drop(const char *name, bool cascade)
{
	Oid			relid;
	RangeVar   *rv;

	pgt_refuse_read_only("drop", name);
	rv = pgt_parse_name(name);
	lock_immediate_for_change(rv);
	relid = resolve_rv(rv, name, AccessExclusiveLock, true);
	drop_recursive(relid, cascade);
	pgt_cdc_release_unused();
	pgt_ivm_sync();
}

static void
drop_recursive(Oid relid, bool cascade)
{
	List	   *readers = pgt_catalog_readers_of(relid);
	ListCell   *lc;

	if (readers != NIL && !cascade)
	{
		StringInfoData detail;

		initStringInfo(&detail);
		foreach(lc, readers)
			appendStringInfo(&detail, "%sStream table \"%s\" reads \"%s\".",
							 detail.len > 0 ? "  " : "",
							 pgt_relation_display_name(lfirst_oid(lc)),
							 pgt_relation_display_name(relid));
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop stream table \"%s\" because other stream tables read it",
						pgt_relation_display_name(relid)),
				 errdetail_internal("%s", detail.data),
				 errhint("Drop them first, or call drop_stream_table() with cascade => true.")));
	}

	foreach(lc, readers)
	{
		if (!pgt_compat_class_ownercheck(lfirst_oid(lc), GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE,
						   get_rel_name(lfirst_oid(lc)));
		drop_recursive(lfirst_oid(lc), cascade);
	}

	pgt_catalog_delete(relid);
	pgt_storage_drop(relid, cascade);
}

/*
 * pgt_st_refresh refreshes stream table name now, as its owner asked.
 */
void
pgt_st_refresh(const char *name)
{
	Oid			relid;

	pgt_refuse_read_only("refresh", name);
	relid = pgt_st_resolve(name, RowExclusiveLock, true);

	pgt_refresh_run(relid, PGT_INITIATED_MANUAL, false);
}

/*
 * pgt_st_resume sets stream table name back to ACTIVE with no errors.
 */
void
pgt_st_resume(const char *name)
{
	Oid			relid;
	PgtStreamTable *st;

	pgt_refuse_read_only("resume", name);
	relid = pgt_st_resolve(name, ShareUpdateExclusiveLock, true);
	st = pgt_catalog_get(relid, true);

	pgt_catalog_set_status(st->pgt_id, "ACTIVE", true);
}

/*
 * pgt_st_export_definition returns a create_stream_table() call that
 * recreates stream table name with its current query and settings.
 */
char *
pgt_st_export_definition(const char *name)
{
	Oid			relid = pgt_st_resolve(name, AccessShareLock, false);
	PgtStreamTable *st = pgt_catalog_get(relid, false);
	PgtSettings *s = &st->settings;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "SELECT pgtrickle.create_stream_table(\n"
					 "    name => %s,\n"
					 "    query => %s,\n"
					 "    schedule => %s,\n"
					 "    refresh_mode => %s",
					 quote_literal_cstr(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																   get_rel_name(relid))),
					 quote_literal_cstr(st->defining_query),
					 s->schedule ? quote_literal_cstr(s->schedule) :
					 (strcmp(s->refresh_mode, "IMMEDIATE") == 0 ? "NULL" : "'calculated'"),
					 quote_literal_cstr(s->refresh_mode));
	if (strcmp(s->diamond_consistency, "atomic") != 0)
		appendStringInfo(&buf, ",\n    diamond_consistency => %s",
						 quote_literal_cstr(s->diamond_consistency));
	if (strcmp(s->diamond_schedule_policy, "fastest") != 0)
		appendStringInfo(&buf, ",\n    diamond_schedule_policy => %s",
						 quote_literal_cstr(s->diamond_schedule_policy));
	if (s->cdc_mode)
		appendStringInfo(&buf, ",\n    cdc_mode => %s",
						 quote_literal_cstr(s->cdc_mode));
	if (s->append_only)
		appendStringInfoString(&buf, ",\n    append_only => true");
	if (s->pooler_compatibility_mode)
		appendStringInfoString(&buf, ",\n    pooler_compatibility_mode => true");
	if (s->partition_by)
		appendStringInfo(&buf, ",\n    partition_by => %s",
						 quote_literal_cstr(s->partition_by));
	if (!s->max_differential_joins_isnull)
		appendStringInfo(&buf, ",\n    max_differential_joins => %d",
						 s->max_differential_joins);
	if (!s->max_delta_fraction_isnull)
		appendStringInfo(&buf, ",\n    max_delta_fraction => %s",
						 float8out_internal(s->max_delta_fraction));
	appendStringInfoString(&buf, "\n);");
	return buf.data;
}

/*
 * lock_immediate_for_change takes, for a definition change or drop of
 * stream table name when it is IMMEDIATE and owned by the current user,
 * the locks its writers take, in their order: its sources, then its
 * maintenance lock (see pgt_ivm_lock_sources).  The caller then locks the
 * stream table itself.
 */
static void
lock_immediate_for_change(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	PgtStreamTable *st;

	if (!OidIsValid(relid) || !pgt_catalog_is_stream_table(relid) ||
		!pgt_compat_class_ownercheck(relid, GetUserId()))
		return;					/* pgt_st_resolve says why */
	st = pgt_catalog_get(relid, false);
	if (st == NULL || strcmp(st->effective_refresh_mode, "IMMEDIATE") != 0)
		return;
	pgt_ivm_lock_sources(relid);
	pgt_ivm_lock(relid);
}

/*
 * pgt_st_resolve returns the OID of stream table name, locked with
 * lockmode.  Errors if there is no such relation, if it is not a stream
 * table, or (with require_owner) if the current user does not own it.
 */
Oid
pgt_st_resolve(const char *name, LOCKMODE lockmode, bool require_owner)
{
	return resolve_rv(pgt_parse_name(name), name, lockmode, require_owner);
}

/* resolve_rv is pgt_st_resolve for a name parsed into rv already */
static Oid
resolve_rv(RangeVar *rv, const char *name, LOCKMODE lockmode,
		   bool require_owner)
{
	Oid			relid = RangeVarGetRelid(rv, lockmode, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("stream table \"%s\" does not exist", name)));
	if (!pgt_catalog_is_stream_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a stream table", name)));
	if (require_owner && !pgt_compat_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	return relid;
}

/*
 * apply_settings validates args and writes the given ones into s.  When
 * creating, settings not given take their defaults.
 */
static void
apply_settings(PgtSettings *s, PgtSettingsArgs *args, const char *stname,
			   bool creating)
{
	const char *mode = args->refresh_mode ? args->refresh_mode :
		(creating ? "AUTO" : s->refresh_mode);

	if (strcmp(mode, "AUTO") != 0 && strcmp(mode, "FULL") != 0 &&
		strcmp(mode, "DIFFERENTIAL") != 0 && strcmp(mode, "IMMEDIATE") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid refresh mode \"%s\" for stream table \"%s\"",
						mode, stname),
				 errhint("Use 'AUTO', 'FULL', 'DIFFERENTIAL' or 'IMMEDIATE'.")));
	s->refresh_mode = pstrdup(mode);

	if (strcmp(mode, "IMMEDIATE") == 0)
	{
		/* maintained by the writing transaction: no schedule applies */
		s->schedule = NULL;
	}
	else if (args->schedule_given || creating)
	{
		PgtSchedule sched;
		char	   *detail = NULL;

		if (args->schedule == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schedule of stream table \"%s\" must not be null",
							stname),
					 errhint("Use a duration such as '30s', a cron expression, or 'calculated'.")));
		if (!pgt_schedule_parse(args->schedule, &sched, &detail))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid schedule \"%s\" for stream table \"%s\"",
							args->schedule, stname),
					 errdetail_internal("%s", detail),
					 errhint("Use a duration such as '30s', '5m' or '1h30m', a cron expression such as '*/5 * * * *', or 'calculated'.")));
		if (sched.kind == PGT_SCHEDULE_INTERVAL &&
			sched.interval_seconds < pgt_min_schedule_seconds)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schedule \"%s\" of stream table \"%s\" is shorter than pg_trickle.min_schedule_seconds (%d)",
							args->schedule, stname, pgt_min_schedule_seconds)));
		s->schedule = sched.kind == PGT_SCHEDULE_CALCULATED ? NULL :
			pgt_schedule_to_text(&sched);
	}

	if (args->diamond_consistency)
	{
		if (strcmp(args->diamond_consistency, "atomic") != 0 &&
			strcmp(args->diamond_consistency, "none") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid diamond_consistency \"%s\" for stream table \"%s\"",
							args->diamond_consistency, stname),
					 errhint("Use 'atomic' or 'none'.")));
		s->diamond_consistency = pstrdup(args->diamond_consistency);
	}
	else if (creating)
		s->diamond_consistency = "atomic";

	if (args->diamond_schedule_policy)
	{
		if (strcmp(args->diamond_schedule_policy, "fastest") != 0 &&
			strcmp(args->diamond_schedule_policy, "slowest") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid diamond_schedule_policy \"%s\" for stream table \"%s\"",
							args->diamond_schedule_policy, stname),
					 errhint("Use 'fastest' or 'slowest'.")));
		s->diamond_schedule_policy = pstrdup(args->diamond_schedule_policy);
	}
	else if (creating)
		s->diamond_schedule_policy = "fastest";

	if (args->cdc_mode)
	{
		if (strcmp(args->cdc_mode, "auto") != 0 &&
			strcmp(args->cdc_mode, "trigger") != 0 &&
			strcmp(args->cdc_mode, "wal") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid cdc_mode \"%s\" for stream table \"%s\"",
							args->cdc_mode, stname),
					 errhint("Use 'auto', 'trigger' or 'wal'.")));
		if (strcmp(args->cdc_mode, "wal") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cdc_mode 'wal' is not supported"),
					 errdetail("pg_trickle captures changes with triggers only."),
					 errhint("Use 'auto' or 'trigger'.")));
		s->cdc_mode = pstrdup(args->cdc_mode);
	}
	else if (creating)
		s->cdc_mode = NULL;

	if (args->append_only_given)
		s->append_only = args->append_only;
	if (args->pooler_compatibility_mode_given)
		s->pooler_compatibility_mode = args->pooler_compatibility_mode;

	if (args->partition_by)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("partition_by is not supported"),
				 errdetail("Stream table storage is not partitioned in this version.")));

	if (args->max_differential_joins_given)
	{
		if (args->max_differential_joins < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_differential_joins must not be negative")));
		s->max_differential_joins_isnull = false;
		s->max_differential_joins = args->max_differential_joins;
	}
	else if (creating)
		s->max_differential_joins_isnull = true;

	if (args->max_delta_fraction_given)
	{
		if (!(args->max_delta_fraction > 0.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_delta_fraction must be greater than zero")));
		s->max_delta_fraction_isnull = false;
		s->max_delta_fraction = args->max_delta_fraction;
	}
	else if (creating)
		s->max_delta_fraction_isnull = true;
}

/*
 * resolve_refresh_mode sets st's effective refresh mode from its requested
 * mode and what the query allows, erroring when an explicitly requested
 * mode cannot be honoured.  Returns the sources whose changes must be
 * captured (PgtDeltaSource *; NIL for FULL).  With new_query (create, a
 * new query, repair), or when the effective mode changes, the caller must
 * be allowed to put triggers on those sources (check_can_capture).
 */
static List *
resolve_refresh_mode(PgtStreamTable *st, PgtAnalysis *analysis, bool new_query,
					 const char *stname, bool quiet)
{
	const char *mode = st->settings.refresh_mode;
	const char *old_mode = st->effective_refresh_mode;
	List	   *captured = NIL;
	const char *blocker = differential_blocker(analysis, &captured);

	st->refresh_mode_reason = NULL;

	if (strcmp(mode, "FULL") == 0)
		st->effective_refresh_mode = "FULL";
	else if (strcmp(mode, "AUTO") == 0)
	{
		if (blocker == NULL && !quiet)
			warn_volatile(analysis, stname);
		if (blocker != NULL)
		{
			st->effective_refresh_mode = "FULL";
			st->refresh_mode_reason = pstrdup(blocker);
			if (!quiet)
				ereport(NOTICE,
						(errmsg("stream table \"%s\" will be refreshed FULL", stname),
						 errdetail_internal("%s", blocker)));
		}
		else
			st->effective_refresh_mode = "DIFFERENTIAL";
	}
	else if (strcmp(mode, "DIFFERENTIAL") == 0 || strcmp(mode, "IMMEDIATE") == 0)
	{
		if (blocker == NULL && !quiet)
			warn_volatile(analysis, stname);
		if (blocker != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("stream table \"%s\" cannot be maintained in %s mode",
							stname, mode),
					 errdetail_internal("%s", blocker),
					 errhint("Create it with refresh_mode => 'FULL' or 'AUTO'.")));
		if (strcmp(mode, "IMMEDIATE") == 0)
			check_topk_limit(analysis, stname);
		st->effective_refresh_mode = pstrdup(mode);
	}
	if (strcmp(st->effective_refresh_mode, "FULL") == 0)
		return NIL;
	if (new_query || old_mode == NULL || strcmp(old_mode, st->effective_refresh_mode) != 0)
		check_can_capture(captured, st->effective_refresh_mode, mode, stname);
	return captured;
}

/*
 * check_can_capture refuses, as CREATE TRIGGER would, when the current role
 * may not create triggers on a table in captured (the base tables below the
 * query's views, and the storage of stream tables it reads): an incremental
 * stream table puts capture or IMMEDIATE triggers there, which run on every
 * write to the table and could make those writes fail or wait.  Checked
 * even when the triggers exist already (another stream table made them):
 * what the new stream table adds to every write is its own maintenance.
 */
static void
check_can_capture(List *captured, const char *effective, const char *requested,
				  const char *stname)
{
	ListCell   *lc;

	foreach(lc, captured)
	{
		PgtDeltaSource *src = lfirst(lc);

		if (pg_class_aclcheck(src->relid, GetUserId(), ACL_TRIGGER) == ACLCHECK_OK)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to maintain stream table \"%s\" from table \"%s\"",
						stname, pgt_relation_display_name(src->relid)),
				 errdetail("Stream tables maintained in %s mode%s put triggers on their sources, which needs the TRIGGER privilege on the table or its ownership, as CREATE TRIGGER does.",
						   effective,
						   strcmp(effective, requested) == 0 ? "" : " (chosen by refresh_mode AUTO)"),
				 errhint("GRANT TRIGGER ON %s TO %s, or use refresh_mode => 'FULL'.",
						 pgt_qualified_name(src->relid),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
	}
}

/*
 * check_topk_limit refuses an IMMEDIATE ORDER BY ... LIMIT n with n above
 * pg_trickle.ivm_topk_max_limit: a write may rewrite the top n rows.
 */
static void
check_topk_limit(PgtAnalysis *analysis, const char *stname)
{
	Query	   *q = analysis->query;
	Node	   *limit;
	Const	   *c;
	int64		n;

	if (q->limitCount == NULL)
		return;
	/* LIMIT 3 is int8(3) until folded */
	limit = eval_const_expressions(NULL, copyObject(q->limitCount));
	if (!IsA(limit, Const))
		return;
	c = (Const *) limit;
	if (c->constisnull)
		return;
	n = DatumGetInt64(c->constvalue);
	/* with OFFSET m a write may rewrite the first n + m rows' worth */
	if (q->limitOffset != NULL)
	{
		Node	   *off = eval_const_expressions(NULL, copyObject(q->limitOffset));

		if (IsA(off, Const) && !((Const *) off)->constisnull)
			n += DatumGetInt64(((Const *) off)->constvalue);
	}
	if (n > pgt_ivm_topk_max_limit)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream table \"%s\" cannot be maintained in IMMEDIATE mode",
						stname),
				 errdetail("Its LIMIT (plus OFFSET) %lld exceeds pg_trickle.ivm_topk_max_limit (%d): every write could rewrite that many rows.",
						   (long long) n, pgt_ivm_topk_max_limit),
				 errhint("Raise pg_trickle.ivm_topk_max_limit, or use refresh_mode => 'DIFFERENTIAL'.")));
}

/*
 * warn_volatile warns, under volatile_function_policy = warn, that a
 * differentially maintained query calls a volatile function.
 */
static void
warn_volatile(PgtAnalysis *analysis, const char *stname)
{
	if (analysis->has_volatile && pgt_volatile_function_policy == PGT_VOLATILE_WARN)
		ereport(WARNING,
				(errmsg("stream table \"%s\" calls volatile function %s()",
						stname, analysis->volatile_name),
				 errdetail("Rows are maintained from the values the function returned when each change was applied, so they can differ from a fresh run of the query.")));
}

/*
 * install_capture sets up change capture for every source in captured, for
 * the current user as reader.
 */
static void
install_capture(List *captured)
{
	ListCell   *lc;

	foreach(lc, captured)
	{
		PgtDeltaSource *src = lfirst(lc);

		pgt_cdc_ensure_capture(src->relid, src->attnums, true);
	}
}

/*
 * setup_maintenance gives st, whose effective mode was just set, what that
 * mode needs: change capture (DIFFERENTIAL) or IMMEDIATE triggers, and
 * drops what no stream table needs any more.  Switching to or from
 * IMMEDIATE recomputes st in this transaction, after the sources were
 * locked against writers by the trigger changes: no change is missed or
 * applied twice across the switch.
 */
static void
setup_maintenance(PgtStreamTable *st, List *cap, bool was_immediate)
{
	bool		immediate = strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0;

	if (strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
		install_capture(cap);
	pgt_ivm_sync();
	pgt_cdc_release_unused();
	if (immediate != was_immediate)
	{
		pgt_ivm_forget(st->relid);
		CommandCounterIncrement();
		pgt_refresh_run(st->relid, PGT_INITIATED_MANUAL, true);
	}
}

/*
 * differential_blocker returns a sentence saying why analysis cannot be
 * maintained incrementally, or NULL if it can.
 */
static const char *
differential_blocker(PgtAnalysis *analysis, List **captured)
{
	const char *blocker;

	if (analysis->has_volatile && pgt_volatile_function_policy == PGT_VOLATILE_REJECT)
		return psprintf("The query calls volatile function %s(), and pg_trickle.volatile_function_policy is reject.",
						analysis->volatile_name);
	if (analysis->time_function != NULL)
		return psprintf("The query reads the clock through %s: its result changes without any change to its sources.",
						analysis->time_function);
	blocker = pgt_dvm_blocker(analysis->query, captured);
	if (blocker == NULL)
		blocker = pgt_dvm_size_blocker(analysis->query, analysis, *captured);
	return blocker;
}

static void
fill_identity(PgtStreamTable *st, PgtAnalysis *analysis)
{
	ListCell   *lc;

	st->identity = analysis->identity;
	st->identity_columns = NIL;
	foreach(lc, analysis->columns)
	{
		PgtColumn  *col = lfirst(lc);

		if (analysis->identity == PGT_IDENTITY_ALL_COLUMNS || col->is_key)
			st->identity_columns = lappend(st->identity_columns, col->name);
	}
	if (analysis->identity == PGT_IDENTITY_SINGLETON)
		st->identity_columns = NIL;
}

/*
 * replace_query gives st a new defining query: the storage table is kept
 * when its columns fit the new query and rebuilt otherwise, then the stream
 * table is refreshed FULL.
 */
static void
replace_query(PgtStreamTable *st, PgtAnalysis *analysis, const char *query,
			  const char *stname)
{
	bool		keep;
	List	   *cap;
	List	   *old_key = st->identity == PGT_IDENTITY_GROUP_KEY ?
		st->identity_columns : NIL;

	cap = resolve_refresh_mode(st, analysis, true, stname, false);
	keep = pgt_storage_matches(st->relid, analysis) &&
		st->identity == analysis->identity;
	fill_identity(st, analysis);
	st->defining_query = analysis->defining_query;
	st->original_query = pstrdup(query);

	if (keep)
		pgt_storage_record_dependencies(st->relid, analysis->sources);
	else
	{
		Oid			old_relid = st->relid;
		Oid			nspid = get_rel_namespace(old_relid);
		char	   *relname = get_rel_name(old_relid);
		char	   *tmpname = psprintf("__pgt_new_%u", old_relid);
		char	   *sql;
		PgtStorageKeep *kept = pgt_storage_keep_save(old_relid, old_key);

		/*
		 * Build the new storage beside the old one, point the catalog at it,
		 * then drop the old table (its catalog row is gone, so the drop
		 * event trigger leaves the catalog alone), take over the name and
		 * what was attached to the old table (keep.c).
		 */
		st->relid = pgt_storage_create(nspid, tmpname, analysis);
		{
			HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(old_relid));
			Oid			owner;
			char	   *own;

			if (!HeapTupleIsValid(ctup))
				elog(ERROR, "cache lookup failed for relation %u", old_relid);
			owner = ((Form_pg_class) GETSTRUCT(ctup))->relowner;
			ReleaseSysCache(ctup);
			own = psprintf("ALTER TABLE %s OWNER TO %s",
									   quote_qualified_identifier(get_namespace_name(nspid), tmpname),
									   quote_identifier(GetUserNameFromId(owner, false)));

			if (owner != GetUserId())
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				pgt_spi_exec(own, SPI_OK_UTILITY);
				SPI_finish();
			}
		}
		pgt_catalog_update_definition(st);
		pgt_storage_drop(old_relid, false);
		sql = psprintf("ALTER TABLE %s RENAME TO %s",
					   quote_qualified_identifier(get_namespace_name(nspid), tmpname),
					   quote_identifier(relname));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		pgt_spi_exec(sql, SPI_OK_UTILITY);
		SPI_finish();
		CommandCounterIncrement();
		pgt_storage_keep_restore(kept, st->relid, stname);
		ereport(NOTICE,
				(errmsg("storage of stream table \"%s\" was rebuilt for the new query",
						stname)));
	}
	pgt_catalog_update_definition(st);
	pgt_catalog_set_sources(st->pgt_id, analysis->sources, cap);
	record_definition(st);
	if (strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
		install_capture(cap);
	pgt_ivm_sync();
	pgt_ivm_forget(st->relid);
	pgt_cdc_release_unused();
	if (strcmp(st->effective_refresh_mode, "FULL") != 0)
		ereport(WARNING,
				(errmsg("stream table \"%s\" is fully refreshed for its new query",
						stname)));
	CommandCounterIncrement();
	/* the new query starts from a full refresh */
	pgt_refresh_run(st->relid, PGT_INITIATED_MANUAL, true);
}

/*
 * check_no_cycle errors if giving relid the query of analysis would make
 * a stream table read itself, directly or through other stream tables.
 */
static void
check_no_cycle(Oid relid, PgtAnalysis *analysis, const char *stname)
{
	ListCell   *lc;

	foreach(lc, analysis->sources)
	{
		PgtSource  *src = lfirst(lc);
		List	   *path = NIL;

		if (src->type != PGT_SOURCE_STREAM_TABLE && src->relid != relid)
			continue;
		if (src->relid == relid || reaches(src->relid, relid, &path))
		{
			StringInfoData detail;
			ListCell   *lc2;

			initStringInfo(&detail);
			appendStringInfo(&detail, "%s", stname);
			if (src->relid != relid)
				appendStringInfo(&detail, " -> %s",
								 pgt_relation_display_name(src->relid));
			foreach(lc2, path)
				appendStringInfo(&detail, " -> %s",
								 pgt_relation_display_name(lfirst_oid(lc2)));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("stream table \"%s\" would read itself", stname),
					 errdetail("Cycle: %s.", detail.data)));
		}
	}
}

/* reaches is true if stream table from reads target through stream tables */
static bool
reaches(Oid from, Oid target, List **path)
{
	List	   *srcs = pgt_catalog_stream_sources(from);
	ListCell   *lc;

	check_stack_depth();
	foreach(lc, srcs)
	{
		Oid			s = lfirst_oid(lc);

		if (s == target || reaches(s, target, path))
		{
			*path = lcons_oid(s, *path);
			return true;
		}
	}
	return false;
}

static bool
settings_equal(const PgtSettings *a, const PgtSettings *b)
{
	return str_equal(a->schedule, b->schedule) &&
		str_equal(a->refresh_mode, b->refresh_mode) &&
		str_equal(a->diamond_consistency, b->diamond_consistency) &&
		str_equal(a->diamond_schedule_policy, b->diamond_schedule_policy) &&
		str_equal(a->cdc_mode, b->cdc_mode) &&
		a->append_only == b->append_only &&
		a->pooler_compatibility_mode == b->pooler_compatibility_mode &&
		str_equal(a->partition_by, b->partition_by) &&
		a->max_differential_joins_isnull == b->max_differential_joins_isnull &&
		a->max_differential_joins == b->max_differential_joins &&
		a->max_delta_fraction_isnull == b->max_delta_fraction_isnull &&
		a->max_delta_fraction == b->max_delta_fraction;
}

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * check_can_read errors unless the current user may run the query: it is
 * planned and started (with no rows fetched) so that the executor's own
 * privilege checks apply, views and column privileges included.  Capture
 * of a source must never expose rows its reader could not select.
 */
static void
check_can_read(PgtAnalysis *analysis)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_spi_exec(psprintf("SELECT 1 FROM (%s) AS q LIMIT 0", analysis->defining_query),
				 SPI_OK_SELECT);
	SPI_finish();
}

/*
 * pgt_st_repair reinstalls what stream table name needs (capture triggers,
 * change buffers, dependencies) and makes its next refresh FULL, for use
 * after source DDL made with pg_trickle.block_source_ddl off or objects
 * dropped by hand.  Returns a one-line description of what it did.
 */
char *
pgt_st_repair(const char *name)
{
	Oid			relid;
	char	   *stname;
	PgtStreamTable *st;
	PgtAnalysis *analysis;
	List	   *cap;

	pgt_refuse_read_only("repair", name);
	relid = pgt_st_resolve(name, ShareUpdateExclusiveLock, true);
	stname = pgt_relation_display_name(relid);
	st = pgt_catalog_get(relid, true);
	analysis = pgt_analyze_query(st->defining_query, stname);
	cap = resolve_refresh_mode(st, analysis, true, stname, true);

	pgt_catalog_update_definition(st);
	pgt_catalog_set_sources(st->pgt_id, analysis->sources, cap);
	pgt_storage_record_dependencies(relid, analysis->sources);
	install_capture(cap);
	pgt_cdc_release_unused();
	pgt_catalog_set_needs_reinit(st->pgt_id);
	record_definition(st);
	return psprintf("stream table \"%s\": %s mode, change capture checked on %d source(s); the next refresh is FULL",
					stname, st->effective_refresh_mode, list_length(cap));
}

/*
 * pgt_st_attach_restored finishes stream table relid, restored from a dump
 * (its catalog row has restore_pending; see catalog/restore.c): its query is
 * analyzed again, its sources and pg_depend links recorded, change buffers
 * created, and an IMMEDIATE one recomputed; a DIFFERENTIAL or FULL one
 * keeps needs_reinit, so its first refresh is FULL.  Returns false if relid
 * was not waiting.  One stream table at a time: a parallel pg_restore
 * creates the guard triggers of several at once.
 *
 * Triggers are not created here: pg_restore creates the dumped capture and
 * IMMEDIATE triggers itself (they find their stream tables through the
 * catalog, so their arguments do not matter), and creating one first would
 * make that statement of the restore fail.  A source that lost its
 * triggers (a partial dump) is mended by repair_stream_table().
 */
bool
pgt_st_attach_restored(Oid relid)
{
	PgtStreamTable *st = pgt_catalog_get(relid, true);
	char	   *stname;
	PgtAnalysis *analysis;
	List	   *cap;
	ListCell   *lc;

	if (st == NULL || !st->restore_pending)
		return false;
	stname = pgt_relation_display_name(relid);
	analysis = pgt_analyze_query(st->defining_query, stname);
	cap = resolve_refresh_mode(st, analysis, false, stname, true);
	fill_identity(st, analysis);
	pgt_catalog_update_definition(st);
	pgt_catalog_set_sources(st->pgt_id, analysis->sources, cap);
	pgt_storage_record_dependencies(relid, analysis->sources);
	pgt_storage_record_extension_dependency(relid);
	if (strcmp(st->effective_refresh_mode, "DIFFERENTIAL") == 0)
	{
		foreach(lc, cap)
		{
			PgtDeltaSource *src = lfirst(lc);

			pgt_cdc_ensure_capture(src->relid, src->attnums, false);
		}
	}
	else if (strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
		pgt_ivm_add_lock_row(relid);
	pgt_catalog_clear_restore_pending(st->pgt_id);
	pgt_catalog_set_needs_reinit(st->pgt_id);

	/* triggers that already fired in some backend read the catalog again */
	foreach(lc, cap)
	{
		ListCell   *lc2;

		foreach(lc2, find_all_inheritors(((PgtDeltaSource *) lfirst(lc))->relid, NoLock, NULL))
			CacheInvalidateRelcacheByRelid(lfirst_oid(lc2));
	}
	CommandCounterIncrement();

	/* writers maintain an IMMEDIATE one from now on: it must start exact */
	if (strcmp(st->effective_refresh_mode, "IMMEDIATE") == 0)
		pgt_refresh_run(relid, PGT_INITIATED_INITIAL, true);
	ereport(DEBUG1,
			(errmsg("attached restored stream table \"%s\" (%s)",
					stname, st->effective_refresh_mode)));
	return true;
}

/*
 * record_definition writes st's definition (query and settings, as JSON) as
 * the comment of its guard trigger.  The comment is schema: pg_dump
 * --schema-only carries it where the catalog rows do not go, and a restore
 * rebuilds the catalog row from it (catalog/restore.c).  COMMENT takes no
 * lock beyond what changing a stream table already holds.
 */
static void
record_definition(PgtStreamTable *st)
{
	PgtSettings *s = &st->settings;
	Oid			guard = get_trigger_oid(st->relid, "__pgt_guard", true);
	Oid			argtypes[12] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	BOOLOID, BOOLOID, TEXTOID, INT4OID, FLOAT8OID, TEXTOID};
	Datum		values[12];
	char		nulls[12];
	char	   *json;

	if (!OidIsValid(guard))
		return;
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(st->defining_query);
	values[1] = CStringGetTextDatum(s->refresh_mode);
	if (s->schedule)
		values[2] = CStringGetTextDatum(s->schedule);
	else
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(s->diamond_consistency);
	values[4] = CStringGetTextDatum(s->diamond_schedule_policy);
	if (s->cdc_mode)
		values[5] = CStringGetTextDatum(s->cdc_mode);
	else
		nulls[5] = 'n';
	values[6] = BoolGetDatum(s->append_only);
	values[7] = BoolGetDatum(s->pooler_compatibility_mode);
	if (s->partition_by)
		values[8] = CStringGetTextDatum(s->partition_by);
	else
		nulls[8] = 'n';
	values[9] = Int32GetDatum(s->max_differential_joins);
	nulls[9] = s->max_differential_joins_isnull ? 'n' : ' ';
	values[10] = Float8GetDatum(s->max_delta_fraction);
	nulls[10] = s->max_delta_fraction_isnull ? 'n' : ' ';
	values[11] = CStringGetTextDatum(st->original_query ? st->original_query : st->defining_query);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_spi_exec_args("SELECT pg_catalog.json_build_object("
					  "'pg_trickle', 1, 'query', $1, 'refresh_mode', $2, 'schedule', $3, "
					  "'diamond_consistency', $4, 'diamond_schedule_policy', $5, "
					  "'cdc_mode', $6, 'append_only', $7, 'pooler_compatibility_mode', $8, "
					  "'partition_by', $9, 'max_differential_joins', $10, "
					  "'max_delta_fraction', $11, 'original_query', $12)::text",
					  12, argtypes, values, nulls, true, SPI_OK_SELECT);
	json = MemoryContextStrdup(TopTransactionContext,
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	CreateComments(guard, TriggerRelationId, 0, json);
}
