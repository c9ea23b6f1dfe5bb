/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The per-database scheduler: refreshes stream tables when their
 *	  schedules say so, upstream before downstream.
 *
 *	  A pass reads every stream table and the stream-table-to-stream-table
 *	  edges in one short transaction, orders the stream tables
 *	  topologically, and refreshes each due one in a transaction of its
 *	  own.  A failed refresh is rolled back, logged, and recorded (history
 *	  row FAILED, consecutive_errors + 1, status ERROR once
 *	  pg_trickle.max_consecutive_errors is reached, after which it is not
 *	  retried until resume_stream_table()); the pass goes on with the rest.
 *	  No ERROR escapes the loop.
 *
 *	  Due:  a duration schedule when that long has passed since the last
 *	  refresh; a cron schedule when it fired since the last refresh;
 *	  'calculated' on the shortest interval of the stream tables that read
 *	  it, or pg_trickle.default_schedule_seconds when none does, and in any
 *	  case right after one of its upstream stream tables changed in this
 *	  pass.
 *
 *	  Skipping: writers that fill a change buffer bump the database's
 *	  change counter in shared memory when they commit (and set this
 *	  worker's latch, which wakes it at once).  A differential stream table
 *	  whose last refresh started after the latest bump cannot have pending
 *	  changes, so a due but idle stream table costs nothing.
 *
 *	  The wait between passes is the time to the next due stream table,
 *	  capped by pg_trickle.scheduler_interval_ms; a latch cuts it short.
 *
 * IDENTIFICATION
 *	  src/scheduler/scheduler.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/schedule.h"
#include "pg_trickle/scheduler.h"
#include "pg_trickle/util.h"

typedef struct SchedSt
{
	int64		pgt_id;
	Oid			relid;
	char	   *schedule;		/* NULL = calculated */
	char	   *status;
	bool		differential;
	bool		needs_full;		/* never populated or needs reinit */
	bool		has_refreshed;
	double		since;			/* seconds since the last refresh */
	TimestampTz last_refresh;
	double		interval;		/* effective interval, seconds; <0 = cron */
	PgtSchedule sched;
	bool		visited;
	int			indegree;
	bool		refreshed_now;
} SchedSt;

typedef struct SeenEntry
{
	Oid			relid;
	uint64		seq;
} SeenEntry;

static int	my_slot = -1;
static HTAB *seen = NULL;
static TimestampTz last_prune = 0;

static long scheduler_pass(MemoryContext loopcxt);
static bool extension_present(void);
static void claim_slot(Oid dboid);
static void scheduler_exit(int code, Datum arg);
static double effective_interval(SchedSt *sts, int n, List **readers, int i);
static bool refresh_one(SchedSt *st, MemoryContext loopcxt, bool *failed_out);
static void prune_history(void);
static void touch_idle(List *ids);
static void catalog_statement(const char *sql, Oid *argtypes, Datum *values, int expected);

/* prepared transactions existed at the last look (see scheduler_pass) */
static bool prepared_seen = false;

/*
 * pgt_scheduler_main is the entry point of one database's scheduler.
 */
void
pgt_scheduler_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext loopcxt;
	HASHCTL		ctl;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pg_trickle scheduler");
	pgt_scheduler_silent_commits = true;

	claim_slot(dboid);
	before_shmem_exit(scheduler_exit, (Datum) 0);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SeenEntry);
	ctl.hcxt = TopMemoryContext;
	seen = hash_create("pg_trickle scheduler seen", 256, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	loopcxt = AllocSetContextCreate(TopMemoryContext, "pg_trickle scheduler loop",
									ALLOCSET_DEFAULT_SIZES);
	if (extension_present())
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgt_catalog_fail_interrupted();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	for (;;)
	{
		long		wait_ms = pgt_scheduler_interval_ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(loopcxt);
		MemoryContextReset(loopcxt);

		if (!extension_present())
		{
			/* the launcher starts us again when CREATE EXTENSION commits */
			pgt_scheduler_note_absent(MyDatabaseId);

			/* unless that commit came just now, before we noted the absence */
			if (!extension_present())
				proc_exit(0);
			pgt_scheduler_wake_launcher(MyDatabaseId);
		}

		if (pgt_enabled)
		{
			pgstat_report_activity(STATE_RUNNING, "pg_trickle scheduler pass");
			wait_ms = scheduler_pass(loopcxt);
			pgstat_report_activity(STATE_IDLE, NULL);
			/* what refreshes wrote, for the statistics views and autovacuum */
			(void) pgstat_report_stat(true);
		}

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   Max(wait_ms, 1), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

/*
 * scheduler_pass refreshes the due stream tables and returns how long to
 * sleep before the next one is due.
 */
static long
scheduler_pass(MemoryContext loopcxt)
{
	SchedSt    *sts = NULL;
	int			n = 0;
	List	  **readers;		/* readers[i]: indexes of stream tables reading i */
	List	  **sources;		/* sources[i]: indexes of stream tables i reads */
	List	   *order = NIL;
	List	   *queue = NIL;
	List	   *idle = NIL;
	bool		prepared = false;
	double		next_due = (double) pgt_scheduler_interval_ms / 1000.0;
	uint64		seq = pg_atomic_read_u64(&pgt_shared->slots[my_slot].change_seq);
	TimestampTz now;
	ListCell   *lc;

	/* read the stream tables and the edges between them */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	now = GetCurrentTimestamp();
	if (SPI_execute("SELECT pgt_id, pgt_relid, schedule, status, "
					"effective_refresh_mode <> 'FULL', "
					"NOT is_populated OR needs_reinit, last_refresh_at "
					"FROM pgtrickle.pgt_stream_tables ORDER BY pgt_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pgtrickle.pgt_stream_tables");
	n = (int) SPI_processed;

	/*
	 * COMMIT PREPARED runs in a backend that captured nothing and so wakes
	 * no one (PREPARE does wake): while prepared transactions exist, and
	 * once more after they are gone, no stream table is assumed idle.
	 */
	prepared = prepared_seen;
	prepared_seen = false;
	if (max_prepared_xacts > 0)
	{
		SPITupleTable *sts_tab = SPI_tuptable;

		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_prepared_xacts "
						"WHERE database = pg_catalog.current_database() LIMIT 1",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_prepared_xacts");
		prepared_seen = SPI_processed > 0;
		prepared = prepared || prepared_seen;
		SPI_tuptable = sts_tab;
	}
	MemoryContextSwitchTo(loopcxt);
	sts = palloc0(sizeof(SchedSt) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *detail;
		Datum		d;

		sts[i].pgt_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		sts[i].relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		sts[i].schedule = SPI_getvalue(tup, desc, 3);
		sts[i].status = SPI_getvalue(tup, desc, 4);
		sts[i].differential = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		sts[i].needs_full = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		sts[i].has_refreshed = !isnull;
		sts[i].last_refresh = isnull ? 0 : DatumGetTimestampTz(d);
		sts[i].since = isnull ? DBL_MAX :
			(double) (now - sts[i].last_refresh) / USECS_PER_SEC;
		sts[i].interval = 0;
		if (sts[i].schedule == NULL ||
			!pgt_schedule_parse(sts[i].schedule, &sts[i].sched, &detail))
			sts[i].sched.kind = PGT_SCHEDULE_CALCULATED;
	}
	readers = palloc0(sizeof(List *) * Max(n, 1));
	sources = palloc0(sizeof(List *) * Max(n, 1));
	if (SPI_execute("SELECT s.pgt_relid, d.source_relid FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
					"WHERE d.source_type = 'STREAM_TABLE'", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pgtrickle.pgt_dependencies");
	MemoryContextSwitchTo(loopcxt);
	for (uint64 e = 0; e < SPI_processed; e++)
	{
		bool		isnull;
		Oid			reader = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[e],
															SPI_tuptable->tupdesc, 1, &isnull));
		Oid			source = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[e],
															SPI_tuptable->tupdesc, 2, &isnull));
		int			ri = -1;
		int			si = -1;

		for (int i = 0; i < n; i++)
		{
			if (sts[i].relid == reader)
				ri = i;
			if (sts[i].relid == source)
				si = i;
		}
		if (ri < 0 || si < 0)
			continue;
		readers[si] = lappend_int(readers[si], ri);
		sources[ri] = lappend_int(sources[ri], si);
		sts[ri].indegree++;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(loopcxt);

	for (int i = 0; i < n; i++)
		sts[i].interval = effective_interval(sts, n, readers, i);

	/* topological order: upstream first */
	for (int i = 0; i < n; i++)
		if (sts[i].indegree == 0)
			queue = lappend_int(queue, i);
	while (queue != NIL)
	{
		int			i = linitial_int(queue);

		queue = list_delete_first(queue);
		order = lappend_int(order, i);
		foreach(lc, readers[i])
		{
			int			r = lfirst_int(lc);

			if (--sts[r].indegree == 0)
				queue = lappend_int(queue, r);
		}
	}

	foreach(lc, order)
	{
		SchedSt    *st = &sts[lfirst_int(lc)];
		bool		due = false;
		bool		upstream_changed = false;
		SeenEntry  *se;
		bool		found;
		bool		failed = false;
		ListCell   *lc2;

		CHECK_FOR_INTERRUPTS();
		if (strcmp(st->status, "ACTIVE") != 0 && strcmp(st->status, "INITIALIZING") != 0)
			continue;

		foreach(lc2, sources[lfirst_int(lc)])
		{
			if (sts[lfirst_int(lc2)].refreshed_now)
				upstream_changed = true;
		}

		if (!st->has_refreshed || st->needs_full)
			due = true;
		else if (st->sched.kind == PGT_SCHEDULE_CRON)
		{
			TimestampTz fire = pgt_schedule_next_fire(&st->sched, st->last_refresh);

			if (fire <= now)
				due = true;
			else
				next_due = Min(next_due, (double) (fire - now) / USECS_PER_SEC);
		}
		else if (st->since >= st->interval)
			due = true;
		else
			next_due = Min(next_due, st->interval - st->since);

		if (upstream_changed && st->sched.kind == PGT_SCHEDULE_CALCULATED)
			due = true;
		if (!due)
			continue;

		/* nothing committed since this one's last refresh: nothing pending */
		se = hash_search(seen, &st->relid, HASH_ENTER, &found);
		if (!found)
			se->seq = UINT64_MAX;
		if (st->differential && !st->needs_full && st->has_refreshed &&
			!upstream_changed && !prepared && se->seq == seq)
		{
			/* nothing can be pending: it is as fresh as a refresh would make it */
			idle = lappend_int(idle, (int) st->pgt_id);
			continue;
		}

		se->seq = seq;
		st->refreshed_now = refresh_one(st, loopcxt, &failed);

		/*
		 * This process's own commits do not count as changes (they would
		 * make every due stream table refresh again, for nothing, one
		 * interval later); the stream tables reading this one are marked
		 * instead, so they pick up what it wrote when they are due.
		 */
		if (st->refreshed_now)
		{
			foreach(lc2, readers[lfirst_int(lc)])
			{
				SeenEntry  *re = hash_search(seen, &sts[lfirst_int(lc2)].relid,
											 HASH_ENTER, NULL);

				re->seq = UINT64_MAX;
			}
		}
		if (failed)
		{
			/* retried on its next interval even if nothing else changes */
			se = hash_search(seen, &st->relid, HASH_FIND, NULL);
			if (se)
				se->seq = UINT64_MAX;
		}
		if (st->interval > 0)
			next_due = Min(next_due, st->interval);
	}

	if (idle != NIL)
		touch_idle(idle);

	if (TimestampDifferenceExceeds(last_prune, GetCurrentTimestamp(), 60 * 1000))
	{
		prune_history();
		last_prune = GetCurrentTimestamp();
	}

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->slots[my_slot].last_tick = GetCurrentTimestamp();
	LWLockRelease(pgt_shared->lock);

	return (long) ceil(Max(next_due, 0.001) * 1000.0);
}

/*
 * effective_interval returns the refresh interval of stream table i in
 * seconds: its duration, or for 'calculated' the shortest interval of its
 * readers (default_schedule_seconds when it has none).  Cron schedules
 * count as their nominal gap for their upstreams.
 */
static double
effective_interval(SchedSt *sts, int n, List **readers, int i)
{
	SchedSt    *st = &sts[i];
	double		best = DBL_MAX;
	ListCell   *lc;

	if (st->visited)
		return st->interval > 0 ? st->interval : pgt_default_schedule_seconds;
	st->visited = true;
	switch (st->sched.kind)
	{
		case PGT_SCHEDULE_INTERVAL:
			st->interval = (double) Max(st->sched.interval_seconds, pgt_min_schedule_seconds);
			return st->interval;
		case PGT_SCHEDULE_CRON:
			st->interval = 60.0;
			return st->interval;
		case PGT_SCHEDULE_CALCULATED:
			foreach(lc, readers[i])
				best = Min(best, effective_interval(sts, n, readers, lfirst_int(lc)));
			st->interval = best == DBL_MAX ? (double) pgt_default_schedule_seconds : best;
			return st->interval;
	}
	return pgt_default_schedule_seconds;	/* keep compiler quiet */
}

/*
 * refresh_one refreshes st in a transaction of its own; returns true if it
 * changed the stream table's rows.  A failure is recorded, never raised.
 */
static bool
refresh_one(SchedSt *st, MemoryContext loopcxt, bool *failed_out)
{
	bool		changed = false;
	volatile bool failed = false;
	ErrorData  *edata = NULL;

	/* a committed RUNNING row shows a refresh that a crash interrupted */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgt_running_history_id = pgt_catalog_history_start(st->pgt_id);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(loopcxt);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		changed = pgt_refresh_run(st->relid, PGT_INITIATED_SCHEDULER, false);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loopcxt);
		edata = CopyErrorData();
		/* the RUNNING row committed; the failure row replaces it */
		FlushErrorState();
		AbortCurrentTransaction();
		failed = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(loopcxt);

	if (failed)
	{
		ereport(LOG,
				(errmsg("pg_trickle could not refresh stream table %u: %s",
						st->relid, edata->message)));
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgt_catalog_record_failure(st->pgt_id, "SCHEDULER", edata->message,
								   pgt_max_consecutive_errors);
		pgt_running_history_id = 0;
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(loopcxt);
		LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
		pgt_shared->slots[my_slot].failures++;
		LWLockRelease(pgt_shared->lock);
		*failed_out = true;
		return false;
	}
	pgt_running_history_id = 0;
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->slots[my_slot].refreshes++;
	LWLockRelease(pgt_shared->lock);
	return changed;
}

static bool
extension_present(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("pg_trickle", true));
	CommitTransactionCommand();
	return present;
}

/*
 * touch_idle records, in one statement, that the differential stream
 * tables ids were due but had nothing pending (no commit wrote a change
 * buffer since their last refresh): their data is current as of now
 * (data_timestamp).  last_refresh_at is left alone, so a change committed
 * later is refreshed at once instead of a full interval later.
 */
static void
touch_idle(List *ids)
{
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		values[1];
	Datum	   *elems = palloc(sizeof(Datum) * list_length(ids));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, ids)
		elems[i++] = Int64GetDatum((int64) lfirst_int(lc));
	values[0] = PointerGetDatum(construct_array(elems, i, INT8OID, 8, true, TYPALIGN_DOUBLE));
	/* data_timestamp only: last_refresh_at drives the schedule */
	catalog_statement("UPDATE pgtrickle.pgt_stream_tables SET "
					  "data_timestamp = pg_catalog.now() WHERE pgt_id = ANY ($1)",
					  argtypes, values, SPI_OK_UPDATE);
}

/* prune_history deletes history older than pg_trickle.history_retention_days */
static void
prune_history(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	if (pgt_history_retention_days <= 0)
		return;
	values[0] = Int32GetDatum(pgt_history_retention_days);
	catalog_statement("DELETE FROM pgtrickle.pgt_refresh_history "
					  "WHERE start_time < pg_catalog.now() - pg_catalog.make_interval(days => $1)",
					  argtypes, values, SPI_OK_DELETE);
}

/*
 * catalog_statement runs sql, with one parameter, as the extension owner
 * in a transaction of its own.
 */
static void
catalog_statement(const char *sql, Oid *argtypes, Datum *values, int expected)
{
	PgtRoleSave save;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	pgt_spi_exec_args(sql, 1, argtypes, values, NULL, false, expected);
	pgt_role_restore(&save);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static void
claim_slot(Oid dboid)
{
	int			free_slot = -1;

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < PGT_MAX_DATABASES; i++)
	{
		if (pgt_shared->slots[i].dboid == dboid && pgt_shared->slots[i].pid != 0)
		{
			LWLockRelease(pgt_shared->lock);
			proc_exit(0);		/* another scheduler serves this database */
		}
		if (free_slot < 0 &&
			(pgt_shared->slots[i].dboid == InvalidOid || pgt_shared->slots[i].dboid == dboid))
			free_slot = i;
	}
	if (free_slot < 0)
	{
		LWLockRelease(pgt_shared->lock);
		ereport(LOG,
				(errmsg("pg_trickle has no scheduler slot left for database %u", dboid)));
		proc_exit(0);
	}
	pgt_shared->slots[free_slot].dboid = dboid;
	pgt_shared->slots[free_slot].pid = MyProcPid;
	pgt_shared->slots[free_slot].latch = MyLatch;
	pgt_shared->slots[free_slot].refreshes = 0;
	pgt_shared->slots[free_slot].failures = 0;
	my_slot = free_slot;
	LWLockRelease(pgt_shared->lock);
}

static void
scheduler_exit(int code, Datum arg)
{
	if (my_slot < 0)
		return;
	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->slots[my_slot].pid = 0;
	pgt_shared->slots[my_slot].latch = NULL;
	pgt_shared->slots[my_slot].dboid = InvalidOid;
	LWLockRelease(pgt_shared->lock);
}
