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
#include "fmgr.h"
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

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_launcher_registered = false;

static void pgt_shmem_request_hook(void);
static void pgt_shmem_startup_hook(void);
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
	pgt_scheduler_register_launcher();
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
