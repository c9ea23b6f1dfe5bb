/*-------------------------------------------------------------------------
 *
 * dvm_internal.h
 *	  What the files of the delta engine (src/dvm) share among themselves.
 *
 * IDENTIFICATION
 *	  src/dvm/dvm_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_DVM_INTERNAL_H
#define PG_TRICKLE_DVM_INTERNAL_H

#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "lib/stringinfo.h"
#include "utils/queryenvironment.h"
#include "access/tupdesc.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/dvm.h"

/*
 * What building one delta needs: the frontier parameter, the sources that
 * changed, the derived anti-join leaves of outer joins met so far.
 */
typedef struct DvmContext
{
	const char *frontier;		/* SQL for the frontier: always "$1" */
	List	   *changed;		/* relids with changes in the window */
	List	   *derived;		/* DerivedLeaf *: anti-join legs of outer joins */
	int			nderived;
	List	   *sources;		/* PgtDeltaSource *: columns read per relation */
	List	   *columns;		/* PgtColumn *: the stream table's columns */
	/* IMMEDIATE: this source's changes are the statement's transition tables */
	Oid			ivm_source;
	bool		ivm_old;		/* an old-rows table (__pgt_old) exists */
	bool		ivm_new;		/* a new-rows table (__pgt_new) exists */
	char	  **ivm_keys;		/* where to put the group-lock keys SELECT */
} DvmContext;

/*
 * A recursive CTE whose rows are the stream table's (recursive.c): its
 * non-recursive term and recursive term as standalone queries.
 */
typedef struct PgtRecursive
{
	Query	   *base;			/* non-recursive term, prepared */
	Query	   *step;			/* recursive term, as written */
	Index		self;			/* its range table entry of the CTE */
	bool		all;			/* UNION ALL */
	int			ncols;
	List	   *colnames;		/* String: the CTE's columns */
	List	   *coltypes;		/* their types */
	int		   *outcol;			/* per CTE column: first stream table column */
	List	   *stcol;			/* per stream table column: its CTE column */
	List	   *stcolumns;		/* PgtColumn *: the stream table's columns */
	bool	   *notnull;		/* per CTE column: never NULL */
} PgtRecursive;

/*
 * Subquery rewrites (sublink.c, sublink_scalar.c): a subquery that becomes
 * a derived table joined to the outer query.
 */
typedef struct PulledSublink
{
	Query	   *derived;		/* SELECT DISTINCT ... */
	List	   *conds;			/* join conditions, outer side at level 0 */
	bool		anti;
	Index		rtindex;		/* of the derived table, once added */
	Node	   *guard;			/* NOT IN over nullable values: a filter on
								 * the outer rows (see not_in_guard) */
} PulledSublink;

/* what pgt_dvm_scalar_mutator works on */
typedef struct ScalarContext
{
	Query	   *q;
	Node	   *conjunct;		/* the WHERE conjunct, NULL elsewhere */
	List	   *conds;			/* join conditions to add to WHERE */
	bool		in_having;		/* the value is read as min() of the group */
	List	   *left_joins;		/* select list: PulledSublink * to LEFT JOIN */
} ScalarContext;

/*
 * Outer joins (outer_join.c, delta.c): a derived leaf stands in the place of the preserved side of an outer
 * join in its NULL-padded term: the rows of that side without a match.
 * Its state, delta and pre-state are generated SQL (see anti_join_sql).
 */
typedef struct DerivedLeaf
{
	char	   *name;			/* alias of the range table entry */
	char	   *delta_sql;
	char	   *old_sql;
} DerivedLeaf;

/* sqlgen.c */
extern char *pgt_dvm_deparse(Query *q);
#define PGT_MAX_DELTA_SQL (2 * 1024 * 1024)
extern void pgt_dvm_gen_begin(QueryEnvironment *env, Oid firing);
extern void pgt_dvm_gen_end(void);
extern void pgt_dvm_gen_reset_size(void);
extern Query *pgt_dvm_parse_sql(const char *sql);
extern char *pgt_dvm_share_part(char *sql);
extern char *pgt_dvm_share_part_named(char *sql);
extern void pgt_dvm_inline_part(const char *name, TupleDesc desc, const char *sql);
extern Query *pgt_dvm_parse_sql_params(const char *sql, Oid *types, int ntypes);
extern char *pgt_dvm_with_shared_parts(char *sql);

/* delta.c: the delta rules */
extern Query *pgt_dvm_leaf_delta_query(Query *q, Index rti, DvmContext *ctx);
extern Query *pgt_dvm_leaf_old_query(Query *q, Index rti, DvmContext *ctx);
extern bool pgt_dvm_query_may_change(Query *q, DvmContext *ctx);
extern char *pgt_dvm_base_columns_sql(Oid relid, const char *alias, List **colnames);
extern bool pgt_dvm_in_nullable_side(Node *node, Index rti);
extern bool pgt_dvm_insert_monotone(Query *q);
extern char *pgt_dvm_any_delta(Query *q, DvmContext *ctx);
extern char *pgt_dvm_spj_delta(Query *q, DvmContext *ctx);
extern char *pgt_dvm_setop_delta(Query *q, DvmContext *ctx);
extern void pgt_dvm_consolidation_lists(List *columns, StringInfo sel, StringInfo grp);
extern void pgt_dvm_append_apply_consolidated(StringInfo sql, PgtAnalysis *analysis,
											  const char *storage, const char *third,
											  const char *abandon, bool per_row);
extern void pgt_dvm_keyed_parts(Query *q, DvmContext *ctx, char **delta, char **recompute,
								List **keytles);
extern void pgt_dvm_restrict_to_keys(Query *q, List *exprs, List *names);
extern bool pgt_dvm_expr_is_not_null(Query *q, Node *expr);
extern const char *pgt_dvm_col_list(List *columns, const char *prefix, bool keys_only);
extern List *pgt_dvm_visible_tlist(List *tlist);
extern char *pgt_dvm_recheck_sql(List *columns, const char *a, const char *b, bool exact,
								 bool keys_only);

/* blocker.c: what the engine supports */
extern const char *pgt_dvm_top_blocker(Query *q, PgtDeltaStrategy *strategy,
											List **sources);

/* outer_join.c: deltas of outer joins */
extern DerivedLeaf *pgt_dvm_find_derived(DvmContext *ctx, RangeTblEntry *rte);
extern JoinExpr *pgt_dvm_find_outer_join(Node *node);
extern char *pgt_dvm_outer_join_delta(Query *q, JoinExpr *j, DvmContext *ctx);

/* recursive.c */
extern const char *pgt_dvm_recursive_split(Query *q, PgtRecursive *rec);
extern Query *pgt_dvm_recursive_step_for_blocker(PgtRecursive *rec);
extern char *pgt_dvm_recursive_delta(Query *q, PgtAnalysis *analysis, const char *storage,
									 DvmContext *ctx, char **abandon);

/* apply.c */
extern char *pgt_dvm_multiset_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
										DvmContext *ctx);
extern char *pgt_dvm_multiset_apply_delta(const char *delta, PgtAnalysis *analysis,
										  const char *storage, const char *abandon,
										  bool per_row);
extern char *pgt_dvm_keyed_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
									 DvmContext *ctx);
extern char *pgt_dvm_singleton_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage);

/* recompute.c */
extern char *pgt_dvm_order_by_list(Query *q, List *names);
extern const char *pgt_dvm_topk_blocker(Query *q);
extern char *pgt_dvm_topk_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
									DvmContext *ctx);
extern char *pgt_dvm_setop_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
									 DvmContext *ctx);
extern const char *pgt_dvm_window_blocker(Query *q);
extern const char *pgt_dvm_distinct_on_blocker(Query *q);
extern char *pgt_dvm_window_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
									  DvmContext *ctx);

/* prepare.c */
extern Query *pgt_dvm_prepare_query(Query *query);
extern Node *pgt_dvm_wrap_jointree_node(Query *q, Node *node);
extern void pgt_dvm_collect_rtindexes(Node *node, List **list);
extern JoinExpr *pgt_dvm_find_join(Node *node, int rtindex);
extern void pgt_dvm_cte_to_subquery(RangeTblEntry *rte, Query *sub);

/* sublink.c: semi/anti joins for [NOT] EXISTS and [NOT] IN, shared helpers */
extern void pgt_dvm_pull_up_sublinks(Query *q);
extern bool pgt_dvm_level_has_sublink(Query *q);
extern Index pgt_dvm_add_derived(Query *q, Query *derived);
extern bool pgt_dvm_split_where(Query *s, List **rest, List **inner, List **outer, List **ops,
								Node **ne_inner, Node **ne_outer, Oid *ne_op);

/* sublink_scalar.c: scalar subqueries, ANY / ALL */
extern Node *pgt_dvm_count_of(Node *arg);
extern Node *pgt_dvm_make_agg(const char *name, Node *arg);
extern Node *pgt_dvm_pull_scalars(Query *q, Node *conjunct, List **extra);
extern Node *pgt_dvm_pull_scalars_left_join(Query *q, Node *c, List **left_joins);
extern Node *pgt_dvm_scalar_mutator(Node *node, ScalarContext *ctx);

/* lateral.c: LATERAL subqueries */
extern void pgt_dvm_decorrelate_lateral(Query *q);

#endif							/* PG_TRICKLE_DVM_INTERNAL_H */
