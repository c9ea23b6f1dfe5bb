/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between the launcher, the per-database schedulers and
 *	  the backends that write to sources.
 *
 *	  One PgtShared struct: the launcher's latch, and one slot per database
 *	  that has a scheduler, holding that scheduler's pid and latch.
 *
 *	  Locking: pgt_shared->lock (one LWLock of the "pg_trickle" tranche)
 *	  protects every field.  Workers take it exclusively to claim or free a
 *	  slot; writers take it shared to find a latch to set.  SetLatch is
 *	  safe on a latch whose owner has exited (the slot is cleared before
 *	  the owner exits, under the lock).
 *
 *	  Wake-up at commit: the capture trigger calls
 *	  pgt_scheduler_wake_at_commit(), which registers (once per backend) a
 *	  transaction callback that, when a transaction that wrote a change
 *	  buffer commits, sets the latch of this database's scheduler.  A
 *	  background worker cannot LISTEN; a latch reaches it immediately.
 *
 * IDENTIFICATION
 *	  src/scheduler/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "pg_trickle/scheduler.h"

PgtShared  *pgt_shared = NULL;

static bool wake_pending = false;
static bool wake_callback_registered = false;

static void wake_xact_callback(XactEvent event, void *arg);

/*
 * pgt_shmem_request asks for pg_trickle's shared memory and lock
 * (shmem_request_hook, postmaster only).
 */
void
pgt_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(PgtShared)));
	RequestNamedLWLockTranche("pg_trickle", 1);
}

/*
 * pgt_shmem_startup creates or attaches to the shared state
 * (shmem_startup_hook).
 */
void
pgt_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pgt_shared = ShmemInitStruct("pg_trickle", sizeof(PgtShared), &found);
	if (!found)
	{
		memset(pgt_shared, 0, sizeof(PgtShared));
		pgt_shared->lock = &(GetNamedLWLockTranche("pg_trickle"))->lock;
		for (int i = 0; i < PGT_MAX_DATABASES; i++)
			pg_atomic_init_u64(&pgt_shared->slots[i].change_seq, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * pgt_scheduler_wake_database sets the latch of dboid's scheduler, if any.
 */
void
pgt_scheduler_wake_database(Oid dboid)
{
	if (pgt_shared == NULL)
		return;
	LWLockAcquire(pgt_shared->lock, LW_SHARED);
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (pgt_shared->slots[i].dboid == dboid)
		{
			pg_atomic_fetch_add_u64(&pgt_shared->slots[i].change_seq, 1);
			if (pgt_shared->slots[i].latch != NULL)
				SetLatch(pgt_shared->slots[i].latch);
			break;
		}
	}
	LWLockRelease(pgt_shared->lock);
}

/*
 * pgt_scheduler_wake_launcher tells the launcher that dboid needs a
 * scheduler now (pg_trickle was just installed there) and sets its latch.
 */
void
pgt_scheduler_wake_launcher(Oid dboid)
{
	if (pgt_shared == NULL)
		return;
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->rescan_requested = true;
	for (int i = 0; i < PGT_MAX_ABSENT; i++)
	{
		if (pgt_shared->absent[i] == dboid)
			pgt_shared->absent[i] = InvalidOid;
	}
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (pgt_shared->wanted[i] == dboid)
			break;
		if (pgt_shared->wanted[i] == InvalidOid)
		{
			pgt_shared->wanted[i] = dboid;
			break;
		}
	}
	if (pgt_shared->launcher_latch != NULL)
		SetLatch(pgt_shared->launcher_latch);
	LWLockRelease(pgt_shared->lock);
}

/*
 * pgt_scheduler_note_absent records that dboid has no pg_trickle, so the
 * launcher stops starting schedulers there until CREATE EXTENSION.
 */
void
pgt_scheduler_note_absent(Oid dboid)
{
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < PGT_MAX_ABSENT; i++)
	{
		if (pgt_shared->absent[i] == dboid)
			break;
		if (pgt_shared->absent[i] == InvalidOid)
		{
			pgt_shared->absent[i] = dboid;
			break;
		}
	}
	LWLockRelease(pgt_shared->lock);
}

/*
 * pgt_scheduler_stop_database asks dboid's scheduler and refresh workers
 * to exit, keeps the launcher from starting another scheduler (the
 * database counts as absent until pgt_scheduler_wake_launcher), and waits
 * up to 10 s for them to be gone.
 */
void
pgt_scheduler_stop_database(Oid dboid)
{
	if (pgt_shared == NULL)
		return;
	pgt_scheduler_note_absent(dboid);
	for (int waited = 0; waited < 1000; waited++)
	{
		int			pid = 0;

		int			workers[PGT_MAX_REFRESH_JOBS];
		int			nworkers = 0;

		LWLockAcquire(pgt_shared->lock, LW_SHARED);
		for (int i = 0; i < PGT_MAX_DATABASES; i++)
		{
			if (pgt_shared->slots[i].dboid == dboid && pgt_shared->slots[i].pid != 0)
				pid = pgt_shared->slots[i].pid;
		}
		for (int i = 0; i < PGT_MAX_REFRESH_JOBS; i++)
		{
			PgtRefreshJob *j = &pgt_shared->jobs[i];

			if (j->state == PGT_JOB_CLAIMED && j->dboid == dboid && j->worker_pid != 0 &&
				kill(j->worker_pid, 0) == 0)
				workers[nworkers++] = j->worker_pid;
		}
		LWLockRelease(pgt_shared->lock);
		if (pid == 0 && nworkers == 0)
			return;
		if (waited == 0)
		{
			if (pid != 0)
				(void) kill(pid, SIGTERM);
			for (int i = 0; i < nworkers; i++)
				(void) kill(workers[i], SIGTERM);
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/*
 * pgt_scheduler_running is true if dboid has a live scheduler.
 */
bool
pgt_scheduler_running(Oid dboid)
{
	bool		running = false;

	if (pgt_shared == NULL)
		return false;
	LWLockAcquire(pgt_shared->lock, LW_SHARED);
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (pgt_shared->slots[i].dboid == dboid && pgt_shared->slots[i].pid != 0)
			running = true;
	}
	LWLockRelease(pgt_shared->lock);
	return running;
}

/*
 * pgt_scheduler_wake_at_commit arranges for this database's scheduler to
 * be woken when the current transaction commits.  Cheap enough for the
 * capture trigger: a flag and, once per backend, a callback registration.
 */
bool		pgt_scheduler_silent_commits = false;

void
pgt_scheduler_wake_at_commit(void)
{
	/* the scheduler tracks what its own refreshes wrote itself */
	if (pgt_shared == NULL || pgt_scheduler_silent_commits)
		return;
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_pending = true;
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* after PREPARE the scheduler watches pg_prepared_xacts */
			if (wake_pending)
				pgt_scheduler_wake_database(MyDatabaseId);
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			break;
		default:
			break;
	}
}

/* pgt_scheduler_count adds to dboid's scheduler statistics */
void
pgt_scheduler_count(Oid dboid, int refreshes, int failures)
{
	if (pgt_shared == NULL)
		return;
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (pgt_shared->slots[i].dboid == dboid && pgt_shared->slots[i].pid != 0)
		{
			pgt_shared->slots[i].refreshes += refreshes;
			pgt_shared->slots[i].failures += failures;
			break;
		}
	}
	LWLockRelease(pgt_shared->lock);
}
