--
-- safety_recursive: bounded work for WITH RECURSIVE ... UNION ALL (issue
-- 12, item 10(f)).  Over rows with duplicates, a change that makes a
-- cycle the query no longer reaches made the counting delta double its
-- rows with every iteration until the temporary space ran out, far below
-- its iteration cap.  The delta now also stops after producing more rows
-- than a multiple of the stored rows plus its seed, and the refresh
-- recomputes, saying why.  A cycle the query does reach makes the query
-- itself endless: the recomputation detects a row derived from itself
-- and fails with a clear error instead of filling the disk.
--
-- (the limits only turn a regression of these bounds into a quick error)
SET statement_timeout = '60s';
SET temp_file_limit = '100MB';
CREATE SCHEMA sr;
SET search_path = sr, public;

CREATE TABLE edges (a int NOT NULL, b int NOT NULL);
INSERT INTO edges VALUES (1, 2), (1, 2), (2, 3), (2, 3), (3, 4);
-- every path from node 1, counted (UNION ALL), with duplicate edges
SELECT pgtrickle.create_stream_table('paths_diff',
  $$WITH RECURSIVE p(n) AS (
      SELECT 1
      UNION ALL
      SELECT e.b FROM p JOIN edges e ON e.a = p.n)
    SELECT n FROM p$$,
  refresh_mode => 'DIFFERENTIAL', schedule => '1h');
SELECT pgtrickle.create_stream_table('paths_imm',
  $$WITH RECURSIVE p(n) AS (
      SELECT 1
      UNION ALL
      SELECT e.b FROM p JOIN edges e ON e.a = p.n)
    SELECT n FROM p$$,
  refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('paths_full',
  $$WITH RECURSIVE p(n) AS (
      SELECT 1
      UNION ALL
      SELECT e.b FROM p JOIN edges e ON e.a = p.n)
    SELECT n FROM p$$,
  refresh_mode => 'FULL', schedule => '1h');
SELECT n, count(*) FROM paths_diff GROUP BY n ORDER BY n;

-- the edges out of node 1 now leave node 2 and point back to it: a
-- doubled self-cycle that node 1 no longer reaches.  The query returns
-- one row; the delta over the old rows cancels only in the limit.
UPDATE edges SET a = 2 WHERE a = 1;
SELECT n FROM paths_imm;
SELECT pgt_check('paths_imm') AS imm;
SELECT * FROM pgt_refresh_report('paths_diff');
SELECT * FROM pgt_refresh_report('paths_full');

-- a cycle the query reaches: the query has no end.  IMMEDIATE refuses the
-- write; the others fail to refresh and keep their rows.
SELECT pgt_try($$INSERT INTO edges VALUES (1, 2)$$);
SELECT pgtrickle.drop_stream_table('paths_imm');
INSERT INTO edges VALUES (1, 2);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('paths_diff')$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('paths_full')$$);
SELECT count(*) AS kept FROM paths_diff;
-- a longer cycle through other nodes is found as well
DELETE FROM edges WHERE a = 2 AND b = 2;
INSERT INTO edges VALUES (4, 5), (5, 6), (6, 7), (7, 3);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('paths_diff')$$);
-- without the cycle, refreshes work again
DELETE FROM edges WHERE a = 7;
SELECT * FROM pgt_refresh_report('paths_diff');
SELECT * FROM pgt_refresh_report('paths_full');
SELECT n, count(*) FROM paths_diff GROUP BY n ORDER BY n;

-- what stays as it was: rows that repeat on different paths are no cycle,
-- a derivation deeper than the iteration cap recomputes correctly, and a
-- delta larger than the floor but proportionate to the result stays
-- differential
CREATE TABLE dag (a int NOT NULL, b int NOT NULL);
INSERT INTO dag VALUES (1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (4, 5);
SELECT pgtrickle.create_stream_table('dag_paths',
  $$WITH RECURSIVE p(n, depth) AS (
      SELECT 1, 0
      UNION ALL
      SELECT d.b, p.depth + 1 FROM p JOIN dag d ON d.a = p.n)
    SELECT n, depth FROM p$$,
  refresh_mode => 'FULL', schedule => '1h');
SELECT n, depth, count(*) FROM dag_paths GROUP BY n, depth ORDER BY n;

CREATE TABLE chain (a int NOT NULL, b int NOT NULL);
INSERT INTO chain SELECT i, i + 1 FROM generate_series(1, 1200) i;
SELECT pgtrickle.create_stream_table('chain_walk',
  $$WITH RECURSIVE w(n) AS (
      SELECT 1
      UNION ALL
      SELECT c.b FROM w JOIN chain c ON c.a = w.n)
    SELECT n FROM w$$,
  refresh_mode => 'DIFFERENTIAL', schedule => '1h');
DELETE FROM chain WHERE a = 1;
SELECT * FROM pgt_refresh_report('chain_walk');
INSERT INTO chain VALUES (1, 2);
SELECT * FROM pgt_refresh_report('chain_walk');
SELECT count(*), max(n) FROM chain_walk;

CREATE TABLE fan (a int NOT NULL, b int NOT NULL);
INSERT INTO fan SELECT 0, i FROM generate_series(1, 1500) i;
INSERT INTO fan SELECT i, i + 10000 FROM generate_series(1, 1500) i;
SELECT pgtrickle.create_stream_table('fan_walk',
  $$WITH RECURSIVE w(n) AS (
      SELECT 0
      UNION ALL
      SELECT f.b FROM w JOIN fan f ON f.a = w.n)
    SELECT n FROM w$$,
  refresh_mode => 'DIFFERENTIAL', schedule => '1h');
-- every edge out of the root doubled: 3,000 more rows
INSERT INTO fan SELECT 0, i FROM generate_series(1, 1500) i;
SELECT * FROM pgt_refresh_report('fan_walk');
SELECT count(*) FROM fan_walk;

SELECT pgtrickle.drop_stream_table(format('sr.%I', pgt_name))
  FROM pgtrickle.pgt_stream_tables WHERE pgt_schema = 'sr' ORDER BY pgt_name;
RESET search_path;
DROP SCHEMA sr CASCADE;
RESET statement_timeout;
RESET temp_file_limit;
