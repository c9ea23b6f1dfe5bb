#!/usr/bin/env bash
# TPC-H benchmark: for each of the 22 queries (bench/tpch/queries, unmodified),
# the time of a DIFFERENTIAL refresh of its stream table against REFRESH
# MATERIALIZED VIEW of the same query, measured side by side after the same
# change, at a given scale factor.  A change is RF1 then RF2 (clause 2.27):
# SF * 1500 new orders with their lines, then as many of the oldest orders
# deleted with theirs, i.e. 0.1% of the orders replaced.  A query the
# differential engine refuses is created AUTO and reported as such.
# Prints a markdown report and writes it to bench/results/tpch-<date>.md
# (raw figures: .csv beside it).  See bench/README.md.
#
# Environment:
#   TPCH_SF=1                 scale factor
#   BENCH_CYCLES=3            changes; medians over them are reported
#   BENCH_CHECK=1             compare every stream table with its matview after each cycle
#   BENCH_PORT=5496           port (Unix socket only, in the cluster directory)
#   BENCH_SKIP_BUILD=0        1 = use the installed pg_trickle as is
#   BENCH_KEEP_CLUSTER=0      1 = keep the cluster directory (stopped) after the run
#   BENCH_STATEMENT_TIMEOUT=20min
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SF="${TPCH_SF:-1}"
CYCLES="${BENCH_CYCLES:-3}"
CHECK="${BENCH_CHECK:-1}"
PORT="${BENCH_PORT:-5496}"
CLUSTER="$BENCH/results/.cluster-tpch"
NAME=run_tpch.sh
EXTRA_CONF=""
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[[ "$SF" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "TPCH_SF must be a positive number"
[[ "$CYCLES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CYCLES must be a positive integer"

STAMP="$(date +%Y-%m-%d_%H%M%S)"
REPORT="$BENCH/results/tpch-$STAMP.md"
CSV="$BENCH/results/tpch-$STAMP.csv"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"
STARTED_AT="$(date +%s)"

bench_build
bench_start_cluster

log "loading schema and generator; generating scale factor $SF"
for f in schema.sql dbgen.sql views.sql; do
    bpsql -f "$BENCH/tpch/$f" </dev/null >>"$PSQL_LOG"
done
t0=$(date +%s)
sqlv "SELECT tpch_generate($SF)" >/dev/null
bpsql -c 'VACUUM ANALYZE' -c 'CREATE EXTENSION pg_trickle' </dev/null
log "generated in $(( $(date +%s) - t0 ))s: $(sqlv 'SELECT count(*) FROM lineitem') lineitems"

# bench_ms(sql): milliseconds one statement takes, measured in the server
bpsql </dev/null -c "CREATE FUNCTION bench_ms(stmt text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN EXECUTE stmt; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END \$\$"

QUERIES=()
declare -A MODE
for f in "$BENCH"/tpch/queries/q*.sql; do
    q="$(basename "$f" .sql)"
    QUERIES+=("$q")
    text="$(sed -e 's/;[[:space:]]*$//' "$f")"
    bpsql </dev/null -c "CREATE MATERIALIZED VIEW mv_$q AS $text" >>"$PSQL_LOG"
    if bpsql </dev/null -c "SELECT pgtrickle.create_stream_table('st_$q', \$q\$$text\$q\$, '1h', 'DIFFERENTIAL')" \
        >>"$PSQL_LOG" 2>>"$PSQL_LOG"; then
        MODE[$q]=DIFFERENTIAL
    else
        bpsql </dev/null -c "SELECT pgtrickle.create_stream_table('st_$q', \$q\$$text\$q\$, '1h', 'AUTO')" >>"$PSQL_LOG"
        MODE[$q]="AUTO ($(sqlv "SELECT effective FROM pgtrickle.explain_refresh_mode('st_$q')"))"
    fi
    log "$q: ${MODE[$q]}"
done
bpsql -c 'VACUUM ANALYZE' </dev/null

echo "cycle,query,mode,differential_ms,matview_ms" >"$CSV"
declare -A DIFF_MS MV_MS
for cycle in $(seq 1 "$CYCLES"); do
    log "cycle $cycle: RF1 + RF2"
    sqlv "SELECT tpch_rf1()" >/dev/null
    sqlv "SELECT tpch_rf2()" >/dev/null
    for q in "${QUERIES[@]}"; do
        d="$(sqlv "SELECT round(bench_ms(\$s\$SELECT pgtrickle.refresh_stream_table('st_$q')\$s\$)::numeric, 1)")"
        m="$(sqlv "SELECT round(bench_ms('REFRESH MATERIALIZED VIEW mv_$q')::numeric, 1)")"
        echo "$cycle,$q,${MODE[$q]},$d,$m" >>"$CSV"
        DIFF_MS[$q]="${DIFF_MS[$q]:-} $d"
        MV_MS[$q]="${MV_MS[$q]:-} $m"
    done
    if [ "$CHECK" = 1 ]; then
        for q in "${QUERIES[@]}"; do
            cols="$(sqlv "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'st_$q'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_\\_pgt%'")"
            diff="$(sqlv "SELECT (SELECT count(*) FROM (SELECT $cols FROM st_$q EXCEPT ALL SELECT * FROM mv_$q) a) + (SELECT count(*) FROM (SELECT * FROM mv_$q EXCEPT ALL SELECT $cols FROM st_$q) b)")"
            [ "$diff" = 0 ] || die "cycle $cycle: st_$q differs from mv_$q by $diff rows"
        done
        log "cycle $cycle: every stream table equals its matview"
    fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

{
    echo "## TPC-H, scale factor $SF: DIFFERENTIAL refresh vs REFRESH MATERIALIZED VIEW"
    echo
    echo "$(date -u +%Y-%m-%d) at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), load average at start $LOADAVG;"
    echo "$CYCLES cycles of RF1 + RF2 (0.1% of the orders replaced), medians; run time $(( $(date +%s) - STARTED_AT ))s."
    echo
    echo "| query | mode | refresh ms | matview ms | speedup |"
    echo "|---|---|---:|---:|---:|"
    for q in "${QUERIES[@]}"; do
        d="$(echo "${DIFF_MS[$q]}" | median)"
        m="$(echo "${MV_MS[$q]}" | median)"
        s="$(awk -v d="$d" -v m="$m" 'BEGIN { if (d > 0) printf "%.1f", m / d; else print "n/a" }')"
        echo "| $q | ${MODE[$q]} | $d | $m | ${s}x |"
    done
} | tee "$REPORT"
echo
log "report: $REPORT; raw figures: $CSV"
