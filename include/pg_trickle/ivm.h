/*-------------------------------------------------------------------------
 *
 * ivm.h
 *	  IMMEDIATE mode: maintenance inside the writing transaction.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/ivm.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_IVM_H
#define PG_TRICKLE_IVM_H

#include "nodes/pg_list.h"

/* field 4 of pg_trickle's group-lock tags (SQL advisory locks use 1 and 2) */
#define PGT_IVM_LOCKTAG_CLASS 0x7074
/* field 4 of the tags of stream tables' maintenance locks */
#define PGT_IVM_ST_LOCKTAG_CLASS 0x7075
/* field 4 of the lock that serializes attaching restored stream tables */
#define PGT_RESTORE_LOCKTAG_CLASS 0x7076

extern void pgt_ivm_sync(void);
extern void pgt_ivm_sync_locks(void);
extern void pgt_ivm_add_lock_row(Oid st);
extern void pgt_ivm_lock(Oid st);
extern void pgt_ivm_lock_sources(Oid st);
extern void pgt_ivm_forget(Oid st);
extern void pgt_ivm_adopt_child(Oid child);
extern void pgt_ivm_release_child(Oid child);
extern List *pgt_ivm_immediate_readers(Oid source);
extern bool pgt_ivm_has_all_triggers(Oid relid);

#endif							/* PG_TRICKLE_IVM_H */
