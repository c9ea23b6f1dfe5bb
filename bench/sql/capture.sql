-- bench/sql/capture.sql: set-up of the change-capture measurements.
-- psql variables: n_orders, n_customers.
--
-- The refresh benchmark's stream tables and materialized views are dropped
-- first, then two identical copies of orders are built: orders_cap gets one
-- stream table (the filter query; DIFFERENTIAL, or AUTO if DIFFERENTIAL is
-- refused), orders_plain gets none.

SET client_min_messages = warning;

SELECT format('SELECT pgtrickle.drop_stream_table(%L)', bench_relname(q.qname, m.mode))
  FROM bench_queries q CROSS JOIN bench_modes m
 WHERE m.mode <> 'mv' AND to_regclass(bench_relname(q.qname, m.mode)) IS NOT NULL
\gexec
SELECT format('DROP MATERIALIZED VIEW %I', bench_relname(q.qname, 'mv'))
  FROM bench_queries q
 WHERE to_regclass(bench_relname(q.qname, 'mv')) IS NOT NULL
\gexec

DROP TABLE IF EXISTS orders_plain, orders_cap CASCADE;
SELECT bench_make_orders('orders_plain', :n_orders, :n_customers);
SELECT bench_make_orders('orders_cap', :n_orders, :n_customers);

SELECT bench_measure('capture_create', 'orders_cap', NULL, 0, m.mode,
                     format('SELECT pgtrickle.create_stream_table(name => %L, query => %L, schedule => %L, refresh_mode => %L)',
                            'cap_st', replace(q.sql, 'FROM orders', 'FROM orders_cap'), '1h', m.refresh_mode),
                     'cap_st')
  FROM bench_queries q, bench_modes m
 WHERE q.qname = 'q1' AND m.mode = 'diff';
SELECT bench_measure('capture_create', 'orders_cap', NULL, 0, m.mode,
                     format('SELECT pgtrickle.create_stream_table(name => %L, query => %L, schedule => %L, refresh_mode => %L)',
                            'cap_st', replace(q.sql, 'FROM orders', 'FROM orders_cap'), '1h', m.refresh_mode),
                     'cap_st')
  FROM bench_queries q, bench_modes m
 WHERE q.qname = 'q1' AND m.mode = 'auto' AND to_regclass('cap_st') IS NULL;

INSERT INTO bench_results (section, qname, value)
SELECT 'capture_triggers', 'orders_cap', count(*)
  FROM pg_trigger WHERE tgrelid = 'orders_cap'::regclass AND NOT tgisinternal;

VACUUM ANALYZE;
