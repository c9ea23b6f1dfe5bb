/*-------------------------------------------------------------------------
 *
 * recursive.c
 *	  WITH RECURSIVE: the delta of a recursive CTE whose rows are the stream
 *	  table's rows.
 *
 *	  A recursive CTE r = B UNION [ALL] F(r) is the least fixpoint of
 *	  r = B(S) + F(r, S), where B is the non-recursive term and F the
 *	  recursive one, a select-project-join block reading r once.  The
 *	  stream table holds r's rows (its query is SELECT r's columns FROM r),
 *	  so before a refresh applies anything, storage is r_old, the fixpoint
 *	  over the sources' pre-change states.  Two parts come from the
 *	  ordinary engine: dB, the delta of the non-recursive term, and
 *	  dF(r_old), the delta of the recursive term with r replaced by the
 *	  stored rows (an input that does not change).  Together they are D0.
 *
 *	  UNION ALL (counting).  F is linear in r, so
 *
 *	    r_new - r_old = D0 + F(r_new - r_old, S_new)
 *
 *	  and the delta is the fixpoint of that equation: a recursive CTE over
 *	  weighted rows, seeded by D0 and stepping through the recursive term
 *	  over the current sources, carrying each row's weight.  Its cost is
 *	  the part of the result downstream of the changes.  A removed row may
 *	  lead, through the new data, into a cycle that the query itself never
 *	  reaches (its deltas then cancel only in the limit, and over duplicate
 *	  rows they multiply with every iteration), so the iteration stops at
 *	  PGT_RECURSIVE_MAX_ITERATIONS, or once it has produced more rows than
 *	  a multiple of the stored rows plus its seed, and the statement
 *	  reports that it gave up; the refresh then recomputes the stream
 *	  table.
 *
 *	  UNION (sets): delete and rederive.
 *	    1. DEL: the stored rows that may have lost their last derivation:
 *	       the rows of D0 with a negative weight that are stored, closed
 *	       under F over the current sources, kept within the stored rows.
 *	       KEEP = stored rows - DEL is part of the new result.
 *	    2. Candidates: DEL and the rows of D0 with a positive weight.
 *	       Every new row outside KEEP that B or one step of F from KEEP
 *	       derives is a candidate, so the seeds are B and F(KEEP)
 *	       restricted to the candidates, minus KEEP.
 *	    3. NEW: the seeds closed under F over the current sources,
 *	       semi-naively, never entering KEEP.
 *	  The delta is NEW (+1) and DEL (-1).  Every set involved lies within
 *	  r_old or r_new, so the iterations end whenever the query's own does.
 *
 * IDENTIFICATION
 *	  src/dvm/recursive.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

#include "dvm_internal.h"

/*
 * Bounds of the counting delta, past which the refresh recomputes instead:
 * iterations, and rows produced (a floor, then a multiple of the stored
 * rows plus the delta's seed rows; see counting_delta).
 */
#define PGT_RECURSIVE_MAX_ITERATIONS 1000
#define PGT_RECURSIVE_ROWS_FLOOR 1000
#define PGT_RECURSIVE_ROWS_FACTOR 10

/*
 * The selectivity pgtrickle._estimate_few() claims.  The planner assumes a
 * recursive CTE yields about a hundred times the rows of its seed and
 * sizes the hash table of UNION from that at executor start-up: seeds
 * estimated from materialized CTEs (tens of thousands of rows, for a
 * handful) made every refresh zero hundreds of megabytes.
 */
#define PGT_FEW_SELECTIVITY 0.001

/* the stored rows, as the generated statement names them */
#define STORED "__pgt_stored"

static const char *shape_reason =
"WITH RECURSIVE is maintained differentially when the query returns the rows of one recursive CTE "
"(SELECT its columns FROM it, each at least once, with no WHERE, join, grouping or LIMIT at that level) "
"and the CTE is a non-recursive term UNION [ALL] one recursive term.";

static const char *split_parts(Query *q, PgtRecursive *rec);
static Query *standalone(Query *q);
static void infer_not_null(PgtRecursive *rec);
static bool known_not_null(Query *q, Node *expr);
static void collect_conjuncts(Node *node, List **out, bool *outer);
static char *step_lateral_sql(PgtRecursive *rec);
static char *replace_params(const char *sql, PgtRecursive *rec, const char *alias);
static Query *step_over_sql(PgtRecursive *rec, const char *sql);
static void self_to_subquery(RangeTblEntry *rte, Query *sub);
static const char *colname(PgtRecursive *rec, int i);
static char *few_sql(PgtRecursive *rec, const char *sql);
static char *cols(PgtRecursive *rec, const char *prefix);
static char *alias_list(PgtRecursive *rec);
static void append_col_equal(StringInfo buf, PgtRecursive *rec, int i, const char *a,
							 const char *b);
static char *match_sql(PgtRecursive *rec, const char *a, const char *b);
static char *storage_match_sql(PgtRecursive *rec, PgtAnalysis *analysis,
							   const char *storage, const char *prefix);
static char *keep_match_sql(PgtRecursive *rec, PgtAnalysis *analysis,
							const char *storage, const char *del, const char *prefix);
static char *dred_delta(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage,
						const char *d0);
static char *counting_delta(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage,
							const char *d0, char **abandon);

PG_FUNCTION_INFO_V1(pgt_estimate_few);
PG_FUNCTION_INFO_V1(pgt_estimate_few_support);

/*
 * pgtrickle._estimate_few(any) is true; its support function tells the
 * planner that it keeps few rows (PGT_FEW_SELECTIVITY), which is how the
 * seeds of the recursive parts of a delta get a modest row estimate.
 */
Datum
pgt_estimate_few(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(true);
}

Datum
pgt_estimate_few_support(PG_FUNCTION_ARGS)
{
	Node	   *req = (Node *) PG_GETARG_POINTER(0);

	if (IsA(req, SupportRequestSelectivity))
	{
		((SupportRequestSelectivity *) req)->selectivity = PGT_FEW_SELECTIVITY;
		PG_RETURN_POINTER(req);
	}
	PG_RETURN_POINTER(NULL);
}

/* few_sql: the rows of sql (CTE columns first), estimated as few */
static char *
few_sql(PgtRecursive *rec, const char *sql)
{
	return psprintf("SELECT * FROM (%s) AS __pgt_e WHERE pgtrickle._estimate_few(__pgt_e.%s)",
					sql, colname(rec, 0));
}

/*
 * pgt_dvm_recursive_split recognises the supported shape (see the file
 * header) in a prepared query and fills rec, or returns a reason.
 */
const char *
pgt_dvm_recursive_split(Query *q, PgtRecursive *rec)
{
	const char *reason = split_parts(q, rec);

	if (reason == NULL)
		infer_not_null(rec);
	return reason;
}

static const char *
split_parts(Query *q, PgtRecursive *rec)
{
	CommonTableExpr *cte;
	RangeTblRef *rtr;
	RangeTblEntry *rte;
	Query	   *cq;
	SetOperationStmt *op;
	Index		rarg;
	ListCell   *lc;
	int			pos = 0;

	memset(rec, 0, sizeof(*rec));
	if (list_length(q->cteList) != 1)
		return shape_reason;
	cte = linitial_node(CommonTableExpr, q->cteList);
	if (!cte->cterecursive || q->jointree == NULL ||
		list_length(q->jointree->fromlist) != 1 || q->jointree->quals != NULL ||
		!IsA(linitial(q->jointree->fromlist), RangeTblRef) ||
		q->hasAggs || q->groupClause != NIL || q->havingQual != NULL ||
		q->distinctClause != NIL || q->hasWindowFuncs || q->hasTargetSRFs ||
		q->limitCount != NULL || q->limitOffset != NULL ||
		q->setOperations != NULL || q->hasSubLinks || q->groupingSets != NIL)
		return shape_reason;
	rtr = linitial_node(RangeTblRef, q->jointree->fromlist);
	rte = rt_fetch(rtr->rtindex, q->rtable);
	if (rte->rtekind != RTE_CTE || rte->ctelevelsup != 0 ||
		strcmp(rte->ctename, cte->ctename) != 0)
		return shape_reason;

	rec->ncols = list_length(cte->ctecolnames);
	rec->colnames = cte->ctecolnames;
	rec->coltypes = cte->ctecoltypes;
	rec->outcol = palloc(sizeof(int) * rec->ncols);
	for (int i = 0; i < rec->ncols; i++)
		rec->outcol[i] = -1;
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		Var		   *var = (Var *) tle->expr;

		if (tle->resjunk)
			continue;
		if (!IsA(var, Var) || var->varno != rtr->rtindex || var->varlevelsup != 0 ||
			var->varattno < 1 || var->varattno > rec->ncols)
			return shape_reason;
		if (rec->outcol[var->varattno - 1] < 0)
			rec->outcol[var->varattno - 1] = pos;
		rec->stcol = lappend_int(rec->stcol, var->varattno - 1);
		pos++;
	}
	for (int i = 0; i < rec->ncols; i++)
		if (rec->outcol[i] < 0)
			return shape_reason;

	cq = castNode(Query, cte->ctequery);
	op = (SetOperationStmt *) cq->setOperations;
	if (op == NULL || !IsA(op, SetOperationStmt) || op->op != SETOP_UNION ||
		!IsA(op->rarg, RangeTblRef))
		return shape_reason;
	rec->all = op->all;
	rarg = ((RangeTblRef *) op->rarg)->rtindex;

	/* the recursive term, and its one reference to the CTE */
	rec->step = copyObject(rt_fetch(rarg, cq->rtable)->subquery);
	foreach(lc, rec->step->rtable)
	{
		RangeTblEntry *s = lfirst(lc);

		if (s->rtekind == RTE_CTE && s->self_reference)
			rec->self = foreach_current_index(lc) + 1;
	}
	if (rec->self == 0)
		return "The recursive term of WITH RECURSIVE must read the CTE in its own FROM list for the differential engine.";
	if (rec->step->hasAggs || rec->step->groupClause != NIL ||
		rec->step->distinctClause != NIL || rec->step->hasWindowFuncs ||
		rec->step->hasTargetSRFs || rec->step->limitCount != NULL ||
		rec->step->limitOffset != NULL || rec->step->setOperations != NULL ||
		rec->step->groupingSets != NIL || rec->step->cteList != NIL)
		return "The recursive term of WITH RECURSIVE must be a plain SELECT ... FROM ... WHERE block for the differential engine.";
	rec->step = standalone(rec->step);

	/* the non-recursive term: one SELECT, or the set operation left of F */
	if (IsA(op->larg, RangeTblRef))
		rec->base = standalone(copyObject(rt_fetch(((RangeTblRef *) op->larg)->rtindex,
												   cq->rtable)->subquery));
	else
	{
		Query	   *b = copyObject(cq);

		if (rarg != (Index) list_length(cq->rtable))
			return shape_reason;
		b->rtable = list_truncate(b->rtable, list_length(b->rtable) - 1);
		b->setOperations = op->larg;
		/* as a derived table, so that the engine sees an ordinary query */
		rec->base = pgt_dvm_parse_sql(psprintf("SELECT * FROM (%s) AS __pgt_base",
											   pgt_dvm_deparse(standalone(b))));
	}
	rec->base = pgt_dvm_prepare_query(rec->base);
	return NULL;
}

/* a copy of a subquery fit to be prepared and deparsed on its own */
static Query *
standalone(Query *q)
{
	q->canSetTag = true;
	q->querySource = QSRC_ORIGINAL;
	return q;
}

/*
 * infer_not_null: a CTE column is NOT NULL when the non-recursive term's
 * column is a NOT NULL base column and the recursive term's is one too, or
 * a NOT NULL column of the CTE itself.  Matching on such columns uses =,
 * which indexes and hash joins can serve.
 */
static void
infer_not_null(PgtRecursive *rec)
{
	bool		changed = true;
	List	   *btl = NIL;
	List	   *stl = NIL;
	ListCell   *lc;

	foreach(lc, rec->base->targetList)
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			btl = lappend(btl, lfirst(lc));
	foreach(lc, rec->step->targetList)
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			stl = lappend(stl, lfirst(lc));
	rec->notnull = palloc0(sizeof(bool) * rec->ncols);
	for (int i = 0; i < rec->ncols && i < list_length(btl); i++)
		rec->notnull[i] = known_not_null(rec->base,
										 (Node *) ((TargetEntry *) list_nth(btl, i))->expr);
	while (changed)
	{
		changed = false;
		for (int i = 0; i < rec->ncols; i++)
		{
			Node	   *e;
			bool		nn;

			if (!rec->notnull[i])
				continue;
			if (i >= list_length(stl))
				nn = false;
			else
			{
				e = (Node *) ((TargetEntry *) list_nth(stl, i))->expr;
				while (IsA(e, RelabelType))
					e = (Node *) ((RelabelType *) e)->arg;
				if (IsA(e, Var) && ((Var *) e)->varno == rec->self &&
					((Var *) e)->varlevelsup == 0)
					nn = (((Var *) e)->varattno >= 1 && ((Var *) e)->varattno <= rec->ncols &&
						  rec->notnull[((Var *) e)->varattno - 1]) ||
						known_not_null(rec->step, e);
				else
					nn = known_not_null(rec->step, e);
			}
			if (!nn)
			{
				rec->notnull[i] = false;
				changed = true;
			}
		}
	}
}

/*
 * known_not_null: expr is a NOT NULL column (pgt_dvm_expr_is_not_null), or
 * a WHERE conjunct (or, without outer joins, an inner join condition)
 * says it is not NULL, or compares it with a strict operator.
 */
static bool
known_not_null(Query *q, Node *expr)
{
	List	   *conjuncts = NIL;
	bool		outer = false;
	ListCell   *lc;

	while (IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (pgt_dvm_expr_is_not_null(q, expr))
		return true;
	if (q->jointree == NULL)
		return false;
	collect_conjuncts(q->jointree->quals, &conjuncts, NULL);
	{
		List	   *joinquals = NIL;
		ListCell   *lc2;

		foreach(lc2, q->jointree->fromlist)
			collect_conjuncts(lfirst(lc2), &joinquals, &outer);
		if (!outer)
			conjuncts = list_concat(conjuncts, joinquals);
	}
	foreach(lc, conjuncts)
	{
		Node	   *c = lfirst(lc);

		if (IsA(c, NullTest) && ((NullTest *) c)->nulltesttype == IS_NOT_NULL &&
			!((NullTest *) c)->argisrow &&
			equal(strip_implicit_coercions((Node *) ((NullTest *) c)->arg), expr))
			return true;
		if (IsA(c, OpExpr) && func_strict(((OpExpr *) c)->opfuncid))
		{
			ListCell   *lc2;

			foreach(lc2, ((OpExpr *) c)->args)
				if (equal(strip_implicit_coercions(lfirst(lc2)), expr))
					return true;
		}
	}
	return false;
}

/*
 * collect_conjuncts appends the AND-ed parts of a qual, or (for a join
 * tree node, with outer non-NULL) of its inner joins' conditions, noting
 * in *outer whether an outer join was met.
 */
static void
collect_conjuncts(Node *node, List **out, bool *outer)
{
	if (node == NULL)
		return;
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		if (j->jointype != JOIN_INNER)
			*outer = true;
		collect_conjuncts(j->larg, out, outer);
		collect_conjuncts(j->rarg, out, outer);
		collect_conjuncts(j->quals, out, NULL);
		return;
	}
	if (IsA(node, RangeTblRef) || IsA(node, FromExpr))
		return;
	if (outer != NULL)
		return;
	if (is_andclause(node))
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) node)->args)
			collect_conjuncts(lfirst(lc), out, NULL);
		return;
	}
	*out = lappend(*out, node);
}

/*
 * pgt_dvm_recursive_step_for_blocker returns the recursive term with its
 * CTE reference replaced by a relation of the CTE's columns, prepared:
 * what the engine differentiates (over the stored rows) at refresh time.
 */
Query *
pgt_dvm_recursive_step_for_blocker(PgtRecursive *rec)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < rec->ncols; i++)
		appendStringInfo(&sql, "%sNULL::%s AS %s", i > 0 ? ", " : "",
						 format_type_be_qualified(list_nth_oid(rec->coltypes, i)),
						 colname(rec, i));
	appendStringInfoString(&sql, " WHERE false");
	return pgt_dvm_prepare_query(step_over_sql(rec, sql.data));
}

/*
 * pgt_dvm_recursive_full_sql returns, for a query whose rows are those of
 * a recursive CTE with UNION ALL (the shape of the file header), the query
 * computed with a guard against endless recursion, or NULL for any other
 * query.  A UNION ALL recursion over a cycle in the data never ends in
 * PostgreSQL either: it produces rows until the temporary space runs out.
 * Each row here carries a checkpoint of its derivation (the text of an
 * ancestor's row, moved to the row itself at iterations 1, 2, 4, 8, ...:
 * Brent's cycle detection); a row equal to its checkpoint was derived from
 * itself, so the recursion would never end, and pgtrickle._recursion_cycle()
 * raises an error naming stname.  A derivation that repeats with period p
 * after d steps is caught within about 2 * max(d, p) + p iterations; one
 * that never repeats (a counter without a bound) is not.
 */
char *
pgt_dvm_recursive_full_sql(Query *query, PgtAnalysis *analysis, const char *stname)
{
	PgtRecursive rec;
	Query	   *q;
	StringInfoData sql;
	ListCell   *lc;

	if (analysis->agg_layout != NULL || !query->hasRecursive)
		return NULL;
	pgt_dvm_gen_reset_size();
	q = pgt_dvm_prepare_query(query);
	if (pgt_dvm_recursive_split(q, &rec) != NULL || !rec.all)
		return NULL;
	rec.stcolumns = analysis->columns;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH RECURSIVE __pgt_f(%s, __pgt_it, __pgt_k, __pgt_cyc) AS ("
					 "SELECT __pgt_b.*, 0, (ROW(%s))::pg_catalog.text, false "
					 "FROM (%s) AS __pgt_b(%s) "
					 "UNION ALL SELECT __pgt_x.*, __pgt_rw.__pgt_it + 1, "
					 "CASE WHEN ((__pgt_rw.__pgt_it + 1) & __pgt_rw.__pgt_it) = 0 "
					 "THEN (ROW(%s))::pg_catalog.text ELSE __pgt_rw.__pgt_k END, "
					 "(ROW(%s))::pg_catalog.text = __pgt_rw.__pgt_k "
					 "FROM __pgt_f AS __pgt_rw %s WHERE NOT __pgt_rw.__pgt_cyc) "
					 "SELECT ",
					 alias_list(&rec), cols(&rec, "__pgt_b."), pgt_dvm_deparse(rec.base),
					 alias_list(&rec), cols(&rec, "__pgt_x."), cols(&rec, "__pgt_x."),
					 step_lateral_sql(&rec));
	foreach(lc, rec.stcol)
		appendStringInfo(&sql, "%sf.%s", foreach_current_index(lc) > 0 ? ", " : "",
						 colname(&rec, lfirst_int(lc)));
	appendStringInfo(&sql, " FROM __pgt_f AS f WHERE NOT f.__pgt_cyc "
					 "OR pgtrickle._recursion_cycle(%s)",
					 quote_literal_cstr(stname));
	return sql.data;
}

/*
 * pgtrickle._recursion_cycle(stream table) raises the error that ends a
 * recursion found to derive a row from itself (see
 * pgt_dvm_recursive_full_sql).
 */
PG_FUNCTION_INFO_V1(pgt_recursion_cycle);

Datum
pgt_recursion_cycle(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("recursive query of stream table \"%s\" does not terminate",
					PG_ARGISNULL(0) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(0))),
			 errdetail("Its WITH RECURSIVE ... UNION ALL derives a row from itself (a cycle in the data), so it would produce rows without end."),
			 errhint("Remove the cycle from the data, or use UNION, which stops at rows already found.")));
	PG_RETURN_BOOL(false);
}

/*
 * pgt_dvm_recursive_delta returns the delta of the stream table (its
 * columns, then __pgt_w), or NULL when no source changed.  *abandon is set
 * to a boolean SQL expression that is true when the delta gave up (the
 * refresh must then recompute), or NULL.
 */
char *
pgt_dvm_recursive_delta(Query *q, PgtAnalysis *analysis, const char *storage,
						DvmContext *ctx, char **abandon)
{
	PgtRecursive rec;
	const char *reason = pgt_dvm_recursive_split(q, &rec);
	StringInfoData stored;
	StringInfoData d0;
	StringInfoData out;
	char	   *db;
	char	   *df;
	char	   *delta;
	ListCell   *lc;

	*abandon = NULL;
	if (reason != NULL)
		elog(ERROR, "recursive query shape changed: %s", reason);
	rec.stcolumns = analysis->columns;

	/*
	 * The stored rows are read through __pgt_stored, a NOT MATERIALIZED
	 * CTE over storage (named, so that the fragments parse without it).
	 */
	{
		TupleDesc	desc = CreateTemplateTupleDesc(list_length(analysis->columns) + 1);
		int			n = 0;

		foreach(lc, analysis->columns)
		{
			PgtColumn  *col = lfirst(lc);

			n++;
			TupleDescInitEntry(desc, n, col->name, col->typid, col->typmod, 0);
			TupleDescInitEntryCollation(desc, n, col->collation);
		}
		TupleDescInitEntry(desc, n + 1, PGT_ROW_ID_COLUMN, INT8OID, -1, 0);
		pgt_dvm_inline_part(STORED, desc,
							psprintf("SELECT %s, " PGT_ROW_ID_COLUMN " FROM %s",
									 pgt_dvm_col_list(analysis->columns, "", false), storage));
	}
	storage = STORED;

	/* r_old: the stored rows under the CTE's column names */
	initStringInfo(&stored);
	appendStringInfoString(&stored, "SELECT ");
	for (int i = 0; i < rec.ncols; i++)
		appendStringInfo(&stored, "%ss.%s AS %s", i > 0 ? ", " : "",
						 quote_identifier(((PgtColumn *) list_nth(analysis->columns,
																  rec.outcol[i]))->name),
						 colname(&rec, i));
	appendStringInfo(&stored, " FROM %s AS s", storage);

	db = pgt_dvm_any_delta(rec.base, ctx);
	df = pgt_dvm_any_delta(pgt_dvm_prepare_query(step_over_sql(&rec, stored.data)), ctx);
	if (db == NULL && df == NULL)
		return NULL;
	initStringInfo(&d0);
	if (db != NULL)
		appendStringInfo(&d0, "SELECT * FROM (%s) AS __pgt_db(%s, __pgt_w)", db, alias_list(&rec));
	if (df != NULL)
		appendStringInfo(&d0, "%sSELECT * FROM (%s) AS __pgt_df(%s, __pgt_w)",
						 d0.len > 0 ? " UNION ALL " : "", df, alias_list(&rec));
	delta = pgt_dvm_share_part_named(d0.data);

	if (rec.all)
		delta = counting_delta(&rec, analysis, storage, delta, abandon);
	else
		delta = dred_delta(&rec, analysis, storage, delta);

	/* the stream table's columns from the CTE's */
	initStringInfo(&out);
	appendStringInfoString(&out, "SELECT ");
	foreach(lc, rec.stcol)
		appendStringInfo(&out, "x.%s AS %s, ", colname(&rec, lfirst_int(lc)),
						 quote_identifier(((PgtColumn *) list_nth(analysis->columns,
																  foreach_current_index(lc)))->name));
	appendStringInfo(&out, "x.__pgt_w FROM (%s) AS x", delta);
	return out.data;
}

/*
 * UNION ALL: the fixpoint of dr = D0 + F(dr) over weighted rows.
 *
 * Every row carries its iteration, the number of seed rows (__pgt_n0) and
 * the number of rows produced up to and including its iteration
 * (__pgt_tot, the same for all rows of one iteration).  Rows are followed
 * while that count stays within the size bound: at most
 * PGT_RECURSIVE_ROWS_FLOOR rows, or else PGT_RECURSIVE_ROWS_FACTOR times
 * the stored rows plus the seed rows (the stored rows are counted only
 * once the floor is passed).  A delta that converges is the difference of
 * two results, so it stays near their size; one over a cycle that only
 * cancels in the limit grows with every iteration, exponentially over
 * duplicate rows, and without the bound filled the temporary space before
 * the iteration cap was reached.  Passing either bound makes *abandon
 * true: the refresh recomputes instead.  The last iteration followed may
 * produce up to its fan-out times the bound.
 */
static char *
counting_delta(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage,
			   const char *d0, char **abandon)
{
	StringInfoData seed;
	StringInfoData rd;
	bool		consolidate = true;
	char	   *name;
	const char *within;

	/* rows that cancel in D0 need not be followed */
	for (int i = 0; i < rec->ncols; i++)
	{
		TypeCacheEntry *tc = lookup_type_cache(list_nth_oid(rec->coltypes, i),
											   TYPECACHE_EQ_OPR | TYPECACHE_HASH_PROC |
											   TYPECACHE_LT_OPR);

		if (!OidIsValid(tc->eq_opr) || (!OidIsValid(tc->hash_proc) && !OidIsValid(tc->lt_opr)))
			consolidate = false;
	}
	initStringInfo(&seed);
	if (consolidate)
		appendStringInfo(&seed,
						 "SELECT %s, pg_catalog.sum(d.__pgt_w)::pg_catalog.int8, 0, "
						 "pg_catalog.count(*) OVER (), pg_catalog.count(*) OVER () "
						 "FROM (%s) AS d GROUP BY %s HAVING pg_catalog.sum(d.__pgt_w) <> 0",
						 cols(rec, "d."), d0, cols(rec, "d."));
	else
		appendStringInfo(&seed,
						 "SELECT %s, d.__pgt_w, 0, pg_catalog.count(*) OVER (), "
						 "pg_catalog.count(*) OVER () FROM (%s) AS d",
						 cols(rec, "d."), d0);

	/* %1$s: the alias of a row of __pgt_rd */
	within = psprintf("(%%1$s.__pgt_tot <= %d OR %%1$s.__pgt_tot <= %d * "
					  "((SELECT pg_catalog.count(*) FROM %s) + %%1$s.__pgt_n0))",
					  PGT_RECURSIVE_ROWS_FLOOR, PGT_RECURSIVE_ROWS_FACTOR, storage);

	initStringInfo(&rd);
	appendStringInfo(&rd,
					 "WITH RECURSIVE __pgt_rd(%s, __pgt_w, __pgt_it, __pgt_n0, __pgt_tot) AS (%s "
					 "UNION ALL SELECT __pgt_s.* FROM ("
					 "SELECT __pgt_x.*, __pgt_rw.__pgt_w, __pgt_rw.__pgt_it + 1, __pgt_rw.__pgt_n0, "
					 "pg_catalog.max(__pgt_rw.__pgt_tot) OVER () + pg_catalog.count(*) OVER () "
					 "FROM __pgt_rd AS __pgt_rw %s WHERE __pgt_rw.__pgt_it < %d AND ",
					 alias_list(rec), few_sql(rec, seed.data), step_lateral_sql(rec),
					 PGT_RECURSIVE_MAX_ITERATIONS);
	appendStringInfo(&rd, within, "__pgt_rw");
	appendStringInfoString(&rd, ") AS __pgt_s) SELECT * FROM __pgt_rd");
	name = pgt_dvm_share_part_named(rd.data);
	*abandon = psprintf("EXISTS (SELECT 1 FROM (%s) AS __pgt_cap WHERE __pgt_cap.__pgt_it >= %d "
						"OR NOT %s)",
						name, PGT_RECURSIVE_MAX_ITERATIONS, psprintf(within, "__pgt_cap"));
	(void) analysis;
	return psprintf("SELECT %s, r.__pgt_w FROM (%s) AS r", cols(rec, "r."), name);
}

/* UNION: delete and rederive (see the file header) */
static char *
dred_delta(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage, const char *d0)
{
	StringInfoData sql;
	char	   *del;
	char	   *cand;
	char	   *newrows;

	/* 1. DEL, within the stored rows */
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH RECURSIVE __pgt_rd(%s) AS (%s "
					 "UNION SELECT __pgt_x.* FROM __pgt_rd AS __pgt_rw %s WHERE EXISTS (%s)) "
					 "SELECT * FROM __pgt_rd",
					 alias_list(rec),
					 few_sql(rec, psprintf("SELECT DISTINCT %s FROM (%s) AS d WHERE d.__pgt_w < 0 AND EXISTS (%s)",
										   cols(rec, "d."), d0,
										   storage_match_sql(rec, analysis, storage, "d."))),
					 step_lateral_sql(rec),
					 storage_match_sql(rec, analysis, storage, "__pgt_x."));
	del = pgt_dvm_share_part_named(sql.data);

	/* 2. candidates, and the seeds: B and F(KEEP) among them, minus KEEP */
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT %s FROM (%s) AS x WHERE x.__pgt_w > 0 UNION SELECT %s FROM (%s) AS x",
					 cols(rec, "x."), d0, cols(rec, "x."), del);
	cand = pgt_dvm_share_part_named(sql.data);
	{
		StringInfoData keep;
		StringInfoData seeds;

		initStringInfo(&keep);
		appendStringInfoString(&keep, "SELECT ");
		for (int i = 0; i < rec->ncols; i++)
			appendStringInfo(&keep, "%ss.%s AS %s", i > 0 ? ", " : "",
							 quote_identifier(((PgtColumn *) list_nth(analysis->columns,
																	  rec->outcol[i]))->name),
							 colname(rec, i));
		appendStringInfo(&keep, " FROM %s AS s WHERE NOT EXISTS (SELECT 1 FROM (%s) AS dl WHERE ",
						 storage, del);
		for (int i = 0; i < rec->ncols; i++)
		{
			if (i > 0)
				appendStringInfoString(&keep, " AND ");
			append_col_equal(&keep, rec, i, psprintf("dl.%s", colname(rec, i)),
							 psprintf("s.%s",
									  quote_identifier(((PgtColumn *) list_nth(analysis->columns,
																			   rec->outcol[i]))->name)));
		}
		appendStringInfoChar(&keep, ')');

		/*
		 * Without DEL, KEEP is all stored rows and the rows D0 adds are
		 * derived from them or from B: they are the seeds (outside
		 * KEEP).  Otherwise each candidate is looked up in B and in
		 * F(KEEP) on its own (OFFSET 0 keeps the lookup a parameterized
		 * nested loop: the candidates are few, the relations large).
		 */
		initStringInfo(&seeds);
		appendStringInfo(&seeds,
						 "SELECT * FROM (SELECT %s FROM (%s) AS x GROUP BY %s "
						 "HAVING pg_catalog.sum(x.__pgt_w) > 0) AS x "
						 "WHERE NOT EXISTS (SELECT 1 FROM (%s) AS dl) AND NOT EXISTS (%s) "
						 "UNION SELECT * FROM (SELECT b.* FROM (%s) AS k CROSS JOIN LATERAL "
						 "(SELECT * FROM (%s) AS b(%s) WHERE %s OFFSET 0) AS b "
						 "UNION SELECT f.* FROM (%s) AS k CROSS JOIN LATERAL "
						 "(SELECT * FROM (%s) AS f(%s) WHERE %s OFFSET 0) AS f) AS x "
						 "WHERE EXISTS (SELECT 1 FROM (%s) AS dl) AND NOT EXISTS (%s)",
						 cols(rec, "x."), d0, cols(rec, "x."), del,
						 storage_match_sql(rec, analysis, storage, "x."),
						 cand, pgt_dvm_deparse(rec->base), alias_list(rec),
						 match_sql(rec, "b", "k"),
						 cand, pgt_dvm_deparse(step_over_sql(rec, keep.data)), alias_list(rec),
						 match_sql(rec, "f", "k"),
						 del, keep_match_sql(rec, analysis, storage, del, "x."));

		/* 3. NEW: semi-naive from the seeds, never entering KEEP */
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "WITH RECURSIVE __pgt_ri(%s) AS (%s UNION SELECT __pgt_x.* "
						 "FROM __pgt_ri AS __pgt_rw %s WHERE NOT EXISTS (%s)) SELECT * FROM __pgt_ri",
						 alias_list(rec), few_sql(rec, seeds.data), step_lateral_sql(rec),
						 keep_match_sql(rec, analysis, storage, del, "__pgt_x."));
		newrows = pgt_dvm_share_part_named(sql.data);
	}

	return psprintf("SELECT %s, 1::pg_catalog.int8 AS __pgt_w FROM (%s) AS n "
					"UNION ALL SELECT %s, -1::pg_catalog.int8 FROM (%s) AS d",
					cols(rec, "n."), newrows, cols(rec, "d."), del);
}

/* keep_match_sql: storage_match_sql, for rows in KEEP (not in DEL) */
static char *
keep_match_sql(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage,
			   const char *del, const char *prefix)
{
	return psprintf("%s WHERE NOT EXISTS (SELECT 1 FROM (%s) AS dl WHERE %s)",
					storage_match_sql(rec, analysis, storage, prefix), del,
					match_sql(rec, "dl", "__pgt_p"));
}

/*
 * storage_match_sql: "SELECT 1 FROM (values of a row of r) __pgt_p JOIN
 * storage ON the row's identity", where the values are prefix followed by
 * each CTE column's name, or with prefix "$" the parameters $2, $3, ...
 */
static char *
storage_match_sql(PgtRecursive *rec, PgtAnalysis *analysis, const char *storage,
				  const char *prefix)
{
	StringInfoData p;
	ListCell   *lc;

	initStringInfo(&p);
	foreach(lc, rec->stcol)
	{
		int			i = lfirst_int(lc);
		PgtColumn  *col = list_nth(analysis->columns, foreach_current_index(lc));

		if (p.len > 0)
			appendStringInfoString(&p, ", ");
		if (strcmp(prefix, "$") == 0)
			appendStringInfo(&p, "$%d AS %s", i + 2, quote_identifier(col->name));
		else
			appendStringInfo(&p, "%s%s AS %s", prefix, colname(rec, i),
							 quote_identifier(col->name));
	}
	return psprintf("SELECT 1 FROM (SELECT %s) AS __pgt_p JOIN %s AS __pgt_st ON __pgt_st."
					PGT_ROW_ID_COLUMN " = %s AND %s",
					p.data, storage,
					pgt_storage_row_id_expr(analysis->columns, PGT_IDENTITY_ALL_COLUMNS, "__pgt_p"),
					pgt_dvm_recheck_sql(analysis->columns, "__pgt_st", "__pgt_p", false, false));
}

/*
 * append_col_equal appends "a = b" for column i of the recursive CTE, by
 * its type's equality, matching NULLs unless the column cannot be NULL (a
 * type without equality is compared by its text form).
 */
static void
append_col_equal(StringInfo buf, PgtRecursive *rec, int i, const char *a, const char *b)
{
	Oid			eqop = pgt_type_eq_opr(list_nth_oid(rec->coltypes, i));

	if (OidIsValid(eqop))
		pgt_append_equal(buf, a, b, eqop, !rec->notnull[i]);
	else
		appendStringInfo(buf, "%s::pg_catalog.text IS NOT DISTINCT FROM %s::pg_catalog.text",
						 a, b);
}

/*
 * match_sql: a (CTE columns) equals b, where b is "__pgt_p" (stream table
 * column names) or another relation with the CTE's column names.
 */
static char *
match_sql(PgtRecursive *rec, const char *a, const char *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < rec->ncols; i++)
	{
		const char *bc = colname(rec, i);

		if (strcmp(b, "__pgt_p") == 0)
			bc = quote_identifier(((PgtColumn *) list_nth(rec->stcolumns,
														  rec->outcol[i]))->name);
		if (i > 0)
			appendStringInfoString(&buf, " AND ");
		append_col_equal(&buf, rec, i, psprintf("%s.%s", a, colname(rec, i)),
						 psprintf("%s.%s", b, bc));
	}
	return buf.data;
}

/*
 * step_lateral_sql: "CROSS JOIN LATERAL (F over one row) AS __pgt_x(cols)",
 * the recursive term applied to the row __pgt_rw of the working table.
 * OFFSET 0 keeps it a parameterized lookup per row: the planner cannot
 * estimate the working table, and would otherwise hash whole relations.
 */
static char *
step_lateral_sql(PgtRecursive *rec)
{
	StringInfoData row;
	Oid		   *types = palloc(sizeof(Oid) * (rec->ncols + 1));
	Query	   *s = copyObject(rec->step);
	RangeTblEntry *rte = rt_fetch(rec->self, s->rtable);

	initStringInfo(&row);
	appendStringInfoString(&row, "SELECT ");
	types[0] = PG_SNAPSHOTOID;
	for (int i = 0; i < rec->ncols; i++)
	{
		types[i + 1] = list_nth_oid(rec->coltypes, i);
		appendStringInfo(&row, "%s$%d AS %s", i > 0 ? ", " : "", i + 2, colname(rec, i));
	}
	self_to_subquery(rte, pgt_dvm_parse_sql_params(row.data, types, rec->ncols + 1));
	return psprintf("CROSS JOIN LATERAL (%s OFFSET 0) AS __pgt_x(%s)",
					replace_params(pgt_dvm_deparse(s), rec, "__pgt_rw"), alias_list(rec));
}

/*
 * replace_params replaces each parameter $k (k >= 2) of deparsed sql by
 * alias's column k - 2, outside quoted literals and identifiers.
 */
static char *
replace_params(const char *sql, PgtRecursive *rec, const char *alias)
{
	StringInfoData out;
	const char *p = sql;

	initStringInfo(&out);
	while (*p)
	{
		if (*p == '\'' || *p == '"')
		{
			char		q = *p;

			appendStringInfoChar(&out, *p++);
			while (*p && *p != q)
				appendStringInfoChar(&out, *p++);
			if (*p)
				appendStringInfoChar(&out, *p++);
		}
		else if (*p == '$' && isdigit((unsigned char) p[1]) &&
				 (p == sql || !(isalnum((unsigned char) p[-1]) || p[-1] == '_')))
		{
			int			k = 0;

			p++;
			while (isdigit((unsigned char) *p))
				k = k * 10 + (*p++ - '0');
			if (k < 2 || k > rec->ncols + 1)
				elog(ERROR, "unexpected parameter $%d in a recursive term", k);
			appendStringInfo(&out, "%s.%s", alias, colname(rec, k - 2));
		}
		else
			appendStringInfoChar(&out, *p++);
	}
	return out.data;
}

/* step_over_sql: the recursive term reading the query sql instead of r */
static Query *
step_over_sql(PgtRecursive *rec, const char *sql)
{
	Query	   *s = copyObject(rec->step);

	self_to_subquery(rt_fetch(rec->self, s->rtable), pgt_dvm_parse_sql(sql));
	return s;
}

/*
 * self_to_subquery turns the recursive term's reference to the CTE into
 * the subquery sub, under the same alias and column names.
 */
static void
self_to_subquery(RangeTblEntry *rte, Query *sub)
{
	const char *aliasname = rte->alias ? rte->alias->aliasname : rte->eref->aliasname;

	pgt_dvm_cte_to_subquery(rte, sub);
	rte->alias = makeAlias(aliasname, copyObject(rte->eref->colnames));
	rte->eref = makeAlias(aliasname, copyObject(rte->eref->colnames));
}

static const char *
colname(PgtRecursive *rec, int i)
{
	return quote_identifier(strVal(list_nth(rec->colnames, i)));
}

static char *
cols(PgtRecursive *rec, const char *prefix)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < rec->ncols; i++)
		appendStringInfo(&buf, "%s%s%s", i > 0 ? ", " : "", prefix, colname(rec, i));
	return buf.data;
}

static char *
alias_list(PgtRecursive *rec)
{
	return cols(rec, "");
}
