/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  Triggers that keep stream tables consistent with the rest of the
 *	  database: the guard on each storage table and the sql_drop event
 *	  trigger.
 *
 *	  The guard refuses INSERT, UPDATE, DELETE and TRUNCATE on a storage
 *	  table unless pg_trickle itself is writing (pgt_internal_write_depth,
 *	  a backend-local counter no SQL can set).
 *
 *	  The sql_drop event trigger removes the catalog rows of stream tables
 *	  whose storage was dropped by any means: drop_stream_table(), DROP
 *	  TABLE, DROP ... CASCADE of a source, DROP SCHEMA ... CASCADE, or DROP
 *	  EXTENSION (where the catalog goes too).
 *
 *	  The ddl_command_end trigger and the DROP TABLE pair keep stream tables
 *	  exact when partitions or children come, go or are dropped.
 *
 * IDENTIFICATION
 *	  src/catalog/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "access/xact.h"
#include "utils/rel.h"

#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "nodes/parsenodes.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/cdc.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_st_guard);
PG_FUNCTION_INFO_V1(pgt_on_sql_drop);
PG_FUNCTION_INFO_V1(pgt_on_ddl_start);

static bool column_changing_alter(AlterTableStmt *stmt, bool include_add);
static bool relation_is_source(Oid relid);
static void foreach_reader_resync(List *sources, List **defer);
static void detach_concurrently_start(AlterTableStmt *stmt);

/*
 * pgt_st_guard is the statement-level BEFORE trigger on every storage
 * table.  It errors unless pg_trickle is the writer.
 */
Datum
pgt_st_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "pgt_st_guard: not called by trigger manager");

	if (pgt_internal_write_depth > 0)
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		op = "insert into";
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "update";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "delete from";
	else
		op = "truncate";

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s stream table \"%s\"", op,
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("The rows of a stream table are maintained by pg_trickle."),
			 errhint("Change its source tables, or its query with pgtrickle.alter_stream_table().")));
	PG_RETURN_NULL();			/* keep compiler quiet */
}

/*
 * pgt_on_sql_drop forgets the stream tables whose storage tables were
 * dropped by the current command.
 */
Datum
pgt_on_sql_drop(PG_FUNCTION_ARGS)
{
	PgtRoleSave save;
	bool		dropped;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_sql_drop: not fired by event trigger manager");

	/* DROP EXTENSION takes the catalog with it */
	if (!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	pgt_spi_exec("DELETE FROM pgtrickle.pgt_stream_tables WHERE pgt_relid IN "
				 "(SELECT objid FROM pg_catalog.pg_event_trigger_dropped_objects() "
				 " WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
				 " AND objsubid = 0)",
				 SPI_OK_DELETE);
	dropped = SPI_processed > 0;
	pgt_role_restore(&save);
	SPI_finish();
	pgt_cdc_release_unused();
	/* IMMEDIATE triggers name their stream tables: rewrite those */
	if (dropped)
		pgt_ivm_sync();
	PG_RETURN_VOID();
}

/*
 * pgt_on_ddl_start refuses, before they run, ALTER TABLE commands that
 * would silently break stream tables: changing the columns of a stream
 * table's storage, and (with pg_trickle.block_source_ddl) dropping,
 * retyping or renaming columns of a source, or renaming a source.
 */
Datum
pgt_on_ddl_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Node	   *parsetree;
	RangeVar   *rv = NULL;
	bool		changes_columns = false;
	bool		adds_columns = false;
	bool		renames = false;
	bool		replaces_view = false;
	Oid			relid;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_ddl_start: not fired by event trigger manager");
	parsetree = trigdata->parsetree;

	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;

		rv = stmt->relation;
		changes_columns = column_changing_alter(stmt, false);
		adds_columns = column_changing_alter(stmt, true);
		detach_concurrently_start(stmt);
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt) &&
			 ((AlterObjectSchemaStmt *) parsetree)->objectType == OBJECT_TABLE)
	{
		rv = ((AlterObjectSchemaStmt *) parsetree)->relation;
		renames = true;
	}
	else if (IsA(parsetree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		if (stmt->renameType == OBJECT_COLUMN || stmt->renameType == OBJECT_TABLE)
		{
			rv = stmt->relation;
			renames = true;
			changes_columns = stmt->renameType == OBJECT_COLUMN;
		}
	}
	else if (IsA(parsetree, ViewStmt) && ((ViewStmt *) parsetree)->replace)
	{
		rv = ((ViewStmt *) parsetree)->view;
		replaces_view = true;
	}
	if (rv == NULL || (!changes_columns && !adds_columns && !renames && !replaces_view))
		PG_RETURN_VOID();

	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) || !OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();

	if ((changes_columns || adds_columns) && pgt_internal_write_depth == 0 &&
		pgt_catalog_is_stream_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot change the columns of stream table \"%s\"",
						get_rel_name(relid)),
				 errdetail("The columns of a stream table follow its query."),
				 errhint("Change the query with pgtrickle.alter_stream_table().")));

	/* the stored query reads the view by name: its body is the query */
	if (pgt_block_source_ddl && replaces_view && relation_is_source(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot replace view \"%s\" because stream tables read it",
						get_rel_name(relid)),
				 errdetail("Their stored rows follow the view's current definition."),
				 errhint("Drop or alter those stream tables first, or SET pg_trickle.block_source_ddl = off and repair them afterwards.")));

	/* new columns of a source break nothing: queries name their columns */
	if (pgt_block_source_ddl && (changes_columns || renames) &&
		relation_is_source(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot %s \"%s\" because stream tables read it",
						changes_columns ? "change the columns of" : "rename",
						get_rel_name(relid)),
				 errdetail("Stream table queries refer to it by name and column."),
				 errhint("Drop or alter those stream tables first, or SET pg_trickle.block_source_ddl = off and repair them afterwards.")));
	PG_RETURN_VOID();
}

/*
 * pgt_on_ddl_end keeps capture complete when the set of tables behind a
 * source changes: a partition or inheritance child created or attached
 * later gets capture triggers, and since ATTACH, DETACH, INHERIT and NO
 * INHERIT move rows in or out without DML, the stream tables reading the
 * source are refreshed FULL next time.
 */
PG_FUNCTION_INFO_V1(pgt_on_ddl_end);

Datum
pgt_on_ddl_end(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Node	   *parsetree;
	List	   *adopt = NIL;	/* tables that just became children */
	List	   *moved = NIL;	/* parents whose rows moved without DML */
	List	   *released = NIL;	/* tables that stopped being children */
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_ddl_end: not fired by event trigger manager");
	if (!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();
	parsetree = trigdata->parsetree;

	if (IsA(parsetree, CreateStmt))
	{
		CreateStmt *stmt = (CreateStmt *) parsetree;

		if (stmt->inhRelations != NIL)
			adopt = lappend_oid(adopt, RangeVarGetRelid(stmt->relation, NoLock, true));
	}
	else if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		Oid			target = RangeVarGetRelid(stmt->relation, NoLock, true);

		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst(lc);

			if (!IsA(cmd, AlterTableCmd))
				continue;
			if (cmd->subtype == AT_AttachPartition)
			{
				PartitionCmd *pc = (PartitionCmd *) cmd->def;

				adopt = lappend_oid(adopt, RangeVarGetRelid(pc->name, NoLock, true));
				moved = lappend_oid(moved, target);
			}
			else if (cmd->subtype == AT_DetachPartition ||
					 cmd->subtype == AT_DetachPartitionFinalize)
			{
				PartitionCmd *pc = (PartitionCmd *) cmd->def;

				moved = lappend_oid(moved, target);
				released = lappend_oid(released, RangeVarGetRelid(pc->name, NoLock, true));
			}
			else if (cmd->subtype == AT_AddInherit)
			{
				adopt = lappend_oid(adopt, target);
				moved = lappend_oid(moved, RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true));
			}
			else if (cmd->subtype == AT_DropInherit)
			{
				moved = lappend_oid(moved, RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true));
				released = lappend_oid(released, target);
			}
		}
	}

	foreach(lc, adopt)
	{
		if (OidIsValid(lfirst_oid(lc)))
		{
			(void) pgt_cdc_adopt_child(lfirst_oid(lc));
			pgt_ivm_adopt_child(lfirst_oid(lc));
		}
	}
	/*
	 * A former child's IMMEDIATE and capture triggers would still feed its
	 * old root (capture would ignore its rows, but at a cost per statement).
	 */
	foreach(lc, released)
	{
		if (OidIsValid(lfirst_oid(lc)))
		{
			pgt_ivm_release_child(lfirst_oid(lc));
			pgt_cdc_release_child(lfirst_oid(lc));
		}
	}
	foreach(lc, moved)
	{
		Oid			parent = lfirst_oid(lc);

		if (!OidIsValid(parent))
			continue;
		/* the parent and everything above it may be read by stream tables */
		foreach_reader_resync(lappend_oid(pgt_relation_ancestors(parent), parent), NULL);
	}
	PG_RETURN_VOID();
}

/*
 * foreach_reader_resync makes the stream tables reading any table in
 * sources exact again after rows entered or left one of them without DML:
 * DIFFERENTIAL and AUTO ones get needs_reinit (their next refresh is FULL);
 * IMMEDIATE ones are recomputed now, or, with defer non-NULL, appended to
 * *defer for the caller to recompute once the rows are gone.
 */
static void
foreach_reader_resync(List *sources, List **defer)
{
	ListCell   *lc;

	foreach(lc, sources)
	{
		ListCell   *lc2;

		foreach(lc2, pgt_catalog_readers_of(lfirst_oid(lc)))
		{
			PgtStreamTable *st = pgt_catalog_get(lfirst_oid(lc2), false);

			if (st == NULL)
				continue;
			/* IMMEDIATE ones must be right at this statement's end */
			if (strcmp(st->effective_refresh_mode, "IMMEDIATE") != 0)
				pgt_catalog_set_needs_reinit(st->pgt_id);
			else if (defer == NULL)
			{
				pgt_ivm_lock(st->relid);
				pgt_refresh_immediate_full(st->relid);
			}
			else if (!list_member_oid(*defer, st->relid))
				*defer = lappend_oid(*defer, st->relid);
		}
	}
}

/*
 * DETACH PARTITION ... CONCURRENTLY commits its first transaction, after
 * which new snapshots no longer see the partition's rows, and may be
 * cancelled before its second (then FINALIZE completes it later).  So the
 * DIFFERENTIAL and AUTO readers get needs_reinit already in the first
 * transaction; ddl_command_end does the rest once the detach completes.
 * (IMMEDIATE readers of an interrupted detach keep the partition's rows
 * until the FINALIZE, which recomputes them.)
 */
static void
detach_concurrently_start(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			parent;
	List	   *ignore = NIL;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		if (IsA(cmd, AlterTableCmd) && cmd->subtype == AT_DetachPartition &&
			((PartitionCmd *) cmd->def)->concurrent)
			break;
	}
	if (lc == NULL || !OidIsValid(get_extension_oid("pg_trickle", true)))
		return;
	parent = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (OidIsValid(parent))
		foreach_reader_resync(lappend_oid(pgt_relation_ancestors(parent), parent), &ignore);
}

/*
 * DROP TABLE of a partition or inheritance child of a source (the routine
 * retention pattern: drop the oldest partition) removes its rows from the
 * source without DML, so no capture trigger sees them go.  pgt_on_drop_start
 * runs before the drop, while pg_inherits still says whose child each
 * dropped table is: the DIFFERENTIAL and AUTO readers of every ancestor get
 * needs_reinit in the dropping transaction (rolled back with it), and the
 * IMMEDIATE readers are remembered; pgt_on_drop_end recomputes those at the
 * end of the statement, inside its transaction, as TRUNCATE does.
 *
 * The dropped rows are not captured as deletions: that would read the whole
 * partition before the drop holds its lock (a concurrent insert into it
 * could commit in between and be lost), and writes as many buffer rows as
 * the partition has, which is what dropping instead of deleting avoids.
 * DROP SCHEMA ... CASCADE covers the tables of the schema the same way;
 * a drop that fails leaves no trace (the flags roll back with it).
 */
/*
 * One entry per DROP command under way, innermost first: a drop's sql_drop
 * handling may drop tables itself (change buffers), which nests another
 * start/end pair.  Each entry is a DropPending in TopMemoryContext;
 * entries of aborted (sub)transactions are discarded by the callbacks.
 */
typedef struct DropPending
{
	int			nest_level;		/* transaction nesting level of the drop */
	List	   *immediate;		/* IMMEDIATE stream tables to recompute */
} DropPending;

static List *drop_stack = NIL;
static bool drop_callbacks_registered = false;

static void
drop_stack_discard(int from_level)
{
	while (drop_stack != NIL &&
		   ((DropPending *) linitial(drop_stack))->nest_level >= from_level)
	{
		DropPending *top = linitial(drop_stack);

		list_free(top->immediate);
		pfree(top);
		drop_stack = list_delete_first(drop_stack);
	}
}

static void
drop_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		drop_stack_discard(0);
}

static void
drop_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		drop_stack_discard(GetCurrentTransactionNestLevel());
}

PG_FUNCTION_INFO_V1(pgt_on_drop_start);
PG_FUNCTION_INFO_V1(pgt_on_drop_end);

Datum
pgt_on_drop_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	DropStmt   *stmt;
	List	   *dropped = NIL;
	List	   *ancestors = NIL;
	List	   *defer = NIL;
	ListCell   *lc;
	MemoryContext old;
	DropPending *entry;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_drop_start: not fired by event trigger manager");
	if (!drop_callbacks_registered)
	{
		RegisterXactCallback(drop_xact_callback, NULL);
		RegisterSubXactCallback(drop_subxact_callback, NULL);
		drop_callbacks_registered = true;
	}
	/* every start pushes an entry, which its end pops */
	old = MemoryContextSwitchTo(TopMemoryContext);
	entry = palloc0(sizeof(DropPending));
	entry->nest_level = GetCurrentTransactionNestLevel();
	drop_stack = lcons(entry, drop_stack);
	MemoryContextSwitchTo(old);
	if (!IsA(trigdata->parsetree, DropStmt) ||
		!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;

	if (stmt->removeType == OBJECT_TABLE || stmt->removeType == OBJECT_FOREIGN_TABLE)
	{
		foreach(lc, stmt->objects)
		{
			Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(lfirst(lc)),
												 NoLock, true);

			if (OidIsValid(relid))
				dropped = lappend_oid(dropped, relid);
		}
	}
	else if (stmt->removeType == OBJECT_SCHEMA && stmt->behavior == DROP_CASCADE)
	{
		foreach(lc, stmt->objects)
		{
			Oid			nsp = get_namespace_oid(strVal(lfirst(lc)), true);
			Oid			argtypes[1] = {OIDOID};
			Datum		values[1];
			uint64		n;

			if (!OidIsValid(nsp))
				continue;
			values[0] = ObjectIdGetDatum(nsp);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			n = pgt_spi_exec_args("SELECT c.oid FROM pg_catalog.pg_class c "
								  "WHERE c.relnamespace = $1 AND EXISTS ("
								  " SELECT 1 FROM pg_catalog.pg_inherits i "
								  " WHERE i.inhrelid = c.oid)",
								  1, argtypes, values, NULL, true, SPI_OK_SELECT);
			for (uint64 i = 0; i < n; i++)
			{
				bool		isnull;
				Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																   SPI_tuptable->tupdesc,
																   1, &isnull));

				old = MemoryContextSwitchTo(CurTransactionContext);
				dropped = lappend_oid(dropped, relid);
				MemoryContextSwitchTo(old);
			}
			SPI_finish();
		}
	}

	foreach(lc, dropped)
		ancestors = list_concat_unique_oid(ancestors, pgt_relation_ancestors(lfirst_oid(lc)));
	if (ancestors == NIL)
		PG_RETURN_VOID();
	foreach_reader_resync(ancestors, &defer);
	old = MemoryContextSwitchTo(TopMemoryContext);
	entry->immediate = list_copy(defer);
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

Datum
pgt_on_drop_end(PG_FUNCTION_ARGS)
{
	List	   *pending = NIL;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_drop_end: not fired by event trigger manager");
	if (drop_stack != NIL)
	{
		DropPending *top = linitial(drop_stack);

		pending = top->immediate;
		pfree(top);
		drop_stack = list_delete_first(drop_stack);
	}
	if (pending == NIL || !OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();
	foreach(lc, pending)
	{
		/* dropped by the same command (DROP ... CASCADE of a source) */
		if (pgt_catalog_get(lfirst_oid(lc), false) == NULL)
			continue;
		pgt_ivm_lock(lfirst_oid(lc));
		pgt_refresh_immediate_full(lfirst_oid(lc));
	}
	list_free(pending);
	PG_RETURN_VOID();
}

static bool
column_changing_alter(AlterTableStmt *stmt, bool include_add)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		if (cmd->subtype == AT_DropColumn || cmd->subtype == AT_AlterColumnType ||
			(include_add && cmd->subtype == AT_AddColumn))
			return true;
	}
	return false;
}

static bool
relation_is_source(Oid relid)
{
	return pgt_catalog_readers_of(relid) != NIL;
}
