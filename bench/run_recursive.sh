#!/usr/bin/env bash
# Benchmark of WITH RECURSIVE maintenance (issue 5, recursive CTEs): a tree
# of BENCH_NODES nodes (fan-out 10) in nodes(id, parent), and two stream
# tables over it, each beside a materialized view of the same query:
#   anc    ancestor closure, UNION (delete and rederive): (id, anc) pairs
#   depth  every node's root and depth, UNION ALL (counting)
# Changes, each in its own transaction, BENCH_ROUNDS times each:
#   insert  10 new leaves
#   delete  5 leaves
#   move    one inner node (and its subtree) under another parent
# After each change both stream tables are refreshed and both materialized
# views refreshed, in one session (plans cached as in the scheduler); the
# report gives the median times and REFRESH MATERIALIZED VIEW / DIFFERENTIAL
# ratios, and checks that each stream table equals its materialized view.
#
# Environment:
#   BENCH_NODES=200000     tree size
#   BENCH_ROUNDS=5         changes per kind
#   BENCH_PORT=5497        port (Unix socket only, in the cluster directory)
#   BENCH_SKIP_BUILD=0     1 = use the installed pg_trickle as is
#   BENCH_KEEP_CLUSTER=0   1 = keep the cluster directory (stopped) after the run
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
NODES="${BENCH_NODES:-200000}"
ROUNDS="${BENCH_ROUNDS:-5}"
PORT="${BENCH_PORT:-5497}"
RESULTS="$BENCH/results"
CLUSTER="$RESULTS/.cluster-recursive"
NAME=run_recursive.sh
EXTRA_CONF=""
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_NODES must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"

bench_build
bench_start_cluster

ANC="WITH RECURSIVE a(id, anc) AS (SELECT id, parent FROM nodes WHERE parent IS NOT NULL UNION SELECT a.id, n.parent FROM a JOIN nodes n ON n.id = a.anc WHERE n.parent IS NOT NULL) SELECT id, anc FROM a"
DEPTH="WITH RECURSIVE t(id, root, depth) AS (SELECT id, id, 0 FROM nodes WHERE parent IS NULL UNION ALL SELECT n.id, t.root, t.depth + 1 FROM t JOIN nodes n ON n.parent = t.id) SELECT id, root, depth FROM t"

log "loading a tree of $NODES nodes"
bpsql -q <<SQL
CREATE EXTENSION pg_trickle;
CREATE TABLE nodes (id int PRIMARY KEY, parent int);
INSERT INTO nodes SELECT g, NULLIF(g / 10, 0) FROM generate_series(1, $NODES) g;
CREATE INDEX ON nodes (parent);
ANALYZE nodes;
SELECT pgtrickle.create_stream_table('anc', \$q\$$ANC\$q\$, schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('depth', \$q\$$DEPTH\$q\$, schedule => '1h', refresh_mode => 'DIFFERENTIAL');
CREATE INDEX ON anc (id);
CREATE INDEX ON anc (anc);   -- the recursive term joins nodes.id = a.anc: changed nodes find their stored rows by anc
CREATE INDEX ON depth (id);  -- the recursive term joins nodes.parent = t.id
CREATE MATERIALIZED VIEW anc_mv AS $ANC;
CREATE MATERIALIZED VIEW depth_mv AS $DEPTH;
VACUUM ANALYZE;
SQL
log "anc: $(sqlv 'SELECT count(*) FROM anc') rows, depth: $(sqlv 'SELECT count(*) FROM depth') rows"

# one psql session: each change, then the four refreshes, each timed
script="$(mktemp)"
next=$((NODES + 1))
{
    echo '\set ON_ERROR_STOP 1'
    # warm-up: the first refresh of a session builds its plan
    echo "SELECT pgtrickle.refresh_stream_table('anc'), pgtrickle.refresh_stream_table('depth');"
    for r in $(seq 1 "$ROUNDS"); do
        for kind in insert delete move; do
            case $kind in
                insert) echo "INSERT INTO nodes SELECT g, 1000 + g % 5000 FROM generate_series($next, $((next + 9))) g;"
                        next=$((next + 10)) ;;
                delete) echo "DELETE FROM nodes WHERE id IN (SELECT id FROM nodes n WHERE id > $((NODES / 2)) AND NOT EXISTS (SELECT 1 FROM nodes c WHERE c.parent = n.id) ORDER BY id LIMIT 5 OFFSET $((r * 7)));" ;;
                move)   echo "UPDATE nodes SET parent = $((20 + r)) WHERE id = $((1000 + r * 13));" ;;
            esac
            for obj in anc depth anc_mv depth_mv; do
                echo "SELECT clock_timestamp() AS t0 \\gset"
                if [[ $obj == *_mv ]]; then echo "REFRESH MATERIALIZED VIEW $obj;"
                else echo "SELECT pgtrickle.refresh_stream_table('$obj');"; fi
                echo "SELECT '$kind,$obj,' || round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 2) AS line \\gset"
                echo "\\echo :line"
            done
        done
    done
} > "$script"
chmod 644 "$script"
log "running $ROUNDS rounds of insert / delete / move"
raw="$(bpsql -q -f "$script" | grep -E '^(insert|delete|move),')"
rm -f "$script"

for st in anc depth; do
    cols=$([ $st = anc ] && echo "id, anc" || echo "id, root, depth")
    diff=$(sqlv "SELECT (SELECT count(*) FROM (SELECT $cols FROM $st EXCEPT ALL SELECT * FROM ${st}_mv) x) + (SELECT count(*) FROM (SELECT * FROM ${st}_mv EXCEPT ALL SELECT $cols FROM $st) y)")
    [ "$diff" = 0 ] || die "$st differs from ${st}_mv by $diff rows"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
mkdir -p "$RESULTS"
report="$RESULTS/recursive-$(date +%Y-%m-%d_%H%M%S).md"
{
    echo "WITH RECURSIVE over a tree of $NODES nodes; anc: $(sqlv 'SELECT count(*) FROM anc') rows, depth: $(sqlv 'SELECT count(*) FROM depth') rows; $ROUNDS changes per kind; median ms (load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| change | stream table | DIFFERENTIAL ms | REFRESH MATERIALIZED VIEW ms | ratio |"
    echo "|---|---|---|---|---|"
    for kind in insert delete move; do
        for st in anc depth; do
            d=$(echo "$raw" | awk -F, -v k=$kind -v o=$st '$1==k && $2==o {print $3}' | median)
            m=$(echo "$raw" | awk -F, -v k=$kind -v o=${st}_mv '$1==k && $2==o {print $3}' | median)
            echo "| $kind | $st | $d | $m | $(awk -v d="$d" -v m="$m" 'BEGIN {printf "%.0fx", m / d}') |"
        done
    done
    echo
    echo "Both stream tables equal their materialized views after the last change."
} | tee "$report"
log "report: $report"
