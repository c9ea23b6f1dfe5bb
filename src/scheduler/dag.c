/*-------------------------------------------------------------------------
 *
 * dag.c
 *	  The graph of stream tables: who reads whom, in what order to refresh
 *	  them, and which of them form diamonds.
 *
 *	  A diamond is a stream table D whose direct sources share an ancestor:
 *	  A -> B -> D and A -> C -> D, or A -> B -> D together with A -> D.
 *	  With diamond_consistency = 'atomic' on D, D and every stream table on
 *	  a path from a shared ancestor to D (B and C, not A itself) form a
 *	  diamond group, which the scheduler refreshes in one transaction with
 *	  one snapshot: D never combines B and C from different moments, and a
 *	  failure of any member rolls all of them back.  Groups that share a
 *	  member are merged.
 *
 * IDENTIFICATION
 *	  src/scheduler/dag.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/bitmapset.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_trickle/dag.h"

PG_FUNCTION_INFO_V1(pgt_diamond_groups);

/* a stream table's position in PgtDag.nodes, by relid */
typedef struct RelidIndex
{
	Oid			relid;
	int			index;
} RelidIndex;

static void topological_order(PgtDag *dag);
static void find_diamonds(PgtDag *dag);
static int	uf_find(int *parent, int i);
static int	base_index(List *bases, Oid relid);

/*
 * pgt_dag_load reads the stream tables and their dependencies.  Must run
 * in a transaction with an active snapshot; the result lives in the
 * caller's memory context.
 */
PgtDag *
pgt_dag_load(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	PgtDag	   *dag = palloc0(sizeof(PgtDag));
	HTAB	   *index;
	SPITupleTable *tab;
	TupleDesc	desc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pgt_id, pgt_relid, schedule, status, "
					"effective_refresh_mode <> 'FULL', "
					"NOT is_populated OR needs_reinit, last_refresh_at, "
					"diamond_consistency = 'atomic', diamond_schedule_policy = 'slowest' "
					"FROM pgtrickle.pgt_stream_tables WHERE effective_refresh_mode <> 'IMMEDIATE' "
					"ORDER BY pgt_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pgtrickle.pgt_stream_tables");
	MemoryContextSwitchTo(cxt);
	tab = SPI_tuptable;
	desc = tab->tupdesc;
	dag->n = (int) SPI_processed;
	dag->nodes = palloc0(sizeof(PgtDagNode) * Max(dag->n, 1));
	for (int i = 0; i < dag->n; i++)
	{
		PgtDagNode *node = &dag->nodes[i];
		HeapTuple	tup = tab->vals[i];
		bool		isnull;
		Datum		d;

		node->pgt_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		node->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		node->schedule = SPI_getvalue(tup, desc, 3);
		node->status = SPI_getvalue(tup, desc, 4);
		node->differential = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		node->needs_full = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		node->has_refreshed = !isnull;
		node->last_refresh = isnull ? 0 : DatumGetTimestampTz(d);
		node->atomic = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		node->slowest = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
	}

	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelidIndex);
		ctl.hcxt = cxt;
		index = hash_create("pg_trickle dag", Max(dag->n, 16), &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int i = 0; i < dag->n; i++)
		{
			RelidIndex *e = hash_search(index, &dag->nodes[i].relid, HASH_ENTER, NULL);

			e->index = i;
		}
	}
	if (SPI_execute("SELECT s.pgt_relid, d.source_relid, d.source_type = 'STREAM_TABLE' "
					"FROM pgtrickle.pgt_dependencies d "
					"JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pgtrickle.pgt_dependencies");
	MemoryContextSwitchTo(cxt);
	for (uint64 e = 0; e < SPI_processed; e++)
	{
		HeapTuple	tup = SPI_tuptable->vals[e];
		bool		isnull;
		Oid			reader = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		Oid			source = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		bool		is_st = DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		RelidIndex *re = hash_search(index, &reader, HASH_FIND, NULL);
		RelidIndex *se = is_st ? hash_search(index, &source, HASH_FIND, NULL) : NULL;
		int			ri = re ? re->index : -1;
		int			si = se ? se->index : -1;

		if (ri < 0)
			continue;
		if (si < 0)
			dag->nodes[ri].base_sources =
				list_append_unique_oid(dag->nodes[ri].base_sources, source);
		else if (si != ri && !list_member_int(dag->nodes[ri].sources, si))
		{
			dag->nodes[ri].sources = lappend_int(dag->nodes[ri].sources, si);
			dag->nodes[si].readers = lappend_int(dag->nodes[si].readers, ri);
		}
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	topological_order(dag);
	find_diamonds(dag);
	return dag;
}

/* pgt_dag_dissolve_groups forgets the diamond groups */
void
pgt_dag_dissolve_groups(PgtDag *dag)
{
	for (int i = 0; i < dag->n; i++)
	{
		dag->nodes[i].group = 0;
		dag->nodes[i].convergence = false;
	}
	dag->ngroups = 0;
}

/* Kahn's algorithm; stream tables on a cycle never reach indegree 0 */
static void
topological_order(PgtDag *dag)
{
	int		   *indegree = palloc0(sizeof(int) * Max(dag->n, 1));
	List	   *queue = NIL;

	dag->order = palloc(sizeof(int) * Max(dag->n, 1));
	dag->n_ordered = 0;
	for (int i = 0; i < dag->n; i++)
	{
		indegree[i] = list_length(dag->nodes[i].sources);
		if (indegree[i] == 0)
			queue = lappend_int(queue, i);
	}
	while (queue != NIL)
	{
		int			i = linitial_int(queue);
		ListCell   *lc;

		queue = list_delete_first(queue);
		dag->order[dag->n_ordered++] = i;
		foreach(lc, dag->nodes[i].readers)
		{
			int			r = lfirst_int(lc);

			if (--indegree[r] == 0)
				queue = lappend_int(queue, r);
		}
	}
	pfree(indegree);
}

/*
 * find_diamonds assigns diamond groups (see the file header).  Ancestor
 * sets are bitmaps over stream tables (0 .. n-1) and the other relations
 * they read (n and up).
 */
static void
find_diamonds(PgtDag *dag)
{
	int			n = dag->n;
	Bitmapset **anc = palloc0(sizeof(Bitmapset *) * Max(n, 1));
	List	   *bases = NIL;
	int		   *parent = palloc(sizeof(int) * Max(n, 1));
	int		   *group_of_root = palloc0(sizeof(int) * Max(n, 1));
	int		   *size = palloc0(sizeof(int) * Max(n, 1));

	for (int i = 0; i < n; i++)
		parent[i] = i;

	/* anc[i]: i itself and everything upstream of it */
	for (int k = 0; k < dag->n_ordered; k++)
	{
		int			i = dag->order[k];
		PgtDagNode *node = &dag->nodes[i];
		ListCell   *lc;

		anc[i] = bms_make_singleton(i);
		foreach(lc, node->base_sources)
		{
			Oid			b = lfirst_oid(lc);

			if (!list_member_oid(bases, b))
				bases = lappend_oid(bases, b);
			anc[i] = bms_add_member(anc[i], n + base_index(bases, b));
		}
		foreach(lc, node->sources)
			anc[i] = bms_add_members(anc[i], anc[lfirst_int(lc)]);
	}

	for (int k = 0; k < dag->n_ordered; k++)
	{
		int			d = dag->order[k];
		PgtDagNode *node = &dag->nodes[d];
		List	   *direct = NIL;	/* ancestor sets of the direct sources */
		Bitmapset  *shared = NULL;
		ListCell   *lc;
		ListCell   *lc2;

		if (!node->atomic ||
			list_length(node->sources) + list_length(node->base_sources) < 2)
			continue;
		foreach(lc, node->sources)
			direct = lappend(direct, anc[lfirst_int(lc)]);
		foreach(lc, node->base_sources)
			direct = lappend(direct,
							 bms_make_singleton(n + base_index(bases, lfirst_oid(lc))));
		foreach(lc, direct)
		{
			for_each_cell(lc2, direct, lnext(direct, lc))
				shared = bms_add_members(shared,
										 bms_intersect(lfirst(lc), lfirst(lc2)));
		}
		if (bms_is_empty(shared))
			continue;

		node->convergence = true;
		for (int x = 0; x < n; x++)
		{
			if (x == d || anc[x] == NULL || !bms_is_member(x, anc[d]) ||
				bms_is_member(x, shared) || !bms_overlap(anc[x], shared))
				continue;
			parent[uf_find(parent, x)] = uf_find(parent, d);
		}
	}

	/* number the groups in topological order of their first member */
	for (int i = 0; i < n; i++)
		size[uf_find(parent, i)]++;
	dag->ngroups = 0;
	for (int k = 0; k < dag->n_ordered; k++)
	{
		int			i = dag->order[k];
		int			root = uf_find(parent, i);

		if (size[root] < 2)
			continue;
		if (group_of_root[root] == 0)
			group_of_root[root] = ++dag->ngroups;
		dag->nodes[i].group = group_of_root[root];
	}
}

static int
uf_find(int *parent, int i)
{
	while (parent[i] != i)
	{
		parent[i] = parent[parent[i]];
		i = parent[i];
	}
	return i;
}

/* base_index is relid's position in bases */
static int
base_index(List *bases, Oid relid)
{
	ListCell   *lc;

	foreach(lc, bases)
	{
		if (lfirst_oid(lc) == relid)
			return foreach_current_index(lc);
	}
	elog(ERROR, "relation %u missing from the dependency graph", relid);
	return -1;					/* keep compiler quiet */
}

/*
 * pgt_diamond_groups lists the diamond groups: each member, whether the
 * diamond's paths meet there, and the group's schedule policy.
 */
Datum
pgt_diamond_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgtDag	   *dag;

	InitMaterializedSRF(fcinfo, 0);
	dag = pgt_dag_load();
	for (int g = 1; g <= dag->ngroups; g++)
	{
		bool		slowest = true;

		for (int i = 0; i < dag->n; i++)
			if (dag->nodes[i].group == g && dag->nodes[i].convergence && !dag->nodes[i].slowest)
				slowest = false;
		for (int k = 0; k < dag->n_ordered; k++)
		{
			PgtDagNode *node = &dag->nodes[dag->order[k]];
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			if (node->group != g)
				continue;
			values[0] = Int32GetDatum(g);
			values[1] = ObjectIdGetDatum(node->relid);
			values[2] = BoolGetDatum(node->convergence);
			values[3] = CStringGetTextDatum(slowest ? "slowest" : "fastest");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_RETURN_VOID();
}
