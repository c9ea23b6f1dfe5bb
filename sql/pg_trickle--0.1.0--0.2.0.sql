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
