/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker that starts a scheduler for every
 *	  database that has pg_trickle installed.
 *
 *	  The launcher is connected to no database, so it can read only shared
 *	  catalogs: it lists the databases that accept connections and keeps a
 *	  dynamic scheduler worker running for each.  A scheduler that finds no
 *	  pg_trickle in its database notes that in shared memory and exits;
 *	  the launcher leaves that database alone until CREATE EXTENSION
 *	  pg_trickle commits there (which wakes it), so idle databases do not
 *	  keep taking background worker slots.  A scheduler that stopped for
 *	  any other reason is restarted after PGT_RECHECK_SECONDS.  It never runs on a standby
 *	  (BgWorkerStart_RecoveryFinished) and restarts after a crash.
 *
 *	  States of one database, as the launcher sees it:
 *
 *	    unknown --start--> running --exits (no extension)--> idle
 *	       ^                  |  ^                             |
 *	       |                  |  +--- recheck / woken ---------+
 *	       +--- dropped ------+ crashed: restarted next pass
 *
 * IDENTIFICATION
 *	  src/scheduler/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/scheduler.h"

#define PGT_RECHECK_SECONDS		10
#define PGT_LAUNCHER_NAP_MS		5000

typedef struct DbState
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
	TimestampTz started_at;
} DbState;

static DbState dbs[PGT_MAX_DATABASES];

static void launcher_pass(bool woken);
static List *list_databases(void);
static bool start_scheduler(DbState *st);
static void launcher_exit(int code, Datum arg);
static bool database_absent(Oid dboid);

/*
 * pgt_scheduler_register_launcher registers the launcher worker; called
 * from _PG_init when the library is preloaded.
 */
void
pgt_scheduler_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_trickle");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pgt_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_trickle launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_trickle launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * pgt_launcher_main is the launcher's entry point.
 */
void
pgt_launcher_main(Datum arg)
{
	MemoryContext loopcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->launcher_latch = MyLatch;
	pgt_shared->launcher_pid = MyProcPid;
	LWLockRelease(pgt_shared->lock);
	before_shmem_exit(launcher_exit, (Datum) 0);

	memset(dbs, 0, sizeof(dbs));
	loopcxt = AllocSetContextCreate(TopMemoryContext, "pg_trickle launcher loop",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int			rc;
		bool		woken;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(loopcxt);
		MemoryContextReset(loopcxt);
		if (pgt_enabled)
		{
			LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
			woken = pgt_shared->rescan_requested;
			pgt_shared->rescan_requested = false;
			LWLockRelease(pgt_shared->lock);
			launcher_pass(woken);
		}

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   PGT_LAUNCHER_NAP_MS, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

/*
 * launcher_pass starts a scheduler for each connectable database that has
 * none running, unless it was found without pg_trickle recently.
 */
static void
launcher_pass(bool woken)
{
	List	   *databases = list_databases();
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();
	pid_t		pid;

	/*
	 * A slot is held only by a database that may have pg_trickle: dropped
	 * databases and those found without it give theirs back once their
	 * scheduler has stopped, so many databases without pg_trickle never
	 * crowd out one with it.
	 */
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (dbs[i].dboid == InvalidOid)
			continue;
		if (dbs[i].handle != NULL &&
			GetBackgroundWorkerPid(dbs[i].handle, &pid) != BGWH_STOPPED)
			continue;
		if (!list_member_oid(databases, dbs[i].dboid) || database_absent(dbs[i].dboid))
		{
			if (dbs[i].handle != NULL)
				pfree(dbs[i].handle);
			memset(&dbs[i], 0, sizeof(DbState));
		}
	}

	foreach(lc, databases)
	{
		Oid			dboid = lfirst_oid(lc);
		DbState    *st = NULL;
		DbState    *free_slot = NULL;

		if (database_absent(dboid))
			continue;			/* no pg_trickle there */
		for (int i = 0; i < PGT_MAX_DATABASES; i++)
		{
			if (dbs[i].dboid == dboid)
				st = &dbs[i];
			else if (dbs[i].dboid == InvalidOid && free_slot == NULL)
				free_slot = &dbs[i];
		}
		if (st == NULL)
		{
			if (free_slot == NULL)
				continue;		/* more databases than slots: next pass */
			st = free_slot;
			st->dboid = dboid;
			st->handle = NULL;
			st->started_at = 0;
		}

		if (st->handle != NULL &&
			GetBackgroundWorkerPid(st->handle, &pid) != BGWH_STOPPED)
			continue;			/* running or starting */

		if (!woken && st->started_at != 0 &&
			!TimestampDifferenceExceeds(st->started_at, now,
										PGT_RECHECK_SECONDS * 1000))
			continue;

		if (!start_scheduler(st))
			break;				/* no worker slot: the rest wait too */
	}
}

static List *
list_databases(void)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		old = MemoryContextSwitchTo(cxt);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return result;
}

static bool
start_scheduler(DbState *st)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle = NULL;
	MemoryContext old;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_trickle");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pgt_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_trickle scheduler for database %u", st->dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_trickle scheduler");
	worker.bgw_main_arg = ObjectIdGetDatum(st->dboid);
	worker.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (st->handle != NULL)
			pfree(st->handle);
		st->handle = handle;
		st->started_at = GetCurrentTimestamp();
	}
	else
	{
		/* retried at the next pass: a worker stopping wakes the launcher */
		ereport(LOG,
				(errmsg("pg_trickle could not start a scheduler for database %u: no free background worker slot",
						st->dboid),
				 errhint("Increase max_worker_processes.")));
	}
	MemoryContextSwitchTo(old);
	return st->handle == handle;
}

static void
launcher_exit(int code, Datum arg)
{
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->launcher_latch = NULL;
	pgt_shared->launcher_pid = 0;
	LWLockRelease(pgt_shared->lock);
}

static bool
database_absent(Oid dboid)
{
	bool		absent = false;

	LWLockAcquire(pgt_shared->lock, LW_SHARED);
	for (int i = 0; i < PGT_MAX_ABSENT; i++)
	{
		if (pgt_shared->absent[i] == dboid)
			absent = true;
	}
	LWLockRelease(pgt_shared->lock);
	return absent;
}
