/*-------------------------------------------------------------------------
 *
 * pg_trickle.h
 *	  Names and GUC variables shared by every pg_trickle module.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/pg_trickle.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_H
#define PG_TRICKLE_H

#include "postgres.h"

#define PGT_VERSION				"0.2.0"
#define PGT_SCHEMA				"pgtrickle"
#define PGT_CHANGES_SCHEMA		"pgtrickle_changes"
#define PGT_HIDDEN_PREFIX		"__pgt_"
#define PGT_ROW_ID_COLUMN		"__pgt_row_id"

/* GUC variables (src/guc.c) */
extern bool pgt_block_source_ddl;
extern bool pgt_enabled;
extern int	pgt_scheduler_interval_ms;
extern int	pgt_min_schedule_seconds;
extern int	pgt_default_schedule_seconds;
extern int	pgt_max_consecutive_errors;
extern char *pgt_cdc_mode;
extern double pgt_differential_max_change_ratio;
extern int	pgt_volatile_function_policy;
extern int	pgt_ivm_topk_max_limit;
extern int	pgt_max_grouping_set_branches;
extern int	pgt_history_retention_days;
extern bool pgt_parallel_refresh_mode;
extern int	pgt_max_concurrent_refreshes;
extern int	pgt_max_dynamic_refresh_workers;
extern bool pgt_auto_backoff;
extern char *pgt_test_waitpoint;

/*
 * PGT_WAITPOINT(name, n) pauses here while another session holds
 * pg_advisory_lock(7255, n), when pg_trickle.test_waitpoint = name.
 */
#define PGT_WAITPOINT(name, n) \
	do { \
		if (pgt_test_waitpoint != NULL && strcmp(pgt_test_waitpoint, (name)) == 0) \
			pgt_waitpoint(n); \
	} while (0)
extern void pgt_waitpoint(int n);

typedef enum PgtVolatilePolicy
{
	PGT_VOLATILE_REJECT,
	PGT_VOLATILE_WARN,
	PGT_VOLATILE_ALLOW
} PgtVolatilePolicy;

extern void pgt_guc_init(void);

/*
 * pgt_internal_write_depth counts pg_trickle's own writes to stream tables in this
 * backend; the guard trigger lets a change through only while it is > 0.
 */
extern int	pgt_internal_write_depth;

/*
 * pgt_installing_triggers is nonzero while pg_trickle itself creates
 * triggers on sources; any other CREATE TRIGGER of one of its triggers
 * comes from restoring a dump (see catalog/restore.c).
 */
extern int	pgt_installing_triggers;

#endif							/* PG_TRICKLE_H */
