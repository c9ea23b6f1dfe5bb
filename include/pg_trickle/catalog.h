/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Reading and writing pg_trickle's catalog tables.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_CATALOG_H
#define PG_TRICKLE_CATALOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "pg_trickle/analyze.h"

/* user-visible settings of a stream table, as stored */
typedef struct PgtSettings
{
	char	   *schedule;		/* canonical text; NULL = calculated */
	char	   *refresh_mode;	/* AUTO, FULL, DIFFERENTIAL, IMMEDIATE */
	char	   *diamond_consistency;	/* atomic, none */
	char	   *diamond_schedule_policy;	/* fastest, slowest */
	char	   *cdc_mode;		/* auto, trigger, wal; NULL = the GUC */
	bool		append_only;
	bool		pooler_compatibility_mode;
	char	   *partition_by;
	bool		max_differential_joins_isnull;
	int32		max_differential_joins;
	bool		max_delta_fraction_isnull;
	float8		max_delta_fraction;
} PgtSettings;

/* one row of pgtrickle.pgt_stream_tables */
typedef struct PgtStreamTable
{
	int64		pgt_id;
	Oid			relid;
	char	   *name;
	char	   *schema;
	char	   *defining_query;
	char	   *original_query;
	PgtSettings settings;
	char	   *effective_refresh_mode;
	char	   *refresh_mode_reason;
	char	   *status;
	bool		is_populated;
	bool		needs_reinit;
	bool		restore_pending;	/* restored from a dump, not attached yet */
	char	   *frontier;		/* pg_snapshot text; NULL before the first refresh */
	int32		consecutive_errors;
	PgtRowIdentity identity;
	List	   *identity_columns;	/* char * */
} PgtStreamTable;

extern PgtStreamTable *pgt_catalog_get(Oid relid, bool for_update);
extern bool pgt_catalog_is_stream_table(Oid relid);
extern bool pgt_catalog_inserting;
extern List *pgt_catalog_restore_pending(void);
extern void pgt_catalog_clear_restore_pending(int64 pgt_id);
extern int64 pgt_catalog_insert(PgtStreamTable *st);
extern void pgt_catalog_update_definition(PgtStreamTable *st);
extern void pgt_catalog_set_status(int64 pgt_id, const char *status,
								   bool reset_errors);
extern void pgt_catalog_delete(Oid relid);
extern void pgt_catalog_set_needs_reinit(int64 pgt_id);
extern void pgt_catalog_set_sources(int64 pgt_id, List *sources,
									 List *captured);
extern List *pgt_catalog_readers_of(Oid relid);
extern List *pgt_catalog_captured_sources(int64 pgt_id);
extern List *pgt_catalog_stream_sources(Oid relid);
extern List *pgt_catalog_immediate_readers(Oid source);
extern List *pgt_catalog_immediate_sources(void);
extern List *pgt_catalog_ivm_trigger_tables(Oid st);
extern void pgt_catalog_trim_buffers(List *sources);
extern int64 pgt_catalog_history_start(int64 pgt_id);
extern void pgt_catalog_fail_interrupted(void);
extern void pgt_catalog_history_skip(int64 refresh_id, const char *message);
extern void pgt_catalog_history_discard(int64 refresh_id);
extern void pgt_catalog_fail_running(int64 pgt_id, const char *message);
extern void pgt_catalog_record_failure(int64 pgt_id, const char *initiated_by,
									   const char *message, int max_errors);
extern void pgt_catalog_record_refresh(PgtStreamTable *st,
									   const char *action,
									   const char *initiated_by,
									   TimestampTz start_time,
									   int64 rows_inserted,
									   int64 rows_deleted,
									   int64 delta_rows,
									   const char *fallback_reason,
									   const char *frontier);

#endif							/* PG_TRICKLE_CATALOG_H */
