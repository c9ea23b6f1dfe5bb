--
-- safety_privileges: an incremental stream table puts triggers on its
-- sources, which run on every write to them; creating one needs what
-- CREATE TRIGGER needs on each base table below the query (the TRIGGER
-- privilege or ownership), not only SELECT (issue 12, item 7).  FULL
-- needs only SELECT.
--
CREATE ROLE pgt_sel;
CREATE SCHEMA pv;
GRANT USAGE, CREATE ON SCHEMA pv TO pgt_sel;
SET search_path = pv, public;
CREATE TABLE pv_t (id int PRIMARY KEY, g int, v int);
INSERT INTO pv_t SELECT i, i % 3, i FROM generate_series(1, 9) i;
CREATE TABLE pv_ok (id int PRIMARY KEY, g int);
INSERT INTO pv_ok SELECT i, i % 2 FROM generate_series(1, 4) i;
CREATE VIEW pv_view AS SELECT id, g FROM pv_t WHERE v > 2;
GRANT SELECT ON pv_t, pv_view TO pgt_sel;
GRANT SELECT, TRIGGER ON pv_ok TO pgt_sel;

SET ROLE pgt_sel;
-- SELECT only: every incremental mode is refused, naming the table, and
-- leaves nothing behind
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_diff',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_imm',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'IMMEDIATE')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_auto',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'AUTO')$$);
-- also when the table is reached through a view, or joined with one the
-- role may trigger on
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_view',
    'SELECT g, count(*) AS n FROM pv_view GROUP BY g', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_join',
    'SELECT o.id, t.v FROM pv_ok o JOIN pv_t t USING (id)', refresh_mode => 'IMMEDIATE')$$);
SELECT count(*) AS pv_triggers FROM pg_trigger WHERE tgrelid = 'pv_t'::regclass;

-- FULL needs only SELECT, and so does AUTO when it chooses FULL
SELECT pgtrickle.create_stream_table('s_full',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('s_auto_full',
    'SELECT g, count(*) AS n, now() > ''2000-01-01'' AS recent FROM pv_t GROUP BY g',
    refresh_mode => 'AUTO');
SELECT pgt_name, effective_refresh_mode FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'pv' ORDER BY pgt_name;
SELECT count(*) AS pv_triggers FROM pg_trigger WHERE tgrelid = 'pv_t'::regclass;

-- altering into an incremental mode, or to a query over the table, is
-- refused the same way and changes nothing
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_full', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_full', refresh_mode => 'IMMEDIATE')$$);
SELECT pgtrickle.create_stream_table('s_ok',
    'SELECT g, count(*) AS n FROM pv_ok GROUP BY g', refresh_mode => 'DIFFERENTIAL');
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_ok',
    query => 'SELECT g, count(*) AS n FROM pv_t GROUP BY g')$$);
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('s_ok',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_name, effective_refresh_mode, defining_query FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'pv' ORDER BY pgt_name;
RESET ROLE;

-- capture installed by someone else is no way around it
SELECT pgtrickle.create_stream_table('s_admin',
    'SELECT id, v FROM pv_t', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('s_admin_imm',
    'SELECT id, v FROM pv_t', refresh_mode => 'IMMEDIATE');
SET ROLE pgt_sel;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_diff',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_imm',
    'SELECT g, count(*) AS n FROM pv_t GROUP BY g', refresh_mode => 'IMMEDIATE')$$);
RESET ROLE;

-- a stream table read by another: the rule applies to its storage table
SELECT pgtrickle.create_stream_table('s_up',
    'SELECT g, count(*) AS n FROM pv_ok GROUP BY g', refresh_mode => 'DIFFERENTIAL');
GRANT SELECT ON s_up TO pgt_sel;
SET ROLE pgt_sel;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('s_down',
    'SELECT g, n FROM s_up WHERE n > 0', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgtrickle.create_stream_table('s_down',
    'SELECT g, n FROM s_up WHERE n > 0', refresh_mode => 'FULL');
RESET ROLE;
GRANT TRIGGER ON s_up TO pgt_sel;
SET ROLE pgt_sel;
SELECT pgtrickle.alter_stream_table('s_down', refresh_mode => 'DIFFERENTIAL');
RESET ROLE;

-- with TRIGGER granted, or as the owner, every mode works
GRANT TRIGGER ON pv_t TO pgt_sel;
SET ROLE pgt_sel;
SELECT pgtrickle.create_stream_table('s_diff',
    'SELECT g, count(*) AS n FROM pv_view GROUP BY g', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.alter_stream_table('s_full', refresh_mode => 'IMMEDIATE');
CREATE TABLE pv_mine (id int, v int);
SELECT pgtrickle.create_stream_table('s_mine', 'SELECT id, v FROM pv_mine',
    refresh_mode => 'IMMEDIATE');
RESET ROLE;
INSERT INTO pv_t VALUES (10, 1, 10);
INSERT INTO pv_mine VALUES (1, 1);
SELECT pgt_check('s_full') AS s_full, pgt_check('s_mine') AS s_mine;
SELECT * FROM pgt_refresh_report('s_diff');

-- TRIGGER revoked later: settings that add no trigger can still change,
-- a switch of mode or query cannot
REVOKE TRIGGER ON pv_t FROM pgt_sel;
SET ROLE pgt_sel;
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_diff', schedule => '2h')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_diff', refresh_mode => 'IMMEDIATE')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_diff',
    query => 'SELECT g, count(*) AS n FROM pv_view WHERE id > 0 GROUP BY g')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_full', refresh_mode => 'FULL')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('s_full', refresh_mode => 'IMMEDIATE')$$);
RESET ROLE;
SELECT pgt_name, effective_refresh_mode FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'pv' ORDER BY pgt_name;

SELECT pgtrickle.drop_stream_table(format('pv.%I', pgt_name))
  FROM pgtrickle.pgt_stream_tables WHERE pgt_schema = 'pv'
 ORDER BY pgt_name = 's_up', pgt_name;
RESET search_path;
DROP SCHEMA pv CASCADE;
DROP ROLE pgt_sel;
