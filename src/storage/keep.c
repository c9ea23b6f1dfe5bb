/*-------------------------------------------------------------------------
 *
 * keep.c
 *	  What a stream table's storage keeps when a query change rebuilds it.
 *
 *	  When alter_stream_table() (or create_or_replace_stream_table()) gives
 *	  a stream table a query whose columns differ, the storage table is
 *	  rebuilt: a new table is created beside the old one, the old one is
 *	  dropped and the new one takes its name (stream_table.c,
 *	  replace_query).  Everything a user or DBA attached to the old table
 *	  is carried over to the new one here, so a query change never drops it
 *	  silently:
 *
 *	  - indexes, constraints, triggers and extended statistics the user
 *	    created, replayed from their deparsed definitions (which name the
 *	    table, and the new table has the same name by then);
 *	  - row-level security policies and ENABLE / FORCE ROW LEVEL SECURITY;
 *	  - publication membership, with its column list and row filter;
 *	  - grants on the table and on surviving columns (relacl / attacl,
 *	    copied exactly, grantors included);
 *	  - the table comment and comments of surviving columns;
 *	  - replica identity (DEFAULT, NOTHING, FULL or USING INDEX);
 *	  - tablespace, storage parameters (reloptions) and NOT NULL marks of
 *	    surviving columns.  The owner is carried by replace_query.
 *
 *	  The new storage is then truncated (it is empty): a logical replication
 *	  subscriber of the stream table receives the TRUNCATE and drops the old
 *	  storage's rows before the rebuild's full refresh sends the new ones.
 *
 *	  A column "survives" when the new storage has a column of the same
 *	  name, type, typmod and collation.  An object that reads a column that
 *	  does not survive (found through its pg_depend rows on the old table's
 *	  columns) cannot be carried: an index, constraint, trigger, statistics
 *	  object, column grant or column comment is dropped with a NOTICE naming
 *	  it; a policy or a publication's column list or row filter makes the
 *	  change fail with a HINT, because dropping them would silently widen
 *	  who sees which rows or change what a subscriber receives.  Everything
 *	  runs in the caller's transaction, so such an error undoes the rebuild.
 *
 *	  pg_trickle's own indexes of the old table (the __pgt_row_id index and
 *	  the unique index on the old row identity) are not carried: the new
 *	  storage has its own.
 *
 * IDENTIFICATION
 *	  src/storage/keep.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_publication_rel.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_trigger.h"
#include "commands/comment.h"
#include "commands/tablespace.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

/* a column of the old storage */
typedef struct KeepColumn
{
	AttrNumber	attnum;
	char	   *name;
	Oid			typid;
	int32		typmod;
	Oid			collation;
	bool		notnull;
	Datum		acl;			/* (Datum) 0 for none */
	char	   *comment;
} KeepColumn;

/* an object replayed from its definition */
typedef enum KeepKind
{
	KEEP_INDEX,
	KEEP_CONSTRAINT,
	KEEP_TRIGGER,
	KEEP_STATISTICS,
	KEEP_POLICY
} KeepKind;

typedef struct KeepObject
{
	KeepKind	kind;
	char	   *name;
	char	   *sql;			/* statement recreating it */
	char	   *after;			/* statement run after it, or NULL */
	List	   *attnums;		/* int: old columns it reads */
	bool		replident;		/* index: it was the replica identity */
} KeepObject;

/* a publication the old storage was a member of */
typedef struct KeepPublication
{
	Oid			pubid;
	char	   *pubname;
	char	   *qual;			/* prqual nodeToString, or NULL */
	List	   *columns;		/* int: prattrs, NIL for all */
	List	   *attnums;		/* int: old columns the qual reads */
} KeepPublication;

struct PgtStorageKeep
{
	Oid			old_relid;
	char	   *relname;		/* unqualified, shared by old and new */
	char	   *qualified;
	Oid			tablespace;
	char		replident;
	bool		rowsecurity;
	bool		forcerowsecurity;
	Datum		acl;
	List	   *reloptions;		/* char *, "name=value" */
	char	   *comment;
	int			ncolumns;
	KeepColumn *columns;		/* indexed by old attnum - 1 */
	List	   *objects;		/* KeepObject */
	List	   *publications;	/* KeepPublication */
};

static List *column_deps(Oid classid, Oid objid, Oid relid);
static bool is_own_index(HeapTuple itup, Oid relid, List *identity_columns);
static AttrNumber new_attnum(PgtStorageKeep *keep, Oid relid, AttrNumber old);
static char *lost_column(PgtStorageKeep *keep, Oid relid, List *attnums);
static bool remap_vars(Node *node, void *context);
static const char *kind_name(KeepKind kind);
static void copy_acl(Oid relid, AttrNumber attnum, Datum acl);

typedef struct RemapContext
{
	PgtStorageKeep *keep;
	Oid			relid;
} RemapContext;

/*
 * pgt_storage_keep_save records what is attached to storage table relid,
 * before a rebuild drops it.  identity_columns are the names of the old
 * row-identity columns that pg_trickle indexed (NIL when it built no
 * unique index), so that its own indexes are not carried as the user's.
 */
PgtStorageKeep *
pgt_storage_keep_save(Oid relid, List *identity_columns)
{
	PgtStorageKeep *keep = palloc0(sizeof(PgtStorageKeep));
	Relation	rel = relation_open(relid, AccessExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	ListCell   *lc;
	MemoryContext outer;

	keep->old_relid = relid;
	keep->relname = pstrdup(RelationGetRelationName(rel));
	keep->qualified = pgt_qualified_name(relid);
	keep->tablespace = rel->rd_rel->reltablespace;
	keep->replident = rel->rd_rel->relreplident;
	keep->rowsecurity = rel->rd_rel->relrowsecurity;
	keep->forcerowsecurity = rel->rd_rel->relforcerowsecurity;
	keep->comment = GetComment(relid, RelationRelationId, 0);

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	keep->acl = isnull ? (Datum) 0 : PointerGetDatum(DatumGetAclPCopy(d));
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		int			nelems;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, NULL, &nelems);
		for (int i = 0; i < nelems; i++)
			keep->reloptions = lappend(keep->reloptions,
									   TextDatumGetCString(elems[i]));
	}
	ReleaseSysCache(tup);

	keep->ncolumns = desc->natts;
	keep->columns = palloc0(sizeof(KeepColumn) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		KeepColumn *col = &keep->columns[i];

		col->attnum = att->attnum;
		if (att->attisdropped)
			continue;
		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->collation = att->attcollation;
		col->notnull = att->attnotnull;
		col->comment = GetComment(relid, RelationRelationId, att->attnum);
		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
							  Int16GetDatum(att->attnum));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for attribute %d of relation %u",
				 att->attnum, relid);
		d = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attacl, &isnull);
		col->acl = isnull ? (Datum) 0 : PointerGetDatum(DatumGetAclPCopy(d));
		ReleaseSysCache(tup);
	}

	/* constraints first: they bring their own indexes */
	{
		Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;

		ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
								  NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
			KeepObject *obj;

			/* a constraint trigger is replayed with the triggers */
			if (con->contype == CONSTRAINT_TRIGGER)
				continue;
			obj = palloc0(sizeof(KeepObject));
			obj->kind = KEEP_CONSTRAINT;
			obj->name = pstrdup(NameStr(con->conname));
			/* with USING INDEX TABLESPACE where the index has one */
			obj->sql = pg_get_constraintdef_command(con->oid);
			obj->attnums = column_deps(ConstraintRelationId, con->oid, relid);
			/* the index's own column references (expressions, INCLUDE) */
			if (OidIsValid(con->conindid))
				obj->attnums = list_concat_unique_int(obj->attnums,
													  column_deps(RelationRelationId,
																  con->conindid, relid));
			keep->objects = lappend(keep->objects, obj);
		}
		systable_endscan(scan);
		table_close(conrel, AccessShareLock);
	}

	foreach(lc, RelationGetIndexList(rel))
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index idx;
		KeepObject *obj;

		if (!HeapTupleIsValid(itup))
			elog(ERROR, "cache lookup failed for index %u", indexoid);
		idx = (Form_pg_index) GETSTRUCT(itup);
		if (OidIsValid(get_index_constraint(indexoid)) ||
			is_own_index(itup, relid, identity_columns))
		{
			/* a constraint's index, or pg_trickle's: only the identity mark */
			if (idx->indisreplident)
			{
				ListCell   *lc2;

				foreach(lc2, keep->objects)
				{
					KeepObject *o = lfirst(lc2);

					if (o->kind == KEEP_CONSTRAINT &&
						get_index_constraint(indexoid) ==
						get_relation_constraint_oid(relid, o->name, true))
						o->replident = true;
				}
			}
			ReleaseSysCache(itup);
			continue;
		}
		obj = palloc0(sizeof(KeepObject));
		obj->kind = KEEP_INDEX;
		obj->name = get_rel_name(indexoid);
		/* with its TABLESPACE clause where it has one */
		obj->sql = pg_get_indexdef_string(indexoid);
		obj->attnums = column_deps(RelationRelationId, indexoid, relid);
		obj->replident = idx->indisreplident;
		keep->objects = lappend(keep->objects, obj);
		ReleaseSysCache(itup);
	}

	/*
	 * user triggers, constraint triggers included (not pg_trickle's guard,
	 * not the internal triggers of foreign keys, which come with them)
	 */
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *trig = &rel->trigdesc->triggers[i];
			KeepObject *obj;

			if (trig->tgisinternal ||
				strncmp(trig->tgname, PGT_HIDDEN_PREFIX, strlen(PGT_HIDDEN_PREFIX)) == 0)
				continue;
			obj = palloc0(sizeof(KeepObject));
			obj->kind = KEEP_TRIGGER;
			obj->name = pstrdup(trig->tgname);
			obj->sql = TextDatumGetCString(DirectFunctionCall1(pg_get_triggerdef,
															   ObjectIdGetDatum(trig->tgoid)));
			obj->attnums = column_deps(TriggerRelationId, trig->tgoid, relid);
			if (trig->tgenabled != TRIGGER_FIRES_ON_ORIGIN)
				obj->after = psprintf("ALTER TABLE %s %s TRIGGER %s", keep->qualified,
									  trig->tgenabled == TRIGGER_DISABLED ? "DISABLE" :
									  trig->tgenabled == TRIGGER_FIRES_ALWAYS ? "ENABLE ALWAYS" :
									  "ENABLE REPLICA",
									  quote_identifier(trig->tgname));
			keep->objects = lappend(keep->objects, obj);
		}
	}

	outer = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(relid)};
		MemoryContext spictx;

		/* extended statistics */
		pgt_spi_exec_args("SELECT s.oid, s.stxname::pg_catalog.text, "
						  "pg_catalog.pg_get_statisticsobjdef(s.oid) "
						  "FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = $1 "
						  "ORDER BY s.oid",
						  1, argtypes, values, NULL, true, SPI_OK_SELECT);
		spictx = MemoryContextSwitchTo(outer);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			TupleDesc	rd = SPI_tuptable->tupdesc;
			KeepObject *obj = palloc0(sizeof(KeepObject));

			obj->kind = KEEP_STATISTICS;
			obj->name = SPI_getvalue(row, rd, 2);
			obj->sql = SPI_getvalue(row, rd, 3);
			obj->attnums = column_deps(StatisticExtRelationId,
									   DatumGetObjectId(SPI_getbinval(row, rd, 1, &isnull)),
									   relid);
			keep->objects = lappend(keep->objects, obj);
		}
		MemoryContextSwitchTo(spictx);

		/* row-level security policies */
		pgt_spi_exec_args("SELECT p.oid, p.polname::pg_catalog.text, p.polpermissive, "
						  "p.polcmd::pg_catalog.text, "
						  "CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE "
						  "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.rolname), ', ' ORDER BY a.rolname) "
						  " FROM pg_catalog.pg_roles a WHERE a.oid = ANY (p.polroles)) END, "
						  "pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
						  "pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) "
						  "FROM pg_catalog.pg_policy p WHERE p.polrelid = $1 ORDER BY p.oid",
						  1, argtypes, values, NULL, true, SPI_OK_SELECT);
		spictx = MemoryContextSwitchTo(outer);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			TupleDesc	rd = SPI_tuptable->tupdesc;
			KeepObject *obj = palloc0(sizeof(KeepObject));
			StringInfoData sql;
			char	   *cmd = SPI_getvalue(row, rd, 4);
			char	   *qual = SPI_getvalue(row, rd, 6);
			char	   *check = SPI_getvalue(row, rd, 7);

			obj->kind = KEEP_POLICY;
			obj->name = SPI_getvalue(row, rd, 2);
			initStringInfo(&sql);
			appendStringInfo(&sql, "CREATE POLICY %s ON %s AS %s FOR %s TO %s",
							 quote_identifier(obj->name), keep->qualified,
							 DatumGetBool(SPI_getbinval(row, rd, 3, &isnull)) ?
							 "PERMISSIVE" : "RESTRICTIVE",
							 cmd[0] == 'r' ? "SELECT" : cmd[0] == 'a' ? "INSERT" :
							 cmd[0] == 'w' ? "UPDATE" : cmd[0] == 'd' ? "DELETE" : "ALL",
							 SPI_getvalue(row, rd, 5));
			if (qual != NULL)
				appendStringInfo(&sql, " USING (%s)", qual);
			if (check != NULL)
				appendStringInfo(&sql, " WITH CHECK (%s)", check);
			obj->sql = sql.data;
			obj->attnums = column_deps(PolicyRelationId,
									   DatumGetObjectId(SPI_getbinval(row, rd, 1, &isnull)),
									   relid);
			keep->objects = lappend(keep->objects, obj);
		}
		MemoryContextSwitchTo(spictx);

		/* publication membership (schema and ALL TABLES membership follow by itself) */
		pgt_spi_exec_args("SELECT r.oid, r.prpubid, p.pubname::pg_catalog.text, "
						  "r.prqual::pg_catalog.text, r.prattrs::pg_catalog.int2[] "
						  "FROM pg_catalog.pg_publication_rel r "
						  "JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid "
						  "WHERE r.prrelid = $1 ORDER BY r.oid",
						  1, argtypes, values, NULL, true, SPI_OK_SELECT);
		spictx = MemoryContextSwitchTo(outer);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];
			TupleDesc	rd = SPI_tuptable->tupdesc;
			KeepPublication *pub = palloc0(sizeof(KeepPublication));
			Datum		attrs;

			pub->pubid = DatumGetObjectId(SPI_getbinval(row, rd, 2, &isnull));
			pub->pubname = SPI_getvalue(row, rd, 3);
			pub->qual = SPI_getvalue(row, rd, 4);
			attrs = SPI_getbinval(row, rd, 5, &isnull);
			if (!isnull)
			{
				Datum	   *elems;
				int			nelems;

				deconstruct_array(DatumGetArrayTypeP(attrs), INT2OID, 2, true,
								  TYPALIGN_SHORT, &elems, NULL, &nelems);
				for (int j = 0; j < nelems; j++)
					pub->columns = lappend_int(pub->columns, DatumGetInt16(elems[j]));
			}
			pub->attnums = column_deps(PublicationRelRelationId,
									   DatumGetObjectId(SPI_getbinval(row, rd, 1, &isnull)),
									   relid);
			keep->publications = lappend(keep->publications, pub);
		}
		MemoryContextSwitchTo(spictx);
	}
	SPI_finish();

	relation_close(rel, NoLock);
	return keep;
}

/*
 * pgt_storage_keep_restore gives the new storage table relid (already
 * renamed to the old name, owned by the old owner) what keep recorded,
 * dropping with a NOTICE, or refusing, what read a column that is gone.
 */
void
pgt_storage_keep_restore(PgtStorageKeep *keep, Oid relid, const char *stname)
{
	ListCell   *lc;
	char	   *ident_index = NULL;
	bool		ident_lost = false;
	char	   *lost;
	StringInfoData sql;

	initStringInfo(&sql);

	/* refusals first, before anything is replayed */
	foreach(lc, keep->objects)
	{
		KeepObject *obj = lfirst(lc);

		if (obj->kind == KEEP_POLICY &&
			(lost = lost_column(keep, relid, obj->attnums)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot change the query of stream table \"%s\" because policy \"%s\" uses column \"%s\"",
							stname, obj->name, lost),
					 errdetail("The new query has no column \"%s\" of the same type.", lost),
					 errhint("Drop or change the policy first (DROP POLICY %s ON %s), then change the query and recreate it.",
							 quote_identifier(obj->name), keep->qualified)));
	}
	foreach(lc, keep->publications)
	{
		KeepPublication *pub = lfirst(lc);
		List	   *cols = list_concat_copy(pub->attnums, pub->columns);

		if ((lost = lost_column(keep, relid, cols)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot change the query of stream table \"%s\" because publication \"%s\" publishes column \"%s\"",
							stname, pub->pubname, lost),
					 errdetail("The publication's column list or row filter names \"%s\", and the new query has no column \"%s\" of the same type.",
							   lost, lost),
					 errhint("Change the publication first (ALTER PUBLICATION %s SET TABLE or DROP TABLE %s), then change the query.",
							 quote_identifier(pub->pubname), keep->qualified)));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (keep->tablespace != InvalidOid)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s SET TABLESPACE %s", keep->qualified,
						 quote_identifier(get_tablespace_name(keep->tablespace)));
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}
	if (keep->reloptions != NIL)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s SET (", keep->qualified);
		foreach(lc, keep->reloptions)
		{
			char	   *opt = pstrdup(lfirst(lc));
			char	   *eq = strchr(opt, '=');

			if (eq == NULL)
				continue;
			*eq = '\0';
			appendStringInfo(&sql, "%s%s = %s", foreach_current_index(lc) > 0 ? ", " : "",
							 quote_identifier(opt), quote_literal_cstr(eq + 1));
		}
		appendStringInfoChar(&sql, ')');
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}

	/* NOT NULL marks of surviving columns (a primary key sets its own) */
	for (int i = 0; i < keep->ncolumns; i++)
	{
		KeepColumn *col = &keep->columns[i];

		if (col->name == NULL || !col->notnull)
			continue;
		if (new_attnum(keep, relid, col->attnum) == InvalidAttrNumber)
			continue;
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
						 keep->qualified, quote_identifier(col->name));
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}

	foreach(lc, keep->objects)
	{
		KeepObject *obj = lfirst(lc);

		if ((lost = lost_column(keep, relid, obj->attnums)) != NULL)
		{
			ereport(NOTICE,
					(errmsg("%s \"%s\" of stream table \"%s\" is dropped: the new query has no column \"%s\" of the same type",
							kind_name(obj->kind), obj->name, stname, lost)));
			if (obj->replident)
				ident_lost = true;
			continue;
		}
		pgt_spi_exec(obj->sql, SPI_OK_UTILITY);
		if (obj->after != NULL)
			pgt_spi_exec(obj->after, SPI_OK_UTILITY);
		if (obj->replident)
		{
			if (obj->kind == KEEP_CONSTRAINT)
			{
				Oid			conid = get_relation_constraint_oid(relid, obj->name, false);

				ident_index = get_rel_name(get_constraint_index(conid));
			}
			else
				ident_index = obj->name;
		}
	}

	/* the new storage starts as REPLICA IDENTITY FULL (pgt_storage_create) */
	resetStringInfo(&sql);
	if (keep->replident == REPLICA_IDENTITY_INDEX && ident_index != NULL)
		appendStringInfo(&sql, "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s",
						 keep->qualified, quote_identifier(ident_index));
	else if (keep->replident == REPLICA_IDENTITY_DEFAULT)
		appendStringInfo(&sql, "ALTER TABLE %s REPLICA IDENTITY DEFAULT", keep->qualified);
	else if (keep->replident == REPLICA_IDENTITY_NOTHING)
		appendStringInfo(&sql, "ALTER TABLE %s REPLICA IDENTITY NOTHING", keep->qualified);
	if (sql.len > 0)
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	if (ident_lost)
		ereport(NOTICE,
				(errmsg("stream table \"%s\" now has REPLICA IDENTITY FULL: its replica identity index was dropped",
						stname)));

	if (keep->rowsecurity || keep->forcerowsecurity)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s %s%s%s", keep->qualified,
						 keep->rowsecurity ? "ENABLE ROW LEVEL SECURITY" : "",
						 keep->rowsecurity && keep->forcerowsecurity ? ", " : "",
						 keep->forcerowsecurity ? "FORCE ROW LEVEL SECURITY" : "");
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}
	SPI_finish();

	/* publications: added as they were, with the filter's columns renumbered */
	foreach(lc, keep->publications)
	{
		KeepPublication *pub = lfirst(lc);
		PublicationRelInfo pri;
		ListCell   *lc2;

		pri.relation = table_open(relid, ShareUpdateExclusiveLock);
		pri.whereClause = NULL;
		pri.columns = NIL;
		if (pub->qual != NULL)
		{
			RemapContext ctx = {keep, relid};

			pri.whereClause = stringToNode(pub->qual);
			(void) remap_vars(pri.whereClause, &ctx);
		}
		foreach(lc2, pub->columns)
			pri.columns = lappend(pri.columns,
								  makeString(pstrdup(keep->columns[lfirst_int(lc2) - 1].name)));
		(void) publication_add_relation(pub->pubid, &pri, true);
		table_close(pri.relation, NoLock);
	}

	/*
	 * A subscriber receiving the stream table still holds the old storage's
	 * rows (dropping a table replicates nothing): an empty TRUNCATE of the
	 * new storage, published like the old one by now, makes it drop them
	 * before the full refresh's rows arrive, in this same transaction.
	 */
	CommandCounterIncrement();
	resetStringInfo(&sql);
	appendStringInfo(&sql, "TRUNCATE %s", keep->qualified);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_internal_write_depth++;
	PG_TRY();
	{
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}
	PG_FINALLY();
	{
		pgt_internal_write_depth--;
	}
	PG_END_TRY();
	SPI_finish();

	/* comments and grants of the table and its surviving columns */
	CommandCounterIncrement();
	if (keep->comment != NULL)
		CreateComments(relid, RelationRelationId, 0, keep->comment);
	copy_acl(relid, 0, keep->acl);
	for (int i = 0; i < keep->ncolumns; i++)
	{
		KeepColumn *col = &keep->columns[i];
		AttrNumber	attnum;

		if (col->name == NULL || (col->comment == NULL && col->acl == (Datum) 0))
			continue;
		attnum = new_attnum(keep, relid, col->attnum);
		if (attnum == InvalidAttrNumber)
		{
			ereport(NOTICE,
					(errmsg("%s of column \"%s\" of stream table \"%s\" %s dropped: the new query has no column \"%s\" of the same type",
							col->comment != NULL && col->acl != (Datum) 0 ? "comment and grants" :
							col->comment != NULL ? "comment" : "grants",
							col->name, stname,
							col->comment != NULL && col->acl != (Datum) 0 ? "are" :
							col->comment != NULL ? "is" : "are",
							col->name)));
			continue;
		}
		if (col->comment != NULL)
			CreateComments(relid, RelationRelationId, attnum, col->comment);
		copy_acl(relid, attnum, col->acl);
	}
	CommandCounterIncrement();
}

/*
 * column_deps returns the attnums of relid's columns that object
 * (classid, objid) depends on.
 */
static List *
column_deps(Oid classid, Oid objid, Oid relid)
{
	Relation	deprel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(classid));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(objid));
	scan = systable_beginscan(deprel, DependDependerIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->refclassid == RelationRelationId && dep->refobjid == relid &&
			dep->refobjsubid > 0)
			result = list_append_unique_int(result, dep->refobjsubid);
	}
	systable_endscan(scan);
	table_close(deprel, AccessShareLock);
	return result;
}

/*
 * is_own_index is true for the indexes pgt_storage_create builds: the
 * plain btree on __pgt_row_id and the unique index on exactly the
 * row-identity columns.
 */
static bool
is_own_index(HeapTuple itup, Oid relid, List *identity_columns)
{
	Form_pg_index idx = (Form_pg_index) GETSTRUCT(itup);
	List	   *names = NIL;

	if (!heap_attisnull(itup, Anum_pg_index_indexprs, NULL) ||
		!heap_attisnull(itup, Anum_pg_index_indpred, NULL))
		return false;
	for (int i = 0; i < idx->indnkeyatts; i++)
	{
		if (idx->indkey.values[i] <= 0)
			return false;
		names = lappend(names, get_attname(relid, idx->indkey.values[i], false));
	}
	if (idx->indnatts != idx->indnkeyatts)
		return false;
	if (!idx->indisunique && list_length(names) == 1 &&
		strcmp(linitial(names), PGT_ROW_ID_COLUMN) == 0)
		return true;
	if (idx->indisunique && idx->indnullsnotdistinct && identity_columns != NIL &&
		list_length(names) == list_length(identity_columns))
	{
		ListCell   *lc;

		foreach(lc, identity_columns)
		{
			ListCell   *lc2;
			bool		found = false;

			foreach(lc2, names)
				found |= strcmp(lfirst(lc), lfirst(lc2)) == 0;
			if (!found)
				return false;
		}
		return true;
	}
	return false;
}

/*
 * new_attnum maps old column attnum to the new storage's column of the
 * same name, type, typmod and collation; InvalidAttrNumber if none.
 */
static AttrNumber
new_attnum(PgtStorageKeep *keep, Oid relid, AttrNumber old)
{
	KeepColumn *col;
	AttrNumber	attnum;
	Oid			typid;
	int32		typmod;
	Oid			collation;

	if (old <= 0 || old > keep->ncolumns)
		return InvalidAttrNumber;
	col = &keep->columns[old - 1];
	if (col->name == NULL)
		return InvalidAttrNumber;
	attnum = get_attnum(relid, col->name);
	if (attnum <= 0)
		return InvalidAttrNumber;
	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collation);
	if (typid != col->typid || typmod != col->typmod || collation != col->collation)
		return InvalidAttrNumber;
	return attnum;
}

/* lost_column returns the name of the first of attnums that does not survive */
static char *
lost_column(PgtStorageKeep *keep, Oid relid, List *attnums)
{
	ListCell   *lc;

	foreach(lc, attnums)
	{
		if (new_attnum(keep, relid, lfirst_int(lc)) == InvalidAttrNumber)
			return keep->columns[lfirst_int(lc) - 1].name;
	}
	return NULL;
}

/* remap_vars renumbers a row filter's columns to the new storage in place */
static bool
remap_vars(Node *node, void *context)
{
	RemapContext *ctx = context;

	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varattno > 0)
		{
			var->varattno = new_attnum(ctx->keep, ctx->relid, var->varattno);
			var->varattnosyn = var->varattno;
			Assert(var->varattno != InvalidAttrNumber);
		}
		return false;
	}
	return expression_tree_walker(node, remap_vars, context);
}

static const char *
kind_name(KeepKind kind)
{
	switch (kind)
	{
		case KEEP_INDEX:
			return "index";
		case KEEP_CONSTRAINT:
			return "constraint";
		case KEEP_TRIGGER:
			return "trigger";
		case KEEP_STATISTICS:
			return "statistics object";
		case KEEP_POLICY:
			return "policy";
	}
	return "object";
}

/*
 * copy_acl sets the grants of relid (attnum 0) or of its column attnum to
 * acl, exactly as they were on the old storage (same grantors; the owner
 * is the same), and records the roles it names in pg_shdepend.
 */
static void
copy_acl(Oid relid, AttrNumber attnum, Datum acl)
{
	Relation	catrel;
	HeapTuple	tup;
	HeapTuple	newtup;
	Datum		cur;
	bool		isnull;
	Oid		   *oldmembers = NULL;
	Oid		   *newmembers = NULL;
	int			noldmembers = 0;
	int			nnewmembers = 0;
	int			aclcol = attnum == 0 ? Anum_pg_class_relacl : Anum_pg_attribute_attacl;
	int			ncols = attnum == 0 ? Natts_pg_class : Natts_pg_attribute;
	Datum	   *values = palloc0(sizeof(Datum) * ncols);
	bool	   *nulls = palloc0(sizeof(bool) * ncols);
	bool	   *replace = palloc0(sizeof(bool) * ncols);
	Oid			owner;

	if (acl == (Datum) 0)
	{
		/* the new storage has no grants either, unless default privileges gave some */
		tup = attnum == 0 ? SearchSysCache1(RELOID, ObjectIdGetDatum(relid)) :
			SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		(void) SysCacheGetAttr(attnum == 0 ? RELOID : ATTNUM, tup, aclcol, &isnull);
		ReleaseSysCache(tup);
		if (isnull)
			return;
	}

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (attnum == 0)
	{
		catrel = table_open(RelationRelationId, RowExclusiveLock);
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	}
	else
	{
		catrel = table_open(AttributeRelationId, RowExclusiveLock);
		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	}
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	cur = heap_getattr(tup, aclcol, RelationGetDescr(catrel), &isnull);
	if (!isnull)
		noldmembers = aclmembers(DatumGetAclP(cur), &oldmembers);
	if (acl != (Datum) 0)
		nnewmembers = aclmembers(DatumGetAclP(acl), &newmembers);

	values[aclcol - 1] = acl;
	nulls[aclcol - 1] = acl == (Datum) 0;
	replace[aclcol - 1] = true;
	newtup = heap_modify_tuple(tup, RelationGetDescr(catrel), values, nulls, replace);
	CatalogTupleUpdate(catrel, &newtup->t_self, newtup);
	ReleaseSysCache(tup);
	table_close(catrel, RowExclusiveLock);

	updateAclDependencies(RelationRelationId, relid, attnum, owner,
						  noldmembers, oldmembers, nnewmembers, newmembers);
	CommandCounterIncrement();
}
