/*-------------------------------------------------------------------------
 *
 * cdc.c
 *	  Change capture: per-source change buffers filled by statement
 *	  triggers.
 *
 *	  Every base table (or stream table) that some DIFFERENTIAL stream table
 *	  reads gets one change buffer, pgtrickle_changes.changes_<relid>,
 *	  shared by all its readers, and four statement-level AFTER triggers
 *	  (__pgt_cdc_ins/_upd/_del with transition tables, __pgt_cdc_trunc).
 *	  A buffer row is
 *
 *	    (__pgt_xid xid8, __pgt_w int4, <captured source columns>)
 *
 *	  where __pgt_w is +1 for a row that appeared, -1 for a row that
 *	  disappeared (an UPDATE writes both) and 0 for a TRUNCATE marker.
 *	  __pgt_xid is the writer's top-level transaction id.  Consumers never
 *	  order changes by it: a refresh consumes exactly the rows whose
 *	  transaction is visible in its own snapshot and was not visible in the
 *	  snapshot of the previous refresh (its frontier).  That is what makes
 *	  capture exactly-once without stamps assigned before commit.
 *
 *	  Captured columns are the union of the columns any reader uses; a new
 *	  reader that needs more adds columns (older rows hold NULL there, but
 *	  no reader that needs the column can see those rows: they precede its
 *	  first frontier).
 *
 *	  The trigger function is SECURITY DEFINER (the extension owner), so
 *	  writers need no privilege on the buffer.  It copies the transition
 *	  table's rows straight into the buffer's heap and index (no SPI), using
 *	  a column map built once per backend and firing table and forgotten on
 *	  any relcache invalidation of the table or the buffer.
 *
 * IDENTIFICATION
 *	  src/cdc/cdc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "utils/fmgroids.h"
#include "catalog/indexing.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/tuplestore.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/extension.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/xid8.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "funcapi.h"

#include "pg_trickle/cdc.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/scheduler.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_cdc_capture);
PG_FUNCTION_INFO_V1(pgt_changes);

/* how one firing table's rows map onto its buffer's columns */
typedef struct CaptureMap
{
	Oid			table;			/* hash key: source or partition */
	Oid			source;			/* the source whose buffer it feeds */
	Oid			buffer;
	Oid			index;			/* the buffer's index on __pgt_xid */
	AttrNumber *map;			/* per buffer column: table attnum, 0 = NULL */
} CaptureMap;

static HTAB *capture_maps = NULL;

static const char *const capture_triggers[4] = {
	"__pgt_cdc_ins", "__pgt_cdc_upd", "__pgt_cdc_del", "__pgt_cdc_trunc"
};
/* sources consumed by an own-xid refresh, with the nesting level it ran at */
static List *consumed_in_xact = NIL;
static List *consumed_levels = NIL;
static bool callbacks_registered = false;

static void register_callbacks(void);
static void capture_plan_inval(Datum arg, Oid relid);
static void capture_xact_callback(XactEvent event, void *arg);
static void capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);
static void append_rows(TriggerData *td, CaptureMap *map, Tuplestorestate *ts,
						int w, Datum xid);
static CaptureMap *get_capture_map(Oid table, Oid buffer, Oid source);
static CaptureMap *capture_target(Oid table);
static void install_triggers(Oid source, List *targets, bool replace);

/*
 * pgt_cdc_buffer_name returns the unqualified name of relid's change buffer.
 */
char *
pgt_cdc_buffer_name(Oid relid)
{
	return psprintf("changes_%u", relid);
}

/*
 * pgt_cdc_buffer_relid returns the OID of relid's change buffer, or
 * InvalidOid if it has none.
 */
Oid
pgt_cdc_buffer_relid(Oid relid)
{
	Oid			nsp = get_namespace_oid(PGT_CHANGES_SCHEMA, true);
	char		name[NAMEDATALEN];

	if (!OidIsValid(nsp))
		return InvalidOid;
	snprintf(name, sizeof(name), "changes_%u", relid);
	return get_relname_relid(name, nsp);
}

/*
 * pgt_cdc_captured_attnums returns the source attribute numbers that
 * relid's buffer captures (empty if there is no buffer).
 */
Bitmapset *
pgt_cdc_captured_attnums(Oid relid)
{
	Oid			buffer = pgt_cdc_buffer_relid(relid);
	Bitmapset  *result = NULL;
	Relation	brel;
	TupleDesc	bdesc;

	if (!OidIsValid(buffer))
		return NULL;
	brel = relation_open(buffer, AccessShareLock);
	bdesc = RelationGetDescr(brel);
	for (int i = 0; i < bdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(bdesc, i);
		AttrNumber	srcatt;

		/* the two bookkeeping columns; a source column may well be "__pgt_x" */
		if (att->attisdropped || i < 2)
			continue;
		srcatt = get_attnum(relid, NameStr(att->attname));
		if (srcatt != InvalidAttrNumber)
			result = bms_add_member(result, srcatt);
	}
	relation_close(brel, AccessShareLock);
	return result;
}

/*
 * pgt_cdc_ensure_capture makes sure base table relid has a change buffer
 * capturing at least the attributes in attnums (plus its primary key) and,
 * with triggers, its capture triggers (a restore leaves them to pg_restore,
 * which creates the dumped ones later).  Readers need no grant: buffers are
 * read through pgt_changes().  Runs the DDL as the extension owner.
 * Caller's transaction; errors if relid cannot carry triggers.
 */
void
pgt_cdc_ensure_capture(Oid relid, Bitmapset *attnums, bool triggers)
{
	Relation	rel;
	TupleDesc	desc;
	Oid			buffer = pgt_cdc_buffer_relid(relid);
	Bitmapset  *have = pgt_cdc_captured_attnums(relid);
	Bitmapset  *pk;
	char	   *qbuf = quote_qualified_identifier(PGT_CHANGES_SCHEMA,
												  pgt_cdc_buffer_name(relid));
	StringInfoData sql;
	PgtRoleSave save;
	int			attno;
	Oid			basetype;
	int32		typmod;

	/*
	 * Stop concurrent writers while triggers change; they would be missed.
	 * Without triggers (a restore), the buffer alone changes, and its own
	 * locks order it with capture.
	 */
	rel = relation_open(relid, triggers ? ShareRowExclusiveLock : AccessShareLock);
	desc = RelationGetDescr(rel);
	pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	attno = -1;
	while ((attno = bms_next_member(pk, attno)) >= 0)
		attnums = bms_add_member(attnums,
								 attno + FirstLowInvalidHeapAttributeNumber);

	initStringInfo(&sql);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);

	if (!OidIsValid(buffer))
	{
		appendStringInfo(&sql,
						 "CREATE TABLE %s (" PGT_BUFFER_XID_COLUMN " pg_catalog.xid8 NOT NULL, "
						 PGT_BUFFER_W_COLUMN " pg_catalog.int4 NOT NULL)", qbuf);
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX ON %s (" PGT_BUFFER_XID_COLUMN ")", qbuf);
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s SET (autovacuum_vacuum_scale_factor = 0.01)",
						 qbuf);
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
		/* trimming deletes rows: it must work in a FOR ALL TABLES publication */
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s REPLICA IDENTITY FULL", qbuf);
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}

	attno = -1;
	while ((attno = bms_next_member(attnums, attno)) >= 0)
	{
		Form_pg_attribute att;

		if (attno <= 0 || attno > desc->natts || bms_is_member(attno, have))
			continue;
		att = TupleDescAttr(desc, attno - 1);
		if (att->attisdropped)
			continue;

		/*
		 * A domain's base type: adding a domain column would evaluate its
		 * CHECK constraints, which are user code, as the extension owner.
		 */
		typmod = att->atttypmod;
		basetype = getBaseTypeAndTypmod(att->atttypid, &typmod);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s ADD COLUMN %s %s", qbuf,
						 quote_identifier(NameStr(att->attname)),
						 format_type_extended(basetype, typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
		if (OidIsValid(att->attcollation))
			appendStringInfo(&sql, " COLLATE %s",
							 generate_collation_name(att->attcollation));
		pgt_spi_exec(sql.data, SPI_OK_UTILITY);
	}

	pgt_role_restore(&save);
	SPI_finish();

	/*
	 * The buffer is a member of the extension: DROP EXTENSION takes it with
	 * it, and pg_dump leaves it out (its rows name transactions of this
	 * cluster; a restored stream table starts with a FULL refresh).
	 */
	CommandCounterIncrement();
	if (!OidIsValid(buffer))
	{
		ObjectAddress ext;
		ObjectAddress obj;

		ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid("pg_trickle", false));
		ObjectAddressSet(obj, RelationRelationId, pgt_cdc_buffer_relid(relid));
		recordDependencyOn(&obj, &ext, DEPENDENCY_EXTENSION);
	}

	/*
	 * Triggers on the source and on every partition or inheritance child: a
	 * statement aimed at one of them fires only its own triggers.
	 * Partitions created or attached later get theirs from the
	 * ddl_command_end trigger (pgt_cdc_adopt_child).
	 */
	if (triggers)
		install_triggers(relid, find_all_inheritors(relid, ShareRowExclusiveLock, NULL), false);
	relation_close(rel, NoLock);
}

/*
 * install_triggers gives every table in targets that has none the capture
 * triggers feeding source's buffer, as the extension owner; with replace,
 * existing ones are replaced (a detached partition's still name its old
 * root).  DROP EXTENSION takes them with it.
 */
static void
install_triggers(Oid source, List *targets, bool replace)
{
	StringInfoData sql;
	PgtRoleSave save;
	List	   *new_targets = NIL;
	ListCell   *lc;
	ObjectAddress ext;

	initStringInfo(&sql);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	foreach(lc, targets)
	{
		Oid			target = lfirst_oid(lc);
		const char *defs[4][2] = {
			{"__pgt_cdc_ins", "AFTER INSERT ON %s REFERENCING NEW TABLE AS __pgt_new"},
			{"__pgt_cdc_upd", "AFTER UPDATE ON %s REFERENCING OLD TABLE AS __pgt_old NEW TABLE AS __pgt_new"},
			{"__pgt_cdc_del", "AFTER DELETE ON %s REFERENCING OLD TABLE AS __pgt_old"},
			{"__pgt_cdc_trunc", "AFTER TRUNCATE ON %s"}
		};

		if (OidIsValid(get_trigger_oid(target, "__pgt_cdc_ins", true)))
		{
			if (!replace)
				continue;
			for (int i = 0; i < 4; i++)
			{
				resetStringInfo(&sql);
				appendStringInfo(&sql, "DROP TRIGGER IF EXISTS %s ON %s", defs[i][0],
								 pgt_qualified_name(target));
				pgt_spi_exec(sql.data, SPI_OK_UTILITY);
			}
		}
		for (int i = 0; i < 4; i++)
		{
			resetStringInfo(&sql);
			appendStringInfo(&sql, "CREATE TRIGGER %s ", defs[i][0]);
			appendStringInfo(&sql, defs[i][1], pgt_qualified_name(target));
			appendStringInfo(&sql,
							 " FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle._cdc_capture('%u')",
							 source);
			pgt_spi_create_own_trigger(sql.data);
		}
		new_targets = lappend_oid(new_targets, target);
	}
	pgt_role_restore(&save);
	SPI_finish();

	CommandCounterIncrement();
	ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid("pg_trickle", false));
	foreach(lc, new_targets)
	{
		for (int i = 0; i < 4; i++)
		{
			ObjectAddress obj;

			ObjectAddressSet(obj, TriggerRelationId,
							 get_trigger_oid(lfirst_oid(lc), capture_triggers[i], false));
			recordDependencyOn(&obj, &ext, DEPENDENCY_AUTO);
		}
	}
}

/*
 * pgt_cdc_release_child is called when table child has just stopped being
 * a partition or inheritance child (DETACH PARTITION, also CONCURRENTLY or
 * FINALIZE, and NO INHERIT): the capture triggers on it and its own
 * children that no longer feed any buffer (neither the table nor an
 * ancestor it still has is captured) are dropped, as the extension owner.
 * Triggers of a source of its own, and of a table still below another
 * captured parent, stay.
 */
void
pgt_cdc_release_child(Oid child)
{
	List	   *stale = NIL;
	ListCell   *lc;
	PgtRoleSave save;

	foreach(lc, find_all_inheritors(child, ShareRowExclusiveLock, NULL))
	{
		Oid			target = lfirst_oid(lc);
		bool		fed = OidIsValid(pgt_cdc_buffer_relid(target));
		ListCell   *lc2;

		if (!OidIsValid(get_trigger_oid(target, "__pgt_cdc_ins", true)))
			continue;
		foreach(lc2, pgt_relation_ancestors(target))
		{
			if (OidIsValid(pgt_cdc_buffer_relid(lfirst_oid(lc2))))
				fed = true;
		}
		if (!fed)
			stale = lappend_oid(stale, target);
	}
	if (stale == NIL)
		return;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	foreach(lc, stale)
	{
		for (int i = 0; i < 4; i++)
			if (OidIsValid(get_trigger_oid(lfirst_oid(lc), capture_triggers[i], true)))
				pgt_spi_exec(psprintf("DROP TRIGGER %s ON %s", capture_triggers[i],
									  pgt_qualified_name(lfirst_oid(lc))),
							 SPI_OK_UTILITY);
	}
	pgt_role_restore(&save);
	SPI_finish();
}

/*
 * pgt_cdc_adopt_child is called when table child has just become a
 * partition or inheritance child: if an ancestor of it is a captured
 * source, child and its own children get triggers feeding that source's
 * buffer, and the source is returned (InvalidOid if none).  The caller
 * decides whether rows arrived with it.
 */
Oid
pgt_cdc_adopt_child(Oid child)
{
	Oid			source = InvalidOid;
	ListCell   *lc;

	/* only the topmost captured one: a partition cannot be a source */
	foreach(lc, pgt_relation_ancestors(child))
	{
		if (OidIsValid(pgt_cdc_buffer_relid(lfirst_oid(lc))))
			source = lfirst_oid(lc);
	}
	if (OidIsValid(source))
		install_triggers(source, find_all_inheritors(child, ShareRowExclusiveLock, NULL), true);
	return source;
}

/*
 * pgt_cdc_release_unused drops the change buffers and capture triggers of
 * sources no stream table reads differentially any more.
 */
void
pgt_cdc_release_unused(void)
{
	PgtRoleSave save;
	uint64		n;
	List	   *sources = NIL;
	List	   *targets = NIL;
	ListCell   *lc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);

	/*
	 * Tables carrying capture triggers that neither they nor any ancestor
	 * need (the triggers' arguments are not trusted: a restored dump makes
	 * them stale), and buffers of tables no DIFFERENTIAL reader needs.
	 */
	n = pgt_spi_exec_args("WITH RECURSIVE up(tbl, anc) AS ("
						  " SELECT t.tgrelid, t.tgrelid FROM pg_catalog.pg_trigger t "
						  " WHERE t.tgname = '__pgt_cdc_ins' "
						  " UNION SELECT up.tbl, i.inhparent FROM up "
						  " JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc), "
						  "needed AS (SELECT d.source_relid FROM pgtrickle.pgt_dependencies d "
						  " JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
						  " WHERE d.cdc_mode = 'TRIGGER' AND s.effective_refresh_mode = 'DIFFERENTIAL') "
						  "SELECT DISTINCT u.tbl FROM up u WHERE NOT EXISTS ("
						  " SELECT 1 FROM up a JOIN needed ON needed.source_relid = a.anc "
						  " WHERE a.tbl = u.tbl)",
						  0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		targets = lappend_oid(targets,
							  DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc,
															 1, &isnull)));
	}
	n = pgt_spi_exec_args("SELECT substr(c.relname, 9)::pg_catalog.oid "
						  "FROM pg_catalog.pg_class c "
						  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
						  "WHERE n.nspname = '" PGT_CHANGES_SCHEMA "' AND c.relkind = 'r' "
						  "AND c.relname ~ '^changes_[0-9]+$' AND NOT EXISTS ("
						  " SELECT 1 FROM pgtrickle.pgt_dependencies d "
						  " JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
						  " WHERE d.source_relid = substr(c.relname, 9)::pg_catalog.oid "
						  " AND d.cdc_mode = 'TRIGGER' AND s.effective_refresh_mode = 'DIFFERENTIAL')",
						  0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		sources = lappend_oid(sources,
							  DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc,
															 1, &isnull)));
	}
	foreach(lc, targets)
	{
		Oid			target = lfirst_oid(lc);
		char	   *qtarget = pgt_qualified_name(target);

		/* a nested sql_drop firing may have removed some already */
		for (int i = 0; i < 4; i++)
			if (OidIsValid(get_trigger_oid(target, capture_triggers[i], true)))
				pgt_spi_exec(psprintf("DROP TRIGGER %s ON %s", capture_triggers[i], qtarget),
							 SPI_OK_UTILITY);
	}
	foreach(lc, sources)
	{
		Oid			src = lfirst_oid(lc);

		Oid			buffer = pgt_cdc_buffer_relid(src);

		if (!OidIsValid(buffer))
			continue;
		/* an extension member can be dropped only once it is released */
		deleteDependencyRecordsForSpecific(RelationRelationId, buffer,
										   DEPENDENCY_EXTENSION, ExtensionRelationId,
										   get_extension_oid("pg_trickle", false));
		CommandCounterIncrement();
		pgt_spi_exec(psprintf("DROP TABLE %s",
							  quote_qualified_identifier(PGT_CHANGES_SCHEMA,
														 pgt_cdc_buffer_name(src))),
					 SPI_OK_UTILITY);
	}

	pgt_role_restore(&save);
	SPI_finish();
}

/*
 * pgt_cdc_note_consumed records that a refresh in this transaction consumed
 * relid's buffer including this transaction's own changes.
 */
void
pgt_cdc_note_consumed(Oid relid)
{
	MemoryContext old;

	register_callbacks();
	if (list_member_oid(consumed_in_xact, relid))
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	consumed_in_xact = lappend_oid(consumed_in_xact, relid);
	consumed_levels = lappend_int(consumed_levels, GetCurrentTransactionNestLevel());
	MemoryContextSwitchTo(old);
}

bool
pgt_cdc_consumed_own_xid(Oid relid)
{
	return list_member_oid(consumed_in_xact, relid);
}

/*
 * pgt_cdc_capture is the capture trigger: it appends the statement's
 * transition rows (or a TRUNCATE marker) to the source's change buffer.
 */
Datum
pgt_cdc_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			source;
	CaptureMap *map;
	Datum		xid;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		strncmp(td->tg_trigger->tgname, "__pgt_cdc_", 10) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtrickle._cdc_capture() may only be used by pg_trickle's own capture triggers")));

	/*
	 * The catalog, not the trigger's argument, says which buffer the rows
	 * go to: the firing table's own, or its topmost captured ancestor's.
	 * An argument is an OID, which a dump restored elsewhere makes stale.
	 */
	register_callbacks();
	map = capture_target(RelationGetRelid(td->tg_relation));
	if (map == NULL)
		return PointerGetDatum(NULL);	/* nothing reads it differentially */
	source = map->source;

	if (pgt_cdc_consumed_own_xid(source))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot change \"%s\" after refreshing a stream table that reads it in the same transaction",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("The refresh already counted this transaction's changes to \"%s\" as applied.",
						   RelationGetRelationName(td->tg_relation)),
				 errhint("Commit, or make the change before the refresh.")));

	xid = FullTransactionIdGetDatum(GetTopFullTransactionId());

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		append_rows(td, map, NULL, 0, xid);
	else
	{
		if (td->tg_oldtable != NULL)
			append_rows(td, map, td->tg_oldtable, -1, xid);
		if (td->tg_newtable != NULL)
			append_rows(td, map, td->tg_newtable, 1, xid);
	}

	pgt_scheduler_wake_at_commit();
	return PointerGetDatum(NULL);
}

/*
 * append_rows writes the rows of transition table ts (or, with ts NULL,
 * one TRUNCATE marker) to buffer with weight w, straight into the heap and
 * its one index: no SPI, no planner, no executor, which keeps capture
 * cheap on the writer's hot path.  Buffers have no triggers or
 * constraints beyond the NOT NULL columns filled here.
 */
static void
append_rows(TriggerData *td, CaptureMap *map, Tuplestorestate *ts, int w, Datum xid)
{
	Oid			buffer = map->buffer;
	Relation	brel;
	TupleDesc	bdesc;
	Relation	irel;
	IndexInfo  *ii;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext rowcxt;
	MemoryContext old;

	brel = table_open(buffer, RowExclusiveLock);
	bdesc = RelationGetDescr(brel);
	irel = index_open(map->index, RowExclusiveLock);
	ii = BuildIndexInfo(irel);
	values = palloc(sizeof(Datum) * bdesc->natts);
	nulls = palloc(sizeof(bool) * bdesc->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pg_trickle capture row",
								   ALLOCSET_SMALL_SIZES);

	if (ts == NULL)
	{
		HeapTuple	tup;
		Datum		ival[1];
		bool		inull[1] = {false};

		for (int i = 0; i < bdesc->natts; i++)
			nulls[i] = true;
		values[0] = xid;
		nulls[0] = false;
		values[1] = Int32GetDatum(0);
		nulls[1] = false;
		tup = heap_form_tuple(bdesc, values, nulls);
		simple_heap_insert(brel, tup);
		ival[0] = xid;
		index_insert(irel, ival, inull, &tup->t_self, brel, UNIQUE_CHECK_NO, false, ii);
	}
	else
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation),
														&TTSOpsMinimalTuple);
		int			ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

		tuplestore_select_read_pointer(ts, ptr);
		tuplestore_rescan(ts);
		while (tuplestore_gettupleslot(ts, true, false, slot))
		{
			HeapTuple	tup;
			Datum		ival[1];
			bool		inull[1] = {false};

			old = MemoryContextSwitchTo(rowcxt);
			slot_getallattrs(slot);
			values[0] = xid;
			nulls[0] = false;
			values[1] = Int32GetDatum(w);
			nulls[1] = false;
			for (int i = 2; i < bdesc->natts; i++)
			{
				AttrNumber	src = map->map[i];

				if (src <= 0)
				{
					values[i] = (Datum) 0;
					nulls[i] = true;
				}
				else
				{
					values[i] = slot->tts_values[src - 1];
					nulls[i] = slot->tts_isnull[src - 1];
				}
			}
			tup = heap_form_tuple(bdesc, values, nulls);
			simple_heap_insert(brel, tup);
			ival[0] = xid;
			index_insert(irel, ival, inull, &tup->t_self, brel, UNIQUE_CHECK_NO, false, ii);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		ExecDropSingleTupleTableSlot(slot);
	}

	MemoryContextDelete(rowcxt);
	index_close(irel, NoLock);
	table_close(brel, NoLock);
}

/*
 * get_capture_map returns how the columns of buffer are filled from rows
 * of table (the source or one of its partitions: their column orders may
 * differ), building it on first use; forgotten on relcache invalidation.
 */
static CaptureMap *
get_capture_map(Oid table, Oid buffer, Oid source)
{
	CaptureMap *entry;
	bool		found;
	Relation	brel;
	TupleDesc	bdesc;
	List	   *indexes;

	entry = hash_search(capture_maps, &table, HASH_ENTER, &found);
	if (found && entry->buffer == buffer && entry->map != NULL)
		return entry;
	if (found && entry->map != NULL)
		pfree(entry->map);
	entry->map = NULL;

	/*
	 * The trigger must sit on the source or on one of its partitions or
	 * inheritance children (a detached partition keeps triggers that now
	 * capture nothing), and every buffer column must have exactly the
	 * type of the column that fills it: rows are copied without conversion.
	 */
	if (table != source &&
		!list_member_oid(find_all_inheritors(source, NoLock, NULL), table))
		return NULL;			/* detached: its rows are not the source's */

	brel = table_open(buffer, AccessShareLock);
	bdesc = RelationGetDescr(brel);
	if (bdesc->natts < 2 ||
		strcmp(NameStr(TupleDescAttr(bdesc, 0)->attname), PGT_BUFFER_XID_COLUMN) != 0 ||
		strcmp(NameStr(TupleDescAttr(bdesc, 1)->attname), PGT_BUFFER_W_COLUMN) != 0)
		elog(ERROR, "change buffer \"%s\" has an unexpected layout",
			 RelationGetRelationName(brel));
	indexes = RelationGetIndexList(brel);
	if (list_length(indexes) != 1)
		elog(ERROR, "change buffer \"%s\" must have exactly one index",
			 RelationGetRelationName(brel));
	entry->index = linitial_oid(indexes);
	entry->map = MemoryContextAllocZero(TopMemoryContext, sizeof(AttrNumber) * bdesc->natts);
	for (int i = 2; i < bdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(bdesc, i);

		AttrNumber	src;
		Oid			typ;
		int32		typmod;
		Oid			coll;

		if (att->attisdropped)
			continue;
		src = get_attnum(table, NameStr(att->attname));
		if (src == InvalidAttrNumber)
			continue;
		get_atttypetypmodcoll(table, src, &typ, &typmod, &coll);
		typ = getBaseTypeAndTypmod(typ, &typmod);
		if (typ != att->atttypid || typmod != att->atttypmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of \"%s\" no longer matches its change buffer",
							NameStr(att->attname), get_rel_name(table)),
					 errdetail("The column is %s; the buffer captures %s.",
							   format_type_with_typemod(typ, typmod),
							   format_type_with_typemod(att->atttypid, att->atttypmod)),
					 errhint("Run pgtrickle.repair_stream_table() for the stream tables that read it.")));
		entry->map[i] = src;
	}
	entry->buffer = buffer;
	entry->source = source;
	table_close(brel, AccessShareLock);
	return entry;
}

/*
 * capture_target returns the capture map of rows of table: into the buffer
 * of table itself or of its topmost ancestor that has one, or NULL when
 * neither has a buffer (no DIFFERENTIAL stream table reads them, or a
 * restored dump whose stream tables are not attached yet).  Cached until a
 * relcache invalidation of table or the buffer.
 */
static CaptureMap *
capture_target(Oid table)
{
	CaptureMap *entry;
	Oid			source = InvalidOid;
	Oid			buffer;
	ListCell   *lc;

	entry = hash_search(capture_maps, &table, HASH_FIND, NULL);
	if (entry != NULL && OidIsValid(entry->buffer) && entry->map != NULL)
		return entry;

	if (OidIsValid(pgt_cdc_buffer_relid(table)))
		source = table;
	foreach(lc, pgt_relation_ancestors(table))
	{
		if (OidIsValid(pgt_cdc_buffer_relid(lfirst_oid(lc))))
			source = lfirst_oid(lc);
	}
	if (!OidIsValid(source))
		return NULL;
	buffer = pgt_cdc_buffer_relid(source);
	return get_capture_map(table, buffer, source);
}


static void
register_callbacks(void)
{
	HASHCTL		ctl;

	if (callbacks_registered)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CaptureMap);
	ctl.hcxt = TopMemoryContext;
	capture_maps = hash_create("pg_trickle capture maps", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(capture_plan_inval, (Datum) 0);
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
	callbacks_registered = true;
}

/* forgets plans that involve relid (all plans for InvalidOid) */
static void
capture_plan_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	CaptureMap *entry;

	if (capture_maps == NULL)
		return;
	hash_seq_init(&status, capture_maps);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || entry->table == relid || entry->buffer == relid)
			entry->buffer = InvalidOid; /* rebuilt on next use */
	}
}

static void
capture_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		consumed_in_xact = NIL;
		consumed_levels = NIL;
	}
}

/*
 * capture_subxact_callback forgets consumptions by refreshes that a
 * rolled-back subtransaction undid, and hands those of a committed one to
 * its parent.
 */
static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *keep_rel = NIL;
	List	   *keep_lvl = NIL;
	MemoryContext old;

	if (consumed_in_xact == NIL ||
		(event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	for (int i = 0; i < list_length(consumed_in_xact); i++)
	{
		int			l = list_nth_int(consumed_levels, i);

		if (l >= level)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;
			l = level - 1;
		}
		keep_rel = lappend_oid(keep_rel, list_nth_oid(consumed_in_xact, i));
		keep_lvl = lappend_int(keep_lvl, l);
	}
	consumed_in_xact = keep_rel;
	consumed_levels = keep_lvl;
	MemoryContextSwitchTo(old);
}

/*
 * pgt_changes returns the changes of source in the window after frontier:
 * the buffer rows whose transaction is visible in the active snapshot and
 * not in frontier, with the columns named in the caller's column
 * definition list (__pgt_w first).
 *
 * Buffers are not readable by users; this function reads them as the
 * extension owner after checking that the current user may select each
 * requested column of the source itself, so a buffer never reveals more
 * than the source's own privileges allow, as of this refresh.  It reads
 * with the caller's active snapshot (the refresh's).
 */
Datum
pgt_changes(PG_FUNCTION_ARGS)
{
	Oid			source = PG_GETARG_OID(0);
	Datum		frontier = PG_GETARG_DATUM(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	want;
	StringInfoData sql;
	Oid			buffer = pgt_cdc_buffer_relid(source);
	Oid			argtypes[1] = {PG_SNAPSHOTOID};
	Datum		args[1];
	PgtRoleSave save;
	Oid			caller = GetUserId();
	AclResult	table_acl;
	MemoryContext per_query;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || rsinfo->expectedDesc == NULL ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pgtrickle._changes() must be called in FROM with a column definition list")));
	if (!OidIsValid(buffer))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("changes of \"%s\" are not captured", get_rel_name(source)),
				 errhint("Run pgtrickle.repair_stream_table() for the stream tables that read it.")));
	want = rsinfo->expectedDesc;
	if (want->natts < 1 ||
		strcmp(NameStr(TupleDescAttr(want, 0)->attname), PGT_BUFFER_W_COLUMN) != 0)
		elog(ERROR, "pgtrickle._changes(): the first column must be " PGT_BUFFER_W_COLUMN);

	/* row-level security cannot be applied to changes: refuse, never leak */
	if (check_enable_rls(source, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot read the changes of \"%s\": row-level security applies to role \"%s\"",
						get_rel_name(source), GetUserNameFromId(caller, false)),
				 errhint("Let the owner of the stream table be a role that row-level security does not restrict.")));

	/*
	 * Privileges of the caller on the source, column by column; each
	 * requested column must have the buffer column's exact type, so no
	 * conversion (and no user-defined cast or domain check) runs as the
	 * extension owner.
	 */
	table_acl = pg_class_aclcheck(source, caller, ACL_SELECT);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT " PGT_BUFFER_W_COLUMN);
	for (int i = 1; i < want->natts; i++)
	{
		Form_pg_attribute w = TupleDescAttr(want, i);
		const char *col = NameStr(w->attname);
		AttrNumber	att = get_attnum(source, col);
		AttrNumber	batt = get_attnum(buffer, col);
		Oid			btyp;
		int32		btypmod;
		Oid			bcoll;

		if (att == InvalidAttrNumber || batt == InvalidAttrNumber || batt <= 2)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("changes of column \"%s\" of \"%s\" are not captured",
							col, get_rel_name(source))));
		if (table_acl != ACLCHECK_OK &&
			pg_attribute_aclcheck(source, att, caller, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(source));
		get_atttypetypmodcoll(buffer, batt, &btyp, &btypmod, &bcoll);
		if (btyp != w->atttypid || btypmod != w->atttypmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of \"%s\" is captured as %s, not %s",
							col, get_rel_name(source),
							format_type_with_typemod(btyp, btypmod),
							format_type_with_typemod(w->atttypid, w->atttypmod)),
					 errhint("Run pgtrickle.repair_stream_table() for the stream tables that read it.")));
		appendStringInfo(&sql, ", %s", quote_identifier(col));
	}
	appendStringInfo(&sql, " FROM %s WHERE " PGT_BUFFER_W_COLUMN " <> 0 AND "
					 PGT_BUFFER_XID_COLUMN " >= pg_catalog.pg_snapshot_xmin($1) AND NOT "
					 "pg_catalog.pg_visible_in_snapshot(" PGT_BUFFER_XID_COLUMN ", $1)",
					 quote_qualified_identifier(PGT_CHANGES_SCHEMA, get_rel_name(buffer)));

	per_query = rsinfo->econtext->ecxt_per_query_memory;
	old = MemoryContextSwitchTo(per_query);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);

	args[0] = frontier;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), true, &save);
	/* read-only: runs with the active snapshot, the refresh's */
	pgt_spi_exec_args(sql.data, 1, argtypes, args, NULL, true, SPI_OK_SELECT);
	pgt_role_restore(&save);
	old = MemoryContextSwitchTo(per_query);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		Datum	   *values = palloc(sizeof(Datum) * want->natts);
		bool	   *nulls = palloc(sizeof(bool) * want->natts);

		heap_deform_tuple(tup, SPI_tuptable->tupdesc, values, nulls);
		tuplestore_putvalues(store, want, values, nulls);
		pfree(values);
		pfree(nulls);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = CreateTupleDescCopy(want);
	return (Datum) 0;
}
