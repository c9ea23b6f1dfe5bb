/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers shared by pg_trickle modules: names, SPI, roles, and
 *	  the operators generated SQL writes.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_UTIL_H
#define PG_TRICKLE_UTIL_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"

/* saved user identity, restored by pgt_role_restore */
typedef struct PgtRoleSave
{
	Oid			userid;
	int			sec_context;
	int			guc_nestlevel;
} PgtRoleSave;

extern RangeVar *pgt_parse_name(const char *name);
extern void pgt_refuse_read_only(const char *action, const char *name);
extern char *pgt_relation_display_name(Oid relid);
extern char *pgt_qualified_name(Oid relid);
extern void pgt_spi_exec(const char *sql, int expected_rc);
extern uint64 pgt_spi_exec_args(const char *sql, int nargs, Oid *argtypes,
								Datum *values, const char *nulls,
								bool read_only, int expected_rc);
extern Oid	pgt_extension_owner(void);
extern void pgt_role_switch(Oid roleid, bool restricted, PgtRoleSave *save);
extern void pgt_role_restore(PgtRoleSave *save);
extern char *pgt_text_arg_upper(text *t);
extern char *pgt_text_arg_lower(text *t);
extern List *pgt_relation_ancestors(Oid rel);
extern void pgt_spi_create_own_trigger(const char *sql);
extern Oid	pgt_type_eq_opr(Oid typid);
extern bool pgt_operator_is_plain(Oid opno);
extern char *pgt_operator_sql(Oid opno);
extern void pgt_append_equal(StringInfo buf, const char *a, const char *b,
							 Oid eqop, bool nulls_match);
extern Expr *pgt_make_equal(Expr *a, Expr *b, Oid eqop, Oid collation,
							bool nulls_match);
extern Query *pgt_spell_operators(Query *query);

#endif							/* PG_TRICKLE_UTIL_H */
