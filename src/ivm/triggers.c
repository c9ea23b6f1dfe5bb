/*-------------------------------------------------------------------------
 *
 * triggers.c
 *	  IMMEDIATE mode: which tables carry IMMEDIATE triggers, and their lock
 *	  rows.
 *
 *	  Every source of an IMMEDIATE stream table, and every partition or
 *	  inheritance child of it, carries the seven triggers of ivm.c.  Their
 *	  arguments name the source and its IMMEDIATE readers, deepest first
 *	  (for people reading \d; maintenance reads the same list from the
 *	  catalog).  pgt_ivm_sync() brings triggers and lock rows in line with
 *	  the catalog after every create, alter and drop; children get their
 *	  root's triggers when attached and lose them when detached.
 *
 * IDENTIFICATION
 *	  src/ivm/triggers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_trickle/catalog.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/util.h"

#define IVM_NTRIGGERS 7
static const char *const ivm_triggers[IVM_NTRIGGERS] = {
	"__pgt_ivm_ins", "__pgt_ivm_upd", "__pgt_ivm_del", "__pgt_ivm_trunc",
	"__pgt_ivm_bins", "__pgt_ivm_bupd", "__pgt_ivm_bdel"
};

/* pgt_ivm_sync or install running: their trigger drops fire sql_drop */
static bool in_sync = false;

static int	st_depth(Oid relid, int guard);
static List *current_args(Oid source);
static void install(Oid source, List *readers);
static void install_guarded(Oid source, List *readers);
static void sync_all(void);

/*
 * pgt_ivm_immediate_readers returns the IMMEDIATE stream tables reading source,
 * deepest first.
 */
List *
pgt_ivm_immediate_readers(Oid source)
{
	List	   *relids = pgt_catalog_immediate_readers(source);
	List	   *depths = NIL;
	List	   *sorted = NIL;
	ListCell   *lc;

	foreach(lc, relids)
		depths = lappend_int(depths, st_depth(lfirst_oid(lc), 0));
	/* selection by depth, deepest first; ties keep creation order */
	while (list_length(sorted) < list_length(relids))
	{
		int			best = -1;
		int			bestdepth = -1;

		for (int i = 0; i < list_length(relids); i++)
		{
			if (list_member_oid(sorted, list_nth_oid(relids, i)))
				continue;
			if (list_nth_int(depths, i) > bestdepth)
			{
				best = i;
				bestdepth = list_nth_int(depths, i);
			}
		}
		sorted = lappend_oid(sorted, list_nth_oid(relids, best));
	}
	return sorted;
}

/* st_depth: 1 for a stream table over base tables only, else 1 + deepest */
static int
st_depth(Oid relid, int guard)
{
	int			depth = 1;
	ListCell   *lc;

	if (guard > 64)
		return depth;			/* cycles are refused at creation */
	foreach(lc, pgt_catalog_stream_sources(relid))
		depth = Max(depth, 1 + st_depth(lfirst_oid(lc), guard + 1));
	return depth;
}

/*
 * current_args returns the stream tables named by the IMMEDIATE triggers
 * on source (NIL if it has none).  It reads the relcache only.
 */
static List *
current_args(Oid source)
{
	List	   *result = NIL;
	Relation	rel;
	TriggerDesc *desc;

	rel = try_relation_open(source, AccessShareLock);
	if (rel == NULL)
		return NIL;
	desc = rel->trigdesc;
	for (int i = 0; desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *t = &desc->triggers[i];

		if (strcmp(t->tgname, "__pgt_ivm_ins") != 0)
			continue;
		for (int j = 1; j < t->tgnargs; j++)
			result = lappend_oid(result, atooid(t->tgargs[j]));
	}
	relation_close(rel, AccessShareLock);
	return result;
}

/*
 * pgt_ivm_sync brings the IMMEDIATE triggers and lock rows in line with the
 * catalog: every source of an IMMEDIATE stream table gets triggers naming
 * its IMMEDIATE readers, deepest first; sources without any lose theirs.
 * Only sources whose list changed are touched.
 */
void
pgt_ivm_sync(void)
{
	/* the trigger drops of install() fire the sql_drop event trigger */
	if (in_sync)
		return;
	in_sync = true;
	PG_TRY();
	{
		sync_all();
	}
	PG_FINALLY();
	{
		in_sync = false;
	}
	PG_END_TRY();
}

/*
 * pgt_ivm_sync_locks gives every IMMEDIATE stream table its lock row and
 * removes the others'.
 */
void
pgt_ivm_sync_locks(void)
{
	PgtRoleSave save;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	pgt_spi_exec("DELETE FROM pgtrickle.pgt_ivm_locks l WHERE NOT EXISTS ("
				 "SELECT 1 FROM pgtrickle.pgt_stream_tables s "
				 "WHERE s.pgt_relid = l.pgt_relid AND s.effective_refresh_mode = 'IMMEDIATE')",
				 SPI_OK_DELETE);
	/*
	 * Existing rows filtered first: the arbiter of ON CONFLICT would wait
	 * for every writer that updated its stream table's row (a deadlock when
	 * that writer then writes a source whose triggers we re-create).
	 */
	pgt_spi_exec("INSERT INTO pgtrickle.pgt_ivm_locks (pgt_relid) "
				 "SELECT s.pgt_relid FROM pgtrickle.pgt_stream_tables s "
				 "WHERE s.effective_refresh_mode = 'IMMEDIATE' "
				 "AND NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_ivm_locks l "
				 "WHERE l.pgt_relid = s.pgt_relid) "
				 "ON CONFLICT DO NOTHING", SPI_OK_INSERT);
	pgt_role_restore(&save);
	SPI_finish();
}

/*
 * pgt_ivm_add_lock_row gives IMMEDIATE stream table st its lock row.
 */
void
pgt_ivm_add_lock_row(Oid st)
{
	PgtRoleSave save;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(st);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	/* filtered first, as in pgt_ivm_sync_locks: never wait on a writer */
	pgt_spi_exec_args("INSERT INTO pgtrickle.pgt_ivm_locks (pgt_relid) SELECT $1 "
					  "WHERE NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_ivm_locks l "
					  "WHERE l.pgt_relid = $1) ON CONFLICT DO NOTHING",
					  1, argtypes, values, NULL, false, SPI_OK_INSERT);
	pgt_role_restore(&save);
	SPI_finish();
}

static void
sync_all(void)
{
	List	   *sources;
	ListCell   *lc;

	pgt_ivm_sync_locks();
	sources = pgt_catalog_immediate_sources();

	foreach(lc, sources)
	{
		Oid			source = lfirst_oid(lc);
		List	   *readers;

		if (get_rel_relkind(source) == '\0')
			continue;			/* dropped */
		readers = pgt_ivm_immediate_readers(source);
		if (!equal(readers, current_args(source)))
			install(source, readers);
	}
	CommandCounterIncrement();
}

/*
 * pgt_ivm_adopt_child gives table child, just attached below a source of
 * IMMEDIATE stream tables, the triggers of that source.
 */
void
pgt_ivm_adopt_child(Oid child)
{
	List	   *ancestors = get_partition_ancestors(child);
	Oid			source = InvalidOid;
	ListCell   *lc;

	/* the topmost ancestor with IMMEDIATE triggers is the source */
	foreach(lc, ancestors)
	{
		Oid			anc = lfirst_oid(lc);

		if (OidIsValid(get_trigger_oid(anc, "__pgt_ivm_ins", true)))
			source = anc;
	}
	if (!OidIsValid(source))
		return;

	/*
	 * One set of triggers per table: a table that IMMEDIATE stream tables
	 * read directly cannot also feed its new root's.
	 */
	if (pgt_ivm_immediate_readers(child) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot make \"%s\" a partition or child of \"%s\"",
						get_rel_name(child), get_rel_name(source)),
				 errdetail("IMMEDIATE stream tables read \"%s\" directly, and others read \"%s\".",
						   get_rel_name(child), get_rel_name(source)),
				 errhint("Alter the stream tables that read \"%s\" to another refresh mode first.",
						 get_rel_name(child))));
	install_guarded(source, pgt_ivm_immediate_readers(source));
}

/*
 * install_guarded is install() outside pgt_ivm_sync: its trigger drops fire
 * the sql_drop event trigger, which must not sync meanwhile.
 */
static void
install_guarded(Oid source, List *readers)
{
	if (in_sync)
		return;
	in_sync = true;
	PG_TRY();
	{
		install(source, readers);
	}
	PG_FINALLY();
	{
		in_sync = false;
	}
	PG_END_TRY();
}

/*
 * pgt_ivm_release_child drops the IMMEDIATE triggers of table child (and
 * its own children), just detached from a source, unless it is a source of
 * IMMEDIATE stream tables itself (then its own triggers are kept).
 */
void
pgt_ivm_release_child(Oid child)
{
	Oid			trig = get_trigger_oid(child, "__pgt_ivm_ins", true);
	Relation	rel;
	bool		own = false;

	if (!OidIsValid(trig))
		return;
	rel = relation_open(child, AccessShareLock);
	for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *t = &rel->trigdesc->triggers[i];

		if (t->tgoid == trig && t->tgnargs > 0 && atooid(t->tgargs[0]) == child)
			own = true;
	}
	relation_close(rel, AccessShareLock);
	if (!own)
		install_guarded(child, NIL);
}

/*
 * install replaces the IMMEDIATE triggers on source and all its partitions
 * and children by ones naming readers (none if readers is NIL).
 */
static void
install(Oid source, List *readers)
{
	StringInfoData sql;
	StringInfoData args;
	PgtRoleSave save;
	List	   *targets = find_all_inheritors(source, ShareRowExclusiveLock, NULL);
	ObjectAddress ext;
	ListCell   *lc;

	initStringInfo(&sql);
	initStringInfo(&args);
	appendStringInfo(&args, "'%u'", source);
	foreach(lc, readers)
		appendStringInfo(&args, ", '%u'", lfirst_oid(lc));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	foreach(lc, targets)
	{
		Oid			target = lfirst_oid(lc);
		const char *defs[IVM_NTRIGGERS] = {
			"AFTER INSERT ON %s REFERENCING NEW TABLE AS __pgt_new",
			"AFTER UPDATE ON %s REFERENCING OLD TABLE AS __pgt_old NEW TABLE AS __pgt_new",
			"AFTER DELETE ON %s REFERENCING OLD TABLE AS __pgt_old",
			"AFTER TRUNCATE ON %s",
			"BEFORE INSERT ON %s",
			"BEFORE UPDATE ON %s",
			"BEFORE DELETE ON %s"
		};

		for (int i = 0; i < IVM_NTRIGGERS; i++)
		{
			if (OidIsValid(get_trigger_oid(target, ivm_triggers[i], true)))
				pgt_spi_exec(psprintf("DROP TRIGGER %s ON %s", ivm_triggers[i],
									  pgt_qualified_name(target)),
							 SPI_OK_UTILITY);
			if (readers == NIL)
				continue;
			resetStringInfo(&sql);
			appendStringInfo(&sql, "CREATE TRIGGER %s ", ivm_triggers[i]);
			appendStringInfo(&sql, defs[i], pgt_qualified_name(target));
			appendStringInfo(&sql,
							 " FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle._ivm_maintain(%s)",
							 args.data);
			pgt_spi_create_own_trigger(sql.data);
		}
	}
	pgt_role_restore(&save);
	SPI_finish();
	if (readers == NIL)
		return;

	/* DROP EXTENSION takes them with it */
	CommandCounterIncrement();
	ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid("pg_trickle", false));
	foreach(lc, targets)
	{
		for (int i = 0; i < IVM_NTRIGGERS; i++)
		{
			ObjectAddress obj;

			ObjectAddressSet(obj, TriggerRelationId,
							 get_trigger_oid(lfirst_oid(lc), ivm_triggers[i], false));
			recordDependencyOn(&obj, &ext, DEPENDENCY_AUTO);
		}
	}
}

/*
 * pgt_ivm_has_all_triggers says whether table relid carries every
 * IMMEDIATE trigger.
 */
bool
pgt_ivm_has_all_triggers(Oid relid)
{
	for (int i = 0; i < IVM_NTRIGGERS; i++)
		if (!OidIsValid(get_trigger_oid(relid, ivm_triggers[i], true)))
			return false;
	return true;
}
