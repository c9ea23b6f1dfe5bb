/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  Triggers that keep stream tables consistent with the rest of the
 *	  database: the guard on each storage table and the sql_drop event
 *	  trigger.
 *
 *	  The guard refuses INSERT, UPDATE, DELETE and TRUNCATE on a storage
 *	  table unless pg_trickle itself is writing (pgt_internal_write_depth,
 *	  a backend-local counter no SQL can set).
 *
 *	  The sql_drop event trigger removes the catalog rows of stream tables
 *	  whose storage was dropped by any means: drop_stream_table(), DROP
 *	  TABLE, DROP ... CASCADE of a source, DROP SCHEMA ... CASCADE, or DROP
 *	  EXTENSION (where the catalog goes too).
 *
 * IDENTIFICATION
 *	  src/catalog/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_trickle/cdc.h"
#include "pg_trickle/pg_trickle.h"
#include "pg_trickle/util.h"

PG_FUNCTION_INFO_V1(pgt_st_guard);
PG_FUNCTION_INFO_V1(pgt_on_sql_drop);

/*
 * pgt_st_guard is the statement-level BEFORE trigger on every storage
 * table.  It errors unless pg_trickle is the writer.
 */
Datum
pgt_st_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "pgt_st_guard: not called by trigger manager");

	if (pgt_internal_write_depth > 0)
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		op = "insert into";
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "update";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "delete from";
	else
		op = "truncate";

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s stream table \"%s\"", op,
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("The rows of a stream table are maintained by pg_trickle."),
			 errhint("Change its source tables, or its query with pgtrickle.alter_stream_table().")));
	PG_RETURN_NULL();			/* keep compiler quiet */
}

/*
 * pgt_on_sql_drop forgets the stream tables whose storage tables were
 * dropped by the current command.
 */
Datum
pgt_on_sql_drop(PG_FUNCTION_ARGS)
{
	PgtRoleSave save;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "pgt_on_sql_drop: not fired by event trigger manager");

	/* DROP EXTENSION takes the catalog with it */
	if (!OidIsValid(get_extension_oid("pg_trickle", true)))
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgt_role_switch(pgt_extension_owner(), false, &save);
	pgt_spi_exec("DELETE FROM pgtrickle.pgt_stream_tables WHERE pgt_relid IN "
				 "(SELECT objid FROM pg_catalog.pg_event_trigger_dropped_objects() "
				 " WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
				 " AND objsubid = 0)",
				 SPI_OK_DELETE);
	pgt_role_restore(&save);
	SPI_finish();
	pgt_cdc_release_unused();
	PG_RETURN_VOID();
}
