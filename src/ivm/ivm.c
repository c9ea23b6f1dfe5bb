/*-------------------------------------------------------------------------
 *
 * ivm.c
 *	  IMMEDIATE mode: stream tables maintained inside the writing
 *	  transaction.
 *
 *	  Every source of an IMMEDIATE stream table carries four statement-level
 *	  AFTER triggers (__pgt_ivm_ins/_upd/_del with transition tables
 *	  __pgt_old/__pgt_new, and __pgt_ivm_trunc) and three BEFORE ones
 *	  (__pgt_ivm_bins/_bupd/_bdel, which only note the open statement; see
 *	  IvmPending), also on each partition or inheritance child.  They
 *	  maintain the IMMEDIATE stream tables that read the source, deepest
 *	  first (read from the catalog, see IvmTargets; the triggers' arguments
 *	  name the same list for readers of \d, but a restored dump makes those
 *	  OIDs stale): a stream table that reads
 *	  both the source and another stream table maintained from it must take
 *	  the source's change while that other one still holds its old rows
 *	  (the second step, the other one's change, then reads the source's new
 *	  rows), so each step sees the state the delta rules assume.  Triggers
 *	  are rebuilt whenever that list changes (pgt_ivm_sync), which also
 *	  means a writer never runs with a stale list: CREATE/DROP TRIGGER
 *	  conflict with the writer's own lock on the table.
 *
 *	  The trigger runs the same delta statement the differential engine
 *	  builds, with the source's change read from the transition tables
 *	  instead of its change buffer (pgt_dvm_immediate_apply_sql).  Prepared
 *	  statements are cached per (stream table, firing table, statement
 *	  kind, size class) for the backend's life and dropped on any relcache
 *	  invalidation of the stream table or the firing table; nothing in the
 *	  catalog is read or written on the hot path.
 *
 *	  Concurrency.  A delta reads other tables (join partners, the rows of
 *	  a group) and must see every change that the stream table already
 *	  reflects, and no change it does not.  Each stream table therefore
 *	  has a maintenance lock (a heavyweight lock with a tag of its own),
 *	  held to commit: a maintainer waits for a concurrent one to commit,
 *	  and in READ COMMITTED the delta statement that follows takes a new
 *	  snapshot and so sees what that one committed.  Whoever takes it
 *	  exclusively also updates the stream table's row in
 *	  pgtrickle.pgt_ivm_locks: in REPEATABLE READ and SERIALIZABLE that
 *	  update fails to serialize exactly when our snapshot would miss the
 *	  other's change.
 *
 *	  Stream tables over one source whose delta needs nothing but the
 *	  changed rows' own groups (a grouped aggregate over one table) take
 *	  the lock in share mode instead, and one transaction-level lock per
 *	  touched group: writers of different groups proceed in parallel.
 *
 *	  Order (lock_statement).  Before a statement's change is applied to
 *	  anything, every maintenance lock it may need -- its trigger's stream
 *	  tables and all maintained from their changes in nested statements --
 *	  is taken, by OID; groups follow, per stream table in key-hash order.
 *	  A shared lock is never made exclusive (only a TRUNCATE, refresh,
 *	  ATTACH/DETACH or lost privilege after group-locked writes of the same
 *	  transaction do).  Definition changes and drops take the sources,
 *	  then the maintenance lock, then the stream table, as writers do.
 *
 *	  Nested and sibling statements (IvmPending, IvmStash).  A statement
 *	  run while another on a source of the same stream table is open (a
 *	  user trigger) cannot be applied first: the stream table is recomputed
 *	  by the last.  The steps of one query on one source are applied
 *	  together, as one change, by the last step's trigger.
 *
 *	  Maintenance runs as the stream table's owner in a security-restricted
 *	  operation with search_path locked, like a refresh; the transition
 *	  tables carry every changed row whatever the writer may see.
 *
 * IDENTIFICATION
 *	  src/ivm/ivm.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "utils/fmgrprotos.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "pg_trickle/analyze.h"
#include "pg_trickle/catalog.h"
#include "pg_trickle/compat.h"
#include "pg_trickle/dvm.h"
#include "pg_trickle/ivm.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/refresh.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_ivm_maintain);

/* statements with more changed rows than this get their own plans */
#define IVM_LARGE_STATEMENT 1000
/* group locks one transaction takes before it locks whole stream tables */
#define IVM_MAX_GROUP_LOCKS 4096
/* work_mem (kB) for the delta of a large statement, unless set higher */
#define IVM_LARGE_WORK_MEM 65536

typedef enum IvmKind
{
	IVM_INSERT,
	IVM_UPDATE,
	IVM_DELETE
} IvmKind;

typedef struct IvmPlanKey
{
	Oid			st;				/* the stream table's storage */
	Oid			firing;			/* the table whose trigger fired */
	int			kind;			/* IvmKind */
	bool		large;
} IvmPlanKey;

typedef struct IvmPlan
{
	IvmPlanKey	key;
	bool		valid;
	SPIPlanPtr	plan;			/* the delta statement; NULL: nothing to do */
	SPIPlanPtr	keys_plan;		/* group-lock keys, or NULL: whole lock */
	PgtDeltaStrategy strategy;
	Oid			owner;
	Oid			source;
	bool		recompute;		/* the delta may not be used: recompute */
	bool		multi_ref;		/* the query reads the source more than once */
} IvmPlan;

static HTAB *ivm_plans = NULL;

/*
 * What the IMMEDIATE triggers of one table maintain: the source whose change
 * it is (the table itself or its topmost ancestor that IMMEDIATE stream
 * tables read) and those stream tables, deepest first.  Read from the
 * catalog once per backend and table, forgotten on relcache invalidation
 * of the table (trigger changes and pgt_ivm_sync invalidate it).  The
 * triggers' arguments say the same, but they are OIDs, which a dump
 * restored elsewhere makes stale: the catalog is the truth.
 */
typedef struct IvmTargets
{
	Oid			firing;			/* hash key */
	bool		valid;
	Oid			source;			/* InvalidOid: nothing to maintain */
	List	   *readers;		/* in TopMemoryContext */
} IvmTargets;

static HTAB *ivm_targets = NULL;
/* group locks taken by this transaction (reset by transaction callbacks) */
static int	group_locks_held = 0;
static bool xact_callback_registered = false;


/*
 * Statements on sources whose BEFORE trigger fired and whose AFTER trigger
 * has not yet: (stream table, source, subtransaction).  When one query
 * changes two sources of a stream table (a data-modifying WITH, a user
 * trigger writing another source), each AFTER trigger would read the other
 * source with a change the stream table does not reflect yet, and the
 * delta rules (one source changed at a time) would count the cross term
 * twice.  Such a stream table is marked and recomputed by the last of those
 * AFTER triggers instead.  Both lists live in TopTransactionContext.
 */
typedef struct IvmPending
{
	Oid			st;
	Oid			source;
	SubTransactionId subid;
	CommandId	cid;			/* the statement's command */
} IvmPending;

static List *pending = NIL;
static List *dirty = NIL;		/* stream tables to recompute */

/*
 * The steps of one query on one source (the DELETE and INSERT by which an
 * upstream stream table's maintenance rewrites rows, the insert and update
 * steps of an upsert, the actions of a MERGE) fire their AFTER triggers one
 * after the other, each when all of them are done.  Applied one by one,
 * each step's delta would take for the source's prior state its current
 * rows minus its own change only, which still holds the other steps'
 * changes: wrong for every delta that is not linear in the source (an
 * outer join's null-extended rows, a group's existence, DISTINCT).  So the
 * changed rows of all steps but the last are copied here, and the last
 * step applies them all as one change.  Lives in TopTransactionContext.
 */
typedef struct IvmStash
{
	Oid			st;
	Oid			source;
	SubTransactionId subid;
	Tuplestorestate *old_rows;
	Tuplestorestate *new_rows;
	int64		ntuples;
} IvmStash;

static List *stashes = NIL;

static void maintain_one(TriggerData *td, Oid source, Oid st, IvmKind kind,
						 int64 ntuples);
static IvmPlan *get_plan(TriggerData *td, Oid source, Oid st, IvmKind kind,
						 bool large);
static void build_plan(IvmPlan *entry, TriggerData *td, Oid source);
static void lock_stream_table(Oid st, bool shared);
static void lock_statement(TriggerData *td, Oid source, IvmKind kind,
						   int64 ntuples, bool truncate);
static int	st_lock_held(Oid st);
static void lock_row_update(Oid st);
static bool other_pending(Oid st, Oid source);
static void add_closure(List **sts, Oid st, int guard);
static void lock_groups(IvmPlan *entry, TriggerData *td);
static void plan_inval(Datum arg, Oid relid);
static void ivm_xact_callback(XactEvent event, void *arg);
static void ivm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);
static void register_callbacks(void);
static IvmTargets *get_targets(Oid firing);
static void targets_inval(Datum arg, Oid relid);
static bool finish_pending(Oid st, Oid source, bool *same);
static IvmStash *find_stash(Oid st, Oid source);
static void stash_rows(IvmStash **stash, Oid st, Oid source, TriggerData *td);
static void apply_stash(IvmStash *stash, TriggerData *td, Oid source);
static bool count_source_refs(Node *node, void *context);

/*
 * pgt_ivm_maintain is the IMMEDIATE trigger: it applies the statement's
 * change of its source to every stream table named in its arguments.
 */
Datum
pgt_ivm_maintain(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			source;
	IvmTargets *targets;
	List	   *readers;
	ListCell   *lc;
	IvmKind		kind;
	int64		ntuples = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		strncmp(td->tg_trigger->tgname, "__pgt_ivm_", 10) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtrickle._ivm_maintain() may only be used by pg_trickle's own IMMEDIATE triggers")));

	register_callbacks();
	targets = get_targets(RelationGetRelid(td->tg_relation));
	if (!OidIsValid(targets->source))
		return PointerGetDatum(NULL);	/* not (or not yet) maintained */
	source = targets->source;
	/* a copy: an invalidation while locking may rebuild the cached one */
	readers = list_copy(targets->readers);
	if (TRIGGER_FIRED_BEFORE(td->tg_event))
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		foreach(lc, readers)
		{
			IvmPending *p = palloc(sizeof(IvmPending));

			p->st = lfirst_oid(lc);
			p->source = source;
			p->subid = GetCurrentSubTransactionId();
			p->cid = GetCurrentCommandId(false);
			pending = lappend(pending, p);
		}
		MemoryContextSwitchTo(old);
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		lock_statement(td, source, IVM_DELETE, 0, true);
		foreach(lc, readers)
		{
			Oid			st = lfirst_oid(lc);

			lock_stream_table(st, false);
			pgt_refresh_immediate_full(st);
		}
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		kind = IVM_INSERT;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		kind = IVM_UPDATE;
	else
		kind = IVM_DELETE;
	if (td->tg_oldtable != NULL)
		ntuples += tuplestore_tuple_count(td->tg_oldtable);
	if (td->tg_newtable != NULL)
		ntuples += tuplestore_tuple_count(td->tg_newtable);

	/* every lock this statement's maintenance needs, in the global order */
	lock_statement(td, source, kind, ntuples, false);
	foreach(lc, readers)
	{
		Oid			st = lfirst_oid(lc);
		bool		same;
		bool		other = finish_pending(st, source, &same);

		/*
		 * Another statement of this query on the same source (the insert
		 * and update steps of an upsert or MERGE) matters only when the
		 * query reads the source twice: a self-join's delta reads it.
		 */
		if (!other && same)
			other = get_plan(td, source, st, kind, ntuples > IVM_LARGE_STATEMENT)->multi_ref;
		if (other)
		{
			/* another source's statement of this query is still open */
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			dirty = list_append_unique_oid(dirty, st);
			MemoryContextSwitchTo(old);
			continue;
		}
		if (list_member_oid(dirty, st))
		{
			dirty = list_delete_oid(dirty, st);
			stashes = list_delete_ptr(stashes, find_stash(st, source));
			lock_stream_table(st, false);
			pgt_refresh_immediate_full(st);
			continue;
		}
		{
			IvmStash   *stash = find_stash(st, source);

			if (same)
			{
				/* another step of this query on source fires later */
				if (ntuples > 0)
					stash_rows(&stash, st, source, td);
				continue;
			}
			if (stash != NULL)
			{
				/* the last step: all steps' rows as one change */
				stash_rows(&stash, st, source, td);
				stashes = list_delete_ptr(stashes, stash);
				apply_stash(stash, td, source);
				continue;
			}
		}
		if (ntuples > 0)
			maintain_one(td, source, st, kind, ntuples);
	}
	return PointerGetDatum(NULL);
}

static IvmStash *
find_stash(Oid st, Oid source)
{
	ListCell   *lc;

	foreach(lc, stashes)
	{
		IvmStash   *s = lfirst(lc);

		if (s->st == st && s->source == source)
			return s;
	}
	return NULL;
}

/* copy_rows appends the rows of transition table from to *to */
static void
copy_rows(Tuplestorestate **to, Tuplestorestate *from, Relation rel)
{
	TupleTableSlot *slot;
	int			ptr;

	if (from == NULL)
		return;
	if (*to == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		*to = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old);
	}
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	/* a read pointer of our own: the executor's stays where it was */
	ptr = tuplestore_alloc_read_pointer(from, 0);
	tuplestore_select_read_pointer(from, ptr);
	tuplestore_rescan(from);
	while (tuplestore_gettupleslot(from, true, false, slot))
		tuplestore_puttupleslot(*to, slot);
	tuplestore_select_read_pointer(from, 0);
	ExecDropSingleTupleTableSlot(slot);
}

/* stash_rows adds td's changed rows to (st, source)'s stash */
static void
stash_rows(IvmStash **stash, Oid st, Oid source, TriggerData *td)
{
	if (*stash == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		*stash = palloc0(sizeof(IvmStash));
		(*stash)->st = st;
		(*stash)->source = source;
		(*stash)->subid = GetCurrentSubTransactionId();
		stashes = lappend(stashes, *stash);
		MemoryContextSwitchTo(old);
	}
	copy_rows(&(*stash)->old_rows, td->tg_oldtable, td->tg_relation);
	copy_rows(&(*stash)->new_rows, td->tg_newtable, td->tg_relation);
	if (td->tg_oldtable != NULL)
		(*stash)->ntuples += tuplestore_tuple_count(td->tg_oldtable);
	if (td->tg_newtable != NULL)
		(*stash)->ntuples += tuplestore_tuple_count(td->tg_newtable);
}

/*
 * get_targets returns what the IMMEDIATE triggers of table firing maintain
 * (see IvmTargets).
 */
static IvmTargets *
get_targets(Oid firing)
{
	IvmTargets *entry;
	bool		found;
	List	   *candidates;
	ListCell   *lc;
	Oid			source = InvalidOid;

	if (ivm_targets == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(IvmTargets);
		ctl.hcxt = TopMemoryContext;
		ivm_targets = hash_create("pg_trickle IMMEDIATE targets", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(targets_inval, (Datum) 0);
	}
	entry = hash_search(ivm_targets, &firing, HASH_ENTER, &found);
	if (found && entry->valid)
		return entry;
	if (found)
		list_free(entry->readers);
	entry->readers = NIL;
	entry->source = InvalidOid;
	entry->valid = false;

	/* one set of triggers per table: at most one of these has readers */
	candidates = lcons_oid(firing, pgt_relation_ancestors(firing));
	foreach(lc, candidates)
	{
		if (pgt_catalog_immediate_readers(lfirst_oid(lc)) != NIL)
			source = lfirst_oid(lc);
	}
	if (OidIsValid(source))
	{
		List	   *readers = pgt_ivm_immediate_readers(source);
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		entry->readers = list_copy(readers);
		MemoryContextSwitchTo(old);
		entry->source = source;
	}
	entry->valid = true;
	return entry;
}

/* forget the targets of relid (all for InvalidOid) */
static void
targets_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	IvmTargets *entry;

	hash_seq_init(&status, ivm_targets);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || entry->firing == relid)
			entry->valid = false;
	}
}

/*
 * apply_stash applies the rows of stash as one UPDATE-like change (old
 * rows out, new rows in) of td's table, through the update statement's
 * plan.
 */
static void
apply_stash(IvmStash *stash, TriggerData *td, Oid source)
{
	TriggerData fake = *td;
	Trigger		trig = *td->tg_trigger;

	if (stash->ntuples == 0)
		return;
	if (stash->old_rows == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		stash->old_rows = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old);
	}
	if (stash->new_rows == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		stash->new_rows = tuplestore_begin_heap(false, false, work_mem);
		MemoryContextSwitchTo(old);
	}
	trig.tgoldtable = "__pgt_old";
	trig.tgnewtable = "__pgt_new";
	fake.tg_trigger = &trig;
	fake.tg_event = (td->tg_event & ~TRIGGER_EVENT_OPMASK) | TRIGGER_EVENT_UPDATE;
	fake.tg_oldtable = stash->old_rows;
	fake.tg_newtable = stash->new_rows;
	maintain_one(&fake, source, stash->st, IVM_UPDATE, stash->ntuples);
	tuplestore_end(stash->old_rows);
	tuplestore_end(stash->new_rows);
}

/*
 * open_conflict says whether st has, besides the latest open statement of
 * (st, source) (the one whose AFTER trigger runs), an open statement on
 * another source, or one that encloses it: a statement of an earlier
 * command, whose own change st does not reflect yet, still open (a user
 * row trigger of an INSERT running an UPDATE of the same table: the
 * UPDATE's AFTER statement trigger fires before the INSERT's).  *same
 * says whether another statement of the same command on source is open
 * (the steps of an upsert or MERGE).  With remove, that latest statement
 * is taken off the list.
 */
static bool
open_conflict(Oid st, Oid source, bool *same, bool remove)
{
	ListCell   *lc;
	IvmPending *mine = NULL;
	bool		conflict = false;
	int			nsame = 0;

	foreach(lc, pending)
	{
		IvmPending *p = lfirst(lc);

		if (p->st == st && p->source == source)
			mine = p;
	}
	foreach(lc, pending)
	{
		IvmPending *p = lfirst(lc);

		if (p->st != st || p == mine)
			continue;
		if (p->source != source)
			conflict = true;
		else if (mine != NULL && p->cid < mine->cid)
			conflict = true;
		else
			nsame++;
	}
	if (mine != NULL && remove)
		pending = list_delete_ptr(pending, mine);
	if (same != NULL)
		*same = nsame > 0;
	return conflict;
}

/*
 * finish_pending removes the latest open statement of (st, source) and
 * says whether st must be recomputed later instead (see open_conflict).
 */
static bool
finish_pending(Oid st, Oid source, bool *same)
{
	return open_conflict(st, source, same, true);
}

static void
register_callbacks(void)
{
	if (xact_callback_registered)
		return;
	RegisterXactCallback(ivm_xact_callback, NULL);
	RegisterSubXactCallback(ivm_subxact_callback, NULL);
	xact_callback_registered = true;
}

/* statements of an aborted subtransaction never reach their AFTER trigger */
static void
ivm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, pending)
	{
		IvmPending *p = lfirst(lc);

		if (p->subid == mySubid)
			pending = foreach_delete_current(pending, lc);
	}
	foreach(lc, stashes)
	{
		IvmStash   *p = lfirst(lc);

		if (p->subid == mySubid)
			stashes = foreach_delete_current(stashes, lc);
	}
}

/*
 * maintain_one applies the statement's change to stream table st.
 */
static void
maintain_one(TriggerData *td, Oid source, Oid st, IvmKind kind, int64 ntuples)
{
	IvmPlan    *entry = get_plan(td, source, st, kind, ntuples > IVM_LARGE_STATEMENT);
	PgtRoleSave save;
	bool		ok = true;
	bool		gave_up = false;
	bool		grouped;
	int			rc;

	/*
	 * lock_statement took st's lock for this statement: shared when its
	 * groups are to be locked, else exclusive.  The groups' keys come from
	 * the plan built after that lock was held (and any definition change
	 * before it accepted), so they are the current definition's.
	 */
	if (entry->plan == NULL && !entry->recompute)
		return;					/* the change cannot reach this stream table */
	grouped = st_lock_held(st) == 1;
	if (grouped && (entry->keys_plan == NULL || entry->recompute))
	{
		/*
		 * Only when the owner lost a privilege between two statements of
		 * this transaction (the plan became a recompute): nothing else can
		 * change the plan while the shared lock is held.
		 */
		lock_stream_table(st, false);
		grouped = false;
	}
	else if (!grouped && st_lock_held(st) == 0)
		lock_stream_table(st, false);	/* not reached: lock_statement ran */
	if (grouped)
		lock_groups(entry, td);

	if (entry->recompute)
	{
		pgt_refresh_immediate_full(st);
		return;
	}
	if (entry->plan == NULL)
		return;					/* the change cannot reach this stream table */

	pgt_role_switch(entry->owner, true, &save);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (entry->key.large && work_mem < IVM_LARGE_WORK_MEM)
		(void) set_config_option("work_mem", CppAsString2(IVM_LARGE_WORK_MEM),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	pgt_internal_write_depth++;
	PG_TRY();
	{
		rc = SPI_execute_plan(entry->plan, NULL, NULL, false, 0);
		if (entry->strategy == PGT_DELTA_KEYED)
		{
			if (rc != SPI_OK_MERGE)
				elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		}
		else
		{
			bool		isnull;
			HeapTuple	tup;
			TupleDesc	desc;

			if (rc != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
			tup = SPI_tuptable->vals[0];
			desc = SPI_tuptable->tupdesc;
			if (entry->strategy != PGT_DELTA_SINGLETON)
			{
				int64		deleted = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
				Datum		expected = SPI_getbinval(tup, desc, 4, &isnull);

				int64		want = DatumGetInt64(DirectFunctionCall1(numeric_int8, expected));

				ok = deleted == want;
				/* -1: the delta gave up (a recursive delta did not converge) */
				if (want == -1)
					gave_up = true;
			}
		}
	}
	PG_FINALLY();
	{
		pgt_internal_write_depth--;
	}
	PG_END_TRY();
	SPI_finish();
	pgt_role_restore(&save);

	if (!ok)
	{
		if (!gave_up)
			ereport(WARNING,
					(errmsg("stream table \"%s\" was inconsistent with its sources and was recomputed",
							pgt_relation_display_name(st))));
		pgt_refresh_immediate_full(st);
	}
}

/*
 * get_plan returns the cache entry for (st, firing table, kind, size),
 * building its statements if needed.
 */
static IvmPlan *
get_plan(TriggerData *td, Oid source, Oid st, IvmKind kind, bool large)
{
	IvmPlanKey	key;
	IvmPlan    *entry;
	bool		found;

	if (ivm_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(IvmPlanKey);
		ctl.entrysize = sizeof(IvmPlan);
		ctl.hcxt = TopMemoryContext;
		ivm_plans = hash_create("pg_trickle IMMEDIATE plans", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(plan_inval, (Datum) 0);
	}
	register_callbacks();
	memset(&key, 0, sizeof(key));
	key.st = st;
	key.firing = RelationGetRelid(td->tg_relation);
	key.kind = kind;
	key.large = large;
	entry = hash_search(ivm_plans, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->valid = false;
		entry->plan = NULL;
		entry->keys_plan = NULL;
		entry->recompute = false;
	}
	if (entry->valid &&
		(entry->plan == NULL || SPI_plan_is_valid(entry->plan)) &&
		(entry->keys_plan == NULL || SPI_plan_is_valid(entry->keys_plan)))
		return entry;

	if (entry->plan != NULL)
		SPI_freeplan(entry->plan);
	if (entry->keys_plan != NULL)
		SPI_freeplan(entry->keys_plan);
	entry->plan = entry->keys_plan = NULL;
	entry->valid = false;
	build_plan(entry, td, source);
	entry->valid = true;
	return entry;
}

/*
 * build_plan prepares entry's statements, with the transition tables of td
 * registered so that they resolve, as the stream table's owner.
 */
static void
build_plan(IvmPlan *entry, TriggerData *td, Oid source)
{
	PgtStreamTable *st = pgt_catalog_get(entry->key.st, false);
	PgtAnalysis *analysis;
	PgtRoleSave save;
	char	   *sql;
	char	   *keys_sql;
	SPIPlanPtr	plan;
	HeapTuple	tup;

	if (st == NULL || strcmp(st->effective_refresh_mode, "IMMEDIATE") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s\" is not an IMMEDIATE stream table",
						pgt_relation_display_name(entry->key.st)),
				 errdetail("Its trigger on \"%s\" is out of date.",
						   RelationGetRelationName(td->tg_relation))));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(entry->key.st));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", entry->key.st);
	entry->owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	entry->source = source;
	entry->recompute = false;
	pgt_role_switch(entry->owner, true, &save);
	analysis = pgt_analyze_query_ext(st->defining_query, st->name, false);
	{
		int			refs[2] = {(int) source, 0};

		(void) count_source_refs((Node *) pgt_dvm_prepare(analysis->query), refs);
		entry->multi_ref = refs[1] > 1;
	}

	/*
	 * What was maintainable at creation may not be now (row-level security
	 * enabled on a source, a privilege revoked): then every statement
	 * recomputes the stream table as its owner, as a FULL refresh would.
	 */
	{
		List	   *sources = NIL;
		const char *blocker = pgt_dvm_blocker(analysis->query, &sources);

		if (blocker != NULL)
		{
			ereport(WARNING,
					(errmsg("stream table \"%s\" is recomputed on every change of its sources",
							pgt_relation_display_name(entry->key.st)),
					 errdetail_internal("%s", blocker),
					 errhint("Alter it to refresh_mode => 'FULL' or 'AUTO'.")));
			entry->recompute = true;
			pgt_role_restore(&save);
			return;
		}
	}
	sql = pgt_dvm_immediate_apply_sql(analysis->query, analysis,
									  pgt_qualified_name(entry->key.st), source,
									  RelationGetRelid(td->tg_relation),
									  td->tg_oldtable != NULL, td->tg_newtable != NULL,
									  &entry->strategy, &keys_sql);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	if (sql != NULL)
	{
		plan = SPI_prepare(sql, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s: %s",
				 SPI_result_code_string(SPI_result), sql);
		SPI_keepplan(plan);
		entry->plan = plan;
		elog(DEBUG1, "pg_trickle IMMEDIATE SQL for \"%s\": %s", st->name, sql);
	}
	/*
	 * A large statement locks the whole stream table (one pass over its
	 * change, not two) unless its transaction already shares it.
	 */
	if (sql != NULL && keys_sql != NULL)
	{
		plan = SPI_prepare(keys_sql, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s: %s",
				 SPI_result_code_string(SPI_result), keys_sql);
		SPI_keepplan(plan);
		entry->keys_plan = plan;
	}
	SPI_finish();
	pgt_role_restore(&save);
}

/* count_source_refs counts the entries reading relation context[0] */
static bool
count_source_refs(Node *node, void *context)
{
	int		   *refs = context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION && rte->relid == (Oid) refs[0])
			refs[1]++;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, count_source_refs, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, count_source_refs, context);
}

/*
 * The maintenance lock of a stream table is a heavyweight lock (an advisory
 * tag of pg_trickle's own class): ShareLock for group-locked maintenance,
 * ExclusiveLock for everything else.  Whoever takes it exclusively also
 * updates the stream table's row in pgtrickle.pgt_ivm_locks, after all of
 * its locks are held: no one waits on that row, but in REPEATABLE READ the
 * update fails to serialize when another exclusive holder committed after
 * the snapshot was taken.
 */
static void
st_locktag(LOCKTAG *tag, Oid st)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) st, 0,
						 PGT_IVM_ST_LOCKTAG_CLASS);
}

/* st_lock_held: 2 exclusive, 1 shared, 0 not held by this transaction */
static int
st_lock_held(Oid st)
{
	LOCKTAG		tag;

	st_locktag(&tag, st);
	if (pgt_compat_lock_held_by_me(&tag, ExclusiveLock))
		return 2;
	if (pgt_compat_lock_held_by_me(&tag, ShareLock))
		return 1;
	return 0;
}

/*
 * lock_stream_table takes st's maintenance lock (shared or exclusive)
 * unless this transaction holds it already in that mode or a stronger one.
 * Exclusive over shared is an upgrade: lock_statement avoids it, and only
 * the rare cases documented there reach it.
 */
static void
lock_stream_table(Oid st, bool shared)
{
	LOCKTAG		tag;
	int			held = st_lock_held(st);

	if (held == 2 || (shared && held == 1))
		return;
	st_locktag(&tag, st);
	(void) LockAcquire(&tag, shared ? ShareLock : ExclusiveLock, false, false);
	if (!shared)
		lock_row_update(st);
}

/*
 * lock_row_update updates st's lock row (as the extension owner, who owns
 * the lock rows): an error if st is not IMMEDIATE, a serialization failure
 * in REPEATABLE READ if another exclusive holder committed unseen.
 */
static void
lock_row_update(Oid st)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	Oid			saved_user;
	int			saved_sec;
	uint64		n;

	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(pgt_extension_owner(),
						   saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = ObjectIdGetDatum(st);
	/* operators qualified: the writer's search_path is in force here */
	n = pgt_spi_exec_args("UPDATE pgtrickle.pgt_ivm_locks "
						  "SET n = n OPERATOR(pg_catalog.+) 1 "
						  "WHERE pgt_relid OPERATOR(pg_catalog.=) $1",
						  1, argtypes, values, NULL, false, SPI_OK_UPDATE);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream table \"%s\" is not maintained IMMEDIATE",
						pgt_relation_display_name(st)),
				 errdetail("Its maintenance lock row is missing.")));
	SPI_finish();
	SetUserIdAndSecContext(saved_user, saved_sec);
}

/*
 * pgt_ivm_lock takes stream table st's exclusive maintenance lock (for a
 * refresh or definition change of an IMMEDIATE stream table).
 */
void
pgt_ivm_lock(Oid st)
{
	lock_stream_table(st, false);
}

/* other_pending: must st be recomputed later (see open_conflict)? */
static bool
other_pending(Oid st, Oid source)
{
	return open_conflict(st, source, NULL, false);
}

/*
 * add_closure appends to *sts the IMMEDIATE stream tables maintained from
 * st's own changes (the readers named by st's triggers), transitively.
 * It reads the relcache only.
 */
static void
add_closure(List **sts, Oid st, int guard)
{
	ListCell   *lc;

	if (guard > 64)
		return;					/* cycles are refused at creation */
	foreach(lc, list_copy(get_targets(st)->readers))
	{
		Oid			reader = lfirst_oid(lc);

		if (list_member_oid(*sts, reader))
			continue;
		*sts = lappend_oid(*sts, reader);
		add_closure(sts, reader, guard + 1);
	}
}

/*
 * statement_modes fills *sts with every stream table the statement's
 * maintenance may write (its trigger's readers and everything maintained
 * from them), sorted by OID, and *modes with the lock each needs: 1
 * (shared, then group locks) for a grouped plan in READ COMMITTED that
 * this transaction does not lock exclusively yet, else 2 (exclusive).
 */
static void
statement_modes(TriggerData *td, Oid source, IvmKind kind, int64 ntuples,
				bool truncate, List **sts, List **modes)
{
	List	   *all = NIL;
	List	   *direct = NIL;
	List	   *direct_modes = NIL;
	ListCell   *lc;
	ListCell   *lc2;
	bool		large = ntuples > IVM_LARGE_STATEMENT;
	List	   *readers = list_copy(get_targets(RelationGetRelid(td->tg_relation))->readers);

	foreach(lc2, readers)
	{
		Oid			st = lfirst_oid(lc2);
		int			mode = 2;
		int			held = st_lock_held(st);

		/* a recompute (see IvmPending) or a TRUNCATE: exclusive */
		if (!truncate && !list_member_oid(dirty, st) && !other_pending(st, source))
		{
			IvmPlan    *entry;

			if (ntuples == 0 && find_stash(st, source) == NULL)
				continue;		/* nothing to maintain */
			entry = get_plan(td, source, st, kind, large);
			if (entry->plan == NULL && !entry->recompute)
				continue;		/* the change cannot reach st */

			/*
			 * Once shared, a transaction keeps locking groups (whatever the
			 * statement's size or the number of groups it holds): taking
			 * the whole lock then would be an upgrade, which deadlocks
			 * with any other holder doing the same.
			 */
			if (held != 2 && !IsolationUsesXactSnapshot() &&
				entry->keys_plan != NULL && !entry->recompute && !entry->multi_ref &&
				(held == 1 || (!large && group_locks_held < IVM_MAX_GROUP_LOCKS)))
				mode = 1;
		}
		if (!list_member_oid(direct, st))
		{
			direct = lappend_oid(direct, st);
			direct_modes = lappend_int(direct_modes, mode);
		}
		add_closure(&all, st, 0);
	}
	foreach(lc, direct)
		all = list_append_unique_oid(all, lfirst_oid(lc));
	list_sort(all, list_oid_cmp);
	*sts = all;
	*modes = NIL;
	foreach(lc, all)
	{
		int			mode = 2;
		ListCell   *d;
		ListCell   *m;

		forboth(d, direct, m, direct_modes)
		{
			if (lfirst_oid(d) == lfirst_oid(lc))
				mode = lfirst_int(m);
		}
		*modes = lappend_int(*modes, mode);
	}
}

/*
 * lock_statement takes, before anything is maintained, the locks of every
 * stream table this statement may write, in one global order: by OID, the
 * stream tables maintained from the statement's change (those of nested
 * statements included), then, in maintain_one, the groups of each
 * group-locked one in key-hash order.  A lock already held in a mode as
 * strong is not taken again; a shared one is never made exclusive here.
 *
 * Whether a stream table is group-locked depends on its plan, which a
 * definition change committed while we waited may have changed: after all
 * locks are held, pending invalidations are accepted and the modes
 * computed again; if one changed, the locks taken by this call are
 * released (no row was read or written under them) and taken anew.  Lock
 * rows are updated last, when the locks are final.
 */
static void
lock_statement(TriggerData *td, Oid source, IvmKind kind, int64 ntuples,
			   bool truncate)
{
	for (int attempt = 0;; attempt++)
	{
		List	   *sts;
		List	   *modes;
		List	   *sts2;
		List	   *modes2;
		List	   *taken = NIL;
		List	   *taken_modes = NIL;
		ListCell   *lc1;
		ListCell   *lc2;

		statement_modes(td, source, kind, ntuples, truncate, &sts, &modes);
		forboth(lc1, sts, lc2, modes)
		{
			Oid			st = lfirst_oid(lc1);
			int			want = lfirst_int(lc2);
			int			held = st_lock_held(st);
			LOCKTAG		tag;

			if (held >= want)
				continue;
			if (held == 1)
			{
				/* an upgrade: see lock_stream_table */
				lock_stream_table(st, false);
				continue;
			}
			st_locktag(&tag, st);
			(void) LockAcquire(&tag, want == 1 ? ShareLock : ExclusiveLock,
							   false, false);
			taken = lappend_oid(taken, st);
			taken_modes = lappend_int(taken_modes, want);
		}
		if (taken == NIL)
			return;

		AcceptInvalidationMessages();
		statement_modes(td, source, kind, ntuples, truncate, &sts2, &modes2);
		if ((equal(sts, sts2) && equal(modes, modes2)) || attempt >= 3)
		{
			forboth(lc1, taken, lc2, taken_modes)
			{
				if (lfirst_int(lc2) == 2)
					lock_row_update(lfirst_oid(lc1));
			}
			return;
		}
		forboth(lc1, taken, lc2, taken_modes)
		{
			LOCKTAG		tag;

			st_locktag(&tag, lfirst_oid(lc1));
			LockRelease(&tag, lfirst_int(lc2) == 1 ? ShareLock : ExclusiveLock, false);
		}
	}
}

/*
 * lock_groups takes a transaction-level lock on every group the statement
 * touches, in hash order.
 */
static void
lock_groups(IvmPlan *entry, TriggerData *td)
{
	PgtRoleSave save;
	int			rc;
	int64	   *keys;
	uint64		n;

	pgt_role_switch(entry->owner, true, &save);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	rc = SPI_execute_plan(entry->keys_plan, NULL, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	keys = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		keys[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	pgt_role_restore(&save);

	for (uint64 i = 0; i < n; i++)
	{
		LOCKTAG		tag;

		/* the fourth field tells these from SQL-level advisory locks */
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
							 (uint32) (((uint64) keys[i]) >> 32),
							 (uint32) keys[i] ^ entry->key.st,
							 PGT_IVM_LOCKTAG_CLASS);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	group_locks_held += (int) n;
}

/* a transaction's group locks end with it */
static void
ivm_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		group_locks_held = 0;
		pending = NIL;			/* the lists went with TopTransactionContext */
		dirty = NIL;
		stashes = NIL;
	}
}

/* forget plans of relations whose definition changed */
static void
plan_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	IvmPlan    *entry;

	if (ivm_plans == NULL)
		return;
	hash_seq_init(&status, ivm_plans);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || entry->key.st == relid || entry->key.firing == relid ||
			entry->source == relid)
			entry->valid = false;
	}
}

/*
 * pgt_ivm_lock_sources takes SHARE ROW EXCLUSIVE (what re-creating their
 * triggers takes) on every table whose IMMEDIATE triggers name stream
 * table st, and on their partitions and children, in OID order (base
 * tables only).  A definition change or drop of st calls it, then takes
 * st's maintenance lock, then locks st's relation: the order in which
 * writers lock them (a source when the statement starts, the maintenance
 * locks at its end, the stream table when they write it), so neither can
 * hold what the other waits for.
 */
void
pgt_ivm_lock_sources(Oid st)
{
	List	   *sources = pgt_catalog_ivm_trigger_tables(st);
	ListCell   *lc;

	foreach(lc, sources)
	{
		/* a stream table is written only by maintenance, after our lock */
		if (get_rel_relkind(lfirst_oid(lc)) == '\0' ||
			pgt_catalog_is_stream_table(lfirst_oid(lc)))
			continue;
		LockRelationOid(lfirst_oid(lc), ShareRowExclusiveLock);
		(void) find_all_inheritors(lfirst_oid(lc), ShareRowExclusiveLock, NULL);
	}
}

/*
 * pgt_ivm_forget makes every backend drop its prepared statements for
 * stream table st (its definition or mode changed).
 */
void
pgt_ivm_forget(Oid st)
{
	CacheInvalidateRelcacheByRelid(st);
}
