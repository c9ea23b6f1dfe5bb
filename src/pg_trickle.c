/*-------------------------------------------------------------------------
 *
 * pg_trickle.c
 *	  Library entry point.
 *
 *	  _PG_init defines the GUCs in every session that loads the library.
 *	  Shared memory and background workers exist only when the library is
 *	  in shared_preload_libraries; manual refresh works without them.
 *
 * IDENTIFICATION
 *	  src/pg_trickle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "tcop/utility.h"
#include "storage/ipc.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/scheduler.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(pgt_version);
PG_FUNCTION_INFO_V1(pgt_scheduler_is_running);
PG_FUNCTION_INFO_V1(pgt_wake_launcher);

int			pgt_internal_write_depth = 0;
int			pgt_installing_triggers = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static bool wake_launcher_registered = false;

static void pgt_shmem_request_hook(void);
static void pgt_shmem_startup_hook(void);
static void pgt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);
static void wake_launcher_at_commit(XactEvent event, void *arg);

/*
 * _PG_init defines the GUCs.  Nothing else is needed without preloading.
 */
void
_PG_init(void)
{
	pgt_guc_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgt_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgt_shmem_startup_hook;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = pgt_ProcessUtility;
	pgt_scheduler_register_launcher();
}

/*
 * pgt_ProcessUtility stops a database's scheduler for the commands that
 * need the database to themselves (DROP DATABASE, ALTER DATABASE RENAME,
 * CREATE DATABASE ... TEMPLATE), which otherwise fail after 5 s because
 * the scheduler is connected; PostgreSQL only asks autovacuum to leave.
 * The launcher may start the scheduler again once the command is over.
 */
static void
pgt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	const char *dbname = NULL;
	Oid			dboid = InvalidOid;

	if (IsA(parsetree, DropdbStmt))
		dbname = ((DropdbStmt *) parsetree)->dbname;
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		dbname = ((RenameStmt *) parsetree)->subname;
	else if (IsA(parsetree, CreatedbStmt))
	{
		ListCell   *lc;

		foreach(lc, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *opt = lfirst(lc);

			if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
				dbname = defGetString(opt);
		}
	}
	if (dbname != NULL)
		dboid = get_database_oid(dbname, true);

	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
	{
		(prev_ProcessUtility ? prev_ProcessUtility : standard_ProcessUtility)
			(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}

	pgt_scheduler_stop_database(dboid);
	PG_TRY();
	{
		(prev_ProcessUtility ? prev_ProcessUtility : standard_ProcessUtility)
			(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		/* back to normal; a dropped database is simply not found */
		pgt_scheduler_wake_launcher(dboid);
	}
	PG_END_TRY();
}

static void
pgt_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	pgt_shmem_request();
}

static void
pgt_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pgt_shmem_startup();
}

/*
 * pgt_scheduler_is_running is true if this database has a running
 * scheduler (always false without shared_preload_libraries).
 */
Datum
pgt_scheduler_is_running(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pgt_scheduler_running(MyDatabaseId));
}

/*
 * pgt_wake_launcher asks the launcher, when the current transaction
 * commits, to start schedulers now (CREATE EXTENSION calls it).
 */
Datum
pgt_wake_launcher(PG_FUNCTION_ARGS)
{
	if (!wake_launcher_registered)
	{
		RegisterXactCallback(wake_launcher_at_commit, NULL);
		wake_launcher_registered = true;
	}
	PG_RETURN_VOID();
}

static void
wake_launcher_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
		pgt_scheduler_wake_launcher(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		UnregisterXactCallback(wake_launcher_at_commit, NULL);
		wake_launcher_registered = false;
	}
}

/*
 * pgt_waitpoint blocks until no other session holds the exclusive
 * transaction-level advisory lock (7255, n); see PGT_WAITPOINT.
 */
void
pgt_waitpoint(int n)
{
	DirectFunctionCall2(pg_advisory_xact_lock_shared_int4,
						Int32GetDatum(7255), Int32GetDatum(n));
}

/*
 * pgt_version returns the version of the loaded library.
 */
Datum
pgt_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PGT_VERSION));
}
