/*-------------------------------------------------------------------------
 *
 * sublink_scalar.c
 *	  Scalar subqueries and ANY / ALL comparisons turned into joins the
 *	  delta engine maintains (called by pgt_dvm_pull_up_sublinks in
 *	  sublink.c).
 *
 *	  A scalar subquery in WHERE, HAVING or the select list becomes a
 *	  derived table (cross joined when it is one row, LEFT JOINed on its
 *	  correlation equalities otherwise); its value over no rows is the
 *	  aggregate's value over the empty set (see empty_value).  An
 *	  "x op ANY / ALL (SELECT y ...)" is first rewritten into aggregate
 *	  scalar subqueries over the same rows (see any_all_mutator).
 *
 * IDENTIFICATION
 *	  src/dvm/sublink_scalar.c
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

static Node *make_min(Var *arg);
static Oid	find_agg(Oid nspid, const char *name, Oid type, Oid sortop);
static Oid	op_namespace(Oid opno);
static Node *empty_value(Node *expr);
static Node *aggs_to_empty(Node *node, bool *ok);
static bool null_on_empty(Node *expr);
static bool aggs_start_null(Node *node, void *context);
static bool aggs_start_not_null_walker(Node *node, void *context);
static Node *aggs_to_null(Node *node, void *context);
static bool false_when_null(Node *conjunct, Node *sl);
static Node *replace_node(Node *node, Node *target);
static Node *value_or_empty(Var *v, Index rti, Node *k1, Node *empty);
static Aggref *new_aggref(Oid fnoid, Oid type);

/*
 * empty_value returns the constant expr takes over no rows (count() is 0,
 * the other built-in aggregates NULL), or NULL when that is not known.
 */
static Node *
empty_value(Node *expr)
{
	bool		ok = true;
	Node	   *folded = eval_const_expressions(NULL, aggs_to_empty(copyObject(expr), &ok));

	if (!ok || !IsA(folded, Const))
		return NULL;
	return folded;
}

static Node *
aggs_to_empty(Node *node, bool *ok)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref))
	{
		Aggref	   *agg = (Aggref *) node;
		char	   *name = get_func_name(agg->aggfnoid);

		if (agg->aggfilter != NULL || get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE)
		{
			*ok = false;
			return node;
		}
		if (strcmp(name, "count") == 0 || strcmp(name, "regr_count") == 0)
			return (Node *) makeConst(INT8OID, -1, InvalidOid, 8, Int64GetDatum(0), false, true);
		return (Node *) makeNullConst(exprType(node), exprTypmod(node), exprCollation(node));
	}
	if (IsA(node, Query))
	{
		*ok = false;
		return node;
	}
	return expression_tree_mutator(node, aggs_to_empty, ok);
}

/* make_min returns min(arg) as an aggregate of the current query level */
static Node *
make_min(Var *arg)
{
	return pgt_dvm_make_agg("min", (Node *) arg);
}

/*
 * pgt_dvm_make_agg returns name(arg) (min or max) as an aggregate of the current
 * level, or NULL if arg's type has none.  The aggregate must order by the
 * type's default btree ordering (the one the rewrites compare with): the
 * one of pg_catalog, else the one beside the type's "<" (min(citext) lives
 * in citext's schema, which the locked search_path does not show).
 */
Node *
pgt_dvm_make_agg(const char *name, Node *arg)
{
	Oid			type = exprType(arg);
	TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
	Oid			sortop = strcmp(name, "max") == 0 ? tc->gt_opr : tc->lt_opr;
	Oid			fnoid;
	Aggref	   *agg;

	if (!OidIsValid(sortop))
		return NULL;
	fnoid = find_agg(PG_CATALOG_NAMESPACE, name, type, sortop);
	if (!OidIsValid(fnoid))
		fnoid = find_agg(op_namespace(sortop), name, type, sortop);
	if (!OidIsValid(fnoid))
		return NULL;
	agg = new_aggref(fnoid, type);
	agg->aggcollid = exprCollation(arg);
	agg->inputcollid = exprCollation(arg);
	agg->aggargtypes = list_make1_oid(type);
	agg->args = list_make1(makeTargetEntry((Expr *) arg, 1, NULL, false));
	return (Node *) agg;
}

/* op_namespace: the schema of operator opno */
static Oid
op_namespace(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Oid			result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	result = ((Form_pg_operator) GETSTRUCT(tup))->oprnamespace;
	ReleaseSysCache(tup);
	return result;
}

/*
 * find_agg: the aggregate nspid.name(type) returning type and ordering by
 * sortop, or InvalidOid.
 */
static Oid
find_agg(Oid nspid, const char *name, Oid type, Oid sortop)
{
	Oid			fnoid;
	HeapTuple	tup;
	bool		match;

	fnoid = LookupFuncName(list_make2(makeString(get_namespace_name(nspid)),
									  makeString(pstrdup(name))), 1, &type, true);
	if (!OidIsValid(fnoid) || get_func_rettype(fnoid) != type)
		return InvalidOid;
	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(fnoid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	match = ((Form_pg_aggregate) GETSTRUCT(tup))->aggsortop == sortop;
	ReleaseSysCache(tup);
	return match ? fnoid : InvalidOid;
}

/* new_aggref: an aggregate call of the current level, without arguments */
static Aggref *
new_aggref(Oid fnoid, Oid type)
{
	Aggref	   *agg = makeNode(Aggref);

	agg->aggfnoid = fnoid;
	agg->aggtype = type;
	agg->aggtranstype = InvalidOid;
	agg->aggkind = AGGKIND_NORMAL;
	agg->aggsplit = AGGSPLIT_SIMPLE;
	agg->aggno = -1;
	agg->aggtransno = -1;
	agg->location = -1;
	return agg;
}

/*
 * pgt_dvm_pull_scalars replaces the scalar subqueries of a WHERE conjunct by
 * columns of derived tables joined into q, adding the join conditions to
 * *extra:
 *
 *  - an uncorrelated subquery that aggregates without GROUP BY, HAVING or
 *    LIMIT returns exactly one row: a cross join with it is exact;
 *  - an aggregate subquery correlated by equalities, whose value over no
 *    rows is NULL (its aggregates start from a NULL state, like sum, avg,
 *    min, max, and nothing around them turns NULL into a value), in a
 *    conjunct that is not true when that value is NULL: an inner join with
 *    the subquery grouped by its correlation columns.  An outer row without
 *    a group would see NULL and be filtered out, exactly as the join drops
 *    it.
 */
Node *
pgt_dvm_pull_scalars(Query *q, Node *conjunct, List **extra)
{
	ScalarContext ctx = {q, conjunct, NIL, false, NIL};
	Node	   *result = pgt_dvm_scalar_mutator(conjunct, &ctx);

	*extra = ctx.conds;
	return result;
}

Node *
pgt_dvm_scalar_mutator(Node *node, ScalarContext *ctx)
{
	SubLink    *sl;
	Query	   *s;
	Query	   *d;
	RangeTblRef *rtr;
	TargetEntry *val = NULL;
	List	   *inner = NIL;
	List	   *outer = NIL;
	List	   *ops = NIL;
	List	   *rest = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;
	bool		one_row;
	Node	   *empty = NULL;

	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
		return node;			/* nested levels are handled on their own */
	if (!IsA(node, SubLink) || ((SubLink *) node)->subLinkType != EXPR_SUBLINK)
		return expression_tree_mutator(node, pgt_dvm_scalar_mutator, ctx);

	sl = (SubLink *) node;
	s = castNode(Query, sl->subselect);
	if (s->commandType != CMD_SELECT || s->setOperations != NULL || !s->hasAggs ||
		s->groupClause != NIL || s->groupingSets != NIL || s->havingQual != NULL ||
		s->hasWindowFuncs || s->hasTargetSRFs || s->limitCount != NULL ||
		s->limitOffset != NULL || s->cteList != NIL || s->hasDistinctOn ||
		s->distinctClause != NIL || s->jointree == NULL)
		return node;
	/* one output column */
	if (list_length(pgt_dvm_visible_tlist(s->targetList)) != 1)
		return node;
	val = linitial_node(TargetEntry, pgt_dvm_visible_tlist(s->targetList));

	one_row = !contain_vars_of_level((Node *) s, 1);
	if (ctx->in_having)
	{
		Var		   *probe = makeVar(1, 1, exprType((Node *) val->expr), -1,
									exprCollation((Node *) val->expr), 0);

		if (!one_row || make_min(probe) == NULL)
			return node;
	}
	if (!one_row)
	{
		/*
		 * Correlated, only by equalities: in a WHERE conjunct an inner join
		 * (see above); in the select list a LEFT JOIN, the value over no
		 * rows standing in where there is no group.
		 */
		if (ctx->in_having)
			return node;
		if (ctx->conjunct != NULL &&
			(!null_on_empty((Node *) val->expr) || !false_when_null(ctx->conjunct, node)))
			return node;
		if (ctx->conjunct == NULL && (empty = empty_value((Node *) val->expr)) == NULL)
			return node;
		if (!pgt_dvm_split_where(s, &rest, &inner, &outer, &ops, NULL, NULL, NULL))
			return node;
	}

	d = copyObject(s);
	d->sortClause = NIL;
	if (!one_row)
	{
		d->jointree->quals = (Node *) make_ands_explicit(copyObject(rest));
		d->targetList = NIL;
		foreach(lc, inner)
		{
			TargetEntry *tle = makeTargetEntry(copyObject(lfirst(lc)), resno,
											   psprintf("__pgt_k%d", resno), false);
			SortGroupClause *sgc = makeNode(SortGroupClause);
			Oid			type = exprType(lfirst(lc));
			bool		hashable;

			get_sort_group_operators(type, false, false, false, &sgc->sortop,
									 &sgc->eqop, NULL, &hashable);
			if (!OidIsValid(sgc->eqop) || (!OidIsValid(sgc->sortop) && !hashable))
				return node;
			sgc->hashable = hashable;
			sgc->tleSortGroupRef = resno;
			tle->ressortgroupref = resno;
			d->groupClause = lappend(d->groupClause, sgc);
			d->targetList = lappend(d->targetList, tle);
			resno++;
		}
		d->targetList = lappend(d->targetList,
								makeTargetEntry(copyObject(val->expr), resno,
												pstrdup("__pgt_v"), false));
	}
	else
	{
		d->targetList = list_make1(makeTargetEntry(copyObject(val->expr), 1,
												   pstrdup("__pgt_v"), false));
		resno = 1;
	}

	rtr = makeNode(RangeTblRef);

	/*
	 * LEFT JOIN: a derived table over the same rows and correlation
	 * already joined takes this value as one more column (ANY/ALL
	 * rewritten read several aggregates of one subquery).
	 */
	if (empty != NULL)
	{
		ListCell   *lc3;

		foreach(lc3, ctx->left_joins)
		{
			PulledSublink *p = lfirst(lc3);
			Query	   *a = copyObject(p->derived);
			Query	   *b = copyObject(d);
			List	   *conds = NIL;
			int			nk = list_length(inner);

			if (list_length(a->targetList) <= nk)
				continue;
			a->targetList = list_truncate(a->targetList, nk);
			b->targetList = list_truncate(b->targetList, nk);
			if (!equal(a, b))
				continue;
			foreach(lc, inner)
			{
				Node	   *i = lfirst(lc);
				Node	   *o = copyObject(list_nth(outer, foreach_current_index(lc)));
				Var		   *v = makeVar(p->rtindex, foreach_current_index(lc) + 1, exprType(i),
										exprTypmod(i), exprCollation(i), 0);

				IncrementVarSublevelsUp(o, -1, 1);
				conds = lappend(conds,
								make_opclause(list_nth_oid(ops, foreach_current_index(lc)), BOOLOID,
											  false, (Expr *) v, (Expr *) o, InvalidOid,
											  exprCollation(i)));
			}
			if (!equal(conds, p->conds))
				continue;
			{
				RangeTblEntry *prte = rt_fetch(p->rtindex, ctx->q->rtable);
				char	   *name = psprintf("__pgt_v%d", list_length(p->derived->targetList) + 1);
				AttrNumber	col = list_length(p->derived->targetList) + 1;
				Var		   *v = makeVar(p->rtindex, col, exprType((Node *) val->expr),
										exprTypmod((Node *) val->expr),
										exprCollation((Node *) val->expr), 0);

				p->derived->targetList = lappend(p->derived->targetList,
												 makeTargetEntry(copyObject(val->expr), col,
																 name, false));
				prte->eref->colnames = lappend(prte->eref->colnames, makeString(name));
				if (prte->alias != NULL)
					prte->alias->colnames = lappend(prte->alias->colnames,
													makeString(pstrdup(name)));
				return value_or_empty(v, p->rtindex, (Node *) linitial(inner), empty);
			}
		}
	}
	rtr->rtindex = pgt_dvm_add_derived(ctx->q, d);
	if (empty == NULL)
		ctx->q->jointree->fromlist = lappend(ctx->q->jointree->fromlist, rtr);
	foreach(lc, inner)
	{
		Node	   *i = lfirst(lc);
		Node	   *o = copyObject(list_nth(outer, foreach_current_index(lc)));
		Var		   *v = makeVar(rtr->rtindex, foreach_current_index(lc) + 1, exprType(i),
								exprTypmod(i), exprCollation(i), 0);

		IncrementVarSublevelsUp(o, -1, 1);
		ctx->conds = lappend(ctx->conds,
							 make_opclause(list_nth_oid(ops, foreach_current_index(lc)), BOOLOID,
										   false, (Expr *) v, (Expr *) o, InvalidOid,
										   exprCollation(i)));
	}
	{
		Var		   *v = makeVar(rtr->rtindex, resno, exprType((Node *) val->expr),
								exprTypmod((Node *) val->expr),
								exprCollation((Node *) val->expr), 0);
		PulledSublink *p;

		if (ctx->in_having)
			return make_min(v);
		if (empty == NULL)
			return (Node *) v;

		/* LEFT JOIN: the join conditions go with it, not into WHERE */
		p = palloc0(sizeof(PulledSublink));
		p->derived = d;
		p->conds = ctx->conds;
		p->rtindex = rtr->rtindex;
		ctx->conds = NIL;
		ctx->left_joins = lappend(ctx->left_joins, p);
		return value_or_empty(v, rtr->rtindex, (Node *) linitial(inner), empty);
	}
}

/*
 * value_or_empty: column v of the LEFT JOINed derived table rti, or, where
 * the outer row has no group (the first key k1 is NULL only then), the
 * value over no rows.
 */
static Node *
value_or_empty(Var *v, Index rti, Node *k1, Node *empty)
{
	NullTest   *nt;
	CaseWhen   *cw;
	CaseExpr   *ce;

	if (IsA(empty, Const) && ((Const *) empty)->constisnull)
		return (Node *) v;
	nt = makeNode(NullTest);
	nt->arg = (Expr *) makeVar(rti, 1, exprType(k1), exprTypmod(k1), exprCollation(k1), 0);
	nt->nulltesttype = IS_NULL;
	nt->argisrow = false;
	nt->location = -1;
	cw = makeNode(CaseWhen);
	cw->expr = (Expr *) nt;
	cw->result = (Expr *) empty;
	cw->location = -1;
	ce = makeNode(CaseExpr);
	ce->casetype = v->vartype;
	ce->casecollid = v->varcollid;
	ce->args = list_make1(cw);
	ce->defresult = (Expr *) v;
	ce->location = -1;
	return (Node *) ce;
}

/*
 * null_on_empty: expr, evaluated over no rows, is NULL: every aggregate in
 * it is (a built-in other than count, or one without an initial state)
 * and the expression around them is NULL when they are.
 */
static bool
null_on_empty(Node *expr)
{
	Node	   *folded;

	if (!aggs_start_null(expr, NULL))
		return false;
	folded = eval_const_expressions(NULL, aggs_to_null(copyObject(expr), NULL));
	return IsA(folded, Const) && ((Const *) folded)->constisnull;
}

static bool
aggs_start_null(Node *node, void *context)
{
	if (node == NULL)
		return true;
	if (IsA(node, Aggref))
	{
		Aggref	   *agg = (Aggref *) node;
		HeapTuple	tup;
		bool		isnull = false;
		char	   *name;

		if (agg->aggfilter != NULL)
			return false;
		/* built-in aggregates are NULL over no rows, except the counts */
		name = get_func_name(agg->aggfnoid);
		if (get_func_namespace(agg->aggfnoid) == PG_CATALOG_NAMESPACE)
			return strcmp(name, "count") != 0 && strcmp(name, "regr_count") != 0;
		/* others when they start from a NULL state */
		tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
		if (!HeapTupleIsValid(tup))
			return false;
		(void) SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval, &isnull);
		ReleaseSysCache(tup);
		return isnull;
	}
	if (IsA(node, Query))
		return false;
	return !expression_tree_walker(node, aggs_start_not_null_walker, context);
}

static bool
aggs_start_not_null_walker(Node *node, void *context)
{
	return !aggs_start_null(node, context);
}

static Node *
aggs_to_null(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref))
		return (Node *) makeNullConst(exprType(node), exprTypmod(node), exprCollation(node));
	return expression_tree_mutator(node, aggs_to_null, context);
}

/*
 * false_when_null: the conjunct is NULL or false when the subquery value
 * sl is NULL (it is then dropped from the result like a missing join row).
 */
static bool
false_when_null(Node *conjunct, Node *sl)
{
	Node	   *replaced = replace_node(copyObject(conjunct), sl);
	Node	   *folded = eval_const_expressions(NULL, replaced);

	return IsA(folded, Const) &&
		(((Const *) folded)->constisnull || !DatumGetBool(((Const *) folded)->constvalue));
}

/* replace_node replaces the node equal to target by a NULL constant */
static Node *
replace_node(Node *node, Node *target)
{
	if (node == NULL)
		return NULL;
	if (equal(node, target))
		return (Node *) makeNullConst(exprType(node), exprTypmod(node), exprCollation(node));
	if (IsA(node, Query))
		return node;
	return expression_tree_mutator(node, replace_node, target);
}

/* ---------------------------------------------- ANY / ALL over aggregates */

typedef struct ParamNodes
{
	List	   *nodes;			/* the node for $2, $3, ... */
} ParamNodes;

static Node *any_all_mutator(Node *node, void *context);
static Node *any_as_case(SubLink *sl);
static SubLink *scalar_of(Query *s, Node *agg, Node *extra_qual);
static Node *param_nodes_mutator(Node *node, ParamNodes *ctx);

/*
 * any_all_mutator replaces each "x op ANY (SELECT y ...)" and "x op ALL
 * (SELECT y ...)" (op an equality, inequality or ordering of y's type,
 * NOT IN included) by what SQL defines them to be, written with aggregate
 * scalar subqueries over the same rows (which the scalar rewrite then
 * joins):
 *
 *   CASE WHEN count(*) = 0 THEN false  WHEN x IS NULL THEN NULL
 *        WHEN <some non-NULL y satisfies x op y> THEN true
 *        WHEN count(*) > count(y) THEN NULL  ELSE false END
 *
 * where "some y satisfies" is x < max(y) (<=, and min for > and >=), a
 * count of y = x above 0 (=), or count(y) above that count (<>).  ALL is
 * NOT ANY of the negated operator.
 */
static Node *
any_all_mutator(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
		return node;
	if (IsA(node, SubLink) && (((SubLink *) node)->subLinkType == ANY_SUBLINK ||
							   ((SubLink *) node)->subLinkType == ALL_SUBLINK))
	{
		Node	   *r = any_as_case((SubLink *) node);

		return r != NULL ? r : node;
	}
	return expression_tree_mutator(node, any_all_mutator, context);
}

static Node *
any_as_case(SubLink *sl)
{
	Query	   *s = castNode(Query, sl->subselect);
	OpExpr	   *test = (OpExpr *) sl->testexpr;
	Param	   *p;
	Node	   *x;
	Node	   *y = NULL;
	Oid			type;
	Oid			opno;
	TypeCacheEntry *tc;
	Oid			le;
	Oid			ge;
	Oid			ne;
	Oid			ptypes[6];
	const char *cond;
	OpExpr	   *cmp = NULL;
	Node	   *ext;
	ParamNodes	pn;
	Query	   *parsed;
	Node	   *result;
	bool		all = (sl->subLinkType == ALL_SUBLINK);

	if (test == NULL || !IsA(test, OpExpr) || list_length(test->args) != 2)
		return NULL;
	p = (Param *) lsecond(test->args);
	x = linitial(test->args);
	if (!IsA(p, Param) || p->paramkind != PARAM_SUBLINK || p->paramid != 1 ||
		contain_vars_of_level(x, 1) || checkExprHasSubLink(x))
		return NULL;
	if (s->commandType != CMD_SELECT || s->setOperations != NULL || s->hasAggs ||
		s->groupClause != NIL || s->groupingSets != NIL || s->havingQual != NULL ||
		s->distinctClause != NIL || s->hasWindowFuncs || s->hasTargetSRFs ||
		s->limitCount != NULL || s->limitOffset != NULL || s->cteList != NIL ||
		s->jointree == NULL)
		return NULL;
	if (list_length(pgt_dvm_visible_tlist(s->targetList)) != 1)
		return NULL;
	y = (Node *) linitial_node(TargetEntry, pgt_dvm_visible_tlist(s->targetList))->expr;
	type = exprType(y);
	/* same type and collation (min/max and grouping use y's); no rows */
	if (exprType(x) != type || type_is_rowtype(type) ||
		(OidIsValid(test->inputcollid) && test->inputcollid != exprCollation(y)))
		return NULL;
	opno = all ? get_negator(test->opno) : test->opno;
	tc = lookup_type_cache(type, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR | TYPECACHE_GT_OPR |
						   TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(opno) || !OidIsValid(tc->eq_opr) || !OidIsValid(tc->btree_opf))
		return NULL;
	le = get_opfamily_member(tc->btree_opf, type, type, BTLessEqualStrategyNumber);
	ge = get_opfamily_member(tc->btree_opf, type, type, BTGreaterEqualStrategyNumber);
	ne = get_negator(tc->eq_opr);

	/* $2 count(*), $3 x, $4 count(y), $5 the extreme or the count of y = x */
	ptypes[0] = PG_SNAPSHOTOID;
	ptypes[1] = INT8OID;
	ptypes[2] = type;
	ptypes[3] = INT8OID;
	if (opno == tc->lt_opr || opno == le || opno == tc->gt_opr || opno == ge)
	{
		bool		up = (opno == tc->lt_opr || opno == le);

		ext = pgt_dvm_make_agg(up ? "max" : "min", copyObject(y));
		if (ext == NULL)
			return NULL;
		ext = (Node *) scalar_of(s, ext, NULL);
		ptypes[4] = type;
		/* $6: x op the extreme */
		cmp = (OpExpr *) make_opclause(opno, BOOLOID, false, (Expr *) copyObject(x),
									   (Expr *) copyObject(ext), InvalidOid, exprCollation(y));
		set_opfuncid(cmp);
		cond = "$6";
	}
	else if (opno == tc->eq_opr || opno == ne)
	{
		Node	   *xo = copyObject(x);
		OpExpr	   *eq;

		IncrementVarSublevelsUp(xo, 1, 0);
		eq = (OpExpr *) make_opclause(tc->eq_opr, BOOLOID, false, (Expr *) copyObject(y),
									  (Expr *) xo, InvalidOid, exprCollation(y));
		set_opfuncid(eq);
		ext = (Node *) scalar_of(s, pgt_dvm_count_of(NULL), (Node *) eq);
		ptypes[4] = INT8OID;
		cond = opno == tc->eq_opr ? "$5 > 0" : "$4 > $5";
	}
	else
		return NULL;

	ptypes[5] = BOOLOID;
	pn.nodes = list_make4(scalar_of(s, pgt_dvm_count_of(NULL), NULL), copyObject(x),
						  scalar_of(s, pgt_dvm_count_of(copyObject(y)), NULL), ext);
	pn.nodes = lappend(pn.nodes, cmp != NULL ? (Node *) cmp :
					   (Node *) makeBoolConst(true, false));
	parsed = pgt_dvm_parse_sql_params(psprintf("SELECT %sCASE WHEN $2 = 0 THEN false "
											   "WHEN $3 IS NULL THEN NULL "
											   "WHEN %s THEN true "
											   "WHEN $2 > $4 THEN NULL ELSE false END%s",
											   all ? "NOT (" : "", cond, all ? ")" : ""),
									  ptypes, 6);
	result = param_nodes_mutator((Node *) linitial_node(TargetEntry, parsed->targetList)->expr,
								 &pn);
	return result;
}

/* scalar_of: (SELECT agg FROM s's FROM WHERE s's WHERE [AND extra_qual]) */
static SubLink *
scalar_of(Query *s, Node *agg, Node *extra_qual)
{
	Query	   *c = copyObject(s);
	SubLink    *sl = makeNode(SubLink);

	c->targetList = list_make1(makeTargetEntry((Expr *) agg, 1, pstrdup("v"), false));
	c->hasAggs = true;
	c->sortClause = NIL;
	if (extra_qual != NULL)
		c->jointree->quals = c->jointree->quals == NULL ? extra_qual :
			(Node *) make_ands_explicit(list_make2(c->jointree->quals, extra_qual));
	sl->subLinkType = EXPR_SUBLINK;
	sl->subLinkId = 0;
	sl->subselect = (Node *) c;
	sl->location = -1;
	return sl;
}

/* pgt_dvm_count_of: count(*) (arg NULL) or count(arg), as an aggregate */
Node *
pgt_dvm_count_of(Node *arg)
{
	Aggref	   *agg = new_aggref(arg == NULL ? F_COUNT_ : F_COUNT_ANY, INT8OID);

	if (arg == NULL)
		agg->aggstar = true;
	else
	{
		agg->aggargtypes = list_make1_oid(exprType(arg));
		agg->args = list_make1(makeTargetEntry((Expr *) arg, 1, NULL, false));
		agg->inputcollid = exprCollation(arg);
	}
	return (Node *) agg;
}

/* param_nodes_mutator replaces $2, $3, ... by the nodes of ctx */
static Node *
param_nodes_mutator(Node *node, ParamNodes *ctx)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN &&
		((Param *) node)->paramid >= 2)
		return copyObject(list_nth(ctx->nodes, ((Param *) node)->paramid - 2));
	return expression_tree_mutator(node, param_nodes_mutator, ctx);
}

/*
 * pgt_dvm_pull_scalars_left_join: the scalar subqueries (after any_all_mutator) of a
 * WHERE conjunct c as LEFT JOINed derived tables (as in the select list),
 * the conjunct becoming a filter after the joins; NULL (q unchanged in
 * its join tree) when a subquery remains.
 */
Node *
pgt_dvm_pull_scalars_left_join(Query *q, Node *c, List **left_joins)
{
	ScalarContext sctx = {q, NULL, NIL, false, NIL};
	Node	   *r = any_all_mutator(copyObject(c), NULL);

	r = pgt_dvm_scalar_mutator(r, &sctx);
	if (checkExprHasSubLink(r))
		return NULL;
	/* one-row subqueries were cross joined; correlated ones are LEFT JOINs */
	*left_joins = sctx.left_joins;
	return r;
}
