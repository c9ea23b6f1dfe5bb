/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  Algebraic maintenance of COUNT, SUM and AVG.
 *
 *	  A query of the form
 *
 *	    SELECT k1, ..., agg1, ... FROM <join block> WHERE ... GROUP BY k1, ...
 *
 *	  (or with no GROUP BY), whose every non-key output is count(*),
 *	  count(x), sum(x) or avg(x) of an integer or numeric x, optionally with
 *	  FILTER (WHERE ...), and with no HAVING, is maintained without reading
 *	  the groups it touches: each stored row carries
 *
 *	    __pgt_count      rows in the group (the group disappears at 0)
 *	    __pgt_nn_<i>     non-null inputs of the sum/avg in column i
 *	    __pgt_sum_<i>    the exact (numeric) sum behind the avg in column i
 *
 *	  and a refresh adds the weighted sums of the delta rows to them.  SUM
 *	  becomes NULL when its last non-null input leaves; AVG is sum / count
 *	  by numeric division, which is exactly how the server computes avg()
 *	  for these types, so the values print identically.  Floating-point
 *	  arguments are not algebraic (their running sums would drift) and go
 *	  through the recompute-the-group path in delta.c, as do all other
 *	  aggregates.
 *
 * IDENTIFICATION
 *	  src/dvm/aggregate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteManip.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

static bool numeric_like(Oid typid);
static char *var_sql(PgtAggItem *item, const char *n, const char *sm, const char *sq);
static const char *item_col(PgtAggItem *item, List *columns);
static Oid	item_eqop(PgtAggItem *item, List *columns);
static char *key_match(PgtAggLayout *layout, List *columns);

/*
 * pgt_dvm_agg_layout returns the algebraic layout of query, or NULL if the
 * query is not an algebraic aggregate (see the file header).
 */
PgtAggLayout *
pgt_dvm_agg_layout(Query *query)
{
	PgtAggLayout *layout;
	ListCell   *lc;
	int			colno = 0;
	int			argno = 0;
	int			filterno = 0;

	if (!query->hasAggs || query->havingQual != NULL ||
		query->groupingSets != NIL || query->distinctClause != NIL ||
		query->hasWindowFuncs || query->hasTargetSRFs ||
		query->setOperations != NULL || query->limitCount != NULL ||
		query->limitOffset != NULL || query->hasSubLinks)
		return NULL;

	layout = palloc0(sizeof(PgtAggLayout));
	layout->grouped = query->groupClause != NIL;

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		PgtAggItem *item;

		if (tle->resjunk)
			continue;
		item = palloc0(sizeof(PgtAggItem));
		item->colno = ++colno;
		item->tle = tle;

		if (tle->ressortgroupref != 0 &&
			get_sortgroupref_clause_noerr(tle->ressortgroupref,
										  query->groupClause) != NULL)
		{
			if (contain_aggs_of_level((Node *) tle->expr, 0))
				return NULL;
			item->kind = PGT_AGG_KEY;
		}
		else if (IsA(tle->expr, Aggref))
		{
			Aggref	   *agg = (Aggref *) tle->expr;
			char	   *fname = get_func_name(agg->aggfnoid);
			Oid			argtype = InvalidOid;

			if (get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE ||
				agg->aggdistinct != NIL || agg->aggorder != NIL ||
				agg->aggkind != AGGKIND_NORMAL || agg->agglevelsup != 0 ||
				list_length(agg->args) > 1)
				return NULL;
			if (agg->args != NIL)
			{
				TargetEntry *arg = linitial(agg->args);

				argtype = exprType((Node *) arg->expr);
				item->arg = arg->expr;
				item->argno = ++argno;
			}
			if (agg->aggfilter != NULL)
			{
				item->filter = agg->aggfilter;
				item->filterno = ++filterno;
			}

			if (strcmp(fname, "count") == 0)
				item->kind = agg->aggstar ? PGT_AGG_COUNT_STAR : PGT_AGG_COUNT;
			else if (strcmp(fname, "sum") == 0 && numeric_like(argtype))
				item->kind = PGT_AGG_SUM;
			else if (strcmp(fname, "avg") == 0 && numeric_like(argtype) &&
					 (argtype != NUMERICOID || exprTypmod((Node *) item->arg) >= 0))

				/*
				 * avg(numeric) divides at a scale chosen from the sum's
				 * display scale, which a maintained sum may not share with
				 * a fresh one unless the argument has a declared scale
				 * (numeric(p,s)): otherwise its groups are recomputed.
				 */
				item->kind = PGT_AGG_AVG;
			else if ((argtype == INT2OID || argtype == INT4OID || argtype == INT8OID) &&
					 (strcmp(fname, "var_samp") == 0 || strcmp(fname, "variance") == 0 ||
					  strcmp(fname, "var_pop") == 0 || strcmp(fname, "stddev_samp") == 0 ||
					  strcmp(fname, "stddev") == 0 || strcmp(fname, "stddev_pop") == 0))
			{
				/*
				 * Of integers, PostgreSQL computes these from exact sums
				 * (numeric, no fractional digits): so can we, to the digit.
				 */
				item->kind = PGT_AGG_VAR;
				item->var_sample = strstr(fname, "_pop") == NULL;
				item->var_root = strncmp(fname, "stddev", 6) == 0;
			}
			else if ((strcmp(fname, "min") == 0 || strcmp(fname, "max") == 0) &&
					 OidIsValid(lookup_type_cache(argtype, TYPECACHE_LT_OPR)->lt_opr) &&
					 exprType((Node *) agg) == argtype)
				item->kind = strcmp(fname, "min") == 0 ? PGT_AGG_MIN : PGT_AGG_MAX;
			else
				return NULL;
		}
		else
			return NULL;
		layout->items = lappend(layout->items, item);
	}
	return layout;
}

/*
 * pgt_dvm_agg_hidden_columns returns the extra storage column definitions
 * ("name type") of layout.
 */
List *
pgt_dvm_agg_hidden_columns(PgtAggLayout *layout)
{
	List	   *result = list_make1(pstrdup("__pgt_count pg_catalog.int8 NOT NULL"));
	ListCell   *lc;

	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->kind == PGT_AGG_SUM || item->kind == PGT_AGG_AVG || item->kind == PGT_AGG_VAR)
			result = lappend(result, psprintf("__pgt_nn_%d pg_catalog.int8", item->colno));
		if (item->kind == PGT_AGG_AVG || item->kind == PGT_AGG_VAR)
			result = lappend(result, psprintf("__pgt_sum_%d pg_catalog.numeric", item->colno));
		if (item->kind == PGT_AGG_VAR)
			result = lappend(result, psprintf("__pgt_sq_%d pg_catalog.numeric", item->colno));
	}
	return result;
}

/*
 * pgt_dvm_agg_child returns the join block under the aggregate of query
 * (already prepared), projected on the keys (their output names), the
 * aggregate arguments (__pgt_a<n>) and the FILTER conditions (__pgt_f<n>).
 */
Query *
pgt_dvm_agg_child(Query *query, PgtAggLayout *layout)
{
	Query	   *child = copyObject(query);
	List	   *tlist = NIL;
	ListCell   *lc;
	AttrNumber	resno = 1;

	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->kind == PGT_AGG_KEY)
			tlist = lappend(tlist, makeTargetEntry(copyObject(item->tle->expr), resno++,
												   pstrdup(item->tle->resname), false));
	}
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->argno > 0)
			tlist = lappend(tlist, makeTargetEntry(copyObject(item->arg), resno++,
												   psprintf("__pgt_a%d", item->argno), false));
		if (item->filterno > 0)
			tlist = lappend(tlist, makeTargetEntry(copyObject(item->filter), resno++,
												   psprintf("__pgt_f%d", item->filterno), false));
	}
	/* a constant column keeps the child valid when nothing else is needed */
	tlist = lappend(tlist, makeTargetEntry((Expr *) makeConst(INT4OID, -1, InvalidOid, 4,
															  Int32GetDatum(1), false, true),
										   resno++, pstrdup("__pgt_one"), false));
	child->targetList = tlist;
	child->groupClause = NIL;
	child->hasAggs = false;
	child->sortClause = NIL;
	child->distinctClause = NIL;
	return child;
}

/*
 * pgt_dvm_agg_child_names returns the quoted output names of the child
 * query, comma-separated.
 */
char *
pgt_dvm_agg_child_names(PgtAggLayout *layout)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->kind == PGT_AGG_KEY)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "",
							 quote_identifier(item->tle->resname));
	}
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->argno > 0)
			appendStringInfo(&buf, "%s__pgt_a%d", buf.len ? ", " : "", item->argno);
		if (item->filterno > 0)
			appendStringInfo(&buf, "%s__pgt_f%d", buf.len ? ", " : "", item->filterno);
	}
	appendStringInfo(&buf, "%s__pgt_one", buf.len ? ", " : "");
	return buf.data;
}

/*
 * pgt_dvm_agg_full_sql returns the SELECT that computes every storage
 * column (visible, hidden, row identity, in storage order) of an algebraic
 * aggregate from child_sql, the deparsed child query.
 */
char *
pgt_dvm_agg_full_sql(PgtAggLayout *layout, List *columns, const char *storage,
					 const char *child_sql)
{
	StringInfoData cols;
	StringInfoData sel;
	StringInfoData grp;
	ListCell   *lc;

	initStringInfo(&cols);
	initStringInfo(&sel);
	initStringInfo(&grp);
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);
		const char *col = item_col(item, columns);
		char	   *filt = item->filterno > 0 ?
			psprintf(" FILTER (WHERE c.__pgt_f%d)", item->filterno) : "";

		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", col);
		if (sel.len)
			appendStringInfoString(&sel, ", ");
		switch (item->kind)
		{
			case PGT_AGG_KEY:
				appendStringInfo(&sel, "c.%s", col);
				appendStringInfo(&grp, "%sc.%s", grp.len ? ", " : "", col);
				break;
			case PGT_AGG_COUNT_STAR:
				appendStringInfo(&sel, "pg_catalog.count(*)%s", filt);
				break;
			case PGT_AGG_COUNT:
				appendStringInfo(&sel, "pg_catalog.count(c.__pgt_a%d)%s", item->argno, filt);
				break;
			case PGT_AGG_SUM:
				appendStringInfo(&sel, "pg_catalog.sum(c.__pgt_a%d)%s", item->argno, filt);
				break;
			case PGT_AGG_AVG:
				appendStringInfo(&sel, "pg_catalog.avg(c.__pgt_a%d)%s", item->argno, filt);
				break;
			case PGT_AGG_MIN:
				appendStringInfo(&sel, "pg_catalog.min(c.__pgt_a%d)%s", item->argno, filt);
				break;
			case PGT_AGG_MAX:
				appendStringInfo(&sel, "pg_catalog.max(c.__pgt_a%d)%s", item->argno, filt);
				break;
			case PGT_AGG_VAR:
				appendStringInfo(&sel, "pg_catalog.%s(c.__pgt_a%d)%s",
								 quote_identifier(get_func_name(((Aggref *) item->tle->expr)->aggfnoid)),
								 item->argno, filt);
				break;
		}
	}
	appendStringInfoString(&cols, ", __pgt_count");
	appendStringInfoString(&sel, ", pg_catalog.count(*)");
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);
		char	   *filt = item->filterno > 0 ?
			psprintf(" FILTER (WHERE c.__pgt_f%d)", item->filterno) : "";

		if (item->kind == PGT_AGG_SUM || item->kind == PGT_AGG_AVG || item->kind == PGT_AGG_VAR)
		{
			appendStringInfo(&cols, ", __pgt_nn_%d", item->colno);
			appendStringInfo(&sel, ", pg_catalog.count(c.__pgt_a%d)%s", item->argno, filt);
		}
		if (item->kind == PGT_AGG_AVG || item->kind == PGT_AGG_VAR)
		{
			appendStringInfo(&cols, ", __pgt_sum_%d", item->colno);
			appendStringInfo(&sel, ", (pg_catalog.sum(c.__pgt_a%d)%s)::pg_catalog.numeric",
							 item->argno, filt);
		}
		if (item->kind == PGT_AGG_VAR)
		{
			appendStringInfo(&cols, ", __pgt_sq_%d", item->colno);
			appendStringInfo(&sel, ", pg_catalog.sum(c.__pgt_a%d::pg_catalog.numeric * c.__pgt_a%d)%s",
							 item->argno, item->argno, filt);
		}
	}
	(void) storage;
	return psprintf("SELECT %s, %s FROM (%s) AS c(%s)%s%s",
					sel.data,
					pgt_storage_row_id_expr(columns,
											layout->grouped ? PGT_IDENTITY_GROUP_KEY :
											PGT_IDENTITY_SINGLETON, "c"),
					child_sql, pgt_dvm_agg_child_names(layout),
					grp.len ? " GROUP BY " : "", grp.data);
}

/*
 * pgt_dvm_agg_apply_sql returns the MERGE that adds delta_sql (the weighted
 * delta of the child query) to the stored groups.
 */
char *
pgt_dvm_agg_apply_sql(PgtAggLayout *layout, List *columns, const char *storage,
					  const char *delta_sql, const char *child_sql)
{
	StringInfoData agg;
	StringInfoData grp;
	StringInfoData on;
	StringInfoData set;
	StringInfoData icols;
	StringInfoData ivals;
	ListCell   *lc;

	initStringInfo(&agg);
	initStringInfo(&grp);
	initStringInfo(&on);
	initStringInfo(&set);
	initStringInfo(&icols);
	initStringInfo(&ivals);

	appendStringInfoString(&set, "__pgt_count = s.__pgt_count + u.__pgt_dc");
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);
		const char *col = item_col(item, columns);
		char	   *f = item->filterno > 0 ? psprintf(" AND d.__pgt_f%d", item->filterno) : "";
		char	   *nn;
		char	   *sum;

		appendStringInfo(&icols, "%s, ", col);
		switch (item->kind)
		{
			case PGT_AGG_KEY:
				appendStringInfo(&agg, "d.%s, ", col);
				appendStringInfo(&grp, "%sd.%s", grp.len ? ", " : "", col);
				appendStringInfoString(&on, " AND ");
				pgt_append_equal(&on, psprintf("s.%s", col), psprintf("u.%s", col),
								 item_eqop(item, columns), true);
				appendStringInfo(&ivals, "u.%s, ", col);
				break;
			case PGT_AGG_COUNT_STAR:
				appendStringInfo(&agg, "COALESCE(pg_catalog.sum(d.__pgt_w) FILTER (WHERE true%s), 0) AS __pgt_d%d, ",
								 f, item->colno);
				appendStringInfo(&set, ", %s = s.%s + u.__pgt_d%d", col, col, item->colno);
				appendStringInfo(&ivals, "u.__pgt_d%d, ", item->colno);
				break;
			case PGT_AGG_COUNT:
				appendStringInfo(&agg, "COALESCE(pg_catalog.sum(d.__pgt_w) FILTER (WHERE d.__pgt_a%d IS NOT NULL%s), 0) AS __pgt_d%d, ",
								 item->argno, f, item->colno);
				appendStringInfo(&set, ", %s = s.%s + u.__pgt_d%d", col, col, item->colno);
				appendStringInfo(&ivals, "u.__pgt_d%d, ", item->colno);
				break;
			case PGT_AGG_SUM:
			case PGT_AGG_AVG:
				appendStringInfo(&agg,
								 "COALESCE(pg_catalog.sum(d.__pgt_w) FILTER (WHERE d.__pgt_a%d IS NOT NULL%s), 0) AS __pgt_dn%d, "
								 "COALESCE(pg_catalog.sum(d.__pgt_w::pg_catalog.numeric * d.__pgt_a%d) FILTER (WHERE true%s), 0) AS __pgt_ds%d, ",
								 item->argno, f, item->colno, item->argno, f, item->colno);
				nn = psprintf("(s.__pgt_nn_%d + u.__pgt_dn%d)", item->colno, item->colno);
				if (item->kind == PGT_AGG_SUM)
				{
					sum = psprintf("(COALESCE(s.%s::pg_catalog.numeric, 0) + u.__pgt_ds%d)", col, item->colno);
					appendStringInfo(&set, ", %s = CASE WHEN %s = 0 THEN NULL ELSE %s END",
									 col, nn, sum);
					appendStringInfo(&ivals, "CASE WHEN u.__pgt_dn%d = 0 THEN NULL ELSE u.__pgt_ds%d END, ",
									 item->colno, item->colno);
				}
				else
				{
					sum = psprintf("(COALESCE(s.__pgt_sum_%d, 0) + u.__pgt_ds%d)", item->colno, item->colno);
					appendStringInfo(&set, ", %s = CASE WHEN %s = 0 THEN NULL ELSE %s / %s::pg_catalog.numeric END"
									 ", __pgt_sum_%d = CASE WHEN %s = 0 THEN NULL ELSE %s END",
									 col, nn, sum, nn, item->colno, nn, sum);
					appendStringInfo(&ivals, "CASE WHEN u.__pgt_dn%d = 0 THEN NULL ELSE u.__pgt_ds%d / u.__pgt_dn%d::pg_catalog.numeric END, ",
									 item->colno, item->colno, item->colno);
				}
				appendStringInfo(&set, ", __pgt_nn_%d = %s", item->colno, nn);
				break;
			case PGT_AGG_VAR:
				{
					char	   *n = psprintf("(s.__pgt_nn_%d + u.__pgt_dn%d)", item->colno, item->colno);
					char	   *sm = psprintf("(COALESCE(s.__pgt_sum_%d, 0) + u.__pgt_ds%d)", item->colno, item->colno);
					char	   *sq = psprintf("(COALESCE(s.__pgt_sq_%d, 0) + u.__pgt_dq%d)", item->colno, item->colno);

					appendStringInfo(&agg,
									 "COALESCE(pg_catalog.sum(d.__pgt_w) FILTER (WHERE d.__pgt_a%d IS NOT NULL%s), 0) AS __pgt_dn%d, "
									 "COALESCE(pg_catalog.sum(d.__pgt_w::pg_catalog.numeric * d.__pgt_a%d) FILTER (WHERE true%s), 0) AS __pgt_ds%d, "
									 "COALESCE(pg_catalog.sum(d.__pgt_w::pg_catalog.numeric * d.__pgt_a%d * d.__pgt_a%d) FILTER (WHERE true%s), 0) AS __pgt_dq%d, ",
									 item->argno, f, item->colno, item->argno, f, item->colno,
									 item->argno, item->argno, f, item->colno);
					appendStringInfo(&set, ", %s = %s, __pgt_nn_%d = %s, __pgt_sum_%d = %s, __pgt_sq_%d = %s",
									 col, var_sql(item, n, sm, sq), item->colno, n,
									 item->colno, sm, item->colno, sq);
					appendStringInfo(&ivals, "%s, ",
									 var_sql(item, psprintf("u.__pgt_dn%d", item->colno),
											 psprintf("u.__pgt_ds%d", item->colno),
											 psprintf("u.__pgt_dq%d", item->colno)));
				}
				break;
			case PGT_AGG_MIN:
			case PGT_AGG_MAX:
				{
					bool		is_min = item->kind == PGT_AGG_MIN;
					const char *fn = is_min ? "min" : "max";
					char	   *rescan;

					/*
					 * Inserted values can only improve the extreme; only a
					 * removed value at (or beyond) the stored extreme
					 * forces a rescan of that group, from the current state.
					 */
					appendStringInfo(&agg,
									 "pg_catalog.%s(d.__pgt_a%d) FILTER (WHERE d.__pgt_w > 0%s) AS __pgt_i%d, "
									 "pg_catalog.%s(d.__pgt_a%d) FILTER (WHERE d.__pgt_w < 0%s) AS __pgt_r%d, ",
									 fn, item->argno, f, item->colno,
									 fn, item->argno, f, item->colno);
					rescan = psprintf("(SELECT pg_catalog.%s(r.__pgt_a%d) FROM (%s) AS r(%s) WHERE true%s%s)",
									  fn, item->argno, child_sql, pgt_dvm_agg_child_names(layout),
									  key_match(layout, columns),
									  item->filterno > 0 ? psprintf(" AND r.__pgt_f%d", item->filterno) : "");
					appendStringInfo(&set, ", %s = CASE WHEN u.__pgt_r%d IS NOT NULL AND "
									 "(s.%s IS NULL OR u.__pgt_r%d %s s.%s) THEN %s "
									 "ELSE %s(s.%s, u.__pgt_i%d) END",
									 col, item->colno, col, item->colno, is_min ? "<=" : ">=", col,
									 rescan, is_min ? "LEAST" : "GREATEST", col, item->colno);
					appendStringInfo(&ivals, "CASE WHEN u.__pgt_r%d IS NOT NULL THEN %s ELSE u.__pgt_i%d END, ",
									 item->colno, rescan, item->colno);
				}
				break;
		}
	}
	appendStringInfoString(&icols, "__pgt_count");
	appendStringInfoString(&ivals, "u.__pgt_dc");
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->kind == PGT_AGG_SUM || item->kind == PGT_AGG_AVG)
		{
			appendStringInfo(&icols, ", __pgt_nn_%d", item->colno);
			appendStringInfo(&ivals, ", u.__pgt_dn%d", item->colno);
		}
		if (item->kind == PGT_AGG_AVG)
		{
			appendStringInfo(&icols, ", __pgt_sum_%d", item->colno);
			appendStringInfo(&ivals, ", CASE WHEN u.__pgt_dn%d = 0 THEN NULL ELSE u.__pgt_ds%d END",
							 item->colno, item->colno);
		}
		if (item->kind == PGT_AGG_VAR)
		{
			appendStringInfo(&icols, ", __pgt_nn_%d, __pgt_sum_%d, __pgt_sq_%d",
							 item->colno, item->colno, item->colno);
			appendStringInfo(&ivals, ", u.__pgt_dn%d, u.__pgt_ds%d, u.__pgt_dq%d",
							 item->colno, item->colno, item->colno);
		}
	}

	return psprintf("WITH __pgt_d AS (SELECT * FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
					"__pgt_a AS (SELECT %sCOALESCE(pg_catalog.sum(d.__pgt_w), 0) AS __pgt_dc "
					"FROM __pgt_d d%s%s) "
					"MERGE INTO %s s USING (SELECT a.*, %s AS __pgt_rid FROM __pgt_a a) u "
					"ON s." PGT_ROW_ID_COLUMN " = u.__pgt_rid%s "
					"%s"
					"WHEN MATCHED THEN UPDATE SET %s "
					"WHEN NOT MATCHED%s THEN INSERT (%s, " PGT_ROW_ID_COLUMN ") VALUES (%s, u.__pgt_rid)",
					delta_sql, pgt_dvm_agg_child_names(layout),
					agg.data, grp.len ? " GROUP BY " : "", grp.data,
					storage,
					pgt_storage_row_id_expr(columns,
											layout->grouped ? PGT_IDENTITY_GROUP_KEY :
											PGT_IDENTITY_SINGLETON, "a"),
					on.data,
					layout->grouped ? "WHEN MATCHED AND s.__pgt_count + u.__pgt_dc = 0 THEN DELETE " : "",
					set.data,
					layout->grouped ? " AND u.__pgt_dc > 0" : "",
					icols.data, ivals.data);
}

/*
 * var_sql computes a variance or standard deviation from the count n, sum
 * sm and sum of squares sq of the non-NULL values, as PostgreSQL's own
 * final function does for integer inputs: (n*sq - sm*sm) / (n*(n-1)) (or
 * n*n) with numeric division at the scale numeric division chooses; a
 * numerator at or below zero gives 0; the square root at that scale (taken
 * 20 digits further and rounded, so the last digit is the same).
 */
static char *
var_sql(PgtAggItem *item, const char *n, const char *sm, const char *sq)
{
	char	   *num = psprintf("(%s::pg_catalog.numeric * %s - %s * %s)", n, sq, sm, sm);
	char	   *v = psprintf("(%s / (%s::pg_catalog.numeric * (%s%s)))",
							 num, n, n, item->var_sample ? " - 1" : "");

	if (item->var_root)
		v = psprintf("pg_catalog.round(pg_catalog.sqrt(%s * 1.00000000000000000000), pg_catalog.scale(%s))",
					 v, v);
	return psprintf("CASE WHEN %s <= %d THEN NULL WHEN %s <= 0 THEN 0::pg_catalog.numeric ELSE %s END",
					n, item->var_sample ? 1 : 0, num, v);
}

static bool
numeric_like(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == NUMERICOID;
}

static const char *
item_col(PgtAggItem *item, List *columns)
{
	PgtColumn  *col = list_nth(columns, item->colno - 1);

	return quote_identifier(col->name);
}

/* item_eqop: the equality of a group key's type, as GROUP BY uses it */
static Oid
item_eqop(PgtAggItem *item, List *columns)
{
	PgtColumn  *col = list_nth(columns, item->colno - 1);
	Oid			eqop = pgt_type_eq_opr(col->typid);

	if (!OidIsValid(eqop))
		elog(ERROR, "no equality operator for group key type %s",
			 format_type_be(col->typid));
	return eqop;
}

/* key_match: " AND r.k IS NOT DISTINCT FROM u.k ..." for every group key */
static char *
key_match(PgtAggLayout *layout, List *columns)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, layout->items)
	{
		PgtAggItem *item = lfirst(lc);

		if (item->kind == PGT_AGG_KEY)
		{
			appendStringInfoString(&buf, " AND ");
			pgt_append_equal(&buf, psprintf("r.%s", item_col(item, columns)),
							 psprintf("u.%s", item_col(item, columns)),
							 item_eqop(item, columns), true);
		}
	}
	return buf.data;
}

/*
 * pgt_dvm_agg_keys_sql returns a SELECT of the distinct lock keys (the row
 * identities) of the groups delta_sql touches, in order, or NULL for an
 * aggregate without GROUP BY.
 */
char *
pgt_dvm_agg_keys_sql(PgtAggLayout *layout, List *columns, const char *delta_sql)
{
	if (!layout->grouped)
		return NULL;
	/* the row identity's hash: it also copes with keys of unhashable types */
	return psprintf("SELECT DISTINCT %s AS k FROM (%s) AS d(%s, __pgt_w) ORDER BY 1",
					pgt_storage_row_id_expr(columns, PGT_IDENTITY_GROUP_KEY, "d"),
					delta_sql, pgt_dvm_agg_child_names(layout));
}

