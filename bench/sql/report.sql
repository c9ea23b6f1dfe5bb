-- bench/sql/report.sql: the markdown tables of the issue-3 benchmark.
-- Run with psql -At; every output line is one markdown line.  Medians are
-- over reps >= 1 (rep 0 is a warm-up) of the runs that succeeded.

SET client_min_messages = warning;

CREATE TEMP TABLE verdicts (section text, item text, result text);

/* ---------------------------------------------------------------- refresh */

CREATE TEMP TABLE med AS
SELECT section, qname, batch, mode,
       -- pgbench keeps its TPS in value; everything else is a time in ms
       percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN section = 'pgbench' THEN value ELSE ms END) AS ms,
       count(CASE WHEN section = 'pgbench' THEN value ELSE ms END) AS n_ok,
       count(err) AS n_err,
       string_agg(DISTINCT info, '/') AS info
  FROM bench_results
 WHERE section IN ('refresh', 'nochange', 'nochange_client', 'bulk_update', 'pgbench')
   AND (rep IS NULL OR rep >= 1)
 GROUP BY section, qname, batch, mode;

-- per (query, mode): the first error, from creation if that failed, else from refreshes
CREATE TEMP TABLE errs AS
SELECT DISTINCT ON (qname, mode) qname, mode, section, err
  FROM bench_results
 WHERE err IS NOT NULL AND section IN ('create', 'refresh', 'nochange')
 ORDER BY qname, mode, (section <> 'create'), id;

CREATE TEMP TABLE cells AS
SELECT q.ord AS qo, q.qname, q.label, q.is_agg, b.ord AS bo, b.batch,
       round(b.frac * bench_param('n_orders')::bigint) AS changes,
       CASE WHEN q.is_agg THEN b.target_agg ELSE b.target_other END AS target,
       d.ms AS diff, d.n_err AS diff_err, f.ms AS full_, f.n_err AS full_err,
       a.ms AS auto, a.info AS auto_info, a.n_err AS auto_err, m.ms AS mv, m.n_err AS mv_err
  FROM bench_queries q
 CROSS JOIN bench_batches b
  LEFT JOIN med d ON d.section = 'refresh' AND d.qname = q.qname AND d.batch = b.batch AND d.mode = 'diff'
  LEFT JOIN med f ON f.section = 'refresh' AND f.qname = q.qname AND f.batch = b.batch AND f.mode = 'full'
  LEFT JOIN med a ON a.section = 'refresh' AND a.qname = q.qname AND a.batch = b.batch AND a.mode = 'auto'
  LEFT JOIN med m ON m.section = 'refresh' AND m.qname = q.qname AND m.batch = b.batch AND m.mode = 'mv'
 WHERE EXISTS (SELECT FROM bench_results r WHERE r.section = 'batch' AND r.batch = b.batch);

INSERT INTO verdicts
SELECT 'speedup', format('%s, %s', label, batch),
       CASE WHEN diff IS NULL OR mv IS NULL THEN 'n/a'
            WHEN mv / diff >= target THEN 'PASS' ELSE 'MISS' END
  FROM cells WHERE target IS NOT NULL;
INSERT INTO verdicts
SELECT 'auto', format('%s, %s', label, batch),
       CASE WHEN auto IS NULL OR full_ IS NULL THEN 'n/a'
            WHEN auto / full_ <= 1.25 THEN 'PASS' ELSE 'MISS' END
  FROM cells;

CREATE FUNCTION pg_temp.cell(ms float8, n_err bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT bench_fmt(ms) || CASE WHEN ms IS NOT NULL AND n_err > 0 THEN format(' (%s failed)', n_err) ELSE '' END
$$;

SELECT format('### Refresh after one change batch (median of %s, ms)', bench_param('repeat'));
SELECT '';
SELECT 'Each batch is applied once (70% UPDATE, 15% INSERT, 15% DELETE, one transaction); then every '
       'stream table and the materialized view of each query is refreshed once, each in its own '
       'transaction, in an order that rotates between repetitions.  Times are server-side '
       '(clock_timestamp() around the statement, commit excluded).  Speedup = MATVIEW / DIFFERENTIAL.';
SELECT '';
SELECT '| Query | Batch | Changes | DIFFERENTIAL | FULL | AUTO (did) | MATVIEW | Speedup | Target | | AUTO/FULL | ≤ 1.25× | FULL/MATVIEW |';
SELECT '|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|---|--:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |',
              label, batch, changes,
              pg_temp.cell(diff, diff_err), pg_temp.cell(full_, full_err),
              pg_temp.cell(auto, auto_err) || coalesce(' (' || auto_info || ')', ''),
              pg_temp.cell(mv, mv_err),
              CASE WHEN diff IS NULL OR mv IS NULL THEN 'n/a' ELSE bench_ratio(mv / diff) END,
              coalesce('≥ ' || target || '×', '—'),
              CASE WHEN target IS NULL THEN '' WHEN diff IS NULL OR mv IS NULL THEN 'n/a'
                   WHEN mv / diff >= target THEN 'PASS' ELSE 'MISS' END,
              CASE WHEN auto IS NULL OR full_ IS NULL THEN 'n/a' ELSE bench_ratio(auto / full_) END,
              CASE WHEN auto IS NULL OR full_ IS NULL THEN 'n/a'
                   WHEN auto / full_ <= 1.25 THEN 'PASS' ELSE 'MISS' END,
              CASE WHEN full_ IS NULL OR mv IS NULL THEN 'n/a' ELSE bench_ratio(full_ / mv) END)
  FROM cells ORDER BY qo, bo;
SELECT '';
SELECT 'Applying a batch to orders (with every stream table above on it), median ms: ' ||
       string_agg(format('%s: %s', b.batch, bench_fmt(t.ms)), ', ' ORDER BY b.ord) || '.'
  FROM bench_batches b
  JOIN (SELECT batch, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms
          FROM bench_results WHERE section = 'batch' GROUP BY batch) t USING (batch);
SELECT '';

-- correctness: stream tables compared with the materialized view after the last batch of each size
SELECT CASE
         WHEN NOT EXISTS (SELECT FROM bench_results WHERE section = 'check')
           THEN 'Contents were not compared with the materialized views (BENCH_CHECK=0).'
         WHEN NOT EXISTS (SELECT FROM bench_results WHERE section = 'check' AND (err IS NOT NULL OR value <> 0))
           THEN format('Contents: after the last repetition of every batch size, all %s stream tables '
                       'held exactly the rows of their materialized view.',
                       (SELECT count(DISTINCT (qname, mode)) FROM bench_results WHERE section = 'check'))
         ELSE 'Contents: **stream tables that differ from their materialized view** '
              '(rows in one but not the other, after the last repetition of the batch size): ' ||
              (SELECT string_agg(format('%s_%s after %s: %s', qname, mode, batch,
                                        coalesce(value::bigint::text || ' rows', err)), '; ' ORDER BY id)
                 FROM bench_results WHERE section = 'check' AND (err IS NOT NULL OR value <> 0))
       END;
SELECT '';

/* ---------------------------------------------------------------- no change */

SELECT format('### Refresh with no pending changes (median of %s)', bench_param('nochange_runs'));
SELECT '';
SELECT 'Server-side: timed inside the transaction (commit excluded).  Client: psql \timing of the '
       'autocommitted statement, which includes the commit and its WAL flush.';
SELECT '';
SELECT '| Query | DIFFERENTIAL ms | DIFFERENTIAL ms (client) | AUTO ms (did) | Target | |';
SELECT '|---|--:|--:|--:|--:|---|';
INSERT INTO verdicts
SELECT 'nochange', q.label,
       CASE WHEN d.ms IS NULL THEN 'n/a' WHEN d.ms < 2 THEN 'PASS' ELSE 'MISS' END
  FROM bench_queries q
  LEFT JOIN med d ON d.section = 'nochange' AND d.qname = q.qname AND d.mode = 'diff';
SELECT format('| %s | %s | %s | %s | < 2 ms | %s |',
              q.label, pg_temp.cell(d.ms, d.n_err), bench_fmt(c.ms),
              pg_temp.cell(a.ms, a.n_err) || coalesce(' (' || a.info || ')', ''),
              CASE WHEN d.ms IS NULL THEN 'n/a' WHEN d.ms < 2 THEN 'PASS' ELSE 'MISS' END)
  FROM bench_queries q
  LEFT JOIN med d ON d.section = 'nochange' AND d.qname = q.qname AND d.mode = 'diff'
  LEFT JOIN med a ON a.section = 'nochange' AND a.qname = q.qname AND a.mode = 'auto'
  LEFT JOIN med c ON c.section = 'nochange_client' AND c.qname = q.qname AND c.mode = 'diff'
 ORDER BY q.ord;
SELECT '';

/* ---------------------------------------------------------------- capture */

CREATE FUNCTION pg_temp.range(lo float8, hi float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lo IS NULL OR lo = hi THEN '' ELSE format(' (%s–%s)', bench_fmt(lo), bench_fmt(hi)) END
$$;

CREATE TEMP TABLE cap AS
SELECT -- do the min-max ranges of the two sides overlap?
       (SELECT max(value) FILTER (WHERE qname = 'orders_cap') >= min(value) FILTER (WHERE qname = 'orders_plain')
           AND max(value) FILTER (WHERE qname = 'orders_plain') >= min(value) FILTER (WHERE qname = 'orders_cap')
          FROM bench_results WHERE section = 'pgbench') AS tps_overlap,
       (SELECT max(ms) FILTER (WHERE qname = 'orders_cap') >= min(ms) FILTER (WHERE qname = 'orders_plain')
           AND max(ms) FILTER (WHERE qname = 'orders_plain') >= min(ms) FILTER (WHERE qname = 'orders_cap')
          FROM bench_results WHERE section = 'bulk_update') AS upd_overlap, (SELECT ms FROM med WHERE section = 'pgbench' AND qname = 'orders_plain') AS tps_without,
       (SELECT ms FROM med WHERE section = 'pgbench' AND qname = 'orders_cap') AS tps_with,
       (SELECT ms FROM med WHERE section = 'bulk_update' AND qname = 'orders_plain') AS upd_without,
       (SELECT ms FROM med WHERE section = 'bulk_update' AND qname = 'orders_cap') AS upd_with,
       (SELECT pg_temp.range(min(value), max(value)) FROM bench_results WHERE section = 'pgbench' AND qname = 'orders_plain') AS tps_without_r,
       (SELECT pg_temp.range(min(value), max(value)) FROM bench_results WHERE section = 'pgbench' AND qname = 'orders_cap') AS tps_with_r,
       (SELECT pg_temp.range(min(ms), max(ms)) FROM bench_results WHERE section = 'bulk_update' AND qname = 'orders_plain') AS upd_without_r,
       (SELECT pg_temp.range(min(ms), max(ms)) FROM bench_results WHERE section = 'bulk_update' AND qname = 'orders_cap') AS upd_with_r,
       (SELECT info FROM bench_results WHERE section = 'capture_create' AND ms IS NOT NULL
         ORDER BY id DESC LIMIT 1) AS st_mode,
       (SELECT string_agg(mode || ': ' || err, '; ' ORDER BY id) FROM bench_results
         WHERE section = 'capture_create' AND err IS NOT NULL) AS st_errors,
       (SELECT value FROM bench_results WHERE section = 'capture_triggers' ORDER BY id DESC LIMIT 1) AS triggers;

-- without a capture trigger on orders_cap there is nothing to judge
CREATE TEMP TABLE capv AS
SELECT CASE WHEN tps_with IS NULL OR tps_without IS NULL OR triggers = 0 THEN 'n/a'
            WHEN tps_with / tps_without >= 0.75 THEN 'PASS' ELSE 'MISS' END AS tps,
       CASE WHEN upd_with IS NULL OR upd_without IS NULL OR triggers = 0 THEN 'n/a'
            WHEN upd_with / upd_without <= 1.6 THEN 'PASS' ELSE 'MISS' END AS upd
  FROM cap;
INSERT INTO verdicts
SELECT 'capture', 'single-row UPDATE TPS', tps FROM capv
UNION ALL
SELECT 'capture', 'bulk UPDATE time', upd FROM capv;

SELECT '### Change-capture overhead on the source table';
SELECT '';
SELECT format('Two identical copies of orders (%s rows): orders_cap, the source of one stream table '
              '(the filter query, %s), and orders_plain, with none.  '
              'User triggers on orders_cap while measuring: %s.  Runs alternate between the two tables; '
              'each run starts after VACUUM and CHECKPOINT.',
              bench_param('n_orders'),
              coalesce('refresh mode ' || st_mode, 'not created'),
              coalesce(triggers::int::text, '?'))
  FROM cap;
SELECT '**No user trigger on orders_cap: nothing is captured, so these figures only show the noise level (verdicts n/a).**'
  FROM cap WHERE triggers = 0;
SELECT '';
SELECT '| Measure | Without stream table | With stream table | Ratio | Target | |';
SELECT '|---|--:|--:|--:|--:|---|';
SELECT format('| single-row UPDATE TPS (pgbench, 1 client, %s s; median (range) of %s) | %s | %s | %s | ≥ 0.75 | %s |',
              bench_param('pgbench_seconds'), bench_param('capture_runs'),
              bench_fmt(tps_without) || tps_without_r, bench_fmt(tps_with) || tps_with_r,
              CASE WHEN tps_with IS NULL OR tps_without IS NULL THEN 'n/a'
                   ELSE to_char(tps_with / tps_without, 'FM990.00') END,
              capv.tps || CASE WHEN tps_overlap THEN ' (ranges overlap)' ELSE '' END)
  FROM cap, capv;
SELECT format('| %s-row UPDATE, ms incl. commit (median (range) of %s) | %s | %s | %s | ≤ 1.6 | %s |',
              bench_param('bulk_rows'), bench_param('capture_runs'),
              bench_fmt(upd_without) || upd_without_r, bench_fmt(upd_with) || upd_with_r,
              CASE WHEN upd_with IS NULL OR upd_without IS NULL THEN 'n/a'
                   ELSE to_char(upd_with / upd_without, 'FM990.00') END,
              capv.upd || CASE WHEN upd_overlap THEN ' (ranges overlap)' ELSE '' END)
  FROM cap, capv;
SELECT '';
SELECT 'Stream table on orders_cap: ' || st_errors FROM cap WHERE st_errors IS NOT NULL;
SELECT '' FROM cap WHERE st_errors IS NOT NULL;

/* ---------------------------------------------------------------- summary */

SELECT '### Summary';
SELECT '';
SELECT '| Targets | PASS | MISS | n/a |';
SELECT '|---|--:|--:|--:|';
SELECT format('| %s | %s | %s | %s |',
              CASE section WHEN 'speedup' THEN 'DIFFERENTIAL vs REFRESH MATERIALIZED VIEW'
                           WHEN 'auto' THEN 'AUTO ≤ 1.25× FULL'
                           WHEN 'nochange' THEN 'no-change refresh < 2 ms'
                           WHEN 'capture' THEN 'capture overhead' END,
              count(*) FILTER (WHERE result = 'PASS'),
              count(*) FILTER (WHERE result = 'MISS'),
              count(*) FILTER (WHERE result = 'n/a'))
  FROM verdicts
 GROUP BY section
 ORDER BY min(CASE section WHEN 'speedup' THEN 1 WHEN 'auto' THEN 2 WHEN 'nochange' THEN 3 ELSE 4 END);
SELECT '';

SELECT 'Errors (first per query and mode):';
SELECT format('- %s %s: %s: %s', e.qname,
              coalesce(m.refresh_mode, 'MATVIEW'),
              CASE e.section WHEN 'create' THEN 'create failed' ELSE e.section || ' failed' END,
              regexp_replace(e.err, '\s+', ' ', 'g'))
  FROM errs e LEFT JOIN bench_modes m USING (mode)
 ORDER BY e.qname, m.ord;
SELECT '- none' WHERE NOT EXISTS (SELECT FROM errs);
