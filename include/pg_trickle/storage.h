/*-------------------------------------------------------------------------
 *
 * storage.h
 *	  The heap table that holds a stream table's rows.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/storage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_STORAGE_H
#define PG_TRICKLE_STORAGE_H

#include "postgres.h"

#include "nodes/primnodes.h"

#include "pg_trickle/analyze.h"

extern Oid	pgt_storage_create(Oid nspid, const char *relname,
							   PgtAnalysis *analysis);
extern bool pgt_storage_matches(Oid relid, PgtAnalysis *analysis);
extern void pgt_storage_record_dependencies(Oid relid, List *sources);
extern void pgt_storage_record_extension_dependency(Oid relid);
extern void pgt_storage_drop(Oid relid, bool cascade);
extern char *pgt_storage_row_id_expr(List *columns, PgtRowIdentity identity,
									 const char *alias);
extern List *pgt_storage_column_names(List *columns);
extern bool pgt_storage_equal_is_identity(Oid typid, Oid collation);

/* keep.c: what a rebuild of the storage carries over */
typedef struct PgtStorageKeep PgtStorageKeep;
extern PgtStorageKeep *pgt_storage_keep_save(Oid relid, List *identity_columns);
extern void pgt_storage_keep_restore(PgtStorageKeep *keep, Oid relid,
									 const char *stname);

#endif							/* PG_TRICKLE_STORAGE_H */
