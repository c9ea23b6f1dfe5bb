/*-------------------------------------------------------------------------
 *
 * delta.c
 *	  Differential view maintenance: from a defining query to the SQL that
 *	  computes and applies its delta.
 *
 *	  Deltas are Z-sets: rows carrying an integer weight __pgt_w (+n: n
 *	  copies appeared, -n: n copies disappeared).  The delta of a base
 *	  table for one refresh is the rows of its change buffer whose writer
 *	  committed after the stream table's frontier (see cdc.c).
 *
 *	  Select-project-join blocks (any number of inner joins, any join
 *	  condition, WHERE, any expression in the select list) are
 *	  differentiated with the telescoping rule
 *
 *	    d(R1 x ... x Rn) = SUM_i  R1' x ... x R(i-1)' x dRi x R(i+1) x ... x Rn
 *
 *	  where Rj is the current state and Rj' = Rj + (-dRj) the state before
 *	  the window, and the weight of a result row is the product of the
 *	  weights of its inputs.  The rule is exact for every number of
 *	  changed inputs, including deletes on several sides in one window (no
 *	  approximation of the pre-state).  Only inputs that changed in the
 *	  window contribute a term.  A subquery in FROM (an inlined view or
 *	  CTE, or a derived table) is an input whose delta is computed
 *	  recursively the same way.
 *
 *	  Each term is built by copying the analyzed query and replacing range
 *	  table entries by subqueries (the delta, or the pre-state), then
 *	  deparsed with the server's own deparser, so every expression the
 *	  server accepts survives unchanged.
 *
 *	  The whole result is applied by one of three strategies:
 *	  - MULTISET (no grouping): the weighted rows are consolidated and
 *	    applied as deletions of |w| stored copies and insertions of w
 *	    copies, in one statement;
 *	  - KEYED (GROUP BY, DISTINCT, UNION): the group keys touched by the
 *	    delta of the FROM/WHERE part are collected, those groups are
 *	    recomputed by the query itself restricted to those keys, and MERGE
 *	    replaces, inserts or deletes the stored rows of those keys.  Any
 *	    aggregate, HAVING and FILTER therefore behaves exactly as the
 *	    server computes it; cost follows the size of the touched groups;
 *	  - SINGLETON (aggregate without GROUP BY): its one row is recomputed
 *	    when any input changed.
 *
 * IDENTIFICATION
 *	  src/dvm/delta.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/cdc.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"
#include "rewrite/rewriteManip.h"

typedef struct DvmContext
{
	const char *frontier;		/* quoted pg_snapshot literal */
	List	   *changed;		/* relids with changes in the window */
} DvmContext;

typedef struct BlockerContext
{
	const char *reason;
	List	   *sources;		/* PgtDeltaSource * */
} BlockerContext;

static Query *prepare_query(Query *query);
static void inline_ctes(Query *query, List *outer_ctes);
static const char *top_blocker(Query *q, PgtDeltaStrategy *strategy,
							   List **sources);
static const char *spj_blocker(Query *q, BlockerContext *ctx);
static bool blocker_walker(Node *node, BlockerContext *ctx);
static void add_source_cols(BlockerContext *ctx, Oid relid, Bitmapset *cols);
static bool setop_all_union(Node *setop, bool *all);
static bool query_may_change(Query *q, DvmContext *ctx);
static bool may_change_walker(Node *node, DvmContext *ctx);
static char *spj_delta(Query *q, DvmContext *ctx);
static char *setop_delta(Query *q, DvmContext *ctx);
static char *any_delta(Query *q, DvmContext *ctx);
static Query *leaf_delta_query(Query *q, Index rti, DvmContext *ctx);
static Query *leaf_old_query(Query *q, Index rti, DvmContext *ctx);
static char *base_columns_sql(Oid relid, const char *alias, List **colnames);
static char *base_delta_sql(Oid relid, DvmContext *ctx, bool negate,
							List **colnames);
static void replace_rte(Query *q, Index rti, Query *sub, List *colnames);
static void finish_term(Query *t, List *wvars);
static Query *parse_sql(const char *sql);
static List *visible_names(Query *q);
static char *deparse(Query *q);
static char *keyed_apply_sql(Query *q, PgtAnalysis *analysis,
							 const char *storage, DvmContext *ctx);
static char *multiset_apply_sql(Query *q, PgtAnalysis *analysis,
								const char *storage, DvmContext *ctx);
static char *singleton_apply_sql(Query *q, PgtAnalysis *analysis,
								 const char *storage);
static bool expr_is_not_null(Query *q, Node *expr);
static const char *col_list(List *columns, const char *prefix, bool keys_only);
static char *recheck_sql(List *columns, const char *a, const char *b,
						 bool keys_only);

/*
 * pgt_dvm_blocker returns NULL if query can be maintained differentially,
 * else a sentence saying why not.  *sources receives the base relations
 * whose changes must be captured, with the columns read (PgtDeltaSource).
 * Runs with the caller's search_path locked (see pgt_role_switch).
 */
const char *
pgt_dvm_blocker(Query *query, List **sources)
{
	PgtDeltaStrategy strategy;

	return top_blocker(prepare_query(query), &strategy, sources);
}

/*
 * pgt_dvm_apply_sql returns one SQL statement that applies to storage (a
 * quoted, qualified table name) the delta of query between frontier (a
 * pg_snapshot in text form) and the snapshot the statement runs with.
 * changed lists the base relids with changes in that window; if none of
 * query's inputs changed, returns NULL.
 *
 * The statement returns one row: rows deleted, rows inserted, delta rows
 * (for MULTISET; KEYED and SINGLETON report rows merged as inserted).
 */
char *
pgt_dvm_apply_sql(Query *query, PgtAnalysis *analysis, const char *storage,
				  const char *frontier, List *changed,
				  PgtDeltaStrategy *strategy)
{
	DvmContext	ctx;
	Query	   *q = prepare_query(query);
	List	   *sources = NIL;
	const char *blocker = top_blocker(q, strategy, &sources);

	if (blocker != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query cannot be maintained differentially"),
				 errdetail_internal("%s", blocker)));

	ctx.frontier = quote_literal_cstr(frontier);
	ctx.changed = changed;
	if (!query_may_change(q, &ctx))
		return NULL;

	if (analysis->agg_layout != NULL)
	{
		PgtAggLayout *layout = pgt_dvm_agg_layout(q);
		char	   *delta;

		if (layout == NULL)
			elog(ERROR, "aggregate layout of a stream table query changed");
		delta = spj_delta(pgt_dvm_agg_child(q, layout), &ctx);
		if (delta == NULL)
			return NULL;
		*strategy = PGT_DELTA_KEYED;
		return pgt_dvm_agg_apply_sql(layout, analysis->columns, storage, delta);
	}

	switch (*strategy)
	{
		case PGT_DELTA_MULTISET:
			return multiset_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_KEYED:
			return keyed_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_SINGLETON:
			return singleton_apply_sql(q, analysis, storage);
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * pgt_dvm_prepare returns query with views expanded and CTEs inlined.
 */
Query *
pgt_dvm_prepare(Query *query)
{
	return prepare_query(query);
}

/*
 * pgt_dvm_full_sql returns the INSERT that fills the (emptied) storage of
 * an algebraic aggregate, hidden columns included, or NULL when the plain
 * query result is all storage needs.
 */
char *
pgt_dvm_full_sql(Query *query, PgtAnalysis *analysis, const char *storage)
{
	Query	   *q;

	if (analysis->agg_layout == NULL)
		return NULL;
	q = prepare_query(query);
	return pgt_dvm_agg_full_sql(analysis->agg_layout, analysis->columns, storage,
								deparse(pgt_dvm_agg_child(q, pgt_dvm_agg_layout(q))));
}

/*
 * prepare_query expands views (the rewriter) and inlines non-recursive
 * CTEs into subqueries, so that the rest of this file sees base tables and
 * subqueries only.
 */
static Query *
prepare_query(Query *query)
{
	List	   *rewritten = QueryRewrite(copyObject(query));
	Query	   *q;

	if (list_length(rewritten) != 1)
		elog(ERROR, "unexpected rewrite result for a stream table query");
	q = linitial_node(Query, rewritten);
	inline_ctes(q, NIL);
	return q;
}

/*
 * inline_ctes replaces references to the non-recursive CTEs of query (and,
 * recursively, of its subqueries) by copies of the CTE's query.
 */
static void
inline_ctes(Query *query, List *outer_ctes)
{
	ListCell   *lc;
	List	   *levels;

	if (query->hasRecursive)
		return;					/* reported by the blocker */

	levels = lcons(query->cteList, outer_ctes);
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_CTE && !rte->self_reference)
		{
			List	   *ctes = list_nth(levels, rte->ctelevelsup);
			ListCell   *lc2;

			foreach(lc2, ctes)
			{
				CommonTableExpr *cte = lfirst(lc2);

				if (strcmp(cte->ctename, rte->ctename) == 0)
				{
					Query	   *sub = copyObject(castNode(Query, cte->ctequery));

					/* the CTE now sits one level deeper than it was defined */
					IncrementVarSublevelsUp((Node *) sub, rte->ctelevelsup, 1);
					rte->rtekind = RTE_SUBQUERY;
					rte->subquery = sub;
					rte->security_barrier = false;
					rte->ctename = NULL;
					rte->ctelevelsup = 0;
					rte->self_reference = false;
					rte->coltypes = NIL;
					rte->coltypmods = NIL;
					rte->colcollations = NIL;
					break;
				}
			}
		}
	}
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_SUBQUERY)
			inline_ctes(rte->subquery, levels);
	}
	query->cteList = NIL;
}

/*
 * top_blocker classifies the (prepared) top-level query and checks that
 * every part can be differentiated.
 */
static const char *
top_blocker(Query *q, PgtDeltaStrategy *strategy, List **sources)
{
	BlockerContext ctx;
	const char *reason;

	memset(&ctx, 0, sizeof(ctx));

	if (q->hasRecursive)
		return "WITH RECURSIVE is not supported by the differential engine yet.";
	if (q->hasWindowFuncs)
		return "Window functions are not supported by the differential engine yet.";
	if (q->hasTargetSRFs)
		return "Set-returning functions in the select list are not supported by the differential engine yet.";
	if (q->limitCount != NULL || q->limitOffset != NULL)
		return "ORDER BY ... LIMIT (TopK) is not supported by the differential engine yet.";
	if (q->groupingSets != NIL)
		return "GROUPING SETS, ROLLUP and CUBE are not supported by the differential engine yet.";
	if (q->hasDistinctOn)
		return "DISTINCT ON is not supported by the differential engine yet.";

	if (q->setOperations != NULL)
	{
		bool		all;
		ListCell   *lc;

		if (q->hasAggs || q->groupClause != NIL || q->distinctClause != NIL)
			return "Aggregates over UNION are not supported by the differential engine yet.";
		if (!setop_all_union(q->setOperations, &all))
			return "INTERSECT and EXCEPT, and UNION mixed with UNION ALL, are not supported by the differential engine yet.";
		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind != RTE_SUBQUERY)
				continue;
			if (rte->subquery->hasAggs || rte->subquery->groupClause != NIL ||
				rte->subquery->distinctClause != NIL ||
				rte->subquery->setOperations != NULL)
				return "Branches of UNION must be plain SELECT ... FROM ... WHERE blocks for the differential engine.";
			if ((reason = spj_blocker(rte->subquery, &ctx)) != NULL)
				return reason;
		}
		*strategy = all ? PGT_DELTA_MULTISET : PGT_DELTA_KEYED;
		*sources = ctx.sources;
		return NULL;
	}

	if (q->hasAggs || q->groupClause != NIL || q->havingQual != NULL)
	{
		ListCell   *lc;

		foreach(lc, q->groupClause)
		{
			SortGroupClause *sgc = lfirst(lc);
			TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);

			if (tle->resjunk)
				return "Every GROUP BY expression must appear in the select list for the differential engine.";
		}
		*strategy = q->groupClause != NIL ? PGT_DELTA_KEYED : PGT_DELTA_SINGLETON;
	}
	else if (q->distinctClause != NIL)
		*strategy = PGT_DELTA_KEYED;
	else
		*strategy = PGT_DELTA_MULTISET;

	if ((reason = spj_blocker(q, &ctx)) != NULL)
		return reason;
	*sources = ctx.sources;
	return NULL;
}

static bool
setop_all_union(Node *setop, bool *all)
{
	if (IsA(setop, RangeTblRef))
		return true;
	if (IsA(setop, SetOperationStmt))
	{
		SetOperationStmt *op = (SetOperationStmt *) setop;
		bool		first = (*all != op->all);

		if (op->op != SETOP_UNION)
			return false;
		(void) first;
		*all = op->all;
		return setop_all_union(op->larg, all) && *all == op->all &&
			setop_all_union(op->rarg, all) && *all == op->all;
	}
	return false;
}

/*
 * spj_blocker checks one query level that is (apart from aggregation at
 * the top) a select-project-join block, and its subqueries in FROM.
 */
static const char *
spj_blocker(Query *q, BlockerContext *ctx)
{
	ListCell   *lc;

	if (q->hasSubLinks)
		return "Subqueries in expressions (EXISTS, IN, scalar subqueries) are not supported by the differential engine yet.";
	if (q->hasWindowFuncs || q->hasTargetSRFs || q->limitCount != NULL ||
		q->limitOffset != NULL || q->setOperations != NULL ||
		q->groupingSets != NIL || q->hasRecursive)
		return "A subquery in FROM uses a construct the differential engine does not support yet (window function, LIMIT, set operation or recursion).";

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->lateral)
			return "LATERAL is not supported by the differential engine yet.";
		switch (rte->rtekind)
		{
			case RTE_RELATION:
				if (rte->relkind != RELKIND_RELATION &&
					rte->relkind != RELKIND_PARTITIONED_TABLE)
					return psprintf("Source \"%s\" is not a table; only tables and stream tables can be read differentially.",
									get_rel_name(rte->relid));
				add_source_cols(ctx, rte->relid,
								pgt_compat_rte_selected_cols(q, rte));
				break;
			case RTE_SUBQUERY:
				{
					Query	   *sub = rte->subquery;
					const char *r;

					if (sub->hasAggs || sub->groupClause != NIL ||
						sub->distinctClause != NIL || sub->havingQual != NULL)
						return "Aggregates and DISTINCT inside a subquery, view or CTE are not supported by the differential engine yet.";
					if ((r = spj_blocker(sub, ctx)) != NULL)
						return r;
				}
				break;
			case RTE_JOIN:
				if (rte->jointype != JOIN_INNER)
					return "Outer joins (LEFT, RIGHT, FULL) are not supported by the differential engine yet.";
				break;
			case RTE_FUNCTION:
			case RTE_VALUES:
			case RTE_RESULT:
				break;
			case RTE_CTE:
				return "WITH RECURSIVE is not supported by the differential engine yet.";
			default:
				return "The query reads a kind of relation the differential engine does not support.";
		}
	}

	ctx->reason = NULL;
	(void) query_tree_walker(q, blocker_walker, ctx, QTW_IGNORE_RANGE_TABLE);
	if (ctx->reason == NULL && q->jointree != NULL)
		(void) blocker_walker((Node *) q->jointree, ctx);
	return ctx->reason;
}

static bool
blocker_walker(Node *node, BlockerContext *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varlevelsup == 0 && var->varattno < 0)
		{
			ctx->reason = "System columns (ctid, xmin, ...) are not supported by the differential engine.";
			return true;
		}
		if (var->varlevelsup == 0 && var->varattno == 0)
		{
			ctx->reason = "Whole-row references are not supported by the differential engine yet.";
			return true;
		}
		return false;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		if (j->jointype != JOIN_INNER)
		{
			ctx->reason = "Outer joins (LEFT, RIGHT, FULL) are not supported by the differential engine yet.";
			return true;
		}
		if (j->alias != NULL)
		{
			ctx->reason = "A join with an alias of its own is not supported by the differential engine yet.";
			return true;
		}
	}
	if (IsA(node, Query))
		return false;			/* subqueries in FROM are checked separately */
	return expression_tree_walker(node, blocker_walker, ctx);
}

static void
add_source_cols(BlockerContext *ctx, Oid relid, Bitmapset *cols)
{
	ListCell   *lc;
	PgtDeltaSource *src;
	Bitmapset  *attnums = NULL;
	int			i = -1;

	while ((i = bms_next_member(cols, i)) >= 0)
	{
		AttrNumber	att = i + FirstLowInvalidHeapAttributeNumber;

		if (att == InvalidAttrNumber)
		{
			/* whole row: every column */
			Relation	rel = relation_open(relid, AccessShareLock);
			int			natts = RelationGetNumberOfAttributes(rel);

			relation_close(rel, AccessShareLock);

			for (int a = 1; a <= natts; a++)
				attnums = bms_add_member(attnums, a);
		}
		else if (att > 0)
			attnums = bms_add_member(attnums, att);
	}

	foreach(lc, ctx->sources)
	{
		src = lfirst(lc);
		if (src->relid == relid)
		{
			src->attnums = bms_join(src->attnums, attnums);
			return;
		}
	}
	src = palloc0(sizeof(PgtDeltaSource));
	src->relid = relid;
	src->attnums = attnums;
	ctx->sources = lappend(ctx->sources, src);
}

/* query_may_change: does any base relation under q have changes? */
static bool
query_may_change(Query *q, DvmContext *ctx)
{
	return query_tree_walker(q, may_change_walker, ctx, QTW_EXAMINE_RTES_BEFORE);
}

static bool
may_change_walker(Node *node, DvmContext *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION &&
			list_member_oid(ctx->changed, rte->relid);
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, may_change_walker, ctx,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, may_change_walker, ctx);
}

/*
 * any_delta returns the delta of q (SPJ or UNION ALL), as SQL producing
 * q's visible columns followed by __pgt_w, or NULL when nothing changed.
 */
static char *
any_delta(Query *q, DvmContext *ctx)
{
	if (q->setOperations != NULL)
		return setop_delta(q, ctx);
	return spj_delta(q, ctx);
}

/* delta of a UNION [ALL] tree: the sum of the deltas of its branches */
static char *
setop_delta(Query *q, DvmContext *ctx)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		char	   *d;

		if (rte->rtekind != RTE_SUBQUERY)
			continue;
		d = spj_delta(rte->subquery, ctx);
		if (d == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf, "SELECT * FROM (%s) AS __pgt_b", d);
	}
	return buf.len > 0 ? buf.data : NULL;
}

/*
 * spj_delta applies the telescoping join rule (see the file header) to one
 * select-project-join block.
 */
static char *
spj_delta(Query *q, DvmContext *ctx)
{
	List	   *leaves = NIL;
	ListCell   *lc;
	StringInfoData buf;
	Index		rti = 0;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if ((rte->rtekind == RTE_RELATION &&
			 list_member_oid(ctx->changed, rte->relid)) ||
			(rte->rtekind == RTE_SUBQUERY && query_may_change(rte->subquery, ctx)))
			leaves = lappend_int(leaves, (int) rti);
	}
	if (leaves == NIL)
		return NULL;

	initStringInfo(&buf);
	for (int i = 0; i < list_length(leaves); i++)
	{
		Query	   *t = copyObject(q);
		List	   *wvars = NIL;

		for (int j = 0; j <= i; j++)
		{
			Index		leaf = (Index) list_nth_int(leaves, j);
			Query	   *sub;

			sub = (j == i) ? leaf_delta_query(q, leaf, ctx) :
				leaf_old_query(q, leaf, ctx);
			replace_rte(t, leaf, sub, NIL);
			wvars = lappend(wvars,
							makeVar(leaf, list_length(sub->targetList),
									INT8OID, -1, InvalidOid, 0));
		}
		finish_term(t, wvars);
		if (buf.len > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf, "%s", deparse(t));
	}
	return buf.data;
}

/* the delta of leaf rti of q, as a query: columns of the leaf, then w */
static Query *
leaf_delta_query(Query *q, Index rti, DvmContext *ctx)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	List	   *colnames;

	if (rte->rtekind == RTE_RELATION)
		return parse_sql(base_delta_sql(rte->relid, ctx, false, &colnames));
	return parse_sql(any_delta(rte->subquery, ctx));
}

/* the pre-window state of leaf rti of q, weighted: columns, then w */
static Query *
leaf_old_query(Query *q, Index rti, DvmContext *ctx)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);

	if (rte->rtekind == RTE_RELATION)
	{
		List	   *colnames;
		char	   *cols = base_columns_sql(rte->relid, "r", &colnames);

		return parse_sql(psprintf("SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM %s%s AS r "
								  "UNION ALL %s",
								  cols, rte->inh ? "" : "ONLY ",
								  pgt_qualified_name(rte->relid),
								  base_delta_sql(rte->relid, ctx, true, &colnames)));
	}
	else
	{
		Query	   *sub = rte->subquery;
		List	   *names = visible_names(sub);
		StringInfoData aliases;
		StringInfoData cols;
		int			n = 0;

		initStringInfo(&aliases);
		initStringInfo(&cols);
		for (int i = 0; i < list_length(names); i++)
		{
			n++;
			appendStringInfo(&aliases, "%s__pgt_c%d", n > 1 ? ", " : "", n);
			appendStringInfo(&cols, "%sd.__pgt_c%d", n > 1 ? ", " : "", n);
		}
		return parse_sql(psprintf("SELECT s.*, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS s(%s) "
								  "UNION ALL SELECT %s, -d.__pgt_w FROM (%s) AS d(%s, __pgt_w)",
								  deparse(sub), aliases.data, cols.data,
								  any_delta(sub, ctx), aliases.data));
	}
}

/*
 * base_columns_sql lists every attribute position of relid (dropped ones
 * as NULL placeholders), qualified by alias, so that a subquery made from
 * it lines up with Vars of the relation.
 */
static char *
base_columns_sql(Oid relid, const char *alias, List **colnames)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;

	initStringInfo(&buf);
	*colnames = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (att->attisdropped)
		{
			appendStringInfo(&buf, "NULL::pg_catalog.int4 AS __pgt_dropped_%d", i + 1);
			*colnames = lappend(*colnames, psprintf("__pgt_dropped_%d", i + 1));
		}
		else
		{
			appendStringInfo(&buf, "%s.%s", alias,
							 quote_identifier(NameStr(att->attname)));
			*colnames = lappend(*colnames, pstrdup(NameStr(att->attname)));
		}
	}
	relation_close(rel, AccessShareLock);
	return buf.data;
}

/*
 * base_delta_sql selects the changes of relid in the window from its
 * buffer, laid out like the relation (columns the buffer does not capture
 * are NULL; the query does not read them), followed by the weight.
 */
static char *
base_delta_sql(Oid relid, DvmContext *ctx, bool negate, List **colnames)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *captured = pgt_cdc_captured_attnums(relid);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	*colnames = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (att->attisdropped)
			appendStringInfo(&buf, "NULL::pg_catalog.int4 AS __pgt_dropped_%d", i + 1);
		else if (bms_is_member(i + 1, captured))
			appendStringInfo(&buf, "c.%s", quote_identifier(NameStr(att->attname)));
		else
			appendStringInfo(&buf, "NULL::%s AS %s",
							 format_type_extended(att->atttypid, att->atttypmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY),
							 quote_identifier(NameStr(att->attname)));
	}
	appendStringInfo(&buf,
					 ", %sc." PGT_BUFFER_W_COLUMN "::pg_catalog.int8 AS __pgt_w "
					 "FROM %s AS c WHERE c." PGT_BUFFER_W_COLUMN " <> 0 "
					 "AND c." PGT_BUFFER_XID_COLUMN " >= pg_catalog.pg_snapshot_xmin(%s::pg_catalog.pg_snapshot) "
					 "AND NOT pg_catalog.pg_visible_in_snapshot(c." PGT_BUFFER_XID_COLUMN
					 ", %s::pg_catalog.pg_snapshot)",
					 negate ? "-" : "",
					 quote_qualified_identifier(PGT_CHANGES_SCHEMA,
												pgt_cdc_buffer_name(relid)),
					 ctx->frontier, ctx->frontier);
	relation_close(rel, AccessShareLock);
	return buf.data;
}

/*
 * replace_rte turns range table entry rti of q into the subquery sub, whose
 * first columns line up with the entry's columns and whose last is w.
 */
static void
replace_rte(Query *q, Index rti, Query *sub, List *colnames)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	List	   *names = NIL;
	ListCell   *lc;
	int			n = 0;
	const char *aliasname = rte->eref->aliasname;

	foreach(lc, sub->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		n++;
		if (n <= list_length(rte->eref->colnames) &&
			strVal(list_nth(rte->eref->colnames, n - 1))[0] != '\0')
			names = lappend(names, makeString(pstrdup(strVal(list_nth(rte->eref->colnames, n - 1)))));
		else
			names = lappend(names, makeString(tle->resname ? pstrdup(tle->resname) :
											  psprintf("__pgt_c%d", n)));
	}
	llast(names) = makeString(pstrdup("__pgt_w"));

	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = sub;
	rte->relid = InvalidOid;
	rte->relkind = 0;
	rte->rellockmode = NoLock;
	rte->tablesample = NULL;
	rte->inh = false;
	rte->security_barrier = false;
	pgt_compat_rte_clear_perms(rte);
	rte->alias = makeAlias(aliasname, NIL);
	rte->eref = makeAlias(aliasname, names);
}

/*
 * finish_term gives a term its output: the visible columns of the query
 * and the product of the input weights as __pgt_w.
 */
static void
finish_term(Query *t, List *wvars)
{
	List	   *tlist = NIL;
	ListCell   *lc;
	Expr	   *w = NULL;
	AttrNumber	resno = 1;

	foreach(lc, t->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		tle = flatCopyTargetEntry(tle);
		tle->resno = resno++;
		tle->ressortgroupref = 0;
		tlist = lappend(tlist, tle);
	}
	foreach(lc, wvars)
	{
		Expr	   *v = lfirst(lc);

		w = (w == NULL) ? v :
			(Expr *) makeFuncExpr(F_INT8MUL, INT8OID, list_make2(w, v),
								  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	}
	tlist = lappend(tlist, makeTargetEntry(w, resno, pstrdup("__pgt_w"), false));
	t->targetList = tlist;
	t->sortClause = NIL;
	t->distinctClause = NIL;
}

/*
 * parse_sql analyzes generated SQL text (with the caller's locked
 * search_path) into a Query.
 */
static Query *
parse_sql(const char *sql)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	return pgt_compat_parse_analyze(linitial_node(RawStmt, raw), sql);
}

static List *
visible_names(Query *q)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (!tle->resjunk)
			names = lappend(names, tle->resname);
	}
	return names;
}

static char *
deparse(Query *q)
{
	return pg_get_querydef(q, false);
}

/*
 * multiset_apply_sql: consolidate the weighted delta per distinct row,
 * delete |w| stored copies of rows with w < 0 and insert w copies of rows
 * with w > 0, in one statement.
 */
static char *
multiset_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
				   DvmContext *ctx)
{
	StringInfoData sql;
	ListCell   *lc;
	char	   *delta = any_delta(q, ctx);
	const char *cols = col_list(analysis->columns, "", false);
	StringInfoData sel;
	StringInfoData grp;
	bool		first = true;

	if (delta == NULL)
		return NULL;

	initStringInfo(&sel);
	initStringInfo(&grp);
	foreach(lc, analysis->columns)
	{
		PgtColumn  *col = lfirst(lc);
		TypeCacheEntry *tc = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR);
		const char *qn = quote_identifier(col->name);

		if (!first)
		{
			appendStringInfoString(&sel, ", ");
			appendStringInfoString(&grp, ", ");
		}
		first = false;
		if (OidIsValid(tc->eq_opr))
		{
			appendStringInfo(&sel, "d.%s", qn);
			appendStringInfo(&grp, "d.%s", qn);
		}
		else
		{
			/* no equality: group on the text form, keep one value */
			appendStringInfo(&sel, "(pg_catalog.min(d.%s::pg_catalog.text))::%s AS %s", qn,
							 format_type_extended(col->typid, col->typmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY), qn);
			appendStringInfo(&grp, "d.%s::pg_catalog.text", qn);
		}
	}

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __pgt_d AS (SELECT * FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
					 "__pgt_c AS (SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8 AS __pgt_w, "
					 "pg_catalog.row_number() OVER () AS __pgt_cid "
					 "FROM __pgt_d d GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0), ",
					 delta, cols, sel.data, grp.data);
	appendStringInfo(&sql,
					 "__pgt_del AS (DELETE FROM %s WHERE ctid = ANY (ARRAY("
					 "SELECT x.ctid FROM (SELECT t.ctid, -c.__pgt_w AS n, "
					 "pg_catalog.row_number() OVER (PARTITION BY c.__pgt_cid ORDER BY t.ctid) AS rn "
					 "FROM __pgt_c c JOIN %s t ON t." PGT_ROW_ID_COLUMN " = %s AND %s "
					 "WHERE c.__pgt_w < 0) x WHERE x.rn <= x.n)) RETURNING 1), ",
					 storage, storage,
					 pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "c"),
					 recheck_sql(analysis->columns, "t", "c", false));
	appendStringInfo(&sql,
					 "__pgt_ins AS (INSERT INTO %s (%s, " PGT_ROW_ID_COLUMN ") "
					 "SELECT %s, %s FROM __pgt_c c CROSS JOIN LATERAL "
					 "pg_catalog.generate_series(1::pg_catalog.int8, c.__pgt_w) "
					 "WHERE c.__pgt_w > 0 RETURNING 1) "
					 "SELECT (SELECT pg_catalog.count(*) FROM __pgt_del), "
					 "(SELECT pg_catalog.count(*) FROM __pgt_ins), "
					 "(SELECT pg_catalog.count(*) FROM __pgt_d), "
					 "(SELECT COALESCE(pg_catalog.sum(-__pgt_w), 0) FROM __pgt_c WHERE __pgt_w < 0)",
					 storage, cols,
					 col_list(analysis->columns, "c.", false),
					 pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "c"));
	return sql.data;
}

/*
 * keyed_apply_sql: collect the keys touched by the delta of the FROM/WHERE
 * part, recompute those groups with the query itself, and MERGE them into
 * storage (update, insert, or delete a group that vanished).
 */
static char *
keyed_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
				DvmContext *ctx)
{
	StringInfoData sql;
	Query	   *child;
	Query	   *restricted;
	char	   *delta;
	List	   *keynames = NIL;
	List	   *keytles = NIL;
	ListCell   *lc;
	StringInfoData kcols;
	StringInfoData ucols;
	StringInfoData on;
	StringInfoData set;
	int			n;
	char	   *recompute;

	/* key columns: for GROUP BY the grouping columns, else all columns */
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		if (q->groupClause != NIL &&
			(tle->ressortgroupref == 0 ||
			 get_sortgroupref_clause_noerr(tle->ressortgroupref, q->groupClause) == NULL))
			continue;
		keytles = lappend(keytles, tle);
		keynames = lappend(keynames, tle->resname);
	}

	if (q->setOperations != NULL)
	{
		/* UNION: keys are whole rows; the delta of UNION ALL gives them */
		delta = setop_delta(q, ctx);
		recompute = psprintf("SELECT r0.* FROM (%s) AS r0 WHERE EXISTS (SELECT 1 FROM __pgt_k k WHERE %s)",
							 deparse(q), recheck_sql(analysis->columns, "r0", "k", false));
	}
	else
	{
		RangeTblEntry *krte;
		Index		krti;
		List	   *quals = NIL;
		int			i = 0;

		/* the FROM/WHERE part, projected on the keys */
		child = copyObject(q);
		child->targetList = NIL;
		foreach(lc, keytles)
		{
			TargetEntry *tle = flatCopyTargetEntry(lfirst(lc));

			tle->resno = ++i;
			tle->ressortgroupref = 0;
			child->targetList = lappend(child->targetList, tle);
		}
		child->groupClause = NIL;
		child->havingQual = NULL;
		child->hasAggs = false;
		child->distinctClause = NIL;
		child->sortClause = NIL;
		delta = spj_delta(child, ctx);

		/* the query restricted to the touched keys */
		restricted = copyObject(q);
		krte = makeNode(RangeTblEntry);
		krte->rtekind = RTE_CTE;
		krte->ctename = pstrdup("__pgt_k");
		krte->ctelevelsup = 0;
		krte->inFromCl = true;
		krte->alias = makeAlias("__pgt_k", NIL);
		{
			List	   *cn = NIL;

			foreach(lc, keytles)
			{
				TargetEntry *tle = lfirst(lc);
				Node	   *e = (Node *) tle->expr;

				cn = lappend(cn, makeString(pstrdup(tle->resname)));
				krte->coltypes = lappend_oid(krte->coltypes, exprType(e));
				krte->coltypmods = lappend_int(krte->coltypmods, exprTypmod(e));
				krte->colcollations = lappend_oid(krte->colcollations, exprCollation(e));
			}
			krte->eref = makeAlias("__pgt_k", cn);
		}
		restricted->rtable = lappend(restricted->rtable, krte);
		krti = list_length(restricted->rtable);
		{
			RangeTblRef *rtr = makeNode(RangeTblRef);

			rtr->rtindex = krti;
			restricted->jointree->fromlist = lappend(restricted->jointree->fromlist, rtr);
		}
		i = 0;
		foreach(lc, keytles)
		{
			TargetEntry *tle = lfirst(lc);
			Expr	   *e = copyObject(tle->expr);
			Oid			typ = exprType((Node *) e);
			Var		   *kv = makeVar(krti, ++i, typ, exprTypmod((Node *) e),
									 exprCollation((Node *) e), 0);
			TypeCacheEntry *tc = lookup_type_cache(typ, TYPECACHE_EQ_OPR);
			Expr	   *cond;

			if (!OidIsValid(tc->eq_opr))
				elog(ERROR, "no equality operator for group key type %s",
					 format_type_be(typ));
			if (expr_is_not_null(q, (Node *) e))
				cond = make_opclause(tc->eq_opr, BOOLOID, false, e, (Expr *) kv,
									 InvalidOid, exprCollation((Node *) e));
			else
			{
				DistinctExpr *d = (DistinctExpr *) make_opclause(tc->eq_opr, BOOLOID, false,
																 e, (Expr *) kv, InvalidOid,
																 exprCollation((Node *) e));

				NodeSetTag(d, T_DistinctExpr);
				cond = make_notclause((Expr *) d);
			}
			set_opfuncid((OpExpr *) (IsA(cond, BoolExpr) ?
									 linitial(((BoolExpr *) cond)->args) : cond));
			quals = lappend(quals, cond);
		}
		if (restricted->jointree->quals != NULL)
			quals = lcons(restricted->jointree->quals, quals);
		restricted->jointree->quals = (Node *) make_ands_explicit(quals);
		restricted->sortClause = NIL;
		recompute = deparse(restricted);
	}

	if (delta == NULL)
		return NULL;

	/* columns of the touched-key set and of the MERGE source */
	initStringInfo(&kcols);
	initStringInfo(&ucols);
	initStringInfo(&on);
	initStringInfo(&set);
	n = 0;
	foreach(lc, analysis->columns)
	{
		PgtColumn  *col = lfirst(lc);
		const char *qn = quote_identifier(col->name);

		if (col->is_key || q->groupClause == NIL)
		{
			n++;
			appendStringInfo(&kcols, "%s%s", kcols.len > 0 ? ", " : "", qn);
			appendStringInfo(&ucols, "%sk.%s AS __pgt_k%d", ucols.len > 0 ? ", " : "", qn, n);
			appendStringInfo(&on, " AND s.%s IS NOT DISTINCT FROM u.__pgt_k%d", qn, n);
		}
		appendStringInfo(&ucols, ", r.%s", qn);
		appendStringInfo(&set, "%s%s = u.%s", set.len > 0 ? ", " : "", qn, qn);
	}

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __pgt_k AS (SELECT DISTINCT %s FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
					 "__pgt_r AS (SELECT r0.*, true AS __pgt_present FROM (%s) AS r0) "
					 "MERGE INTO %s s USING (SELECT %s, r.__pgt_present, %s AS __pgt_rid "
					 "FROM __pgt_k k LEFT JOIN __pgt_r r ON %s) u "
					 "ON s." PGT_ROW_ID_COLUMN " = u.__pgt_rid%s "
					 "WHEN MATCHED AND u.__pgt_present IS NULL THEN DELETE "
					 "WHEN MATCHED THEN UPDATE SET %s "
					 "WHEN NOT MATCHED AND u.__pgt_present THEN INSERT (%s, " PGT_ROW_ID_COLUMN ") "
					 "VALUES (%s, u.__pgt_rid)",
					 kcols.data, delta, col_list(analysis->columns, "", q->groupClause != NIL),
					 recompute, storage, ucols.data,
					 pgt_storage_row_id_expr(analysis->columns,
											 q->groupClause != NIL ? PGT_IDENTITY_GROUP_KEY :
											 PGT_IDENTITY_ALL_COLUMNS, "k"),
					 recheck_sql(analysis->columns, "r", "k", q->groupClause != NIL),
					 on.data, set.data,
					 col_list(analysis->columns, "", false),
					 col_list(analysis->columns, "u.", false));
	(void) keynames;
	return sql.data;
}

/* singleton_apply_sql: replace the one row by a fresh run of the query */
static char *
singleton_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage)
{
	const char *cols = col_list(analysis->columns, "", false);

	return psprintf("WITH __pgt_del AS (DELETE FROM %s RETURNING 1), "
					"__pgt_ins AS (INSERT INTO %s (%s, " PGT_ROW_ID_COLUMN ") "
					"SELECT r.*, 0 FROM (%s) AS r(%s) RETURNING 1) "
					"SELECT (SELECT pg_catalog.count(*) FROM __pgt_del), "
					"(SELECT pg_catalog.count(*) FROM __pgt_ins), 1::pg_catalog.int8, "
					"0::pg_catalog.int8",
					storage, storage, cols, deparse(q), cols);
}

/*
 * expr_is_not_null is true when expr is a plain column of a base table
 * declared NOT NULL, reached through inner joins only.
 */
static bool
expr_is_not_null(Query *q, Node *expr)
{
	Var		   *var;
	RangeTblEntry *rte;
	HeapTuple	tup;
	bool		result;

	while (IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return false;
	var = (Var *) expr;
	if (var->varlevelsup != 0 || var->varattno <= 0)
		return false;
	rte = rt_fetch(var->varno, q->rtable);
	if (rte->rtekind == RTE_JOIN)
	{
		if (rte->jointype != JOIN_INNER || var->varattno > list_length(rte->joinaliasvars))
			return false;
		return expr_is_not_null(q, list_nth(rte->joinaliasvars, var->varattno - 1));
	}
	if (rte->rtekind != RTE_RELATION)
		return false;
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(rte->relid),
						  Int16GetDatum(var->varattno));
	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
	ReleaseSysCache(tup);
	return result;
}

/* comma-separated quoted column names, each prefixed */
static const char *
col_list(List *columns, const char *prefix, bool keys_only)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, columns)
	{
		PgtColumn  *col = lfirst(lc);

		if (keys_only && !col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s%s", buf.len > 0 ? ", " : "", prefix,
						 quote_identifier(col->name));
	}
	return buf.data;
}

/*
 * recheck_sql compares the identity columns of aliases a and b with
 * IS NOT DISTINCT FROM (types without equality through their text form).
 */
static char *
recheck_sql(List *columns, const char *a, const char *b, bool keys_only)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, columns)
	{
		PgtColumn  *col = lfirst(lc);
		TypeCacheEntry *tc;
		const char *qn = quote_identifier(col->name);

		if (keys_only && !col->is_key)
			continue;
		tc = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR);
		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		if (OidIsValid(tc->eq_opr))
			appendStringInfo(&buf, "%s.%s IS NOT DISTINCT FROM %s.%s", a, qn, b, qn);
		else
			appendStringInfo(&buf, "%s.%s::pg_catalog.text IS NOT DISTINCT FROM %s.%s::pg_catalog.text",
							 a, qn, b, qn);
	}
	if (buf.len == 0)
		appendStringInfoString(&buf, "true");
	return buf.data;
}
