/*-------------------------------------------------------------------------
 *
 * blocker.c
 *	  What the differential engine supports: pgt_dvm_blocker classifies a
 *	  prepared query (delta strategy, sources and the columns read) or says
 *	  why it cannot be maintained differentially; pgt_dvm_size_blocker
 *	  refuses queries whose delta SQL would be too large.  The delta rules
 *	  themselves are in delta.c.
 *
 * IDENTIFICATION
 *	  src/dvm/blocker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

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
#include "utils/rls.h"
#include "access/xact.h"
#include "utils/resowner.h"
#include "catalog/pg_inherits.h"
#include "catalog/catalog.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/queryenvironment.h"
#include "access/tupdesc.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/cdc.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"
#include "rewrite/rewriteManip.h"

#include "dvm_internal.h"

typedef struct BlockerContext
{
	const char *reason;
	List	   *sources;		/* PgtDeltaSource * */
} BlockerContext;

static const char *spj_blocker(Query *q, BlockerContext *ctx);
static const char *outer_side_blocker(Query *q, Node *node);
static bool blocker_walker(Node *node, BlockerContext *ctx);
static const char *stray_sublink_blocker(Query *q);
static void add_source_cols(BlockerContext *ctx, Oid relid, Bitmapset *cols);
static bool setop_all_union(Node *setop, bool *all);

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
	const char *reason = pgt_dvm_top_blocker(pgt_dvm_prepare_query(query), &strategy, sources);
	ListCell   *lc;

	if (reason != NULL)
		return reason;

	/*
	 * Change buffers carry every changed row, so reading them would bypass
	 * row-level security that applies to the current user on a source.
	 */
	foreach(lc, *sources)
	{
		PgtDeltaSource *src = lfirst(lc);
		Oid			relid = src->relid;
		int			att = -1;

		if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
			return psprintf("Row-level security on \"%s\" applies to the stream table's owner, and change capture cannot honour it.",
							get_rel_name(relid));

		/*
		 * Changes are read with the owner's own privileges, also for tables
		 * the query reaches through a view that grants access to them.
		 */
		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
			continue;
		while ((att = bms_next_member(src->attnums, att)) >= 0)
			if (pg_attribute_aclcheck(relid, att, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
				return psprintf("The owner may read \"%s\" only through a view, and its changes are read with the owner's own privileges.",
								get_rel_name(relid));
	}
	return NULL;
}

/*
 * pgt_dvm_size_blocker generates the delta SQL of query as if every input
 * changed, in a subtransaction, and returns a reason if it is too large
 * to be practical (NULL if fine).
 */
const char *
pgt_dvm_size_blocker(Query *query, PgtAnalysis *analysis, List *sources)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	const char *reason = NULL;
	List	   *changed = NIL;
	ListCell   *lc;

	foreach(lc, sources)
		changed = lappend_oid(changed, ((PgtDeltaSource *) lfirst(lc))->relid);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		PgtDeltaStrategy strategy;

		(void) pgt_dvm_apply_sql(query, analysis, "pg_catalog.pg_class", "1:1:",
								 changed, &strategy);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (edata->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ReThrowError(edata);
		reason = psprintf("Its delta SQL would exceed %d bytes: nested outer joins or aggregates multiply it.",
						  PGT_MAX_DELTA_SQL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	pgt_dvm_gen_reset_size();
	return reason;
}

/*
 * pgt_dvm_top_blocker classifies the (prepared) top-level query and checks that
 * every part can be differentiated.
 */
const char *
pgt_dvm_top_blocker(Query *q, PgtDeltaStrategy *strategy, List **sources)
{
	BlockerContext ctx;
	const char *reason;

	memset(&ctx, 0, sizeof(ctx));

	/* before the window, LIMIT and DISTINCT ON rules strip those clauses */
	if ((reason = stray_sublink_blocker(q)) != NULL)
		return reason;
	if (q->hasRecursive)
	{
		PgtRecursive rec;

		if ((reason = pgt_dvm_recursive_split(q, &rec)) != NULL ||
			(reason = spj_blocker(rec.base, &ctx)) != NULL ||
			(reason = spj_blocker(pgt_dvm_recursive_step_for_blocker(&rec), &ctx)) != NULL)
			return reason;
		*strategy = PGT_DELTA_RECURSIVE;
		*sources = ctx.sources;
		return NULL;
	}
	if (q->hasWindowFuncs)
	{
		Query	   *b;

		if ((reason = pgt_dvm_window_blocker(q)) != NULL)
			return reason;
		b = copyObject(q);
		b->hasWindowFuncs = false;
		b->windowClause = NIL;
		if ((reason = spj_blocker(b, &ctx)) != NULL)
			return reason;
		*strategy = PGT_DELTA_WINDOW;
		*sources = ctx.sources;
		return NULL;
	}
	if (q->hasTargetSRFs)
		return "Set-returning functions in the select list are not supported by the differential engine yet.";
	if (q->limitCount != NULL || q->limitOffset != NULL)
	{
		Query	   *b;

		if ((reason = pgt_dvm_topk_blocker(q)) != NULL)
			return reason;
		/* the rest of the rules apply to the query without ORDER BY/LIMIT */
		b = copyObject(q);
		b->limitCount = NULL;
		b->limitOffset = NULL;
		b->sortClause = NIL;
		if ((reason = pgt_dvm_top_blocker(b, strategy, sources)) != NULL)
			return reason;
		*strategy = PGT_DELTA_TOPK;
		return NULL;
	}
	if (q->groupingSets != NIL && q->distinctClause != NIL)
		return "SELECT DISTINCT over GROUPING SETS, ROLLUP or CUBE is not maintained by the differential engine.";
	if (q->groupingSets != NIL)
		return psprintf("GROUPING SETS, ROLLUP and CUBE are maintained incrementally only up to pg_trickle.max_grouping_set_branches (%d) grouping sets.",
						pgt_max_grouping_set_branches);
	if (q->hasDistinctOn)
	{
		Query	   *b;

		if ((reason = pgt_dvm_distinct_on_blocker(q)) != NULL)
			return reason;
		b = copyObject(q);
		b->hasDistinctOn = false;
		b->distinctClause = NIL;
		if ((reason = spj_blocker(b, &ctx)) != NULL)
			return reason;
		*strategy = PGT_DELTA_WINDOW;
		*sources = ctx.sources;
		return NULL;
	}

	if (q->setOperations != NULL)
	{
		bool		all;
		bool		plain_union;
		ListCell   *lc;

		if (q->hasAggs || q->groupClause != NIL || q->distinctClause != NIL)
			return "Aggregates over UNION are not supported by the differential engine yet.";
		plain_union = setop_all_union(q->setOperations, &all);

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind != RTE_SUBQUERY)
				continue;
			/*
			 * Under UNION ALL a branch may group or aggregate: its delta is
			 * that of a grouped subquery (the touched groups before and
			 * after), and the branches' deltas simply add up.
			 */
			if (rte->subquery->setOperations != NULL || rte->subquery->groupingSets != NIL ||
				(!(plain_union && all) &&
				 (rte->subquery->hasAggs || rte->subquery->groupClause != NIL ||
				  rte->subquery->distinctClause != NIL)))
				return "Branches of UNION, INTERSECT or EXCEPT must be plain SELECT ... FROM ... WHERE blocks for the differential engine (under UNION ALL they may also group or aggregate).";
			if ((reason = spj_blocker(rte->subquery, &ctx)) != NULL)
				return reason;
		}
		if (!plain_union)
			*strategy = PGT_DELTA_SETOP;
		else
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
	const char *r0;

	if ((r0 = stray_sublink_blocker(q)) != NULL)
		return r0;
	if (q->hasSubLinks || pgt_dvm_level_has_sublink(q))
		return "Subqueries in expressions are supported by the differential engine in WHERE conditions ([NOT] EXISTS, [NOT] IN, op ANY/ALL over a plain SELECT, aggregate scalar subqueries) and as aggregate scalar subqueries in the select list, correlated by equalities (and one <> in [NOT] EXISTS) if at all; not, for example, correlated by other comparisons, in the ON of an outer join, comparing rows, or ANY/ALL over a subquery that groups or limits.";
	if (q->hasWindowFuncs || q->hasTargetSRFs || q->limitCount != NULL ||
		q->limitOffset != NULL || q->setOperations != NULL ||
		q->groupingSets != NIL || q->hasRecursive)
		return "A subquery in FROM uses a construct the differential engine does not support yet (window function, LIMIT, set operation or recursion).";

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		/*
		 * A LATERAL function (unnest(t.a), jsonb_array_elements(t.j), ...)
		 * depends on nothing but the row it is applied to: like any function
		 * in FROM it is a constant input, evaluated for the rows of whatever
		 * state (delta, old, new) its arguments' relation has in each term.
		 */
		if (rte->lateral &&
			!(rte->rtekind == RTE_FUNCTION &&
			  !contain_volatile_functions((Node *) rte->functions)))
			return "LATERAL subqueries are maintained by the differential engine only when they are correlated by equalities in their WHERE (plain, with ORDER BY ... LIMIT, or aggregating without GROUP BY) and no other FROM item reads an aggregating one; LATERAL functions are maintained.";
		/* after rewriting, a view entry is only its body's OLD/NEW placeholder */
		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_VIEW)
			continue;
		switch (rte->rtekind)
		{
			case RTE_RELATION:
				if (!rte->inh && has_subclass(rte->relid))
					return psprintf("ONLY \"%s\" is not supported by the differential engine: changes of its child tables are captured together.",
									get_rel_name(rte->relid));
				if (get_rel_relispartition(rte->relid) || has_superclass(rte->relid))
					return psprintf("\"%s\" is a partition or inheritance child; rows written through its parent would not be captured.",
									get_rel_name(rte->relid));
				if (rte->relkind != RELKIND_RELATION &&
					rte->relkind != RELKIND_PARTITIONED_TABLE)
					return psprintf("Source \"%s\" is not a table; only tables and stream tables can be read differentially.",
									get_rel_name(rte->relid));
				if (IsCatalogRelationOid(rte->relid))
					return psprintf("Source \"%s\" is a system catalog, whose changes cannot be captured.",
									get_rel_name(rte->relid));
				add_source_cols(ctx, rte->relid,
								pgt_compat_rte_selected_cols(q, rte));
				break;
			case RTE_SUBQUERY:
				{
					Query	   *sub = rte->subquery;
					const char *r;

					/*
					 * Window functions: the partitions touched by the
					 * changes are computed before and after (like groups).
					 */
					if (sub->hasWindowFuncs)
					{
						Query	   *b;

						if ((r = stray_sublink_blocker(sub)) != NULL)
							return r;
						if (sub->hasAggs || sub->groupClause != NIL || sub->distinctClause != NIL ||
							sub->havingQual != NULL || sub->limitCount != NULL ||
							sub->limitOffset != NULL || sub->setOperations != NULL ||
							sub->groupingSets != NIL)
							return "Window functions inside a subquery, view or CTE are maintained differentially over a plain SELECT ... FROM ... WHERE block only (no grouping, DISTINCT or LIMIT at that level).";
						b = copyObject(sub);
						b->hasWindowFuncs = false;
						b->windowClause = NIL;
						if ((r = spj_blocker(b, ctx)) != NULL)
							return r;
						break;
					}
					if (sub->groupingSets != NIL)
						return "GROUPING SETS inside a subquery, view or CTE are not supported by the differential engine yet (at the top level they are).";
					if (sub->hasDistinctOn && (sub->limitCount != NULL || sub->limitOffset != NULL))
						return "DISTINCT ON with LIMIT inside a subquery, view or CTE is not supported by the differential engine yet.";
					if (sub->setOperations != NULL)
					{
						bool		all = true;
						ListCell   *lc2;

						if (!setop_all_union(sub->setOperations, &all) || !all)
							return "UNION without ALL, INTERSECT and EXCEPT inside a subquery, view or CTE are not supported by the differential engine yet.";
						foreach(lc2, sub->rtable)
						{
							RangeTblEntry *leaf = lfirst(lc2);

							if (leaf->rtekind == RTE_SUBQUERY &&
								(r = spj_blocker(leaf->subquery, ctx)) != NULL)
								return r;
						}
						break;
					}
					/* aggregates are recomputed for the touched groups */
					if ((r = spj_blocker(sub, ctx)) != NULL)
						return r;
				}
				break;
			case RTE_JOIN:
				break;
			case RTE_FUNCTION:
			case RTE_VALUES:
			case RTE_RESULT:
				break;
			case RTE_CTE:
				return psprintf("WITH RECURSIVE is maintained differentially only when the query returns the rows of one recursive CTE; \"%s\" is read elsewhere.", rte->ctename);
			default:
				return "The query reads a kind of relation the differential engine does not support.";
		}
	}

	if ((r0 = outer_side_blocker(q, (Node *) q->jointree)) != NULL)
		return r0;

	ctx->reason = NULL;
	(void) query_tree_walker(q, blocker_walker, ctx, QTW_IGNORE_RANGE_TABLE);
	if (ctx->reason == NULL && q->jointree != NULL)
		(void) blocker_walker((Node *) q->jointree, ctx);
	return ctx->reason;
}

/*
 * stray_sublink_blocker refuses a subquery expression in a place no delta
 * rule looks at: the arguments of a function in FROM (LATERAL or not), a
 * VALUES list or table function in FROM, LIMIT/OFFSET, a window frame
 * offset.  Its tables' changes would never reach the stream table.  (In
 * the select list, WHERE, join conditions and HAVING the rewrites of
 * sublink.c and spj_blocker decide.)
 */
static const char *
stray_sublink_blocker(Query *q)
{
	const char *place = NULL;
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_FUNCTION &&
			checkExprHasSubLink((Node *) rte->functions))
			place = "in the arguments of a function in FROM";
		else if (rte->rtekind == RTE_VALUES &&
				 checkExprHasSubLink((Node *) rte->values_lists))
			place = "in a VALUES list in FROM";
		else if (rte->rtekind == RTE_TABLEFUNC &&
				 checkExprHasSubLink((Node *) rte->tablefunc))
			place = "in a table function (XMLTABLE) in FROM";
		if (place != NULL)
			break;
	}
	if (place == NULL &&
		(checkExprHasSubLink(q->limitCount) || checkExprHasSubLink(q->limitOffset)))
		place = "in LIMIT or OFFSET";
	foreach(lc, q->windowClause)
	{
		WindowClause *wc = lfirst_node(WindowClause, lc);

		if (place == NULL &&
			(checkExprHasSubLink(wc->startOffset) || checkExprHasSubLink(wc->endOffset)))
			place = "in a window frame offset";
	}
	if (place == NULL)
		return NULL;
	return psprintf("A subquery %s is not maintained by the differential engine: changes of the tables it reads would not reach the stream table.",
					place);
}

/*
 * outer_side_blocker refuses outer joins with a side that is a function,
 * VALUES list or similar: their derived anti-join leaves need a table or
 * subquery on each side.
 */
static const char *
outer_side_blocker(Query *q, Node *node)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
		{
			const char *r = outer_side_blocker(q, lfirst(lc));

			if (r != NULL)
				return r;
		}
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		Node	   *sides[2] = {j->larg, j->rarg};

		for (int i = 0; i < 2; i++)
		{
			const char *r;

			if (j->jointype != JOIN_INNER && IsA(sides[i], RangeTblRef))
			{
				RangeTblEntry *rte = rt_fetch(((RangeTblRef *) sides[i])->rtindex, q->rtable);

				if (rte->rtekind != RTE_RELATION && rte->rtekind != RTE_SUBQUERY)
					return "An outer join with a function, VALUES list or similar on one side is not supported by the differential engine yet.";
			}
			if ((r = outer_side_blocker(q, sides[i])) != NULL)
				return r;
		}
	}
	return NULL;
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

		if (j->jointype != JOIN_INNER &&
			(!IsA(j->larg, RangeTblRef) || !IsA(j->rarg, RangeTblRef)))
		{
			ctx->reason = "An outer join side could not be isolated for the differential engine.";
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
			/* whole row: every live column (a dropped one has no value) */
			Relation	rel = relation_open(relid, AccessShareLock);
			TupleDesc	desc = RelationGetDescr(rel);

			for (int a = 0; a < desc->natts; a++)
				if (!TupleDescAttr(desc, a)->attisdropped)
					attnums = bms_add_member(attnums, a + 1);
			relation_close(rel, AccessShareLock);
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

/* pgt_dvm_query_may_change: does any base relation under q have changes? */
