/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Bringing a stream table up to date.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/refresh.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_REFRESH_H
#define PG_TRICKLE_REFRESH_H

#include "postgres.h"

#include "pg_trickle/catalog.h"
#include "utils/snapshot.h"

typedef enum PgtInitiator
{
	PGT_INITIATED_MANUAL,
	PGT_INITIATED_SCHEDULER,
	PGT_INITIATED_INITIAL
} PgtInitiator;

/*
 * History row (status RUNNING) that the next refresh completes instead of
 * inserting its own; set by the scheduler, 0 otherwise.
 */
extern int64 pgt_running_history_id;
extern Snapshot pgt_refresh_pinned_snapshot;

extern void pgt_refresh_immediate_full(Oid relid);
extern bool pgt_refresh_run(Oid relid, PgtInitiator initiator,
							bool force_full);

#endif							/* PG_TRICKLE_REFRESH_H */
