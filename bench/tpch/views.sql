-- The view of TPC-H Q15 (clause 2.4.15), created once like the tables.
CREATE VIEW revenue0 (supplier_no, total_revenue) AS
SELECT l_suppkey, sum(l_extendedprice * (1 - l_discount))
  FROM lineitem
 WHERE l_shipdate >= date '1996-01-01' AND l_shipdate < date '1996-01-01' + interval '3' month
 GROUP BY l_suppkey;
