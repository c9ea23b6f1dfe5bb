/*-------------------------------------------------------------------------
 *
 * recompute.c
 *	  Apply strategies that recompute part of the query itself: the
 *	  touched rows of INTERSECT/EXCEPT, the touched partitions of window
 *	  functions and the touched keys of DISTINCT ON, and TopK (ORDER BY ... LIMIT n) from the stored rows and
 *	  the changed ones.  The deltas they start from come from delta.c.
 *
 * IDENTIFICATION
 *	  src/dvm/recompute.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/tlist.h"
#include "parser/parse_clause.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

#include "dvm_internal.h"

static char *replace_touched_sql(PgtAnalysis *analysis, const char *storage,
								 const char *keys, const char *delta,
								 const char *recompute, const char *match);
static void append_key_match(StringInfo match, const char *qn, Oid typid);
static List *window_partition_tles(Query *q);
static List *distinct_on_tles(Query *q);
static bool topk_limit(Query *q, int64 *n);
static int64 topk_offset(Query *q);
static void append_replace_new(StringInfo sql, PgtAnalysis *analysis, const char *storage);
static char *topk_offset_sql(StringInfo sql, Query *q, PgtAnalysis *analysis,
							 const char *storage, int64 n, bool keyed);
static char *order_by_sql(Query *q, PgtAnalysis *analysis);

/*
 * replace_touched_sql: the touched keys (columns keys) are those of the
 * rows of delta; recompute gives the new rows of the touched keys, and
 * match (over "s" and "k") finds their stored rows, which are replaced:
 * only the difference is deleted and inserted.
 */
static char *
replace_touched_sql(PgtAnalysis *analysis, const char *storage, const char *keys,
					const char *delta, const char *recompute, const char *match)
{
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);
	StringInfoData sql;
	StringInfoData sel;
	StringInfoData grp;

	pgt_dvm_consolidation_lists(analysis->columns, &sel, &grp);
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __pgt_k AS (SELECT DISTINCT %s FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
					 "__pgt_c AS (SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8 AS __pgt_w, "
					 "pg_catalog.row_number() OVER () AS __pgt_cid "
					 "FROM (SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS r(%s) "
					 "UNION ALL SELECT %s, -1::pg_catalog.int8 FROM %s s WHERE EXISTS "
					 "(SELECT 1 FROM __pgt_k k WHERE %s)) d "
					 "GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0), ",
					 keys, delta, keys, sel.data,
					 pgt_dvm_col_list(analysis->columns, "r.", false), recompute, cols,
					 pgt_dvm_col_list(analysis->columns, "s.", false), storage, match,
					 grp.data);
	pgt_dvm_append_apply_consolidated(&sql, analysis, storage,
							  "(SELECT pg_catalog.count(*) FROM __pgt_k)", NULL, false);
	return sql.data;
}

/*
 * setop_apply_sql maintains INTERSECT [ALL] and EXCEPT [ALL] (and UNION
 * mixed with them) over plain SELECT ... FROM ... WHERE branches: the rows
 * in the delta of any branch are the touched rows; the query, each branch
 * restricted to the touched rows, gives their new copies; the stored
 * copies of the touched rows are replaced by those, deleting and
 * inserting only the difference.  Cost: the branches' deltas, plus each
 * branch read for the touched rows.
 */
char *
pgt_dvm_setop_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage, DvmContext *ctx)
{
	Query	   *restricted = copyObject(q);
	char	   *delta = pgt_dvm_setop_delta(q, ctx);
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);
	List	   *names = NIL;
	StringInfoData match;
	ListCell   *lc;

	if (delta == NULL)
		return NULL;
	foreach(lc, analysis->columns)
		names = lappend(names, ((PgtColumn *) lfirst(lc))->name);
	foreach(lc, restricted->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		List	   *exprs = NIL;
		ListCell   *lc2;

		if (rte->rtekind != RTE_SUBQUERY)
			continue;
		foreach(lc2, rte->subquery->targetList)
		{
			TargetEntry *tle = lfirst(lc2);

			if (!tle->resjunk)
				exprs = lappend(exprs, tle->expr);
		}
		pgt_dvm_restrict_to_keys(rte->subquery, exprs, names);
	}

	initStringInfo(&match);
	foreach(lc, analysis->columns)
	{
		PgtColumn  *col = lfirst(lc);

		append_key_match(&match, quote_identifier(col->name), col->typid);
	}
	return replace_touched_sql(analysis, storage, cols, delta, pgt_dvm_deparse(restricted), match.data);
}

/*
 * append_key_match appends " AND " (unless match is empty) and
 * "s.qn IS NOT DISTINCT FROM k.qn" by the equality of typid, or by the
 * text form of a type without one.
 */
static void
append_key_match(StringInfo match, const char *qn, Oid typid)
{
	Oid			eqop = pgt_type_eq_opr(typid);

	if (match->len > 0)
		appendStringInfoString(match, " AND ");
	if (OidIsValid(eqop))
		pgt_append_equal(match, psprintf("s.%s", qn), psprintf("k.%s", qn), eqop, true);
	else
		appendStringInfo(match, "s.%s::pg_catalog.text IS NOT DISTINCT FROM k.%s::pg_catalog.text",
						 qn, qn);
}

/*
 * window_partition_tles returns the output columns every window of q
 * partitions by (NIL if there is none).
 */
static List *
window_partition_tles(Query *q)
{
	List	   *common = NIL;
	ListCell   *lc;

	foreach(lc, q->windowClause)
	{
		WindowClause *wc = lfirst(lc);
		List	   *these = NIL;
		ListCell   *lc2;

		foreach(lc2, wc->partitionClause)
		{
			TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc2), q->targetList);

			if (!tle->resjunk)
				these = list_append_unique_ptr(these, tle);
		}
		common = foreach_current_index(lc) == 0 ? these : list_intersection(common, these);
	}
	return common;
}

/* distinct_on_tles returns the DISTINCT ON expressions that are output columns */
static List *
distinct_on_tles(Query *q)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, q->distinctClause)
	{
		TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), q->targetList);

		if (tle->resjunk)
			return NIL;
		result = lappend(result, tle);
	}
	return result;
}

/*
 * pgt_dvm_distinct_on_blocker: DISTINCT ON is maintained key by key (like
 * window partitions) when its expressions are output columns, over a plain
 * SELECT ... FROM ... WHERE block.
 */
const char *
pgt_dvm_distinct_on_blocker(Query *q)
{
	if (q->hasAggs || q->groupClause != NIL || q->setOperations != NULL ||
		q->limitCount != NULL || q->limitOffset != NULL || q->hasTargetSRFs ||
		q->hasWindowFuncs)
		return "DISTINCT ON together with aggregates, window functions, set operations or LIMIT is not supported by the differential engine yet.";
	if (distinct_on_tles(q) == NIL)
		return "DISTINCT ON is maintained differentially only when its expressions are columns of the select list.";
	return NULL;
}

/*
 * window_blocker: window functions are maintained when every window
 * partitions by at least one common output column, over a plain
 * SELECT ... FROM ... WHERE block.
 */
const char *
pgt_dvm_window_blocker(Query *q)
{
	if (q->hasAggs || q->groupClause != NIL || q->distinctClause != NIL ||
		q->setOperations != NULL || q->limitCount != NULL || q->limitOffset != NULL ||
		q->hasTargetSRFs)
		return "Window functions together with aggregates, DISTINCT, set operations or LIMIT are not supported by the differential engine yet.";
	return NULL;
}

/*
 * window_apply_sql maintains window functions partition by partition: the
 * partition keys in the delta of the FROM/WHERE part are the touched
 * partitions; the query restricted to them recomputes their rows, which
 * replace the stored rows of those partitions (only the difference is
 * deleted and inserted).  Cost: the rows of the touched partitions.
 * Without a partition column shared by every window, the whole result is
 * the one partition: any change recomputes it, and only the rows that
 * differ are written.
 */
char *
pgt_dvm_window_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage, DvmContext *ctx)
{
	/* DISTINCT ON keeps the ORDER BY that decides which row it keeps */
	bool		distinct_on = q->hasDistinctOn;
	List	   *keytles = distinct_on ? distinct_on_tles(q) : window_partition_tles(q);
	Query	   *child = copyObject(q);
	Query	   *restricted = copyObject(q);
	List	   *exprs = NIL;
	List	   *names = NIL;
	StringInfoData keys;
	StringInfoData match;
	char	   *delta;
	ListCell   *lc;
	int			i = 0;

	/* the FROM/WHERE part, projected on the partition keys */
	child->targetList = NIL;
	initStringInfo(&keys);
	initStringInfo(&match);
	foreach(lc, keytles)
	{
		TargetEntry *tle = flatCopyTargetEntry(lfirst(lc));
		const char *qn = quote_identifier(tle->resname);

		tle->resno = ++i;
		tle->ressortgroupref = 0;
		child->targetList = lappend(child->targetList, tle);
		exprs = lappend(exprs, tle->expr);
		names = lappend(names, tle->resname);
		appendStringInfo(&keys, "%s%s", keys.len > 0 ? ", " : "", qn);
		append_key_match(&match, qn, exprType((Node *) tle->expr));
	}
	/*
	 * Windows without a common partition column: the whole result is one
	 * partition, touched by any change (a constant key stands for it).
	 */
	if (keytles == NIL)
	{
		child->targetList = list_make1(makeTargetEntry((Expr *) makeBoolConst(true, false), 1,
													   pstrdup("__pgt_all"), false));
		appendStringInfoString(&keys, "__pgt_all");
		appendStringInfoString(&match, "true");
	}
	child->windowClause = NIL;
	child->hasWindowFuncs = false;
	child->sortClause = NIL;
	child->distinctClause = NIL;
	child->hasDistinctOn = false;
	delta = pgt_dvm_spj_delta(child, ctx);
	if (delta == NULL)
		return NULL;

	if (!distinct_on)
		restricted->sortClause = NIL;
	if (exprs != NIL)
		pgt_dvm_restrict_to_keys(restricted, exprs, names);

	return replace_touched_sql(analysis, storage, keys.data, delta,
							   exprs != NIL ? pgt_dvm_deparse(restricted) :
							   psprintf("SELECT * FROM (%s) AS __pgt_all WHERE EXISTS (SELECT 1 FROM __pgt_k)",
										pgt_dvm_deparse(restricted)),
							   match.data);
}

/* topk_offset: q's constant OFFSET (0 if none), or -1 if not a constant */
static int64
topk_offset(Query *q)
{
	Node	   *off;

	if (q->limitOffset == NULL)
		return 0;
	off = eval_const_expressions(NULL, copyObject(q->limitOffset));
	if (!IsA(off, Const))
		return -1;
	if (((Const *) off)->constisnull)
		return 0;
	return Max(DatumGetInt64(((Const *) off)->constvalue), 0);
}

/*
 * append_replace_new finishes a TopK statement whose WITH items so far
 * end with __pgt_new (the new rows of the window) and __pgt_cand: the
 * difference to the stored rows is deleted and inserted.
 */
static void
append_replace_new(StringInfo sql, PgtAnalysis *analysis, const char *storage)
{
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);
	StringInfoData sel;
	StringInfoData grp;

	pgt_dvm_consolidation_lists(analysis->columns, &sel, &grp);
	appendStringInfo(sql,
					 "__pgt_c AS (SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8 AS __pgt_w, "
					 "pg_catalog.row_number() OVER () AS __pgt_cid "
					 "FROM (SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM __pgt_new "
					 "UNION ALL SELECT %s, -1::pg_catalog.int8 FROM %s) d "
					 "GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0), ",
					 sel.data, cols, cols, storage, grp.data);
	pgt_dvm_append_apply_consolidated(sql, analysis, storage,
							  "(SELECT pg_catalog.count(*) FROM __pgt_cand)", NULL, false);
}

/*
 * topk_offset_sql finishes the statement of "B ORDER BY o LIMIT n OFFSET m"
 * (sql holds the WITH items of the delta, __pgt_d or __pgt_k, and
 * __pgt_cand).  The stored rows are ranks m+1..m+n; ranks 1..m are not
 * stored, so the candidates cannot refill the window.  Instead the query is
 * run again when a changed row ranks no later than the last stored row
 * (or fewer than n rows are stored); a change behind the window costs the
 * delta and one comparison.  Over GROUP BY or DISTINCT a changed group's
 * old rank is not known, so any change runs the query.
 */
static char *
topk_offset_sql(StringInfo sql, Query *q, PgtAnalysis *analysis, const char *storage,
				int64 n, bool keyed)
{
	char	   *order = order_by_sql(q, analysis);
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);

	if (keyed)
		appendStringInfoString(sql,
							   "__pgt_f AS (SELECT EXISTS (SELECT 1 FROM __pgt_k) AS refill), ");
	else
		appendStringInfo(sql,
						 "__pgt_b AS (SELECT %s FROM %s ORDER BY %s OFFSET " INT64_FORMAT " LIMIT 1), "
						 "__pgt_f AS (SELECT (SELECT pg_catalog.count(*) FROM %s) < " INT64_FORMAT
						 " OR COALESCE((SELECT v.__pgt_rn > 1 FROM "
						 "(SELECT u.__pgt_tag, pg_catalog.row_number() OVER (ORDER BY %s, u.__pgt_tag) AS __pgt_rn "
						 "FROM (SELECT %s, 0 AS __pgt_tag FROM __pgt_d UNION ALL "
						 "SELECT %s, 1 FROM __pgt_b) u) v WHERE v.__pgt_tag = 1), true) AS refill), ",
						 cols, storage, order, n - 1, storage, n, order, cols, cols);
	appendStringInfo(sql,
					 "__pgt_new AS (SELECT %s FROM (%s) AS f(%s) WHERE (SELECT refill FROM __pgt_f) "
					 "UNION ALL SELECT %s FROM %s s WHERE NOT (SELECT refill FROM __pgt_f)), ",
					 pgt_dvm_col_list(analysis->columns, "f.", false), pgt_dvm_deparse(q), cols,
					 pgt_dvm_col_list(analysis->columns, "s.", false), storage);
	append_replace_new(sql, analysis, storage);
	return sql->data;
}

/*
 * topk_blocker: ORDER BY ... LIMIT n [OFFSET m] is maintained when n and m are constants,
 * every ORDER BY expression is an output column, and
 * the query without ORDER BY/LIMIT is plain or grouped (not an aggregate
 * without GROUP BY, not a set operation).
 */
const char *
pgt_dvm_topk_blocker(Query *q)
{
	ListCell   *lc;

	int64		n;

	if (topk_offset(q) < 0)
		return "OFFSET must be a constant for the differential engine.";
	if (!topk_limit(q, &n) || n <= 0)
		return "LIMIT must be a positive constant for the differential engine.";
	if (q->limitOption != LIMIT_OPTION_COUNT)
		return "FETCH FIRST ... WITH TIES is not supported by the differential engine yet.";
	if (q->setOperations != NULL || (q->hasAggs && q->groupClause == NIL))
		return "ORDER BY ... LIMIT over a set operation or over an aggregate without GROUP BY is not supported by the differential engine yet.";
	foreach(lc, q->sortClause)
	{
		TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), q->targetList);

		TypeCacheEntry *tc = lookup_type_cache(exprType((Node *) tle->expr),
											   TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);

		if (tle->resjunk)
			return "ORDER BY ... LIMIT ordered by an expression that is not an output column is not supported by the differential engine yet.";
		if (((SortGroupClause *) lfirst(lc))->sortop != tc->lt_opr &&
			((SortGroupClause *) lfirst(lc))->sortop != tc->gt_opr)
			return "ORDER BY ... USING in an ORDER BY ... LIMIT query is not supported by the differential engine yet.";
	}
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (!tle->resjunk &&
			!OidIsValid(lookup_type_cache(exprType((Node *) tle->expr), TYPECACHE_EQ_OPR)->eq_opr))
			return psprintf("Column \"%s\" of an ORDER BY ... LIMIT query has a type without equality.",
							tle->resname);
	}
	return NULL;
}

/* topk_limit sets *n to q's LIMIT if it folds to a non-NULL constant */
static bool
topk_limit(Query *q, int64 *n)
{
	Node	   *lim;

	if (q->limitCount == NULL)
		return false;
	lim = eval_const_expressions(NULL, copyObject(q->limitCount));
	if (!IsA(lim, Const) || ((Const *) lim)->constisnull)
		return false;
	*n = DatumGetInt64(((Const *) lim)->constvalue);
	return true;
}

/*
 * order_by_sql returns q's ORDER BY over the stream table's column names.
 */
static char *
order_by_sql(Query *q, PgtAnalysis *analysis)
{
	List	   *names = NIL;
	ListCell   *lc;
	char	   *sql;

	foreach(lc, q->sortClause)
	{
		TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), q->targetList);
		int			pos = 0;
		ListCell   *lc2;

		/* the output column's position among the visible ones */
		foreach(lc2, q->targetList)
		{
			TargetEntry *t = lfirst(lc2);

			if (t->resjunk)
				continue;
			if (t == tle)
				break;
			pos++;
		}
		names = lappend(names, (char *) quote_identifier(((PgtColumn *) list_nth(analysis->columns,
																				   pos))->name));
	}
	sql = pgt_dvm_order_by_list(q, names);
	if (sql == NULL)
		elog(ERROR, "unexpected sort operator in a TopK query");
	return sql;
}

/*
 * pgt_dvm_order_by_list returns the ORDER BY of q with its sort items
 * written as names (SQL text, one per item), with their directions and
 * NULLS placement; NULL when an item sorts by a non-default operator.
 */
char *
pgt_dvm_order_by_list(Query *q, List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, q->sortClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);
		TypeCacheEntry *tc = lookup_type_cache(exprType((Node *) tle->expr),
											   TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);

		if (sgc->sortop != tc->lt_opr && sgc->sortop != tc->gt_opr)
			return NULL;
		appendStringInfo(&buf, "%s%s %s NULLS %s", buf.len > 0 ? ", " : "",
						 (char *) list_nth(names, foreach_current_index(lc)),
						 sgc->sortop == tc->gt_opr ? "DESC" : "ASC",
						 sgc->nulls_first ? "FIRST" : "LAST");
	}
	return buf.data;
}

/*
 * topk_apply_sql maintains "B ORDER BY o LIMIT n" whose stored rows are
 * the first n rows of B.
 *
 * The candidates are the stored rows and what changed in B: for a plain B
 * the stored rows plus its weighted delta, consolidated; for a grouped B
 * the stored rows of untouched groups plus the touched groups recomputed.
 * Every row of B that is not a candidate was outside the first n before
 * and did not change, so it ranks after the n-th stored row, b.  Hence
 * the first n candidates are the new first n rows of B whenever at least
 * n candidates rank before b (or tie with it), or fewer than n rows were
 * stored (B had no other rows).  Otherwise a row left the top and its
 * place may belong to a row that is not a candidate: the statement then
 * runs the query itself ("refill").  The stored rows are brought to the
 * new first n by deleting and inserting only the rows that differ.
 */
char *
pgt_dvm_topk_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage, DvmContext *ctx)
{
	Query	   *b = copyObject(q);
	int64		n = 0;
	char	   *order = order_by_sql(q, analysis);
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);
	StringInfoData sql;
	StringInfoData sel;
	StringInfoData grp;

	if (!topk_limit(q, &n))
		elog(ERROR, "LIMIT of a TopK query is not a constant");
	b->sortClause = NIL;
	b->limitCount = NULL;
	b->limitOffset = NULL;
	ctx->columns = analysis->columns;
	initStringInfo(&sql);

	if (b->groupClause != NIL || b->distinctClause != NIL)
	{
		char	   *delta;
		char	   *recompute;
		List	   *keytles;
		StringInfoData keys;
		StringInfoData match;
		ListCell   *lc;

		pgt_dvm_keyed_parts(b, ctx, &delta, &recompute, &keytles);
		if (delta == NULL)
			return NULL;
		initStringInfo(&keys);
		initStringInfo(&match);
		foreach(lc, keytles)
		{
			TargetEntry *tle = lfirst(lc);
			const char *qn = quote_identifier(tle->resname);

			appendStringInfo(&keys, "%s%s", keys.len > 0 ? ", " : "", qn);
			append_key_match(&match, qn, exprType((Node *) tle->expr));
		}
		appendStringInfo(&sql,
						 "WITH __pgt_k AS (SELECT DISTINCT %s FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
						 "__pgt_r AS (%s), "
						 "__pgt_cand AS (SELECT %s FROM %s s WHERE NOT EXISTS "
						 "(SELECT 1 FROM __pgt_k k WHERE %s) "
						 "UNION ALL SELECT %s FROM __pgt_r AS r(%s)), ",
						 keys.data, delta, keys.data, recompute,
						 pgt_dvm_col_list(analysis->columns, "s.", false), storage, match.data,
						 pgt_dvm_col_list(analysis->columns, "r.", false), cols);
	}
	else
	{
		char	   *delta = pgt_dvm_any_delta(b, ctx);

		if (delta == NULL)
			return NULL;
		pgt_dvm_consolidation_lists(analysis->columns, &sel, &grp);
		appendStringInfo(&sql,
						 "WITH __pgt_d AS (SELECT * FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
						 "__pgt_cand AS (SELECT %s FROM (SELECT %s, pg_catalog.sum(d.__pgt_w) AS __pgt_n "
						 "FROM (SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM %s "
						 "UNION ALL SELECT %s, __pgt_w FROM __pgt_d) d GROUP BY %s "
						 "HAVING pg_catalog.sum(d.__pgt_w) > 0) x CROSS JOIN LATERAL "
						 "pg_catalog.generate_series(1::pg_catalog.int8, x.__pgt_n::pg_catalog.int8)), ",
						 delta, cols,
						 pgt_dvm_col_list(analysis->columns, "x.", false), sel.data,
						 cols, storage, cols, grp.data);
	}

	if (topk_offset(q) > 0)
		return topk_offset_sql(&sql, q, analysis, storage, n,
							   b->groupClause != NIL || b->distinctClause != NIL);

	/* b, the n-th stored row, and whether n candidates rank no later */
	appendStringInfo(&sql,
					 "__pgt_b AS (SELECT %s FROM %s ORDER BY %s OFFSET " INT64_FORMAT " LIMIT 1), "
					 "__pgt_f AS (SELECT COALESCE((SELECT v.__pgt_rn <= " INT64_FORMAT " FROM "
					 "(SELECT u.__pgt_tag, pg_catalog.row_number() OVER (ORDER BY %s, u.__pgt_tag) AS __pgt_rn "
					 "FROM (SELECT %s, 0 AS __pgt_tag FROM __pgt_cand UNION ALL "
					 "SELECT %s, 1 FROM __pgt_b) u) v WHERE v.__pgt_tag = 1), false) AS refill), ",
					 cols, storage, order, n - 1, n, order, cols, cols);

	/* the new first n rows: from the candidates, or a fresh run */
	appendStringInfo(&sql,
					 "__pgt_new AS (SELECT %s FROM (%s) AS f(%s) WHERE (SELECT refill FROM __pgt_f) "
					 "UNION ALL SELECT %s FROM (SELECT %s FROM __pgt_cand ORDER BY %s LIMIT " INT64_FORMAT ") c "
					 "WHERE NOT (SELECT refill FROM __pgt_f)), ",
					 pgt_dvm_col_list(analysis->columns, "f.", false), pgt_dvm_deparse(q), cols,
					 pgt_dvm_col_list(analysis->columns, "c.", false), cols, order, n);

	append_replace_new(&sql, analysis, storage);
	return sql.data;
}
