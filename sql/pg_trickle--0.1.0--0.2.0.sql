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
