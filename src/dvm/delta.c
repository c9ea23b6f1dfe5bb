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
 *	  The whole result is applied (apply.c) by one of these strategies:
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
 *	  This file holds the entry points and the delta rules; what the engine
 *	  supports (the blocker) is in blocker.c, the deltas of outer joins in
 *	  outer_join.c.
 *
 * IDENTIFICATION
 *	  src/dvm/delta.c
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


static bool may_change_walker(Node *node, DvmContext *ctx);
static char *agg_subquery_delta(Query *q, DvmContext *ctx);
static char *base_delta_sql(Oid relid, DvmContext *ctx, bool negate,
							List **colnames);
static void replace_rte(Query *q, Index rti, Query *sub, List *colnames);
static void finish_term(Query *t, List *wvars);
static bool count_relations(Node *node, int *count);
static char *apply_sql_ctx(Query *query, PgtAnalysis *analysis, const char *storage,
						   DvmContext *ctxp, PgtDeltaStrategy *strategy);

static List *visible_names(Query *q);

/*
 * pgt_dvm_apply_sql returns one SQL statement that applies to storage (a
 * quoted, qualified table name) the delta of query between the frontier,
 * passed as parameter $1 of type pg_snapshot, and the snapshot the
 * statement runs with.  (frontier is unused and kept for callers.)
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
	char	   *sql;

	memset(&ctx, 0, sizeof(ctx));
	(void) frontier;
	ctx.changed = changed;
	pgt_dvm_gen_begin(NULL, InvalidOid);
	PG_TRY();
	{
		sql = pgt_dvm_with_shared_parts(apply_sql_ctx(query, analysis, storage, &ctx, strategy));
	}
	PG_FINALLY();
	{
		pgt_dvm_gen_end();
	}
	PG_END_TRY();
	return sql;
}

/*
 * pgt_dvm_immediate_apply_sql is pgt_dvm_apply_sql for IMMEDIATE mode: the
 * only change is the statement that fired a trigger on table firing (source
 * itself, or a partition or child of it), whose transition tables are the
 * ephemeral relations __pgt_old (if has_old) and __pgt_new (if has_new).
 * The statement references no parameter.
 *
 * *keys_sql is set to a SELECT of the lock keys of the groups the change
 * touches when the stream table is a grouped aggregate over source alone
 * (its delta then needs no other row than those of its groups), else NULL.
 */
char *
pgt_dvm_immediate_apply_sql(Query *query, PgtAnalysis *analysis, const char *storage,
							Oid source, Oid firing, bool has_old, bool has_new,
							PgtDeltaStrategy *strategy, char **keys_sql)
{
	DvmContext	ctx;
	QueryEnvironment *env = create_queryEnv();
	char	   *sql;

	for (int i = 0; i < 2; i++)
	{
		EphemeralNamedRelation enr;

		if (!(i == 0 ? has_old : has_new))
			continue;
		enr = palloc0(sizeof(EphemeralNamedRelationData));
		enr->md.name = i == 0 ? "__pgt_old" : "__pgt_new";
		enr->md.reliddesc = firing;
		enr->md.enrtype = ENR_NAMED_TUPLESTORE;
		enr->md.enrtuples = 1;
		register_ENR(env, enr);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.changed = list_make1_oid(source);
	ctx.ivm_source = source;
	ctx.ivm_old = has_old;
	ctx.ivm_new = has_new;
	ctx.ivm_keys = keys_sql;
	*keys_sql = NULL;
	pgt_dvm_gen_begin(env, firing);
	PG_TRY();
	{
		sql = pgt_dvm_with_shared_parts(apply_sql_ctx(query, analysis, storage, &ctx, strategy));
		if (*keys_sql != NULL)
			*keys_sql = pgt_dvm_with_shared_parts(*keys_sql);
	}
	PG_FINALLY();
	{
		pgt_dvm_gen_end();
	}
	PG_END_TRY();
	return sql;
}

/*
 * in_nullable_side: range table entry rti lies under the nullable side of
 * an outer join of jointree node.
 */
bool
pgt_dvm_in_nullable_side(Node *node, Index rti)
{
	if (node == NULL || IsA(node, RangeTblRef))
		return false;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			if (pgt_dvm_in_nullable_side(lfirst(lc), rti))
				return true;
		return false;
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;
		List	   *left = NIL;
		List	   *right = NIL;

		pgt_dvm_collect_rtindexes(j->larg, &left);
		pgt_dvm_collect_rtindexes(j->rarg, &right);
		if ((j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL) &&
			list_member_int(right, (int) rti))
			return true;
		if ((j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL) &&
			list_member_int(left, (int) rti))
			return true;
		return pgt_dvm_in_nullable_side(j->larg, rti) || pgt_dvm_in_nullable_side(j->rarg, rti);
	}
	return true;				/* unknown: assume the worst */
}

/*
 * insert_monotone: q is built from base relations, VALUES and functions by
 * inner joins, filters and projections only, so a row is added to its
 * result only when a row is added to a source.
 */
bool
pgt_dvm_insert_monotone(Query *q)
{
	ListCell   *lc;

	if (q->setOperations != NULL || q->hasAggs || q->groupClause != NIL ||
		q->distinctClause != NIL || q->hasWindowFuncs || q->hasSubLinks ||
		q->limitCount != NULL || q->limitOffset != NULL || q->hasTargetSRFs ||
		q->groupingSets != NIL || q->havingQual != NULL || q->cteList != NIL)
		return false;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		switch (rte->rtekind)
		{
			case RTE_RELATION:
			case RTE_VALUES:
			case RTE_FUNCTION:
				break;
			case RTE_JOIN:
				if (rte->jointype != JOIN_INNER)
					return false;
				break;
			case RTE_SUBQUERY:
				if (!pgt_dvm_insert_monotone(rte->subquery))
					return false;
				break;
			default:
				return false;
		}
	}
	return true;
}

/*
 * count_relations counts the relation entries node reads, at every level
 * (call with count NULL: returns true when there is exactly one).
 */
static bool
count_relations(Node *node, int *count)
{
	int			n = 0;

	if (count == NULL)
	{
		(void) count_relations(node, &n);
		return n == 1;
	}
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		if (((RangeTblEntry *) node)->rtekind == RTE_RELATION)
			(*count)++;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, count_relations, count,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, count_relations, count);
}

static char *
apply_sql_ctx(Query *query, PgtAnalysis *analysis, const char *storage,
			  DvmContext *ctxp, PgtDeltaStrategy *strategy)
{
	DvmContext	ctx = *ctxp;
	Query	   *q = pgt_dvm_prepare_query(query);
	List	   *sources = NIL;
	const char *blocker = pgt_dvm_top_blocker(q, strategy, &sources);

	if (blocker != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("query cannot be maintained differentially"),
				 errdetail_internal("%s", blocker)));

	pgt_dvm_gen_reset_size();
	ctx.frontier = "$1";
	ctx.sources = sources;
	if (!pgt_dvm_query_may_change(q, &ctx))
		return NULL;

	if (analysis->agg_layout != NULL)
	{
		PgtAggLayout *layout = pgt_dvm_agg_layout(q);
		char	   *delta;
		Query	   *child;

		if (layout == NULL)
			elog(ERROR, "aggregate layout of a stream table query changed");
		child = pgt_dvm_agg_child(q, layout);

		delta = pgt_dvm_any_delta(child, &ctx);
		if (delta == NULL)
			return NULL;
		*strategy = PGT_DELTA_KEYED;
		if (ctx.ivm_keys != NULL && count_relations((Node *) child, NULL))
			*ctx.ivm_keys = pgt_dvm_agg_keys_sql(layout, analysis->columns, delta);
		return pgt_dvm_agg_apply_sql(layout, analysis->columns, storage, delta,
									 pgt_dvm_deparse(child));
	}

	switch (*strategy)
	{
		case PGT_DELTA_RECURSIVE:
			{
				char	   *abandon;
				char	   *delta = pgt_dvm_recursive_delta(q, analysis, storage, &ctx,
															&abandon);

				return delta == NULL ? NULL :
					pgt_dvm_multiset_apply_delta(delta, analysis, storage, abandon, true);
			}
		case PGT_DELTA_MULTISET:
			return pgt_dvm_multiset_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_KEYED:
			return pgt_dvm_keyed_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_SINGLETON:
			return pgt_dvm_singleton_apply_sql(q, analysis, storage);
		case PGT_DELTA_TOPK:
			return pgt_dvm_topk_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_SETOP:
			return pgt_dvm_setop_apply_sql(q, analysis, storage, &ctx);
		case PGT_DELTA_WINDOW:
			return pgt_dvm_window_apply_sql(q, analysis, storage, &ctx);
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * pgt_dvm_prepare returns query with views expanded and CTEs inlined.
 */
Query *
pgt_dvm_prepare(Query *query)
{
	return pgt_dvm_prepare_query(query);
}

/*
 * pgt_dvm_full_sql returns the SELECT computing every storage column of an
 * algebraic aggregate, hidden columns included, or NULL when the plain
 * query result is all storage needs.
 */
char *
pgt_dvm_full_sql(Query *query, PgtAnalysis *analysis, const char *storage)
{
	Query	   *q;

	if (analysis->agg_layout == NULL)
		return NULL;
	pgt_dvm_gen_reset_size();
	q = pgt_dvm_prepare_query(query);
	return pgt_dvm_agg_full_sql(analysis->agg_layout, analysis->columns, storage,
								pgt_dvm_deparse(pgt_dvm_agg_child(q, pgt_dvm_agg_layout(q))));
}

bool
pgt_dvm_query_may_change(Query *q, DvmContext *ctx)
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
char *
pgt_dvm_any_delta(Query *q, DvmContext *ctx)
{
	if (q->setOperations != NULL)
		return pgt_dvm_share_part(pgt_dvm_setop_delta(q, ctx));
	if (q->hasAggs || q->groupClause != NIL || q->distinctClause != NIL ||
		q->havingQual != NULL || q->hasWindowFuncs)
		return pgt_dvm_share_part(agg_subquery_delta(q, ctx));
	return pgt_dvm_share_part(pgt_dvm_spj_delta(q, ctx));
}

/*
 * agg_subquery_delta differentiates an aggregate (or DISTINCT) query used
 * as an input of a larger query, where no storage holds its old result:
 *
 *	 d(G) = G(C restricted to K)  -  G(C' restricted to K)
 *
 * with C the FROM/WHERE part (wrapped into one subquery), K the group keys
 * touched by dC, C' = C - dC consolidated into plain rows.  Both sides read
 * only the touched groups, and any aggregate, HAVING or DISTINCT is
 * computed by the server itself.
 */
static char *
agg_subquery_delta(Query *q, DvmContext *ctx)
{
	Query	   *g = copyObject(q);
	Node	   *rtr;
	Index		ci;
	RangeTblEntry *crte;
	Query	   *child;
	Query	   *rchild;
	char	   *dchild;
	char	   *dr;
	List	   *keyexprs = NIL;
	ListCell   *lc;
	StringInfoData cols;
	StringInfoData grp;
	StringInfoData rsel;
	StringInfoData dsel;
	StringInfoData msel;
	StringInfoData ucols;
	Query	   *newq;
	Query	   *oldq;
	char	   *old_rows;
	int			k;

	/* one input: the whole FROM/WHERE */
	rtr = pgt_dvm_wrap_jointree_node(g, (Node *) g->jointree);
	g->jointree = makeFromExpr(list_make1(rtr), NULL);
	ci = ((RangeTblRef *) rtr)->rtindex;
	crte = rt_fetch(ci, g->rtable);
	child = crte->subquery;

	if (!pgt_dvm_query_may_change(child, ctx))
		return NULL;
	dchild = pgt_dvm_any_delta(child, ctx);
	if (dchild == NULL)
		return NULL;

	/* group keys, as expressions over the child's columns */
	if (g->groupClause != NIL)
	{
		foreach(lc, g->groupClause)
			keyexprs = lappend(keyexprs,
							   get_sortgroupclause_expr(lfirst(lc), g->targetList));
	}
	else if (g->hasDistinctOn)
	{
		/* DISTINCT ON: its keys; the recompute keeps the ORDER BY choosing the row */
		foreach(lc, g->distinctClause)
			keyexprs = lappend(keyexprs,
							   get_sortgroupclause_expr(lfirst(lc), g->targetList));
	}
	else if (g->distinctClause != NIL)
	{
		foreach(lc, g->targetList)
			if (!((TargetEntry *) lfirst(lc))->resjunk)
				keyexprs = lappend(keyexprs, ((TargetEntry *) lfirst(lc))->expr);
	}
	else if (g->hasWindowFuncs)
	{
		/*
		 * Windows: the partition expressions every window shares (none:
		 * the whole input is one partition, recomputed before and after).
		 */
		foreach(lc, g->windowClause)
		{
			WindowClause *wc = lfirst(lc);
			List	   *these = NIL;
			ListCell   *lc2;

			foreach(lc2, wc->partitionClause)
				these = list_append_unique(these,
										   get_sortgroupclause_expr(lfirst(lc2), g->targetList));
			keyexprs = foreach_current_index(lc) == 0 ? these :
				list_intersection(keyexprs, these);
		}
	}

	rchild = copyObject(child);
	if (keyexprs != NIL)
	{
		Query	   *kq = copyObject(g);
		Query	   *kparsed;
		RangeTblEntry *krte = makeNode(RangeTblEntry);
		RangeTblRef *krtr = makeNode(RangeTblRef);
		Index		krti;
		List	   *quals = NIL;
		List	   *knames = NIL;

		/* K: the keys of the delta rows */
		replace_rte(kq, ci, pgt_dvm_parse_sql(dchild), NIL);
		kq->targetList = NIL;
		k = 0;
		foreach(lc, keyexprs)
		{
			k++;
			kq->targetList = lappend(kq->targetList,
									 makeTargetEntry(copyObject(lfirst(lc)), k,
													 psprintf("__pgt_k%d", k), false));
			knames = lappend(knames, makeString(psprintf("__pgt_k%d", k)));
		}
		kq->groupClause = NIL;
		kq->hasAggs = false;
		kq->havingQual = NULL;
		kq->distinctClause = NIL;
		kq->sortClause = NIL;
		kq->limitCount = NULL;
		kq->limitOffset = NULL;
		kparsed = pgt_dvm_parse_sql(psprintf("SELECT DISTINCT * FROM (%s) AS __pgt_kk", pgt_dvm_deparse(kq)));

		/* the child restricted to K: key expressions pushed into it */
		krte->rtekind = RTE_SUBQUERY;
		krte->subquery = kparsed;
		krte->alias = makeAlias("__pgt_keys", copyObject(knames));
		krte->eref = makeAlias("__pgt_keys", knames);
		krte->inFromCl = true;
		rchild->rtable = lappend(rchild->rtable, krte);
		krti = list_length(rchild->rtable);
		krtr->rtindex = krti;
		rchild->jointree->fromlist = lappend(rchild->jointree->fromlist, krtr);
		k = 0;
		foreach(lc, keyexprs)
		{
			Node	   *e = ReplaceVarsFromTargetList(copyObject(lfirst(lc)), ci, 0, crte,
													  child->targetList,
													  REPLACEVARS_REPORT_ERROR, 0, NULL);
			Oid			typ = exprType(e);
			Var		   *kv = makeVar(krti, ++k, typ, exprTypmod(e), exprCollation(e), 0);
			Oid			eqop = pgt_type_eq_opr(typ);

			if (!OidIsValid(eqop))
				elog(ERROR, "no equality operator for group key type %s",
					 format_type_be(typ));
			/* "=" where no NULL can occur: indexes and hash joins apply */
			quals = lappend(quals,
							pgt_make_equal((Expr *) e, (Expr *) kv, eqop, exprCollation(e),
										   !pgt_dvm_expr_is_not_null(rchild, e)));
		}
		if (rchild->jointree->quals != NULL)
			quals = lcons(rchild->jointree->quals, quals);
		rchild->jointree->quals = (Node *) make_ands_explicit(quals);
	}

	/* G over the restricted new state */
	newq = copyObject(g);
	rt_fetch(ci, newq->rtable)->subquery = rchild;

	/* G over the restricted old state: C' consolidated and expanded */
	dr = pgt_dvm_any_delta(rchild, ctx);
	/*
	 * Columns of the child that G does not read are NULL in both parts: a
	 * delta row carries NULL for source columns nobody reads, so the
	 * current rows' values there would keep them from cancelling out.
	 */
	{
		Bitmapset  *used = NULL;
		bool		all;

		pull_varattnos((Node *) g->targetList, ci, &used);
		pull_varattnos(g->havingQual, ci, &used);
		all = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, used);
		initStringInfo(&cols);
		initStringInfo(&grp);
		initStringInfo(&rsel);
		initStringInfo(&dsel);
		initStringInfo(&msel);
		initStringInfo(&ucols);
		k = 0;
		foreach(lc, child->targetList)
		{
			TargetEntry *tle = lfirst(lc);
			Oid			type = exprType((Node *) tle->expr);
			TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
			bool		is_used = all ||
				bms_is_member(k + 1 - FirstLowInvalidHeapAttributeNumber, used);

			k++;
			appendStringInfo(&cols, "%s__pgt_c%d", k > 1 ? ", " : "", k);
			if (!is_used)
			{
				appendStringInfo(&msel, "%sNULL::%s AS __pgt_c%d", k > 1 ? ", " : "",
								 format_type_extended(type, exprTypmod((Node *) tle->expr),
													  FORMAT_TYPE_TYPEMOD_GIVEN |
													  FORMAT_TYPE_FORCE_QUALIFY), k);
				continue;
			}
			appendStringInfo(&msel, "%su.__pgt_c%d", k > 1 ? ", " : "", k);
			appendStringInfo(&rsel, "r.__pgt_c%d, ", k);
			appendStringInfo(&dsel, "d.__pgt_c%d, ", k);
			appendStringInfo(&ucols, "__pgt_c%d, ", k);
			if (OidIsValid(tc->eq_opr))
				appendStringInfo(&grp, "%su.__pgt_c%d", grp.len > 0 ? ", " : "", k);
			else
				appendStringInfo(&grp, "%su.__pgt_c%d::pg_catalog.text", grp.len > 0 ? ", " : "", k);
		}
	}
	old_rows = psprintf("SELECT %s FROM (SELECT %s, pg_catalog.sum(u.__pgt_w) AS __pgt_m "
						"FROM (SELECT %s1::pg_catalog.int8 FROM (%s) AS r(%s)%s) AS u(%s__pgt_w) "
						"%s%s HAVING pg_catalog.sum(u.__pgt_w) > 0) AS x "
						"CROSS JOIN LATERAL pg_catalog.generate_series(1::pg_catalog.int8, x.__pgt_m)",
						cols.data, msel.data, rsel.data, pgt_dvm_deparse(rchild), cols.data,
						dr ? psprintf(" UNION ALL SELECT %s-d.__pgt_w0 FROM (%s) AS d(%s, __pgt_w0)",
									  dsel.data, dr, cols.data) : "",
						ucols.data, grp.len > 0 ? "GROUP BY " : "", grp.data);
	oldq = copyObject(g);
	{
		RangeTblEntry *orte = rt_fetch(ci, oldq->rtable);
		List	   *names = NIL;

		for (int i = 1; i <= k; i++)
			names = lappend(names, makeString(psprintf("__pgt_c%d", i)));
		orte->subquery = pgt_dvm_parse_sql(old_rows);
		orte->alias = makeAlias(orte->eref->aliasname, copyObject(names));
		orte->eref = makeAlias(orte->eref->aliasname, names);
	}
	/* newq's child keeps the original column names */
	return psprintf("SELECT n.*, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS n "
					"UNION ALL SELECT o.*, -1::pg_catalog.int8 FROM (%s) AS o",
					pgt_dvm_deparse(newq), pgt_dvm_deparse(oldq));
}

/* delta of a UNION [ALL] tree: the sum of the deltas of its branches */
char *
pgt_dvm_setop_delta(Query *q, DvmContext *ctx)
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
		d = pgt_dvm_any_delta(rte->subquery, ctx);
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
char *
pgt_dvm_spj_delta(Query *q, DvmContext *ctx)
{
	List	   *leaves = NIL;
	ListCell   *lc;
	StringInfoData buf;
	Index		rti = 0;
	List	   *injoin = NIL;
	JoinExpr   *outer = pgt_dvm_find_outer_join((Node *) q->jointree);

	if (outer != NULL)
		return pgt_dvm_outer_join_delta(q, outer, ctx);

	pgt_dvm_collect_rtindexes((Node *) q->jointree, &injoin);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (!list_member_int(injoin, (int) rti))
			continue;
		if ((rte->rtekind == RTE_RELATION &&
			 list_member_oid(ctx->changed, rte->relid)) ||
			(rte->rtekind == RTE_SUBQUERY && pgt_dvm_query_may_change(rte->subquery, ctx)))
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

			sub = (j == i) ? pgt_dvm_leaf_delta_query(q, leaf, ctx) :
				pgt_dvm_leaf_old_query(q, leaf, ctx);
			replace_rte(t, leaf, sub, NIL);
			wvars = lappend(wvars,
							makeVar(leaf, list_length(sub->targetList),
									INT8OID, -1, InvalidOid, 0));
		}
		finish_term(t, wvars);
		if (buf.len > 0)
			appendStringInfoString(&buf, " UNION ALL ");
		appendStringInfo(&buf, "%s", pgt_dvm_deparse(t));
	}
	return buf.data;
}

/* the delta of leaf rti of q, as a query: columns of the leaf, then w */
Query *
pgt_dvm_leaf_delta_query(Query *q, Index rti, DvmContext *ctx)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	List	   *colnames;
	DerivedLeaf *dl = pgt_dvm_find_derived(ctx, rte);

	if (dl != NULL)
		return pgt_dvm_parse_sql(dl->delta_sql);
	if (rte->rtekind == RTE_RELATION)
		return pgt_dvm_parse_sql(base_delta_sql(rte->relid, ctx, false, &colnames));
	{
		char	   *d = pgt_dvm_any_delta(rte->subquery, ctx);
		StringInfoData empty;
		ListCell   *lc;

		if (d != NULL)
			return pgt_dvm_parse_sql(d);

		/*
		 * It reads a changed table only outside its join tree (a range
		 * table entry a rewrite left unused): no rows changed.
		 */
		initStringInfo(&empty);
		appendStringInfoString(&empty, "SELECT ");
		foreach(lc, rte->subquery->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (tle->resjunk)
				continue;
			appendStringInfo(&empty, "NULL::%s, ",
							 format_type_extended(exprType((Node *) tle->expr),
												  exprTypmod((Node *) tle->expr),
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY));
		}
		appendStringInfoString(&empty, "0::pg_catalog.int8 AS __pgt_w WHERE false");
		return pgt_dvm_parse_sql(empty.data);
	}
}

/* the pre-window state of leaf rti of q, weighted: columns, then w */
Query *
pgt_dvm_leaf_old_query(Query *q, Index rti, DvmContext *ctx)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	DerivedLeaf *dl = pgt_dvm_find_derived(ctx, rte);

	if (dl != NULL)
		return pgt_dvm_parse_sql(dl->old_sql);
	if (rte->rtekind == RTE_RELATION)
	{
		List	   *colnames;
		char	   *cols = pgt_dvm_base_columns_sql(rte->relid, "r", &colnames);

		return pgt_dvm_parse_sql(psprintf("SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM %s%s AS r "
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
		char	   *d;

		initStringInfo(&aliases);
		initStringInfo(&cols);
		for (int i = 0; i < list_length(names); i++)
		{
			n++;
			appendStringInfo(&aliases, "%s__pgt_c%d", n > 1 ? ", " : "", n);
			appendStringInfo(&cols, "%sd.__pgt_c%d", n > 1 ? ", " : "", n);
		}
		d = pgt_dvm_any_delta(sub, ctx);
		if (d == NULL)			/* see pgt_dvm_leaf_delta_query */
			return pgt_dvm_parse_sql(psprintf("SELECT s.*, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS s(%s)",
											  pgt_dvm_deparse(sub), aliases.data));
		return pgt_dvm_parse_sql(psprintf("SELECT s.*, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS s(%s) "
								  "UNION ALL SELECT %s, -d.__pgt_w FROM (%s) AS d(%s, __pgt_w)",
								  pgt_dvm_deparse(sub), aliases.data, cols.data,
								  d, aliases.data));
	}
}

/*
 * pgt_dvm_base_columns_sql lists every attribute position of relid (dropped ones
 * as NULL placeholders), qualified by alias, so that a subquery made from
 * it lines up with Vars of the relation.
 */
char *
pgt_dvm_base_columns_sql(Oid relid, const char *alias, List **colnames)
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
	Bitmapset  *used = NULL;
	StringInfoData buf;
	StringInfoData defs;
	StringInfoData cols;
	StringInfoData grp;
	StringInfoData names;
	char	   *from;
	const char *alias;
	bool		consolidate = true;
	TypeCacheEntry *tc;
	ListCell   *lc;

	/* ask only for the columns this query reads: the reader may see no more */
	foreach(lc, ctx->sources)
	{
		PgtDeltaSource *src = lfirst(lc);

		if (src->relid == relid)
			used = src->attnums;
	}
	/* IMMEDIATE: transition tables hold every column */
	if (relid == ctx->ivm_source)
		captured = used;
	else
		captured = bms_intersect(captured, used);

	initStringInfo(&buf);
	initStringInfo(&defs);
	initStringInfo(&cols);
	initStringInfo(&grp);
	initStringInfo(&names);
	appendStringInfoString(&buf, "SELECT ");
	*colnames = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *typ;
		int32		basetypmod;
		Oid			basetype;
		char	   *btyp;

		if (i > 0)
			appendStringInfoString(&buf, ", ");

		/*
		 * A dropped column keeps its position (Vars of the relation count
		 * it) but has no type any more (atttypid is 0): a placeholder.
		 */
		if (att->attisdropped)
		{
			appendStringInfo(&buf, "NULL::pg_catalog.int4 AS __pgt_dropped_%d", i + 1);
			continue;
		}

		typ = format_type_extended(att->atttypid, att->atttypmod,
								   FORMAT_TYPE_TYPEMOD_GIVEN |
								   FORMAT_TYPE_FORCE_QUALIFY);
		basetypmod = att->atttypmod;
		basetype = getBaseTypeAndTypmod(att->atttypid, &basetypmod);
		btyp = format_type_extended(basetype, basetypmod,
									FORMAT_TYPE_TYPEMOD_GIVEN |
									FORMAT_TYPE_FORCE_QUALIFY);

		/* the column's own collation, or grouping and ordering would change */
		if (OidIsValid(att->attcollation))
		{
			typ = psprintf("%s COLLATE %s", typ,
						   generate_collation_name(att->attcollation));
			btyp = psprintf("%s COLLATE %s", btyp,
							generate_collation_name(att->attcollation));
		}

		if (bms_is_member(i + 1, captured))
		{
			/* buffers hold a domain's base type: back to the domain */
			if (basetype != att->atttypid)
				appendStringInfo(&buf, "c.%s::%s AS %s", quote_identifier(NameStr(att->attname)),
								 format_type_extended(att->atttypid, att->atttypmod,
													  FORMAT_TYPE_TYPEMOD_GIVEN |
													  FORMAT_TYPE_FORCE_QUALIFY),
								 quote_identifier(NameStr(att->attname)));
			else
				appendStringInfo(&buf, "c.%s", quote_identifier(NameStr(att->attname)));
			appendStringInfo(&defs, ", %s %s", quote_identifier(NameStr(att->attname)), btyp);
			appendStringInfo(&names, ", %s", quote_identifier(NameStr(att->attname)));
			appendStringInfo(&cols, "c0.%s, ", quote_identifier(NameStr(att->attname)));
			appendStringInfo(&grp, "%sc0.%s", grp.len > 0 ? ", " : "",
							 quote_identifier(NameStr(att->attname)));
			tc = lookup_type_cache(basetype, TYPECACHE_EQ_OPR | TYPECACHE_LT_OPR |
								   TYPECACHE_HASH_PROC);
			if (!OidIsValid(tc->eq_opr) ||
				(!OidIsValid(tc->lt_opr) && !OidIsValid(tc->hash_proc)))
				consolidate = false;
			else if (!pgt_storage_equal_is_identity(basetype, att->attcollation))
				appendStringInfo(&grp, ", (c0.%s)::pg_catalog.text COLLATE pg_catalog.\"C\"",
								 quote_identifier(NameStr(att->attname)));
		}
		else
			appendStringInfo(&buf, "NULL::%s AS %s", typ,
							 quote_identifier(NameStr(att->attname)));
	}

	/*
	 * Buffers are read through pgtrickle._changes(), which checks the
	 * reader's privileges on the source's columns.  In IMMEDIATE mode the
	 * changes are the statement's transition tables instead.
	 */
	alias = consolidate ? "c0" : "c";
	if (relid == ctx->ivm_source)
	{
		const char *cnames = names.len > 0 ? names.data + 2 : NULL;
		StringInfoData u;

		initStringInfo(&u);
		if (ctx->ivm_new)
			appendStringInfo(&u, "SELECT 1::pg_catalog.int4%s%s FROM __pgt_new",
							 cnames ? ", " : "", cnames ? cnames : "");
		if (ctx->ivm_old)
			appendStringInfo(&u, "%sSELECT -1::pg_catalog.int4%s%s FROM __pgt_old",
							 u.len > 0 ? " UNION ALL " : "",
							 cnames ? ", " : "", cnames ? cnames : "");
		from = psprintf("(%s) AS %s(" PGT_BUFFER_W_COLUMN "%s)", u.data, alias, names.data);
	}
	else
		from = psprintf("pgtrickle._changes(%u, %s::pg_catalog.pg_snapshot) AS %s("
						PGT_BUFFER_W_COLUMN " pg_catalog.int4%s)",
						relid, ctx->frontier, alias, defs.data);

	if (!consolidate)
		appendStringInfo(&buf,
						 ", %sc." PGT_BUFFER_W_COLUMN "::pg_catalog.int8 AS __pgt_w FROM ",
						 negate ? "-" : "");
	else
	{
		/*
		 * Row versions that cancel out within the window (inserted, then
		 * updated or deleted) are dropped before the query's expressions
		 * see them: 100 / x must not fail on an x = 0 that never
		 * committed as the row's last state.  Values that are equal but
		 * look different (1.0 and 1.00) stay apart.
		 */
		appendStringInfo(&buf,
						 ", %sc." PGT_BUFFER_W_COLUMN "::pg_catalog.int8 AS __pgt_w "
						 "FROM (SELECT %spg_catalog.sum(c0." PGT_BUFFER_W_COLUMN ") AS "
						 PGT_BUFFER_W_COLUMN " FROM ",
						 negate ? "-" : "", cols.data);
	}
	appendStringInfoString(&buf, from);
	if (consolidate)
		appendStringInfo(&buf, "%s%s HAVING pg_catalog.sum(c0." PGT_BUFFER_W_COLUMN ") <> 0) AS c",
						 grp.len > 0 ? " GROUP BY " : "", grp.data);
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
	/* explicit column aliases: the deparser prints them only if given */
	rte->alias = makeAlias(aliasname, copyObject(names));
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
	AttrNumber	resno;

	tlist = pgt_dvm_visible_tlist(t->targetList);
	resno = list_length(tlist) + 1;
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
 * pgt_dvm_visible_tlist returns copies of the visible entries of tlist,
 * numbered from 1, no longer sort or group keys.
 */
List *
pgt_dvm_visible_tlist(List *tlist)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		tle = flatCopyTargetEntry(tle);
		tle->resno = list_length(result) + 1;
		tle->ressortgroupref = 0;
		result = lappend(result, tle);
	}
	return result;
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

