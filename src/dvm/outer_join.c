/*-------------------------------------------------------------------------
 *
 * outer_join.c
 *	  Deltas of outer joins (LEFT / RIGHT / FULL): the NULL-padded rows as
 *	  anti-join terms whose preserved side is a derived leaf, and the
 *	  range-table helpers they build on (FROM items, column lists, join
 *	  conditions).  Called by the select-project-join rule of delta.c.
 *
 * IDENTIFICATION
 *	  src/dvm/outer_join.c
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

static Query *anti_term(Query *q, JoinExpr *j, bool left_preserved,
						DvmContext *ctx);
static char *join_condition_sql(Query *q, Index a, Index b, Node *cond);
static char *rte_from_item(Query *q, Index rti, int kind, DvmContext *ctx,
						   const char *alias);
static char *rte_columns(Query *q, Index rti, const char *alias);
static List *rte_canonical_names(Query *q, Index rti);
static char *null_row_sql(Query *q, Index rti);

/* ---------------------------------------------------------------- outer joins */

#define RTE_STATE_NEW	0
#define RTE_STATE_DELTA	1
#define RTE_STATE_OLD	2

/* pgt_dvm_find_outer_join returns the first LEFT/RIGHT/FULL join of a join tree */
JoinExpr *
pgt_dvm_find_outer_join(Node *node)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
		{
			JoinExpr   *j = pgt_dvm_find_outer_join(lfirst(lc));

			if (j != NULL)
				return j;
		}
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		JoinExpr   *inner;

		if (j->jointype != JOIN_INNER)
			return j;
		if ((inner = pgt_dvm_find_outer_join(j->larg)) != NULL)
			return inner;
		return pgt_dvm_find_outer_join(j->rarg);
	}
	return NULL;
}

/*
 * pgt_dvm_outer_join_delta differentiates q through its outer join j, using
 *
 *	  A LEFT JOIN B ON c  =  (A JOIN B ON c)  +  (A anti-join B on c) x NULL
 *
 * (RIGHT mirrored, FULL both ways): the delta of q is the delta of the
 * inner-join form plus the delta of each NULL-padded form, in which the
 * preserved side is replaced by a derived leaf holding its unmatched rows.
 */
char *
pgt_dvm_outer_join_delta(Query *q, JoinExpr *j, DvmContext *ctx)
{
	Query	   *inner = copyObject(q);
	JoinExpr   *ij = pgt_dvm_find_join((Node *) inner->jointree, j->rtindex);
	List	   *parts = NIL;
	char	   *d;
	StringInfoData buf;
	ListCell   *lc;

	ij->jointype = JOIN_INNER;
	rt_fetch(j->rtindex, inner->rtable)->jointype = JOIN_INNER;
	if ((d = pgt_dvm_spj_delta(inner, ctx)) != NULL)
		parts = lappend(parts, d);
	if (j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL)
	{
		if ((d = pgt_dvm_spj_delta(anti_term(q, j, true, ctx), ctx)) != NULL)
			parts = lappend(parts, d);
	}
	if (j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL)
	{
		if ((d = pgt_dvm_spj_delta(anti_term(q, j, false, ctx), ctx)) != NULL)
			parts = lappend(parts, d);
	}
	if (parts == NIL)
		return NULL;
	initStringInfo(&buf);
	foreach(lc, parts)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf, "SELECT * FROM (%s) AS __pgt_o%d", (char *) lfirst(lc),
						 foreach_current_index(lc));
	}
	return buf.data;
}

/*
 * anti_term returns q with outer join j replaced by its NULL-padded leg:
 * the nullable side becomes one all-NULL row, the preserved side a derived
 * leaf of its rows without a match, registered in ctx with its delta and
 * pre-state:
 *
 *	 X   = A  anti-join B
 *	 dX  = (dA anti-join B)
 *	     + { a in A' matching some row of dB : w(a) * ([no match in B] - [no match in B']) }
 *	 X'  = A' anti-join B'
 *
 * where A' = A - dA and B' = B - dB are the pre-window states (a match in
 * B' is counted as matches in B minus the net weight of matching dB rows).
 */
static Query *
anti_term(Query *q, JoinExpr *j, bool left_preserved, DvmContext *ctx)
{
	Query	   *t = copyObject(q);
	JoinExpr   *tj = pgt_dvm_find_join((Node *) t->jointree, j->rtindex);
	Index		a = ((RangeTblRef *) (left_preserved ? j->larg : j->rarg))->rtindex;
	Index		b = ((RangeTblRef *) (left_preserved ? j->rarg : j->larg))->rtindex;
	RangeTblEntry *arte = rt_fetch(a, q->rtable);
	RangeTblEntry *brte = rt_fetch(b, q->rtable);
	char	   *cond = join_condition_sql(q, a, b, j->quals);
	bool		a_changes = (arte->rtekind == RTE_RELATION) ?
		list_member_oid(ctx->changed, arte->relid) :
		(arte->rtekind == RTE_SUBQUERY && pgt_dvm_query_may_change(arte->subquery, ctx));
	bool		b_changes = (brte->rtekind == RTE_RELATION) ?
		list_member_oid(ctx->changed, brte->relid) :
		(brte->rtekind == RTE_SUBQUERY && pgt_dvm_query_may_change(brte->subquery, ctx));
	char	   *acols_new = rte_columns(q, a, "__pgt_oa");
	char	   *b_new = rte_from_item(q, b, RTE_STATE_NEW, ctx, "__pgt_ob");
	char	   *no_match_new;
	char	   *no_match_old;
	char	   *x_new;
	StringInfoData dx;
	DerivedLeaf *dl = palloc0(sizeof(DerivedLeaf));
	char	   *a_old;

	no_match_new = psprintf("NOT EXISTS (SELECT 1 FROM %s WHERE %s)", b_new, cond);
	if (b_changes)
		no_match_old = psprintf("((SELECT pg_catalog.count(*) FROM %s WHERE %s) - "
								"(SELECT COALESCE(pg_catalog.sum(__pgt_ob.__pgt_w), 0) FROM %s WHERE %s) <= 0)",
								b_new, cond,
								rte_from_item(q, b, RTE_STATE_DELTA, ctx, "__pgt_ob"), cond);
	else
		no_match_old = no_match_new;

	x_new = psprintf("SELECT %s FROM %s WHERE %s", acols_new,
					 rte_from_item(q, a, RTE_STATE_NEW, ctx, "__pgt_oa"), no_match_new);

	a_old = a_changes ? rte_from_item(q, a, RTE_STATE_OLD, ctx, "__pgt_oa") : NULL;
	initStringInfo(&dx);
	if (a_changes)
		appendStringInfo(&dx, "SELECT %s, __pgt_oa.__pgt_w FROM %s WHERE %s",
						 acols_new, rte_from_item(q, a, RTE_STATE_DELTA, ctx, "__pgt_oa"),
						 no_match_new);
	if (b_changes)
	{
		if (dx.len > 0)
			appendStringInfoString(&dx, " UNION ALL ");
		appendStringInfo(&dx,
						 "SELECT * FROM (SELECT %s, %s * ((CASE WHEN %s THEN 1 ELSE 0 END) - "
						 "(CASE WHEN %s THEN 1 ELSE 0 END))::pg_catalog.int8 AS __pgt_w "
						 "FROM %s WHERE EXISTS (SELECT 1 FROM %s WHERE %s)) AS __pgt_x "
						 "WHERE __pgt_x.__pgt_w <> 0",
						 acols_new,
						 a_changes ? "__pgt_oa.__pgt_w" : "1::pg_catalog.int8",
						 no_match_new, no_match_old,
						 a_changes ? a_old : rte_from_item(q, a, RTE_STATE_NEW, ctx, "__pgt_oa"),
						 rte_from_item(q, b, RTE_STATE_DELTA, ctx, "__pgt_ob"), cond);
	}

	dl->name = psprintf("__pgt_x%d", ++ctx->nderived);
	dl->delta_sql = dx.len > 0 ? dx.data : NULL;
	dl->old_sql = psprintf("SELECT %s, %s FROM %s WHERE %s", acols_new,
						   a_changes ? "__pgt_oa.__pgt_w" : "1::pg_catalog.int8",
						   a_changes ? a_old : rte_from_item(q, a, RTE_STATE_NEW, ctx, "__pgt_oa"),
						   no_match_old);
	ctx->derived = lappend(ctx->derived, dl);

	/* the leg: preserved side := X, nullable side := one NULL row, no condition */
	tj->jointype = JOIN_INNER;
	tj->quals = (Node *) makeBoolConst(true, false);
	tj->usingClause = NIL;
	tj->join_using_alias = NULL;
	rt_fetch(j->rtindex, t->rtable)->jointype = JOIN_INNER;
	{
		RangeTblEntry *xr = rt_fetch(a, t->rtable);
		RangeTblEntry *nr = rt_fetch(b, t->rtable);
		Query	   *xq = pgt_dvm_parse_sql(x_new);
		Query	   *nq = pgt_dvm_parse_sql(null_row_sql(q, b));
		List	   *xnames = NIL;
		List	   *nnames = NIL;
		ListCell   *lc;

		foreach(lc, rte_canonical_names(q, a))
			xnames = lappend(xnames, makeString(lfirst(lc)));
		foreach(lc, rte_canonical_names(q, b))
			nnames = lappend(nnames, makeString(lfirst(lc)));
		xr->rtekind = RTE_SUBQUERY;
		xr->subquery = xq;
		xr->relid = InvalidOid;
		xr->relkind = 0;
		xr->inh = false;
		pgt_compat_rte_clear_perms(xr);
		xr->alias = makeAlias(dl->name, copyObject(xnames));
		xr->eref = makeAlias(dl->name, xnames);
		nr->rtekind = RTE_SUBQUERY;
		nr->subquery = nq;
		nr->relid = InvalidOid;
		nr->relkind = 0;
		nr->inh = false;
		pgt_compat_rte_clear_perms(nr);
		nr->alias = makeAlias(psprintf("__pgt_n%d", ctx->nderived), copyObject(nnames));
		nr->eref = makeAlias(nr->alias->aliasname, nnames);
	}
	return t;
}

DerivedLeaf *
pgt_dvm_find_derived(DvmContext *ctx, RangeTblEntry *rte)
{
	ListCell   *lc;

	if (rte->rtekind != RTE_SUBQUERY || rte->alias == NULL)
		return NULL;
	foreach(lc, ctx->derived)
	{
		DerivedLeaf *dl = lfirst(lc);

		if (strcmp(dl->name, rte->alias->aliasname) == 0)
			return dl;
	}
	return NULL;
}

/*
 * join_condition_sql deparses cond, which references range table entries
 * a and b of q only, with a called __pgt_oa and b __pgt_ob and their
 * columns called by their canonical names.
 */
static char *
join_condition_sql(Query *q, Index a, Index b, Node *cond)
{
	Query	   *cq = makeNode(Query);
	RangeTblEntry *ra = copyObject(rt_fetch(a, q->rtable));
	RangeTblEntry *rb = copyObject(rt_fetch(b, q->rtable));
	Node	   *c;
	RangeTblRef *r1 = makeNode(RangeTblRef);
	RangeTblRef *r2 = makeNode(RangeTblRef);
	char	   *text;
	char	   *where;
	List	   *names;
	ListCell   *lc;

	if (cond == NULL)
		return pstrdup("true");

	cq->commandType = CMD_SELECT;
	cq->querySource = QSRC_ORIGINAL;
	cq->canSetTag = true;
	names = NIL;
	foreach(lc, rte_canonical_names(q, a))
		names = lappend(names, makeString(lfirst(lc)));
	ra->alias = makeAlias("__pgt_oa", ra->rtekind == RTE_RELATION ? NIL : names);
	ra->eref = makeAlias("__pgt_oa", names);
	names = NIL;
	foreach(lc, rte_canonical_names(q, b))
		names = lappend(names, makeString(lfirst(lc)));
	rb->alias = makeAlias("__pgt_ob", rb->rtekind == RTE_RELATION ? NIL : names);
	rb->eref = makeAlias("__pgt_ob", names);
	cq->rtable = list_make2(ra, rb);
	r1->rtindex = 1;
	r2->rtindex = 2;

	/* renumber: a -> 1, b -> 2 (through a free index to avoid collisions) */
	c = copyObject(cond);
	ChangeVarNodes(c, a, 100000, 0);
	ChangeVarNodes(c, b, 100001, 0);
	ChangeVarNodes(c, 100000, 1, 0);
	ChangeVarNodes(c, 100001, 2, 0);
	cq->jointree = makeFromExpr(list_make2(r1, r2), c);
	cq->targetList = list_make1(makeTargetEntry((Expr *) makeConst(INT4OID, -1, InvalidOid, 4,
																   Int32GetDatum(1), false, true),
												1, pstrdup("x"), false));
	text = pgt_dvm_deparse(cq);
	where = strstr(text, "\n  WHERE ");
	if (where == NULL)
		elog(ERROR, "could not deparse a join condition");
	return psprintf("(%s)", where + strlen("\n  WHERE "));
}

/*
 * rte_canonical_names returns one unique column name per column position
 * of range table entry rti of q: the attribute names of a table (dropped
 * columns as placeholders), else the entry's column names made unique.
 */
static List *
rte_canonical_names(Query *q, Index rti)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	List	   *result = NIL;
	ListCell   *lc;
	int			k = 0;

	if (rte->rtekind == RTE_RELATION)
	{
		List	   *colnames;

		(void) pgt_dvm_base_columns_sql(rte->relid, "x", &colnames);
		return colnames;
	}
	foreach(lc, rte->eref->colnames)
	{
		char	   *name = strVal(lfirst(lc));
		ListCell   *lc2;
		bool		dup = false;

		k++;
		foreach(lc2, result)
		{
			if (strcmp(lfirst(lc2), name) == 0)
				dup = true;
		}
		result = lappend(result, (name[0] == '\0' || dup) ?
						 psprintf("__pgt_c%d", k) : pstrdup(name));
	}
	return result;
}

/* rte_columns lists the columns of entry rti qualified by alias, in order */
static char *
rte_columns(Query *q, Index rti, const char *alias)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, rte_canonical_names(q, rti))
	{
		char	   *name = lfirst(lc);

		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		if (rte->rtekind == RTE_RELATION && strncmp(name, "__pgt_dropped_", 14) == 0)
			appendStringInfo(&buf, "NULL::pg_catalog.int4 AS %s", name);
		else
			appendStringInfo(&buf, "%s.%s", alias, quote_identifier(name));
	}
	return buf.data;
}

/*
 * rte_from_item returns a FROM item for entry rti of q in the given state
 * (current, delta or pre-window), aliased alias, its columns named by
 * their canonical names (and __pgt_w for delta and pre-window).
 */
static char *
rte_from_item(Query *q, Index rti, int kind, DvmContext *ctx, const char *alias)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	StringInfoData names;
	ListCell   *lc;

	initStringInfo(&names);
	foreach(lc, rte_canonical_names(q, rti))
		appendStringInfo(&names, "%s%s", names.len ? ", " : "",
						 quote_identifier(lfirst(lc)));

	if (kind == RTE_STATE_NEW)
	{
		if (rte->rtekind == RTE_RELATION)
			return psprintf("%s%s AS %s", rte->inh ? "" : "ONLY ",
							pgt_qualified_name(rte->relid), alias);
		if (rte->rtekind != RTE_SUBQUERY)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("this side of an outer join is not supported by the differential engine")));
		return psprintf("(%s) AS %s(%s)", pgt_dvm_deparse(rte->subquery), alias, names.data);
	}
	return psprintf("(%s) AS %s(%s, __pgt_w)",
					pgt_dvm_deparse(kind == RTE_STATE_DELTA ? pgt_dvm_leaf_delta_query(q, rti, ctx) :
							pgt_dvm_leaf_old_query(q, rti, ctx)),
					alias, names.data);
}

/* null_row_sql: one row of NULLs shaped like entry rti of q */
static char *
null_row_sql(Query *q, Index rti)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	StringInfoData buf;
	List	   *colnames;
	List	   *colvars;
	List	   *names = rte_canonical_names(q, rti);
	int			k = 0;
	ListCell   *lc;

	expandRTE(rte, rti, 0, -1, true, &colnames, &colvars);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	foreach(lc, colvars)
	{
		Node	   *v = lfirst(lc);
		Oid			typ = exprType(v);

		if (k > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "NULL::%s AS %s",
						 OidIsValid(typ) ? format_type_extended(typ, exprTypmod(v),
																FORMAT_TYPE_TYPEMOD_GIVEN |
																FORMAT_TYPE_FORCE_QUALIFY) :
						 "pg_catalog.int4",
						 quote_identifier(list_nth(names, k)));
		k++;
	}
	return buf.data;
}
