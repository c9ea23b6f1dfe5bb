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
#include "pg_trickle/dag.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/schedule.h"
#include "pg_trickle/scheduler.h"
#include "pg_trickle/util.h"

/* what a pass knows of one stream table, beyond its PgtDagNode */
typedef struct SchedSt
{
	PgtSchedule sched;
	double		since;			/* seconds since the last refresh */
	double		interval;		/* effective interval, seconds */
	bool		interval_known;
	bool		changed_now;	/* refreshed with changes in this pass */
	int			unit;
} SchedSt;

/*
 * A refresh unit: one stream table, or a diamond group refreshed in one
 * transaction.  Units form a DAG too; a unit is decided (due or not) once
 * every unit upstream of it has finished in this pass.
 */
typedef struct SchedUnit
{
	List	   *members;		/* node indexes, upstream first */
	List	   *dependents;		/* units reading this one */
	int			waiting;		/* upstream units not finished yet */
	bool		slowest;		/* diamond_schedule_policy of the group */
	PgtRefreshUnit run;			/* the members being refreshed */
	int			run_nodes[PGT_MAX_UNIT_MEMBERS];	/* their node indexes */
	int			job;			/* job slot while a worker runs it */
	TimestampTz started;
} SchedUnit;

typedef struct SeenEntry
{
	Oid			relid;
	uint64		seq;			/* change counter at its last refresh */
	double		backoff;		/* auto_backoff's interval factor */
	double		took;			/* seconds its last refresh took, -1 unknown */
	TimestampTz failed_at;		/* last failed refresh since the last success */
} SeenEntry;

typedef struct Pass
{
	PgtDag	   *dag;
	SchedSt    *sts;
	SchedUnit  *units;
	int			nunits;
	List	   *ready;			/* units whose upstream units finished */
	List	   *idle;			/* pgt_ids due with nothing pending */
	bool		prepared;
	uint64		seq;
	TimestampTz now;
	double		next_due;
} Pass;

/* a refresh shorter than this is not worth a worker's start */
#define PGT_WORKER_MIN_SECONDS 0.05

static int	my_slot = -1;
static HTAB *seen = NULL;
static TimestampTz last_prune = 0;

static long scheduler_pass(MemoryContext loopcxt);
static bool build_units(Pass *p);
static bool decide_unit(Pass *p, int u);
static void finish_unit(Pass *p, int u, bool failed, uint64 changed_mask,
						double took);
static void collect_jobs(Pass *p, int *running, bool wait);
static SeenEntry *seen_entry(Oid relid);
static double unit_estimate(SchedUnit *unit);
static bool extension_present(void);
static void claim_slot(Oid dboid);
static void scheduler_exit(int code, Datum arg);
static double effective_interval(Pass *p, int i);
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

	/* refresh workers a previous scheduler started finish first */
	pgt_jobs_reclaim(dboid);
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
	Pass		pass;
	Pass	   *p = &pass;
	List	   *torun = NIL;
	int			running = 0;

	memset(p, 0, sizeof(Pass));
	p->next_due = (double) pgt_scheduler_interval_ms / 1000.0;
	p->seq = pg_atomic_read_u64(&pgt_shared->slots[my_slot].change_seq);

	/* read the stream tables and the edges between them */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	p->now = GetCurrentTimestamp();
	/* the graph outlives this transaction */
	MemoryContextSwitchTo(loopcxt);
	p->dag = pgt_dag_load();

	/*
	 * COMMIT PREPARED runs in a backend that captured nothing and so wakes
	 * no one (PREPARE does wake): while prepared transactions exist, and
	 * once more after they are gone, no stream table is assumed idle.
	 */
	p->prepared = prepared_seen;
	prepared_seen = false;
	if (max_prepared_xacts > 0)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_prepared_xacts "
						"WHERE database = pg_catalog.current_database() LIMIT 1",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_prepared_xacts");
		prepared_seen = SPI_processed > 0;
		p->prepared = p->prepared || prepared_seen;
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(loopcxt);

	p->sts = palloc0(sizeof(SchedSt) * Max(p->dag->n, 1));
	for (int i = 0; i < p->dag->n; i++)
	{
		PgtDagNode *node = &p->dag->nodes[i];
		SchedSt    *st = &p->sts[i];
		char	   *detail;

		st->since = node->has_refreshed ?
			(double) (p->now - node->last_refresh) / USECS_PER_SEC : DBL_MAX;
		if (node->schedule == NULL ||
			!pgt_schedule_parse(node->schedule, &st->sched, &detail))
			st->sched.kind = PGT_SCHEDULE_CALCULATED;
	}
	for (int i = 0; i < p->dag->n; i++)
		(void) effective_interval(p, i);

	if (!build_units(p))
	{
		/* groups that would form a cycle of units, or too big: one by one */
		pgt_dag_dissolve_groups(p->dag);
		(void) build_units(p);
	}

	/*
	 * Decide the ready units; run the due ones, all but one in workers when
	 * several are due at once, the last here; wait for workers when nothing
	 * is left to start.
	 */
	for (;;)
	{
		bool		parallel = pgt_parallel_refresh_mode && pgt_max_concurrent_refreshes > 1 &&
			pgt_max_dynamic_refresh_workers > 0;

		CHECK_FOR_INTERRUPTS();
		while (p->ready != NIL)
		{
			int			u = linitial_int(p->ready);

			p->ready = list_delete_first(p->ready);
			if (decide_unit(p, u))
				torun = lappend_int(torun, u);
			else
				finish_unit(p, u, false, 0, 0);
		}
		if (torun == NIL && running == 0)
			break;

		/*
		 * Units whose last refresh took long enough to repay a worker's
		 * start go to workers while there is other work for this process;
		 * the rest run here, one by one.
		 */
		if (parallel)
		{
			ListCell   *lc;

			foreach(lc, torun)
			{
				int			u = lfirst_int(lc);
				SchedUnit  *unit = &p->units[u];

				if (running >= pgt_max_concurrent_refreshes - 1 ||
					(list_length(torun) < 2 && running == 0))
					break;
				if (unit_estimate(unit) < PGT_WORKER_MIN_SECONDS)
					continue;
				unit->started = GetCurrentTimestamp();
				unit->job = pgt_job_launch(&unit->run);
				if (unit->job < 0)
					break;
				torun = foreach_delete_current(torun, lc);
				running++;
			}
		}

		if (torun != NIL)
		{
			int			u = linitial_int(torun);
			SchedUnit  *unit = &p->units[u];
			uint64		mask = 0;
			bool		ok;

			torun = list_delete_first(torun);
			unit->started = GetCurrentTimestamp();
			ok = pgt_refresh_unit(&unit->run, &mask);
			MemoryContextSwitchTo(loopcxt);
			finish_unit(p, u, !ok, mask,
						(double) (GetCurrentTimestamp() - unit->started) / USECS_PER_SEC);
			collect_jobs(p, &running, false);
		}
		else
			collect_jobs(p, &running, true);
	}

	if (p->idle != NIL)
		touch_idle(p->idle);

	if (TimestampDifferenceExceeds(last_prune, GetCurrentTimestamp(), 60 * 1000))
	{
		prune_history();
		last_prune = GetCurrentTimestamp();
	}

	LWLockAcquire(pgt_shared->lock, LW_EXCLUSIVE);
	pgt_shared->slots[my_slot].last_tick = GetCurrentTimestamp();
	LWLockRelease(pgt_shared->lock);

	return (long) ceil(Max(p->next_due, 0.001) * 1000.0);
}

/*
 * build_units makes one unit per diamond group and per other stream table
 * and links them; false if the links form a cycle or a group has more
 * than PGT_MAX_UNIT_MEMBERS members.
 */
static bool
build_units(Pass *p)
{
	PgtDag	   *dag = p->dag;
	int		   *group_unit = palloc0(sizeof(int) * (dag->ngroups + 1));
	int			finished = 0;
	int		   *waiting;
	List	   *queue = NIL;

	p->units = palloc0(sizeof(SchedUnit) * Max(dag->n, 1));
	p->nunits = 0;
	for (int k = 0; k < dag->n_ordered; k++)
	{
		int			i = dag->order[k];
		PgtDagNode *node = &dag->nodes[i];
		int			u;

		if (node->group > 0 && group_unit[node->group] > 0)
			u = group_unit[node->group] - 1;
		else
		{
			u = p->nunits++;
			p->units[u].job = -1;
			p->units[u].slowest = true;
			if (node->group > 0)
				group_unit[node->group] = u + 1;
		}
		p->units[u].members = lappend_int(p->units[u].members, i);
		if (list_length(p->units[u].members) > PGT_MAX_UNIT_MEMBERS)
			return false;		/* too big for one refresh unit: no groups */
		if (node->convergence && !node->slowest)
			p->units[u].slowest = false;
		p->sts[i].unit = u;
	}
	for (int u = 0; u < p->nunits; u++)
	{
		SchedUnit  *unit = &p->units[u];
		ListCell   *lc;
		bool		convergence = false;

		foreach(lc, unit->members)
		{
			int			i = lfirst_int(lc);
			ListCell   *lc2;

			convergence = convergence || dag->nodes[i].convergence;
			foreach(lc2, dag->nodes[i].sources)
			{
				int			su = p->sts[lfirst_int(lc2)].unit;

				if (su != u && !list_member_int(p->units[su].dependents, u))
				{
					p->units[su].dependents = lappend_int(p->units[su].dependents, u);
					unit->waiting++;
				}
			}
		}
		if (!convergence)
			unit->slowest = false;
	}

	/* the units must be acyclic */
	waiting = palloc(sizeof(int) * Max(p->nunits, 1));
	for (int u = 0; u < p->nunits; u++)
	{
		waiting[u] = p->units[u].waiting;
		if (waiting[u] == 0)
			queue = lappend_int(queue, u);
	}
	p->ready = list_copy(queue);
	while (queue != NIL)
	{
		int			u = linitial_int(queue);
		ListCell   *lc;

		queue = list_delete_first(queue);
		finished++;
		foreach(lc, p->units[u].dependents)
		{
			if (--waiting[lfirst_int(lc)] == 0)
				queue = lappend_int(queue, lfirst_int(lc));
		}
	}
	return finished == p->nunits;
}

/*
 * decide_unit says whether unit u is to be refreshed now, and if so fills
 * in its members to refresh (the active ones).  A unit with one member is
 * due by that member's schedule; a diamond group when any member is due
 * (policy 'fastest') or when every member with a schedule of its own is
 * ('slowest'), and at once when a member was never populated.  A due unit
 * with nothing pending is recorded as idle instead.
 */
static bool
decide_unit(Pass *p, int u)
{
	SchedUnit  *unit = &p->units[u];
	bool		any_due = false;
	bool		all_scheduled_due = true;
	bool		any_scheduled = false;
	bool		forced = false;
	bool		all_idle = true;
	ListCell   *lc;

	unit->run.nmembers = 0;
	foreach(lc, unit->members)
	{
		int			i = lfirst_int(lc);
		PgtDagNode *node = &p->dag->nodes[i];
		SchedSt    *st = &p->sts[i];
		SeenEntry  *se = seen_entry(node->relid);
		bool		due = false;
		bool		upstream_changed = false;
		double		interval = st->interval * se->backoff;
		ListCell   *lc2;

		if (strcmp(node->status, "ACTIVE") != 0 && strcmp(node->status, "INITIALIZING") != 0)
			continue;
		if (unit->run.nmembers >= PGT_MAX_UNIT_MEMBERS)
			break;

		foreach(lc2, node->sources)
		{
			if (p->sts[lfirst_int(lc2)].changed_now &&
				p->sts[lfirst_int(lc2)].unit != u)
				upstream_changed = true;
		}

		if (!node->has_refreshed || node->needs_full)
			forced = due = true;
		else if (st->sched.kind == PGT_SCHEDULE_CRON)
		{
			TimestampTz fire = pgt_schedule_next_fire(&st->sched, node->last_refresh);

			if (fire <= p->now)
				due = true;
			else
				p->next_due = Min(p->next_due, (double) (fire - p->now) / USECS_PER_SEC);
		}
		else if (st->since >= interval)
			due = true;
		else
			p->next_due = Min(p->next_due, interval - st->since);

		/* a failed refresh is retried one interval after the failure */
		if (due && se->failed_at != 0)
		{
			double		since_failure = (double) (p->now - se->failed_at) / USECS_PER_SEC;

			if (since_failure < interval)
			{
				due = false;
				p->next_due = Min(p->next_due, interval - since_failure);
			}
		}

		if (upstream_changed && st->sched.kind == PGT_SCHEDULE_CALCULATED)
			due = true;
		if (st->sched.kind != PGT_SCHEDULE_CALCULATED)
		{
			any_scheduled = true;
			all_scheduled_due = all_scheduled_due && due;
		}
		any_due = any_due || due;

		/* nothing committed since its last refresh: nothing pending */
		if (!node->differential || node->needs_full || !node->has_refreshed ||
			upstream_changed || p->prepared || se->seq != p->seq)
			all_idle = false;

		unit->run_nodes[unit->run.nmembers] = i;
		unit->run.relids[unit->run.nmembers] = node->relid;
		unit->run.pgt_ids[unit->run.nmembers] = node->pgt_id;
		unit->run.nmembers++;
	}

	if (unit->run.nmembers == 0)
		return false;
	if ((unit->slowest && !forced && any_scheduled) ? !all_scheduled_due : !any_due)
		return false;
	if (all_idle)
	{
		/* it is as fresh as a refresh would make it */
		for (int m = 0; m < unit->run.nmembers; m++)
			p->idle = lappend_int(p->idle, (int) unit->run.pgt_ids[m]);
		return false;
	}
	for (int m = 0; m < unit->run.nmembers; m++)
		seen_entry(unit->run.relids[m])->seq = p->seq;
	return true;
}

/*
 * finish_unit takes note of a unit's outcome (nothing ran when
 * unit->started is 0; took is how long the refresh took) and readies the
 * units waiting for it.
 */
static void
finish_unit(Pass *p, int u, bool failed, uint64 changed_mask, double took)
{
	SchedUnit  *unit = &p->units[u];
	ListCell   *lc;

	for (int m = 0; unit->started != 0 && m < unit->run.nmembers; m++)
	{
		SeenEntry  *se = seen_entry(unit->run.relids[m]);
		int			i = unit->run_nodes[m];

		se->took = took / unit->run.nmembers;

		/* retried on its next interval even if nothing else changes */
		if (failed)
		{
			se->seq = UINT64_MAX;
			se->failed_at = GetCurrentTimestamp();
		}
		else
			se->failed_at = 0;

		/*
		 * This process's own commits (and its workers') do not count as
		 * changes (they would make every due stream table refresh again,
		 * for nothing, one interval later); the stream tables reading this
		 * one are marked instead, so they pick up what it wrote when due.
		 */
		if (m < 64 && (changed_mask & (UINT64CONST(1) << m)))
		{
			p->sts[i].changed_now = true;
			foreach(lc, p->dag->nodes[i].readers)
			{
				/* members of the same unit already read it in its transaction */
				if (p->sts[lfirst_int(lc)].unit != u)
					seen_entry(p->dag->nodes[lfirst_int(lc)].relid)->seq = UINT64_MAX;
			}
		}

		/* auto_backoff: stretch an interval the refresh cannot keep */
		if (p->sts[i].sched.kind != PGT_SCHEDULE_CRON && p->sts[i].interval > 0 && !failed)
		{
			double		eff = p->sts[i].interval * se->backoff;
			double		before = se->backoff;

			if (!pgt_auto_backoff)
				se->backoff = 1.0;
			else if (took > 0.95 * eff && se->backoff < 8.0)
				se->backoff = Min(se->backoff * 2.0, 8.0);
			else if (took < 0.45 * eff && se->backoff > 1.0)
				se->backoff = Max(se->backoff / 2.0, 1.0);
			if (se->backoff != before && pgt_auto_backoff)
				ereport(LOG,
						(errmsg("pg_trickle: refreshing stream table %u took %.3f s of its %.3f s interval; its interval is now %.3f s",
								unit->run.relids[m], took, eff,
								p->sts[i].interval * se->backoff)));
			/* due again one (stretched) interval after this refresh began */
			p->next_due = Min(p->next_due,
							  Max(p->sts[i].interval * se->backoff - took, 0.0));
		}
		else if (failed && p->sts[i].interval > 0)
			p->next_due = Min(p->next_due, p->sts[i].interval * se->backoff);
	}

	foreach(lc, unit->dependents)
	{
		int			d = lfirst_int(lc);

		if (--p->units[d].waiting == 0)
			p->ready = lappend_int(p->ready, d);
	}
}

/*
 * collect_jobs finishes the units whose workers ended; with wait, sleeps
 * until at least one did.
 */
static void
collect_jobs(Pass *p, int *running, bool wait)
{
	for (;;)
	{
		int			ended = 0;

		for (int u = 0; u < p->nunits; u++)
		{
			SchedUnit  *unit = &p->units[u];
			bool		failed;
			bool		recorded;
			uint64		mask;
			double		took;

			if (unit->job < 0 ||
				!pgt_job_poll(unit->job, &failed, &recorded, &mask, &took))
				continue;
			unit->job = -1;
			(*running)--;
			ended++;
			if (took < 0)
				took = (double) (GetCurrentTimestamp() - unit->started) / USECS_PER_SEC;
			if (failed && !recorded)
			{
				MemoryContext cxt = CurrentMemoryContext;

				ereport(LOG,
						(errmsg("pg_trickle refresh worker stopped before finishing its refresh of %d stream table(s)",
								unit->run.nmembers)));
				pgt_refresh_unit_lost(&unit->run,
									  "interrupted: the refresh worker stopped before finishing");
				MemoryContextSwitchTo(cxt);
			}
			finish_unit(p, u, failed, mask, took);
		}
		if (ended > 0 || !wait || *running == 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

/*
 * unit_estimate is what the unit's members took last time, in seconds (0
 * when one of them has not been refreshed by this process yet).
 */
static double
unit_estimate(SchedUnit *unit)
{
	double		total = 0;

	for (int m = 0; m < unit->run.nmembers; m++)
	{
		SeenEntry  *se = seen_entry(unit->run.relids[m]);

		if (se->took < 0)
			return 0;
		total += se->took;
	}
	return total;
}

static SeenEntry *
seen_entry(Oid relid)
{
	bool		found;
	SeenEntry  *se = hash_search(seen, &relid, HASH_ENTER, &found);

	if (!found)
	{
		se->seq = UINT64_MAX;
		se->backoff = 1.0;
		se->failed_at = 0;
		se->took = -1;
	}
	return se;
}

/*
 * effective_interval returns the refresh interval of stream table i in
 * seconds: its duration, or for 'calculated' the shortest interval of its
 * readers (default_schedule_seconds when it has none).  Cron schedules
 * count as their nominal gap for their upstreams.
 */
static double
effective_interval(Pass *p, int i)
{
	SchedSt    *st = &p->sts[i];
	double		best = DBL_MAX;
	ListCell   *lc;

	if (st->interval_known)
		return st->interval > 0 ? st->interval : pgt_default_schedule_seconds;
	st->interval_known = true;
	switch (st->sched.kind)
	{
		case PGT_SCHEDULE_INTERVAL:
			st->interval = (double) Max(st->sched.interval_seconds, pgt_min_schedule_seconds);
			return st->interval;
		case PGT_SCHEDULE_CRON:
			st->interval = 60.0;
			return st->interval;
		case PGT_SCHEDULE_CALCULATED:
			foreach(lc, p->dag->nodes[i].readers)
				best = Min(best, effective_interval(p, lfirst_int(lc)));
			st->interval = best == DBL_MAX ? (double) pgt_default_schedule_seconds : best;
			return st->interval;
	}
	return pgt_default_schedule_seconds;	/* keep compiler quiet */
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
