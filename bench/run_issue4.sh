#!/usr/bin/env bash
# Benchmark of issue 4: the scheduler.  (a) commit-to-visible latency of a
# '1s' stream table and of a 3-level 'calculated' chain, driven by one
# long-lived client session; (b) CPU of the scheduler process with 500 idle
# stream tables, and with the same 500 while one source changes 10 times a
# second.  See bench/README.md.  Builds and installs pg_trickle
# (scripts/build.sh), runs a scratch server in bench/results/.cluster-issue4
# (git-ignored, removed at the end), prints a markdown report and writes it
# to bench/results/issue4-<date>.md (raw figures: .csv beside it).
#
# Environment:
#   BENCH_SAMPLES=30          latency samples per stream table (after one warm-up)
#   BENCH_GAP=1.1             seconds of quiet before each latency sample
#   BENCH_IDLE_TABLES=500     stream tables (each on its own one-row source) for (b)
#   BENCH_CPU_SECONDS=30      length of each CPU measurement window
#   BENCH_BUSY_PERIOD=0.1     seconds between the UPDATEs of the busy measurement (0 = skip it)
#   BENCH_PORT=5497           port (Unix socket only, in the cluster directory)
#   BENCH_SKIP_BUILD=0        1 = use the installed pg_trickle as is
#   BENCH_KEEP_CLUSTER=0      1 = keep the cluster directory (stopped) after the run
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SAMPLES="${BENCH_SAMPLES:-30}"
GAP="${BENCH_GAP:-1.1}"
NIDLE="${BENCH_IDLE_TABLES:-500}"
CPU_SECS="${BENCH_CPU_SECONDS:-30}"
BUSY_PERIOD="${BENCH_BUSY_PERIOD:-0.1}"
PORT="${BENCH_PORT:-5497}"
RESULTS="$BENCH/results"
CLUSTER="$RESULTS/.cluster-issue4"
NAME=run_issue4.sh
# Durability stays at its defaults: every refresh commits with a WAL flush,
# as it would in production.  The scheduler runs with the default
# pg_trickle settings (scheduler_interval_ms = 1000,
# default_schedule_seconds = 1).
EXTRA_CONF="shared_buffers = 256MB
max_locks_per_transaction = 256
pg_trickle.enabled = on"
BG_PID=""
bench_exit_hook() {
    if [ -n "$BG_PID" ] && kill -0 "$BG_PID" 2>/dev/null; then
        kill "$BG_PID" 2>/dev/null || true
    fi
}
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[[ "$SAMPLES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SAMPLES must be a positive integer"
[[ "$GAP" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_GAP must be a number of seconds"
[[ "$NIDLE" =~ ^[1-9][0-9]*$ ]] || die "BENCH_IDLE_TABLES must be a positive integer"
[[ "$CPU_SECS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CPU_SECONDS must be a positive integer"
[[ "$BUSY_PERIOD" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_BUSY_PERIOD must be a number of seconds"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a number"

STARTED_AT="$(date +%s)"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
REPORT="$RESULTS/issue4-$STAMP.md"
CLK_TCK="$(getconf CLK_TCK)"

bench_build
bench_start_cluster
DB=postgres bpsql <"$BENCH/sql/issue4_sampler.sql" >>"$PSQL_LOG"
bpsql -c 'CREATE EXTENSION pg_trickle'
bpsql <"$BENCH/sql/issue4_setup.sql" >>"$PSQL_LOG"
bpsql >>"$PSQL_LOG" <<EOF
INSERT INTO bench4_params VALUES ('samples', '$SAMPLES'), ('gap', '$GAP'), ('idle_tables', '$NIDLE'),
  ('cpu_seconds', '$CPU_SECS'), ('busy_period', '$BUSY_PERIOD');
EOF

scheduler_pid() {
    DB=postgres sqlv "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'bench'"
}
for _ in $(seq 1 300); do
    [ -n "$(scheduler_pid)" ] && break
    sleep 0.1
done
[ -n "$(scheduler_pid)" ] || die "no pg_trickle scheduler for database bench after 30 s"
log "scheduler of database bench: pid $(scheduler_pid)"

# ------------------------------------------------------------------ (a) latency

for kind in single chain; do
    log "latency ($kind): $SAMPLES samples + 1 warm-up, ${GAP}s apart (about $(awk -v n="$SAMPLES" -v g="$GAP" 'BEGIN { printf "%d", (n + 1) * (g + 0.1) }') s)"
    bpsql -c "CALL bench_latency('$kind', $SAMPLES, $GAP)" >>"$PSQL_LOG"
    log "  median $(sqlv "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM bench4_results WHERE section = 'latency_$kind' AND rep > 0") ms"
done

# ------------------------------------------------------------------ (b) overhead

# cpu_ms PID: utime + stime of PID in milliseconds (fields 14 and 15 of
# /proc/PID/stat; the command name in field 2 may contain spaces)
cpu_ms() {
    local f
    f="$(sed 's/^.*) //' "/proc/$1/stat")" || return 1
    awk -v t="$CLK_TCK" '{ printf "%.0f", ($12 + $13) * 1000 / t }' <<<"$f"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
now_s() { date +%s.%N; }

# measure LOAD: CPU of the scheduler over BENCH_CPU_SECONDS while the
# sampler counts its passes; also the transaction ids taken and the WAL
# written meanwhile (the sampler takes none; in the busy measurement the
# client's UPDATEs are subtracted: each is one transaction, counted by v),
# and how much pgtrickle.pgt_stream_tables grew (autovacuum is off)
measure() {
    local load="$1" pid c0 c1 t0 t1 secs passes x0 x1 w0 w1 v0 v1 s0 s1
    pid="$(scheduler_pid)"
    [ -n "$pid" ] || die "no scheduler running"
    v0="$(sqlv 'SELECT v FROM idle_src_1')"
    s0="$(sqlv "SELECT pg_total_relation_size('pgtrickle.pgt_stream_tables')")"
    x0="$(sqlv 'SELECT txid_current()')"
    w0="$(sqlv 'SELECT pg_current_wal_insert_lsn()')"
    c0="$(cpu_ms "$pid")"
    t0="$(now_s)"
    DB=postgres bpsql -c "CALL bench_count_passes('$load', $pid, $CPU_SECS)" >>"$PSQL_LOG"
    c1="$(cpu_ms "$pid")" || die "the scheduler (pid $pid) exited during the measurement"
    t1="$(now_s)"
    x1="$(sqlv 'SELECT txid_current()')"
    w1="$(sqlv 'SELECT pg_current_wal_insert_lsn()')"
    v1="$(sqlv 'SELECT v FROM idle_src_1')"
    s1="$(sqlv "SELECT pg_total_relation_size('pgtrickle.pgt_stream_tables')")"
    [ "$(scheduler_pid)" = "$pid" ] || die "the scheduler restarted during the measurement"
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    passes="$(DB=postgres sqlv "SELECT count(*) FROM bench4_passes WHERE run = '$load'")"
    sqlv "INSERT INTO bench4_results (section, ms, value, info) VALUES ('cpu', $((c1 - c0)), $secs, '$load');
          INSERT INTO bench4_results (section, value, info) VALUES ('passes', $passes, '$load'), ('rss_kb', $(rss_kb "$pid"), '$load'),
                 ('xids', $x1 - $x0 - 1 - ($v1 - $v0), '$load'),
                 ('wal_bytes', pg_wal_lsn_diff('$w1', '$w0'), '$load'),
                 ('catalog_growth', $s1 - $s0, '$load'),
                 ('n_tables', (SELECT count(*) FROM pgtrickle.pgt_stream_tables), '$load')" >/dev/null
    log "  $load: $((c1 - c0)) ms CPU in ${secs}s, $passes passes (lower bound), $((x1 - x0 - 1 - (v1 - v0))) scheduler transaction ids"
}

log "creating $NIDLE idle stream tables"
t0="$(now_s)"
bpsql -c "CALL bench_idle_tables($NIDLE)" >>"$PSQL_LOG"
t1="$(now_s)"
sqlv "INSERT INTO bench4_results (section, value, info) VALUES ('create_idle', $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'), '$NIDLE stream tables')" >/dev/null
bpsql -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >>"$PSQL_LOG"
# Settle (not measured): the scheduler refreshes each new stream table once
# when it first sees it.
sleep 5

log "scheduler CPU, $NIDLE idle stream tables, ${CPU_SECS}s"
measure "idle"

if awk -v p="$BUSY_PERIOD" 'BEGIN { exit !(p > 0) }'; then
    log "scheduler CPU, $NIDLE stream tables, one source updated every ${BUSY_PERIOD}s, ${CPU_SECS}s"
    bpsql -c "CALL bench_busy($CPU_SECS + 2, $BUSY_PERIOD)" >>"$PSQL_LOG" 2>&1 &
    BG_PID=$!
    sleep 1
    measure "one source updated every ${BUSY_PERIOD}s"
    wait "$BG_PID" || die "the busy client failed"
    BG_PID=""
fi

# sanity: the stream tables the benchmark wrote to are right
sleep 2
CHECK="$(sqlv "SELECT concat_ws(', ',
    CASE WHEN (SELECT count(*) FROM lat_st) = (SELECT count(*) FROM lat_src) THEN NULL ELSE 'lat_st differs from lat_src' END,
    CASE WHEN (SELECT count(*) FROM ch_c) = (SELECT count(DISTINCT g) FROM ch_src) THEN NULL ELSE 'ch_c differs from ch_src' END,
    CASE WHEN (SELECT v FROM idle_st_1) = (SELECT v FROM idle_src_1) THEN NULL ELSE 'idle_st_1 differs from idle_src_1' END,
    CASE WHEN (SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE status <> 'ACTIVE') = 0 THEN NULL
         ELSE (SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE status <> 'ACTIVE') || ' stream tables not ACTIVE' END)")"

# ------------------------------------------------------------------ report

ELAPSED=$(( $(date +%s) - STARTED_AT ))
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
fi
{
    echo "## pg_trickle benchmark (issue 4: scheduler), $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- pg_trickle $(sqlv 'SELECT pgtrickle.version()'), commit $commit"
    echo "- $(sqlv 'SHOW server_version') on $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; load average at start: $LOADAVG, at the end: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "- settings: durability defaults (synchronous_commit on), autovacuum off, pg_trickle defaults (scheduler_interval_ms $(sqlv 'SHOW pg_trickle.scheduler_interval_ms'), default_schedule_seconds $(sqlv 'SHOW pg_trickle.default_schedule_seconds'))"
    echo "- creating the $NIDLE idle stream tables took $(sqlv "SELECT round(value::numeric, 1) FROM bench4_results WHERE section = 'create_idle'") s; total run time $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
    echo "- check after the run: ${CHECK:-all stream tables match their sources, all ACTIVE}"
    echo
    bpsql -At <"$BENCH/sql/issue4_report.sql"
} >"$REPORT"
bpsql -c "\\copy (SELECT * FROM bench4_results ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)" \
    >"${REPORT%.md}.csv"

cat "$REPORT"
log "report: ${REPORT#"$ROOT"/} (raw figures: ${REPORT%.md}.csv); took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
