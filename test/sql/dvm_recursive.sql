--
-- dvm_recursive: WITH RECURSIVE maintained differentially.  UNION (sets) is
-- maintained by delete-and-rederive, UNION ALL by counting; both are
-- compared with a fresh run of the query (pgt_check) after every refresh,
-- and pgt_refresh_report() shows whether the refresh was DIFFERENTIAL.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE rec_edges (src int NOT NULL, dst int NOT NULL);
INSERT INTO rec_edges VALUES (1, 2), (2, 3), (3, 4), (4, 2), (5, 6);

-- transitive closure with a cycle (2 -> 3 -> 4 -> 2): set semantics
SELECT pgtrickle.create_stream_table('rec_tc',
  $$WITH RECURSIVE r(a, b) AS (
      SELECT src, dst FROM rec_edges
      UNION
      SELECT r.a, e.dst FROM r JOIN rec_edges e ON e.src = r.b)
    SELECT a, b FROM r$$,
  schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT property, value FROM pgtrickle.explain_st('rec_tc')
 WHERE property IN ('effective_refresh_mode', 'delta_strategy');
SELECT count(*) FROM rec_tc;
-- an edge into the cycle from a new node: only new paths are derived
INSERT INTO rec_edges VALUES (6, 1);
SELECT * FROM pgt_refresh_report('rec_tc');
-- breaking the cycle: rows that lose their last derivation go, the
-- over-deleted ones that still have one come back
DELETE FROM rec_edges WHERE src = 4;
SELECT * FROM pgt_refresh_report('rec_tc');
-- delete and insert in one window
BEGIN;
DELETE FROM rec_edges WHERE src = 2;
INSERT INTO rec_edges VALUES (2, 5), (4, 1);
COMMIT;
SELECT * FROM pgt_refresh_report('rec_tc');
TRUNCATE rec_edges;
SELECT * FROM pgt_refresh_report('rec_tc');
INSERT INTO rec_edges VALUES (1, 1), (1, 2);
SELECT * FROM pgt_refresh_report('rec_tc');

-- a hierarchy with depth, UNION ALL (counting): two parents give two paths
CREATE TABLE rec_tree (id int PRIMARY KEY, parent int);
INSERT INTO rec_tree VALUES (1, NULL), (2, 1), (3, 1), (4, 2), (5, 4);
SELECT pgtrickle.create_stream_table('rec_depth',
  $$WITH RECURSIVE t(id, root, depth) AS (
      SELECT id, id, 0 FROM rec_tree WHERE parent IS NULL
      UNION ALL
      SELECT c.id, t.root, t.depth + 1 FROM t JOIN rec_tree c ON c.parent = t.id)
    SELECT root, id, depth FROM t$$,
  schedule => '1h', refresh_mode => 'DIFFERENTIAL');
UPDATE rec_tree SET parent = 3 WHERE id = 4;   -- move a subtree
SELECT * FROM pgt_refresh_report('rec_depth');
INSERT INTO rec_tree VALUES (6, NULL), (7, 6), (8, 5);
DELETE FROM rec_tree WHERE id = 2;
SELECT * FROM pgt_refresh_report('rec_depth');
SELECT root, id, depth FROM rec_depth ORDER BY root, id;

-- UNION ALL whose delta does not converge: a removed row leads, through
-- the new edges, into a cycle the query itself never reaches.  The delta
-- gives up after its iteration bound and the refresh recomputes.
CREATE TABLE rec_roots (n int);
CREATE TABLE rec_next (src int, dst int);
INSERT INTO rec_roots VALUES (1);
INSERT INTO rec_next VALUES (1, 2);
SELECT pgtrickle.create_stream_table('rec_walk',
  $$WITH RECURSIVE w(n) AS (
      SELECT n FROM rec_roots
      UNION ALL
      SELECT x.dst FROM w JOIN rec_next x ON x.src = w.n)
    SELECT n FROM w$$,
  schedule => '1h', refresh_mode => 'DIFFERENTIAL');
BEGIN;
DELETE FROM rec_next;
INSERT INTO rec_next VALUES (2, 3), (3, 2);
COMMIT;
SELECT * FROM pgt_refresh_report('rec_walk');
SELECT n FROM rec_walk;

-- IMMEDIATE: maintained by the writing statement
CREATE TABLE rec_imm (src int NOT NULL, dst int NOT NULL);
INSERT INTO rec_imm VALUES (1, 2), (2, 3);
SELECT pgtrickle.create_stream_table('rec_imm_tc',
  $$WITH RECURSIVE r(a, b) AS (
      SELECT src, dst FROM rec_imm
      UNION
      SELECT r.a, e.dst FROM r JOIN rec_imm e ON e.src = r.b)
    SELECT a, b FROM r$$,
  refresh_mode => 'IMMEDIATE');
INSERT INTO rec_imm VALUES (3, 1);
SELECT pgt_check('rec_imm_tc'), count(*) FROM rec_imm_tc;
DELETE FROM rec_imm WHERE src = 2;
SELECT pgt_check('rec_imm_tc'), count(*) FROM rec_imm_tc;

-- shapes the engine refuses: DIFFERENTIAL names the reason, AUTO falls
-- back to FULL
SELECT pgtrickle.create_stream_table('rec_bad_join',
  $$WITH RECURSIVE r(a, b) AS (
      SELECT src, dst FROM rec_edges
      UNION SELECT r.a, e.dst FROM r JOIN rec_edges e ON e.src = r.b)
    SELECT r.a, count(*) AS n FROM r GROUP BY r.a$$,
  schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('rec_bad_join',
  $$WITH RECURSIVE r(a, b) AS (
      SELECT src, dst FROM rec_edges
      UNION SELECT r.a, e.dst FROM r JOIN rec_edges e ON e.src = r.b)
    SELECT r.a, count(*) AS n FROM r GROUP BY r.a$$,
  schedule => '1h', refresh_mode => 'AUTO');
SELECT property, value FROM pgtrickle.explain_st('rec_bad_join')
 WHERE property = 'effective_refresh_mode';
SELECT pgtrickle.create_stream_table('rec_bad_sub',
  $$WITH RECURSIVE r(a, b) AS (
      SELECT src, dst FROM rec_edges
      UNION SELECT r.a, e.dst FROM r JOIN rec_edges e ON e.src = r.b)
    SELECT a FROM r$$,
  schedule => '1h', refresh_mode => 'DIFFERENTIAL');

SELECT pgtrickle.drop_stream_table(n)
  FROM unnest(ARRAY['rec_tc', 'rec_depth', 'rec_walk', 'rec_imm_tc', 'rec_bad_join']) n;
DROP TABLE rec_edges, rec_tree, rec_roots, rec_next, rec_imm;
