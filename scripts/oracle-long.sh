#!/usr/bin/env bash
# Long run of the randomized correctness oracle (t/010_oracle.pl): more seeds,
# more cycles, bigger tables.  Same build/install/installcheck machinery as
# scripts/test.sh (which it calls); ends with test.sh's "N passed, N failed".
#
#   scripts/oracle-long.sh
#   ORACLE_SEEDS="11 12" ORACLE_SHAPES='^join_' ORACLE_MODES=DIFFERENTIAL scripts/oracle-long.sh
#
# Defaults: ORACLE_SEEDS="1 2 3 4 5" ORACLE_CYCLES=20 ORACLE_ROWS=100, all
# shapes, modes "DIFFERENTIAL AUTO FULL".  Any ORACLE_* variable already set
# wins.  Failures print seed/shape/mode/cycle, the query, the failing cycle's
# DML and the differing rows; replay scripts land in
# test-results/tap/log/oracle_repro/ and the pass/fail matrix in
# test-results/tap/log/oracle_summary.txt (both also printed by prove).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export ORACLE_SEEDS="${ORACLE_SEEDS:-1 2 3 4 5}"
export ORACLE_CYCLES="${ORACLE_CYCLES:-20}"
export ORACLE_ROWS="${ORACLE_ROWS:-100}"
export ORACLE_MODES="${ORACLE_MODES:-DIFFERENTIAL AUTO FULL}"
export ORACLE_SHAPES="${ORACLE_SHAPES:-}"

echo "oracle-long: seeds [$ORACLE_SEEDS], $ORACLE_CYCLES cycles, ORACLE_ROWS=$ORACLE_ROWS," \
     "modes [$ORACLE_MODES], shapes /${ORACLE_SHAPES:-.*}/"

# Only the TAP suite, only the oracle.  test.sh runs prove through runuser
# (as root) or directly; both keep these exported ORACLE_* variables.
PROVE_TESTS=t/010_oracle.pl REGRESS= ISOLATION= SUITES= exec "$ROOT/scripts/test.sh"
