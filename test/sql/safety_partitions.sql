--
-- safety_partitions: rows that leave a source without DML (issue 12, items
-- 5 and 9).  DROP TABLE of a partition or inheritance child removes its
-- rows from the source; DIFFERENTIAL and AUTO stream tables must be exact
-- after their next refresh, IMMEDIATE ones at the end of the statement.  A
-- detached partition (also CONCURRENTLY) keeps no capture triggers.
--
CREATE SCHEMA sp;
SET search_path = sp, public;

-- a range-partitioned source, one partition sub-partitioned twice
CREATE TABLE ev (day int NOT NULL, g int NOT NULL, v int NOT NULL) PARTITION BY RANGE (day);
CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM (1) TO (2);
CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM (2) TO (3);
CREATE TABLE ev_3 PARTITION OF ev FOR VALUES FROM (3) TO (5) PARTITION BY RANGE (day);
CREATE TABLE ev_3a PARTITION OF ev_3 FOR VALUES FROM (3) TO (4);
CREATE TABLE ev_3b PARTITION OF ev_3 FOR VALUES FROM (4) TO (5) PARTITION BY LIST (g);
CREATE TABLE ev_3b0 PARTITION OF ev_3b FOR VALUES IN (0);
CREATE TABLE ev_3b1 PARTITION OF ev_3b FOR VALUES IN (1, 2);
CREATE TABLE ev_5 PARTITION OF ev FOR VALUES FROM (5) TO (7);
INSERT INTO ev SELECT d, i % 3, d * 100 + i FROM generate_series(1, 6) d, generate_series(1, 5) i;

SELECT pgtrickle.create_stream_table('ev_diff',
    'SELECT g, count(*) AS n, sum(v) AS total FROM ev GROUP BY g',
    refresh_mode => 'DIFFERENTIAL', schedule => '1h');
SELECT pgtrickle.create_stream_table('ev_auto',
    'SELECT day, v FROM ev WHERE g <> 1', refresh_mode => 'AUTO', schedule => '1h');
SELECT pgtrickle.create_stream_table('ev_imm',
    'SELECT g, count(*) AS n, sum(v) AS total FROM ev GROUP BY g',
    refresh_mode => 'IMMEDIATE');

-- DROP TABLE of a leaf partition: IMMEDIATE is exact at once, the others
-- after one (FULL) refresh
DROP TABLE ev_1;
SELECT pgt_check('ev_imm') AS imm;
SELECT pgt_name, needs_reinit FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'sp' AND pgt_name LIKE 'ev\_%' ORDER BY pgt_name;
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT * FROM pgt_refresh_report('ev_auto');
-- after which refreshes are differential again
INSERT INTO ev VALUES (2, 0, 1);
SELECT * FROM pgt_refresh_report('ev_diff');

-- a leaf two levels down, then a sub-partitioned partition with its leaves
DROP TABLE ev_3b0;
SELECT pgt_check('ev_imm') AS imm;
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT * FROM pgt_refresh_report('ev_auto');
DROP TABLE ev_3;
SELECT pgt_check('ev_imm') AS imm;
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT * FROM pgt_refresh_report('ev_auto');

-- in a transaction: the IMMEDIATE stream table is exact inside it, and a
-- rolled-back drop leaves nothing to do
BEGIN;
DROP TABLE ev_2;
SELECT pgt_check('ev_imm') AS imm_in_xact;
ROLLBACK;
SELECT pgt_check('ev_imm') AS imm;
SELECT pgt_name, needs_reinit FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'sp' AND pgt_name LIKE 'ev\_%' ORDER BY pgt_name;
-- two partitions in one statement, with writes before it in the same
-- transaction
BEGIN;
INSERT INTO ev VALUES (2, 2, 7), (5, 2, 8);
DROP TABLE ev_2, ev_5;
SELECT pgt_check('ev_imm') AS imm_in_xact;
COMMIT;
SELECT pgt_check('ev_imm') AS imm;
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT * FROM pgt_refresh_report('ev_auto');

-- dropped with a stream table whose removal drops a change buffer (a
-- DROP TABLE nested in this one's event triggers)
CREATE TABLE aux (x int);
SELECT pgtrickle.create_stream_table('aux_diff', 'SELECT x FROM aux',
    refresh_mode => 'DIFFERENTIAL', schedule => '1h');
CREATE TABLE ev_6 PARTITION OF ev FOR VALUES FROM (7) TO (8);
INSERT INTO ev VALUES (7, 1, 70), (7, 2, 71);
SELECT pgt_check('ev_imm') AS imm;
SELECT count(*) AS aux_buffers FROM pg_class
 WHERE relname = 'changes_' || 'aux'::regclass::oid;
DROP TABLE ev_6, aux_diff;
SELECT count(*) AS aux_buffers FROM pg_class
 WHERE relname = 'changes_' || 'aux'::regclass::oid;
SELECT pgt_check('ev_imm') AS imm;
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT * FROM pgt_refresh_report('ev_auto');
DROP TABLE aux;

-- dropping a table that is no partition of a source changes nothing
CREATE TABLE unrelated (x int);
DROP TABLE unrelated;
SELECT pgt_name, needs_reinit FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'sp' AND pgt_name LIKE 'ev\_%' ORDER BY pgt_name;

-- DROP SCHEMA ... CASCADE of a schema holding a partition of a source
CREATE SCHEMA sp_old;
CREATE TABLE sp_old.ev_9 PARTITION OF ev FOR VALUES FROM (9) TO (10);
INSERT INTO ev VALUES (9, 0, 900), (9, 1, 901);
SELECT * FROM pgt_refresh_report('ev_diff');
SELECT pgt_check('ev_imm') AS imm;
DROP SCHEMA sp_old CASCADE;
SELECT pgt_check('ev_imm') AS imm;
SELECT * FROM pgt_refresh_report('ev_diff');

-- the parent: without CASCADE refused as before, with CASCADE its stream
-- tables go with it
SELECT pgt_try('DROP TABLE ev');
DROP TABLE ev CASCADE;
SELECT count(*) AS ev_stream_tables FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'sp' AND pgt_name LIKE 'ev\_%';
SELECT count(*) AS capture_triggers FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sp'::regnamespace);

-- inheritance: dropping a child of a source
CREATE TABLE inh (g int NOT NULL, v int NOT NULL);
CREATE TABLE inh_c1 () INHERITS (inh);
CREATE TABLE inh_c2 () INHERITS (inh);
INSERT INTO inh VALUES (0, 1), (1, 2);
INSERT INTO inh_c1 VALUES (0, 10), (1, 20);
INSERT INTO inh_c2 VALUES (0, 100), (2, 200);
SELECT pgtrickle.create_stream_table('inh_diff',
    'SELECT g, sum(v) AS total FROM inh GROUP BY g', refresh_mode => 'DIFFERENTIAL', schedule => '1h');
SELECT pgtrickle.create_stream_table('inh_imm',
    'SELECT g, sum(v) AS total FROM inh GROUP BY g', refresh_mode => 'IMMEDIATE');
DROP TABLE inh_c1;
SELECT pgt_check('inh_imm') AS imm;
SELECT * FROM pgt_refresh_report('inh_diff');
DROP TABLE inh_c2;
SELECT pgt_check('inh_imm') AS imm;
SELECT * FROM pgt_refresh_report('inh_diff');
SELECT pgtrickle.drop_stream_table('inh_diff');
SELECT pgtrickle.drop_stream_table('inh_imm');
DROP TABLE inh;

-- DETACH PARTITION, plain and CONCURRENTLY (autocommit statements): the
-- readers are exact and the detached tables keep no pg_trickle trigger
CREATE TABLE dp (k int NOT NULL, v int NOT NULL) PARTITION BY LIST (k);
CREATE TABLE dp_1 PARTITION OF dp FOR VALUES IN (1);
CREATE TABLE dp_2 PARTITION OF dp FOR VALUES IN (2) PARTITION BY LIST (v);
CREATE TABLE dp_2x PARTITION OF dp_2 DEFAULT;
CREATE TABLE dp_3 PARTITION OF dp FOR VALUES IN (3);
INSERT INTO dp VALUES (1, 10), (2, 20), (2, 21), (3, 30);
SELECT pgtrickle.create_stream_table('dp_diff',
    'SELECT k, sum(v) AS total FROM dp GROUP BY k', refresh_mode => 'DIFFERENTIAL', schedule => '1h');
SELECT pgtrickle.create_stream_table('dp_imm',
    'SELECT k, sum(v) AS total FROM dp GROUP BY k', refresh_mode => 'IMMEDIATE');
SELECT tgrelid::regclass AS tbl, count(*) FILTER (WHERE tgname LIKE '\_\_pgt\_cdc\_%') AS cdc,
       count(*) FILTER (WHERE tgname LIKE '\_\_pgt\_ivm\_%') AS ivm
  FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'dp%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sp'::regnamespace)
 GROUP BY 1 ORDER BY 1::text;
ALTER TABLE dp DETACH PARTITION dp_1;
ALTER TABLE dp DETACH PARTITION dp_2 CONCURRENTLY;
SELECT pgt_check('dp_imm') AS imm;
SELECT tgrelid::regclass AS tbl, count(*) FILTER (WHERE tgname LIKE '\_\_pgt\_cdc\_%') AS cdc,
       count(*) FILTER (WHERE tgname LIKE '\_\_pgt\_ivm\_%') AS ivm
  FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'dp%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sp'::regnamespace)
 GROUP BY 1 ORDER BY 1::text;
INSERT INTO dp_1 VALUES (1, 11);
INSERT INTO dp_2 VALUES (2, 22);
SELECT * FROM pgt_refresh_report('dp_diff');
SELECT pgt_check('dp_imm') AS imm;
-- a detached partition can become a source of its own, and be attached back
SELECT pgtrickle.create_stream_table('dp1_diff', 'SELECT k, v FROM dp_1',
    refresh_mode => 'DIFFERENTIAL', schedule => '1h');
INSERT INTO dp_1 VALUES (1, 12);
SELECT * FROM pgt_refresh_report('dp1_diff');
ALTER TABLE dp ATTACH PARTITION dp_2 FOR VALUES IN (2);
INSERT INTO dp VALUES (2, 23);
SELECT pgt_check('dp_imm') AS imm;
SELECT * FROM pgt_refresh_report('dp_diff');
SELECT pgtrickle.drop_stream_table('dp1_diff');
SELECT pgtrickle.drop_stream_table('dp_diff');
SELECT pgtrickle.drop_stream_table('dp_imm');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'sp'::regnamespace);
DROP TABLE dp, dp_1;

RESET search_path;
DROP SCHEMA sp;
