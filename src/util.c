/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers shared by pg_trickle modules: names, SPI, roles, and
 *	  the operators generated SQL writes.
 *
 *	  pgt_role_switch() is the single place where pg_trickle changes the
 *	  current user: catalog writes run as the extension owner (the catalog
 *	  is not writable by PUBLIC), refreshes run as the stream table's owner
 *	  inside a security-restricted operation.  Both lock search_path to
 *	  pg_catalog, pg_temp for the duration.  An error while switched is
 *	  cleaned up by transaction abort, which restores the user and GUCs.
 *
 * IDENTIFICATION
 *	  src/util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/scansup.h"
#include "storage/proc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "pg_trickle/compat.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/util.h"

static SPIPlanPtr cached_plan(const char *sql, int nargs, Oid *argtypes);
static void notice_truncated_names(const char *name);

/*
 * pgt_parse_name turns a user-supplied name ('st', 'schema.st',
 * '"My Table"') into a RangeVar.  Anything that is not a valid, possibly
 * quoted, dotted identifier list is an error, so nothing the caller passes
 * can reach SQL text unquoted.  A part longer than NAMEDATALEN - 1 bytes is
 * truncated, with the NOTICE CREATE TABLE gives, so that the long name
 * finds the table created under it.
 */
RangeVar *
pgt_parse_name(const char *name)
{
	List	   *names;

	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("stream table name must not be empty")));

	names = pgt_compat_string_to_qualified_name_list(name);
	notice_truncated_names(name);
	if (list_length(names) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("improper stream table name (too many dotted names): %s",
						name)));
	return makeRangeVarFromNameList(names);
}

/*
 * pgt_refuse_read_only raises 25006 (read_only_sql_transaction) when
 * stream table name cannot be changed here: on a hot standby, which
 * receives its stream tables from the primary (see docs/ARCHITECTURE.md),
 * or in a read-only transaction.  Called before anything else, so no
 * lower-level error (a lock a standby cannot take, a write) surfaces.
 */
void
pgt_refuse_read_only(const char *action, const char *name)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s stream table \"%s\" on a read-only standby",
						action, name),
				 errdetail("A standby receives its stream tables from the primary, where they are refreshed, and is as fresh as the primary."),
				 errhint("Run it on the primary.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s stream table \"%s\" in a read-only transaction",
						action, name)));
}

/*
 * notice_truncated_names emits, for each part of the already validated
 * dotted name that is longer than NAMEDATALEN - 1 bytes, the NOTICE
 * (42622) PostgreSQL's parser gives for such an identifier in SQL text:
 * stringToQualifiedNameList truncates silently.
 */
static void
notice_truncated_names(const char *name)
{
	const char *p = name;

	while (*p != '\0')
	{
		while (scanner_isspace(*p))
			p++;
		if (*p == '"')
		{
			StringInfoData part;

			initStringInfo(&part);
			for (p++; *p != '\0'; p++)
			{
				if (*p == '"')
				{
					if (p[1] != '"')
						break;
					p++;
				}
				appendStringInfoChar(&part, *p);
			}
			if (*p == '"')
				p++;
			if (part.len >= NAMEDATALEN)
				truncate_identifier(part.data, part.len, true);
		}
		else
		{
			const char *start = p;

			while (*p != '\0' && *p != '.' && !scanner_isspace(*p))
				p++;
			if (p - start >= NAMEDATALEN)
				(void) downcase_truncate_identifier(start, p - start, true);
		}
		while (scanner_isspace(*p))
			p++;
		if (*p == '.')
			p++;
		else
			break;
	}
}

/*
 * pgt_relation_display_name returns relid's name for messages: bare when
 * visible on the search_path, schema-qualified otherwise.
 */
char *
pgt_relation_display_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		return psprintf("%u", relid);
	if (RelationIsVisible(relid))
		return relname;
	return psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)),
					relname);
}

/*
 * pgt_qualified_name returns relid's quoted, schema-qualified name for SQL.
 */
char *
pgt_qualified_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * pgt_spi_exec runs sql (which takes no parameters) in the caller's SPI
 * connection and errors unless the result code is expected_rc.
 */
void
pgt_spi_exec(const char *sql, int expected_rc)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected_rc)
		elog(ERROR, "SPI_execute failed: %s: %s", SPI_result_code_string(rc), sql);
}

/*
 * pgt_spi_exec_args runs sql with parameters in the caller's SPI connection,
 * errors unless the result code is expected_rc, and returns SPI_processed.
 */
uint64
pgt_spi_exec_args(const char *sql, int nargs, Oid *argtypes, Datum *values,
				  const char *nulls, bool read_only, int expected_rc)
{
	SPIPlanPtr	plan = cached_plan(sql, nargs, argtypes);
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected_rc)
		elog(ERROR, "SPI_execute_plan failed: %s: %s",
			 SPI_result_code_string(rc), sql);
	return SPI_processed;
}

/*
 * cached_plan returns a kept plan for sql, prepared on first use in this
 * backend.  pg_trickle's own statements are fully qualified, so a plan
 * does not depend on the search_path; the plan cache revalidates it after
 * DDL.  The cache is small: statement texts are fixed or vary only by
 * buffer name.
 */
static SPIPlanPtr
cached_plan(const char *sql, int nargs, Oid *argtypes)
{
	typedef struct PlanEntry
	{
		uint32		hash;
		char	   *sql;
		SPIPlanPtr	plan;
	} PlanEntry;
	static HTAB *plans = NULL;
	uint32		h = hash_bytes((const unsigned char *) sql, strlen(sql));
	PlanEntry  *entry;
	bool		found;

	if (plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(PlanEntry);
		ctl.hcxt = TopMemoryContext;
		plans = hash_create("pg_trickle statement plans", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(plans, &h, HASH_ENTER, &found);
	if (found && strcmp(entry->sql, sql) == 0 && entry->plan != NULL)
		return entry->plan;
	if (found && entry->plan != NULL)
		SPI_freeplan(entry->plan);	/* hash collision: replace */
	entry->plan = NULL;
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->plan = SPI_prepare(sql, nargs, argtypes);
	if (entry->plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s: %s",
			 SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(entry->plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return entry->plan;
}

/*
 * pgt_extension_owner returns the role that owns the pg_trickle extension in
 * this database.  Errors if the extension is not installed.
 */
Oid
pgt_extension_owner(void)
{
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static Oid	cached_owner = InvalidOid;
	Oid			extoid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner;

	/* looked up once per transaction: it cannot change within one */
	if (cached_lxid == MyProc->lxid && OidIsValid(cached_owner))
		return cached_owner;
	extoid = get_extension_oid("pg_trickle", false);
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "could not find tuple for extension %u", extoid);
	owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	cached_lxid = MyProc->lxid;
	cached_owner = owner;
	return owner;
}

/*
 * pgt_role_switch makes roleid the current user and locks search_path to
 * pg_catalog, pg_temp.  With restricted, the switch is a
 * security-restricted operation (as REFRESH MATERIALIZED VIEW does).
 * Undo with pgt_role_restore in the same function.
 */
void
pgt_role_switch(Oid roleid, bool restricted, PgtRoleSave *save)
{
	int			sec;

	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	sec = save->sec_context | SECURITY_LOCAL_USERID_CHANGE;
	if (restricted)
		sec |= SECURITY_RESTRICTED_OPERATION;
	SetUserIdAndSecContext(roleid, sec);
	save->guc_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
pgt_role_restore(PgtRoleSave *save)
{
	AtEOXact_GUC(false, save->guc_nestlevel);
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/*
 * pgt_text_arg_upper returns an upper-cased, trimmed C string of t (NULL for
 * NULL), for case-insensitive keyword arguments.
 */
char *
pgt_text_arg_upper(text *t)
{
	char	   *s;
	char	   *p;

	if (t == NULL)
		return NULL;
	s = pstrdup(str_toupper(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), DEFAULT_COLLATION_OID));
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	p = s + strlen(s);
	while (p > s && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n'))
		*--p = '\0';
	return s;
}

char *
pgt_text_arg_lower(text *t)
{
	char	   *s = pgt_text_arg_upper(t);

	return s ? str_tolower(s, strlen(s), DEFAULT_COLLATION_OID) : NULL;
}

/*
 * pgt_spi_create_own_trigger runs sql, a CREATE TRIGGER of one of
 * pg_trickle's own triggers, through SPI; meanwhile pgt_installing_triggers
 * tells the restore event trigger that this one is not a restore's.
 */
void
pgt_spi_create_own_trigger(const char *sql)
{
	pgt_installing_triggers++;
	PG_TRY();
	{
		pgt_spi_exec(sql, SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		pgt_installing_triggers--;
	}
	PG_END_TRY();
}

/*
 * pgt_relation_ancestors returns every partition or inheritance ancestor of rel,
 * nearest first.
 */
List *
pgt_relation_ancestors(Oid rel)
{
	List	   *ancestors = NIL;
	List	   *todo = list_make1_oid(rel);
	ListCell   *lc;

	while (todo != NIL)
	{
		Oid			cur = linitial_oid(todo);
		List	   *parents = NIL;
		Relation	inh = table_open(InheritsRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		todo = list_delete_first(todo);
		ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(cur));
		scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
		while ((tup = systable_getnext(scan)) != NULL)
			parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
		systable_endscan(scan);
		table_close(inh, AccessShareLock);
		foreach(lc, parents)
		{
			if (!list_member_oid(ancestors, lfirst_oid(lc)))
			{
				ancestors = lappend_oid(ancestors, lfirst_oid(lc));
				todo = lappend_oid(todo, lfirst_oid(lc));
			}
		}
	}
	return ancestors;
}

/*
 * Operators written into generated SQL.
 *
 * Generated statements run with search_path locked to pg_catalog, pg_temp,
 * so an operator written by name there resolves among pg_catalog's only:
 * a type whose equality lives elsewhere (citext, ltree, cube, isn, a
 * user-defined type) would find none (42883), or, through an implicit
 * cast, a different one (citext compared as text).  Every comparison the
 * engine writes uses the operator the query's own semantics use -- the
 * type's default equality, as GROUP BY and DISTINCT choose it -- and
 * writes it so that it cannot resolve to another: pg_catalog's in the
 * plain spelling (which is what the locked search_path finds, and which
 * the planner turns into index and hash-join conditions), any other as
 * OPERATOR(schema.name).
 */

/*
 * pgt_type_eq_opr returns the equality operator GROUP BY and DISTINCT use
 * for values of typid (its default btree, else hash, operator class), or
 * InvalidOid if it has none.
 */
Oid
pgt_type_eq_opr(Oid typid)
{
	return lookup_type_cache(typid, TYPECACHE_EQ_OPR)->eq_opr;
}

/*
 * pgt_operator_is_plain is true when opno is an "=" of pg_catalog: written
 * by its bare name (or implied by IS NOT DISTINCT FROM, NULLIF, a simple
 * CASE) between operands of its input types, it resolves to itself under
 * the locked search_path.
 */
bool
pgt_operator_is_plain(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	bool		result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = op->oprnamespace == PG_CATALOG_NAMESPACE &&
		strcmp(NameStr(op->oprname), "=") == 0;
	ReleaseSysCache(tup);
	return result;
}

/*
 * pgt_operator_sql returns opno as SQL: the bare name of a pg_catalog
 * operator (what the locked search_path finds), else
 * OPERATOR(schema.name), which no search_path can change.
 */
char *
pgt_operator_sql(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	if (op->oprnamespace == PG_CATALOG_NAMESPACE)
		result = pstrdup(NameStr(op->oprname));
	else
		result = psprintf("OPERATOR(%s.%s)",
						  quote_identifier(get_namespace_name(op->oprnamespace)),
						  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * pgt_append_equal appends to buf a condition true when the SQL
 * expressions a and b are equal by eqop (an equality operator) or, with
 * nulls_match, both NULL -- "a IS NOT DISTINCT FROM b" by that operator.
 * The condition is never NULL when nulls_match.
 */
void
pgt_append_equal(StringInfo buf, const char *a, const char *b, Oid eqop,
				 bool nulls_match)
{
	if (pgt_operator_is_plain(eqop))
	{
		/* IS NOT DISTINCT FROM resolves "=" by search_path: pg_catalog's */
		if (nulls_match)
			appendStringInfo(buf, "%s IS NOT DISTINCT FROM %s", a, b);
		else
			appendStringInfo(buf, "%s %s %s", a, pgt_operator_sql(eqop), b);
	}
	else if (nulls_match)
		appendStringInfo(buf, "COALESCE(%s %s %s, %s IS NULL AND %s IS NULL)",
						 a, pgt_operator_sql(eqop), b, a, b);
	else
		appendStringInfo(buf, "%s %s %s", a, pgt_operator_sql(eqop), b);
}

/*
 * pgt_make_equal is pgt_append_equal for Query trees: a = b by eqop, or
 * with nulls_match a NOT (a IS DISTINCT FROM b), which the deparser
 * prints without its operator, so only for plain operators, and
 * COALESCE(a = b, a IS NULL AND b IS NULL) for the others.
 */
Expr *
pgt_make_equal(Expr *a, Expr *b, Oid eqop, Oid collation, bool nulls_match)
{
	OpExpr	   *op = (OpExpr *) make_opclause(eqop, BOOLOID, false, a, b,
											  InvalidOid, collation);

	set_opfuncid(op);
	if (!nulls_match)
		return (Expr *) op;
	if (pgt_operator_is_plain(eqop))
	{
		NodeSetTag(op, T_DistinctExpr);
		return make_notclause((Expr *) op);
	}
	else
	{
		CoalesceExpr *c = makeNode(CoalesceExpr);
		NullTest   *na = makeNode(NullTest);
		NullTest   *nb = makeNode(NullTest);

		na->arg = (Expr *) copyObject(a);
		na->nulltesttype = IS_NULL;
		na->location = -1;
		nb->arg = (Expr *) copyObject(b);
		nb->nulltesttype = IS_NULL;
		nb->location = -1;
		c->coalescetype = BOOLOID;
		c->coalescecollid = InvalidOid;
		c->args = list_make2(op, make_andclause(list_make2(na, nb)));
		c->location = -1;
		return (Expr *) c;
	}
}

static Node *spell_operators_mutator(Node *node, void *context);
static Node *replace_case_test(Node *node, void *context);

/*
 * pgt_spell_operators returns a copy of query in which the expressions
 * the deparser prints without their operator -- IS DISTINCT FROM, NULLIF,
 * and the WHENs of a simple CASE -- are written with it where it is not
 * pg_catalog's: once deparsed (stored definitions, generated SQL) and
 * parsed again under the locked search_path, "a IS DISTINCT FROM b" over
 * citext would compare as text, over ltree find no "=" at all.  The
 * rewritten forms evaluate an operand more than once, so expressions with
 * volatile functions are left as they are.
 */
Query *
pgt_spell_operators(Query *query)
{
	return query_tree_mutator(query, spell_operators_mutator, NULL, 0);
}

static Node *
spell_operators_mutator(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
		return (Node *) query_tree_mutator((Query *) node, spell_operators_mutator,
										   context, 0);
	node = expression_tree_mutator(node, spell_operators_mutator, context);
	if (IsA(node, DistinctExpr))
	{
		DistinctExpr *d = (DistinctExpr *) node;

		if (pgt_operator_is_plain(d->opno) || contain_volatile_functions((Node *) d->args))
			return node;
		return (Node *) make_notclause(pgt_make_equal(linitial(d->args), lsecond(d->args),
													  d->opno, d->inputcollid, true));
	}
	if (IsA(node, NullIfExpr))
	{
		NullIfExpr *n = (NullIfExpr *) node;
		Expr	   *a = linitial(n->args);
		CaseExpr   *c;
		CaseWhen   *w;

		if (pgt_operator_is_plain(n->opno) || contain_volatile_functions((Node *) n->args))
			return node;
		/* CASE WHEN a = b THEN NULL ELSE a END */
		w = makeNode(CaseWhen);
		w->expr = pgt_make_equal(copyObject(a), lsecond(n->args), n->opno, n->inputcollid,
								 false);
		w->result = (Expr *) makeNullConst(n->opresulttype, exprTypmod((Node *) a),
										   n->opcollid);
		w->location = -1;
		c = makeNode(CaseExpr);
		c->casetype = n->opresulttype;
		c->casecollid = n->opcollid;
		c->args = list_make1(w);
		c->defresult = a;
		c->location = -1;
		return (Node *) c;
	}
	if (IsA(node, CaseExpr) && ((CaseExpr *) node)->arg != NULL)
	{
		CaseExpr   *c = (CaseExpr *) node;
		bool		plain = true;
		ListCell   *lc;

		foreach(lc, c->args)
		{
			CaseWhen   *w = lfirst(lc);

			if (!IsA(w->expr, OpExpr))
				return node;	/* not the parser's shape: leave it */
			if (!pgt_operator_is_plain(((OpExpr *) w->expr)->opno))
				plain = false;
		}
		if (plain || contain_volatile_functions((Node *) c->arg))
			return node;
		/* CASE x WHEN v ... becomes CASE WHEN x = v ... */
		foreach(lc, c->args)
		{
			CaseWhen   *w = lfirst(lc);
			OpExpr	   *op = (OpExpr *) w->expr;

			linitial(op->args) = replace_case_test(linitial(op->args), c->arg);
		}
		c->arg = NULL;
		return (Node *) c;
	}
	return node;
}

/*
 * replace_case_test replaces the CaseTestExpr of a simple CASE (the left
 * operand of a WHEN, maybe under coercions) by a copy of the CASE's
 * operand; the placeholders of nested expressions that have their own are
 * left alone.
 */
static Node *
replace_case_test(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, CaseTestExpr))
		return copyObject((Node *) context);
	if (IsA(node, CaseExpr) || IsA(node, ArrayCoerceExpr))
		return node;
	return expression_tree_mutator(node, replace_case_test, context);
}
