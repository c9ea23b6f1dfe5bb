/*-------------------------------------------------------------------------
 *
 * pg_trickle.c
 *	  Library entry point.
 *
 *	  _PG_init defines the GUCs in every session that loads the library.
 *	  Shared memory and background workers exist only when the library is
 *	  in shared_preload_libraries; manual refresh works without them.
 *
 * IDENTIFICATION
 *	  src/pg_trickle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "pg_trickle/pg_trickle.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(pgt_version);

int			pgt_internal_write_depth = 0;

/*
 * _PG_init defines the GUCs.  Nothing else is needed without preloading.
 */
void
_PG_init(void)
{
	pgt_guc_init();

	if (!process_shared_preload_libraries_in_progress)
		return;
}

/*
 * pgt_waitpoint blocks until no other session holds the exclusive
 * transaction-level advisory lock (7255, n); see PGT_WAITPOINT.
 */
void
pgt_waitpoint(int n)
{
	DirectFunctionCall2(pg_advisory_xact_lock_shared_int4,
						Int32GetDatum(7255), Int32GetDatum(n));
}

/*
 * pgt_version returns the version of the loaded library.
 */
Datum
pgt_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PGT_VERSION));
}
