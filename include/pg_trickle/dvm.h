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
	PGT_DELTA_SINGLETON,		/* recompute the one row */
	PGT_DELTA_TOPK,				/* ORDER BY ... LIMIT n: the first n of the
								 * stored rows and the changed ones */
	PGT_DELTA_SETOP,			/* INTERSECT/EXCEPT: recompute the touched rows */
	PGT_DELTA_WINDOW,			/* window functions: recompute touched partitions */
	PGT_DELTA_RECURSIVE			/* WITH RECURSIVE: weighted rows from a fixpoint */
} PgtDeltaStrategy;

/* one base relation whose change buffer feeds the delta */
typedef struct PgtDeltaSource
{
	Oid			relid;
	Bitmapset  *attnums;		/* columns the query reads */
} PgtDeltaSource;

/* algebraic aggregates (aggregate.c) */
typedef enum PgtAggKind
{
	PGT_AGG_KEY,
	PGT_AGG_COUNT_STAR,
	PGT_AGG_COUNT,
	PGT_AGG_SUM,
	PGT_AGG_AVG,
	PGT_AGG_MIN,
	PGT_AGG_MAX,
	PGT_AGG_VAR					/* var_*, variance, stddev_* of integers */
} PgtAggKind;

typedef struct PgtAggItem
{
	PgtAggKind	kind;
	int			colno;			/* visible column position, from 1 */
	TargetEntry *tle;
	Expr	   *arg;			/* aggregate argument, or NULL */
	int			argno;			/* child column __pgt_a<argno>; 0 = none */
	Expr	   *filter;			/* FILTER condition, or NULL */
	bool		var_sample;		/* PGT_AGG_VAR: sample (n - 1), not population */
	bool		var_root;		/* PGT_AGG_VAR: standard deviation */
	int			filterno;		/* child column __pgt_f<filterno>; 0 = none */
} PgtAggItem;

typedef struct PgtAggLayout
{
	List	   *items;			/* PgtAggItem *, one per visible column */
	bool		grouped;		/* has GROUP BY */
} PgtAggLayout;

extern PgtAggLayout *pgt_dvm_agg_layout(Query *query);
extern List *pgt_dvm_agg_hidden_columns(PgtAggLayout *layout);
extern Query *pgt_dvm_agg_child(Query *query, PgtAggLayout *layout);
extern char *pgt_dvm_agg_child_names(PgtAggLayout *layout);
extern char *pgt_dvm_agg_full_sql(PgtAggLayout *layout, List *columns,
								  const char *storage, const char *child_sql);
extern char *pgt_dvm_agg_apply_sql(PgtAggLayout *layout, List *columns,
								   const char *storage, const char *delta_sql,
								   const char *child_sql);

extern char *pgt_dvm_agg_keys_sql(PgtAggLayout *layout, List *columns,
								  const char *delta_sql);

extern Query *pgt_dvm_prepare(Query *query);
extern char *pgt_dvm_full_sql(Query *query, PgtAnalysis *analysis,
							  const char *storage);
extern char *pgt_dvm_recursive_full_sql(Query *query, PgtAnalysis *analysis,
										const char *stname);
extern const char *pgt_dvm_blocker(Query *query, List **sources);
extern const char *pgt_dvm_size_blocker(Query *query, PgtAnalysis *analysis,
										List *sources);
extern char *pgt_dvm_apply_sql(Query *query, PgtAnalysis *analysis,
							   const char *storage, const char *frontier,
							   List *changed, PgtDeltaStrategy *strategy);
extern char *pgt_dvm_immediate_apply_sql(Query *query, PgtAnalysis *analysis,
										 const char *storage, Oid source, Oid firing,
										 bool has_old, bool has_new,
										 PgtDeltaStrategy *strategy, char **keys_sql);

#endif							/* PG_TRICKLE_DVM_H */
