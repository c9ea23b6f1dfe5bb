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
