/*-------------------------------------------------------------------------
 *
 * dvm_internal.h
 *	  What the files of the delta engine (src/dvm) share among themselves.
 *
 * IDENTIFICATION
 *	  src/dvm/dvm_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_DVM_INTERNAL_H
#define PG_TRICKLE_DVM_INTERNAL_H

#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"

/* prepare.c */
extern Query *pgt_dvm_prepare_query(Query *query);
extern Node *pgt_dvm_wrap_jointree_node(Query *q, Node *node);
extern void pgt_dvm_collect_rtindexes(Node *node, List **list);
extern JoinExpr *pgt_dvm_find_join(Node *node, int rtindex);

/* sublink.c */
extern void pgt_dvm_pull_up_sublinks(Query *q);

#endif							/* PG_TRICKLE_DVM_INTERNAL_H */
