/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  The heap table that holds a stream table's rows.
 *
 *	  A stream table is an ordinary heap table, owned by the user who
 *	  created it, in the schema they named.  Its columns are the query's
 *	  output columns in order, followed by pg_trickle's hidden columns, all
 *	  named __pgt_*:
 *
 *	  __pgt_row_id bigint  a 64-bit hash of the row identity (all columns
 *	                       for a multiset result, the GROUP BY / DISTINCT
 *	                       columns for a set result, a constant for a
 *	                       global aggregate).  It is only an index key for
 *	                       finding candidate rows: every match is rechecked
 *	                       on the identity columns themselves, so a hash
 *	                       collision can never merge two rows.
 *
 *	  Indexes: a btree on __pgt_row_id; for set results, additionally a
 *	  UNIQUE NULLS NOT DISTINCT index on the identity columns, which is the
 *	  real guarantee that no identity appears twice.
 *
 *	  Replica identity FULL, so that a stream table in a publication can be
 *	  refreshed (keep.c carries a user's choice across a rebuild).
 *
 *	  A statement-level BEFORE trigger (__pgt_guard) refuses INSERT, UPDATE,
 *	  DELETE and TRUNCATE unless pg_trickle itself is writing.
 *
 *	  Dependencies in pg_depend: the storage table depends normally on
 *	  every relation the query reads (so DROP of a source is refused, and
 *	  DROP ... CASCADE drops the stream table too) and normally on the
 *	  extension (so DROP EXTENSION refuses while stream tables exist, and
 *	  DROP EXTENSION ... CASCADE drops them).
 *
 * IDENTIFICATION
 *	  src/storage/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "access/nbtree.h"

#include "pg_trickle/dvm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/storage.h"
#include "pg_trickle/util.h"

static void append_column_type(StringInfo buf, PgtColumn *col);

/*
 * pgt_storage_create creates the storage table relname in namespace nspid
 * for analysis, owned by the current user, with its indexes, guard trigger
 * and dependencies, and returns its OID.  Errors (leaving nothing behind,
 * as the caller's transaction aborts) if the user may not create it.
 */
Oid
pgt_storage_create(Oid nspid, const char *relname, PgtAnalysis *analysis)
{
	StringInfoData buf;
	char	   *qualified;
	ListCell   *lc;
	Oid			relid;
	bool		first = true;

	qualified = quote_qualified_identifier(get_namespace_name(nspid), relname);

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (", qualified);
	foreach(lc, analysis->columns)
	{
		PgtColumn  *col = lfirst(lc);

		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		appendStringInfo(&buf, "%s ", quote_identifier(col->name));
		append_column_type(&buf, col);
	}
	if (analysis->agg_layout != NULL)
	{
		foreach(lc, pgt_dvm_agg_hidden_columns(analysis->agg_layout))
			appendStringInfo(&buf, ", %s", (char *) lfirst(lc));
	}
	appendStringInfo(&buf, ", %s bigint NOT NULL)", PGT_ROW_ID_COLUMN);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	pgt_spi_exec(buf.data, SPI_OK_UTILITY);

	resetStringInfo(&buf);
	appendStringInfo(&buf, "CREATE INDEX ON %s (%s)", qualified, PGT_ROW_ID_COLUMN);
	pgt_spi_exec(buf.data, SPI_OK_UTILITY);

	if (analysis->identity == PGT_IDENTITY_GROUP_KEY && analysis->identity_unique)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "CREATE UNIQUE INDEX ON %s (", qualified);
		first = true;
		foreach(lc, analysis->columns)
		{
			PgtColumn  *col = lfirst(lc);

			if (!col->is_key)
				continue;
			if (!first)
				appendStringInfoString(&buf, ", ");
			first = false;
			appendStringInfoString(&buf, quote_identifier(col->name));
		}
		appendStringInfoString(&buf, ") NULLS NOT DISTINCT");
		pgt_spi_exec(buf.data, SPI_OK_UTILITY);
	}

	/*
	 * Publishable out of the box: no index of the storage can be a replica
	 * identity (its columns are nullable, __pgt_row_id is not unique), so
	 * UPDATE and DELETE log the whole old row (docs/ARCHITECTURE.md,
	 * "Replication").
	 */
	resetStringInfo(&buf);
	appendStringInfo(&buf, "ALTER TABLE %s REPLICA IDENTITY FULL", qualified);
	pgt_spi_exec(buf.data, SPI_OK_UTILITY);

	resetStringInfo(&buf);
	appendStringInfo(&buf,
					 "CREATE TRIGGER __pgt_guard BEFORE INSERT OR UPDATE OR DELETE "
					 "OR TRUNCATE ON %s FOR EACH STATEMENT "
					 "EXECUTE FUNCTION pgtrickle._st_guard()", qualified);
	pgt_spi_create_own_trigger(buf.data);

	SPI_finish();

	relid = get_relname_relid(relname, nspid);
	if (!OidIsValid(relid))
		elog(ERROR, "could not find new storage table \"%s\"", relname);

	pgt_storage_record_dependencies(relid, analysis->sources);
	pgt_storage_record_extension_dependency(relid);

	return relid;
}

/*
 * pgt_storage_record_extension_dependency makes storage table relid depend
 * normally on the extension: DROP EXTENSION pg_trickle refuses while stream
 * tables exist, and DROP EXTENSION ... CASCADE drops them.  (Not a member:
 * pg_dump dumps stream tables with their rows, indexes and grants.)
 */
void
pgt_storage_record_extension_dependency(Oid relid)
{
	ObjectAddress st_addr;
	ObjectAddress ext_addr;
	Oid			ext = get_extension_oid("pg_trickle", false);

	ObjectAddressSet(st_addr, RelationRelationId, relid);
	ObjectAddressSet(ext_addr, ExtensionRelationId, ext);
	deleteDependencyRecordsForSpecific(RelationRelationId, relid, DEPENDENCY_AUTO,
									   ExtensionRelationId, ext);
	deleteDependencyRecordsForSpecific(RelationRelationId, relid, DEPENDENCY_NORMAL,
									   ExtensionRelationId, ext);
	recordDependencyOn(&st_addr, &ext_addr, DEPENDENCY_NORMAL);
}

/*
 * pgt_storage_record_dependencies replaces the normal dependencies of
 * storage table relid on other relations with one per source.
 */
void
pgt_storage_record_dependencies(Oid relid, List *sources)
{
	ObjectAddress st_addr;
	ListCell   *lc;

	ObjectAddressSet(st_addr, RelationRelationId, relid);
	deleteDependencyRecordsForClass(RelationRelationId, relid,
									RelationRelationId, DEPENDENCY_NORMAL);
	foreach(lc, sources)
	{
		PgtSource  *src = lfirst(lc);
		ObjectAddress src_addr;

		if (src->relid == relid)
			continue;
		ObjectAddressSet(src_addr, RelationRelationId, src->relid);
		recordDependencyOn(&st_addr, &src_addr, DEPENDENCY_NORMAL);
	}
}

/*
 * pgt_storage_matches is true when storage table relid already has exactly
 * the visible columns (names, types, typmods, collations, order) that
 * analysis produces, so a new query can reuse it.
 */
bool
pgt_storage_matches(Oid relid, PgtAnalysis *analysis)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ListCell   *lc = list_head(analysis->columns);
	bool		match = true;
	List	   *hidden = NIL;
	List	   *want = list_make1(PGT_ROW_ID_COLUMN);
	ListCell   *lc2;

	if (analysis->agg_layout != NULL)
	{
		foreach(lc2, pgt_dvm_agg_hidden_columns(analysis->agg_layout))
		{
			char	   *def = pstrdup(lfirst(lc2));

			*strchr(def, ' ') = '\0';
			want = lappend(want, def);
		}
	}

	for (int i = 0; i < desc->natts && match; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		PgtColumn  *col;

		if (att->attisdropped)
			continue;
		if (strncmp(NameStr(att->attname), PGT_HIDDEN_PREFIX,
					strlen(PGT_HIDDEN_PREFIX)) == 0)
		{
			hidden = lappend(hidden, NameStr(att->attname));
			continue;
		}
		if (lc == NULL)
		{
			match = false;
			break;
		}
		col = lfirst(lc);
		if (strcmp(NameStr(att->attname), col->name) != 0 ||
			att->atttypid != col->typid || att->atttypmod != col->typmod ||
			att->attcollation != col->collation)
			match = false;
		lc = lnext(analysis->columns, lc);
	}
	if (lc != NULL)
		match = false;
	/* the hidden columns must be exactly those the new query needs */
	if (list_length(hidden) != list_length(want))
		match = false;
	foreach(lc2, want)
	{
		bool		found = false;
		ListCell   *lc3;

		foreach(lc3, hidden)
		{
			if (strcmp(lfirst(lc2), lfirst(lc3)) == 0)
				found = true;
		}
		if (!found)
			match = false;
	}

	relation_close(rel, AccessShareLock);
	return match;
}

/*
 * pgt_storage_drop drops storage table relid; with cascade, objects that
 * depend on it (views, other stream tables) go too.
 */
void
pgt_storage_drop(Oid relid, bool cascade)
{
	char	   *sql = psprintf("DROP TABLE %s%s", pgt_qualified_name(relid),
							   cascade ? " CASCADE" : "");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_spi_exec(sql, SPI_OK_UTILITY);
	SPI_finish();
}

/*
 * pgt_storage_row_id_expr returns the SQL expression computing
 * __pgt_row_id from the columns of a relation aliased alias.
 *
 * Each column is hashed the way its equality sees it, since rows whose
 * keys are equal must get one identity: by its type's extended hash
 * function (hash_record_extended finds it), else by its hash function,
 * else through its text form.  The text form is only faithful to
 * equalities of pg_catalog types (and to types without equality, whose
 * rows are matched by their text); a type with its own equality, no hash
 * function and values that can be equal yet print differently (cube: -0
 * and 0) adds nothing to the hash, and the key comparison after it
 * decides.  (Hashes of pg_catalog types stay as they were: stored
 * identities of existing stream tables must still match.)
 */
char *
pgt_storage_row_id_expr(List *columns, PgtRowIdentity identity,
						const char *alias)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	if (identity == PGT_IDENTITY_SINGLETON)
		return pstrdup("0::pg_catalog.int8");

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_catalog.hash_record_extended(ROW(");
	foreach(lc, columns)
	{
		PgtColumn  *col = lfirst(lc);
		TypeCacheEntry *tc;

		if (identity == PGT_IDENTITY_GROUP_KEY && !col->is_key)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		tc = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR | TYPECACHE_HASH_PROC |
							   TYPECACHE_HASH_EXTENDED_PROC);
		if (OidIsValid(tc->hash_extended_proc))
			appendStringInfo(&buf, "%s.%s", quote_identifier(alias),
							 quote_identifier(col->name));
		else if (!OidIsValid(tc->eq_opr) || pgt_operator_is_plain(tc->eq_opr))
			appendStringInfo(&buf, "%s.%s::pg_catalog.text",
							 quote_identifier(alias), quote_identifier(col->name));
		else if (OidIsValid(tc->hash_proc))
		{
			Oid		   *argtypes;
			int			nargs;

			/* its argument may be a binary-compatible type: cast to it */
			(void) get_func_signature(tc->hash_proc, &argtypes, &nargs);
			appendStringInfo(&buf, "%s(%s.%s::%s)",
							 quote_qualified_identifier(get_namespace_name(get_func_namespace(tc->hash_proc)),
														get_func_name(tc->hash_proc)),
							 quote_identifier(alias), quote_identifier(col->name),
							 format_type_be_qualified(argtypes[0]));
		}
		else if (pgt_storage_equal_is_identity(col->typid, col->collation))
			appendStringInfo(&buf, "%s.%s::pg_catalog.text",
							 quote_identifier(alias), quote_identifier(col->name));
		else
			appendStringInfoString(&buf, "0");
	}
	appendStringInfoString(&buf, "), 0)");
	return buf.data;
}

/*
 * pgt_storage_column_names returns the quoted, comma-separated visible
 * column names.
 */
List *
pgt_storage_column_names(List *columns)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, columns)
		result = lappend(result,
						 (char *) quote_identifier(((PgtColumn *) lfirst(lc))->name));
	return result;
}

static void
append_column_type(StringInfo buf, PgtColumn *col)
{
	appendStringInfoString(buf,
						   format_type_extended(col->typid, col->typmod,
												FORMAT_TYPE_TYPEMOD_GIVEN |
												FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(col->collation) &&
		col->collation != get_typcollation(col->typid))
	{
		HeapTuple	tup = SearchSysCache1(COLLOID,
											  ObjectIdGetDatum(col->collation));
		Form_pg_collation coll;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for collation %u", col->collation);
		coll = (Form_pg_collation) GETSTRUCT(tup);
		appendStringInfo(buf, " COLLATE %s",
						 quote_qualified_identifier(get_namespace_name(coll->collnamespace),
													NameStr(coll->collname)));
		ReleaseSysCache(tup);
	}
}

/*
 * pgt_storage_equal_is_identity is true when values of typid (with
 * collation) that compare equal are also identical, so that grouping by
 * the value cannot merge, say, numeric 1.10 and 1.1 or float -0 and 0,
 * which print differently.  Uses the btree "equalimage" support function.
 */
bool
pgt_storage_equal_is_identity(Oid typid, Oid collation)
{
	TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_BTREE_OPFAMILY);
	Oid			proc;

	if (!OidIsValid(tc->btree_opf))
		return false;
	proc = get_opfamily_proc(tc->btree_opf, tc->btree_opintype, tc->btree_opintype,
							 BTEQUALIMAGE_PROC);
	if (!OidIsValid(proc))
		return false;
	return DatumGetBool(OidFunctionCall1Coll(proc, collation, ObjectIdGetDatum(typid)));
}
