#!/usr/bin/env bash
# Build, install and run every pg_trickle test suite; ends with "N passed, N failed".
#
# Suites: regress (test/sql), isolation (test/specs), tap (t/*.pl), and each
# executable scripts/suites/*.sh.  Like "make installcheck", these variables
# select tests when set (empty = skip that suite); unset ones run everything:
#   REGRESS="a b"  ISOLATION="c"  TAP_TESTS=  PROVE_TESTS="t/001_x.pl"  SUITES="name"
# e.g. only one regression test:
#   make test REGRESS=basic ISOLATION= TAP_TESTS= SUITES=
#   REGRESS=basic ISOLATION= TAP_TESTS= SUITES= scripts/test.sh
# (not "REGRESS=basic make test": the Makefile's own REGRESS would win).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
unset MAKEFLAGS MFLAGS MAKELEVEL   # see build.sh
RESULTS="$ROOT/test-results"
passed=0
failed=0

if ! "$ROOT/scripts/build.sh"; then
    # Report the build as the one failed unit so the summary line is never missing.
    echo "test.sh: build failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
rm -rf "$RESULTS"

if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses root, and chowning the checkout to postgres would make git
    # refuse it for root ("dubious ownership"): test a postgres-owned copy.
    WORK="$(mktemp -d /tmp/pg_trickle-test.XXXXXX)"
    trap '[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$WORK"' EXIT
    tar -C "$ROOT" --exclude=./.git --exclude=./.cluster --exclude=./bench/.cluster --exclude=./bench/results --exclude=./test-results \
        --exclude='./tmp_check*' --exclude=./output_iso --exclude=./test/results \
        -cf - . | tar -C "$WORK" -xf -
    chown -R postgres:postgres "$WORK"
    AS_TESTER=(runuser -u postgres -- env HOME="$(getent passwd postgres | cut -d: -f6)")
else
    WORK="$ROOT"
    AS_TESTER=()
    if [ ! -w "$ROOT" ]; then
        echo "test.sh: $ROOT is not writable by $(id -un); run as its owner or as root" >&2
        exit 1
    fi
fi
cd "$WORK"

# Print and keep what explains a failed suite: the diffs, the actual results
# (handy for writing expected files) and the tails of the server/TAP logs.
# pg_regress writes all three under its --outputdir; prove under tmp_check.
report_failure() {
    local name="$1" dir="$2" f
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    mkdir -p "$RESULTS/$name"
    if [ -s "$dir/regression.diffs" ]; then
        echo "----- $name: ${dir#"$WORK"/}/regression.diffs"
        cat "$dir/regression.diffs"
    fi
    for f in "$dir"/log/*; do
        if [ ! -f "$f" ] || [ "${f##*/}" = initdb.log ]; then continue; fi
        echo "----- $name: tail of ${f#"$WORK"/}"
        tail -n 40 "$f"
    done
    for f in regression.diffs regression.out results log; do
        if [ -e "$dir/$f" ]; then cp -r "$dir/$f" "$RESULTS/$name/"; fi
    done
    echo "----- $name: saved to ${RESULTS#"$ROOT"/}/$name/"
}

# run_suite NAME OUTPUT_DIR CMD...: one suite is one unit of the summary.
run_suite() {
    local name="$1" dir="$2"
    shift 2
    echo "===== $name"
    if "${AS_TESTER[@]}" "$@"; then
        echo "===== $name: PASS"
        passed=$((passed + 1))
    else
        echo "===== $name: FAIL"
        failed=$((failed + 1))
        report_failure "$name" "$dir"
    fi
}

skip() { echo "===== $1: skipped ($2)"; }

have() { compgen -G "$1" >/dev/null; }

# PGXS's installcheck runs regress, isolation and TAP in one target and stops
# at the first failure; run each alone (by blanking the others) so that every
# suite runs and is counted.
installcheck=(make installcheck PG_CONFIG="$PG_CONFIG")

if [ -n "${REGRESS+set}" ] && [ -z "$REGRESS" ]; then
    skip regress "REGRESS is empty"
elif [ -z "${REGRESS+set}" ] && ! have 'test/sql/*.sql'; then
    skip regress "no test/sql/*.sql"
else
    run_suite regress "$WORK/test" \
        "${installcheck[@]}" ISOLATION= TAP_TESTS= ${REGRESS+"REGRESS=$REGRESS"}
fi

if [ -n "${ISOLATION+set}" ] && [ -z "$ISOLATION" ]; then
    skip isolation "ISOLATION is empty"
elif [ -z "${ISOLATION+set}" ] && ! have 'test/specs/*.spec'; then
    skip isolation "no test/specs/*.spec"
else
    run_suite isolation "$WORK/output_iso" \
        "${installcheck[@]}" REGRESS= TAP_TESTS= ${ISOLATION+"ISOLATION=$ISOLATION"}
fi

# With no t/*.pl, PGXS hands prove the literal "t/*.pl" and prove fails.
if [ -n "${TAP_TESTS+set}" ] && [ -z "$TAP_TESTS" ]; then
    skip tap "TAP_TESTS is empty"
elif [ -z "${PROVE_TESTS:-}" ] && ! have 't/*.pl'; then
    skip tap "no t/*.pl"
else
    run_suite tap "$WORK/tmp_check" \
        "${installcheck[@]}" REGRESS= ISOLATION= TAP_TESTS="${TAP_TESTS:-1}" \
        ${PROVE_TESTS+"PROVE_TESTS=$PROVE_TESTS"}
fi

for suite in scripts/suites/*.sh; do
    if [ ! -f "$suite" ] || [ ! -x "$suite" ]; then continue; fi
    name="$(basename "$suite" .sh)"
    if [ -n "${SUITES+set}" ] && [[ " $SUITES " != *" $name "* ]]; then
        skip "$name" "not in SUITES"
        continue
    fi
    run_suite "$name" "" "$WORK/$suite"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
