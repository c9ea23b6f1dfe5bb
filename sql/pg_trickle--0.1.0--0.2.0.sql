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
