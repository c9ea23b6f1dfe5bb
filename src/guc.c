/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Definition of every pg_trickle.* setting.
 *
 *	  pgt_guc_init() runs from _PG_init whether or not the library is
 *	  preloaded, so that SET pg_trickle.* works in any session.  Definitions
 *	  are sorted by name.  Settings that
 *	  only the scheduler reads are PGC_SIGHUP; per-session behaviour is
 *	  PGC_USERSET; anything that widens what a refresh may do is PGC_SUSET.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>

#include "utils/guc.h"

#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/scheduler.h"

bool		pgt_block_source_ddl = true;
bool		pgt_enabled = true;
int			pgt_scheduler_interval_ms = 1000;
int			pgt_min_schedule_seconds = 1;
int			pgt_default_schedule_seconds = 1;
int			pgt_max_consecutive_errors = 3;
char	   *pgt_cdc_mode = NULL;
double		pgt_differential_max_change_ratio = 0.15;
int			pgt_volatile_function_policy = PGT_VOLATILE_REJECT;
int			pgt_ivm_topk_max_limit = 1000;
int			pgt_max_grouping_set_branches = 64;
int			pgt_history_retention_days = 90;
bool		pgt_parallel_refresh_mode = true;
int			pgt_max_concurrent_refreshes = 4;
int			pgt_max_dynamic_refresh_workers = 4;
bool		pgt_auto_backoff = true;
char	   *pgt_test_waitpoint = NULL;

static const struct config_enum_entry volatile_policy_options[] = {
	{"reject", PGT_VOLATILE_REJECT, false},
	{"warn", PGT_VOLATILE_WARN, false},
	{"allow", PGT_VOLATILE_ALLOW, false},
	{NULL, 0, false}
};

static bool check_cdc_mode(char **newval, void **extra, GucSource source);

/*
 * pgt_guc_init defines every pg_trickle.* GUC and reserves the prefix.
 */
void
pgt_guc_init(void)
{
	DefineCustomBoolVariable("pg_trickle.block_source_ddl",
							 gettext_noop("Refuses DDL that would break stream tables reading a table."),
							 gettext_noop("Dropping, retyping or renaming columns of a source, and renaming a source."),
							 &pgt_block_source_ddl,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_trickle.auto_backoff",
							 gettext_noop("Stretches the schedule of a stream table whose refresh takes about as long as its interval."),
							 gettext_noop("The interval doubles (up to 8 times) while a refresh takes more than 95% of it, and halves again once refreshes take less than 45%."),
							 &pgt_auto_backoff,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_trickle.cdc_mode",
							   gettext_noop("Default change-capture mechanism for new stream tables."),
							   gettext_noop("One of auto, trigger or wal.  Only trigger-based capture is implemented; auto uses triggers."),
							   &pgt_cdc_mode,
							   "auto",
							   PGC_SUSET,
							   0,
							   check_cdc_mode, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.default_schedule_seconds",
							gettext_noop("Refresh interval of a 'calculated' stream table that no other stream table reads."),
							NULL,
							&pgt_default_schedule_seconds,
							1, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("pg_trickle.differential_max_change_ratio",
							 gettext_noop("Pending changes per source row above which AUTO refreshes FULL."),
							 NULL,
							 &pgt_differential_max_change_ratio,
							 0.15, 0.0, DBL_MAX,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_trickle.enabled",
							 gettext_noop("Lets the scheduler refresh stream tables."),
							 gettext_noop("Change capture keeps running when this is off."),
							 &pgt_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.history_retention_days",
							gettext_noop("Days of refresh history to keep."),
							NULL,
							&pgt_history_retention_days,
							90, 0, 36500,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.max_consecutive_errors",
							gettext_noop("Failed refreshes in a row after which a stream table goes to status ERROR."),
							NULL,
							&pgt_max_consecutive_errors,
							3, 1, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.max_concurrent_refreshes",
							gettext_noop("Refreshes one database's scheduler runs at the same time, itself included."),
							gettext_noop("Independent stream tables beyond the first are handed to dynamic background workers.  Can be set per database."),
							&pgt_max_concurrent_refreshes,
							4, 1, PGT_MAX_REFRESH_JOBS,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.max_dynamic_refresh_workers",
							gettext_noop("Dynamic refresh workers running at the same time, in all databases together."),
							gettext_noop("Each also takes one of max_worker_processes."),
							&pgt_max_dynamic_refresh_workers,
							4, 0, PGT_MAX_REFRESH_JOBS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.min_schedule_seconds",
							gettext_noop("Shortest duration schedule a stream table may have."),
							NULL,
							&pgt_min_schedule_seconds,
							1, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_trickle.parallel_refresh_mode",
							 gettext_noop("Lets a scheduler refresh independent stream tables in parallel, in dynamic background workers."),
							 NULL,
							 &pgt_parallel_refresh_mode,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.scheduler_interval_ms",
							gettext_noop("Longest time the scheduler sleeps when nothing wakes it."),
							NULL,
							&pgt_scheduler_interval_ms,
							1000, 10, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_trickle.test_waitpoint",
							   gettext_noop("Test hook: name of a point where a refresh waits for an advisory lock."),
							   gettext_noop("At the named point a refresh takes pg_advisory_xact_lock_shared(7255, n), so a test session holding the exclusive lock can pause it.  Points: refresh-after-snapshot (n = 1), refresh-before-record (n = 2)."),
							   &pgt_test_waitpoint,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_trickle.volatile_function_policy",
							 gettext_noop("What to do with volatile functions in DIFFERENTIAL and IMMEDIATE stream tables."),
							 gettext_noop("reject refuses the query, warn accepts it with a WARNING, allow accepts it silently."),
							 &pgt_volatile_function_policy,
							 PGT_VOLATILE_REJECT,
							 volatile_policy_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.ivm_topk_max_limit",
							gettext_noop("Largest LIMIT of an ORDER BY ... LIMIT query maintained in IMMEDIATE mode."),
							gettext_noop("Checked when a stream table becomes IMMEDIATE: every write may rewrite that many rows."),
							&pgt_ivm_topk_max_limit,
							1000, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_trickle.max_grouping_set_branches",
							gettext_noop("Most grouping sets a GROUPING SETS, ROLLUP or CUBE query may expand to and still be maintained incrementally."),
							gettext_noop("Each grouping set is maintained as one branch of a UNION ALL."),
							&pgt_max_grouping_set_branches,
							64, 1, 4096,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_trickle");
}

static bool
check_cdc_mode(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL)
		return true;
	if (pg_strcasecmp(*newval, "auto") == 0 ||
		pg_strcasecmp(*newval, "trigger") == 0 ||
		pg_strcasecmp(*newval, "wal") == 0)
		return true;
	GUC_check_errdetail("pg_trickle.cdc_mode must be auto, trigger or wal.");
	return false;
}
