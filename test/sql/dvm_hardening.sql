--
-- dvm_hardening: cases where maintaining a query differentially used to be
-- wrong or unsafe.  Each either stays equal to its query after changes
-- (pgt_check) or is refused with the reason, and AUTO then falls back to
-- FULL.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.refresh(st regclass, OUT action text, OUT pgt_check text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pgtrickle.refresh_stream_table(st::text);
    SELECT h.action INTO action
      FROM pgtrickle.pgt_refresh_history h
      JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
     WHERE s.pgt_relid = st ORDER BY h.refresh_id DESC LIMIT 1;
    pgt_check := public.pgt_check(st);
END
$$;

-- nobody but pg_trickle attaches the capture trigger
SELECT has_function_privilege('public', 'pgtrickle._cdc_capture()', 'EXECUTE') AS public_may_capture;

-- nested USING joins under an outer join
CREATE TABLE h1(id int PRIMARY KEY, k int);
CREATE TABLE h2(id int PRIMARY KEY, k int);
CREATE TABLE h3(id int PRIMARY KEY, k int);
INSERT INTO h1 VALUES (10, 1), (11, 2);
INSERT INTO h2 VALUES (20, 1);
SELECT pgtrickle.create_stream_table('h_using',
  'SELECT h1.id, h2.id AS id2, h3.id AS id3 FROM h1 JOIN h2 USING (k) LEFT JOIN h3 USING (k)',
  refresh_mode => 'DIFFERENTIAL');
INSERT INTO h3 VALUES (30, 1);
INSERT INTO h2 VALUES (21, 2);
SELECT * FROM pg_temp.refresh('h_using');
DELETE FROM h3;
SELECT * FROM pg_temp.refresh('h_using');

-- a NULL group produced by an outer join, kept by a recomputing aggregate
CREATE TABLE ga(id int PRIMARY KEY, k int NOT NULL, v int);
CREATE TABLE gb(id int PRIMARY KEY, k int NOT NULL);
INSERT INTO ga VALUES (1, 1, 10), (2, 9, 30);
INSERT INTO gb VALUES (1, 1);
SELECT pgtrickle.create_stream_table('g_outer',
  $$SELECT gb.id, max(ga.v) AS mx, string_agg(ga.v::text, ',' ORDER BY ga.v) AS s
      FROM ga LEFT JOIN gb ON ga.k = gb.k GROUP BY gb.id$$,
  refresh_mode => 'DIFFERENTIAL');
INSERT INTO ga VALUES (3, 8, 99);
SELECT * FROM pg_temp.refresh('g_outer');

-- GROUP BY keys that are equal but print differently (1.0 and 1.00)
CREATE TABLE gn(id int PRIMARY KEY, x numeric, v int);
INSERT INTO gn VALUES (1, 1.0, 1);
SELECT pgtrickle.create_stream_table('g_numeric',
  'SELECT x, string_agg(v::text, '','' ORDER BY v) AS s FROM gn GROUP BY x',
  refresh_mode => 'DIFFERENTIAL');
INSERT INTO gn VALUES (2, 1.00, 2);
SELECT * FROM pg_temp.refresh('g_numeric');
SELECT count(*) AS groups FROM g_numeric;

-- a source column whose name starts with __pgt_, a domain, a collation
CREATE DOMAIN pos_int AS int CHECK (VALUE > 0);
CREATE TABLE hx(id int PRIMARY KEY, "__pgt_x" int, d pos_int, s text COLLATE "C");
INSERT INTO hx VALUES (1, 1, 1, 'a'), (2, 2, 2, 'B');
SELECT pgtrickle.create_stream_table('hx_st',
  'SELECT s, sum("__pgt_x") AS sx, sum(d) AS sd, count(*) AS n FROM hx WHERE s > ''A'' GROUP BY s',
  refresh_mode => 'DIFFERENTIAL');
INSERT INTO hx VALUES (3, 3, 3, 'b'), (4, 4, 4, 'C');
UPDATE hx SET "__pgt_x" = 20 WHERE id = 2;
SELECT * FROM pg_temp.refresh('hx_st');
SELECT s, sx, sd, n FROM hx_st ORDER BY s;

-- the clock is not a source: refused, and AUTO refreshes FULL
CREATE TABLE ev(id int PRIMARY KEY, ts timestamptz);
SELECT pgtrickle.create_stream_table('ev_recent',
  $$SELECT id FROM ev WHERE ts > now() - interval '1 hour'$$, refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ev_today',
  'SELECT id FROM ev WHERE ts::date = CURRENT_DATE', refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'ev_today';

-- an outer join with a VALUES side (wrapped into a subquery) is maintained
SELECT pgtrickle.create_stream_table('h_values',
  'SELECT h1.id, v.x FROM h1 LEFT JOIN (VALUES (1), (2)) v(x) ON v.x = h1.k', refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'h_values';
INSERT INTO h1 VALUES (12, 2);
SELECT * FROM pg_temp.refresh('h_values');

-- partitions: one partition alone is refused; partitions created, attached
-- or detached later are followed
CREATE TABLE pt(id int, k int) PARTITION BY RANGE (id);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
INSERT INTO pt VALUES (1, 1);
SELECT pgtrickle.create_stream_table('pt1_st', 'SELECT id, k FROM pt1', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('pt_st', 'SELECT id, k FROM pt', refresh_mode => 'DIFFERENTIAL');
CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100) TO (200);
INSERT INTO pt2 VALUES (150, 2);
SELECT * FROM pg_temp.refresh('pt_st');
CREATE TABLE pt3 (id int, k int);
INSERT INTO pt3 VALUES (250, 3);
ALTER TABLE pt ATTACH PARTITION pt3 FOR VALUES FROM (200) TO (300);
INSERT INTO pt3 VALUES (251, 4);
SELECT * FROM pg_temp.refresh('pt_st');
ALTER TABLE pt DETACH PARTITION pt1;
INSERT INTO pt1 VALUES (2, 5);
SELECT * FROM pg_temp.refresh('pt_st');
-- differential again: the attached partition is captured, the detached one
-- no longer feeds the parent's buffer
INSERT INTO pt VALUES (152, 6);
INSERT INTO pt3 VALUES (252, 7);
INSERT INTO pt1 VALUES (3, 8);
SELECT * FROM pg_temp.refresh('pt_st');
SELECT id, k FROM pt_st ORDER BY id;

-- a view that stream tables read cannot be replaced under them
CREATE VIEW hv AS SELECT id FROM h1 WHERE id < 12;
SELECT pgtrickle.create_stream_table('hv_st', 'SELECT id FROM hv', refresh_mode => 'DIFFERENTIAL');
CREATE OR REPLACE VIEW hv AS SELECT id FROM h1 WHERE id < 15;

-- reading a table only through a view: its changes would be read with the
-- owner's own privileges, which do not reach it
CREATE ROLE pgt_hard_reader;
GRANT CREATE ON SCHEMA public TO pgt_hard_reader;
GRANT SELECT ON hv TO pgt_hard_reader;
SET ROLE pgt_hard_reader;
SELECT pgtrickle.create_stream_table('hv_reader', 'SELECT id FROM hv', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('hv_reader', 'SELECT id FROM hv', refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'hv_reader';
-- explain with analyze runs the delta: only for the owner
SELECT count(*) > 0 AS explained FROM pgtrickle.explain_st('hv_reader', false);
RESET ROLE;
GRANT SELECT ON hv_reader TO PUBLIC;
CREATE ROLE pgt_hard_other;
SET ROLE pgt_hard_other;
SELECT count(*) FROM pgtrickle.explain_st('public.hv_reader', true);
RESET ROLE;
SELECT pgtrickle.drop_stream_table('hv_reader');
REVOKE CREATE ON SCHEMA public FROM pgt_hard_reader;
REVOKE SELECT ON hv FROM pgt_hard_reader;
DROP ROLE pgt_hard_reader;
DROP ROLE pgt_hard_other;

-- Subqueries in WHERE rewritten to joins: what must stay refused
CREATE TABLE h_sa (id int PRIMARY KEY, t text NOT NULL, k int NOT NULL);
CREATE TABLE h_sb (id int PRIMARY KEY, v varchar(10) NOT NULL, k int NOT NULL);
INSERT INTO h_sa VALUES (1, 'a', 1), (2, 'b', 2), (3, 'C', 3);
INSERT INTO h_sb VALUES (1, 'a', 1), (2, 'c', 9);
-- NOT IN over a coerced column (varchar read as text)
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('h_sl1',
  'SELECT id FROM h_sa WHERE t NOT IN (SELECT v FROM h_sb)', refresh_mode => 'DIFFERENTIAL')$$);
-- correlation inside a subquery in the subquery's FROM (LATERAL in effect)
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('h_sl2',
  'SELECT id FROM h_sa a WHERE EXISTS (SELECT 1 FROM (SELECT * FROM h_sb b WHERE b.k = a.k) x)',
  refresh_mode => 'DIFFERENTIAL')$$);
-- IN over a grouped subquery with ORDER BY ... LIMIT: its rows are not all the groups
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('h_sl3',
  'SELECT id FROM h_sa WHERE k IN (SELECT k FROM h_sb GROUP BY k ORDER BY k LIMIT 1)',
  refresh_mode => 'DIFFERENTIAL')$$);
-- a correlation under another collation than the column's
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('h_sl4',
  'SELECT id FROM h_sa a WHERE EXISTS (SELECT 1 FROM h_sb b WHERE b.v = a.t COLLATE "C")',
  refresh_mode => 'DIFFERENTIAL')$$);
-- a scalar subquery in HAVING without GROUP BY: an empty input still has its row
SELECT pgtrickle.create_stream_table('h_sl5',
  'SELECT count(*) AS n FROM h_sa WHERE k > 100 HAVING count(*) >= (SELECT min(k) - 1 FROM h_sb)',
  refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'h_sl5';
SELECT n FROM h_sl5;
SELECT pgtrickle.drop_stream_table('h_sl5');
DROP TABLE h_sa, h_sb;

-- the ANY/ALL, LATERAL and GROUPING SETS rewrites: cases a review found
CREATE TABLE h_t (id int PRIMARY KEY, k int);
CREATE TABLE h_u (k int, v int);
CREATE TABLE h_w (id int PRIMARY KEY, k int);
INSERT INTO h_t VALUES (1, 1), (2, 2), (3, 9);
INSERT INTO h_u VALUES (1, 10), (1, 20), (2, 5);
INSERT INTO h_w VALUES (1, 1), (2, 2);
-- an aggregating LATERAL read by a later LATERAL function stays LATERAL
SELECT pgtrickle.create_stream_table('h_la1',
  'SELECT t.id, g FROM h_t t, LATERAL (SELECT count(*) AS c FROM h_u u WHERE u.k = t.k) s,
          LATERAL generate_series(1, s.c) g', refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'h_la1';
-- ... and so does one on the nullable side of an outer join
SELECT pgtrickle.create_stream_table('h_la2',
  'SELECT t.id, s.c FROM h_t t LEFT JOIN (h_w w CROSS JOIN LATERAL
     (SELECT count(*) AS c FROM h_u u WHERE u.k = w.k) s) ON w.id = t.id', refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'h_la2';
INSERT INTO h_t VALUES (4, 1);
SELECT * FROM pg_temp.refresh('h_la2');
-- ... or one read as a whole row
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('h_la3',
  'SELECT t.id, row_to_json(s)::text AS j FROM h_t t,
          LATERAL (SELECT count(*) AS c FROM h_u u WHERE u.k = t.k) s',
  refresh_mode => 'DIFFERENTIAL')$$);
-- a LATERAL in a JOIN, correlated with an item before that join
SELECT pgtrickle.create_stream_table('h_la4',
  'SELECT t.id, s.v FROM h_t t, h_w b1 JOIN LATERAL (SELECT u.v FROM h_u u WHERE u.k = t.k) s ON true',
  refresh_mode => 'AUTO');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'h_la4';
-- <> ALL over a composite type (x IS NULL is not "x is NULL" for rows)
CREATE TYPE h_pr AS (a int, b int);
CREATE TABLE h_c1 (id int PRIMARY KEY, x h_pr);
CREATE TABLE h_c2 (y h_pr);
INSERT INTO h_c1 VALUES (1, ROW(NULL, NULL)), (2, ROW(1, 1));
INSERT INTO h_c2 VALUES (ROW(1, 1));
SELECT pgtrickle.create_stream_table('h_any1',
  'SELECT id FROM h_c1 WHERE x <> ALL (SELECT y FROM h_c2)', refresh_mode => 'AUTO');
INSERT INTO h_c1 VALUES (3, ROW(NULL, NULL));
SELECT * FROM pg_temp.refresh('h_any1');
SELECT id FROM h_any1 ORDER BY id;
-- DISTINCT over grouping sets applies to their union
SELECT pgtrickle.create_stream_table('h_gs1',
  'SELECT DISTINCT count(*) AS c FROM h_u GROUP BY GROUPING SETS ((k), (v))', refresh_mode => 'AUTO');
INSERT INTO h_u VALUES (3, 10);
SELECT * FROM pg_temp.refresh('h_gs1');
-- a grouping set whose key contains another set's key
SELECT pgtrickle.create_stream_table('h_gs2',
  'SELECT k, k + 1 AS k1, count(*) AS c FROM h_u GROUP BY GROUPING SETS ((k), (k + 1))',
  refresh_mode => 'DIFFERENTIAL');
INSERT INTO h_u VALUES (5, 1);
SELECT * FROM pg_temp.refresh('h_gs2');
SELECT pgtrickle.drop_stream_table(n)
  FROM unnest(ARRAY['h_la1', 'h_la2', 'h_la4', 'h_any1', 'h_gs1', 'h_gs2']) n;
DROP TABLE h_t, h_u, h_w, h_c1, h_c2;
DROP TYPE h_pr;
