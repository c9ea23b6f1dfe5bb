--
-- api_create: pgtrickle.create_stream_table() with every parameter, every
-- kind of schedule, names that need qualifying or quoting, and the query
-- shapes that decide how a row is identified.  Every stream table is
-- compared with its query (pgt_check) after creation and again after the
-- sources change and it is refreshed.
--
CREATE SCHEMA myschema;
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, region text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                     amount numeric(10,2), status text, meta json);
CREATE TABLE events (kind text, payload text);      -- no key, duplicate rows
CREATE TABLE empty_src (k int, v int);
INSERT INTO customers VALUES
    (1, 'Ann', 'north'), (2, 'Bob', 'south'), (3, 'Cid', NULL), (4, 'Dee', NULL);
INSERT INTO orders VALUES
    (1, 1, 10.00, 'open', '{"a": 1}'),
    (2, 1, 20.50, 'done', '{"a": [1, 2]}'),
    (3, 2, 5.25, 'open', NULL),
    (4, 3, 7.00, NULL, '{}'),
    (5, 4, 1.00, 'open', '"s"');
INSERT INTO events VALUES
    ('click', 'x'), ('click', 'x'), ('click', 'x'), ('view', NULL), ('view', NULL);

-- All lists of stream tables below are in creation order.
CREATE VIEW created AS
SELECT format('%I.%I', pgt_schema, pgt_name) AS st, schedule, refresh_mode,
       effective_refresh_mode AS effective, status, is_populated, row_identity,
       identity_columns
  FROM pgtrickle.pgt_stream_tables ORDER BY pgt_id;

--
-- Every parameter, by name.
--
SELECT pgtrickle.create_stream_table(
    name => 'c_all_params',
    query => 'SELECT id, amount FROM orders WHERE amount > 5',
    schedule => '30s',
    refresh_mode => 'FULL',
    initialize => true,
    diamond_consistency => 'none',
    diamond_schedule_policy => 'slowest',
    cdc_mode => 'trigger',
    append_only => true,
    pooler_compatibility_mode => true,
    partition_by => NULL,
    max_differential_joins => 3,
    max_delta_fraction => 0.25);
SELECT * FROM pgt_catalog('c_all_params');
SELECT id, amount FROM c_all_params ORDER BY id;
SELECT pgt_check('c_all_params');

-- Keyword arguments are case-insensitive and trimmed.
SELECT pgtrickle.create_stream_table('c_keywords', 'SELECT id FROM orders',
    schedule => ' 5M ', refresh_mode => ' full ', diamond_consistency => 'NONE',
    diamond_schedule_policy => 'Slowest', cdc_mode => 'Auto');
SELECT schedule, refresh_mode, diamond_consistency, diamond_schedule_policy, cdc_mode
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'c_keywords';
SELECT pgt_check('c_keywords');

--
-- Only name and query: schedule 'calculated' (stored as NULL) and refresh
-- mode AUTO, which is DIFFERENTIAL when the query allows it (and FULL with a
-- NOTICE saying why otherwise: see c_volatile below).
--
SELECT pgtrickle.create_stream_table('c_defaults', 'SELECT id, status FROM orders');
SELECT * FROM pgt_catalog('c_defaults');
SELECT pgt_check('c_defaults');
-- AUTO given explicitly behaves the same.
SELECT pgtrickle.create_stream_table('c_auto', 'SELECT id FROM orders',
                                     refresh_mode => 'AUTO');
SELECT pgtrickle.create_stream_table('c_full', 'SELECT id FROM orders',
                                     refresh_mode => 'FULL');
SELECT st, schedule, refresh_mode, effective, status, is_populated
  FROM created WHERE st IN ('public.c_defaults', 'public.c_auto', 'public.c_full');
SELECT pgt_check('c_auto'), pgt_check('c_full');

--
-- Schedules of every kind, stored in canonical form.
--
SELECT pgtrickle.create_stream_table('c_sched_' || n, 'SELECT id FROM orders',
                                     schedule => s, refresh_mode => 'FULL')
  FROM (VALUES (1, '30s'), (2, '5m'), (3, '1h30m'), (4, '1d'), (5, '90'),
               (6, '2h 15m'), (7, '1w'), (8, '*/5 * * * *'), (9, '@hourly'),
               (10, '@daily'), (11, '*/10 * * * * *'), (12, 'calculated'),
               (13, 'CALCULATED'), (14, '0 9 * * MON-FRI')) AS v(n, s)
 ORDER BY n;
SELECT pgt_name, schedule, pgt_check(pgt_relid::regclass)
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'c\_sched\_%'
 ORDER BY pgt_id;

--
-- initialize => false: the stream table is created empty and unpopulated;
-- the first refresh fills it.
--
SELECT pgtrickle.create_stream_table('c_uninit', 'SELECT id, amount FROM orders',
                                     refresh_mode => 'FULL', initialize => false);
SELECT status, is_populated FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'c_uninit';
SELECT count(*) FROM c_uninit;
SELECT count(*) AS history_rows FROM pgtrickle.pgt_refresh_history h
  JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) WHERE s.pgt_name = 'c_uninit';
SELECT pgt_check('c_uninit');
SELECT pgtrickle.refresh_stream_table('c_uninit');
SELECT status, is_populated FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'c_uninit';
SELECT count(*) FROM c_uninit;
SELECT pgt_check('c_uninit');

--
-- Names: schema-qualified, quoted, case-folded, and unqualified names
-- created in current_schema().
--
SELECT pgtrickle.create_stream_table('myschema.c_qualified', 'SELECT id FROM orders',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('"My Table"', 'SELECT id, name FROM customers',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('myschema."Odd Name"',
                                     'SELECT name AS "Customer Name" FROM customers',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('MixedCase', 'SELECT 1 AS one',
                                     refresh_mode => 'FULL');
SET search_path = myschema, public;
SELECT pgtrickle.create_stream_table('c_in_path', 'SELECT id FROM orders',
                                     refresh_mode => 'FULL');
RESET search_path;
SELECT pgt_schema, pgt_name, c.oid IS NOT NULL AS storage_exists
  FROM pgtrickle.pgt_stream_tables s
  LEFT JOIN pg_class c ON c.oid = s.pgt_relid
                      AND c.relname = s.pgt_name
                      AND c.relnamespace = s.pgt_schema::regnamespace
 WHERE pgt_name IN ('c_qualified', 'My Table', 'Odd Name', 'mixedcase', 'c_in_path')
 ORDER BY pgt_id;
SELECT id, name FROM "My Table" ORDER BY id;
SELECT "Customer Name" FROM myschema."Odd Name" ORDER BY 1;
SELECT pgt_check('myschema.c_qualified'), pgt_check('"My Table"'),
       pgt_check('myschema."Odd Name"'), pgt_check('mixedcase'),
       pgt_check('myschema.c_in_path');
-- The stored query is schema-qualified, so it reads the same tables
-- whatever the search_path of the session that refreshes it.
SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'c_in_path';
SET search_path = myschema;
CREATE TABLE myschema.orders (id int);      -- a decoy with the same name
SELECT pgtrickle.refresh_stream_table('c_in_path');
RESET search_path;
SELECT count(*) FROM myschema.c_in_path;
SELECT pgt_check('myschema.c_in_path');
DROP TABLE myschema.orders;

--
-- A query reading a view: the view and its base tables are all sources.
--
CREATE VIEW customer_orders AS
SELECT c.name, c.region, o.amount, o.status
  FROM customers c JOIN orders o ON o.customer_id = c.id;
SELECT pgtrickle.create_stream_table('c_view',
    'SELECT name, amount FROM customer_orders WHERE status = ''open''',
    refresh_mode => 'FULL');
SELECT d.source_relid::regclass AS source, d.source_type, d.cdc_mode
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name = 'c_view' ORDER BY source_relid::regclass::text;
-- the storage table depends on each of them in pg_depend
SELECT refobjid::regclass AS depends_on, deptype
  FROM pg_depend
 WHERE classid = 'pg_class'::regclass AND objid = 'c_view'::regclass
   AND refclassid = 'pg_class'::regclass
 ORDER BY refobjid::regclass::text;
SELECT name, amount FROM c_view ORDER BY name, amount;
SELECT pgt_check('c_view');

--
-- Row identity.  GROUP BY and DISTINCT results are sets keyed by their
-- grouping columns, a global aggregate is a single row, everything else
-- is a multiset identified by all its columns.
--
SELECT pgtrickle.create_stream_table('c_by_region',
    'SELECT region, count(*) AS n, sum(o.amount) AS total
       FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
      GROUP BY region', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_distinct',
    'SELECT DISTINCT status FROM orders', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_total',
    'SELECT count(*) AS n, sum(amount) AS total FROM orders', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_expr_key',
    'SELECT upper(status) AS s, count(*) AS n FROM orders GROUP BY upper(status)',
    refresh_mode => 'FULL');
-- the grouping column is not in the output, so groups can repeat
SELECT pgtrickle.create_stream_table('c_hidden_key',
    'SELECT sum(amount) AS total FROM orders GROUP BY customer_id',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_two_keys',
    'SELECT customer_id, status, count(*) AS n FROM orders GROUP BY status, customer_id',
    refresh_mode => 'FULL');
SELECT st, row_identity, identity_columns FROM created
 WHERE st IN ('public.c_by_region', 'public.c_distinct', 'public.c_total',
              'public.c_expr_key', 'public.c_hidden_key', 'public.c_two_keys',
              'public.c_defaults');
-- NULL is one group, stored once
SELECT region, n, total FROM c_by_region ORDER BY region NULLS FIRST;
SELECT status FROM c_distinct ORDER BY status NULLS FIRST;
SELECT n, total FROM c_total;
SELECT total FROM c_hidden_key ORDER BY total;
SELECT pgt_check('c_by_region'), pgt_check('c_distinct'), pgt_check('c_total'),
       pgt_check('c_expr_key'), pgt_check('c_hidden_key'), pgt_check('c_two_keys');
-- The storage layout: the visible columns, then pg_trickle's hidden __pgt_
-- columns; an index on __pgt_row_id, a unique index on the group key, the
-- guard trigger.
\d c_by_region
-- A multiset result has no unique index; a singleton has none either.
SELECT c.relname, count(i.indexrelid) AS indexes,
       count(i.indexrelid) FILTER (WHERE i.indisunique) AS unique_indexes
  FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relname IN ('c_by_region', 'c_distinct', 'c_total', 'c_defaults', 'c_two_keys')
   AND c.relnamespace = 'public'::regnamespace
 GROUP BY c.relname ORDER BY c.relname;

--
-- A keyless source with duplicate rows: the duplicates are kept.
--
SELECT pgtrickle.create_stream_table('c_events', 'SELECT kind, payload FROM events',
                                     refresh_mode => 'FULL');
SELECT kind, payload, count(*) FROM c_events GROUP BY kind, payload ORDER BY kind;
SELECT pgt_check('c_events');

--
-- json columns (json has no equality operator).
--
SELECT pgtrickle.create_stream_table('c_json', 'SELECT id, meta FROM orders',
                                     refresh_mode => 'FULL');
SELECT id, meta FROM c_json ORDER BY id;
SELECT pgt_check('c_json');
-- DISTINCT over jsonb keys the result on the jsonb value
SELECT pgtrickle.create_stream_table('c_jsonb_keys',
    'SELECT DISTINCT meta::jsonb AS m FROM orders', refresh_mode => 'FULL');
SELECT row_identity, identity_columns FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name = 'c_jsonb_keys';
SELECT pgt_check('c_jsonb_keys');

--
-- An empty source: an empty stream table that is nonetheless populated;
-- a global aggregate over it has exactly one row.
--
SELECT pgtrickle.create_stream_table('c_empty', 'SELECT k, v FROM empty_src',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_empty_agg',
    'SELECT count(*) AS n, sum(v) AS s FROM empty_src', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_empty_grouped',
    'SELECT k, count(*) AS n FROM empty_src GROUP BY k', refresh_mode => 'FULL');
SELECT st, status, is_populated, row_identity FROM created
 WHERE st IN ('public.c_empty', 'public.c_empty_agg', 'public.c_empty_grouped');
SELECT count(*) FROM c_empty;
SELECT n, s FROM c_empty_agg;
SELECT count(*) FROM c_empty_grouped;
SELECT pgt_check('c_empty'), pgt_check('c_empty_agg'), pgt_check('c_empty_grouped');

--
-- A stream table reading another stream table.
--
SELECT pgtrickle.create_stream_table('c_st_on_st',
    'SELECT region, total FROM c_by_region WHERE total IS NOT NULL',
    refresh_mode => 'FULL');
SELECT d.source_relid::regclass AS source, d.source_type, d.cdc_mode
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name = 'c_st_on_st';
SELECT pgt_check('c_st_on_st');

--
-- Other query shapes, all multisets identified by all their columns.
--
SELECT pgtrickle.create_stream_table('c_union_all',
    'SELECT id AS k FROM customers UNION ALL SELECT customer_id FROM orders',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_union',
    'SELECT region AS r FROM customers UNION SELECT status FROM orders',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_cte',
    'WITH big AS (SELECT * FROM orders WHERE amount > 5)
     SELECT c.name, b.amount FROM big b JOIN customers c ON c.id = b.customer_id',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_window',
    'SELECT id, customer_id, rank() OVER (PARTITION BY customer_id ORDER BY amount, id) AS rnk
       FROM orders', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_srf',
    'SELECT id, generate_series(1, customer_id) AS g FROM orders', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_lateral',
    'SELECT c.id, o.amount FROM customers c
       LEFT JOIN LATERAL (SELECT max(amount) AS amount FROM orders WHERE customer_id = c.id) o ON true',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_rollup',
    'SELECT region, status, count(*) AS n
       FROM customers c JOIN orders o ON o.customer_id = c.id
      GROUP BY ROLLUP (region, status)', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_sublink',
    'SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)',
    refresh_mode => 'FULL');
SELECT st, row_identity, identity_columns FROM created
 WHERE st IN ('public.c_union_all', 'public.c_union', 'public.c_cte', 'public.c_window',
              'public.c_srf', 'public.c_lateral', 'public.c_rollup', 'public.c_sublink');
SELECT pgt_check('c_union_all'), pgt_check('c_union'), pgt_check('c_cte'), pgt_check('c_window'),
       pgt_check('c_srf'), pgt_check('c_lateral'), pgt_check('c_rollup'), pgt_check('c_sublink');
SELECT count(*) FROM c_union_all;
SELECT region, status, n FROM c_rollup ORDER BY region NULLS FIRST, status NULLS FIRST, n;
-- every source is recorded once, whatever level of the query reads it
SELECT s.pgt_name, string_agg(d.source_relid::regclass::text, ', ' ORDER BY d.source_relid::regclass::text) AS sources
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name IN ('c_cte', 'c_lateral', 'c_sublink', 'c_union')
 GROUP BY s.pgt_name ORDER BY s.pgt_name;

--
-- Other kinds of source: a partitioned table, a materialized view.
--
CREATE TABLE measurements (day int, v int) PARTITION BY RANGE (day);
CREATE TABLE measurements_1 PARTITION OF measurements FOR VALUES FROM (0) TO (10);
CREATE TABLE measurements_2 PARTITION OF measurements FOR VALUES FROM (10) TO (20);
INSERT INTO measurements VALUES (1, 10), (5, 20), (15, 30);
CREATE MATERIALIZED VIEW order_totals AS
SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
SELECT pgtrickle.create_stream_table('c_partitioned',
    'SELECT day / 10 AS decade, sum(v) AS total FROM measurements GROUP BY day / 10',
    refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('c_matview',
    'SELECT customer_id, total FROM order_totals WHERE total > 5', refresh_mode => 'FULL');
SELECT s.pgt_name, d.source_relid::regclass AS source, d.source_type, d.cdc_mode
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name IN ('c_partitioned', 'c_matview') ORDER BY 1, 2::text;
SELECT decade, total FROM c_partitioned ORDER BY decade;
SELECT pgt_check('c_partitioned'), pgt_check('c_matview');

--
-- Column types: typmods, collations, arrays, domains, enums and composite
-- values are kept in the storage table.
--
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (id positive, m mood, tags text[], amount numeric(8,3), code varchar(4),
                    pt point);
INSERT INTO typed VALUES (1, 'ok', '{a,b}', 1.5, 'ab', '(1,2)'),
                         (2, 'happy', NULL, NULL, NULL, NULL),
                         (3, 'sad', '{}', 0, '', '(0,0)');
SELECT pgtrickle.create_stream_table('c_types',
    'SELECT id, m, tags, amount, code, code COLLATE "C" AS code_c, pt, t AS whole_row
       FROM typed t', refresh_mode => 'FULL');
SELECT attname, format_type(atttypid, atttypmod) AS type,
       CASE WHEN attcollation <> 0 THEN attcollation::regcollation::text END AS collation
  FROM pg_attribute WHERE attrelid = 'c_types'::regclass AND attnum > 0 ORDER BY attnum;
SELECT id, m, tags, amount, code, pt, whole_row FROM c_types ORDER BY id;
SELECT pgt_check('c_types');
-- a volatile function (a deterministic one here) forces FULL, and the
-- NOTICE names it
CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT $1 * 2';
SELECT pgtrickle.create_stream_table('c_volatile', 'SELECT id, twice(id) AS t2 FROM typed');
SELECT defining_query, refresh_mode_reason FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name = 'c_volatile';
SELECT pgt_check('c_volatile');

--
-- Every stream table so far.
--
SELECT st, schedule, refresh_mode, effective, status, is_populated, row_identity
  FROM created;

--
-- Change every source.  Inside one transaction nothing else can refresh
-- the stream tables: they are stale until refreshed, then match again.
--
BEGIN;
INSERT INTO customers VALUES (5, 'Eve', 'north'), (6, 'Fay', NULL);
UPDATE customers SET region = 'south' WHERE id = 1;
INSERT INTO orders VALUES
    (6, 5, 99.99, 'open', '{"b": true}'),
    (7, 6, 0.50, 'new', '[]'),
    (8, 6, 3.00, NULL, NULL);
UPDATE orders SET status = 'done', amount = amount + 1 WHERE id = 1;
DELETE FROM orders WHERE id = 5;
INSERT INTO events VALUES ('click', 'x'), ('view', NULL), ('scroll', 'y');
DELETE FROM events WHERE kind = 'click' AND ctid = (SELECT min(ctid) FROM events WHERE kind = 'click');
INSERT INTO empty_src VALUES (1, 10), (1, 20), (NULL, 5);
INSERT INTO measurements VALUES (12, 1), (19, 2), (3, 3);
DELETE FROM measurements WHERE day = 5;
REFRESH MATERIALIZED VIEW order_totals;
INSERT INTO typed VALUES (4, 'ok', '{c}', 2.25, 'xyz', '(3,4)');
UPDATE typed SET m = 'happy', tags = '{z}' WHERE id = 1;
-- (mixedcase reads no table; c_st_on_st reads only c_by_region, which has
-- not been refreshed yet)
SELECT st, pgt_check(st::regclass) = 'ok' AS matches FROM created;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT pgt_schema, pgt_name FROM pgtrickle.pgt_stream_tables ORDER BY pgt_id
    LOOP
        PERFORM pgtrickle.refresh_stream_table(format('%I.%I', r.pgt_schema, r.pgt_name));
    END LOOP;
END
$$;
SELECT st, pgt_check(st::regclass) FROM created;
COMMIT;

SELECT region, n, total FROM c_by_region ORDER BY region NULLS FIRST;
SELECT region, total FROM c_st_on_st ORDER BY region;
SELECT kind, payload, count(*) FROM c_events GROUP BY kind, payload ORDER BY kind;
SELECT n, s FROM c_empty_agg;
SELECT k, n FROM c_empty_grouped ORDER BY k NULLS FIRST;

-- ORDER BY without LIMIT is accepted, with a WARNING that it orders nothing
SELECT pgtrickle.create_stream_table('c_ordered',
    'SELECT id, name FROM customers ORDER BY name', refresh_mode => 'DIFFERENTIAL');
SELECT count(*) = (SELECT count(*) FROM customers) FROM c_ordered;

-- The stream tables stay for api_zz_drop_extension.
DROP VIEW created;
