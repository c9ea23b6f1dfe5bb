/*-------------------------------------------------------------------------
 *
 * analyze.c
 *	  Validation and description of a stream table's defining query.
 *
 *	  The query text goes through the server's own raw parser and parse
 *	  analysis, so names, types, operators and views resolve exactly as they
 *	  would in a plain SELECT run by the calling user.  One walker then visits
 *	  every query level (subqueries, CTEs, sublinks and the bodies of the
 *	  views the query reads) to reject what a stream table cannot hold and to
 *	  collect every relation read, views resolved down to their base
 *	  relations.
 *
 *	  Rejected everywhere (whatever the refresh mode): statements other than
 *	  one plain SELECT, locking clauses, LIMIT/OFFSET without ORDER BY (the
 *	  rows kept would be arbitrary), TABLESAMPLE, temporary relations,
 *	  sequences, data-modifying CTEs, columns of pseudo-types, duplicate or
 *	  reserved (__pgt_) column names, names of heap system columns (xmin,
 *	  ctid, ...: the storage table could not have them).
 *
 *	  The defining query is stored deparsed with only pg_catalog on the
 *	  search_path, so every other name is schema-qualified and a refresh
 *	  reads the same objects whatever the session's search_path is.
 *
 * IDENTIFICATION
 *	  src/analyze/analyze.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/heap.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parser.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/util.h"

typedef struct AnalyzeWalkContext
{
	const char *stname;
	List	   *expanding;		/* views whose bodies are being walked */
	List	   *sources;		/* PgtSource * */
	Oid			volatile_func;	/* first volatile function seen */
	const char *time_func;		/* first now()-like function seen */
} AnalyzeWalkContext;

typedef struct AnalyzeErrorArg
{
	const char *query_text;
	const char *stname;
} AnalyzeErrorArg;

static void analyze_error_callback(void *arg);
static RawStmt *parse_single_select(const char *query_text, const char *stname);
static bool analyze_walker(Node *node, AnalyzeWalkContext *ctx);
static void check_query_level(Query *query, AnalyzeWalkContext *ctx);
static void check_relation(RangeTblEntry *rte, AnalyzeWalkContext *ctx);
static void add_source(AnalyzeWalkContext *ctx, Oid relid, PgtSourceType type);
static bool volatile_checker(Oid func_id, void *context);
static bool time_checker(Oid func_id, void *context);
static List *describe_columns(Query *query, const char *stname);
static void choose_identity(PgtAnalysis *analysis);
static bool is_limit_present(Query *query);

/*
 * pgt_analyze_query parses, analyzes and validates query_text as the
 * defining query of the stream table stname (used only in messages).
 *
 * Errors (with a SQLSTATE) on anything a stream table cannot hold.  Locks
 * every relation read with AccessShareLock until the end of the transaction.
 * The result lives in CurrentMemoryContext.
 */
PgtAnalysis *
pgt_analyze_query(const char *query_text, const char *stname)
{
	return pgt_analyze_query_ext(query_text, stname, true);
}

/*
 * pgt_analyze_query_ext is pgt_analyze_query; without deparse the
 * defining_query field is left NULL (a refresh already has the stored one).
 */
PgtAnalysis *
pgt_analyze_query_ext(const char *query_text, const char *stname, bool deparse)
{
	PgtAnalysis *analysis = palloc0(sizeof(PgtAnalysis));
	AnalyzeWalkContext ctx;
	ErrorContextCallback errcallback;
	AnalyzeErrorArg errarg;
	RawStmt    *raw;
	Query	   *query;

	if (query_text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query of stream table \"%s\" must not be null", stname)));

	/*
	 * Errors of parse analysis point into the query text, not into the
	 * statement that called us (an INSERT into a source whose IMMEDIATE
	 * stream table reads a column dropped since): report them as positions
	 * in an internal query, with the stream table named.
	 */
	errcallback.callback = analyze_error_callback;
	errcallback.arg = &errarg;
	errarg.query_text = query_text;
	errarg.stname = stname;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	raw = parse_single_select(query_text, stname);
	query = pgt_compat_parse_analyze(raw, query_text);
	error_context_stack = errcallback.previous;

	if (query->commandType != CMD_SELECT || query->utilityStmt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("query of stream table \"%s\" must be a SELECT statement",
						stname)));

	memset(&ctx, 0, sizeof(ctx));
	ctx.stname = stname;
	(void) analyze_walker((Node *) query, &ctx);

	analysis->query = query;
	analysis->sources = ctx.sources;
	analysis->columns = describe_columns(query, stname);
	analysis->has_volatile = OidIsValid(ctx.volatile_func);
	if (analysis->has_volatile)
		analysis->volatile_name = get_func_name(ctx.volatile_func);
	analysis->time_function = ctx.time_func;
	choose_identity(analysis);
	if (analysis->identity != PGT_IDENTITY_ALL_COLUMNS)
		analysis->agg_layout = pgt_dvm_agg_layout(query);
	if (deparse)
		analysis->defining_query = pgt_deparse_query(query);

	return analysis;
}

/*
 * pgt_warn_ignored_order warns, when a stream table is defined, that an
 * ORDER BY without LIMIT in its query orders nothing.
 */
void
pgt_warn_ignored_order(PgtAnalysis *analysis, const char *stname)
{
	if (analysis->query->sortClause != NIL && !is_limit_present(analysis->query))
		ereport(WARNING,
				(errmsg("ORDER BY in the query of stream table \"%s\" has no effect on its rows",
						stname),
				 errdetail("A stream table is stored like any table, without an order."),
				 errhint("Order the rows when you read them.")));
}

/*
 * pgt_deparse_query returns the text of query with every name that is not
 * in pg_catalog schema-qualified, and every operator that is not written
 * (see pgt_spell_operators).
 */
char *
pgt_deparse_query(Query *query)
{
	int			save_nestlevel = NewGUCNestLevel();
	char	   *result;

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	result = pg_get_querydef(pgt_spell_operators(query), false);
	AtEOXact_GUC(false, save_nestlevel);

	return result;
}

const char *
pgt_source_type_name(PgtSourceType type)
{
	switch (type)
	{
		case PGT_SOURCE_TABLE:
			return "TABLE";
		case PGT_SOURCE_STREAM_TABLE:
			return "STREAM_TABLE";
		case PGT_SOURCE_VIEW:
			return "VIEW";
		case PGT_SOURCE_MATVIEW:
			return "MATVIEW";
		case PGT_SOURCE_FOREIGN_TABLE:
			return "FOREIGN_TABLE";
	}
	return "TABLE";				/* keep compiler quiet */
}

const char *
pgt_identity_name(PgtRowIdentity identity)
{
	switch (identity)
	{
		case PGT_IDENTITY_ALL_COLUMNS:
			return "ALL_COLUMNS";
		case PGT_IDENTITY_GROUP_KEY:
			return "GROUP_KEY";
		case PGT_IDENTITY_SINGLETON:
			return "SINGLETON";
	}
	return "ALL_COLUMNS";		/* keep compiler quiet */
}

/*
 * analyze_error_callback turns the cursor position of an error raised while
 * parsing or analyzing a stream table's query into a position in that
 * query, and names the stream table.
 */
static void
analyze_error_callback(void *arg)
{
	AnalyzeErrorArg *a = arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(a->query_text);
	}
	errcontext("query of stream table \"%s\"", a->stname);
}

/*
 * parse_single_select runs the raw parser and insists on exactly one plain
 * SELECT statement.  Syntax errors are reported by the parser itself.
 */
static RawStmt *
parse_single_select(const char *query_text, const char *stname)
{
	List	   *raw_list = raw_parser(query_text, RAW_PARSE_DEFAULT);
	RawStmt    *raw;

	if (list_length(raw_list) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query of stream table \"%s\" must be exactly one SELECT statement",
						stname),
				 errdetail("The query text contains %d statements.",
						   list_length(raw_list))));

	raw = linitial_node(RawStmt, raw_list);
	if (!IsA(raw->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("query of stream table \"%s\" must be a SELECT statement",
						stname),
				 errdetail("The statement given is %s.",
						   CreateCommandName(raw->stmt))));

	if (((SelectStmt *) raw->stmt)->intoClause != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported in a stream table query", "SELECT INTO")));

	return raw;
}

/*
 * analyze_walker visits every query level and range table entry.
 */
static bool
analyze_walker(Node *node, AnalyzeWalkContext *ctx)
{
	if (node == NULL)
		return false;

	check_stack_depth();

	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;

		check_query_level(query, ctx);
		(void) check_functions_in_node((Node *) query, volatile_checker, ctx);
		return query_tree_walker(query, analyze_walker, ctx,
								 QTW_EXAMINE_RTES_BEFORE);
	}

	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			check_relation(rte, ctx);
		return false;
	}

	if (!OidIsValid(ctx->volatile_func))
		(void) check_functions_in_node(node, volatile_checker, ctx);
	if (ctx->time_func == NULL)
	{
		if (IsA(node, SQLValueFunction))
		{
			switch (((SQLValueFunction *) node)->op)
			{
				case SVFOP_CURRENT_DATE:
					ctx->time_func = "CURRENT_DATE";
					break;
				case SVFOP_CURRENT_TIME:
				case SVFOP_CURRENT_TIME_N:
					ctx->time_func = "CURRENT_TIME";
					break;
				case SVFOP_CURRENT_TIMESTAMP:
				case SVFOP_CURRENT_TIMESTAMP_N:
					ctx->time_func = "CURRENT_TIMESTAMP";
					break;
				case SVFOP_LOCALTIME:
				case SVFOP_LOCALTIME_N:
					ctx->time_func = "LOCALTIME";
					break;
				case SVFOP_LOCALTIMESTAMP:
				case SVFOP_LOCALTIMESTAMP_N:
					ctx->time_func = "LOCALTIMESTAMP";
					break;
				default:
					break;
			}
		}
		else
			(void) check_functions_in_node(node, time_checker, ctx);
	}

	return expression_tree_walker(node, analyze_walker, ctx);
}

static void
check_query_level(Query *query, AnalyzeWalkContext *ctx)
{
	if (query->hasModifyingCTE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported in a stream table query",
						"data-modifying WITH")));

	if (query->rowMarks != NIL || query->hasForUpdate)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported in a stream table query",
						"SELECT ... FOR UPDATE/FOR SHARE"),
				 errhint("Remove the locking clause.")));

	if (is_limit_present(query) && query->sortClause == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported in a stream table query",
						"LIMIT or OFFSET without ORDER BY"),
				 errdetail("Without ORDER BY the rows that LIMIT and OFFSET keep are not determined."),
				 errhint("Add an ORDER BY clause, or remove LIMIT and OFFSET.")));
}

/*
 * is_limit_present is true when the query has an OFFSET or a LIMIT other
 * than LIMIT ALL / LIMIT NULL.
 */
static bool
is_limit_present(Query *query)
{
	if (query->limitOffset != NULL)
		return true;
	if (query->limitCount == NULL)
		return false;
	if (IsA(query->limitCount, Const) &&
		((Const *) query->limitCount)->constisnull)
		return false;
	return true;
}

/*
 * check_relation validates one relation read by the query and records it as
 * a source; a view's own query is walked so that its base relations are
 * recorded too.
 */
static void
check_relation(RangeTblEntry *rte, AnalyzeWalkContext *ctx)
{
	Relation	rel;
	char	   *relname;

	if (rte->tablesample != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported in a stream table query", "TABLESAMPLE")));

	/* a view body's OLD/NEW entries point back at the view itself */
	if (list_member_oid(ctx->expanding, rte->relid))
		return;

	rel = relation_open(rte->relid, AccessShareLock);
	relname = pgt_relation_display_name(rte->relid);

	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("stream table \"%s\" cannot read temporary relation \"%s\"",
						ctx->stname, relname),
				 errdetail("A stream table outlives the session that owns a temporary relation.")));

	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			add_source(ctx, rte->relid,
					   pgt_catalog_is_stream_table(rte->relid) ?
					   PGT_SOURCE_STREAM_TABLE : PGT_SOURCE_TABLE);
			break;
		case RELKIND_VIEW:
			{
				Query	   *viewquery = copyObject(get_view_query(rel));

				add_source(ctx, rte->relid, PGT_SOURCE_VIEW);
				/* the view body is analyzed already; take its locks */
				AcquireRewriteLocks(viewquery, false, false);
				ctx->expanding = lappend_oid(ctx->expanding, rte->relid);
				(void) analyze_walker((Node *) viewquery, ctx);
				ctx->expanding = list_delete_last(ctx->expanding);
			}
			break;
		case RELKIND_MATVIEW:
			add_source(ctx, rte->relid, PGT_SOURCE_MATVIEW);
			break;
		case RELKIND_FOREIGN_TABLE:
			add_source(ctx, rte->relid, PGT_SOURCE_FOREIGN_TABLE);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("stream table \"%s\" cannot read \"%s\"",
							ctx->stname, relname),
					 errdetail("\"%s\" is not a table, view, materialized view or foreign table.",
							   relname)));
	}

	relation_close(rel, NoLock);
}

static void
add_source(AnalyzeWalkContext *ctx, Oid relid, PgtSourceType type)
{
	ListCell   *lc;
	PgtSource  *src;

	foreach(lc, ctx->sources)
	{
		if (((PgtSource *) lfirst(lc))->relid == relid)
			return;
	}
	src = palloc(sizeof(PgtSource));
	src->relid = relid;
	src->type = type;
	ctx->sources = lappend(ctx->sources, src);
}

static bool
volatile_checker(Oid func_id, void *context)
{
	AnalyzeWalkContext *ctx = (AnalyzeWalkContext *) context;

	if (func_volatile(func_id) == PROVOLATILE_VOLATILE)
	{
		if (!OidIsValid(ctx->volatile_func))
			ctx->volatile_func = func_id;
		return true;
	}
	return false;
}

/*
 * time_checker notes the stable functions whose value moves with the
 * clock: a result that depends on them changes without any source change.
 */
static bool
time_checker(Oid func_id, void *context)
{
	AnalyzeWalkContext *ctx = (AnalyzeWalkContext *) context;

	if (func_id == F_NOW || func_id == F_STATEMENT_TIMESTAMP ||
		func_id == F_TRANSACTION_TIMESTAMP)
	{
		ctx->time_func = psprintf("%s()", get_func_name(func_id));
		return true;
	}
	return false;
}

/*
 * describe_columns lists the visible output columns and checks that each can
 * be a column of the storage table.
 */
static List *
describe_columns(Query *query, const char *stname)
{
	List	   *columns = NIL;
	ListCell   *lc;

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		PgtColumn  *col;
		ListCell   *lc2;

		if (tle->resjunk)
			continue;

		col = palloc0(sizeof(PgtColumn));
		col->name = pstrdup(tle->resname ? tle->resname : "?column?");
		col->typid = exprType((Node *) tle->expr);
		col->typmod = exprTypmod((Node *) tle->expr);
		col->collation = exprCollation((Node *) tle->expr);

		if (strncmp(col->name, PGT_HIDDEN_PREFIX, strlen(PGT_HIDDEN_PREFIX)) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("column name \"%s\" of stream table \"%s\" is reserved",
							col->name, stname),
					 errdetail("Column names starting with \"%s\" are reserved for pg_trickle's internal columns.",
							   PGT_HIDDEN_PREFIX),
					 errhint("Rename the column with AS.")));

		/* the storage is a heap table: CREATE TABLE would refuse the name */
		if (SystemAttributeByName(col->name) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column name \"%s\" of stream table \"%s\" conflicts with a system column name",
							col->name, stname),
					 errdetail("A stream table is stored in a table, whose system columns (ctid, xmin, cmin, xmax, cmax, tableoid) cannot be used as column names."),
					 errhint("Rename the column with AS.")));

		if (get_typtype(col->typid) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("column \"%s\" of stream table \"%s\" has pseudo-type %s",
							col->name, stname, format_type_be(col->typid)),
					 errhint("Cast the expression to a concrete type.")));

		foreach(lc2, columns)
		{
			if (strcmp(((PgtColumn *) lfirst(lc2))->name, col->name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" appears more than once in the query of stream table \"%s\"",
								col->name, stname),
						 errhint("Give the columns distinct names with AS.")));
		}
		columns = lappend(columns, col);
	}

	if (columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("query of stream table \"%s\" must return at least one column",
						stname)));

	return columns;
}

/*
 * choose_identity decides what identifies a stored row.
 *
 * Aggregates and DISTINCT produce a set keyed by the grouping columns, as
 * long as every grouping expression is an output column and nothing
 * multiplies rows after grouping (set-returning functions in the target
 * list).  Everything else is a multiset identified by all its columns:
 * duplicate rows are stored as duplicate rows.
 */
static void
choose_identity(PgtAnalysis *analysis)
{
	Query	   *query = analysis->query;
	List	   *keyrefs = NIL;
	bool		grouped;
	ListCell   *lc;
	int			colno;

	analysis->identity = PGT_IDENTITY_ALL_COLUMNS;
	analysis->identity_unique = false;

	if (query->setOperations != NULL || query->hasTargetSRFs ||
		query->groupingSets != NIL || is_limit_present(query) ||
		(query->distinctClause != NIL && query->hasDistinctOn))
		return;

	grouped = query->groupClause != NIL;
	if (!grouped && query->hasAggs)
	{
		analysis->identity = PGT_IDENTITY_SINGLETON;
		analysis->identity_unique = true;
		return;
	}

	if (grouped)
	{
		foreach(lc, query->groupClause)
			keyrefs = lappend_int(keyrefs,
								  lfirst_node(SortGroupClause, lc)->tleSortGroupRef);
	}
	else if (query->distinctClause != NIL)
	{
		foreach(lc, query->distinctClause)
			keyrefs = lappend_int(keyrefs,
								  lfirst_node(SortGroupClause, lc)->tleSortGroupRef);
	}
	else
		return;

	/* every grouping key must be a visible output column */
	foreach(lc, keyrefs)
	{
		int			ref = lfirst_int(lc);
		bool		found = false;
		ListCell   *lc2;

		foreach(lc2, query->targetList)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc2);

			if (!tle->resjunk && tle->ressortgroupref == (Index) ref)
			{
				found = true;
				break;
			}
		}
		if (!found)
			return;
	}

	analysis->identity = PGT_IDENTITY_GROUP_KEY;
	analysis->identity_unique = true;

	colno = 0;
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		PgtColumn  *col;

		if (tle->resjunk)
			continue;
		col = list_nth(analysis->columns, colno++);
		if (tle->ressortgroupref != 0 &&
			list_member_int(keyrefs, (int) tle->ressortgroupref))
		{
			TypeCacheEntry *tc = lookup_type_cache(col->typid,
												   TYPECACHE_BTREE_OPFAMILY);

			col->is_key = true;
			if (!OidIsValid(tc->btree_opf))
				analysis->identity_unique = false;
		}
	}
}
