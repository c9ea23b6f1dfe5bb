#!/usr/bin/env bash
# Benchmark of issue 3: DIFFERENTIAL vs FULL vs AUTO refresh vs REFRESH
# MATERIALIZED VIEW, no-change refresh, and change-capture overhead.
# See bench/README.md.  Builds and installs pg_trickle (scripts/build.sh),
# runs a scratch server in bench/.cluster, prints a markdown report and
# writes it to bench/results/issue3-<date>.md (raw figures: .csv beside it).
#
# Environment:
#   BENCH_SCALE=1             1 = 1,000,000 orders / 100,000 customers; 0.1 for a quick run
#   BENCH_REPEAT=3            repetitions per measurement (medians are reported)
#   BENCH_PGBENCH_SECONDS=15  length of each pgbench run
#   BENCH_CAPTURE_RUNS=5      runs per table of pgbench and of the bulk UPDATE (alternating)
#   BENCH_NOCHANGE_RUNS=20    timed no-change refreshes per stream table
#   BENCH_BATCHES="0.01% 0.1% 1% 10%"   batch sizes to run (a subset is fine)
#   BENCH_CHECK=1             compare stream tables with the matviews after each batch size
#   BENCH_STATEMENT_TIMEOUT=20min  a refresh running longer is cancelled and reported n/a
#   BENCH_PORT=5498           port (the socket lives in bench/.cluster; no TCP)
#   BENCH_SKIP_BUILD=0        1 = use the installed pg_trickle as is
#   BENCH_KEEP_CLUSTER=0      1 = keep bench/.cluster (stopped) after the run
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SCALE="${BENCH_SCALE:-1}"
REPEAT="${BENCH_REPEAT:-3}"
PGB_SECS="${BENCH_PGBENCH_SECONDS:-15}"
CAP_RUNS="${BENCH_CAPTURE_RUNS:-5}"
NOCHANGE_RUNS="${BENCH_NOCHANGE_RUNS:-20}"
BATCHES="${BENCH_BATCHES:-0.01% 0.1% 1% 10%}"
CHECK="${BENCH_CHECK:-1}"
PORT="${BENCH_PORT:-5498}"
CLUSTER="$BENCH/.cluster"
NAME=run_issue3.sh
EXTRA_CONF=""
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[[ "$SCALE" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "BENCH_SCALE must be a positive number"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer"
[[ "$PGB_SECS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PGBENCH_SECONDS must be a positive integer"
[[ "$CAP_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CAPTURE_RUNS must be a positive integer"
[[ "$NOCHANGE_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_NOCHANGE_RUNS must be a positive integer"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a number"
for b in $BATCHES; do
    case "$b" in 0.01%|0.1%|1%|10%) ;; *) die "unknown batch size '$b' in BENCH_BATCHES" ;; esac
done
N_ORDERS="$(awk -v s="$SCALE" 'BEGIN { printf "%d", 1000000 * s + 0.5 }')"
N_CUSTOMERS="$(awk -v s="$SCALE" 'BEGIN { printf "%d", 100000 * s + 0.5 }')"
BULK_ROWS="$(awk -v s="$SCALE" 'BEGIN { printf "%d", 100000 * s + 0.5 }')"
[ "$N_ORDERS" -ge 1000 ] && [ "$N_CUSTOMERS" -ge 100 ] || die "BENCH_SCALE too small"

STARTED_AT="$(date +%s)"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
RESULTS="$BENCH/results"
REPORT="$RESULTS/issue3-$STAMP.md"

bench_build
bench_start_cluster
bpsql -c 'CREATE EXTENSION pg_trickle' <"/dev/null"
bpsql <"$BENCH/sql/setup.sql" >>"$PSQL_LOG"
bpsql >>"$PSQL_LOG" <<EOF
INSERT INTO bench_params VALUES
  ('scale', '$SCALE'), ('n_orders', '$N_ORDERS'), ('n_customers', '$N_CUSTOMERS'),
  ('repeat', '$REPEAT'), ('pgbench_seconds', '$PGB_SECS'), ('capture_runs', '$CAP_RUNS'),
  ('nochange_runs', '$NOCHANGE_RUNS'), ('bulk_rows', '$BULK_ROWS');
EOF

# ------------------------------------------------------------------ data

log "loading $N_ORDERS orders and $N_CUSTOMERS customers"
t0=$(date +%s)
bpsql >>"$PSQL_LOG" <<EOF
SELECT bench_make_customers($N_CUSTOMERS);
SELECT bench_make_orders('orders', $N_ORDERS, $N_CUSTOMERS);
VACUUM ANALYZE;
EOF
log "loaded in $(( $(date +%s) - t0 )) s"

log "creating 12 stream tables (DIFFERENTIAL, FULL, AUTO per query) and 4 materialized views"
bpsql >>"$PSQL_LOG" <<'EOF'
SELECT cmd FROM bench_create_cmds() AS cmd \gexec
EOF
sqlv "SELECT format('  %s_%s: %s', qname, mode,
                   CASE WHEN ms IS NULL THEN 'FAILED: ' || err
                        ELSE round(ms::numeric) || ' ms' || coalesce(', ' || info, '') END)
      FROM bench_results r JOIN bench_queries q USING (qname) JOIN bench_modes m USING (mode)
     WHERE section = 'create' ORDER BY q.ord, m.ord" >&2

# ------------------------------------------------------------------ refreshes

# All rounds run in one session, like a long-lived scheduler backend: only
# the very first refresh of each stream table meets cold backend caches
# (and medians absorb it).  Progress goes to stderr through \warn.
{
    for batch in $BATCHES; do
        for rep in $(seq 1 "$REPEAT"); do
            printf '\\set batch %s\n\\set rep %s\n' "$batch" "$rep"
            cat "$BENCH/sql/round.sql"
            cat <<'EOF'
SELECT format('[bench %s] batch %s rep %s: %s', to_char(clock_timestamp(), 'HH24:MI:SS'),
              :'batch', :rep, bench_round_summary(:'batch', :rep)) AS line \gset
\warn :line
EOF
        done
        if [ "$CHECK" = 1 ]; then
            printf '\\set batch %s\n' "$batch"
            cat <<'EOF'
SELECT bench_check(:'batch');
SELECT format('[bench %s] batch %s, stream tables vs matviews: %s', to_char(clock_timestamp(), 'HH24:MI:SS'), :'batch',
              coalesce(string_agg(qname || '_' || mode || ': ' || coalesce(value::bigint || ' rows differ', err), '; '),
                       'all equal')) AS line
  FROM bench_results WHERE section = 'check' AND batch = :'batch' AND (err IS NOT NULL OR value <> 0) \gset
\warn :line
EOF
        fi
    done
} | bpsql >>"$PSQL_LOG"

# ------------------------------------------------------------------ no change

log "no-change refreshes ($NOCHANGE_RUNS each, after a warm-up)"
bpsql -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >>"$PSQL_LOG"
bpsql >>"$PSQL_LOG" <<EOF
SELECT cmd FROM bench_nochange_cmds($NOCHANGE_RUNS) AS cmd \gexec
EOF

# The same, timed by psql: includes the commit (and its WAL flush).
for qn in $(sqlv "SELECT qname FROM bench_queries ORDER BY ord"); do
    st="${qn}_diff"
    ok="$(sqlv "SELECT count(*) FROM bench_results WHERE section = 'nochange' AND qname = '$qn'
                AND mode = 'diff' AND ms IS NOT NULL")"
    [ "$ok" -gt 0 ] || continue
    times="$({
        echo '\timing on'
        for _ in $(seq 0 "$NOCHANGE_RUNS"); do
            echo "SELECT pgtrickle.refresh_stream_table('$st');"
        done
    } | bpsql -At 2>>"$PSQL_LOG" | awk '/^Time: / { print $2 }' | tail -n +2)" || true
    rep=0
    for t in $times; do
        rep=$((rep + 1))
        sqlv "INSERT INTO bench_results (section, qname, rep, mode, ms)
            VALUES ('nochange_client', '$qn', $rep, 'diff', $t)" >/dev/null
    done
done
log "no-change: $(sqlv "SELECT string_agg(qname || ' ' || mode || ' ' || coalesce(round(m::numeric, 2)::text, 'n/a'), ', ')
                        FROM (SELECT qname, mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) m
                                FROM bench_results WHERE section = 'nochange' AND rep >= 1
                               GROUP BY 1, 2 ORDER BY 1, 2) s")"

# ------------------------------------------------------------------ capture

log "capture overhead: building orders_plain and orders_cap"
bpsql -v n_orders="$N_ORDERS" -v n_customers="$N_CUSTOMERS" <"$BENCH/sql/capture.sql" >>"$PSQL_LOG"
cap_st="$(sqlv "SELECT to_regclass('cap_st') IS NOT NULL")"
log "stream table on orders_cap: $(sqlv "SELECT coalesce(string_agg(mode || ' ' || coalesce(info, 'FAILED: ' || err), '; ' ORDER BY id), 'none')
                                    FROM bench_results WHERE section = 'capture_create'"); user triggers: $(sqlv "SELECT value FROM bench_results WHERE section = 'capture_triggers'")"

# Same starting state for every run: pending changes consumed, no dead
# rows, no dirty buffers (so both tables pay the same full-page writes).
prepare_run() {
    if [ "$cap_st" = t ]; then
        bpsql -c "SELECT pgtrickle.refresh_stream_table('cap_st')" >>"$PSQL_LOG" ||
            log "warning: refreshing cap_st failed"
    fi
    bpsql -c 'VACUUM' -c 'CHECKPOINT' >>"$PSQL_LOG"
}

for tbl in orders_plain orders_cap; do
    cat >"$CLUSTER/pgbench_$tbl.sql" <<EOF
\set id random(1, $N_ORDERS)
UPDATE $tbl SET amount = amount + 0.01 WHERE id = :id;
EOF
    chmod a+r "$CLUSTER/pgbench_$tbl.sql"
done

for rep in $(seq 1 "$CAP_RUNS"); do
    # alternate which table goes first
    if [ $((rep % 2)) -eq 1 ]; then order="orders_plain orders_cap"; else order="orders_cap orders_plain"; fi
    for tbl in $order; do
        prepare_run
        out="$("${AS_PG[@]}" "$PGBIN/pgbench" -h "$CLUSTER" -p "$PORT" -n -c 1 -j 1 -M prepared \
                 -T "$PGB_SECS" -f "$CLUSTER/pgbench_$tbl.sql" bench 2>&1)" ||
            { echo "$out" >&2; die "pgbench failed"; }
        tps="$(echo "$out" | awk '/^tps = / { print $3; exit }')"
        [ -n "$tps" ] || { echo "$out" >&2; die "no tps in pgbench output"; }
        sqlv "INSERT INTO bench_results (section, qname, rep, value) VALUES ('pgbench', '$tbl', $rep, $tps)" >/dev/null
        log "pgbench rep $rep $tbl: $tps tps"
    done
done

for rep in $(seq 1 "$CAP_RUNS"); do
    lo=$(( ((rep - 1) * BULK_ROWS) % (N_ORDERS - BULK_ROWS + 1) + 1 ))
    hi=$(( lo + BULK_ROWS - 1 ))
    if [ $((rep % 2)) -eq 1 ]; then order="orders_plain orders_cap"; else order="orders_cap orders_plain"; fi
    for tbl in $order; do
        prepare_run
        out="$(printf '%s\n' '\timing on' \
                   "UPDATE $tbl SET amount = amount + 0.01 WHERE id BETWEEN $lo AND $hi;" |
               bpsql -At 2>&1)" || { echo "$out" >&2; die "bulk UPDATE failed"; }
        ms="$(echo "$out" | awk '/^Time: / { print $2; exit }')"
        [ -n "$ms" ] || { echo "$out" >&2; die "no time in psql output"; }
        sqlv "INSERT INTO bench_results (section, qname, rep, ms) VALUES ('bulk_update', '$tbl', $rep, $ms)" >/dev/null
        log "bulk UPDATE rep $rep $tbl ($BULK_ROWS rows): $ms ms"
    done
done

# ------------------------------------------------------------------ report

ELAPSED=$(( $(date +%s) - STARTED_AT ))
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
fi
{
    echo "## pg_trickle benchmark (issue 3), $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- pg_trickle $(sqlv 'SELECT pgtrickle.version()'), commit $commit"
    echo "- $(sqlv 'SHOW server_version') on $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; load average at start: $LOADAVG"
    echo "- BENCH_SCALE=$SCALE: $N_ORDERS orders, $N_CUSTOMERS customers; BENCH_REPEAT=$REPEAT; BENCH_PGBENCH_SECONDS=$PGB_SECS; BENCH_CAPTURE_RUNS=$CAP_RUNS; batches: $BATCHES"
    echo "- server: shared_buffers=2GB, work_mem=64MB, maintenance_work_mem=1GB, max_wal_size=8GB, checkpoint_timeout=30min; durability defaults; autovacuum off (VACUUM ANALYZE + CHECKPOINT before each round)"
    if [ "$N_ORDERS" -ne 1000000 ]; then
        echo "- **BENCH_SCALE=$SCALE: the targets are defined for 1,000,000 orders (BENCH_SCALE=1); at other scales the verdicts are only indicative**"
    fi
    echo "- total run time: $((ELAPSED / 60)) min $((ELAPSED % 60)) s; load average at the end: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine adds noise)"
    echo
    bpsql -At <"$BENCH/sql/report.sql"
} >"$REPORT"
bpsql -c "\\copy (SELECT * FROM bench_results ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)" \
    >"${REPORT%.md}.csv"

cat "$REPORT"
log "report: ${REPORT#"$ROOT"/} (raw figures: ${REPORT%.md}.csv); took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
