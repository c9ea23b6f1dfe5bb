/* pg_trickle--0.1.0--0.2.0.sql: upgrade from 0.1.0 to 0.2.0.
 *
 * sql/pg_trickle--0.1.0.sql is frozen: a fresh CREATE EXTENSION installs
 * 0.1.0 and then runs this script, so a fresh install and an upgraded one
 * run the same statements (see docs/UPGRADING.md).  Every change to the
 * catalog or the SQL API from 0.2.0 on is a step in the newest upgrade
 * script, and each step must also work on a database that already has
 * stream tables.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_trickle UPDATE TO '0.2.0'" to load this file. \quit

/* ------------------------------------------------ dump, restore, DROP EXTENSION
 *
 * pg_dump dumps the rows of pgt_stream_tables (an extension configuration
 * table) and the storage tables with the definition in their guard
 * trigger's comment (also with --schema-only); a restore makes the rows
 * this database's (OIDs looked up by name) and attaches each stream table
 * once both its row and its guard trigger are there.  See
 * src/catalog/restore.c.
 */
ALTER TABLE pgtrickle.pgt_stream_tables
    ADD COLUMN restore_pending boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN pgtrickle.pgt_stream_tables.restore_pending
    IS 'restored from a dump and not attached yet (sources, buffers); the next trigger creation or refresh attaches it';

SELECT pg_catalog.pg_extension_config_dump('pgtrickle.pgt_stream_tables', '');
SELECT pg_catalog.pg_extension_config_dump('pgtrickle.pgt_stream_tables_pgt_id_seq', '');

CREATE FUNCTION pgtrickle._catalog_restore_row()
RETURNS trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_catalog_restore_row';
REVOKE EXECUTE ON FUNCTION pgtrickle._catalog_restore_row() FROM PUBLIC;
CREATE TRIGGER pgt_restore_row BEFORE INSERT ON pgtrickle.pgt_stream_tables
    FOR EACH ROW EXECUTE FUNCTION pgtrickle._catalog_restore_row();
CREATE FUNCTION pgtrickle._catalog_restore_attach()
RETURNS trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_catalog_restore_attach';
REVOKE EXECUTE ON FUNCTION pgtrickle._catalog_restore_attach() FROM PUBLIC;
CREATE TRIGGER pgt_restore_attach AFTER INSERT ON pgtrickle.pgt_stream_tables
    FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle._catalog_restore_attach();

CREATE FUNCTION pgtrickle._on_restore_ddl()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_restore_ddl';
REVOKE EXECUTE ON FUNCTION pgtrickle._on_restore_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER pgtrickle_restore ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'COMMENT')
    EXECUTE FUNCTION pgtrickle._on_restore_ddl();

/*
 * Stream tables depend normally on the extension (0.1.0: automatically), so
 * DROP EXTENSION without CASCADE refuses while they exist; change buffers
 * become members of the extension (0.1.0: automatic dependents), so
 * pg_dump leaves them out.  New ones are created so by the library.
 */
UPDATE pg_catalog.pg_depend d SET deptype = 'n'
 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.objid IN (SELECT pgt_relid FROM pgtrickle.pgt_stream_tables)
   AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_trickle')
   AND d.deptype = 'a';
UPDATE pg_catalog.pg_depend d SET deptype = 'e'
 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.objid IN (SELECT c.oid FROM pg_catalog.pg_class c
                    WHERE c.relnamespace = 'pgtrickle_changes'::pg_catalog.regnamespace
                      AND c.relkind = 'r')
   AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_trickle')
   AND d.deptype = 'a';

/*
 * The definition of each existing stream table goes into its guard
 * trigger's comment, as the library writes it for new ones
 * (record_definition in src/stream_table.c): --schema-only dumps carry it.
 */
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT s.*, c.oid AS relid
               FROM pgtrickle.pgt_stream_tables s
               JOIN pg_catalog.pg_trigger t ON t.tgrelid = s.pgt_relid AND t.tgname = '__pgt_guard'
               JOIN pg_catalog.pg_class c ON c.oid = s.pgt_relid
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON TRIGGER __pgt_guard ON %s IS %L', r.relid::pg_catalog.regclass,
            pg_catalog.json_build_object(
                'pg_trickle', 1, 'query', r.defining_query, 'refresh_mode', r.refresh_mode,
                'schedule', r.schedule, 'diamond_consistency', r.diamond_consistency,
                'diamond_schedule_policy', r.diamond_schedule_policy, 'cdc_mode', r.cdc_mode,
                'append_only', r.append_only, 'pooler_compatibility_mode', r.pooler_compatibility_mode,
                'partition_by', r.partition_by, 'max_differential_joins', r.max_differential_joins,
                'max_delta_fraction', r.max_delta_fraction, 'original_query', r.original_query)::text);
    END LOOP;
END
$$;
-- Issue 12 (types whose equality lives outside pg_catalog): from 0.2.0 on,
-- a column of such a type (isn, ltree, cube, a user-defined type) without
-- an extended hash function enters __pgt_row_id through its own hash
-- function, or not at all, instead of its text form.  Identities stored by
-- 0.1.0 for such columns would no longer be found, so the next refresh of
-- every stream table with a column of a type whose default equality lives
-- outside pg_catalog recomputes it (FULL), which rewrites them.  (Their
-- differential maintenance failed in 0.1.0 with "operator does not
-- exist", or compared citext as text.)
UPDATE pgtrickle.pgt_stream_tables s
   SET needs_reinit = true
 WHERE EXISTS (
        SELECT 1
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
          JOIN pg_catalog.pg_opclass oc
            ON oc.opcdefault
           AND oc.opcintype = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
          JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname IN ('btree', 'hash')
          JOIN pg_catalog.pg_amop ao
            ON ao.amopfamily = oc.opcfamily
           AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype
           AND ao.amopstrategy = CASE am.amname WHEN 'btree' THEN 3 ELSE 1 END
          JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr
         WHERE a.attrelid = s.pgt_relid AND a.attnum > 0 AND NOT a.attisdropped
           AND o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace);
-- Replica identity (issue 12, item 3): stream tables and change buffers
-- get REPLICA IDENTITY FULL, so that a publication containing them (a
-- FOR TABLE list or FOR ALL TABLES) does not make refreshes, IMMEDIATE
-- writes and buffer trimming fail with "cannot delete from table ...
-- because it does not have a replica identity".  New ones get it at
-- creation (storage.c, cdc.c); a table whose identity a user already set,
-- or which has a primary key, is left alone.
DO $pgt_replica_identity$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::pg_catalog.regclass AS rel
        FROM pg_catalog.pg_class c
        WHERE c.relkind = 'r' AND c.relreplident = 'd'
          AND (c.oid IN (SELECT pgt_relid FROM pgtrickle.pgt_stream_tables)
               OR c.relnamespace = 'pgtrickle_changes'::pg_catalog.regnamespace)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                          WHERE i.indrelid = c.oid AND i.indisprimary)
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', r.rel);
    END LOOP;
END
$pgt_replica_identity$;

-- Publications (issue 12, item 3): PostgreSQL gives an extension no way to
-- keep its tables out of FOR ALL TABLES, so creating or altering a
-- publication that includes pg_trickle's catalog or change buffers (FOR ALL
-- TABLES, or TABLES IN SCHEMA pgtrickle / pgtrickle_changes) warns and
-- says what to publish instead.
CREATE FUNCTION pgtrickle._on_publication()
RETURNS event_trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    pub record;
BEGIN
    FOR pub IN
        SELECT DISTINCT p.pubname, p.puballtables
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
          JOIN pg_catalog.pg_publication p
            ON p.oid = CASE c.classid
                         WHEN 'pg_catalog.pg_publication'::pg_catalog.regclass THEN c.objid
                         WHEN 'pg_catalog.pg_publication_namespace'::pg_catalog.regclass THEN
                             (SELECT n.pnpubid FROM pg_catalog.pg_publication_namespace n
                               WHERE n.oid = c.objid)
                       END
         WHERE p.puballtables
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace n
                        WHERE n.pnpubid = p.oid
                          AND n.pnnspid IN ('pgtrickle'::pg_catalog.regnamespace,
                                            'pgtrickle_changes'::pg_catalog.regnamespace))
         ORDER BY 1
    LOOP
        RAISE WARNING 'publication "%" publishes pg_trickle''s catalog and change buffers', pub.pubname
            USING DETAIL = CASE WHEN pub.puballtables
                                THEN 'FOR ALL TABLES includes the tables of schemas pgtrickle and pgtrickle_changes; a subscriber needs tables of those names, and with pg_trickle installed it would write the publisher''s catalog rows into its own catalog.'
                                ELSE 'The tables of schemas pgtrickle and pgtrickle_changes are pg_trickle''s catalog and change buffers; a subscriber with pg_trickle installed would write them into its own catalog.' END,
                  HINT = 'Publish stream tables with FOR TABLE or FOR TABLES IN SCHEMA of your own schemas (SQL reference, "Publishing and replicating stream tables").';
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION pgtrickle._on_publication()
    IS 'internal: warns when a publication includes pg_trickle''s catalog or change buffers';

CREATE EVENT TRIGGER pgtrickle_publication ON ddl_command_end
    WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION')
    EXECUTE FUNCTION pgtrickle._on_publication();
/* ---- issue 12 (h5): health_check() checks each source for the triggers
 * its readers need (capture triggers for DIFFERENTIAL readers, IMMEDIATE
 * maintenance triggers for IMMEDIATE readers), and on a hot standby the
 * scheduler check says it is a read-only standby instead of asking for
 * shared_preload_libraries; quick_health does not warn there either. */
CREATE OR REPLACE FUNCTION pgtrickle.health_check()
RETURNS TABLE (check_name text, severity text, detail text)
LANGUAGE sql STABLE
AS $$
    SELECT 'scheduler',
           CASE WHEN pgtrickle._scheduler_running() OR pg_catalog.pg_is_in_recovery()
                THEN 'OK' ELSE 'WARN' END,
           CASE WHEN pg_catalog.pg_is_in_recovery()
                THEN 'read-only standby: no scheduler runs here; stream tables are replicated from the primary and are as fresh as there'
                WHEN pgtrickle._scheduler_running() THEN 'a scheduler is running in this database'
                ELSE 'no scheduler: add pg_trickle to shared_preload_libraries, or refresh manually' END
    UNION ALL
    SELECT 'error_tables',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'ERROR' END,
           COALESCE(pg_catalog.string_agg(pgt_schema || '.' || pgt_name, ', '), 'none')
      FROM pgtrickle.pgt_stream_tables WHERE status = 'ERROR'
    UNION ALL
    SELECT 'stale_tables',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'WARN' END,
           COALESCE(pg_catalog.string_agg(pgt_schema || '.' || pgt_name, ', '), 'none')
      FROM pgtrickle.stream_tables_info WHERE stale
    UNION ALL
    SELECT 'capture_triggers',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'ERROR' END,
           COALESCE('missing on: ' || pg_catalog.string_agg(m.what, ', ' ORDER BY m.what), 'all present')
      FROM (SELECT DISTINCT d.source_relid::pg_catalog.regclass::pg_catalog.text ||
                   CASE WHEN s.effective_refresh_mode = 'IMMEDIATE'
                        THEN ' (IMMEDIATE maintenance triggers)'
                        ELSE ' (capture triggers)' END AS what
              FROM pgtrickle.pgt_dependencies d
              JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
             WHERE d.cdc_mode = 'TRIGGER' AND NOT EXISTS (
                   SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = d.source_relid
                      AND t.tgname = CASE WHEN s.effective_refresh_mode = 'IMMEDIATE'
                                          THEN '__pgt_ivm_ins' ELSE '__pgt_cdc_ins' END)) m
    UNION ALL
    SELECT 'change_buffers',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'ERROR' END,
           COALESCE('missing for: ' || pg_catalog.string_agg(DISTINCT d.source_relid::pg_catalog.regclass::pg_catalog.text, ', '),
                    'all present')
      FROM pgtrickle.pgt_dependencies d
      JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
     WHERE d.cdc_mode = 'TRIGGER' AND s.effective_refresh_mode = 'DIFFERENTIAL'
       AND NOT s.restore_pending
       AND pg_catalog.to_regclass('pgtrickle_changes.changes_' || d.source_relid::pg_catalog.oid) IS NULL
    UNION ALL
    SELECT 'restore_pending',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'WARN' END,
           COALESCE('restored from a dump and not attached yet (finish the restore, or refresh them): '
                    || pg_catalog.string_agg(pgt_schema || '.' || pgt_name, ', ' ORDER BY pgt_id), 'none')
      FROM pgtrickle.pgt_stream_tables WHERE restore_pending
$$;

CREATE OR REPLACE VIEW pgtrickle.quick_health AS
SELECT pg_catalog.count(*) AS total_stream_tables,
       pg_catalog.count(*) FILTER (WHERE i.status = 'ERROR') AS error_tables,
       pg_catalog.count(*) FILTER (WHERE i.stale) AS stale_tables,
       pgtrickle._scheduler_running() AS scheduler_running,
       CASE WHEN pg_catalog.count(*) = 0 THEN 'EMPTY'
            WHEN pg_catalog.count(*) FILTER (WHERE i.status = 'ERROR') > 0 THEN 'CRITICAL'
            WHEN pg_catalog.count(*) FILTER (WHERE i.stale) > 0
                 OR NOT (pgtrickle._scheduler_running() OR pg_catalog.pg_is_in_recovery())
                 THEN 'WARNING'
            ELSE 'OK' END AS status
  FROM pgtrickle.stream_tables_info i;

/* ---- issue 12 (h5): change_buffer_sizes() is open to every role, as
 * documented.  It runs as the extension owner (the change buffers stay
 * readable by the owner only) and shows every buffer's source, row count
 * and size, nothing of their contents: no more than pg_stat_all_tables and
 * pg_total_relation_size tell any role. */
ALTER FUNCTION pgtrickle.change_buffer_sizes() SECURITY DEFINER;
/* ------------------------------------------------------------------------
 * issue 12 item 5: DROP TABLE of a partition or inheritance child of a
 * source removes rows without DML.  Before the drop, the readers of its
 * ancestors get needs_reinit (DIFFERENTIAL, AUTO) or are remembered
 * (IMMEDIATE); after it, the IMMEDIATE ones are recomputed.
 */
CREATE FUNCTION pgtrickle._on_drop_start()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_drop_start';
COMMENT ON FUNCTION pgtrickle._on_drop_start()
    IS 'internal: before DROP TABLE of a partition or child of a source, marks its readers for a full refresh';

CREATE EVENT TRIGGER pgtrickle_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP FOREIGN TABLE', 'DROP SCHEMA')
    EXECUTE FUNCTION pgtrickle._on_drop_start();

CREATE FUNCTION pgtrickle._on_drop_end()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_drop_end';
COMMENT ON FUNCTION pgtrickle._on_drop_end()
    IS 'internal: after DROP TABLE of a partition or child of a source, recomputes its IMMEDIATE readers';

CREATE EVENT TRIGGER pgtrickle_drop_end ON ddl_command_end
    WHEN TAG IN ('DROP TABLE', 'DROP FOREIGN TABLE', 'DROP SCHEMA')
    EXECUTE FUNCTION pgtrickle._on_drop_end();

/* ------------------------------------------------------------------------
 * issue 12 item 10(f): a full refresh of a WITH RECURSIVE ... UNION ALL
 * query detects a row derived from itself (a cycle in the data, where the
 * query would never end) and raises this error instead of filling the
 * temporary space.
 */
CREATE FUNCTION pgtrickle._recursion_cycle(stream_table text)
RETURNS boolean LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pgt_recursion_cycle';
COMMENT ON FUNCTION pgtrickle._recursion_cycle(text)
    IS 'internal: raises the error ending a recursive stream table query that derives a row from itself';
