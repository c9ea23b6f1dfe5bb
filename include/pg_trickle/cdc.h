/*-------------------------------------------------------------------------
 *
 * cdc.h
 *	  Change capture: per-source change buffers filled by statement
 *	  triggers.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/cdc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_CDC_H
#define PG_TRICKLE_CDC_H

#include "postgres.h"

#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"

#define PGT_BUFFER_XID_COLUMN	"__pgt_xid"
#define PGT_BUFFER_W_COLUMN		"__pgt_w"

extern void pgt_cdc_ensure_capture(Oid relid, Bitmapset *attnums, bool triggers);
extern void pgt_cdc_release_unused(void);
extern Oid	pgt_cdc_adopt_child(Oid child);
extern void pgt_cdc_release_child(Oid child);
extern Oid	pgt_cdc_buffer_relid(Oid relid);
extern char *pgt_cdc_buffer_name(Oid relid);
extern Bitmapset *pgt_cdc_captured_attnums(Oid relid);
extern bool pgt_cdc_consumed_own_xid(Oid relid);
extern void pgt_cdc_note_consumed(Oid relid);

#endif							/* PG_TRICKLE_CDC_H */
