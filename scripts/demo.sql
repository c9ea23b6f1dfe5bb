-- pg_trickle demo, run by scripts/demo.sh in a freshly created database "demo".

CREATE EXTENSION pg_trickle;

CREATE TABLE orders (id int PRIMARY KEY, region text, amount numeric);
INSERT INTO orders VALUES
    (1, 'north', 120.00),
    (2, 'north',  80.50),
    (3, 'south', 200.00),
    (4, 'east',   15.25),
    (5, 'east',   42.00),
    (6, 'west',   99.99);

\echo
\echo '== A stream table: the GROUP BY result, stored and kept fresh'
SELECT pgtrickle.create_stream_table('sales_by_region',
    'SELECT region, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY region',
    schedule => '1m', refresh_mode => 'FULL');
SELECT * FROM sales_by_region ORDER BY region;

\echo
\echo '== Change the source; the stream table lags until its next refresh'
INSERT INTO orders VALUES (7, 'south', 310.00), (8, 'west', 5.00);
UPDATE orders SET amount = amount * 2 WHERE region = 'north';
DELETE FROM orders WHERE id = 4;
SELECT * FROM sales_by_region ORDER BY region;

\echo
\echo '== Refresh now instead of waiting for the 1 minute schedule'
SELECT pgtrickle.refresh_stream_table('sales_by_region');
SELECT * FROM sales_by_region ORDER BY region;

\echo
\echo '== What happened, and how to recreate it elsewhere'
SELECT * FROM pgtrickle.get_refresh_history('sales_by_region');
SELECT pgtrickle.export_definition('sales_by_region');

\echo
\echo '== IMMEDIATE: maintained by the writing statement itself, no refresh'
SELECT pgtrickle.create_stream_table('big_orders',
    'SELECT region, count(*) AS orders FROM orders WHERE amount >= 100 GROUP BY region',
    refresh_mode => 'IMMEDIATE');
INSERT INTO orders VALUES (9, 'east', 150.00);
SELECT region, orders FROM big_orders ORDER BY region;
BEGIN;
DELETE FROM orders WHERE region = 'south';
SELECT region, orders FROM big_orders ORDER BY region;
ROLLBACK;
SELECT region, orders FROM big_orders ORDER BY region;
