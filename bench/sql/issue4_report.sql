-- bench/sql/issue4_report.sql: the markdown tables of the issue-4
-- benchmark, from bench4_results (run with psql -At).

\pset footer off

SELECT '### (a) Commit-to-visible latency';
SELECT '';
SELECT 'One client session (a procedure: INSERT, COMMIT, then a new statement every ~1 ms until the row is visible); '
       || (SELECT value FROM bench4_params WHERE name = 'gap') || ' s of quiet before each sample; '
       || (SELECT value FROM bench4_params WHERE name = 'samples') || ' samples after one warm-up.';
SELECT '';
SELECT '| stream table | samples | median | p90 | p99 | max | target (median) | verdict | last refresh age at commit (median) |';
SELECT '|---|---|---|---|---|---|---|---|---|';
WITH s AS (
    SELECT section, count(ms) AS n, count(*) - count(ms) AS lost,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           max(ms) AS mx,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS age
      FROM bench4_results
     WHERE section IN ('latency_single', 'latency_chain') AND rep > 0
     GROUP BY section
), t(section, label, target, ord) AS (
    VALUES ('latency_single', 'one ''1s'' DIFFERENTIAL', 50.0, 1),
           ('latency_chain', '3-level ''calculated'' chain (end of chain)', 100.0, 2)
)
SELECT format('| %s | %s%s | %s ms | %s ms | %s ms | %s ms | < %s ms | %s | %s s |',
              t.label, s.n, CASE WHEN s.lost > 0 THEN format(' (+%s never visible)', s.lost) ELSE '' END,
              round(s.p50::numeric, 1), round(s.p90::numeric, 1), round(s.p99::numeric, 1), round(s.mx::numeric, 1),
              t.target::int,
              CASE WHEN s.lost > 0 OR s.p50 IS NULL THEN 'MISS' WHEN s.p50 < t.target THEN 'PASS' ELSE 'MISS' END,
              round(s.age::numeric, 2))
  FROM t LEFT JOIN s USING (section) ORDER BY t.ord;
SELECT '';
SELECT '### (b) Scheduler overhead';
SELECT '';
SELECT 'CPU of the scheduler process (utime + stime from /proc/<pid>/stat) over the window.  Passes: distinct '
       || 'pg_stat_activity.state_change values of the scheduler, sampled every ~2 ms from another database (a lower bound).  '
       || 'Transaction ids: taken cluster-wide during the window, minus those of the benchmark client (each pass that writes '
       || 'anything takes at least one).  WAL: bytes of WAL inserted during the window.  Catalog growth: change of pg_total_relation_size(''pgtrickle.pgt_stream_tables'') during the window (autovacuum is off).';
SELECT '';
SELECT '| load | stream tables | window | scheduler CPU | share of one core | passes (≥) | passes/s | CPU per pass | scheduler xids/s | WAL/s | catalog growth | RSS after |';
SELECT '|---|---|---|---|---|---|---|---|---|---|---|---|';
WITH c AS (
    SELECT r.info AS load, r.ms AS cpu_ms, r.value AS secs,
           (SELECT value FROM bench4_results p WHERE p.section = 'passes' AND p.info = r.info) AS passes,
           (SELECT value FROM bench4_results p WHERE p.section = 'rss_kb' AND p.info = r.info) AS rss,
           (SELECT value FROM bench4_results p WHERE p.section = 'n_tables' AND p.info = r.info) AS ntab,
           (SELECT value FROM bench4_results p WHERE p.section = 'xids' AND p.info = r.info) AS xids,
           (SELECT value FROM bench4_results p WHERE p.section = 'wal_bytes' AND p.info = r.info) AS wal,
           (SELECT value FROM bench4_results p WHERE p.section = 'catalog_growth' AND p.info = r.info) AS growth,
           r.id
      FROM bench4_results r WHERE r.section = 'cpu'
)
SELECT format('| %s | %s | %s s | %s ms (%s ms/s) | %s%% | %s | %s | %s ms | %s | %s kB | %s kB | %s MB |',
              load, ntab::int, round(secs::numeric, 1), round(cpu_ms::numeric), round((cpu_ms / secs)::numeric, 1),
              round((cpu_ms / secs / 10)::numeric, 2),
              coalesce(passes::int::text, 'n/a'), coalesce(round((passes / secs)::numeric, 2)::text, 'n/a'),
              CASE WHEN passes > 0 THEN round((cpu_ms / passes)::numeric, 2)::text ELSE 'n/a' END,
              coalesce(round((xids / secs)::numeric, 1)::text, 'n/a'),
              coalesce(round((wal / secs / 1024)::numeric, 1)::text, 'n/a'),
              coalesce(round((growth / 1024)::numeric)::text, 'n/a'),
              coalesce(round((rss / 1024)::numeric, 1)::text, 'n/a'))
  FROM c ORDER BY id;
