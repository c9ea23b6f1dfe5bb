--
-- dvm_basic: the differential engine through the SQL API.  Every stream
-- table here is created with refresh_mode => 'DIFFERENTIAL' (so a query the
-- engine rejects shows up as an error), its sources are changed, and after
-- each refresh the stream table is compared with a fresh run of its query
-- (pgt_check, from api_00_setup).  pgt_refresh_report() prints the action the
-- refresh recorded, so it is visible which refreshes were DIFFERENTIAL.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

-- the configured and effective refresh mode of a stream table
CREATE FUNCTION pg_temp.mode(st regclass) RETURNS text LANGUAGE sql AS $$
    SELECT refresh_mode || ' -> ' || effective_refresh_mode
      FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = st
$$;

--
-- Filter and projection over a table with a primary key.
--
CREATE TABLE d_items (id int PRIMARY KEY, name text, amount numeric(10,2), note text);
INSERT INTO d_items VALUES (1, 'apple', 5, 'a'), (2, 'pear', 15, NULL), (3, 'fig', 25, 'c'),
                           (4, 'kiwi', 35, 'd');
SELECT pgtrickle.create_stream_table('d_filter',
    'SELECT id, upper(name) AS uname, amount * 2 AS dbl FROM d_items WHERE amount > 10',
    refresh_mode => 'DIFFERENTIAL');
SELECT pg_temp.mode('d_filter'), pgt_check('d_filter');
INSERT INTO d_items VALUES (5, 'plum', 50, NULL), (6, 'lime', 1, NULL);   -- in, out
UPDATE d_items SET amount = 11 WHERE id = 1;                              -- moves in
UPDATE d_items SET amount = 9 WHERE id = 2;                               -- moves out
UPDATE d_items SET name = 'FIG!' WHERE id = 3;                            -- changes
UPDATE d_items SET note = 'x' WHERE id = 4;                               -- unread column
DELETE FROM d_items WHERE id = 5;                                         -- in and out again
SELECT * FROM pgt_refresh_report('d_filter');
SELECT id, uname, dbl FROM d_filter ORDER BY id;
UPDATE d_items SET note = 'y';                  -- only a column the query does not read
SELECT * FROM pgt_refresh_report('d_filter');
-- a primary-key change is a delete and an insert
UPDATE d_items SET id = id + 100 WHERE id IN (3, 4);
SELECT * FROM pgt_refresh_report('d_filter');
SELECT id, uname, dbl FROM d_filter ORDER BY id;
-- values that are equal but print differently (numeric scale) are
-- different rows: 1.10 becomes 1.1, and 3.0 and 3.00 inserted together
-- stay as they are
CREATE TABLE d_num (id int PRIMARY KEY, x numeric);
INSERT INTO d_num VALUES (1, 1.10), (2, 2.0);
SELECT pgtrickle.create_stream_table('d_scale', 'SELECT x FROM d_num',
                                     refresh_mode => 'DIFFERENTIAL');
UPDATE d_num SET x = 1.1 WHERE id = 1;
INSERT INTO d_num VALUES (3, 3.0), (4, 3.00);
SELECT action, pgt_check FROM pgt_refresh_report('d_scale');
SELECT x::text FROM d_scale ORDER BY x::text;

--
-- A table without a key, with exact duplicates: deleting one of two
-- identical rows leaves the other.
--
CREATE TABLE d_bag (a int, b text);
INSERT INTO d_bag VALUES (1, 'x'), (1, 'x'), (2, NULL), (2, NULL), (2, NULL), (3, 'z');
SELECT pgtrickle.create_stream_table('d_bag_st', 'SELECT a, b FROM d_bag',
                                     refresh_mode => 'DIFFERENTIAL');
DELETE FROM d_bag WHERE ctid = (SELECT min(ctid) FROM d_bag WHERE a = 1);
UPDATE d_bag SET b = 'w' WHERE ctid = (SELECT max(ctid) FROM d_bag WHERE a = 2);
INSERT INTO d_bag VALUES (3, 'z');
SELECT * FROM pgt_refresh_report('d_bag_st');
SELECT a, b, count(*) FROM d_bag_st GROUP BY a, b ORDER BY a, b;
DELETE FROM d_bag WHERE a = 3;                  -- both copies
INSERT INTO d_bag VALUES (1, 'x'), (1, 'x');    -- back to three copies
SELECT * FROM pgt_refresh_report('d_bag_st');
SELECT a, b, count(*) FROM d_bag_st GROUP BY a, b ORDER BY a, b;

--
-- Three tables joined, with deletes on all three sides in one refresh
-- window (no foreign keys: every combination can happen).
--
CREATE TABLE d_cust (id int PRIMARY KEY, name text);
CREATE TABLE d_prod (id int PRIMARY KEY, title text);
CREATE TABLE d_ord (id int PRIMARY KEY, cust_id int, prod_id int, qty int);
INSERT INTO d_cust VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cid');
INSERT INTO d_prod VALUES (10, 'nut'), (20, 'bolt'), (30, 'gear');
INSERT INTO d_ord VALUES (100, 1, 10, 1), (101, 1, 20, 2), (102, 2, 10, 3), (103, 2, 30, 4),
                         (104, 3, 20, 5), (105, 3, 30, 6), (106, 1, 10, 7);
SELECT pgtrickle.create_stream_table('d_join3',
    'SELECT c.name, p.title, o.qty
       FROM d_cust c JOIN d_ord o ON o.cust_id = c.id JOIN d_prod p ON p.id = o.prod_id',
    refresh_mode => 'DIFFERENTIAL');
SELECT count(*) AS rows, pgt_check('d_join3') FROM d_join3;
BEGIN;
DELETE FROM d_cust WHERE id = 1;             -- Ann and her orders' rows
DELETE FROM d_ord WHERE cust_id = 1;         -- ... her orders too (both sides of one row)
DELETE FROM d_prod WHERE id = 30;            -- gear
DELETE FROM d_ord WHERE id = 104;            -- one of Cid's
INSERT INTO d_cust VALUES (4, 'Dee');
INSERT INTO d_ord VALUES (107, 4, 20, 8), (108, 2, 40, 9);  -- 108: no such product yet
COMMIT;
SELECT * FROM pgt_refresh_report('d_join3');
SELECT name, title, qty FROM d_join3 ORDER BY name, title, qty;
BEGIN;
INSERT INTO d_prod VALUES (40, 'cog');       -- order 108 gains its product
DELETE FROM d_prod WHERE id = 10;            -- nut
UPDATE d_cust SET name = 'DEE' WHERE id = 4;
DELETE FROM d_ord WHERE id = 107;
INSERT INTO d_ord VALUES (109, 4, 40, 1);
UPDATE d_ord SET qty = qty * 10;
COMMIT;
SELECT * FROM pgt_refresh_report('d_join3');
SELECT name, title, qty FROM d_join3 ORDER BY name, title, qty;

--
-- A self-join.
--
CREATE TABLE d_emp (id int PRIMARY KEY, name text, mgr_id int);
INSERT INTO d_emp VALUES (1, 'boss', NULL), (2, 'ann', 1), (3, 'bob', 1), (4, 'cid', 2);
SELECT pgtrickle.create_stream_table('d_self',
    'SELECT e.name AS employee, m.name AS manager FROM d_emp e JOIN d_emp m ON m.id = e.mgr_id',
    refresh_mode => 'DIFFERENTIAL');
UPDATE d_emp SET mgr_id = 3 WHERE id = 4;      -- changes manager
UPDATE d_emp SET name = 'BOB' WHERE id = 3;    -- both sides of a row change
INSERT INTO d_emp VALUES (5, 'dee', 5);        -- own manager
SELECT * FROM pgt_refresh_report('d_self');
SELECT employee, manager FROM d_self ORDER BY employee;
DELETE FROM d_emp WHERE id = 1;                -- a manager goes
SELECT * FROM pgt_refresh_report('d_self');
SELECT employee, manager FROM d_self ORDER BY employee;

--
-- A join on an inequality.
--
CREATE TABLE d_band (id int PRIMARY KEY, lo int, hi int);
CREATE TABLE d_point (id int PRIMARY KEY, v int);
INSERT INTO d_band VALUES (1, 0, 9), (2, 5, 14), (3, 20, 29);
INSERT INTO d_point VALUES (1, 3), (2, 7), (3, 12), (4, 40);
SELECT pgtrickle.create_stream_table('d_nonequi',
    'SELECT b.id AS band, p.id AS point FROM d_band b JOIN d_point p ON p.v BETWEEN b.lo AND b.hi',
    refresh_mode => 'DIFFERENTIAL');
SELECT band, point FROM d_nonequi ORDER BY band, point;
UPDATE d_band SET hi = 45 WHERE id = 3;
UPDATE d_point SET v = 25 WHERE id = 1;
DELETE FROM d_band WHERE id = 1;
INSERT INTO d_point VALUES (5, 8);
SELECT * FROM pgt_refresh_report('d_nonequi');
SELECT band, point FROM d_nonequi ORDER BY band, point;

--
-- Outer joins: rows gain and lose their match, so NULL-padded rows appear
-- and disappear.
--
CREATE TABLE d_l (id int PRIMARY KEY, k int, lv text);
CREATE TABLE d_r (id int PRIMARY KEY, k int, rv text);
INSERT INTO d_l VALUES (1, 1, 'l1'), (2, 2, 'l2'), (3, 3, 'l3'), (4, NULL, 'lnull');
INSERT INTO d_r VALUES (1, 1, 'r1'), (2, 1, 'r1b'), (3, 2, 'r2'), (4, 5, 'r5'), (5, NULL, 'rnull');
SELECT pgtrickle.create_stream_table('d_left',
    'SELECT l.id AS lid, l.lv, r.id AS rid, r.rv FROM d_l l LEFT JOIN d_r r ON r.k = l.k',
    refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d_right',
    'SELECT l.id AS lid, l.lv, r.id AS rid, r.rv FROM d_l l RIGHT JOIN d_r r ON r.k = l.k',
    refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d_full',
    'SELECT l.id AS lid, l.lv, r.id AS rid, r.rv FROM d_l l FULL JOIN d_r r ON r.k = l.k',
    refresh_mode => 'DIFFERENTIAL');
SELECT lid, lv, rid, rv FROM d_full ORDER BY lid, rid;
SELECT pgt_check('d_left'), pgt_check('d_right'), pgt_check('d_full');
-- l3 gains a match, l2 loses its only one, l1 loses one of two, r5 gains
-- a match (a new left row), a right row moves from key 1 to key 2
BEGIN;
INSERT INTO d_r VALUES (6, 3, 'r3');
DELETE FROM d_r WHERE id = 3;
DELETE FROM d_r WHERE id = 2;
INSERT INTO d_l VALUES (5, 5, 'l5');
UPDATE d_r SET k = 2 WHERE id = 1;
COMMIT;
SELECT * FROM pgt_refresh_report('d_left');
SELECT * FROM pgt_refresh_report('d_right');
SELECT * FROM pgt_refresh_report('d_full');
SELECT lid, lv, rid, rv FROM d_full ORDER BY lid, rid;
-- both sides of a match go at once; a left row's key changes; a match
-- appears and goes again in the same window
BEGIN;
DELETE FROM d_l WHERE id = 5;
DELETE FROM d_r WHERE id = 4;
UPDATE d_l SET k = 2 WHERE id = 3;
INSERT INTO d_r VALUES (7, 4, 'r4');
INSERT INTO d_l VALUES (6, 4, 'l4');
DELETE FROM d_r WHERE id = 7;
COMMIT;
SELECT * FROM pgt_refresh_report('d_left');
SELECT * FROM pgt_refresh_report('d_right');
SELECT * FROM pgt_refresh_report('d_full');
SELECT lid, lv, rid, rv FROM d_full ORDER BY lid, rid;
-- one side emptied
DELETE FROM d_r;
SELECT * FROM pgt_refresh_report('d_left');
SELECT * FROM pgt_refresh_report('d_right');
SELECT * FROM pgt_refresh_report('d_full');
SELECT count(*) AS left_rows, count(*) FILTER (WHERE rid IS NULL) AS null_padded FROM d_left;
INSERT INTO d_r VALUES (8, 1, 'r1'), (9, 9, 'r9');
SELECT * FROM pgt_refresh_report('d_left');
SELECT * FROM pgt_refresh_report('d_right');
SELECT * FROM pgt_refresh_report('d_full');

--
-- Chained LEFT JOINs: the second join's condition reads the NULL-padded
-- side of the first.
--
CREATE TABLE d_a (id int PRIMARY KEY, b_id int);
CREATE TABLE d_b (id int PRIMARY KEY, c_id int);
CREATE TABLE d_c (id int PRIMARY KEY, label text);
INSERT INTO d_a VALUES (1, 10), (2, 20), (3, NULL), (4, 40);
INSERT INTO d_b VALUES (10, 100), (20, 200), (30, 100);
INSERT INTO d_c VALUES (100, 'c100');
SELECT pgtrickle.create_stream_table('d_chain',
    'SELECT a.id AS a_id, b.id AS b_id, c.label
       FROM d_a a LEFT JOIN d_b b ON b.id = a.b_id LEFT JOIN d_c c ON c.id = b.c_id',
    refresh_mode => 'DIFFERENTIAL');
SELECT a_id, b_id, label FROM d_chain ORDER BY a_id;
INSERT INTO d_c VALUES (200, 'c200');          -- a2 gains c
DELETE FROM d_c WHERE id = 100;                -- a1 loses c
INSERT INTO d_b VALUES (40, 200);              -- a4 gains b, and c through it
SELECT * FROM pgt_refresh_report('d_chain');
SELECT a_id, b_id, label FROM d_chain ORDER BY a_id;
DELETE FROM d_b WHERE id = 20;                 -- a2 loses b, and c with it
UPDATE d_a SET b_id = 30 WHERE id = 3;
INSERT INTO d_c VALUES (100, 'c100 again');
SELECT * FROM pgt_refresh_report('d_chain');
SELECT a_id, b_id, label FROM d_chain ORDER BY a_id;

--
-- GROUP BY with count, sum and avg of a numeric column with NULLs
-- (maintained algebraically): a group vanishes and reappears, an UPDATE
-- moves rows between groups, a sum's last non-NULL input leaves.
--
CREATE TABLE d_sales (id int PRIMARY KEY, grp text, x numeric);
INSERT INTO d_sales VALUES (1, 'a', 1.5), (2, 'a', NULL), (3, 'b', 2), (4, 'b', 3),
                           (5, 'c', NULL), (6, NULL, 7);
SELECT pgtrickle.create_stream_table('d_group',
    'SELECT grp, count(*) AS n, count(x) AS nx, sum(x) AS sx, avg(x) AS ax
       FROM d_sales GROUP BY grp',
    refresh_mode => 'DIFFERENTIAL');
SELECT grp, n, nx, sx, ax FROM d_group ORDER BY grp NULLS FIRST;
DELETE FROM d_sales WHERE grp = 'b';                 -- b vanishes
UPDATE d_sales SET grp = 'c' WHERE id = 1;           -- a's only value moves to c
INSERT INTO d_sales VALUES (7, NULL, 0.25);
SELECT * FROM pgt_refresh_report('d_group');
SELECT grp, n, nx, sx, ax FROM d_group ORDER BY grp NULLS FIRST;
INSERT INTO d_sales VALUES (8, 'b', 10);             -- b reappears
UPDATE d_sales SET x = NULL WHERE grp = 'c';         -- c's sum goes back to NULL
SELECT * FROM pgt_refresh_report('d_group');
SELECT grp, n, nx, sx, ax FROM d_group ORDER BY grp NULLS FIRST;
BEGIN;                                               -- a vanishes and reappears
DELETE FROM d_sales WHERE grp = 'a';
INSERT INTO d_sales VALUES (9, 'a', 4);
UPDATE d_sales SET grp = 'd' WHERE grp = 'b';        -- a key-changing update
COMMIT;
SELECT * FROM pgt_refresh_report('d_group');
SELECT grp, n, nx, sx, ax FROM d_group ORDER BY grp NULLS FIRST;

--
-- A global aggregate over a table that becomes empty keeps its one row:
-- count 0, sum NULL.  count(*) alone reads no column.
--
CREATE TABLE d_glob (v int);
INSERT INTO d_glob VALUES (1), (2), (NULL);
SELECT pgtrickle.create_stream_table('d_global',
    'SELECT count(*) AS n, count(v) AS nv, sum(v) AS s, avg(v) AS a FROM d_glob',
    refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d_count', 'SELECT count(*) AS n FROM d_glob',
                                     refresh_mode => 'DIFFERENTIAL');
SELECT n, nv, s, a FROM d_global;
DELETE FROM d_glob;
SELECT * FROM pgt_refresh_report('d_global');
SELECT * FROM pgt_refresh_report('d_count');
SELECT n, nv, s, a FROM d_global;
SELECT n FROM d_count;
INSERT INTO d_glob SELECT g FROM generate_series(1, 5) g;
INSERT INTO d_glob VALUES (NULL);
SELECT * FROM pgt_refresh_report('d_global');
SELECT * FROM pgt_refresh_report('d_count');
SELECT n, nv, s, a FROM d_global;
SELECT n FROM d_count;
DELETE FROM d_glob WHERE v > 3;
UPDATE d_glob SET v = 10 WHERE v = 1;
SELECT * FROM pgt_refresh_report('d_global');
SELECT * FROM pgt_refresh_report('d_count');
SELECT n, nv, s, a FROM d_global;
SELECT n FROM d_count;

--
-- Aggregates that are recomputed per touched group: MIN, MAX,
-- string_agg(... ORDER BY ...), count(DISTINCT ...).
--
CREATE TABLE d_obs (id int PRIMARY KEY, grp text, v int, s text);
INSERT INTO d_obs VALUES (1, 'a', 5, 'e'), (2, 'a', 1, 'b'), (3, 'a', 9, 'a'), (4, 'a', 5, 'd'),
                         (5, 'b', 2, 'x'), (6, 'b', NULL, NULL);
SELECT pgtrickle.create_stream_table('d_minmax',
    'SELECT grp, min(v) AS lo, max(v) AS hi, string_agg(s, '','' ORDER BY s) AS ss,
            count(DISTINCT v) AS nd
       FROM d_obs GROUP BY grp',
    refresh_mode => 'DIFFERENTIAL');
SELECT grp, lo, hi, ss, nd FROM d_minmax ORDER BY grp;
DELETE FROM d_obs WHERE id IN (2, 3);          -- a's min and max go
UPDATE d_obs SET v = 7 WHERE id = 6;           -- b: a NULL becomes a value
INSERT INTO d_obs VALUES (7, 'c', 0, 'c');
SELECT * FROM pgt_refresh_report('d_minmax');
SELECT grp, lo, hi, ss, nd FROM d_minmax ORDER BY grp;
UPDATE d_obs SET v = 5 WHERE id = 6;           -- count(DISTINCT) of b
UPDATE d_obs SET grp = 'b' WHERE id = 4;       -- a loses a duplicate 5
DELETE FROM d_obs WHERE grp = 'c';
SELECT * FROM pgt_refresh_report('d_minmax');
SELECT grp, lo, hi, ss, nd FROM d_minmax ORDER BY grp;

--
-- HAVING: groups cross the threshold both ways.
--
CREATE TABLE d_hv (id int PRIMARY KEY, grp text, v int);
INSERT INTO d_hv VALUES (1, 'a', 5), (2, 'a', 6), (3, 'b', 3), (4, 'c', 20);
SELECT pgtrickle.create_stream_table('d_having',
    'SELECT grp, sum(v) AS total, count(*) AS n FROM d_hv GROUP BY grp HAVING sum(v) > 10',
    refresh_mode => 'DIFFERENTIAL');
SELECT grp, total, n FROM d_having ORDER BY grp;
UPDATE d_hv SET v = 1 WHERE id = 2;            -- a drops below
INSERT INTO d_hv VALUES (5, 'b', 8);           -- b rises above
UPDATE d_hv SET v = 21 WHERE id = 4;           -- c stays above, changes
SELECT * FROM pgt_refresh_report('d_having');
SELECT grp, total, n FROM d_having ORDER BY grp;
DELETE FROM d_hv WHERE id = 5;                 -- b drops below again
INSERT INTO d_hv VALUES (6, 'a', 100);         -- a rises again
SELECT * FROM pgt_refresh_report('d_having');
SELECT grp, total, n FROM d_having ORDER BY grp;

--
-- Aggregates with FILTER (WHERE ...).
--
CREATE TABLE d_flt (id int PRIMARY KEY, grp text, v int, ok boolean);
INSERT INTO d_flt VALUES (1, 'a', 1, true), (2, 'a', -2, false), (3, 'b', 3, NULL), (4, 'b', 4, true);
SELECT pgtrickle.create_stream_table('d_filtered',
    'SELECT grp, count(*) FILTER (WHERE ok) AS n_ok, sum(v) FILTER (WHERE v > 0) AS pos,
            count(*) AS n
       FROM d_flt GROUP BY grp',
    refresh_mode => 'DIFFERENTIAL');
SELECT grp, n_ok, pos, n FROM d_filtered ORDER BY grp;
UPDATE d_flt SET ok = true WHERE id = 2;
UPDATE d_flt SET v = -1 WHERE id = 1;          -- a's only positive value goes
UPDATE d_flt SET ok = false WHERE id = 4;
INSERT INTO d_flt VALUES (5, 'c', 0, NULL);
SELECT * FROM pgt_refresh_report('d_filtered');
SELECT grp, n_ok, pos, n FROM d_filtered ORDER BY grp;

--
-- DISTINCT.
--
CREATE TABLE d_dup (id int PRIMARY KEY, color text);
INSERT INTO d_dup VALUES (1, 'red'), (2, 'red'), (3, 'blue'), (4, NULL), (5, NULL);
SELECT pgtrickle.create_stream_table('d_distinct', 'SELECT DISTINCT color FROM d_dup',
                                     refresh_mode => 'DIFFERENTIAL');
DELETE FROM d_dup WHERE id = 1;                -- red stays (one left)
DELETE FROM d_dup WHERE id = 3;                -- blue goes
DELETE FROM d_dup WHERE id = 4;                -- NULL stays
INSERT INTO d_dup VALUES (6, 'green'), (7, 'green');
SELECT * FROM pgt_refresh_report('d_distinct');
SELECT color FROM d_distinct ORDER BY color NULLS FIRST;
UPDATE d_dup SET color = 'blue' WHERE id IN (2, 5);   -- red and NULL go, blue is back
SELECT * FROM pgt_refresh_report('d_distinct');
SELECT color FROM d_distinct ORDER BY color NULLS FIRST;

--
-- UNION ALL and UNION.
--
CREATE TABLE d_u1 (id int PRIMARY KEY, k int);
CREATE TABLE d_u2 (id int PRIMARY KEY, k int);
INSERT INTO d_u1 VALUES (1, 1), (2, 2), (3, 2);
INSERT INTO d_u2 VALUES (1, 2), (2, 3), (3, NULL);
SELECT pgtrickle.create_stream_table('d_union_all',
    'SELECT k FROM d_u1 UNION ALL SELECT k FROM d_u2', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d_union',
    'SELECT k FROM d_u1 UNION SELECT k FROM d_u2', refresh_mode => 'DIFFERENTIAL');
SELECT k, count(*) FROM d_union_all GROUP BY k ORDER BY k NULLS FIRST;
SELECT k FROM d_union ORDER BY k NULLS FIRST;
DELETE FROM d_u1 WHERE id = 2;                 -- 2 is still in both
DELETE FROM d_u2 WHERE id = 2;                 -- 3 is in neither now
INSERT INTO d_u2 VALUES (4, 1), (5, NULL);
SELECT * FROM pgt_refresh_report('d_union_all');
SELECT * FROM pgt_refresh_report('d_union');
SELECT k, count(*) FROM d_union_all GROUP BY k ORDER BY k NULLS FIRST;
SELECT k FROM d_union ORDER BY k NULLS FIRST;
DELETE FROM d_u1 WHERE k = 2;
DELETE FROM d_u2 WHERE k = 2;                  -- 2 leaves both sides at once
SELECT * FROM pgt_refresh_report('d_union_all');
SELECT * FROM pgt_refresh_report('d_union');
SELECT k FROM d_union ORDER BY k NULLS FIRST;

--
-- A CTE referenced twice, a view, and a subquery in FROM.
--
CREATE TABLE d_t (id int PRIMARY KEY, grp text, v int);
INSERT INTO d_t VALUES (1, 'a', 10), (2, 'a', 20), (3, 'b', 30), (4, 'b', 1), (5, 'c', 50);
SELECT pgtrickle.create_stream_table('d_cte',
    'WITH big AS (SELECT id, grp, v FROM d_t WHERE v > 5)
     SELECT x.id AS x_id, y.id AS y_id, x.grp
       FROM big x JOIN big y ON x.grp = y.grp AND x.id < y.id',
    refresh_mode => 'DIFFERENTIAL');
CREATE VIEW d_view AS
SELECT t.id, t.grp, t.v, i.name FROM d_t t JOIN d_items i ON i.id = t.id;
SELECT pgtrickle.create_stream_table('d_on_view',
    'SELECT id, grp, name FROM d_view WHERE v > 5', refresh_mode => 'DIFFERENTIAL');
SELECT d.source_relid::regclass AS source, d.source_type, d.cdc_mode
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name = 'd_on_view' ORDER BY source_relid::regclass::text;
SELECT pgtrickle.create_stream_table('d_subquery',
    'SELECT s.grp, s.v2 FROM (SELECT grp, v * 2 AS v2 FROM d_t WHERE v > 1) s WHERE s.v2 < 100',
    refresh_mode => 'DIFFERENTIAL');
SELECT x_id, y_id, grp FROM d_cte ORDER BY x_id, y_id;
SELECT id, grp, name FROM d_on_view ORDER BY id;
UPDATE d_t SET v = 6 WHERE id = 4;             -- b gets a second big row
UPDATE d_t SET v = 2 WHERE id = 1;             -- a loses one
INSERT INTO d_t VALUES (6, 'c', 60), (7, 'c', 70);
INSERT INTO d_items VALUES (7, 'date', 3, NULL);
UPDATE d_items SET name = 'PEAR' WHERE id = 2;
SELECT * FROM pgt_refresh_report('d_cte');
SELECT * FROM pgt_refresh_report('d_on_view');
SELECT * FROM pgt_refresh_report('d_subquery');
SELECT x_id, y_id, grp FROM d_cte ORDER BY x_id, y_id;
SELECT id, grp, name FROM d_on_view ORDER BY id;
SELECT grp, v2 FROM d_subquery ORDER BY grp, v2;

--
-- TRUNCATE of a source and an INSERT in the same transaction: the next
-- refresh is FULL, and says why; the one after is DIFFERENTIAL again.
--
CREATE TABLE d_trunc (id int PRIMARY KEY, v int);
INSERT INTO d_trunc VALUES (1, 1), (2, 2), (3, 3);
SELECT pgtrickle.create_stream_table('d_trunc_st', 'SELECT id, v FROM d_trunc WHERE v > 1',
                                     refresh_mode => 'DIFFERENTIAL');
BEGIN;
TRUNCATE d_trunc;
INSERT INTO d_trunc VALUES (2, 20), (4, 40);
COMMIT;
SELECT * FROM pgt_refresh_report('d_trunc_st');
SELECT id, v FROM d_trunc_st ORDER BY id;
INSERT INTO d_trunc VALUES (5, 50);
SELECT * FROM pgt_refresh_report('d_trunc_st');

--
-- A refresh with nothing to do is recorded as NO_DATA.
--
SELECT * FROM pgt_refresh_report('d_trunc_st');
SELECT * FROM pgt_refresh_report('d_join3');

--
-- Sources with child tables: a partitioned table (a row moving between
-- partitions, a partition truncated), and a table with inheritance
-- children (changes to the children count).
--
CREATE TABLE d_meas (day int, v int) PARTITION BY RANGE (day);
CREATE TABLE d_meas_1 PARTITION OF d_meas FOR VALUES FROM (0) TO (10);
CREATE TABLE d_meas_2 PARTITION OF d_meas FOR VALUES FROM (10) TO (20);
INSERT INTO d_meas VALUES (1, 10), (5, 20), (15, 30);
SELECT pgtrickle.create_stream_table('d_part',
    'SELECT day / 10 AS decade, count(*) AS n, sum(v) AS total FROM d_meas GROUP BY day / 10',
    refresh_mode => 'DIFFERENTIAL');
INSERT INTO d_meas VALUES (12, 1), (19, 2), (3, 3);
DELETE FROM d_meas WHERE day = 5;
UPDATE d_meas SET day = 11 WHERE day = 1;
SELECT * FROM pgt_refresh_report('d_part');
SELECT decade, n, total FROM d_part ORDER BY decade;
TRUNCATE d_meas_2;
SELECT * FROM pgt_refresh_report('d_part');
SELECT decade, n, total FROM d_part ORDER BY decade;
CREATE TABLE d_parent (id int, v int);
CREATE TABLE d_child (note text) INHERITS (d_parent);
INSERT INTO d_parent VALUES (1, 1);
INSERT INTO d_child VALUES (2, 2, 'c');
SELECT pgtrickle.create_stream_table('d_inh', 'SELECT id, v FROM d_parent',
                                     refresh_mode => 'DIFFERENTIAL');
INSERT INTO d_child VALUES (3, 3, 'c');
UPDATE d_child SET v = 20 WHERE id = 2;
INSERT INTO d_parent VALUES (4, 4);
SELECT pgtrickle.refresh_stream_table('d_inh');
SELECT id, v FROM d_inh ORDER BY id;
SELECT pgt_check('d_inh');

--
-- A stream table reading another stream table: refresh the upstream one,
-- then the downstream one; both match their queries.
--
CREATE TABLE d_src (id int PRIMARY KEY, grp text, v int);
INSERT INTO d_src VALUES (1, 'a', 1), (2, 'a', 2), (3, 'b', 3), (4, 'c', 4);
SELECT pgtrickle.create_stream_table('d_up',
    'SELECT id, grp, v * 10 AS v10 FROM d_src WHERE v > 1', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d_down',
    'SELECT grp, count(*) AS n, sum(v10) AS total FROM d_up GROUP BY grp',
    refresh_mode => 'DIFFERENTIAL');
SELECT d.source_relid::regclass AS source, d.source_type
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name = 'd_down';
INSERT INTO d_src VALUES (5, 'b', 5), (6, 'd', 6);
UPDATE d_src SET v = 0 WHERE id = 4;           -- c leaves d_up
UPDATE d_src SET grp = 'b' WHERE id = 2;
SELECT * FROM pgt_refresh_report('d_up');
SELECT * FROM pgt_refresh_report('d_down');
SELECT grp, n, total FROM d_down ORDER BY grp;
DELETE FROM d_src WHERE grp = 'b';
SELECT * FROM pgt_refresh_report('d_up');
SELECT * FROM pgt_refresh_report('d_down');
SELECT grp, n, total FROM d_down ORDER BY grp;
SELECT * FROM pgt_refresh_report('d_up');         -- nothing new upstream
SELECT * FROM pgt_refresh_report('d_down');

--
-- Every stream table above, still DIFFERENTIAL, with its refreshes in
-- order (I: the initial fill at creation).
--
SELECT s.pgt_name, s.effective_refresh_mode AS effective, pgt_check(s.pgt_relid::regclass),
       string_agg(CASE WHEN h.initiated_by = 'INITIAL' THEN 'I:' ELSE '' END || h.action,
                  ' ' ORDER BY h.refresh_id) AS refreshes
  FROM pgtrickle.pgt_stream_tables s
  JOIN pgtrickle.pgt_refresh_history h USING (pgt_id)
 WHERE s.pgt_name LIKE 'd\_%'
 GROUP BY s.pgt_id, s.pgt_name, s.effective_refresh_mode ORDER BY s.pgt_id;

-- clean up
SELECT pgtrickle.drop_stream_table('d_up', cascade => true);
SELECT pgtrickle.drop_stream_table(format('%I.%I', pgt_schema, pgt_name))
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'd\_%' ORDER BY pgt_id DESC;
DROP VIEW d_view;
DROP TABLE d_items, d_num, d_bag, d_cust, d_prod, d_ord, d_emp, d_band, d_point, d_l, d_r,
           d_a, d_b, d_c, d_sales, d_glob, d_obs, d_hv, d_flt, d_dup, d_u1, d_u2, d_t,
           d_trunc, d_meas, d_child, d_parent, d_src;
-- no change capture is left behind
SELECT count(*) AS capture_triggers FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_cdc%';
SELECT count(*) AS change_buffers FROM pg_class
 WHERE relnamespace = 'pgtrickle_changes'::regnamespace AND relkind = 'r';
