/*-------------------------------------------------------------------------
 *
 * dvm.h
 *	  Differential view maintenance: from a defining query to the SQL that
 *	  computes and applies its delta.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/dvm.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_DVM_H
#define PG_TRICKLE_DVM_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "pg_trickle/analyze.h"

/* how the delta of a stream table is applied to its storage */
typedef enum PgtDeltaStrategy
{
	PGT_DELTA_MULTISET,			/* weighted rows: delete/insert copies */
	PGT_DELTA_KEYED,			/* recompute the groups whose key changed */
	PGT_DELTA_SINGLETON			/* recompute the one row */
} PgtDeltaStrategy;

/* one base relation whose change buffer feeds the delta */
typedef struct PgtDeltaSource
{
	Oid			relid;
	Bitmapset  *attnums;		/* columns the query reads */
} PgtDeltaSource;

extern const char *pgt_dvm_blocker(Query *query, List **sources);
extern char *pgt_dvm_apply_sql(Query *query, PgtAnalysis *analysis,
							   const char *storage, const char *frontier,
							   List *changed, PgtDeltaStrategy *strategy);

#endif							/* PG_TRICKLE_DVM_H */
