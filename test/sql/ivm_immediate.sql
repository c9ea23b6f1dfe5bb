--
-- ivm_immediate: refresh_mode => 'IMMEDIATE'.  Stream tables are maintained
-- by the writing statement itself: after every statement, inside and
-- outside transactions, pgt_check() must say 'ok' without any refresh.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE im_t (id int PRIMARY KEY, g int, v int);
INSERT INTO im_t SELECT i, i % 5, i FROM generate_series(1, 50) i;
CREATE TABLE im_c (cid int PRIMARY KEY, name text NOT NULL);
CREATE TABLE im_o (oid int PRIMARY KEY, cid int, amt int);
INSERT INTO im_c VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
INSERT INTO im_o SELECT i, 1 + i % 3, i * 10 FROM generate_series(1, 12) i;

SELECT pgtrickle.create_stream_table('im_agg',
    'SELECT g, count(*) AS n, sum(v) AS s, avg(v) AS a, min(v) AS lo FROM im_t GROUP BY g',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('im_join',
    'SELECT o.oid, c.name, o.amt FROM im_o o JOIN im_c c USING (cid)',
    refresh_mode => 'IMMEDIATE');
-- no schedule, no change buffer: the triggers do the work
SELECT pgt_name, schedule, refresh_mode, effective_refresh_mode, status, is_populated
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'im_%' ORDER BY 1;
SELECT count(*) AS buffers FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'pgtrickle_changes'
   AND c.relname IN ('changes_' || 'im_t'::regclass::oid, 'changes_' || 'im_o'::regclass::oid);
SELECT tgrelid::regclass AS source, tgname FROM pg_trigger
 WHERE tgname LIKE '__pgt_ivm_%' ORDER BY 1, 2;
SELECT pgt_check('im_agg'), pgt_check('im_join');

-- single statements
INSERT INTO im_t VALUES (100, 7, 1);
UPDATE im_t SET v = v + 100 WHERE id <= 3;
UPDATE im_t SET g = 7 WHERE id = 4;
DELETE FROM im_t WHERE id = 5;
SELECT pgt_check('im_agg');
SELECT * FROM im_agg WHERE g = 7;
INSERT INTO im_o VALUES (50, 2, 1), (51, 9, 2);
UPDATE im_c SET name = 'bobby' WHERE cid = 2;
INSERT INTO im_c VALUES (9, 'new');
DELETE FROM im_c WHERE cid = 1;
SELECT pgt_check('im_join');
SELECT count(*) FILTER (WHERE name = 'bobby') AS bobby, count(*) FILTER (WHERE name = 'new') AS new
  FROM im_join;

-- inside a transaction the stream table follows each statement; a
-- rollback (to a savepoint, or of all) takes its changes back
BEGIN;
DELETE FROM im_t WHERE g = 0;
SELECT pgt_check('im_agg'), (SELECT count(*) FROM im_agg WHERE g = 0) AS g0_rows;
SAVEPOINT s;
INSERT INTO im_t VALUES (200, 0, 5);
SELECT pgt_check('im_agg'), (SELECT n FROM im_agg WHERE g = 0) AS g0_n;
ROLLBACK TO SAVEPOINT s;
SELECT pgt_check('im_agg'), (SELECT count(*) FROM im_agg WHERE g = 0) AS g0_rows;
ROLLBACK;
SELECT pgt_check('im_agg'), (SELECT n FROM im_agg WHERE g = 0) AS g0_n;

-- INSERT ... ON CONFLICT fires both the insert and the update triggers
INSERT INTO im_t VALUES (1, 3, 1), (300, 3, 3)
    ON CONFLICT (id) DO UPDATE SET v = excluded.v, g = excluded.g;
SELECT pgt_check('im_agg');

-- TRUNCATE recomputes
TRUNCATE im_o;
SELECT pgt_check('im_join'), (SELECT count(*) FROM im_join) AS rows;
INSERT INTO im_o SELECT i, 1 + i % 3, i FROM generate_series(1, 6) i;
SELECT pgt_check('im_join');

-- cascades: a stream table over an IMMEDIATE one, and one that reads both
-- a source and a stream table over that source (the delta order matters)
SELECT pgtrickle.create_stream_table('im_top',
    'SELECT sum(n) AS total, count(*) AS groups FROM im_agg', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('im_mix',
    'SELECT t.id, t.v, a.n FROM im_t t JOIN im_agg a USING (g)', refresh_mode => 'IMMEDIATE');
-- im_t's triggers name the deeper stream table first
SELECT pg_catalog.encode(tgargs, 'escape') ~ ('^[0-9]+\\000' || 'im_mix'::regclass::oid::text || '\\000'
         || 'im_agg'::regclass::oid::text || '\\000$') AS deepest_first
  FROM pg_trigger WHERE tgname = '__pgt_ivm_ins' AND tgrelid = 'im_t'::regclass;
BEGIN;
INSERT INTO im_t SELECT i, i % 4, i FROM generate_series(400, 420) i;
SELECT pgt_check('im_agg'), pgt_check('im_top'), pgt_check('im_mix');
UPDATE im_t SET g = g + 1 WHERE id % 7 = 0;
DELETE FROM im_t WHERE id % 11 = 0;
SELECT pgt_check('im_agg'), pgt_check('im_top'), pgt_check('im_mix');
COMMIT;
TRUNCATE im_t;
SELECT pgt_check('im_agg'), pgt_check('im_top'), pgt_check('im_mix');
INSERT INTO im_t SELECT i, i % 3, i FROM generate_series(1, 30) i;
SELECT pgt_check('im_agg'), pgt_check('im_top'), pgt_check('im_mix');

-- a DIFFERENTIAL stream table over an IMMEDIATE one
SELECT pgtrickle.create_stream_table('im_diff_over',
    'SELECT g, n * 2 AS n2 FROM im_agg', refresh_mode => 'DIFFERENTIAL');
UPDATE im_t SET v = v + 1 WHERE id < 10;
SELECT pgtrickle.refresh_stream_table('im_diff_over');
SELECT pgt_check('im_diff_over');

-- refresh_stream_table of an IMMEDIATE stream table recomputes it
SELECT pgtrickle.refresh_stream_table('im_agg');
SELECT pgt_check('im_agg');

-- switching modes: no change lost or applied twice across the switch
SELECT pgtrickle.alter_stream_table('im_join', refresh_mode => 'DIFFERENTIAL');
SELECT count(*) AS ivm_triggers FROM pg_trigger
 WHERE tgname LIKE '__pgt_ivm_%' AND tgrelid IN ('im_o'::regclass, 'im_c'::regclass);
INSERT INTO im_o VALUES (70, 2, 70);
SELECT pgt_check('im_join') AS before_refresh;
SELECT pgtrickle.refresh_stream_table('im_join');
SELECT pgt_check('im_join');
INSERT INTO im_o VALUES (71, 3, 71);
SELECT pgtrickle.alter_stream_table('im_join', refresh_mode => 'IMMEDIATE');
SELECT pgt_check('im_join');
DELETE FROM im_o WHERE oid IN (70, 71);
SELECT pgt_check('im_join');
SELECT effective_refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'im_join';

-- partitioned source: rows written through the root and to a partition
CREATE TABLE im_p (id int, k int, v int) PARTITION BY RANGE (k);
CREATE TABLE im_p1 PARTITION OF im_p FOR VALUES FROM (0) TO (10);
CREATE TABLE im_p2 (v int, id int, k int);  -- other column order
ALTER TABLE im_p ATTACH PARTITION im_p2 FOR VALUES FROM (10) TO (20);
INSERT INTO im_p SELECT i, i % 20, i FROM generate_series(1, 40) i;
SELECT pgtrickle.create_stream_table('im_part',
    'SELECT k, count(*) AS n, sum(v) AS s FROM im_p GROUP BY k', refresh_mode => 'IMMEDIATE');
INSERT INTO im_p2 VALUES (1000, 1000, 15);
UPDATE im_p1 SET v = v + 1;
DELETE FROM im_p2 WHERE k = 11;
UPDATE im_p SET k = 3 WHERE k = 12;   -- moves rows between partitions
SELECT pgt_check('im_part');
CREATE TABLE im_p3 PARTITION OF im_p FOR VALUES FROM (20) TO (30);
INSERT INTO im_p3 VALUES (5000, 25, 1);
SELECT pgt_check('im_part');
CREATE TABLE im_p4 (id int, k int, v int);
INSERT INTO im_p4 VALUES (6000, 35, 2);
ALTER TABLE im_p ATTACH PARTITION im_p4 FOR VALUES FROM (30) TO (40);
SELECT pgt_check('im_part');
INSERT INTO im_p4 VALUES (6001, 36, 3);
SELECT pgt_check('im_part');
-- a table IMMEDIATE stream tables read directly cannot join another source
CREATE TABLE im_p5 (id int, k int, v int);
SELECT pgtrickle.create_stream_table('im_p5_st', 'SELECT id FROM im_p5', refresh_mode => 'IMMEDIATE');
SELECT pgt_try($$ALTER TABLE im_p ATTACH PARTITION im_p5 FOR VALUES FROM (40) TO (50)$$);
SELECT pgtrickle.drop_stream_table('im_p5_st');
DROP TABLE im_p5;
-- a detached partition stops feeding the stream table
ALTER TABLE im_p DETACH PARTITION im_p4;
SELECT pgt_check('im_part'), (SELECT count(*) FROM pg_trigger
    WHERE tgrelid = 'im_p4'::regclass AND tgname LIKE '__pgt_ivm_%') AS p4_triggers;
INSERT INTO im_p4 VALUES (6002, 37, 4);
SELECT pgt_check('im_part');
DROP TABLE im_p4;

-- maintenance runs as the owner: row-level security and the writer's
-- search_path do not change what the stream table holds
CREATE ROLE im_writer;
GRANT USAGE ON SCHEMA public TO im_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON im_t TO im_writer;
ALTER TABLE im_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY im_own ON im_t USING (g = 1) WITH CHECK (g = 1);
CREATE SCHEMA im_evil;
CREATE TABLE im_evil.im_t (id int, g int, v int);
GRANT USAGE ON SCHEMA im_evil TO im_writer;
SET ROLE im_writer;
SET search_path = im_evil, public;
INSERT INTO public.im_t VALUES (900, 1, 9);
UPDATE public.im_t SET v = v + 1;  -- sees (and changes) only g = 1
RESET search_path;
RESET ROLE;
SELECT pgt_check('im_agg'), pgt_check('im_mix'), pgt_check('im_top');
ALTER TABLE im_t DISABLE ROW LEVEL SECURITY;

-- what IMMEDIATE cannot maintain is refused like DIFFERENTIAL
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('im_bad',
    'SELECT t.id, x.v FROM im_t t CROSS JOIN LATERAL (SELECT v FROM im_t t2 WHERE t2.g > t.g ORDER BY v LIMIT 1) x',
    refresh_mode => 'IMMEDIATE')$$);

-- one query changing two sources of a join: a data-modifying WITH, and a
-- user trigger on one source writing the other (the cross term of the two
-- changes must be counted once: the last trigger recomputes)
CREATE TABLE im_a (id int PRIMARY KEY, k int);
CREATE TABLE im_b (k int PRIMARY KEY, label text);
SELECT pgtrickle.create_stream_table('im_ab',
    'SELECT a.id, b.label FROM im_a a JOIN im_b b USING (k)', refresh_mode => 'IMMEDIATE');
WITH nb AS (INSERT INTO im_b VALUES (1, 'one') RETURNING k)
INSERT INTO im_a SELECT 10, k FROM nb;
SELECT pgt_check('im_ab'), (SELECT count(*) FROM im_ab) AS rows;
CREATE FUNCTION im_add_b() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO im_b VALUES (NEW.k, 'auto ' || NEW.k) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER im_add_b AFTER INSERT ON im_a FOR EACH ROW EXECUTE FUNCTION im_add_b();
INSERT INTO im_a VALUES (20, 2), (21, 2), (22, 1);
SELECT pgt_check('im_ab'), (SELECT count(*) FROM im_ab) AS rows;
BEGIN;
SAVEPOINT s;
INSERT INTO im_a VALUES (30, 3);
ROLLBACK TO SAVEPOINT s;
INSERT INTO im_a VALUES (31, 4);
COMMIT;
SELECT pgt_check('im_ab'), (SELECT count(*) FROM im_ab) AS rows;
-- an upsert is an insert and an update of one source: with a self-join,
-- the pairs of new rows must not count twice
CREATE TABLE im_s (id int PRIMARY KEY, k int);
INSERT INTO im_s VALUES (1, 1), (2, 2);
SELECT pgtrickle.create_stream_table('im_self',
    'SELECT a.id AS a, b.id AS b FROM im_s a JOIN im_s b ON a.k = b.k', refresh_mode => 'IMMEDIATE');
INSERT INTO im_s VALUES (2, 1), (3, 1), (4, 2) ON CONFLICT (id) DO UPDATE SET k = excluded.k;
SELECT pgt_check('im_self'), (SELECT count(*) FROM im_self) AS rows;
SELECT pgtrickle.drop_stream_table('im_self');
DROP TABLE im_s;
-- a new query takes effect for this backend's next write
SELECT pgtrickle.alter_stream_table('im_ab',
    query => 'SELECT a.id, b.label FROM im_a a JOIN im_b b USING (k) WHERE a.id > 20');
INSERT INTO im_a VALUES (40, 1), (15, 1);
SELECT pgt_check('im_ab'), (SELECT count(*) FROM im_ab) AS rows;
-- row-level security enabled later on a source: recomputed as the owner
CREATE ROLE im_owner;
-- (TRIGGER: an IMMEDIATE stream table puts triggers on its sources)
GRANT SELECT, TRIGGER ON im_a, im_b TO im_owner;
GRANT USAGE, CREATE ON SCHEMA public TO im_owner;
SET ROLE im_owner;
SELECT pgtrickle.create_stream_table('im_own',
    'SELECT a.id, a.k FROM im_a a', refresh_mode => 'IMMEDIATE');
RESET ROLE;
ALTER TABLE im_a ENABLE ROW LEVEL SECURITY;
CREATE POLICY im_a_low ON im_a USING (id < 25);
INSERT INTO im_a VALUES (5, 1), (50, 1);
SET ROLE im_owner;
SELECT pgt_check('im_own'), (SELECT count(*) FROM im_own) AS rows;
RESET ROLE;
SELECT pgtrickle.drop_stream_table('im_own');
ALTER TABLE im_a DISABLE ROW LEVEL SECURITY;
DROP POLICY im_a_low ON im_a;
REVOKE ALL ON im_a, im_b FROM im_owner;
REVOKE ALL ON SCHEMA public FROM im_owner;
DROP ROLE im_owner;
SELECT pgtrickle.drop_stream_table('im_ab');
DROP TABLE im_a, im_b;
DROP FUNCTION im_add_b();

-- variance and standard deviation of integers, maintained from running
-- sums: equal to a fresh run to the last digit shown (pgt_check compares
-- the rows as text)
CREATE TABLE im_sv (id int PRIMARY KEY, g int, v int, b bigint);
INSERT INTO im_sv SELECT i, i % 7, (i * 37) % 1001 - 300, (i::bigint * 123457) % 99991
  FROM generate_series(1, 300) i;
SELECT pgtrickle.create_stream_table('im_svst',
    'SELECT g, stddev(v) AS sd, var_pop(v) AS vp, variance(b) AS vb, stddev_pop(b) AS sdp FROM im_sv GROUP BY g',
    refresh_mode => 'IMMEDIATE');
SELECT value AS strategy FROM pgtrickle.explain_st('im_svst') WHERE property = 'delta_strategy';
DELETE FROM im_sv WHERE id % 5 = 0;
UPDATE im_sv SET v = v * 3 WHERE id % 3 = 0;
DELETE FROM im_sv WHERE g = 3 AND id > 10;
SELECT pgt_check('im_svst'), (SELECT sd::text || ' ' || vp::text FROM im_svst WHERE g = 1) AS g1,
       (SELECT coalesce(sd::text, 'null') || ' ' || vp::text FROM im_svst WHERE g = 3) AS g3;
SELECT pgtrickle.drop_stream_table('im_svst');
DROP TABLE im_sv;

-- TopK: the LIMIT is bounded by pg_trickle.ivm_topk_max_limit
SET pg_trickle.ivm_topk_max_limit = 2;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('im_bad',
    'SELECT id, v FROM im_t ORDER BY v DESC, id LIMIT 3', refresh_mode => 'IMMEDIATE')$$);
RESET pg_trickle.ivm_topk_max_limit;
SELECT pgtrickle.create_stream_table('im_top3',
    'SELECT id, v FROM im_t ORDER BY v DESC, id LIMIT 3', refresh_mode => 'IMMEDIATE');
INSERT INTO im_t VALUES (5000, 1, 100000);
DELETE FROM im_t WHERE id = (SELECT id FROM im_top3 ORDER BY v DESC, id OFFSET 1 LIMIT 1);
SELECT pgt_check('im_top3'), (SELECT count(*) FROM im_top3) AS rows;
SELECT pgtrickle.drop_stream_table('im_top3');

-- dropping removes the triggers of sources no IMMEDIATE stream table reads
SELECT pgtrickle.drop_stream_table('im_diff_over');
SELECT pgtrickle.drop_stream_table('im_mix');
SELECT pgtrickle.drop_stream_table('im_top');
SELECT pgtrickle.drop_stream_table('im_agg');
SELECT tgrelid::regclass AS source, count(*)
  FROM pg_trigger WHERE tgname LIKE '__pgt_ivm_%' GROUP BY 1 ORDER BY 1;
SELECT count(*) AS lock_rows FROM pgtrickle.pgt_ivm_locks;
DROP TABLE im_part;
SELECT pgtrickle.drop_stream_table('im_join');
SELECT count(*) AS ivm_triggers FROM pg_trigger WHERE tgname LIKE '__pgt_ivm_%';
SELECT count(*) AS lock_rows FROM pgtrickle.pgt_ivm_locks;
DROP TABLE im_t, im_o, im_c, im_p;
DROP SCHEMA im_evil CASCADE;
REVOKE USAGE ON SCHEMA public FROM im_writer;
DROP ROLE im_writer;
