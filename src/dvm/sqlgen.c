/*-------------------------------------------------------------------------
 *
 * sqlgen.c
 *	  The text side of delta generation: parsing generated fragments,
 *	  deparsing Query trees, the size budget, and the parts written once.
 *
 *	  The delta engine builds its statements by parsing SQL fragments into
 *	  Query trees, rewriting them and deparsing them with the server's own
 *	  deparser.  While one statement is generated (pgt_dvm_gen_begin ..
 *	  pgt_dvm_gen_end) a query environment holds the ephemeral relations the
 *	  fragments may name: IMMEDIATE's transition tables __pgt_old/__pgt_new
 *	  of the firing table, and the shared parts __pgt_s<n> -- deltas written
 *	  once as CTEs in front of the finished statement and referenced by name
 *	  wherever the delta rules use them.  The deparser cannot print either
 *	  kind of reference, so pgt_dvm_deparse prints a transition table as its
 *	  table under a marker alias and replaces the name in the text, and a
 *	  shared part as a CTE reference.
 *
 *	  Generated SQL still inlines the pre-change state of every input
 *	  wherever it is used, so nesting multiplies its size; every fragment
 *	  parsed or deparsed counts against PGT_MAX_DELTA_SQL, past which the
 *	  query is treated as not maintainable incrementally.
 *
 * IDENTIFICATION
 *	  src/dvm/sqlgen.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "storage/lockdefs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/queryenvironment.h"
#include "utils/ruleutils.h"

#include "dvm_internal.h"

static int64 generated_bytes = 0;

/* the ephemeral relations of the statement being generated (NULL: none) */
static QueryEnvironment *parse_env = NULL;
static Oid	parse_env_firing = InvalidOid;

/* a part of the statement written once, as a CTE (see pgt_dvm_share_part) */
typedef struct SharedPart
{
	char	   *sql;
	char	   *name;			/* __pgt_s<n> */
	bool		inline_cte;		/* NOT MATERIALIZED: inlined where used */
} SharedPart;

static List *shared_parts = NIL;

/* parts shorter than this are inlined */
#define PGT_SHARE_MIN_BYTES 256

static void count_generated(const char *sql);
static bool enr_to_relation(Node *node, void *context);
static char *replace_enr_marks(const char *sql, const char *table);

/*
 * pgt_dvm_gen_begin starts generating one statement: env (created if NULL)
 * holds the transition tables of firing (IMMEDIATE) if any.  Pair with
 * pgt_dvm_gen_end, also on error.
 */
void
pgt_dvm_gen_begin(QueryEnvironment *env, Oid firing)
{
	parse_env = env ? env : create_queryEnv();
	parse_env_firing = firing;
	shared_parts = NIL;
}

void
pgt_dvm_gen_end(void)
{
	parse_env = NULL;
	parse_env_firing = InvalidOid;
	shared_parts = NIL;
}

/* pgt_dvm_gen_reset_size starts a new size budget */
void
pgt_dvm_gen_reset_size(void)
{
	generated_bytes = 0;
}

/*
 * pgt_dvm_parse_sql analyzes generated SQL text (with the caller's locked
 * search_path) into a Query.
 */
Query *
pgt_dvm_parse_sql(const char *sql)
{
	List	   *raw;
	Oid			ptypes[1] = {PG_SNAPSHOTOID};

	count_generated(sql);
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	/* $1 is the frontier wherever a change buffer is read */
	return parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql,
									 ptypes, 1, parse_env);
}

/*
 * pgt_dvm_parse_sql_params is pgt_dvm_parse_sql with more parameters:
 * types[0] must be the frontier's type (pg_snapshot).
 */
Query *
pgt_dvm_parse_sql_params(const char *sql, Oid *types, int ntypes)
{
	List	   *raw;

	count_generated(sql);
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	return parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql,
									 types, ntypes, parse_env);
}

/*
 * pgt_dvm_share_part returns sql itself if it is short, else a reference to a
 * common table expression holding it: "SELECT * FROM __pgt_s<n>".  The
 * delta of an input is used in several terms of its parent's delta (and
 * those again in theirs), so inlining it everywhere grows the statement
 * with the nesting; referenced by name, each part is written (and run)
 * once.  While a statement is generated, the names are ephemeral relations
 * of parse_env, so fragments that use them parse; apply_sql_ctx puts the
 * definitions in front of the finished statement (pgt_dvm_with_shared_parts).
 */
static char *share_part(char *sql, bool always);
static SharedPart *add_part(const char *name, TupleDesc desc, const char *sql,
							bool inline_cte);

char *
pgt_dvm_share_part(char *sql)
{
	return share_part(sql, false);
}

/*
 * pgt_dvm_share_part_named is pgt_dvm_share_part for a part of any length:
 * the caller needs a name it can reference from several places.
 */
char *
pgt_dvm_share_part_named(char *sql)
{
	return share_part(sql, true);
}

static char *
share_part(char *sql, bool always)
{
	ListCell   *lc;
	Query	   *parsed;
	TupleDesc	desc;
	SharedPart *part;
	int			natts = 0;
	int			i = 0;

	if (sql == NULL || parse_env == NULL || (!always && strlen(sql) < PGT_SHARE_MIN_BYTES))
		return sql;
	foreach(lc, shared_parts)
	{
		part = lfirst(lc);
		if (strcmp(part->sql, sql) == 0)
			return psprintf("SELECT * FROM %s", part->name);
	}
	parsed = pgt_dvm_parse_sql(sql);
	foreach(lc, parsed->targetList)
		if (!((TargetEntry *) lfirst(lc))->resjunk)
			natts++;
	desc = CreateTemplateTupleDesc(natts);
	foreach(lc, parsed->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		i++;
		TupleDescInitEntry(desc, i, tle->resname ? tle->resname : psprintf("__pgt_c%d", i),
						   exprType((Node *) tle->expr), exprTypmod((Node *) tle->expr), 0);
		TupleDescInitEntryCollation(desc, i, exprCollation((Node *) tle->expr));
	}
	part = add_part(psprintf("__pgt_s%d", list_length(shared_parts) + 1), desc, sql, false);
	return psprintf("SELECT * FROM %s", part->name);
}

/* add_part records a part and makes its name a relation fragments can read */
static SharedPart *
add_part(const char *name, TupleDesc desc, const char *sql, bool inline_cte)
{
	SharedPart *part = palloc0(sizeof(SharedPart));
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));

	part->sql = pstrdup(sql);
	part->name = pstrdup(name);
	part->inline_cte = inline_cte;
	shared_parts = lappend(shared_parts, part);
	enr->md.name = part->name;
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = 100;
	register_ENR(parse_env, enr);
	return part;
}

/*
 * pgt_dvm_inline_part names sql (whose columns are desc) name, a name
 * starting with "__pgt_s": fragments may then reference it, and the
 * finished statement defines it as a NOT MATERIALIZED CTE, so every use
 * is planned as if sql were written there.  The text of sql is not
 * parsed while the statement is generated.
 */
void
pgt_dvm_inline_part(const char *name, TupleDesc desc, const char *sql)
{
	Assert(strncmp(name, "__pgt_s", 7) == 0);
	(void) add_part(name, desc, sql, true);
}

/* pgt_dvm_with_shared_parts puts the shared parts' definitions in front of sql */
char *
pgt_dvm_with_shared_parts(char *sql)
{
	StringInfoData buf;
	ListCell   *lc;

	if (sql == NULL || shared_parts == NIL)
		return sql;
	initStringInfo(&buf);
	appendStringInfoString(&buf, "WITH ");
	foreach(lc, shared_parts)
	{
		SharedPart *part = lfirst(lc);

		appendStringInfo(&buf, "%s%s AS %s(%s)", foreach_current_index(lc) > 0 ? ", " : "",
						 part->name, part->inline_cte ? "NOT MATERIALIZED " : "", part->sql);
	}
	if (strncmp(sql, "WITH ", 5) == 0)
		appendStringInfo(&buf, ", %s", sql + 5);
	else
		appendStringInfo(&buf, " %s", sql);
	return buf.data;
}

static void
count_generated(const char *sql)
{
	generated_bytes += strlen(sql);
	if (generated_bytes > PGT_MAX_DELTA_SQL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("differential plan of the query is too large"),
				 errdetail("The generated delta SQL exceeds %d bytes.", PGT_MAX_DELTA_SQL)));
}

char *
pgt_dvm_deparse(Query *q)
{
	char	   *result;

	if (parse_env == NULL)
		result = pg_get_querydef(q, false);
	else
	{
		/*
		 * The server's deparser cannot print a transition table: print it
		 * as "ONLY <its table> __pgt_ivm_new" (or _old), then put the
		 * transition table's name in place of the table's.
		 */
		Query	   *copy = copyObject(q);

		(void) enr_to_relation((Node *) copy, NULL);
		result = pg_get_querydef(copy, false);
		if (OidIsValid(parse_env_firing))
			result = replace_enr_marks(result,
									   psprintf("ONLY %s __pgt_ivm_",
												quote_qualified_identifier(get_namespace_name(get_rel_namespace(parse_env_firing)),
																		   get_rel_name(parse_env_firing))));
	}
	count_generated(result);
	return result;
}

/*
 * enr_to_relation turns every transition table entry into its table's, and
 * every shared part's into a CTE reference, for the deparser
 */
static bool
enr_to_relation(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_NAMEDTUPLESTORE && strncmp(rte->enrname, "__pgt_s", 7) == 0)
		{
			/* a shared part: a reference to the CTE of that name */
			rte->rtekind = RTE_CTE;
			rte->ctename = rte->enrname;
			rte->ctelevelsup = 0;
			rte->self_reference = false;
		}
		else if (rte->rtekind == RTE_NAMEDTUPLESTORE)
		{
			const char *mark = strcmp(rte->enrname, "__pgt_old") == 0 ?
				"__pgt_ivm_old" : "__pgt_ivm_new";

			rte->rtekind = RTE_RELATION;
			rte->relid = parse_env_firing;
			rte->relkind = RELKIND_RELATION;
			rte->rellockmode = AccessShareLock;
			rte->inh = false;
			rte->alias = makeAlias(mark, NIL);
			rte->eref = makeAlias(mark, rte->eref->colnames);
		}
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, enr_to_relation, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, enr_to_relation, context);
}

/*
 * replace_enr_marks replaces "<table>old..." / "<table>new..." (table ends
 * in "__pgt_ivm_") by "__pgt_old __pgt_ivm_old..." and the like.
 */
static char *
replace_enr_marks(const char *sql, const char *table)
{
	StringInfoData out;
	const char *p = sql;
	const char *hit;
	size_t		tlen = strlen(table);

	initStringInfo(&out);
	while ((hit = strstr(p, table)) != NULL)
	{
		const char *kind = hit + tlen;

		appendBinaryStringInfo(&out, p, hit - p);
		if (strncmp(kind, "new", 3) == 0 || strncmp(kind, "old", 3) == 0)
			appendStringInfo(&out, "__pgt_%.3s __pgt_ivm_", kind);
		else
			appendBinaryStringInfo(&out, hit, tlen);
		p = kind;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

