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
