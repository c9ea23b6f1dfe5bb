/*-------------------------------------------------------------------------
 *
 * stream_table.h
 *	  Creating, changing and dropping stream tables.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/stream_table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_STREAM_TABLE_H
#define PG_TRICKLE_STREAM_TABLE_H

#include "postgres.h"

#include "storage/lockdefs.h"

#include "pg_trickle/catalog.h"

/*
 * Arguments of the lifecycle functions as given: NULL pointers and
 * *_given = false mean "not given" (for alter: unchanged).
 */
typedef struct PgtSettingsArgs
{
	const char *schedule;
	bool		schedule_given;
	const char *refresh_mode;
	const char *diamond_consistency;
	const char *diamond_schedule_policy;
	const char *cdc_mode;
	bool		append_only_given;
	bool		append_only;
	bool		pooler_compatibility_mode_given;
	bool		pooler_compatibility_mode;
	const char *partition_by;
	bool		max_differential_joins_given;
	int32		max_differential_joins;
	bool		max_delta_fraction_given;
	float8		max_delta_fraction;
} PgtSettingsArgs;

typedef enum PgtCreateKind
{
	PGT_CREATE,
	PGT_CREATE_IF_NOT_EXISTS,
	PGT_CREATE_OR_REPLACE
} PgtCreateKind;

extern void pgt_st_create(const char *name, const char *query,
						  PgtSettingsArgs *args, bool initialize,
						  PgtCreateKind kind);
extern void pgt_st_alter(const char *name, const char *query,
						 PgtSettingsArgs *args, const char *status);
extern void pgt_st_drop(const char *name, bool cascade);
extern void pgt_st_refresh(const char *name);
extern void pgt_st_resume(const char *name);
extern char *pgt_st_export_definition(const char *name);
extern char *pgt_st_repair(const char *name);
extern bool pgt_st_attach_restored(Oid relid);
extern Oid	pgt_st_resolve(const char *name, LOCKMODE lockmode,
						   bool require_owner);

#endif							/* PG_TRICKLE_STREAM_TABLE_H */
