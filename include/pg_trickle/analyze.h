/*-------------------------------------------------------------------------
 *
 * analyze.h
 *	  Validation and description of a stream table's defining query.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/analyze.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_ANALYZE_H
#define PG_TRICKLE_ANALYZE_H

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

/* How a stored row is identified (see docs/ARCHITECTURE.md, "Storage"). */
typedef enum PgtRowIdentity
{
	PGT_IDENTITY_ALL_COLUMNS,	/* multiset: identity = every visible column */
	PGT_IDENTITY_GROUP_KEY,		/* set: identity = GROUP BY / DISTINCT columns */
	PGT_IDENTITY_SINGLETON		/* aggregate without GROUP BY: one row */
} PgtRowIdentity;

typedef enum PgtSourceType
{
	PGT_SOURCE_TABLE,
	PGT_SOURCE_STREAM_TABLE,
	PGT_SOURCE_VIEW,
	PGT_SOURCE_MATVIEW,
	PGT_SOURCE_FOREIGN_TABLE
} PgtSourceType;

/* one output column of the defining query */
typedef struct PgtColumn
{
	char	   *name;
	Oid			typid;
	int32		typmod;
	Oid			collation;
	bool		is_key;			/* part of the row identity */
} PgtColumn;

/* one relation the defining query reads, directly or through a view */
typedef struct PgtSource
{
	Oid			relid;
	PgtSourceType type;
} PgtSource;

typedef struct PgtAnalysis
{
	Query	   *query;			/* analyzed, not rewritten */
	char	   *defining_query; /* deparsed with every name qualified */
	List	   *columns;		/* PgtColumn *, in output order */
	List	   *sources;		/* PgtSource *, each relation once */
	PgtRowIdentity identity;
	bool		identity_unique;	/* a UNIQUE index on the key is valid */
	struct PgtAggLayout *agg_layout;	/* algebraic aggregate, or NULL */
	bool		has_volatile;	/* calls a volatile function */
	const char *volatile_name;	/* one such function, for messages */
	const char *time_function;	/* now(), CURRENT_DATE, ... or NULL */
} PgtAnalysis;

extern void pgt_warn_ignored_order(PgtAnalysis *analysis, const char *stname);
extern PgtAnalysis *pgt_analyze_query(const char *query_text,
									  const char *stname);
extern PgtAnalysis *pgt_analyze_query_ext(const char *query_text,
										  const char *stname, bool deparse);
extern const char *pgt_source_type_name(PgtSourceType type);
extern const char *pgt_identity_name(PgtRowIdentity identity);
extern char *pgt_deparse_query(Query *query);

#endif							/* PG_TRICKLE_ANALYZE_H */
