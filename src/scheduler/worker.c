/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Running one refresh unit -- a stream table, or a diamond group in one
 *	  transaction -- in the scheduler or in a dynamic refresh worker.
 *
 *	  A scheduler with several independent units due at once hands all but
 *	  one of them to dynamic background workers ("pg_trickle refresh
 *	  worker") and runs the last itself, so at most
 *	  pg_trickle.max_concurrent_refreshes refreshes of one database run at a
 *	  time; pg_trickle.max_dynamic_refresh_workers caps the workers of all
 *	  databases together.  A unit that gets no worker (caps reached, no
 *	  free max_worker_processes slot) runs in the scheduler.
 *
 *	  The hand-over is a job slot in shared memory: the scheduler claims a
 *	  free slot (bumping its generation), fills in the unit and launches a
 *	  worker with the slot's index and generation; the worker checks both,
 *	  refreshes, writes the outcome and marks the slot DONE, even when it
 *	  fails (an exit callback).  The scheduler frees the slot when it reads
 *	  the outcome, or when the worker stopped without reporting.  A
 *	  scheduler that starts waits for workers a predecessor left running
 *	  before it marks interrupted refreshes FAILED.
 *
 * IDENTIFICATION
 *	  src/scheduler/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/scheduler.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_worker_pool_status);

/* this scheduler's handles, by job slot */
static BackgroundWorkerHandle *handles[PGT_MAX_REFRESH_JOBS];

/* the refresh worker's job slot and its generation */
static int	my_job = -1;
static uint32 my_generation = 0;

static bool job_is_mine(PgtRefreshJob *j);
static void reap_orphans(void);

static void job_exit(int code, Datum arg);
static void lock_members(const PgtRefreshUnit *unit, bool *alive);

/*
 * pgt_refresh_unit refreshes the members of unit, upstream first, in one
 * transaction; a group's members all read one snapshot.  Must be called
 * outside a transaction.  A failure is rolled back and recorded, never
 * raised: the failing member gets a FAILED history row and one more
 * consecutive error, the other members of a group a SKIPPED row.  Returns
 * false on failure; *changed_mask gets bit i when member i changed rows.
 */
bool
pgt_refresh_unit(const PgtRefreshUnit *unit, uint64 *changed_mask)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		history[PGT_MAX_UNIT_MEMBERS];
	bool		alive[PGT_MAX_UNIT_MEMBERS];
	volatile int current = -1;
	volatile uint64 mask = 0;
	ErrorData  *edata = NULL;
	bool		ok = true;

	for (int i = 0; i < unit->nmembers; i++)
		alive[i] = true;

	/* committed RUNNING rows show refreshes that a crash interrupted */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	lock_members(unit, alive);
	PushActiveSnapshot(GetTransactionSnapshot());
	for (int i = 0; i < unit->nmembers; i++)
		history[i] = alive[i] ? pgt_catalog_history_start(unit->pgt_ids[i]) : 0;
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		Snapshot	group_snap = InvalidSnapshot;

		/* a member dropped since the RUNNING row was committed is skipped */
		lock_members(unit, alive);
		PushActiveSnapshot(GetTransactionSnapshot());
		if (unit->nmembers > 1)
		{
			/* lock every member's row, then take the one snapshot */
			for (int i = 0; i < unit->nmembers; i++)
				if (alive[i])
					(void) pgt_catalog_get(unit->relids[i], true);
			group_snap = RegisterSnapshot(GetLatestSnapshot());
			pgt_refresh_pinned_snapshot = group_snap;
		}
		for (int i = 0; i < unit->nmembers; i++)
		{
			if (!alive[i])
				continue;
			current = i;
			pgt_running_history_id = history[i];
			if (pgt_refresh_run(unit->relids[i], PGT_INITIATED_SCHEDULER, false))
				mask |= UINT64CONST(1) << i;
			CommandCounterIncrement();
		}
		current = -1;
		pgt_refresh_pinned_snapshot = NULL;
		if (group_snap != InvalidSnapshot)
			UnregisterSnapshot(group_snap);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		pgt_refresh_pinned_snapshot = NULL;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);

	if (!ok)
	{
		/* a failed COMMIT is blamed on the last member */
		int			failing = current >= 0 ? current : unit->nmembers - 1;

		mask = 0;
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		/* no member may be dropped while its outcome is written */
		lock_members(unit, alive);
		PushActiveSnapshot(GetTransactionSnapshot());
		ereport(LOG,
				(errmsg("pg_trickle could not refresh stream table %s: %s",
						pgt_relation_display_name(unit->relids[failing]),
						edata->message),
				 unit->nmembers > 1 ?
				 errdetail("The other %d members of its diamond group were rolled back with it.",
						   unit->nmembers - 1) : 0));
		for (int i = 0; i < unit->nmembers; i++)
		{
			if (!alive[i])
				continue;
			pgt_running_history_id = history[i];
			if (i == failing)
				pgt_catalog_record_failure(unit->pgt_ids[i], "SCHEDULER",
										   edata->message, pgt_max_consecutive_errors);
			else
				pgt_catalog_history_skip(history[i],
										 psprintf("rolled back with its diamond group: %s failed: %s",
												  pgt_relation_display_name(unit->relids[failing]),
												  edata->message));
		}
		pgt_running_history_id = 0;
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		pgt_scheduler_count(MyDatabaseId, 0, 1);
	}
	else
		pgt_scheduler_count(MyDatabaseId, unit->nmembers, 0);
	pgt_running_history_id = 0;
	*changed_mask = mask;
	return ok;
}

/*
 * lock_members locks the stream tables of unit's members still alive
 * against being dropped (RowExclusiveLock, as a refresh takes them: a drop
 * takes AccessExclusiveLock before it deletes the catalog row), and marks
 * as no longer alive those dropped meanwhile, which a refresh then skips
 * quietly.  Call at the start of a transaction, before its snapshot is
 * taken, so that the catalog is read after any drop waited for committed.
 */
static void
lock_members(const PgtRefreshUnit *unit, bool *alive)
{
	bool		snapshot_pushed = false;

	for (int i = 0; i < unit->nmembers; i++)
		if (alive[i])
			LockRelationOid(unit->relids[i], RowExclusiveLock);
	for (int i = 0; i < unit->nmembers; i++)
	{
		if (!alive[i])
			continue;
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(unit->relids[i])))
			alive[i] = false;
		else
		{
			if (!snapshot_pushed)
			{
				PushActiveSnapshot(GetTransactionSnapshot());
				snapshot_pushed = true;
			}
			alive[i] = pgt_catalog_is_stream_table(unit->relids[i]);
		}
		if (!alive[i])
			ereport(DEBUG1,
					(errmsg_internal("pg_trickle: stream table %u was dropped before its refresh; skipped",
									 unit->relids[i])));
	}
	if (snapshot_pushed)
		PopActiveSnapshot();
}

/*
 * pgt_job_launch hands unit to a dynamic refresh worker; returns the job
 * slot, or -1 when there is no free slot or worker.
 */
int
pgt_job_launch(const PgtRefreshUnit *unit)
{
	BackgroundWorker worker;
	int			job = -1;
	int			in_use = 0;
	uint32		generation;

	if (unit->nmembers > PGT_MAX_UNIT_MEMBERS)
		return -1;
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	reap_orphans();
	for (int i = 0; i < PGT_MAX_REFRESH_JOBS; i++)
	{
		if (pgt_shared->jobs[i].state != PGT_JOB_FREE)
			in_use++;
		else if (job < 0)
			job = i;
	}
	if (job < 0 || in_use >= pgt_max_dynamic_refresh_workers)
	{
		LWLockRelease(pgt_shared->lock);
		return -1;
	}
	{
		PgtRefreshJob *j = &pgt_shared->jobs[job];

		j->state = PGT_JOB_CLAIMED;
		j->generation++;
		generation = j->generation;
		j->dboid = MyDatabaseId;
		j->scheduler_pid = MyProcPid;
		j->scheduler_latch = MyLatch;
		j->worker_pid = 0;
		j->nmembers = unit->nmembers;
		memcpy(j->relids, unit->relids, sizeof(Oid) * unit->nmembers);
		memcpy(j->pgt_ids, unit->pgt_ids, sizeof(int64) * unit->nmembers);
		j->failed = false;
		j->recorded = false;
		j->changed_mask = 0;
	}
	LWLockRelease(pgt_shared->lock);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_trickle");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pgt_refresh_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_trickle refresh worker for database %u",
			 MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_trickle refresh worker");
	worker.bgw_main_arg = Int32GetDatum(job);
	memcpy(worker.bgw_extra, &generation, sizeof(generation));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handles[job]))
	{
		LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
		pgt_shared->jobs[job].state = PGT_JOB_FREE;
		LWLockRelease(pgt_shared->lock);
		handles[job] = NULL;
		return -1;
	}
	return job;
}

/*
 * pgt_job_poll returns true once job has ended, with its outcome, and
 * frees the slot.  A worker that stopped without reporting counts as a
 * failure that may have changed every member (and an unknown duration,
 * -1).
 */
bool
pgt_job_poll(int job, bool *failed, bool *recorded, uint64 *changed_mask,
			 double *seconds)
{
	PgtRefreshJob *j = &pgt_shared->jobs[job];
	bool		ended = false;
	pid_t		pid;
	bool		stopped = handles[job] == NULL ||
		GetBackgroundWorkerPid(handles[job], &pid) == BGWH_STOPPED;

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	if (j->state == PGT_JOB_DONE)
	{
		*failed = j->failed;
		*recorded = j->recorded;
		*changed_mask = j->changed_mask;
		*seconds = j->seconds;
		ended = true;
	}
	else if (stopped)
	{
		*failed = true;
		*recorded = false;
		*changed_mask = ~UINT64CONST(0);
		*seconds = -1;
		ended = true;
	}
	if (ended)
	{
		j->state = PGT_JOB_FREE;
		j->worker_pid = 0;
		if (handles[job] != NULL)
			pfree(handles[job]);
		handles[job] = NULL;
	}
	LWLockRelease(pgt_shared->lock);
	return ended;
}

/* pgt_jobs_running counts the job slots dboid holds (all: InvalidOid) */
int
pgt_jobs_running(Oid dboid)
{
	int			n = 0;

	LWLockAcquire(pgt_shared->lock, LW_SHARED);
	for (int i = 0; i < PGT_MAX_REFRESH_JOBS; i++)
	{
		if (pgt_shared->jobs[i].state != PGT_JOB_FREE &&
			(!OidIsValid(dboid) || pgt_shared->jobs[i].dboid == dboid))
			n++;
	}
	LWLockRelease(pgt_shared->lock);
	return n;
}

/*
 * pgt_jobs_reclaim frees the job slots a previous scheduler of dboid left
 * behind, after waiting (up to a minute) for workers still refreshing.
 */
void
pgt_jobs_reclaim(Oid dboid)
{
	for (int waited = 0;; waited++)
	{
		bool		busy = false;

		LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < PGT_MAX_REFRESH_JOBS; i++)
		{
			PgtRefreshJob *j = &pgt_shared->jobs[i];

			if (j->state == PGT_JOB_FREE || j->dboid != dboid)
				continue;
			if (j->state == PGT_JOB_CLAIMED && j->worker_pid != 0 &&
				kill(j->worker_pid, 0) == 0 && waited < 6000)
			{
				busy = true;
				continue;
			}
			/* a worker not started yet finds the generation changed */
			j->state = PGT_JOB_FREE;
			j->generation++;
			j->worker_pid = 0;
		}
		LWLockRelease(pgt_shared->lock);
		if (!busy)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/*
 * pgt_refresh_worker_main is the entry point of a dynamic refresh worker.
 */
void
pgt_refresh_worker_main(Datum arg)
{
	int			job = DatumGetInt32(arg);
	uint32		generation;
	PgtRefreshJob *j;
	PgtRefreshUnit unit;
	Oid			dboid;
	uint64		mask = 0;
	bool		ok;
	TimestampTz started;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));
	if (job < 0 || job >= PGT_MAX_REFRESH_JOBS)
		proc_exit(0);
	j = &pgt_shared->jobs[job];

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	if (j->state != PGT_JOB_CLAIMED || j->generation != generation)
	{
		/* the scheduler that launched us is gone; the slot was reclaimed */
		LWLockRelease(pgt_shared->lock);
		proc_exit(0);
	}
	j->worker_pid = MyProcPid;
	my_generation = generation;
	dboid = j->dboid;
	unit.nmembers = j->nmembers;
	memcpy(unit.relids, j->relids, sizeof(Oid) * j->nmembers);
	memcpy(unit.pgt_ids, j->pgt_ids, sizeof(int64) * j->nmembers);
	LWLockRelease(pgt_shared->lock);

	my_job = job;
	before_shmem_exit(job_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pg_trickle refresh worker");
	pgstat_report_activity(STATE_RUNNING, "pg_trickle refresh");
	/* like the scheduler's: readers are marked by the scheduler instead */
	pgt_scheduler_silent_commits = true;

	started = GetCurrentTimestamp();
	ok = pgt_refresh_unit(&unit, &mask);
	(void) pgstat_report_stat(true);

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	if (job_is_mine(j))
	{
		j->seconds = (double) (GetCurrentTimestamp() - started) / USECS_PER_SEC;
		j->failed = !ok;
		j->recorded = true;
		j->changed_mask = mask;
		j->state = PGT_JOB_DONE;
		if (j->scheduler_latch != NULL)
			SetLatch(j->scheduler_latch);
	}
	LWLockRelease(pgt_shared->lock);
	my_job = -1;
	proc_exit(0);
}

/* job_is_mine: the slot still holds this worker's job (lock held) */
static bool
job_is_mine(PgtRefreshJob *j)
{
	return j->state == PGT_JOB_CLAIMED && j->generation == my_generation &&
		j->worker_pid == MyProcPid;
}

/*
 * reap_orphans frees the slots whose scheduler is gone and whose worker is
 * gone too (lock held exclusively): a scheduler that exited for good, say
 * for DROP DATABASE, would otherwise hold them forever.
 */
static void
reap_orphans(void)
{
	for (int i = 0; i < PGT_MAX_REFRESH_JOBS; i++)
	{
		PgtRefreshJob *j = &pgt_shared->jobs[i];

		if (j->state == PGT_JOB_FREE || j->scheduler_pid == MyProcPid)
			continue;
		if (j->scheduler_pid != 0 && kill(j->scheduler_pid, 0) == 0)
			continue;
		if (j->worker_pid != 0 && kill(j->worker_pid, 0) == 0)
			continue;
		j->state = PGT_JOB_FREE;
		j->generation++;
		j->worker_pid = 0;
	}
}

/*
 * pgt_refresh_unit_lost records a refresh whose worker stopped before it
 * could: every member gets a FAILED history row (its RUNNING row, if the
 * worker wrote one, is closed too) and one more consecutive error.
 */
void
pgt_refresh_unit_lost(const PgtRefreshUnit *unit, const char *message)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	for (int i = 0; i < unit->nmembers; i++)
	{
		pgt_running_history_id = 0;
		pgt_catalog_fail_running(unit->pgt_ids[i], message);
		pgt_catalog_record_failure(unit->pgt_ids[i], "SCHEDULER", message,
								   pgt_max_consecutive_errors);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	pgt_scheduler_count(MyDatabaseId, 0, 1);
}

/* job_exit reports a worker that stops before finishing as failed */
static void
job_exit(int code, Datum arg)
{
	PgtRefreshJob *j;

	if (my_job < 0)
		return;
	j = &pgt_shared->jobs[my_job];
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	if (job_is_mine(j))
	{
		/* the scheduler records the failure: this process cannot any more */
		j->failed = true;
		j->recorded = false;
		j->seconds = -1;
		j->changed_mask = ~UINT64CONST(0);
		j->state = PGT_JOB_DONE;
		if (j->scheduler_latch != NULL)
			SetLatch(j->scheduler_latch);
	}
	LWLockRelease(pgt_shared->lock);
}

/*
 * pgt_worker_pool_status reports the refresh workers: how many run (all
 * databases, and this one), and the limits.
 */
Datum
pgt_worker_pool_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	values[0] = Int32GetDatum(pgt_shared ? pgt_jobs_running(InvalidOid) : 0);
	values[1] = Int32GetDatum(pgt_shared ? pgt_jobs_running(MyDatabaseId) : 0);
	values[2] = Int32GetDatum(pgt_max_dynamic_refresh_workers);
	values[3] = Int32GetDatum(pgt_max_concurrent_refreshes);
	values[4] = CStringGetTextDatum(pgt_shared == NULL ? "unavailable" :
									pgt_parallel_refresh_mode ? "on" : "off");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
