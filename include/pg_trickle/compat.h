/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL major versions differ for pg_trickle.
 *
 *	  Code elsewhere calls the pgt_compat_* names (or the PG15 spelling of an
 *	  API) and never tests PG_VERSION_NUM itself.  The supported range is
 *	  15 through 18; PostgreSQL 15 is the version every machine here builds.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_COMPAT_H
#define PG_TRICKLE_COMPAT_H

#include "postgres.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "utils/acl.h"
#include "utils/regproc.h"

#if PG_VERSION_NUM < 150000
#error "pg_trickle requires PostgreSQL 15 or later"
#endif

/* parse analysis of a raw statement with no parameters */
#define pgt_compat_parse_analyze(raw, sql) \
	parse_analyze_fixedparams((raw), (sql), NULL, 0, NULL)

/* "a,b" -> List of String; 16 added an escontext argument */
#if PG_VERSION_NUM >= 160000
#define pgt_compat_string_to_qualified_name_list(s) \
	stringToQualifiedNameList((s), NULL)
#else
#define pgt_compat_string_to_qualified_name_list(s) \
	stringToQualifiedNameList(s)
#endif

/* ownership checks were generalised in 16 */
#if PG_VERSION_NUM >= 160000
#define pgt_compat_class_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define pgt_compat_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define pgt_compat_class_ownercheck(relid, roleid) \
	pg_class_ownercheck((relid), (roleid))
#define pgt_compat_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/* join alias flattening gained a PlannerInfo argument in 16 */
#if PG_VERSION_NUM >= 160000
#define pgt_compat_flatten_join_alias_vars(query, node) \
	flatten_join_alias_vars(NULL, (query), (node))
#else
#define pgt_compat_flatten_join_alias_vars(query, node) \
	flatten_join_alias_vars((query), (node))
#endif

/* materialized SRF setup: 15.0 named it SetSingleFuncCall */
#include "funcapi.h"
#if PG_VERSION_NUM >= 160000
#define pgt_compat_init_materialized_srf(fcinfo) InitMaterializedSRF((fcinfo), 0)
#else
#define pgt_compat_init_materialized_srf(fcinfo) SetSingleFuncCall((fcinfo), 0)
#endif

/* column-level permission info moved out of RangeTblEntry in 16 */
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#define pgt_compat_rte_selected_cols(query, rte) \
	((rte)->perminfoindex != 0 ? \
	 getRTEPermissionInfo((query)->rteperminfos, (rte))->selectedCols : NULL)
#define pgt_compat_rte_clear_perms(rte) ((rte)->perminfoindex = 0)
#else
#define pgt_compat_rte_selected_cols(query, rte) ((rte)->selectedCols)
#define pgt_compat_rte_clear_perms(rte) \
	do { \
		(rte)->requiredPerms = 0; \
		(rte)->checkAsUser = InvalidOid; \
		(rte)->selectedCols = NULL; \
		(rte)->insertedCols = NULL; \
		(rte)->updatedCols = NULL; \
		(rte)->extraUpdatedCols = NULL; \
	} while (0)
#endif

/* is a lock held by this transaction in that mode? 17 added orstronger */
#if PG_VERSION_NUM >= 170000
#define pgt_compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define pgt_compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode))
#endif

#endif							/* PG_TRICKLE_COMPAT_H */
