/*-------------------------------------------------------------------------
 *
 * sublink.c
 *	  Turning subqueries in WHERE into joins the delta engine maintains.
 *
 *	  A top-level conjunct of a WHERE clause of the form
 *
 *	    EXISTS (SELECT ... FROM ... WHERE i1 = o1 AND ... AND rest)
 *	    x IN (SELECT y FROM ... WHERE i1 = o1 AND ... AND rest)
 *
 *	  where o1.. refer to the outer query and i1.., y and rest only to the
 *	  subquery, is a semi-join.  It becomes an inner join with the derived
 *	  table
 *
 *	    (SELECT DISTINCT y, i1, ... FROM ... WHERE rest) s
 *	    ON x = s.y AND s.i1 = o1 AND ...
 *
 *	  Every comparison is the equality DISTINCT uses, so an outer row meets
 *	  at most one row of s: the join keeps each outer row once when the
 *	  subquery has a match and drops it otherwise, exactly like the
 *	  semi-join.  NOT EXISTS (and NOT IN when neither x nor y can be NULL,
 *	  where it means the same) is the anti-join: the outer rows go into a
 *	  subquery that is LEFT JOINed to s, keeping the rows where s.y (or the
 *	  first key) IS NULL -- a matched row has it equal to a non-NULL outer
 *	  value.  The delta engine then maintains s like any DISTINCT subquery
 *	  (a change in the subquery's tables touches only the keys it changes)
 *	  and the joins by its join rules.
 *
 *	  One correlation "y <> x" besides the equalities is allowed in
 *	  [NOT] EXISTS: the derived table then keeps min(y) and max(y) per
 *	  correlation group (see pull_inequality).
 *
 *	  Anything else -- a correlation that is not such an equality, a
 *	  subquery with aggregates or LIMIT, a subquery under OR, in the select
 *	  list or in a join condition, a correlated NOT IN over nullable values
 *	  (an uncorrelated one gets a guard, see not_in_guard) -- is left in
 *	  place and refused by the engine's blocker as before.
 *
 *	  This file holds the driver (pgt_dvm_pull_up_sublinks), the semi- and
 *	  anti-join rewrites and the helpers they share with the scalar
 *	  subquery and ANY / ALL rewrites (sublink_scalar.c) and the LATERAL
 *	  rewrite (lateral.c).
 *
 * IDENTIFICATION
 *	  src/dvm/sublink.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/tlist.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "dvm_internal.h"

/* a subquery conjunct that can become a join */
static int	derived_counter = 0;

static PulledSublink *pull_conjunct(Query *q, Node *conjunct);
static PulledSublink *pull_sublink(Query *q, SubLink *sl, bool negated);
static bool split_correlation(Node *clause, Node **inner, Node **outer);
static bool is_distinct_equality(OpExpr *op, Node *left, Node *right);
static Node *replace_params(Node *node, List *vars);
static bool expr_never_null(Query *q, Node *expr, int levelsup);
static Query *wrap_in_from(Query *s);
static bool output_is_distinct(Query *s);
static PulledSublink *pull_distinct_in(Query *q, SubLink *sl, Query *s, bool negated);
static JoinExpr *make_left_join(Query *q, Node *larg, Index rrti, Node *quals);
static void expand_jointree_node(Query *q, Node *node, List **names, List **vars);
static void reset_sublink_flags(Query *q);
static bool split_inequality(Node *clause, Node **inner, Node **outer);
static OpExpr *split_sides(Node *clause, Node **inner, Node **outer);
static Node *not_in_guard(Query *s, List *rest, Node *y, Node *x);
static PulledSublink *pull_inequality(Query *s, SubLink *sl, List *rest, List *inner,
									  List *outer, List *ops, Node *ne_inner,
									  Node *ne_outer, Oid ne_op, bool negated);
static void attach_left_joins(Query *q, List *pulled, List **post);
static bool pull_nested(Query *q, Node *conjunct, List **pulled, Node **rewritten);
static bool collect_exists(Node *node, List **found);
static bool in_two_valued(Query *q, SubLink *sl);
static Node *exists_to_flags(Node *node, List *pairs);
static void hoist_join_sublinks(Query *q, Node *node, bool nullable);

/*
 * pgt_dvm_pull_up_sublinks rewrites the subquery conjuncts of the WHERE
 * clauses of q and of its subqueries in FROM (see the file header).
 */
void
pgt_dvm_pull_up_sublinks(Query *q)
{
	List	   *conjuncts;
	List	   *kept = NIL;
	List	   *anti = NIL;
	List	   *post = NIL;		/* conjuncts to filter after the LEFT JOINs */
	ListCell   *lc;

	if (q->setOperations != NULL)
	{
		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_SUBQUERY)
				pgt_dvm_pull_up_sublinks(rte->subquery);
		}
		reset_sublink_flags(q);
		return;
	}

	/* a subquery in the ON of an inner join is a WHERE condition */
	if (q->hasSubLinks && q->jointree != NULL && q->commandType == CMD_SELECT)
		hoist_join_sublinks(q, (Node *) q->jointree, false);

	if (q->hasSubLinks && q->jointree != NULL && q->jointree->quals != NULL &&
		q->commandType == CMD_SELECT)
	{
		conjuncts = make_ands_implicit((Expr *) q->jointree->quals);
		foreach(lc, conjuncts)
		{
			Node	   *c = lfirst(lc);
			PulledSublink *p = checkExprHasSubLink(c) ? pull_conjunct(q, c) : NULL;
			ListCell   *lc2;

			if (p == NULL)
			{
				List	   *extra = NIL;
				List	   *nested = NIL;
				Node	   *rewritten;

				/* EXISTS under OR, NOT, CASE ...: flags of LEFT JOINs */
				if (checkExprHasSubLink(c) && pull_nested(q, c, &nested, &rewritten))
				{
					anti = list_concat(anti, nested);
					post = lappend(post, rewritten);
					continue;
				}
				if (checkExprHasSubLink(c))
					c = pgt_dvm_pull_scalars(q, c, &extra);
				if (checkExprHasSubLink(c))
				{
					/* ANY/ALL, nullable IN, scalars under OR: LEFT JOINs */
					List	   *lj = NIL;
					Node	   *r = pgt_dvm_pull_scalars_left_join(q, c, &lj);

					if (r != NULL)
					{
						/* only correlated ones are LEFT JOINs; post filters follow them */
						anti = list_concat(anti, lj);
						if (lj != NIL)
							post = lappend(post, r);
						else
							kept = lappend(kept, r);
						kept = list_concat(kept, extra);
						continue;
					}
				}
				kept = lappend(kept, c);
				kept = list_concat(kept, extra);
			}
			else if (!p->anti)
			{
				/* semi-join: an inner join with the derived table */
				RangeTblRef *rtr = makeNode(RangeTblRef);

				rtr->rtindex = pgt_dvm_add_derived(q, p->derived);
				p->rtindex = rtr->rtindex;
				q->jointree->fromlist = lappend(q->jointree->fromlist, rtr);
				foreach(lc2, p->conds)
				{
					Node	   *c2 = copyObject(lfirst(lc2));

					ChangeVarNodes(c2, 0, rtr->rtindex, 0);
					kept = lappend(kept, c2);
				}
			}
			else
			{
				anti = lappend(anti, p);
				if (p->guard != NULL)
				{
					List	   *extra = NIL;

					kept = lappend(kept, pgt_dvm_pull_scalars(q, p->guard, &extra));
					kept = list_concat(kept, extra);
				}
			}
		}
		q->jointree->quals = (Node *) make_ands_explicit(kept);

		if (anti != NIL)
		{
			/*
			 * Anti-joins: the outer rows so far become the left side of a
			 * LEFT JOIN per subquery.  The join conditions ride along as
			 * the outer quals while the left side is wrapped, so that the
			 * columns they need are kept and remapped.
			 */
			List	   *nulltests = NIL;

			foreach(lc, anti)
			{
				PulledSublink *p = lfirst(lc);
				TargetEntry *first = linitial_node(TargetEntry, p->derived->targetList);
				NullTest   *nt;

				if (p->rtindex != 0)
					continue;	/* a nested EXISTS: its flag is in post */
				nt = makeNode(NullTest);
				p->rtindex = pgt_dvm_add_derived(q, p->derived);
				ChangeVarNodes((Node *) p->conds, 0, p->rtindex, 0);
				nt->arg = (Expr *) makeVar(p->rtindex, 1, exprType((Node *) first->expr),
										   exprTypmod((Node *) first->expr),
										   exprCollation((Node *) first->expr), 0);
				nt->nulltesttype = IS_NULL;
				nt->argisrow = false;
				nt->location = -1;
				nulltests = lappend(nulltests, nt);
			}
			attach_left_joins(q, anti, &post);
			q->jointree->quals = (Node *) make_ands_explicit(list_concat(nulltests, post));
		}
	}

	if (q->hasSubLinks && q->commandType == CMD_SELECT && q->jointree != NULL &&
		!q->hasAggs && q->groupClause == NIL && q->groupingSets == NIL &&
		q->havingQual == NULL && !q->hasWindowFuncs &&
		checkExprHasSubLink((Node *) q->targetList))
	{
		ScalarContext ctx = {q, NULL, NIL, false, NIL};

		q->targetList = (List *) pgt_dvm_scalar_mutator((Node *) q->targetList, &ctx);
		if (ctx.left_joins != NIL)
			attach_left_joins(q, ctx.left_joins, NULL);
	}

	/*
	 * HAVING: a one-row subquery is cross joined as well; every row of a
	 * group then carries its value, and min() over the group reads it.
	 */
	if (q->hasSubLinks && q->commandType == CMD_SELECT && q->jointree != NULL &&
		q->groupClause != NIL && q->groupingSets == NIL &&
		checkExprHasSubLink(q->havingQual))
	{
		/* (without GROUP BY an empty input still has its one group) */
		ScalarContext ctx = {q, NULL, NIL, true, NIL};

		q->havingQual = pgt_dvm_scalar_mutator(q->havingQual, &ctx);
		q->hasAggs = true;
	}

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_SUBQUERY)
			pgt_dvm_pull_up_sublinks(rte->subquery);
	}
	reset_sublink_flags(q);
}

/*
 * attach_left_joins makes the FROM/WHERE of q so far the left side of a
 * LEFT JOIN with each derived table of pulled (already in q's range
 * table; conds refer to it).  The conditions ride along as the quals while
 * the left side is wrapped, so that the columns they need are kept and
 * remapped.  q's WHERE is empty afterwards.
 */
static void
attach_left_joins(Query *q, List *pulled, List **post)
{
	List	   *conds = NIL;
	FromExpr   *left = makeFromExpr(q->jointree->fromlist, q->jointree->quals);
	Node	   *larg;
	ListCell   *lc;
	List	   *ride;

	foreach(lc, pulled)
		conds = lappend(conds, make_ands_explicit(copyObject(((PulledSublink *) lfirst(lc))->conds)));
	/* the join conditions and the filters after the joins are remapped too */
	ride = list_make2(conds, post ? *post : NIL);
	q->jointree = makeFromExpr(list_make1(left), (Node *) ride);
	larg = pgt_dvm_wrap_jointree_node(q, (Node *) left);
	ride = (List *) q->jointree->quals;
	conds = linitial(ride);
	if (post)
		*post = lsecond(ride);
	foreach(lc, pulled)
		larg = (Node *) make_left_join(q, larg, ((PulledSublink *) lfirst(lc))->rtindex,
									   list_nth(conds, foreach_current_index(lc)));
	q->jointree = makeFromExpr(list_make1(larg), NULL);
}

/* pull_conjunct recognizes [NOT] EXISTS, IN and NOT IN conjuncts */
static PulledSublink *
pull_conjunct(Query *q, Node *conjunct)
{
	if (IsA(conjunct, SubLink))
		return pull_sublink(q, (SubLink *) conjunct, false);
	if (is_notclause(conjunct) && IsA(get_notclausearg((Expr *) conjunct), SubLink))
		return pull_sublink(q, (SubLink *) get_notclausearg((Expr *) conjunct), true);
	return NULL;
}

static PulledSublink *
pull_sublink(Query *q, SubLink *sl, bool negated)
{
	Query	   *s = castNode(Query, sl->subselect);
	Query	   *d;
	PulledSublink *p;
	List	   *rest = NIL;
	List	   *tlist = NIL;
	List	   *outer_vars = NIL;	/* for IN: the derived columns of y */
	List	   *inner = NIL;
	List	   *outer = NIL;
	List	   *ops = NIL;
	Node	   *ne_inner = NULL;
	Node	   *ne_outer = NULL;
	Oid			ne_op = InvalidOid;
	ListCell   *lc;
	AttrNumber	resno = 1;

	if (sl->subLinkType != EXISTS_SUBLINK && sl->subLinkType != ANY_SUBLINK)
		return NULL;
	if (s->commandType != CMD_SELECT || s->cteList != NIL || s->hasRecursive ||
		s->hasModifyingCTE || s->rowMarks != NIL || s->jointree == NULL)
		return NULL;
	if (s->setOperations != NULL || s->hasAggs || s->groupClause != NIL ||
		s->groupingSets != NIL || s->havingQual != NULL || s->hasWindowFuncs ||
		s->hasTargetSRFs || s->limitCount != NULL || s->limitOffset != NULL ||
		s->hasDistinctOn)
	{
		/* uncorrelated: SELECT DISTINCT over it as a subquery in FROM */
		if (contain_vars_of_level((Node *) s, 1))
			return NULL;
		if (sl->subLinkType == ANY_SUBLINK && output_is_distinct(s))
			return pull_distinct_in(q, sl, s, negated);
		s = wrap_in_from(s);
	}
	if (!pgt_dvm_split_where(s, &rest, &inner, &outer, &ops, &ne_inner, &ne_outer, &ne_op))
		return NULL;
	if (ne_inner != NULL)
		return pull_inequality(s, sl, rest, inner, outer, ops,
							   ne_inner, ne_outer, ne_op, negated);

	d = copyObject(s);
	d->jointree->quals = (Node *) make_ands_explicit(copyObject(rest));
	d->sortClause = NIL;
	d->distinctClause = NIL;

	/* IN: the subquery's output columns come first */
	if (sl->subLinkType == ANY_SUBLINK)
	{
		foreach(lc, s->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (tle->resjunk)
				continue;
			tlist = lappend(tlist, makeTargetEntry(copyObject(tle->expr), resno,
												   psprintf("__pgt_y%d", resno), false));
			outer_vars = lappend(outer_vars,
								 makeVar(0, resno, exprType((Node *) tle->expr),
										 exprTypmod((Node *) tle->expr),
										 exprCollation((Node *) tle->expr), 0));
			resno++;
		}
	}
	foreach(lc, inner)
	{
		tlist = lappend(tlist, makeTargetEntry(copyObject(lfirst(lc)), resno,
											   psprintf("__pgt_k%d", resno), false));
		resno++;
	}
	if (tlist == NIL)
		tlist = list_make1(makeTargetEntry((Expr *) makeBoolConst(true, false), resno++,
										   pstrdup("__pgt_k1"), false));
	d->targetList = tlist;

	/* DISTINCT over every column */
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);
		SortGroupClause *sgc = makeNode(SortGroupClause);
		Oid			type = exprType((Node *) tle->expr);
		Oid			sortop;
		Oid			eqop;
		bool		hashable;

		get_sort_group_operators(type, false, false, false, &sortop, &eqop, NULL, &hashable);
		if (!OidIsValid(eqop) || (!OidIsValid(sortop) && !hashable))
			return NULL;
		tle->ressortgroupref = tle->resno;
		sgc->tleSortGroupRef = tle->resno;
		sgc->eqop = eqop;
		sgc->sortop = sortop;
		sgc->nulls_first = false;
		sgc->hashable = hashable;
		d->distinctClause = lappend(d->distinctClause, sgc);
	}

	p = palloc0(sizeof(PulledSublink));
	p->derived = d;
	p->anti = negated;

	/* join conditions, with varno 0 standing for the derived table */
	if (sl->subLinkType == ANY_SUBLINK)
	{
		Node	   *test = replace_params(copyObject(sl->testexpr), outer_vars);

		if (test == NULL)
			return NULL;
		foreach(lc, make_ands_implicit((Expr *) test))
		{
			OpExpr	   *op = lfirst(lc);

			if (!IsA(op, OpExpr) || list_length(op->args) != 2 ||
				!IsA(lsecond(op->args), Var) || ((Var *) lsecond(op->args))->varno != 0 ||
				!is_distinct_equality(op, linitial(op->args), lsecond(op->args)))
				return NULL;
			/*
			 * NOT IN means NOT EXISTS only when neither side can be NULL;
			 * otherwise, for an uncorrelated single-column subquery, a
			 * guard on the outer rows adds SQL's NULL rules.
			 */
			if (negated &&
				(!expr_never_null(q, linitial(op->args), 0) ||
				 !expr_never_null(s, (Node *) ((TargetEntry *) list_nth(s->targetList,
																		((Var *) lsecond(op->args))->varattno - 1))->expr, 0)))
			{
				TargetEntry *ytle = list_nth(s->targetList,
											 ((Var *) lsecond(op->args))->varattno - 1);

				if (inner != NIL || list_length(make_ands_implicit((Expr *) test)) != 1 ||
					contain_volatile_functions((Node *) s))
					return NULL;
				p->guard = not_in_guard(s, rest, (Node *) ytle->expr,
										(Node *) linitial(op->args));
				if (p->guard == NULL)
					return NULL;
			}
		}
		p->conds = make_ands_implicit((Expr *) test);
	}
	else if (negated && contain_volatile_functions((Node *) s))
		return NULL;
	foreach(lc, inner)
	{
		int			k = (sl->subLinkType == ANY_SUBLINK ? list_length(outer_vars) : 0) +
			foreach_current_index(lc) + 1;
		Node	   *i = lfirst(lc);
		Node	   *o = copyObject(list_nth(outer, foreach_current_index(lc)));
		Var		   *v = makeVar(0, k, exprType(i), exprTypmod(i), exprCollation(i), 0);

		IncrementVarSublevelsUp(o, -1, 1);
		p->conds = lappend(p->conds,
						   make_opclause(list_nth_oid(ops, foreach_current_index(lc)), BOOLOID,
										 false, (Expr *) v, (Expr *) o, InvalidOid,
										 exprCollation(i)));
	}
	if (p->conds == NIL)
		p->conds = list_make1(makeBoolConst(true, false));
	/* the derived table is a subquery of q now, no longer a sublink */
	return p;
}

/*
 * pull_nested handles a WHERE conjunct whose subqueries are all EXISTS
 * (or IN over columns that are never NULL, which is just as two-valued)
 * that pull_sublink can turn into derived tables, wherever they sit in it
 * (under OR, NOT, CASE): each derived table (one row per correlation key)
 * is LEFT JOINed, so the outer rows keep their multiplicity, and the
 * EXISTS becomes "its first column IS NOT NULL" -- a matched row has it
 * non-NULL.  EXISTS is never NULL, so the flag is exact in any context.
 * On success *pulled holds the derived tables, already added to q (their
 * join conditions refer to them), and *rewritten the conjunct.
 */
static bool
pull_nested(Query *q, Node *conjunct, List **pulled, Node **rewritten)
{
	List	   *found = NIL;
	List	   *pairs = NIL;
	ListCell   *lc;

	if (collect_exists(conjunct, &found) || found == NIL)
		return false;			/* another kind of subquery, or none */
	foreach(lc, found)
	{
		SubLink    *sl = lfirst(lc);
		PulledSublink *p;

		/* IN is three-valued in general: only where it cannot be NULL */
		if (sl->subLinkType == ANY_SUBLINK && !in_two_valued(q, sl))
			return false;
		p = pull_sublink(q, sl, false);
		if (p == NULL)
			return false;
		pairs = lappend(pairs, list_make2(lfirst(lc), p));
	}
	foreach(lc, pairs)
	{
		PulledSublink *p = lsecond(lfirst(lc));

		p->rtindex = pgt_dvm_add_derived(q, p->derived);
		ChangeVarNodes((Node *) p->conds, 0, p->rtindex, 0);
		*pulled = lappend(*pulled, p);
	}
	*rewritten = exists_to_flags(copyObject(conjunct), pairs);
	return true;
}

/* collect_exists lists the EXISTS sublinks of node; true if it met another */
static bool
collect_exists(Node *node, List **found)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
	{
		SubLink    *sl = (SubLink *) node;

		if (sl->subLinkType != EXISTS_SUBLINK && sl->subLinkType != ANY_SUBLINK)
			return true;
		*found = lappend(*found, sl);
		return false;			/* not into the subquery */
	}
	return expression_tree_walker(node, collect_exists, found);
}

/*
 * in_two_valued: sl is "x IN (SELECT y ...)" with one comparison whose
 * sides are never NULL, so it is true or false, never NULL -- like EXISTS.
 */
static bool
in_two_valued(Query *q, SubLink *sl)
{
	Query	   *s = castNode(Query, sl->subselect);
	OpExpr	   *op = (OpExpr *) sl->testexpr;
	Param	   *param;
	TargetEntry *tle;

	if (op == NULL || !IsA(op, OpExpr) || list_length(op->args) != 2 ||
		!IsA(lsecond(op->args), Param))
		return false;
	param = lsecond(op->args);
	if (param->paramkind != PARAM_SUBLINK || param->paramid < 1 ||
		param->paramid > list_length(s->targetList))
		return false;
	tle = list_nth(s->targetList, param->paramid - 1);
	return expr_never_null(q, linitial(op->args), 0) &&
		expr_never_null(s, (Node *) tle->expr, 0);
}

/* exists_to_flags replaces each EXISTS of pairs by its derived table's flag */
static Node *
exists_to_flags(Node *node, List *pairs)
{
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, SubLink))
	{
		foreach(lc, pairs)
		{
			SubLink    *sl = linitial(lfirst(lc));
			PulledSublink *p = lsecond(lfirst(lc));

			if (equal(node, sl))
			{
				TargetEntry *first = linitial_node(TargetEntry, p->derived->targetList);
				NullTest   *nt = makeNode(NullTest);

				nt->arg = (Expr *) makeVar(p->rtindex, 1, exprType((Node *) first->expr),
										   exprTypmod((Node *) first->expr),
										   exprCollation((Node *) first->expr), 0);
				nt->nulltesttype = IS_NOT_NULL;
				nt->argisrow = false;
				nt->location = -1;
				return (Node *) nt;
			}
		}
		elog(ERROR, "EXISTS subquery not pulled up");
	}
	return expression_tree_mutator(node, exists_to_flags, pairs);
}

/*
 * not_in_guard returns the filter that makes an anti-join on x = y exact for
 * x NOT IN (SELECT y FROM ... WHERE rest) when x or y may be NULL: the NOT
 * IN is true only when the subquery is empty, or when x is not NULL, no y
 * is NULL and none equals x (the anti-join's part):
 *
 *   (SELECT count(*) FROM ... WHERE rest) = 0
 *   OR (x IS NOT NULL AND (SELECT count(*) FROM ... WHERE rest AND y IS NULL) = 0)
 *
 * Both counts are one-row uncorrelated subqueries, which become cross
 * joins (pgt_dvm_pull_scalars).
 */
static Node *
not_in_guard(Query *s, List *rest, Node *y, Node *x)
{
	Node	   *counts[2];
	Oid			eq = lookup_type_cache(INT8OID, TYPECACHE_EQ_OPR)->eq_opr;
	NullTest   *xnn = makeNode(NullTest);

	for (int i = 0; i < 2; i++)
	{
		Query	   *c = copyObject(s);
		SubLink    *sl = makeNode(SubLink);
		List	   *quals = copyObject(rest);

		if (i == 1)
		{
			NullTest   *ynull = makeNode(NullTest);

			ynull->arg = (Expr *) copyObject(y);
			ynull->nulltesttype = IS_NULL;
			ynull->argisrow = false;
			ynull->location = -1;
			quals = lappend(quals, ynull);
		}
		c->targetList = list_make1(makeTargetEntry((Expr *) pgt_dvm_count_of(NULL), 1, pstrdup("n"), false));
		c->jointree->quals = (Node *) make_ands_explicit(quals);
		c->hasAggs = true;
		c->groupClause = NIL;
		c->distinctClause = NIL;
		c->sortClause = NIL;
		c->hasDistinctOn = false;
		sl->subLinkType = EXPR_SUBLINK;
		sl->subLinkId = 0;
		sl->subselect = (Node *) c;
		sl->location = -1;
		counts[i] = (Node *) make_opclause(eq, BOOLOID, false, (Expr *) sl,
										   (Expr *) makeConst(INT8OID, -1, InvalidOid, 8,
															  Int64GetDatum(0), false, true),
										   InvalidOid, InvalidOid);
		set_opfuncid((OpExpr *) counts[i]);
	}
	xnn->arg = (Expr *) copyObject(x);
	xnn->nulltesttype = IS_NOT_NULL;
	xnn->argisrow = false;
	xnn->location = -1;
	return (Node *) make_orclause(list_make2(counts[0],
											 make_andclause(list_make2(xnn, counts[1]))));
}

/*
 * pull_inequality handles [NOT] EXISTS correlated by equalities i = o and
 * one y <> x.  Some row of a correlation group has a non-NULL y other than
 * x exactly when x is not NULL and the group's smallest or largest
 * non-NULL y differs from x, so the derived table is
 *
 *   (SELECT i..., min(y) AS __pgt_mn, max(y) AS __pgt_mx
 *      FROM ... WHERE rest AND y IS NOT NULL GROUP BY i...) s
 *   ON s.i = o AND (s.__pgt_mn <> x OR s.__pgt_mx <> x)
 *
 * one row per group, so an outer row still meets at most one row of s.
 * (TPC-H Q21: another supplier of the same order.)
 */
static PulledSublink *
pull_inequality(Query *s, SubLink *sl, List *rest, List *inner, List *outer,
				List *ops, Node *ne_inner, Node *ne_outer, Oid ne_op, bool negated)
{
	Query	   *d;
	PulledSublink *p;
	List	   *tlist = NIL;
	AttrNumber	resno = 1;
	ListCell   *lc;
	NullTest   *nn = makeNode(NullTest);
	Oid			type = exprType(ne_inner);
	int32		typmod = exprTypmod(ne_inner);
	Oid			coll = exprCollation(ne_inner);
	Node	   *o;
	Var		   *mn;
	Var		   *mx;

	if (sl->subLinkType != EXISTS_SUBLINK)
		return NULL;
	if (negated && contain_volatile_functions((Node *) s))
		return NULL;

	d = copyObject(s);
	nn->arg = (Expr *) copyObject(ne_inner);
	nn->nulltesttype = IS_NOT_NULL;
	nn->argisrow = false;
	nn->location = -1;
	d->jointree->quals = (Node *) make_ands_explicit(lappend(copyObject(rest), nn));
	d->sortClause = NIL;
	d->distinctClause = NIL;
	d->groupClause = NIL;
	foreach(lc, inner)
	{
		TargetEntry *tle = makeTargetEntry(copyObject(lfirst(lc)), resno,
										   psprintf("__pgt_k%d", resno), false);
		SortGroupClause *sgc = makeNode(SortGroupClause);
		Oid			sortop;
		Oid			eqop;
		bool		hashable;

		get_sort_group_operators(exprType(lfirst(lc)), false, false, false,
								 &sortop, &eqop, NULL, &hashable);
		if (!OidIsValid(eqop) || (!OidIsValid(sortop) && !hashable))
			return NULL;
		tle->ressortgroupref = resno;
		sgc->tleSortGroupRef = resno;
		sgc->eqop = eqop;
		sgc->sortop = sortop;
		sgc->nulls_first = false;
		sgc->hashable = hashable;
		d->groupClause = lappend(d->groupClause, sgc);
		tlist = lappend(tlist, tle);
		resno++;
	}
	tlist = lappend(tlist, makeTargetEntry((Expr *) pgt_dvm_make_agg("min", copyObject(ne_inner)),
										   resno++, pstrdup("__pgt_mn"), false));
	tlist = lappend(tlist, makeTargetEntry((Expr *) pgt_dvm_make_agg("max", copyObject(ne_inner)),
										   resno++, pstrdup("__pgt_mx"), false));
	d->targetList = tlist;
	d->hasAggs = true;

	p = palloc0(sizeof(PulledSublink));
	p->derived = d;
	p->anti = negated;
	foreach(lc, inner)
	{
		Node	   *i = lfirst(lc);
		Node	   *oe = copyObject(list_nth(outer, foreach_current_index(lc)));
		Var		   *v = makeVar(0, foreach_current_index(lc) + 1, exprType(i),
								exprTypmod(i), exprCollation(i), 0);

		IncrementVarSublevelsUp(oe, -1, 1);
		p->conds = lappend(p->conds,
						   make_opclause(list_nth_oid(ops, foreach_current_index(lc)), BOOLOID,
										 false, (Expr *) v, (Expr *) oe, InvalidOid,
										 exprCollation(i)));
	}
	o = copyObject(ne_outer);
	IncrementVarSublevelsUp(o, -1, 1);
	mn = makeVar(0, resno - 2, type, typmod, coll, 0);
	mx = makeVar(0, resno - 1, type, typmod, coll, 0);
	p->conds = lappend(p->conds,
					   make_orclause(list_make2(make_opclause(ne_op, BOOLOID, false, (Expr *) mn,
															  (Expr *) o, InvalidOid, coll),
												make_opclause(ne_op, BOOLOID, false, (Expr *) mx,
															  (Expr *) copyObject(o),
															  InvalidOid, coll))));
	return p;
}

/*
 * pgt_dvm_split_where splits the WHERE clause of subquery s into correlation
 * equalities (inner side, outer side, operator) and the rest; false when
 * s refers to the outer query anywhere else (its select list or FROM
 * list: that would be LATERAL) or by anything but such an equality --
 * except, when ne_inner is given, for one "inner <> outer" (see
 * split_inequality), returned there.
 */
bool
pgt_dvm_split_where(Query *s, List **rest, List **inner, List **outer, List **ops,
			Node **ne_inner, Node **ne_outer, Oid *ne_op)
{
	ListCell   *lc;
	Node	   *quals = s->jointree->quals;
	bool		elsewhere;

	foreach(lc, s->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_CTE || rte->lateral)
			return false;
	}
	/* the outer query may be referred to from the WHERE clause only */
	s->jointree->quals = NULL;
	elsewhere = contain_vars_of_level((Node *) s, 1);
	s->jointree->quals = quals;
	if (elsewhere)
		return false;
	foreach(lc, make_ands_implicit((Expr *) quals))
	{
		Node	   *c = lfirst(lc);
		Node	   *i;
		Node	   *o;

		if (!contain_vars_of_level(c, 1))
		{
			*rest = lappend(*rest, c);
			continue;
		}
		if (!split_correlation(c, &i, &o))
		{
			/* at most one "inner <> outer" */
			if (ne_inner == NULL || *ne_inner != NULL || !split_inequality(c, &i, &o))
				return false;
			*ne_inner = i;
			*ne_outer = o;
			*ne_op = ((OpExpr *) c)->opno;
			continue;
		}
		*inner = lappend(*inner, i);
		*outer = lappend(*outer, o);
		*ops = lappend_oid(*ops, ((OpExpr *) c)->opno);
	}
	return true;
}

/*
 * split_correlation: clause is "inner = outer" (either order) with the
 * equality DISTINCT uses, inner referring only to the subquery and outer
 * only to the query one level up.
 */
static bool
split_correlation(Node *clause, Node **inner, Node **outer)
{
	OpExpr	   *op = split_sides(clause, inner, outer);

	return op != NULL && is_distinct_equality(op, *inner, *outer);
}

/*
 * split_sides: clause is a binary operator between an expression of the
 * subquery (inner) and one of the query one level up only (outer), in
 * either order, without volatile functions or subqueries; returns it, or
 * NULL.
 */
static OpExpr *
split_sides(Node *clause, Node **inner, Node **outer)
{
	OpExpr	   *op = (OpExpr *) clause;
	Node	   *a;
	Node	   *b;

	if (!IsA(clause, OpExpr) || list_length(op->args) != 2)
		return NULL;
	a = linitial(op->args);
	b = lsecond(op->args);
	if (contain_vars_of_level(a, 1) && !contain_vars_of_level(b, 1))
	{
		Node	   *t = a;

		a = b;
		b = t;
	}
	if (contain_vars_of_level(a, 1) || contain_vars_of_level(b, 0) ||
		!contain_vars_of_level(b, 1) || contain_volatile_functions(clause) ||
		checkExprHasSubLink(clause))
		return NULL;
	/* nothing from further up than the query itself */
	for (int level = 2; level < 16; level++)
		if (contain_vars_of_level(b, level))
			return NULL;
	*inner = a;
	*outer = b;
	return op;
}

/*
 * split_inequality: clause is "inner <> outer" (either order), <> being the
 * negator of the type's default equality, under the same collation, for a
 * type with min() and max() (a btree ordering).
 */
static bool
split_inequality(Node *clause, Node **inner, Node **outer)
{
	OpExpr	   *op = split_sides(clause, inner, outer);
	Node	   *a;
	Node	   *b;
	Oid			type;
	TypeCacheEntry *tc;

	if (op == NULL)
		return false;
	a = *inner;
	b = *outer;
	type = exprType(a);
	if (type != exprType(b) || op->inputcollid != exprCollation(a) ||
		op->inputcollid != exprCollation(b))
		return false;
	tc = lookup_type_cache(type, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR);
	if (!OidIsValid(tc->eq_opr) || !OidIsValid(tc->lt_opr) ||
		get_negator(tc->eq_opr) != op->opno)
		return false;
	return pgt_dvm_make_agg("min", a) != NULL && pgt_dvm_make_agg("max", a) != NULL;
}

/*
 * is_distinct_equality: op is the equality of the (same) type of both
 * sides, under the collation of the subquery's side (right for IN tests,
 * either for correlations), so DISTINCT and GROUP BY on that side group
 * exactly what op matches.
 */
static bool
is_distinct_equality(OpExpr *op, Node *left, Node *right)
{
	Oid			type = exprType(left);
	TypeCacheEntry *tc;

	if (type != exprType(right))
		return false;
	if (op->inputcollid != exprCollation(left) || op->inputcollid != exprCollation(right))
		return false;
	tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
	return OidIsValid(tc->eq_opr) && tc->eq_opr == op->opno;
}

/*
 * replace_params replaces the PARAM_SUBLINK references of an IN test by
 * the derived table's columns.
 */
static Node *
replace_params(Node *node, List *vars)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Param))
	{
		Param	   *param = (Param *) node;

		if (param->paramkind != PARAM_SUBLINK || param->paramid < 1 ||
			param->paramid > list_length(vars))
			elog(ERROR, "unexpected parameter in a subquery test");
		return copyObject(list_nth(vars, param->paramid - 1));
	}
	return expression_tree_mutator(node, replace_params, vars);
}

/*
 * expr_never_null: expr is a column of a table with NOT NULL, read in q
 * outside the nullable side of any outer join (q has none).
 */
static bool
expr_never_null(Query *q, Node *expr, int levelsup)
{
	Var		   *v = (Var *) expr;
	RangeTblEntry *rte;
	HeapTuple	tup;
	bool		notnull = false;
	ListCell   *lc;

	if (!IsA(expr, Var) || v->varlevelsup != levelsup || v->varattno <= 0)
		return false;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *other = lfirst(lc);

		if (other->rtekind == RTE_JOIN && other->jointype != JOIN_INNER)
			return false;
	}
	rte = rt_fetch(v->varno, q->rtable);
	if (rte->rtekind != RTE_RELATION)
		return false;
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(rte->relid), Int16GetDatum(v->varattno));
	if (HeapTupleIsValid(tup))
	{
		notnull = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
		ReleaseSysCache(tup);
	}
	return notnull;
}

/*
 * output_is_distinct: s returns each row at most once because it groups
 * by exactly its output columns (or aggregates without GROUP BY).
 */
static bool
output_is_distinct(Query *s)
{
	ListCell   *lc;
	int			outputs = 0;

	if (s->setOperations != NULL || s->groupingSets != NIL || s->hasTargetSRFs ||
		s->hasWindowFuncs || s->limitOffset != NULL || s->limitCount != NULL)
		return false;
	if (s->groupClause == NIL)
		return s->hasAggs;
	foreach(lc, s->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			return false;
		if (tle->ressortgroupref == 0 ||
			get_sortgroupref_clause_noerr(tle->ressortgroupref, s->groupClause) == NULL)
			return false;
		outputs++;
	}
	return outputs == list_length(s->groupClause);
}

/*
 * pull_distinct_in: x IN (s) where s's rows are distinct already: s itself
 * is the derived table, joined on the IN test.
 */
static PulledSublink *
pull_distinct_in(Query *q, SubLink *sl, Query *s, bool negated)
{
	PulledSublink *p;
	List	   *vars = NIL;
	Node	   *test;
	ListCell   *lc;

	if (negated)
		return NULL;			/* NOT IN needs NULL-free columns */
	foreach(lc, s->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		vars = lappend(vars, makeVar(0, tle->resno, exprType((Node *) tle->expr),
									 exprTypmod((Node *) tle->expr),
									 exprCollation((Node *) tle->expr), 0));
	}
	test = replace_params(copyObject(sl->testexpr), vars);
	foreach(lc, make_ands_implicit((Expr *) test))
	{
		OpExpr	   *op = lfirst(lc);

		if (!IsA(op, OpExpr) || list_length(op->args) != 2 ||
			!is_distinct_equality(op, linitial(op->args), lsecond(op->args)))
			return NULL;
	}
	p = palloc0(sizeof(PulledSublink));
	p->derived = copyObject(s);
	p->derived->sortClause = NIL;
	p->conds = make_ands_implicit((Expr *) test);
	return p;
}

/* wrap_in_from returns SELECT <every output column> FROM (s) */
static Query *
wrap_in_from(Query *s)
{
	Query	   *w = makeNode(Query);
	Query	   *sub = copyObject(s);
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	RangeTblRef *rtr = makeNode(RangeTblRef);
	List	   *names = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;

	/* one level deeper than before: no outer references, nothing to adjust */
	foreach(lc, sub->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		names = lappend(names, makeString(psprintf("__pgt_c%d", resno)));
		w->targetList = lappend(w->targetList,
								makeTargetEntry((Expr *) makeVar(1, tle->resno,
																 exprType((Node *) tle->expr),
																 exprTypmod((Node *) tle->expr),
																 exprCollation((Node *) tle->expr), 0),
												resno, psprintf("__pgt_c%d", resno), false));
		resno++;
	}
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = sub;
	rte->alias = makeAlias("__pgt_s", copyObject(names));
	rte->eref = makeAlias("__pgt_s", names);
	rte->inFromCl = true;
	rtr->rtindex = 1;
	w->commandType = CMD_SELECT;
	w->querySource = QSRC_ORIGINAL;
	w->canSetTag = true;
	w->rtable = list_make1(rte);
	w->jointree = makeFromExpr(list_make1(rtr), NULL);
	return w;
}

/* pgt_dvm_add_derived appends derived to q's range table; returns its index */
Index
pgt_dvm_add_derived(Query *q, Query *derived)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	List	   *names = NIL;
	char	   *alias = psprintf("__pgt_sl%d", ++derived_counter);

	ListCell   *lc;

	foreach(lc, derived->targetList)
		names = lappend(names, makeString(pstrdup(((TargetEntry *) lfirst(lc))->resname)));
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = derived;
	rte->alias = makeAlias(alias, copyObject(names));
	rte->eref = makeAlias(alias, names);
	rte->inFromCl = true;
	q->rtable = lappend(q->rtable, rte);
	return list_length(q->rtable);
}

/*
 * make_left_join builds "larg LEFT JOIN <rrti> ON quals" with its join
 * range table entry.
 */
static JoinExpr *
make_left_join(Query *q, Node *larg, Index rrti, Node *quals)
{
	JoinExpr   *j = makeNode(JoinExpr);
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	RangeTblRef *rtr = makeNode(RangeTblRef);
	List	   *lnames = NIL;
	List	   *lvars = NIL;
	List	   *rnames = NIL;
	List	   *rvars = NIL;
	List	   *lcols = NIL;
	List	   *rcols = NIL;

	rtr->rtindex = rrti;
	expand_jointree_node(q, larg, &lnames, &lvars);
	expand_jointree_node(q, (Node *) rtr, &rnames, &rvars);
	for (int i = 1; i <= list_length(lvars); i++)
		lcols = lappend_int(lcols, i);
	for (int i = 1; i <= list_length(rvars); i++)
		rcols = lappend_int(rcols, i);

	rte->rtekind = RTE_JOIN;
	rte->jointype = JOIN_LEFT;
	rte->joinmergedcols = 0;
	rte->joinaliasvars = list_concat(lvars, rvars);
	rte->joinleftcols = lcols;
	rte->joinrightcols = rcols;
	rte->eref = makeAlias("unnamed_join", list_concat(lnames, rnames));
	rte->inFromCl = true;
	q->rtable = lappend(q->rtable, rte);

	j->jointype = JOIN_LEFT;
	j->isNatural = false;
	j->larg = larg;
	j->rarg = (Node *) rtr;
	j->quals = quals;
	j->rtindex = list_length(q->rtable);
	return j;
}

/* expand_jointree_node lists the output columns of a join tree node */
static void
expand_jointree_node(Query *q, Node *node, List **names, List **vars)
{
	Index		rti;
	RangeTblEntry *rte;
	List	   *n = NIL;
	List	   *v = NIL;

	if (IsA(node, RangeTblRef))
		rti = ((RangeTblRef *) node)->rtindex;
	else if (IsA(node, JoinExpr))
		rti = ((JoinExpr *) node)->rtindex;
	else
		elog(ERROR, "unexpected join tree node %d", (int) nodeTag(node));
	rte = rt_fetch(rti, q->rtable);
	expandRTE(rte, rti, 0, -1, false, &n, &v);
	*names = list_concat(*names, n);
	*vars = list_concat(*vars, v);
}

/*
 * reset_sublink_flags recomputes hasSubLinks of q after the rewrite.  A
 * subquery expression anywhere at this level counts: also in a function or
 * VALUES list in FROM, in LIMIT/OFFSET or in a window frame, places the
 * rewrite does not touch (the flag tells the blocker to look).
 */
static void
reset_sublink_flags(Query *q)
{
	q->hasSubLinks = pgt_dvm_level_has_sublink(q);
}

static bool
level_sublink_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
		return true;
	if (IsA(node, Query))
		return false;			/* another level */
	return expression_tree_walker(node, level_sublink_walker, context);
}

/*
 * pgt_dvm_level_has_sublink: does query level q hold a subquery expression
 * anywhere (select list, join tree, HAVING, LIMIT/OFFSET, window frames,
 * functions, VALUES and table functions in FROM)?  Subqueries in FROM and
 * CTEs are levels of their own; join alias lists are not evaluated.
 */
bool
pgt_dvm_level_has_sublink(Query *q)
{
	ListCell   *lc;

	foreach(lc, q->windowClause)
	{
		WindowClause *wc = lfirst_node(WindowClause, lc);

		if (level_sublink_walker(wc->startOffset, NULL) ||
			level_sublink_walker(wc->endOffset, NULL))
			return true;
	}
	/*
	 * Join alias lists are not evaluated (the LATERAL rewrite leaves its
	 * scalar subqueries there after they were pulled up as joins).
	 */
	return query_tree_walker(q, level_sublink_walker, NULL,
							 QTW_IGNORE_RC_SUBQUERIES | QTW_IGNORE_CTE_SUBQUERIES |
							 QTW_IGNORE_JOINALIASES);
}

/*
 * hoist_join_sublinks moves the ON conditions with subqueries of inner
 * joins that no outer join NULL-extends into q's WHERE, where they mean the
 * same and the rewrites above apply.
 */
static void
hoist_join_sublinks(Query *q, Node *node, bool nullable)
{
	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			hoist_join_sublinks(q, lfirst(lc), nullable);
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		hoist_join_sublinks(q, j->larg, nullable ||
							j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL);
		hoist_join_sublinks(q, j->rarg, nullable ||
							j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL);
		if (j->jointype == JOIN_INNER && !nullable && j->quals != NULL &&
			checkExprHasSubLink(j->quals))
		{
			q->jointree->quals = q->jointree->quals == NULL ? j->quals :
				(Node *) make_ands_explicit(list_make2(q->jointree->quals, j->quals));
			j->quals = (Node *) makeBoolConst(true, false);
		}
	}
}

