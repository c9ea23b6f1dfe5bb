/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  Applying a delta to the storage table: the MULTISET statement
 *	  (weighted rows consolidated, |w| copies deleted by identity, w copies
 *	  inserted), KEYED_RECOMPUTE (the touched keys recomputed by the query
 *	  and MERGEd), SINGLETON_RECOMPUTE, and the SQL pieces they share:
 *	  consolidation lists, identity rechecks, key restriction.  The deltas
 *	  themselves come from delta.c.
 *
 * IDENTIFICATION
 *	  src/dvm/apply.c
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

/*
 * multiset_apply_sql: consolidate the weighted delta per distinct row,
 * delete |w| stored copies of rows with w < 0 and insert w copies of rows
 * with w > 0, in one statement.
 */
char *
pgt_dvm_multiset_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
				   DvmContext *ctx)
{
	StringInfoData sql;
	char	   *delta = pgt_dvm_any_delta(q, ctx);
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);

	if (delta == NULL)
		return NULL;

	/*
	 * IMMEDIATE, a statement that only added rows, a query in which rows
	 * can only appear when a source row appears: the delta only inserts.
	 * (If it ever did not, the expected-deletions check fails and the
	 * stream table is recomputed.)
	 */
	if (OidIsValid(ctx->ivm_source) && !ctx->ivm_old && pgt_dvm_insert_monotone(q))
	{
		initStringInfo(&sql);
		appendStringInfo(&sql,
						 "WITH __pgt_d AS (SELECT * FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
						 "__pgt_ins AS (INSERT INTO %s (%s, " PGT_ROW_ID_COLUMN ") "
						 "SELECT %s, %s FROM __pgt_d c CROSS JOIN LATERAL "
						 "pg_catalog.generate_series(1::pg_catalog.int8, c.__pgt_w) "
						 "WHERE c.__pgt_w > 0 RETURNING 1) "
						 "SELECT 0::pg_catalog.int8, (SELECT pg_catalog.count(*) FROM __pgt_ins), "
						 "(SELECT pg_catalog.count(*) FROM __pgt_d), "
						 "(SELECT COALESCE(pg_catalog.sum(-__pgt_w), 0) FROM __pgt_d WHERE __pgt_w < 0)::pg_catalog.numeric",
						 delta, cols, storage, cols,
						 pgt_dvm_col_list(analysis->columns, "c.", false),
						 pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "c"));
		return sql.data;
	}

	return pgt_dvm_multiset_apply_delta(delta, analysis, storage, NULL, false);
}

/*
 * multiset_apply_delta: the MULTISET statement for a weighted delta (the
 * stream table's columns, then __pgt_w); abandon as for
 * pgt_dvm_append_apply_consolidated.
 */
char *
pgt_dvm_multiset_apply_delta(const char *delta, PgtAnalysis *analysis, const char *storage,
					 const char *abandon, bool per_row)
{
	StringInfoData sql;
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);
	StringInfoData sel;
	StringInfoData grp;

	pgt_dvm_consolidation_lists(analysis->columns, &sel, &grp);
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH __pgt_d AS (SELECT * FROM (%s) AS __pgt_d0(%s, __pgt_w)), "
					 "__pgt_c AS (SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8 AS __pgt_w, "
					 "pg_catalog.row_number() OVER () AS __pgt_cid "
					 "FROM __pgt_d d GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0), ",
					 delta, cols, sel.data, grp.data);
	pgt_dvm_append_apply_consolidated(&sql, analysis, storage,
							  "(SELECT pg_catalog.count(*) FROM __pgt_d)", abandon,
							  abandon != NULL || per_row);
	return sql.data;
}

/*
 * consolidation_lists fills sel and grp, the select and GROUP BY lists
 * that consolidate weighted rows "d" per distinct row: values that are
 * equal but print differently stay different rows, and a type without
 * equality is grouped on its text form.
 */
void
pgt_dvm_consolidation_lists(List *columns, StringInfo sel, StringInfo grp)
{
	ListCell   *lc;
	bool		first = true;

	initStringInfo(sel);
	initStringInfo(grp);
	foreach(lc, columns)
	{
		PgtColumn  *col = lfirst(lc);
		TypeCacheEntry *tc = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR);
		const char *qn = quote_identifier(col->name);

		if (!first)
		{
			appendStringInfoString(sel, ", ");
			appendStringInfoString(grp, ", ");
		}
		first = false;
		if (OidIsValid(tc->eq_opr))
		{
			appendStringInfo(sel, "d.%s", qn);
			appendStringInfo(grp, "d.%s", qn);
			/* equal but differently printed values are different rows */
			if (!pgt_storage_equal_is_identity(col->typid, col->collation))
				appendStringInfo(grp, ", d.%s::pg_catalog.text", qn);
		}
		else
		{
			/* no equality: group on the text form, keep one value */
			appendStringInfo(sel, "(pg_catalog.min(d.%s::pg_catalog.text))::%s AS %s", qn,
							 format_type_extended(col->typid, col->typmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY), qn);
			appendStringInfo(grp, "d.%s::pg_catalog.text", qn);
		}
	}
}

/*
 * append_apply_consolidated finishes a statement whose CTE __pgt_c holds
 * consolidated weighted rows (columns, __pgt_w, __pgt_cid): it deletes |w|
 * stored copies of rows with w < 0, inserts w copies of rows with w > 0,
 * and returns rows deleted, rows inserted, third (an SQL expression) and
 * the number of copies it meant to delete.
 */
void
pgt_dvm_append_apply_consolidated(StringInfo sql, PgtAnalysis *analysis, const char *storage,
						  const char *third, const char *abandon, bool per_row)
{
	char	   *stored;

	char	   *expected = "(SELECT COALESCE(pg_catalog.sum(-__pgt_w), 0) FROM __pgt_c WHERE __pgt_w < 0)";

	/*
	 * The stored copies of a delta row, by its identity.  per_row: looked
	 * up row by row (OFFSET 0 keeps the lookup a parameterized index scan),
	 * for deltas whose size the planner cannot estimate.
	 */
	stored = psprintf("%s %s t%s " PGT_ROW_ID_COLUMN " = %s AND %s%s",
					  per_row ? "CROSS JOIN LATERAL (SELECT t.ctid FROM" : "JOIN",
					  storage, per_row ? " WHERE t." : " ON t.",
					  pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "c"),
					  pgt_dvm_recheck_sql(analysis->columns, "t", "c", true, false),
					  per_row ? " OFFSET 0) t" : "");

	/* a delta that gave up reports -1 expected deletions: recompute */
	if (abandon != NULL)
		expected = psprintf("CASE WHEN %s THEN -1 ELSE %s END", abandon, expected);

	appendStringInfo(sql,
					 "__pgt_del AS (DELETE FROM %s WHERE ctid = ANY (ARRAY("
					 "SELECT x.ctid FROM (SELECT t.ctid, -c.__pgt_w AS n, "
					 "pg_catalog.row_number() OVER (PARTITION BY c.__pgt_cid ORDER BY t.ctid) AS rn "
					 "FROM __pgt_c c %s "
					 "WHERE c.__pgt_w < 0) x WHERE x.rn <= x.n)) RETURNING 1), ",
					 storage, stored);
	appendStringInfo(sql,
					 "__pgt_ins AS (INSERT INTO %s (%s, " PGT_ROW_ID_COLUMN ") "
					 "SELECT %s, %s FROM __pgt_c c CROSS JOIN LATERAL "
					 "pg_catalog.generate_series(1::pg_catalog.int8, c.__pgt_w) "
					 "WHERE c.__pgt_w > 0 RETURNING 1) "
					 "SELECT (SELECT pg_catalog.count(*) FROM __pgt_del), "
					 "(SELECT pg_catalog.count(*) FROM __pgt_ins), "
					 "%s, %s",
					 storage, pgt_dvm_col_list(analysis->columns, "", false),
					 pgt_dvm_col_list(analysis->columns, "c.", false),
					 pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "c"),
					 third, expected);
}

/*
 * keyed_parts returns the SQL of the group keys touched by the delta of
 * q's FROM/WHERE part (columns: the keys, __pgt_w; NULL if nothing
 * changed) and of q restricted to the keys of a CTE named __pgt_k, and
 * the key target entries.
 */
void
pgt_dvm_keyed_parts(Query *q, DvmContext *ctx, char **delta_out, char **recompute_out,
			List **keytles_out)
{
	Query	   *child;
	Query	   *restricted;
	char	   *delta;
	List	   *keytles = NIL;
	ListCell   *lc;
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
	}

	if (q->setOperations != NULL)
	{
		/* UNION: keys are whole rows; the delta of UNION ALL gives them */
		delta = pgt_dvm_setop_delta(q, ctx);
		recompute = psprintf("SELECT r0.* FROM (%s) AS r0 WHERE EXISTS (SELECT 1 FROM __pgt_k k WHERE %s)",
							 pgt_dvm_deparse(q), pgt_dvm_recheck_sql(ctx->columns, "r0", "k", false, false));
	}
	else
	{
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
		delta = pgt_dvm_spj_delta(child, ctx);

		/* the query restricted to the touched keys */
		restricted = copyObject(q);
		{
			List	   *exprs = NIL;
			List	   *names = NIL;

			foreach(lc, keytles)
			{
				exprs = lappend(exprs, ((TargetEntry *) lfirst(lc))->expr);
				names = lappend(names, ((TargetEntry *) lfirst(lc))->resname);
			}
			pgt_dvm_restrict_to_keys(restricted, exprs, names);
		}
		restricted->sortClause = NIL;
		recompute = pgt_dvm_deparse(restricted);
	}

	*delta_out = delta;
	*recompute_out = recompute;
	*keytles_out = keytles;
}

/*
 * restrict_to_keys joins q with the CTE __pgt_k, whose columns (names)
 * have the types of exprs, on exprs matching those columns by the type's
 * equality: "=" where the expression cannot be NULL (indexes apply), IS
 * NOT DISTINCT FROM otherwise (pgt_make_equal).
 */
void
pgt_dvm_restrict_to_keys(Query *q, List *exprs, List *names)
{
	RangeTblEntry *krte = makeNode(RangeTblEntry);
	RangeTblRef *rtr = makeNode(RangeTblRef);
	List	   *cn = NIL;
	List	   *quals = NIL;
	Index		krti;
	ListCell   *lc;
	int			i = 0;

	krte->rtekind = RTE_CTE;
	krte->ctename = pstrdup("__pgt_k");
	krte->ctelevelsup = 0;
	krte->inFromCl = true;
	krte->alias = makeAlias("__pgt_k", NIL);
	foreach(lc, exprs)
	{
		Node	   *e = lfirst(lc);

		cn = lappend(cn, makeString(pstrdup(list_nth(names, foreach_current_index(lc)))));
		krte->coltypes = lappend_oid(krte->coltypes, exprType(e));
		krte->coltypmods = lappend_int(krte->coltypmods, exprTypmod(e));
		krte->colcollations = lappend_oid(krte->colcollations, exprCollation(e));
	}
	krte->eref = makeAlias("__pgt_k", cn);
	q->rtable = lappend(q->rtable, krte);
	krti = list_length(q->rtable);
	rtr->rtindex = krti;
	q->jointree->fromlist = lappend(q->jointree->fromlist, rtr);

	foreach(lc, exprs)
	{
		Expr	   *e = copyObject(lfirst(lc));
		Oid			typ = exprType((Node *) e);
		Var		   *kv = makeVar(krti, ++i, typ, exprTypmod((Node *) e),
								 exprCollation((Node *) e), 0);
		Oid			eqop = pgt_type_eq_opr(typ);

		if (!OidIsValid(eqop))
			elog(ERROR, "no equality operator for key type %s", format_type_be(typ));
		quals = lappend(quals,
						pgt_make_equal(e, (Expr *) kv, eqop, exprCollation((Node *) e),
									   !pgt_dvm_expr_is_not_null(q, (Node *) e)));
	}
	if (q->jointree->quals != NULL)
		quals = lcons(q->jointree->quals, quals);
	q->jointree->quals = (Node *) make_ands_explicit(quals);
}

/*
 * keyed_apply_sql: MERGE the recomputed touched groups into storage
 * (update, insert, or delete a group that vanished).
 */
char *
pgt_dvm_keyed_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage,
				DvmContext *ctx)
{
	StringInfoData sql;
	char	   *delta;
	List	   *keytles;
	ListCell   *lc;
	StringInfoData kcols;
	StringInfoData ucols;
	StringInfoData on;
	StringInfoData set;
	int			n;
	char	   *recompute;

	ctx->columns = analysis->columns;
	pgt_dvm_keyed_parts(q, ctx, &delta, &recompute, &keytles);
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
			appendStringInfoString(&on, " AND ");
			if (OidIsValid(pgt_type_eq_opr(col->typid)))
				pgt_append_equal(&on, psprintf("s.%s", qn), psprintf("u.__pgt_k%d", n),
								 pgt_type_eq_opr(col->typid), true);
			else
				appendStringInfo(&on, "s.%s::pg_catalog.text IS NOT DISTINCT FROM u.__pgt_k%d::pg_catalog.text",
								 qn, n);
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
					 kcols.data, delta, pgt_dvm_col_list(analysis->columns, "", q->groupClause != NIL),
					 recompute, storage, ucols.data,
					 pgt_storage_row_id_expr(analysis->columns,
											 q->groupClause != NIL ? PGT_IDENTITY_GROUP_KEY :
											 PGT_IDENTITY_ALL_COLUMNS, "k"),
					 pgt_dvm_recheck_sql(analysis->columns, "r", "k", false, q->groupClause != NIL),
					 on.data, set.data,
					 pgt_dvm_col_list(analysis->columns, "", false),
					 pgt_dvm_col_list(analysis->columns, "u.", false));
	return sql.data;
}

/* singleton_apply_sql: replace the one row by a fresh run of the query */
char *
pgt_dvm_singleton_apply_sql(Query *q, PgtAnalysis *analysis, const char *storage)
{
	const char *cols = pgt_dvm_col_list(analysis->columns, "", false);

	return psprintf("WITH __pgt_del AS (DELETE FROM %s RETURNING 1), "
					"__pgt_ins AS (INSERT INTO %s (%s, " PGT_ROW_ID_COLUMN ") "
					"SELECT r.*, 0 FROM (%s) AS r(%s) RETURNING 1) "
					"SELECT (SELECT pg_catalog.count(*) FROM __pgt_del), "
					"(SELECT pg_catalog.count(*) FROM __pgt_ins), 1::pg_catalog.int8, "
					"0::pg_catalog.int8",
					storage, storage, cols, pgt_dvm_deparse(q), cols);
}

/*
 * expr_is_not_null is true when expr is a plain column of a base table
 * declared NOT NULL, reached through inner joins only.
 */
bool
pgt_dvm_expr_is_not_null(Query *q, Node *expr)
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
		/* the column it stands for (a merged FULL JOIN column is no Var) */
		if (var->varattno > list_length(rte->joinaliasvars))
			return false;
		return pgt_dvm_expr_is_not_null(q, list_nth(rte->joinaliasvars, var->varattno - 1));
	}
	/* an outer join NULL-extends the rows of its nullable side */
	if (pgt_dvm_in_nullable_side((Node *) q->jointree, var->varno))
		return false;
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
const char *
pgt_dvm_col_list(List *columns, const char *prefix, bool keys_only)
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
 * IS NOT DISTINCT FROM by their type's equality (pgt_append_equal; types
 * without equality through their text form).
 * With exact, rows must also look the same (1.0 is not 1.00): a multiset
 * deletes the very row the delta removed.  Without, equality decides, as
 * it does for GROUP BY and DISTINCT keys.
 */
char *
pgt_dvm_recheck_sql(List *columns, const char *a, const char *b, bool exact, bool keys_only)
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
		{
			pgt_append_equal(&buf, psprintf("%s.%s", a, qn), psprintf("%s.%s", b, qn),
							 tc->eq_opr, true);
			if (exact && !pgt_storage_equal_is_identity(col->typid, col->collation))
				appendStringInfo(&buf, " AND %s.%s::pg_catalog.text IS NOT DISTINCT FROM %s.%s::pg_catalog.text",
								 a, qn, b, qn);
		}
		else
			appendStringInfo(&buf, "%s.%s::pg_catalog.text IS NOT DISTINCT FROM %s.%s::pg_catalog.text",
							 a, qn, b, qn);
	}
	if (buf.len == 0)
		appendStringInfoString(&buf, "true");
	return buf.data;
}

