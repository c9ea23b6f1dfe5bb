--
-- safety_sublinks: subqueries in places the delta rules do not look at
-- (issue 12, item 10a).  A subquery in the arguments of a function in FROM
-- (LATERAL or not), in VALUES, in LIMIT/OFFSET or in a window frame reads
-- a source whose changes no delta rule would see.  DIFFERENTIAL and
-- IMMEDIATE refuse such queries (0A000, DETAIL naming the place, the same
-- reason validate_query gives); AUTO falls back to FULL, which is exact.
-- Forms the engine does maintain (subqueries in WHERE, under OR, in a join
-- condition, aggregate scalar subqueries in the select list) stay exact.
--
SET client_min_messages = warning;

CREATE TABLE sq_b (k int PRIMARY KEY, v int);
CREATE TABLE sq_a (id int PRIMARY KEY, x int);
INSERT INTO sq_b VALUES (1, 1), (2, 2), (3, 3);
INSERT INTO sq_a VALUES (1, 1), (2, 5), (3, 2), (4, NULL);

CREATE TABLE sq_queries (n text PRIMARY KEY, q text);
INSERT INTO sq_queries VALUES
 -- refused
 ('srf',       'SELECT g FROM generate_series(1, (SELECT max(k) FROM sq_b)) g'),
 ('srf_case',  'SELECT g FROM generate_series(1, CASE WHEN EXISTS (SELECT 1 FROM sq_b WHERE k > 3) THEN 5 ELSE 2 END) g'),
 ('lateral',   'SELECT id, g FROM sq_a, LATERAL generate_series(1, (SELECT count(*)::int FROM sq_b WHERE sq_b.k <= sq_a.x)) g'),
 ('rowsfrom',  'SELECT a, b FROM ROWS FROM (generate_series(1, 2), generate_series(1, (SELECT max(k) FROM sq_b))) r(a, b)'),
 ('in_sub',    'SELECT g FROM (SELECT g FROM generate_series(1, (SELECT max(k) FROM sq_b)) g) s'),
 ('in_cte',    'WITH c AS (SELECT g FROM generate_series(1, (SELECT max(k) FROM sq_b)) g) SELECT g FROM c'),
 ('in_union',  'SELECT id FROM sq_a UNION ALL SELECT g FROM generate_series(1, (SELECT max(k) FROM sq_b)) g'),
 ('values',    'SELECT v FROM (VALUES ((SELECT max(k) FROM sq_b)), (1)) t(v)'),
 ('limit',     'SELECT id FROM sq_a ORDER BY id LIMIT (SELECT count(*) FROM sq_b) - 2'),
 ('offset',    'SELECT id FROM sq_a ORDER BY id OFFSET (SELECT count(*) FROM sq_b) - 3'),
 ('frame',     'SELECT id, sum(x) OVER (ORDER BY id ROWS BETWEEN (SELECT count(*) FROM sq_b) - 3 PRECEDING AND CURRENT ROW) AS s FROM sq_a'),
 ('order_lim', 'SELECT id FROM sq_a ORDER BY (SELECT max(k) FROM sq_b) % 7 - id, id LIMIT 2'),
 ('sel_case',  'SELECT id, CASE WHEN EXISTS (SELECT 1 FROM sq_b WHERE sq_b.k = sq_a.x) THEN 1 ELSE 0 END AS e FROM sq_a'),
 ('agg_arg',   'SELECT sum(x + (SELECT max(k) FROM sq_b)) AS s FROM sq_a'),
 -- maintained
 ('sel_fn',    'SELECT id, abs((SELECT max(k) FROM sq_b) - x) AS d FROM sq_a'),
 ('sel_cmp',   'SELECT id, CASE WHEN x > (SELECT max(k) FROM sq_b) THEN 1 ELSE 0 END AS d FROM sq_a'),
 ('where_or',  'SELECT id FROM sq_a WHERE x > 4 OR EXISTS (SELECT 1 FROM sq_b WHERE sq_b.k = sq_a.x)'),
 ('join_on',   'SELECT sq_a.id, sq_b.k FROM sq_a JOIN sq_b ON sq_b.k = sq_a.x AND EXISTS (SELECT 1 FROM sq_b b2 WHERE b2.k = sq_a.id)'),
 ('having',    'SELECT x, count(*) AS n FROM sq_a GROUP BY x HAVING count(*) < (SELECT count(*) FROM sq_b)'),
 -- its columns become scalar subqueries, pulled up as joins (their copies
 -- in the join's alias list are not evaluated)
 ('lat_agg',   'SELECT sq_a.id, s.n, s.m FROM sq_a CROSS JOIN LATERAL (SELECT count(*) AS n, max(v) AS m FROM sq_b WHERE sq_b.k = sq_a.x) s');

-- what validate_query says
SELECT n, v.valid, v.differential, v.reason
  FROM sq_queries, LATERAL pgtrickle.validate_query(q) v ORDER BY n;

-- create in every mode: the outcome, and whether a refusal gives the
-- reason validate_query gave
CREATE TEMP TABLE sq_outcome AS
SELECT n, m,
       (SELECT string_agg(r, ' | ') FROM pgt_try(format(
            'SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)',
            'sq_' || n || '_' || lower(m), q, m)) r
         WHERE r NOT LIKE 'DETAIL%' AND r NOT LIKE 'HINT%') AS outcome,
       q
  FROM sq_queries, unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE', 'AUTO', 'FULL']) m;
SELECT o.n, o.m, o.outcome,
       CASE WHEN o.outcome <> 'OK' THEN
            (SELECT v.reason FROM pgtrickle.validate_query(o.q) v) =
            (SELECT substr(r, 9) FROM pgt_try(format(
                'SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)',
                'sq_x', o.q, o.m)) r WHERE r LIKE 'DETAIL%')
       END AS same_reason
  FROM sq_outcome o ORDER BY o.n, o.m;
SELECT pgt_name, refresh_mode, effective_refresh_mode
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'sq\_%' AND refresh_mode = 'AUTO'
 ORDER BY 1;

-- changes of the table the subqueries read (and of the other one); the
-- counts of sq_b stay at 3 or more (LIMIT, OFFSET, frame)
INSERT INTO sq_b VALUES (4, 4), (5, 5);
UPDATE sq_a SET x = 4 WHERE id = 1;
SELECT pgt_name, pgt_check(pgt_relid) FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name LIKE 'sq\_%' AND refresh_mode = 'IMMEDIATE' ORDER BY 1;
SELECT s.pgt_name, r.action, r.pgt_check
  FROM pgtrickle.pgt_stream_tables s, LATERAL pgt_refresh_report(s.pgt_relid) r
 WHERE s.pgt_name LIKE 'sq\_%' AND s.refresh_mode <> 'IMMEDIATE' ORDER BY 1;
DELETE FROM sq_b WHERE k IN (1, 5);
UPDATE sq_b SET k = 6 WHERE k = 2;
INSERT INTO sq_a VALUES (5, 6);
SELECT pgt_name, pgt_check(pgt_relid) FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name LIKE 'sq\_%' AND refresh_mode = 'IMMEDIATE' ORDER BY 1;
SELECT s.pgt_name, r.action, r.pgt_check
  FROM pgtrickle.pgt_stream_tables s, LATERAL pgt_refresh_report(s.pgt_relid) r
 WHERE s.pgt_name LIKE 'sq\_%' AND s.refresh_mode <> 'IMMEDIATE' ORDER BY 1;

SELECT count(pgtrickle.drop_stream_table(pgt_name)) AS dropped
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'sq\_%';
DROP TABLE sq_queries, sq_a, sq_b;
