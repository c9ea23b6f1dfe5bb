--
-- safety_columns: sources whose tables have dropped columns (issue 12,
-- item 4).  A dropped column keeps its attribute number and has no type;
-- partitions may number their columns differently from their parent.
-- Every stream table is checked against a fresh run of its query
-- (pgt_check: EXCEPT ALL both ways) after each change, IMMEDIATE ones
-- before any refresh.
--
SET client_min_messages = warning;

-- dc_refresh_all(pattern): refresh every stream table whose name matches
-- (IMMEDIATE and FULL ones refresh as FULL), then the oracle.
-- dc_check_immediate(pattern): the oracle on the IMMEDIATE ones, unrefreshed.
CREATE FUNCTION dc_refresh_all(pat text)
RETURNS TABLE (st name, action text, pgt_check text)
LANGUAGE sql AS $$
    SELECT s.pgt_name, r.action, r.pgt_check
      FROM pgtrickle.pgt_stream_tables s,
           LATERAL pgt_refresh_report(s.pgt_relid) r
     WHERE s.pgt_name LIKE pat ORDER BY 1
$$;
CREATE FUNCTION dc_check_immediate(pat text)
RETURNS TABLE (st name, pgt_check text)
LANGUAGE sql AS $$
    SELECT s.pgt_name, pgt_check(s.pgt_relid)
      FROM pgtrickle.pgt_stream_tables s
     WHERE s.pgt_name LIKE pat AND s.refresh_mode = 'IMMEDIATE' ORDER BY 1
$$;

-- 1. Columns dropped before the stream tables are created: every mode.
CREATE TABLE dc_a (junk1 text, id int PRIMARY KEY, junk2 int, g int, v int);
ALTER TABLE dc_a DROP COLUMN junk1;
ALTER TABLE dc_a DROP COLUMN junk2;
CREATE TABLE dc_b (x int, g int, name text);
ALTER TABLE dc_b DROP COLUMN x;
INSERT INTO dc_a SELECT i, i % 3, i * 10 FROM generate_series(1, 9) i;
INSERT INTO dc_b VALUES (0, 'zero'), (1, 'one'), (1, 'uno');

SELECT * FROM pgtrickle.validate_query('SELECT id, g, v FROM dc_a WHERE v > 20');
SELECT * FROM pgtrickle.validate_query('SELECT g, count(*) AS n, sum(v) AS s FROM dc_a GROUP BY g');
SELECT * FROM pgtrickle.validate_query('SELECT a.id, b.name FROM dc_a a JOIN dc_b b ON a.g = b.g');

SELECT mode, pgtrickle.create_stream_table('dc_p_' || lower(mode),
         'SELECT id, g, v FROM dc_a WHERE v > 20', refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
SELECT mode, pgtrickle.create_stream_table('dc_g_' || lower(mode),
         'SELECT g, count(*) AS n, sum(v) AS s FROM dc_a GROUP BY g', refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
SELECT mode, pgtrickle.create_stream_table('dc_j_' || lower(mode),
         'SELECT a.id, b.name FROM dc_a a JOIN dc_b b ON a.g = b.g', refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
SELECT pgt_name, refresh_mode, effective_refresh_mode
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'dc%' ORDER BY 1;

INSERT INTO dc_a VALUES (10, 1, 100);
UPDATE dc_a SET v = v + 1 WHERE id % 2 = 0;
UPDATE dc_a SET g = 2 WHERE id = 1;
DELETE FROM dc_a WHERE id = 3;
INSERT INTO dc_b VALUES (2, 'two');
DELETE FROM dc_b WHERE name = 'uno';
SELECT * FROM dc_check_immediate('dc%');
SELECT * FROM dc_refresh_all('dc%');

-- 2. A column the queries do not read is dropped after creation (with
-- block_source_ddl off): capture, IMMEDIATE maintenance, refresh and
-- repair go on.
SET pg_trickle.block_source_ddl = off;
ALTER TABLE dc_a ADD COLUMN extra int, ADD COLUMN extra2 int;
INSERT INTO dc_a VALUES (11, 0, 110, 1, 2);
ALTER TABLE dc_a DROP COLUMN extra;
ALTER TABLE dc_b ADD COLUMN note text;
ALTER TABLE dc_b DROP COLUMN note;
INSERT INTO dc_a VALUES (12, 2, 120, 5);
UPDATE dc_a SET v = v + 1 WHERE id IN (4, 11);
DELETE FROM dc_a WHERE id = 5;
INSERT INTO dc_b VALUES (0, 'nil');
SELECT * FROM dc_check_immediate('dc%');
SELECT * FROM dc_refresh_all('dc%');
SELECT pgtrickle.repair_stream_table('dc_j_differential');
SELECT pgtrickle.repair_stream_table('dc_g_immediate');
UPDATE dc_a SET g = 0 WHERE id = 12;
SELECT * FROM dc_check_immediate('dc%');
SELECT * FROM dc_refresh_all('dc%');

-- A table without dropped columns when its stream tables are created
-- loses one they do not read.
CREATE TABLE dc_c (id int PRIMARY KEY, gone text, v int);
INSERT INTO dc_c SELECT i, 'x', i FROM generate_series(1, 5) i;
SELECT mode, pgtrickle.create_stream_table('dc_c_' || lower(mode),
         'SELECT v % 2 AS odd, sum(v) AS s FROM dc_c GROUP BY 1', refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
ALTER TABLE dc_c DROP COLUMN gone;
INSERT INTO dc_c VALUES (6, 6);
UPDATE dc_c SET v = v * 10 WHERE id < 3;
DELETE FROM dc_c WHERE id = 5;
SELECT * FROM dc_check_immediate('dc_c%');
SELECT * FROM dc_refresh_all('dc_c%');
SELECT pgtrickle.repair_stream_table('dc_c_differential');
SELECT pgtrickle.repair_stream_table('dc_c_immediate');
INSERT INTO dc_c VALUES (7, 7);
SELECT * FROM dc_check_immediate('dc_c%');
SELECT * FROM dc_refresh_all('dc_c%');

-- 3. A column a query reads is dropped: a clear error that names the
-- stream table (not an internal one), for the write to an IMMEDIATE
-- source and for the refresh.
ALTER TABLE dc_b ADD COLUMN note text;
SELECT pgtrickle.create_stream_table('dcn_imm', 'SELECT g, note FROM dc_b',
                                     refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('dcn_diff', 'SELECT g, note FROM dc_b',
                                     refresh_mode => 'DIFFERENTIAL');
ALTER TABLE dc_b DROP COLUMN note;
INSERT INTO dc_b VALUES (3, 'three');
SELECT pgtrickle.drop_stream_table('dcn_imm');
INSERT INTO dc_b VALUES (3, 'three');
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('dcn_diff')$$);
SELECT pgtrickle.drop_stream_table('dcn_diff');
SELECT * FROM dc_refresh_all('dc%');
RESET pg_trickle.block_source_ddl;

-- 4. Partitions.  The parent has a dropped column; dp_1 is created as a
-- partition (same layout), dp_2 attached after the drop (no dropped
-- column), dp_3 has dropped columns of its own and another column order.
-- Rows are written through the parent and straight into partitions, and
-- moved between partitions.
CREATE TABLE dp (junk text, id int, r int, v text) PARTITION BY RANGE (r);
ALTER TABLE dp DROP COLUMN junk;
CREATE TABLE dp_1 PARTITION OF dp FOR VALUES FROM (0) TO (10);
CREATE TABLE dp_2 (id int, r int, v text);
ALTER TABLE dp ATTACH PARTITION dp_2 FOR VALUES FROM (10) TO (20);
CREATE TABLE dp_3 (a int, b int, v text, r int, id int);
ALTER TABLE dp_3 DROP COLUMN a, DROP COLUMN b;
ALTER TABLE dp ATTACH PARTITION dp_3 FOR VALUES FROM (20) TO (30);
INSERT INTO dp SELECT i, i % 30, 'v' || i FROM generate_series(1, 30) i;
SELECT mode, pgtrickle.create_stream_table('dpp_' || lower(mode),
         'SELECT id, r, v FROM dp WHERE r <> 5', refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
SELECT mode, pgtrickle.create_stream_table('dpg_' || lower(mode),
         'SELECT r / 10 AS bucket, count(*) AS n, max(v) AS mv FROM dp GROUP BY 1',
         refresh_mode => mode)
  FROM unnest(ARRAY['DIFFERENTIAL', 'AUTO', 'IMMEDIATE', 'FULL']) mode;
INSERT INTO dp VALUES (100, 1, 'p1'), (101, 11, 'p2'), (102, 21, 'p3');
INSERT INTO dp_1 VALUES (103, 2, 'd1');
INSERT INTO dp_2 VALUES (104, 12, 'd2');
INSERT INTO dp_3 VALUES ('d3', 22, 105);
UPDATE dp SET v = v || 'x' WHERE id % 4 = 0;
UPDATE dp SET r = r + 10 WHERE id IN (1, 11);
UPDATE dp_3 SET v = 'w' WHERE id = 22;
DELETE FROM dp_2 WHERE id = 13;
DELETE FROM dp WHERE id = 24;
SELECT * FROM dc_check_immediate('dp%');
SELECT * FROM dc_refresh_all('dp%');

-- a partition with a dropped column attached after creation
CREATE TABLE dp_4 (z int, id int, v text, r int);
ALTER TABLE dp_4 DROP COLUMN z;
INSERT INTO dp_4 VALUES (199, 'pre', 35);
ALTER TABLE dp ATTACH PARTITION dp_4 FOR VALUES FROM (30) TO (40);
SELECT * FROM dc_refresh_all('dp%');
INSERT INTO dp VALUES (200, 31, 'q');
INSERT INTO dp_4 VALUES (201, 'q2', 32);
UPDATE dp SET v = 'z' WHERE id IN (200, 2, 199);
UPDATE dp SET r = 36 WHERE id = 3;
SELECT * FROM dc_check_immediate('dp%');
SELECT * FROM dc_refresh_all('dp%');

-- a column of the parent the queries do not read, dropped after creation
SET pg_trickle.block_source_ddl = off;
ALTER TABLE dp ADD COLUMN extra int;
INSERT INTO dp VALUES (250, 25, 'e', 1);
ALTER TABLE dp DROP COLUMN extra;
INSERT INTO dp VALUES (300, 3, 'a'), (301, 33, 'b');
UPDATE dp SET v = 'y' WHERE id IN (300, 3, 301, 250);
DELETE FROM dp_1 WHERE id = 4;
SELECT * FROM dc_check_immediate('dp%');
SELECT * FROM dc_refresh_all('dp%');
SELECT pgtrickle.repair_stream_table('dpp_differential');
SELECT * FROM dc_refresh_all('dpp_differential');
RESET pg_trickle.block_source_ddl;

SELECT pgtrickle.drop_stream_table(pgt_name)
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name ~ '^d(c|p)' ORDER BY pgt_id;
DROP TABLE dc_a, dc_b, dc_c, dp;
DROP FUNCTION dc_refresh_all(text), dc_check_immediate(text);
