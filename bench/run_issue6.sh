#!/usr/bin/env bash
# Benchmark of issue 6: the cost IMMEDIATE maintenance adds to writes.
# Every figure is a ratio against the same operation on an identical table
# that no stream table reads, measured side by side in one run (pgbench
# rounds alternate between the two; the median round counts).  Tables have
# 1M rows: an aggregate source (1,000 groups; count/sum/avg), orders (1M)
# joined with customers (100k, so a customer has 10 orders).  See
# bench/README.md.  Builds and installs pg_trickle (scripts/build.sh), runs a
# scratch server in bench/results/.cluster-issue6 (git-ignored, removed at
# the end), prints a markdown report and writes it to
# bench/results/issue6-<date>.md (raw figures: .csv beside it).
#
# Environment:
#   BENCH_SECONDS=8        length of each pgbench run
#   BENCH_ROUNDS=3         rounds per case (median taken)
#   BENCH_PORT=5498        port (Unix socket only, in the cluster directory)
#   BENCH_SKIP_BUILD=0     1 = use the installed pg_trickle as is
#   BENCH_KEEP_CLUSTER=0   1 = keep the cluster directory (stopped) after the run
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
SECS="${BENCH_SECONDS:-8}"
ROUNDS="${BENCH_ROUNDS:-3}"
PORT="${BENCH_PORT:-5498}"
RESULTS="$BENCH/results"
CLUSTER="$RESULTS/.cluster-issue6"
NAME=run_issue6.sh
# durability at its defaults: every transaction commits with a WAL flush
EXTRA_CONF="max_connections = 50"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a number"

STARTED_AT="$(date +%s)"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
REPORT="$RESULTS/issue6-$STAMP.md"
CSV="${REPORT%.md}.csv"
WORK="$CLUSTER/scripts"

bench_build
bench_start_cluster
mkdir -p "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$WORK"
bpsql -c 'CREATE EXTENSION pg_trickle'

log "loading 2 x (1M-row aggregate source, 100k customers, 1M orders)"
bpsql >>"$PSQL_LOG" <<'EOF'
CREATE TABLE agg_base (id int PRIMARY KEY, g int NOT NULL, v int NOT NULL);
INSERT INTO agg_base SELECT i, i % 1000, i % 97 FROM generate_series(1, 1000000) i;
CREATE TABLE agg_ivm (LIKE agg_base INCLUDING ALL);
INSERT INTO agg_ivm SELECT * FROM agg_base;
CREATE TABLE agg_ivm3 (LIKE agg_base INCLUDING ALL);
INSERT INTO agg_ivm3 SELECT * FROM agg_base;
CREATE TABLE cust_base (cid int PRIMARY KEY, name text NOT NULL, region int NOT NULL);
INSERT INTO cust_base SELECT i, 'customer ' || i, i % 25 FROM generate_series(1, 100000) i;
CREATE TABLE ord_base (oid int PRIMARY KEY, cid int NOT NULL, amt int NOT NULL);
INSERT INTO ord_base SELECT i, 1 + i % 100000, i % 1000 FROM generate_series(1, 1000000) i;
CREATE INDEX ON ord_base (cid);
CREATE TABLE cust_ivm (LIKE cust_base INCLUDING ALL);
INSERT INTO cust_ivm SELECT * FROM cust_base;
CREATE TABLE ord_ivm (LIKE ord_base INCLUDING ALL);
INSERT INTO ord_ivm SELECT * FROM ord_base;
CREATE SEQUENCE ins_base START 2000001;
CREATE SEQUENCE ins_ivm START 2000001;
CREATE SEQUENCE del_base;
CREATE SEQUENCE del_ivm;
VACUUM ANALYZE;
SELECT pgtrickle.create_stream_table('agg_st',
    'SELECT g, count(*) AS n, sum(v) AS total, avg(v) AS mean FROM agg_ivm GROUP BY g',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('agg3_a',
    'SELECT g, count(*) AS n, sum(v) AS total, avg(v) AS mean FROM agg_ivm3 GROUP BY g',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('agg3_b',
    'SELECT g % 100 AS g100, count(*) AS n, sum(v) AS total FROM agg_ivm3 GROUP BY g % 100',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('agg3_c',
    'SELECT g % 10 AS g10, count(*) AS n, avg(v) AS mean FROM agg_ivm3 GROUP BY g % 10',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('join_st',
    'SELECT o.oid, o.amt, c.name, c.region FROM ord_ivm o JOIN cust_ivm c USING (cid)',
    refresh_mode => 'IMMEDIATE');
VACUUM ANALYZE;
CHECKPOINT;
EOF

# pgbench scripts: <case>_<kind>.sql, kind = base or ivm (or ivm3)
script() { "${AS_PG[@]}" tee "$WORK/$1.sql" >/dev/null; }
for k in base ivm ivm3; do
    printf '\\set id random(1, 1000000)\nUPDATE agg_%s SET v = v + 1 WHERE id = :id;\n' "$k" | script "aggupd_$k"
done
for k in base ivm; do
    printf '\\set c random(1, 100000)\nINSERT INTO ord_%s VALUES (nextval(%s), :c, 5);\n' "$k" "'ins_$k'" | script "ordins_$k"
    printf 'DELETE FROM ord_%s WHERE oid = (SELECT nextval(%s));\n' "$k" "'del_$k'" | script "orddel_$k"
    printf '\\set c random(1, 100000)\nUPDATE cust_%s SET name = name || %s WHERE cid = :c;\n' "$k" "'.'" | script "custupd_$k"
done

echo "case,kind,clients,round,tps" >"$CSV"
# tps CASE KIND CLIENTS ROUND: one pgbench run, prints its TPS
tps() {
    local out
    out="$("${AS_PG[@]}" "$PGBIN/pgbench" -h "$CLUSTER" -p "$PORT" -n -f "$WORK/$1_$2.sql" \
        -T "$SECS" -c "$3" -j "$3" bench 2>&1)" || { echo "$out" >&2; die "pgbench $1_$2 failed"; }
    local t
    t="$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')"
    echo "$1,$2,$3,$4,$t" >>"$CSV"
    echo "$t"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# run_case CASE CLIENTS KINDS...: ROUNDS rounds, kinds alternating
run_case() {
    local c="$1" clients="$2"
    shift 2
    for r in $(seq 1 "$ROUNDS"); do
        for k in "$@"; do
            log "$c $k, $clients client(s), round $r: $(tps "$c" "$k" "$clients" "$r") tps"
        done
        bpsql -c 'VACUUM' >>"$PSQL_LOG"
    done
}
med() { awk -F, -v c="$1" -v k="$2" -v n="$3" '$1 == c && $2 == k && $3 == n { print $5 }' "$CSV" | median; }

run_case aggupd 1 base ivm ivm3
run_case aggupd 4 base ivm
run_case ordins 1 base ivm
run_case orddel 1 base ivm
run_case custupd 1 base ivm

# 100,000-row UPDATEs, timed in one session, alternating, fresh ranges
log "100,000-row UPDATEs"
bigtime() {
    bpsql -At <<EOF | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
CHECKPOINT;
\\timing on
$1
EOF
}
for r in $(seq 1 "$ROUNDS"); do
    # above the ids the DELETE runs consumed, so both tables update 100,000 rows
    lo=$(( 300000 + (r - 1) * 100000 + 1 )); hi=$(( 300000 + r * 100000 ))
    for k in base ivm; do
        t="$(bigtime "UPDATE agg_$k SET v = v + 1 WHERE id BETWEEN $lo AND $hi;")"
        echo "bigagg,$k,1,$r,$t" >>"$CSV"
        log "100k aggregate UPDATE $k round $r: $t ms"
        t="$(bigtime "UPDATE ord_$k SET amt = amt + 1 WHERE oid BETWEEN $lo AND $hi;")"
        echo "bigjoin,$k,1,$r,$t" >>"$CSV"
        log "100k join UPDATE $k round $r: $t ms"
    done
    bpsql -c 'VACUUM' >>"$PSQL_LOG"
done

# the stream tables the benchmark wrote to are right
CHECK="$(sqlv "SELECT concat_ws(', ',
    CASE WHEN NOT EXISTS (SELECT g, n, total, mean FROM agg_st EXCEPT ALL SELECT g, count(*), sum(v), avg(v) FROM agg_ivm GROUP BY g)
          AND NOT EXISTS (SELECT g, count(*), sum(v), avg(v) FROM agg_ivm GROUP BY g EXCEPT ALL SELECT g, n, total, mean FROM agg_st)
         THEN NULL ELSE 'agg_st differs from its query' END,
    CASE WHEN NOT EXISTS (SELECT g100, n, total FROM agg3_b EXCEPT ALL SELECT g % 100, count(*), sum(v) FROM agg_ivm3 GROUP BY g % 100)
          AND NOT EXISTS (SELECT g % 100, count(*), sum(v) FROM agg_ivm3 GROUP BY g % 100 EXCEPT ALL SELECT g100, n, total FROM agg3_b)
         THEN NULL ELSE 'agg3_b differs from its query' END,
    CASE WHEN NOT EXISTS (SELECT oid, amt, name, region FROM join_st EXCEPT ALL SELECT o.oid, o.amt, c.name, c.region FROM ord_ivm o JOIN cust_ivm c USING (cid))
          AND NOT EXISTS (SELECT o.oid, o.amt, c.name, c.region FROM ord_ivm o JOIN cust_ivm c USING (cid) EXCEPT ALL SELECT oid, amt, name, region FROM join_st)
         THEN NULL ELSE 'join_st differs from its query' END)")"

# ------------------------------------------------------------------ report

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? x >= t : x <= t; print ok ? "met" : "**missed**" }'; }
row() {   # label case clients target-op target kind
    local b i r
    b="$(med "$2" base "$3")"; i="$(med "$2" "${6:-ivm}" "$3")"
    r="$(ratio "$i" "$b")"
    echo "| $1 | $b | $i | $r× | $4 $5× | $(verdict "$r" "$4" "$5") |"
}
a1="$(ratio "$(med aggupd ivm 1)" "$(med aggupd base 1)")"
a4="$(ratio "$(med aggupd ivm 4)" "$(med aggupd base 4)")"
conc="$(ratio "$a4" "$a1")"
b0="$(med aggupd base 1)"; b1="$(med aggupd ivm 1)"; b3="$(med aggupd ivm3 1)"
cost1="$(awk -v b="$b0" -v i="$b1" 'BEGIN { printf "%.4f", 1000 / i - 1000 / b }')"
cost3="$(awk -v b="$b0" -v i="$b3" 'BEGIN { printf "%.4f", 1000 / i - 1000 / b }')"
share="$(ratio "$cost3" "$cost1")"
bigagg="$(ratio "$(med bigagg ivm 1)" "$(med bigagg base 1)")"
bigjoin="$(ratio "$(med bigjoin ivm 1)" "$(med bigjoin base 1)")"

ELAPSED=$(( $(date +%s) - STARTED_AT ))
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
fi
{
    echo "## pg_trickle benchmark (issue 6: IMMEDIATE write cost), $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- pg_trickle $(sqlv 'SELECT pgtrickle.version()'), commit $commit"
    echo "- $(sqlv 'SHOW server_version') on $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; load average at start: $LOADAVG, at the end: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "- durability defaults (synchronous_commit on), autovacuum off (VACUUM after each round); pgbench ${SECS} s per run, $ROUNDS rounds alternating, median; total run time $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
    echo "- check after the run: ${CHECK:-every stream table equals its query}"
    echo
    echo "| operation (1M-row tables) | TPS without stream table | TPS with IMMEDIATE | ratio | target | |"
    echo "|---|---|---|---|---|---|"
    row "1-row UPDATE, GROUP BY stream table (1,000 groups; count/sum/avg)" aggupd 1 ">=" 0.25
    row "1-row INSERT into orders, orders ⋈ customers" ordins 1 ">=" 0.40
    row "1-row DELETE from orders, orders ⋈ customers" orddel 1 ">=" 0.40
    row "1-row UPDATE of a customer (10 stream table rows)" custupd 1 ">=" 0.20
    echo
    echo "| | figure | target | |"
    echo "|---|---|---|---|"
    echo "| 4-client ratio / 1-client ratio (aggregate) | $a4 / $a1 = $conc | ≥ 0.9 | $(verdict "$conc" ">=" 0.9) |"
    echo "| 100,000-row UPDATE, aggregate: time with / without | $(med bigagg ivm 1) / $(med bigagg base 1) ms = ${bigagg}× | ≤ 1.5× | $(verdict "$bigagg" "<=" 1.5) |"
    echo "| 100,000-row UPDATE, join: time with / without | $(med bigjoin ivm 1) / $(med bigjoin base 1) ms = ${bigjoin}× | ≤ 2.0× | $(verdict "$bigjoin" "<=" 2.0) |"
    echo "| 3 IMMEDIATE stream tables on one source: added ms per UPDATE vs 1 | $cost3 / $cost1 = ${share}× | < 3× | $(verdict "$share" "<=" 2.999) |"
} >"$REPORT"

cat "$REPORT"
log "report: ${REPORT#"$ROOT"/} (raw figures: ${CSV#"$ROOT"/}); took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
