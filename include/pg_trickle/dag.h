/*-------------------------------------------------------------------------
 *
 * dag.h
 *	  The graph of stream tables and what they read: topological order and
 *	  diamond groups.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/dag.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_DAG_H
#define PG_TRICKLE_DAG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* one stream table */
typedef struct PgtDagNode
{
	int64		pgt_id;
	Oid			relid;
	char	   *schedule;		/* NULL = calculated */
	char	   *status;
	bool		differential;	/* effective mode is not FULL */
	bool		needs_full;		/* never populated or needs reinit */
	bool		has_refreshed;
	TimestampTz last_refresh;
	bool		atomic;			/* diamond_consistency = 'atomic' */
	bool		slowest;		/* diamond_schedule_policy = 'slowest' */
	List	   *sources;		/* indexes of the stream tables it reads */
	List	   *readers;		/* indexes of the stream tables reading it */
	List	   *base_sources;	/* OIDs of the other relations it reads */
	int			group;			/* diamond group, 0 = none */
	bool		convergence;	/* a diamond's paths meet here */
} PgtDagNode;

typedef struct PgtDag
{
	int			n;
	PgtDagNode *nodes;
	int		   *order;			/* node indexes, upstream first */
	int			n_ordered;		/* nodes on a cycle are left out */
	int			ngroups;
} PgtDag;

extern PgtDag *pgt_dag_load(void);
extern void pgt_dag_dissolve_groups(PgtDag *dag);

#endif							/* PG_TRICKLE_DAG_H */
