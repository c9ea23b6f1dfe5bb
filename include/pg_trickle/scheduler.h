/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  Background workers that refresh stream tables on their schedules.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/scheduler.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_SCHEDULER_H
#define PG_TRICKLE_SCHEDULER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define PGT_MAX_DATABASES	64		/* databases with a running scheduler */
#define PGT_MAX_ABSENT		4096	/* databases known to lack pg_trickle */

/* one database's scheduler, in shared memory */
typedef struct PgtDbSlot
{
	Oid			dboid;			/* InvalidOid = free slot */
	int			pid;			/* scheduler pid, 0 if none */
	Latch	   *latch;			/* the scheduler's latch, NULL if none */
	TimestampTz last_tick;		/* end of the scheduler's last pass */
	int64		refreshes;		/* refreshes run since start */
	int64		failures;		/* failed refreshes since start */
	pg_atomic_uint64 change_seq;	/* bumped by each commit that wrote a buffer */
} PgtDbSlot;

#define PGT_MAX_REFRESH_JOBS	64	/* cap of max_dynamic_refresh_workers */
#define PGT_MAX_UNIT_MEMBERS	64	/* stream tables one worker refreshes */

typedef enum PgtJobState
{
	PGT_JOB_FREE,
	PGT_JOB_CLAIMED,			/* a scheduler launched a worker for it */
	PGT_JOB_DONE				/* the worker reported; the scheduler frees it */
} PgtJobState;

/*
 * One refresh handed to a dynamic worker: a stream table, or a diamond
 * group refreshed in one transaction.
 */
typedef struct PgtRefreshJob
{
	PgtJobState state;
	uint32		generation;		/* bumped at each claim; the worker checks it */
	Oid			dboid;
	int			scheduler_pid;
	int			worker_pid;		/* 0 until the worker started */
	Latch	   *scheduler_latch;
	int			nmembers;
	Oid			relids[PGT_MAX_UNIT_MEMBERS];
	int64		pgt_ids[PGT_MAX_UNIT_MEMBERS];
	bool		failed;
	bool		recorded;		/* the outcome is in the catalog already */
	uint64		changed_mask;	/* bit i: member i changed rows */
	double		seconds;		/* how long the refresh took */
} PgtRefreshJob;

/* what one refresh unit is, for pgt_refresh_unit */
typedef struct PgtRefreshUnit
{
	int			nmembers;
	Oid			relids[PGT_MAX_UNIT_MEMBERS];
	int64		pgt_ids[PGT_MAX_UNIT_MEMBERS];
} PgtRefreshUnit;

typedef struct PgtShared
{
	LWLock	   *lock;			/* protects everything below */
	Latch	   *launcher_latch;
	int			launcher_pid;
	bool		rescan_requested;	/* start schedulers now, no backoff */
	Oid			absent[PGT_MAX_ABSENT]; /* databases without pg_trickle */
	Oid			wanted[PGT_MAX_DATABASES];	/* CREATE EXTENSION committed here */
	PgtDbSlot	slots[PGT_MAX_DATABASES];
	PgtRefreshJob jobs[PGT_MAX_REFRESH_JOBS];
} PgtShared;

extern PgtShared *pgt_shared;
extern bool pgt_scheduler_silent_commits;

extern void pgt_shmem_request(void);
extern void pgt_shmem_startup(void);
extern void pgt_scheduler_register_launcher(void);
extern void pgt_scheduler_wake_database(Oid dboid);
extern void pgt_scheduler_wake_at_commit(void);
extern void pgt_scheduler_wake_launcher(Oid dboid);
extern void pgt_scheduler_note_absent(Oid dboid);
extern void pgt_scheduler_stop_database(Oid dboid);
extern bool pgt_scheduler_running(Oid dboid);

extern void pgt_scheduler_count(Oid dboid, int refreshes, int failures);

/* worker.c */
extern bool pgt_refresh_unit(const PgtRefreshUnit *unit, uint64 *changed_mask);
extern int	pgt_job_launch(const PgtRefreshUnit *unit);
extern bool pgt_job_poll(int job, bool *failed, bool *recorded,
						 uint64 *changed_mask, double *seconds);
extern void pgt_refresh_unit_lost(const PgtRefreshUnit *unit, const char *message);
extern void pgt_jobs_reclaim(Oid dboid);
extern int	pgt_jobs_running(Oid dboid);

extern PGDLLEXPORT void pgt_launcher_main(Datum arg);
extern PGDLLEXPORT void pgt_refresh_worker_main(Datum arg);
extern PGDLLEXPORT void pgt_scheduler_main(Datum arg);

#endif							/* PG_TRICKLE_SCHEDULER_H */
