/*-------------------------------------------------------------------------
 *
 * lateral.c
 *	  LATERAL subqueries in FROM turned into ordinary derived tables the
 *	  delta engine maintains: correlation equalities become join conditions
 *	  (top-n per outer row through row_number()), and an aggregate without
 *	  GROUP BY becomes scalar subqueries (see pgt_dvm_decorrelate_lateral).
 *
 * IDENTIFICATION
 *	  src/dvm/lateral.c
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

/* ---------------------------------------------------------------- LATERAL */

static bool decorrelate_lateral(Query *q, Index rti, RangeTblEntry *rte);
static Node **lateral_quals(Node *node, Index rti);
static bool lateral_aggregate(Query *q, Index rti, RangeTblEntry *rte);
static bool outer_in_scope(Query *q, Node **quals, List *outer);
static bool entry_nullable(Node *node, Index rti, bool nullable);
static bool other_entries_read(Query *q, Index rti);
static Node *lateral_var_mutator(Node *node, void *context);

typedef struct LateralAgg
{
	Index		rti;
	Query	   *s;
	int			sublevels_up;
	bool		failed;			/* met a whole-row or system column reference */
} LateralAgg;
static char *order_by_text(Query *s, List *sortnames);

/*
 * pgt_dvm_decorrelate_lateral turns LATERAL subqueries of q (and of its
 * subqueries) that refer to the rest of the FROM list only through
 * equalities in their WHERE clause, "inner = outer", into ordinary derived
 * tables joined on those equalities:
 *
 *	 FROM t, LATERAL (SELECT ... FROM u WHERE u.k = t.k AND p) s
 *	   =>  FROM t, (SELECT ..., u.k AS __pgt_lk1 FROM u WHERE p) s
 *		   WHERE t.k = s.__pgt_lk1
 *
 * A t row meets exactly the rows the subquery returns for it.  With ORDER
 * BY ... LIMIT n [OFFSET m] (top-n per outer row), the derived table keeps
 * the rows ranked m+1 .. m+n by row_number() over the partition of the
 * correlation values, which are the rows each outer row sees.  LEFT JOIN
 * LATERAL gets the equalities in its ON clause.  Anything else stays
 * LATERAL (and is refused by the blocker).
 */
void
pgt_dvm_decorrelate_lateral(Query *q)
{
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind != RTE_SUBQUERY)
			continue;
		pgt_dvm_decorrelate_lateral(rte->subquery);
		if (rte->lateral)
			(void) decorrelate_lateral(q, foreach_current_index(lc) + 1, rte);
	}
}

static bool
decorrelate_lateral(Query *q, Index rti, RangeTblEntry *rte)
{
	Query	   *s = copyObject(rte->subquery);
	List	   *rest = NIL;
	List	   *inner = NIL;
	List	   *outer = NIL;
	List	   *ops = NIL;
	Node	  **quals = lateral_quals((Node *) q->jointree, rti);
	List	   *tlist = NIL;
	List	   *names = NIL;
	List	   *lknames = NIL;
	List	   *sortnames = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;
	int64		count = -1;
	int64		offset = 0;
	Query	   *derived;

	if (quals != NULL && s->commandType == CMD_SELECT && s->hasAggs &&
		s->groupClause == NIL && s->groupingSets == NIL && s->havingQual == NULL &&
		s->limitCount == NULL && s->limitOffset == NULL && !s->hasWindowFuncs &&
		!s->hasTargetSRFs && s->setOperations == NULL && s->cteList == NIL &&
		s->distinctClause == NIL)
		return lateral_aggregate(q, rti, rte);
	if (quals == NULL || s->commandType != CMD_SELECT ||
		s->hasAggs || s->groupClause != NIL || s->distinctClause != NIL ||
		s->havingQual != NULL || s->setOperations != NULL || s->hasWindowFuncs ||
		s->hasTargetSRFs || s->groupingSets != NIL || s->cteList != NIL ||
		s->jointree == NULL)
		return false;
	if (s->limitCount != NULL)
	{
		Const	   *c = (Const *) eval_const_expressions(NULL, s->limitCount);

		if (!IsA(c, Const) || c->constisnull || s->limitOption != LIMIT_OPTION_COUNT)
			return false;
		count = DatumGetInt64(c->constvalue);
	}
	if (s->limitOffset != NULL)
	{
		Const	   *c = (Const *) eval_const_expressions(NULL, s->limitOffset);

		if (!IsA(c, Const) || c->constisnull)
			return false;
		offset = DatumGetInt64(c->constvalue);
	}
	if (!contain_vars_of_level((Node *) s, 1))
	{
		rte->lateral = false;	/* refers to nothing beside it */
		return true;
	}
	if (!pgt_dvm_split_where(s, &rest, &inner, &outer, &ops, NULL, NULL, NULL) || inner == NIL)
		return false;
	if (!outer_in_scope(q, quals, outer))
		return false;

	/* the subquery without the correlation, exposing its inner sides */
	s->jointree->quals = rest == NIL ? NULL : (Node *) make_ands_explicit(rest);
	tlist = pgt_dvm_visible_tlist(s->targetList);
	foreach(lc, tlist)
		names = lappend(names, makeString(psprintf("__pgt_o%d", foreach_current_index(lc) + 1)));
	resno = list_length(tlist) + 1;
	foreach(lc, inner)
	{
		char	   *name = psprintf("__pgt_lk%d", foreach_current_index(lc) + 1);

		tlist = lappend(tlist, makeTargetEntry(copyObject(lfirst(lc)), resno++, name, false));
		lknames = lappend(lknames, makeString(name));
	}
	if (count >= 0 || offset > 0)
	{
		/* the sort keys, as more columns */
		foreach(lc, s->sortClause)
		{
			TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), s->targetList);
			char	   *name = psprintf("__pgt_ls%d", foreach_current_index(lc) + 1);

			tlist = lappend(tlist, makeTargetEntry(copyObject(tle->expr), resno++, name, false));
			sortnames = lappend(sortnames, makeString(name));
		}
		if (s->sortClause == NIL || order_by_text(s, sortnames) == NULL)
			return false;
	}
	{
		char	   *order = (count >= 0 || offset > 0) ? order_by_text(s, sortnames) : NULL;
		List	   *all = list_concat(list_concat(list_copy(names), lknames), sortnames);
		StringInfoData cols;
		StringInfoData sql;

		s->targetList = tlist;
		s->sortClause = NIL;
		s->limitCount = NULL;
		s->limitOffset = NULL;
		if (order == NULL)
			derived = s;
		else
		{
			initStringInfo(&cols);
			foreach(lc, list_concat(list_copy(names), lknames))
				appendStringInfo(&cols, "%sw.%s", cols.len > 0 ? ", " : "", strVal(lfirst(lc)));
			initStringInfo(&sql);
			appendStringInfo(&sql, "SELECT %s FROM (SELECT d.*, pg_catalog.row_number() OVER (PARTITION BY ",
							 cols.data);
			foreach(lc, lknames)
				appendStringInfo(&sql, "%sd.%s", foreach_current_index(lc) > 0 ? ", " : "",
								 strVal(lfirst(lc)));
			appendStringInfo(&sql, " ORDER BY %s) AS __pgt_rn FROM (%s) AS d(", order,
							 pgt_dvm_deparse(s));
			foreach(lc, all)
				appendStringInfo(&sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
								 strVal(lfirst(lc)));
			appendStringInfo(&sql, ")) AS w WHERE w.__pgt_rn > " INT64_FORMAT, offset);
			if (count >= 0)
				appendStringInfo(&sql, " AND w.__pgt_rn <= " INT64_FORMAT, offset + count);
			derived = pgt_dvm_parse_sql(sql.data);
		}
	}

	/* the entry: its columns as before, then the correlation values */
	{
		List	   *colnames = list_copy(rte->eref->colnames);
		int			natts = list_length(colnames);

		foreach(lc, lknames)
			colnames = lappend(colnames, makeString(pstrdup(strVal(lfirst(lc)))));
		rte->subquery = derived;
		rte->lateral = false;
		rte->eref = makeAlias(rte->eref->aliasname, colnames);
		if (rte->alias != NULL)
			rte->alias = makeAlias(rte->alias->aliasname, copyObject(colnames));

		/* ... joined on outer = inner */
		foreach(lc, outer)
		{
			Node	   *o = copyObject(lfirst(lc));
			Node	   *i = (Node *) list_nth(inner, foreach_current_index(lc));
			Var		   *v = makeVar(rti, natts + foreach_current_index(lc) + 1, exprType(i),
									exprTypmod(i), exprCollation(i), 0);
			OpExpr	   *op;

			IncrementVarSublevelsUp(o, -1, 1);
			op = (OpExpr *) make_opclause(list_nth_oid(ops, foreach_current_index(lc)), BOOLOID,
										  false, (Expr *) o, (Expr *) v, InvalidOid,
										  exprCollation(i));
			set_opfuncid(op);
			*quals = *quals == NULL ? (Node *) op :
				(Node *) make_ands_explicit(list_concat(make_ands_implicit((Expr *) *quals),
														list_make1(op)));
		}
	}
	return true;
}

/*
 * lateral_quals: where the join conditions of entry rti go: the quals of
 * the FROM list holding it, or of the INNER or LEFT join whose right side
 * it is; NULL if elsewhere.
 */
static Node **
lateral_quals(Node *node, Index rti)
{
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, FromExpr))
	{
		FromExpr   *f = (FromExpr *) node;

		foreach(lc, f->fromlist)
		{
			Node	  **r;

			if (IsA(lfirst(lc), RangeTblRef) && ((RangeTblRef *) lfirst(lc))->rtindex == (int) rti)
				return &f->quals;
			if ((r = lateral_quals(lfirst(lc), rti)) != NULL)
				return r;
		}
		return NULL;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		Node	  **r;

		if (IsA(j->rarg, RangeTblRef) && ((RangeTblRef *) j->rarg)->rtindex == (int) rti)
			return (j->jointype == JOIN_INNER || j->jointype == JOIN_LEFT) ? &j->quals : NULL;
		if ((r = lateral_quals(j->larg, rti)) != NULL)
			return r;
		return lateral_quals(j->rarg, rti);
	}
	return NULL;
}

/*
 * order_by_text: the ORDER BY of s over the columns sortnames (d.<name>),
 * with directions and NULLS placement; NULL for a sort by a non-default
 * operator.
 */
static char *
order_by_text(Query *s, List *sortnames)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, sortnames)
		names = lappend(names, psprintf("d.%s", strVal(lfirst(lc))));
	return pgt_dvm_order_by_list(s, names);
}


/*
 * lateral_aggregate: a LATERAL subquery that aggregates without GROUP BY
 * returns exactly one row for each outer row, so each of its columns is a
 * scalar subquery (correlated as the LATERAL one was) wherever the query
 * reads it, and the entry itself becomes a one-row relation; the scalar
 * rewrites then take over.  Only where the join adds nothing else (a
 * comma, CROSS JOIN, or JOIN/LEFT JOIN ... ON true).
 */
static bool
lateral_aggregate(Query *q, Index rti, RangeTblEntry *rte)
{
	Node	  **quals = lateral_quals((Node *) q->jointree, rti);
	LateralAgg ctx;
	ListCell   *lc;

	List	   *tlist;
	FromExpr   *jointree;
	Node	   *having;
	List	   *aliasvars = NIL;

	if (quals != &q->jointree->quals && *quals != NULL &&
		!(IsA(*quals, Const) && !((Const *) *quals)->constisnull &&
		  DatumGetBool(((Const *) *quals)->constvalue)))
		return false;
	/*
	 * Not under the nullable side of an outer join (a NULL-extended row
	 * would read the values over no rows instead of NULL), and read only by
	 * the query's expressions, not by other FROM items.
	 */
	if (entry_nullable((Node *) q->jointree, rti, false) || other_entries_read(q, rti))
		return false;
	ctx.rti = rti;
	ctx.s = rte->subquery;
	ctx.sublevels_up = 0;
	ctx.failed = false;
	tlist = (List *) lateral_var_mutator((Node *) copyObject(q->targetList), &ctx);
	jointree = (FromExpr *) lateral_var_mutator((Node *) copyObject(q->jointree), &ctx);
	having = lateral_var_mutator(copyObject(q->havingQual), &ctx);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *other = lfirst(lc);

		aliasvars = lappend(aliasvars, other->rtekind != RTE_JOIN ? NULL :
							lateral_var_mutator((Node *) copyObject(other->joinaliasvars), &ctx));
	}
	if (ctx.failed)
		return false;			/* a whole-row reference */
	q->targetList = tlist;
	q->jointree = jointree;
	q->havingQual = having;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *other = lfirst(lc);

		if (other->rtekind == RTE_JOIN)
			other->joinaliasvars = list_nth(aliasvars, foreach_current_index(lc));
	}
	rte->subquery = pgt_dvm_parse_sql("SELECT 1 AS __pgt_one");
	rte->lateral = false;
	rte->eref = makeAlias(rte->eref->aliasname, list_make1(makeString("__pgt_one")));
	rte->alias = NULL;
	q->hasSubLinks = true;
	return true;
}

static Node *
lateral_var_mutator(Node *node, void *context)
{
	LateralAgg *ctx = context;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == ctx->rti &&
		((Var *) node)->varlevelsup == (Index) ctx->sublevels_up)
	{
		Var		   *v = (Var *) node;

		if (v->varattno <= 0 || v->varattno > list_length(ctx->s->targetList))
		{
			ctx->failed = true;
			return node;
		}
	}
	if (IsA(node, Var) && ((Var *) node)->varno == ctx->rti &&
		((Var *) node)->varlevelsup == (Index) ctx->sublevels_up)
	{
		Var		   *v = (Var *) node;
		Query	   *c = copyObject(ctx->s);
		SubLink    *sl = makeNode(SubLink);
		TargetEntry *tle = list_nth(c->targetList, v->varattno - 1);

		c->targetList = list_make1(makeTargetEntry(tle->expr, 1, pstrdup("v"), false));
		c->sortClause = NIL;
		if (ctx->sublevels_up > 0)
			IncrementVarSublevelsUp((Node *) c, ctx->sublevels_up, 1);
		sl->subLinkType = EXPR_SUBLINK;
		sl->subLinkId = 0;
		sl->subselect = (Node *) c;
		sl->location = -1;
		return (Node *) sl;
	}
	if (IsA(node, Query))
	{
		Query	   *r;

		ctx->sublevels_up++;
		r = query_tree_mutator((Query *) node, lateral_var_mutator, ctx, 0);
		ctx->sublevels_up--;
		return (Node *) r;
	}
	return expression_tree_mutator(node, lateral_var_mutator, ctx);
}

/*
 * outer_in_scope: the correlation values (outer, level 1 of the LATERAL
 * subquery) can be read where its join conditions go: anywhere for the
 * query's WHERE, else only from the left side of that join.
 */
static bool
outer_in_scope(Query *q, Node **quals, List *outer)
{
	List	   *left = NIL;
	ListCell   *lc;

	if (quals == &q->jointree->quals)
		return true;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		JoinExpr   *j;

		if (rte->rtekind != RTE_JOIN)
			continue;
		j = pgt_dvm_find_join((Node *) q->jointree, foreach_current_index(lc) + 1);
		if (j != NULL && &j->quals == quals)
		{
			pgt_dvm_collect_rtindexes(j->larg, &left);
			break;
		}
	}
	if (left == NIL)
		return false;
	foreach(lc, outer)
	{
		Node	   *o = copyObject(lfirst(lc));
		int			x = -1;
		Relids		varnos;

		IncrementVarSublevelsUp(o, -1, 1);
		varnos = pull_varnos(NULL, o);
		while ((x = bms_next_member(varnos, x)) >= 0)
			if (!list_member_int(left, x))
				return false;
	}
	return true;
}

/* entry_nullable: entry rti lies under the nullable side of an outer join */
static bool
entry_nullable(Node *node, Index rti, bool nullable)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblRef))
		return nullable && ((RangeTblRef *) node)->rtindex == (int) rti;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			if (entry_nullable(lfirst(lc), rti, nullable))
				return true;
		return false;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		return entry_nullable(j->larg, rti, nullable || j->jointype == JOIN_RIGHT ||
							  j->jointype == JOIN_FULL) ||
			entry_nullable(j->rarg, rti, nullable || j->jointype == JOIN_LEFT ||
						   j->jointype == JOIN_FULL);
	}
	return false;
}

/* other_entries_read: another FROM item (LATERAL) reads entry rti */
static bool
other_entries_read(Query *q, Index rti)
{
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (foreach_current_index(lc) + 1 == (int) rti || rte->rtekind == RTE_JOIN)
			continue;
		if (rte->rtekind == RTE_FUNCTION &&
			bms_is_member(rti, pull_varnos(NULL, (Node *) rte->functions)))
			return true;
		if (rte->rtekind == RTE_VALUES &&
			bms_is_member(rti, pull_varnos(NULL, (Node *) rte->values_lists)))
			return true;
		if (rte->rtekind == RTE_SUBQUERY && rangeTableEntry_used((Node *) rte->subquery, rti, 1))
			return true;
	}
	return false;
}
