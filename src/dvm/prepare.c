/*-------------------------------------------------------------------------
 *
 * prepare.c
 *	  Bringing a defining query into the shape the delta engine works on:
 *	  views expanded by the rewriter, non-recursive CTEs inlined as
 *	  subqueries, join output columns flattened to their base columns,
 *	  USING lists dropped, and both sides of every outer join made a single
 *	  range table entry (a multi-relation side is wrapped into a subquery).
 *
 * IDENTIFICATION
 *	  src/dvm/prepare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"
#include "pg_trickle/pg_trickle.h"
#include "lib/stringinfo.h"
#include "catalog/pg_type.h"
#include "optimizer/tlist.h"
#include "parser/parse_agg.h"

#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_trickle/compat.h"
#include "pg_trickle/util.h"

#include "dvm_internal.h"

typedef struct RemapContext
{
	List	   *members;		/* rtindexes moved into the subquery */
	List	   *varnos;			/* for each new column: source varno */
	List	   *attnos;			/* ... and attno */
	Index		new_rti;
	int			sublevels_up;
} RemapContext;

static void normalize_joins(Query *q);
static void normalize_outer(Query *q, Node **nodeptr);
static Node *remap_mutator(Node *node, RemapContext *ctx);
static JoinExpr *find_unisolated_outer(Node *node);
static void inline_ctes(Query *query, List *outer_ctes);
static void forget_using(Node *node);
static Query *expand_grouping(Query *q);
static void expand_grouping_below(Query *q);
static Node *grouping_mutator(Node *node, List *absent);

/* what grouping_mutator replaces: a grouping expression not in the set */
typedef struct AbsentKey
{
	Node	   *expr;
	Index		ref;
	bool		present;		/* a key of the set: left as it is */
} AbsentKey;

/*
 * pgt_dvm_prepare_query expands views (the rewriter), inlines
 * non-recursive CTEs into subqueries and normalizes joins, so that the
 * delta engine sees base tables and subqueries only.
 */
Query *
pgt_dvm_prepare_query(Query *query)
{
	List	   *rewritten = QueryRewrite(copyObject(query));
	Query	   *q;

	if (list_length(rewritten) != 1)
		elog(ERROR, "unexpected rewrite result for a stream table query");
	/* the bodies of views, too, are deparsed: operators must be written */
	q = pgt_spell_operators(linitial_node(Query, rewritten));
	inline_ctes(q, NIL);
	if (q->groupingSets != NIL)
		q = expand_grouping(q);
	expand_grouping_below(q);
	pgt_dvm_decorrelate_lateral(q);
	pgt_dvm_pull_up_sublinks(q);
	normalize_joins(q);
	return q;
}

/*
 * expand_grouping turns GROUP BY GROUPING SETS / ROLLUP / CUBE into the
 * UNION ALL of one GROUP BY per grouping set, which is what it means: in
 * the branch of a set, the grouping expressions outside the set are NULL
 * (outside aggregate arguments) and GROUPING(...) is the constant bit mask
 * of the absent ones.  The engine then maintains the branches like any
 * grouping UNION ALL branches.  More sets than
 * pg_trickle.max_grouping_set_branches leave the query as it was (the
 * blocker refuses it).
 */
static Query *
expand_grouping(Query *q)
{
	List	   *sets = expand_grouping_sets(q->groupingSets, q->groupDistinct,
											pgt_max_grouping_set_branches);
	StringInfoData sql;
	ListCell   *lc;
	Query	   *result;

	/* DISTINCT applies to the union of the sets, not to each branch */
	if (sets == NIL || list_length(sets) > pgt_max_grouping_set_branches ||
		q->distinctClause != NIL)
		return q;
	initStringInfo(&sql);
	foreach(lc, sets)
	{
		List	   *set = lfirst(lc);
		Query	   *b = copyObject(q);
		List	   *absent = NIL;
		List	   *groups = NIL;
		ListCell   *lc2;

		foreach(lc2, q->groupClause)
		{
			SortGroupClause *sgc = lfirst(lc2);

			AbsentKey  *k = palloc(sizeof(AbsentKey));

			k->expr = (Node *) get_sortgroupclause_expr(sgc, q->targetList);
			k->ref = sgc->tleSortGroupRef;
			k->present = list_member_int(set, (int) sgc->tleSortGroupRef);
			if (k->present)
				groups = lappend(groups, copyObject(sgc));
			/* present keys first: a+1 of a set must not lose an absent a */
			absent = k->present ? lcons(k, absent) : lappend(absent, k);
		}
		b->groupingSets = NIL;
		b->groupDistinct = false;
		b->groupClause = groups;
		b->sortClause = NIL;
		foreach(lc2, b->targetList)
		{
			TargetEntry *tle = lfirst(lc2);

			tle->expr = (Expr *) grouping_mutator((Node *) tle->expr, absent);
		}
		b->havingQual = grouping_mutator(b->havingQual, absent);
		/* an empty set over no grouping left is a global aggregate */
		b->hasAggs = true;
		appendStringInfo(&sql, "%s(%s)", foreach_current_index(lc) > 0 ? " UNION ALL " : "",
						 pgt_dvm_deparse(b));
	}
	result = pgt_dvm_parse_sql(sql.data);
	return result;
}

/* expand_grouping_below expands the grouping sets of q's subqueries in FROM */
static void
expand_grouping_below(Query *q)
{
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind != RTE_SUBQUERY)
			continue;
		if (rte->subquery->groupingSets != NIL && !rte->lateral &&
			!contain_vars_of_level((Node *) rte->subquery, 1))
			rte->subquery = expand_grouping(rte->subquery);
		expand_grouping_below(rte->subquery);
	}
}

/*
 * grouping_mutator replaces, outside aggregate arguments, the grouping
 * expressions in absent by NULL, and GROUPING() by its value.
 */
static Node *
grouping_mutator(Node *node, List *absent)
{
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref) || IsA(node, WindowFunc))
		return node;			/* arguments see the rows, not the groups */
	if (IsA(node, GroupingFunc))
	{
		GroupingFunc *gf = (GroupingFunc *) node;
		int			value = 0;

		foreach(lc, gf->refs)
		{
			bool		missing = false;
			ListCell   *lc2;

			foreach(lc2, absent)
				if (((AbsentKey *) lfirst(lc2))->ref == (Index) lfirst_int(lc) &&
					!((AbsentKey *) lfirst(lc2))->present)
					missing = true;
			value = (value << 1) | (missing ? 1 : 0);
		}
		return (Node *) makeConst(INT4OID, -1, InvalidOid, 4, Int32GetDatum(value),
								  false, true);
	}
	foreach(lc, absent)
	{
		AbsentKey  *k = lfirst(lc);

		if (!equal(node, k->expr))
			continue;
		if (k->present)
			return node;
		return (Node *) makeNullConst(exprType(node), exprTypmod(node),
									  exprCollation(node));
	}
	return expression_tree_mutator(node, grouping_mutator, absent);
}

/*
 * normalize_joins replaces references to join output columns by the
 * underlying columns and makes both sides of every outer join a single
 * range table entry (wrapping a multi-relation side into a subquery), in
 * q and its subqueries in FROM.
 */
static void
normalize_joins(Query *q)
{
	ListCell   *lc;
	bool		has_joins = false;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_JOIN)
			has_joins = true;
		else if (rte->rtekind == RTE_SUBQUERY)
			normalize_joins(rte->subquery);
	}
	if (!has_joins || q->setOperations != NULL)
		return;
	q->targetList = (List *) pgt_compat_flatten_join_alias_vars(q, (Node *) q->targetList);
	q->jointree = (FromExpr *) pgt_compat_flatten_join_alias_vars(q, (Node *) q->jointree);
	q->havingQual = pgt_compat_flatten_join_alias_vars(q, q->havingQual);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_JOIN)
			rte->joinaliasvars = (List *)
				pgt_compat_flatten_join_alias_vars(q, (Node *) rte->joinaliasvars);
	}
	normalize_outer(q, (Node **) &q->jointree);
	forget_using((Node *) q->jointree);
}

/*
 * forget_using drops the USING lists of the joins under node: their quals
 * already hold the equalities, and once join output columns are flattened
 * the deparsed USING would no longer name what the quals compare.
 */
static void
forget_using(Node *node)
{
	ListCell   *lc;

	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
	{
		foreach(lc, ((FromExpr *) node)->fromlist)
			forget_using(lfirst(lc));
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		j->usingClause = NIL;
		j->join_using_alias = NULL;
		forget_using(j->larg);
		forget_using(j->rarg);
	}
}

/* find_unisolated_outer returns an outer join with a side that is not one entry */
static JoinExpr *
find_unisolated_outer(Node *node)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
		{
			JoinExpr   *j = find_unisolated_outer(lfirst(lc));

			if (j != NULL)
				return j;
		}
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		JoinExpr   *inner;

		if (j->jointype != JOIN_INNER &&
			(!IsA(j->larg, RangeTblRef) || !IsA(j->rarg, RangeTblRef)))
			return j;
		if ((inner = find_unisolated_outer(j->larg)) != NULL)
			return inner;
		return find_unisolated_outer(j->rarg);
	}
	return NULL;
}

static void
normalize_outer(Query *q, Node **nodeptr)
{
	JoinExpr   *j;

	(void) nodeptr;
	/* each wrap copies the join tree, so look the join up again each time */
	while ((j = find_unisolated_outer((Node *) q->jointree)) != NULL)
	{
		int			rtindex = j->rtindex;
		bool		left = !IsA(j->larg, RangeTblRef);
		Node	   *rtr = pgt_dvm_wrap_jointree_node(q, left ? j->larg : j->rarg);

		j = pgt_dvm_find_join((Node *) q->jointree, rtindex);
		if (left)
			j->larg = rtr;
		else
			j->rarg = rtr;
	}
}

/*
 * wrap_jointree_node moves the join tree node of q into a new subquery in
 * FROM that outputs every column of the relations under node, points all
 * references to those columns at the subquery, and returns the reference
 * to it that replaces node.
 */
Node *
pgt_dvm_wrap_jointree_node(Query *q, Node *node)
{
	Query	   *sub = makeNode(Query);
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	RangeTblRef *rtr = makeNode(RangeTblRef);
	RemapContext rc;
	List	   *members = NIL;
	List	   *names = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;
	char	   *alias;

	pgt_dvm_collect_rtindexes(node, &members);
	sub->commandType = CMD_SELECT;
	sub->querySource = QSRC_ORIGINAL;
	sub->canSetTag = true;
	sub->rtable = copyObject(q->rtable);
	sub->jointree = IsA(node, FromExpr) ? copyObject((FromExpr *) node) :
		makeFromExpr(list_make1(copyObject(node)), NULL);
	sub->hasSubLinks = q->hasSubLinks;
	/* entries outside node stay as placeholders so indexes need no change */
	foreach(lc, sub->rtable)
	{
		if (!list_member_int(members, foreach_current_index(lc) + 1))
		{
			RangeTblEntry *ph = makeNode(RangeTblEntry);

			ph->rtekind = RTE_RESULT;
			ph->eref = makeAlias(psprintf("__pgt_unused%d", foreach_current_index(lc) + 1), NIL);
			lfirst(lc) = ph;
		}
	}

	memset(&rc, 0, sizeof(rc));
	rc.members = members;
	foreach(lc, members)
	{
		Index		rti = lfirst_int(lc);
		RangeTblEntry *m = rt_fetch(rti, q->rtable);
		List	   *colnames;
		List	   *colvars;
		ListCell   *lc2;
		Bitmapset  *used = NULL;
		ListCell   *lc3;

		if (m->rtekind == RTE_JOIN)
			continue;

		/*
		 * Only the columns q refers to: a column nothing reads is not
		 * captured, and carrying it would make equal rows look different
		 * when states are consolidated.
		 */
		pull_varattnos((Node *) q->targetList, rti, &used);
		pull_varattnos(q->havingQual, rti, &used);
		pull_varattnos((Node *) q->jointree, rti, &used);
		foreach(lc3, q->rtable)
		{
			RangeTblEntry *other = lfirst(lc3);

			if (other->rtekind == RTE_JOIN)
				pull_varattnos((Node *) other->joinaliasvars, rti, &used);
		}

		expandRTE(m, rti, 0, -1, false, &colnames, &colvars);
		foreach(lc2, colvars)
		{
			Var		   *v = lfirst(lc2);
			char	   *name;

			if (!bms_is_member(v->varattno - FirstLowInvalidHeapAttributeNumber, used))
				continue;
			name = psprintf("__pgt_j%u_%d", rti, v->varattno);
			sub->targetList = lappend(sub->targetList,
									  makeTargetEntry((Expr *) v, resno++, name, false));
			names = lappend(names, makeString(name));
			rc.varnos = lappend_int(rc.varnos, rti);
			rc.attnos = lappend_int(rc.attnos, v->varattno);
		}
	}
	/* a constant column keeps the subquery valid when nothing else is needed */
	sub->targetList = lappend(sub->targetList,
							  makeTargetEntry((Expr *) makeConst(INT4OID, -1, InvalidOid, 4,
																 Int32GetDatum(1), false, true),
											  resno++, pstrdup("__pgt_one"), false));
	names = lappend(names, makeString(pstrdup("__pgt_one")));

	/*
	 * The subquery takes the range table slot of the lowest member: the
	 * deparser expects the inputs of a join to have lower indexes than the
	 * join itself, and the members are no longer referenced from q.
	 */
	rc.new_rti = INT_MAX;
	foreach(lc, members)
		rc.new_rti = Min(rc.new_rti, (Index) lfirst_int(lc));
	alias = psprintf("__pgt_j%u", rc.new_rti);
	normalize_joins(sub);
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = sub;
	rte->alias = makeAlias(alias, NIL);
	rte->eref = makeAlias(alias, names);
	rte->inFromCl = true;
	foreach(lc, members)
	{
		Index		m = lfirst_int(lc);
		RangeTblEntry *ph = makeNode(RangeTblEntry);

		/* moved away: leave placeholders the deparser can skip */
		ph->rtekind = RTE_RESULT;
		ph->eref = makeAlias(psprintf("__pgt_unused%u", m), NIL);
		list_nth_cell(q->rtable, m - 1)->ptr_value = ph;
	}
	list_nth_cell(q->rtable, rc.new_rti - 1)->ptr_value = rte;
	rtr->rtindex = rc.new_rti;

	q->targetList = (List *) remap_mutator((Node *) q->targetList, &rc);
	q->havingQual = remap_mutator(q->havingQual, &rc);
	q->jointree = (FromExpr *) remap_mutator((Node *) q->jointree, &rc);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *other = lfirst(lc);

		if (other->rtekind == RTE_JOIN && !list_member_int(members, foreach_current_index(lc) + 1))
			other->joinaliasvars = (List *) remap_mutator((Node *) other->joinaliasvars, &rc);
	}
	return (Node *) rtr;
}

/* pgt_dvm_collect_rtindexes appends the range table indexes under node */
void
pgt_dvm_collect_rtindexes(Node *node, List **list)
{
	if (IsA(node, RangeTblRef))
		*list = lappend_int(*list, ((RangeTblRef *) node)->rtindex);
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		pgt_dvm_collect_rtindexes(j->larg, list);
		pgt_dvm_collect_rtindexes(j->rarg, list);
		if (j->rtindex != 0)
			*list = lappend_int(*list, j->rtindex);
	}
	else if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			pgt_dvm_collect_rtindexes(lfirst(lc), list);
	}
}

static Node *
remap_mutator(Node *node, RemapContext *ctx)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varlevelsup == ctx->sublevels_up &&
			list_member_int(ctx->members, v->varno))
		{
			for (int i = 0; i < list_length(ctx->varnos); i++)
			{
				if (list_nth_int(ctx->varnos, i) == (int) v->varno &&
					list_nth_int(ctx->attnos, i) == v->varattno)
				{
					Var		   *nv = copyObject(v);

					nv->varno = ctx->new_rti;
					nv->varattno = i + 1;
					nv->varnosyn = 0;
					nv->varattnosyn = 0;
					return (Node *) nv;
				}
			}
			elog(ERROR, "could not remap column %d of range table entry %d",
				 v->varattno, v->varno);
		}
		return (Node *) copyObject(v);
	}
	if (IsA(node, Query))
	{
		Query	   *result;

		ctx->sublevels_up++;
		result = query_tree_mutator((Query *) node, remap_mutator, ctx, 0);
		ctx->sublevels_up--;
		return (Node *) result;
	}
	return expression_tree_mutator(node, remap_mutator, ctx);
}

/*
 * inline_ctes replaces references to the non-recursive CTEs of query (and,
 * recursively, of its subqueries and of its recursive CTEs' bodies) by
 * copies of the CTE's query.  Recursive CTEs stay (see recursive.c).
 */
static void
inline_ctes(Query *query, List *outer_ctes)
{
	ListCell   *lc;
	List	   *levels;
	List	   *recursive = NIL;

	/* lcons() extends a list in place: the caller's must stay as it is */
	levels = lcons(query->cteList, list_copy(outer_ctes));
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

				if (strcmp(cte->ctename, rte->ctename) == 0 && !cte->cterecursive)
				{
					Query	   *sub = copyObject(castNode(Query, cte->ctequery));

					/* the CTE now sits one level deeper than it was defined */
					IncrementVarSublevelsUp((Node *) sub, rte->ctelevelsup, 1);
					pgt_dvm_cte_to_subquery(rte, sub);
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
	foreach(lc, query->cteList)
	{
		CommonTableExpr *cte = lfirst(lc);

		if (cte->cterecursive)
		{
			inline_ctes(castNode(Query, cte->ctequery), levels);
			recursive = lappend(recursive, cte);
		}
	}
	query->cteList = recursive;
}

/*
 * pgt_dvm_cte_to_subquery turns a reference to a CTE into the subquery
 * sub, keeping its alias and column names.
 */
void
pgt_dvm_cte_to_subquery(RangeTblEntry *rte, Query *sub)
{
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = sub;
	rte->security_barrier = false;
	rte->ctename = NULL;
	rte->ctelevelsup = 0;
	rte->self_reference = false;
	rte->coltypes = NIL;
	rte->coltypmods = NIL;
	rte->colcollations = NIL;
}

/* pgt_dvm_find_join returns the join of a join tree with range table index rtindex */
JoinExpr *
pgt_dvm_find_join(Node *node, int rtindex)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
		{
			JoinExpr   *j = pgt_dvm_find_join(lfirst(lc), rtindex);

			if (j != NULL)
				return j;
		}
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		JoinExpr   *found;

		if (j->rtindex == rtindex)
			return j;
		if ((found = pgt_dvm_find_join(j->larg, rtindex)) != NULL)
			return found;
		return pgt_dvm_find_join(j->rarg, rtindex);
	}
	return NULL;
}
