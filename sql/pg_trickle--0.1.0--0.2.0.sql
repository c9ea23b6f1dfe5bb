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
