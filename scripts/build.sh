#!/usr/bin/env bash
# Build pg_trickle and install it into PostgreSQL 15.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
# When run from "make test", the outer make's flags (jobserver, -j) would leak
# into ours; variables given to it on its command line are still in our env.
unset MAKEFLAGS MFLAGS MAKELEVEL

"$ROOT/scripts/setup.sh"

# PGXS does not track header dependencies: if a header is newer than some
# object file, rebuild everything.
oldest_o="$(find "$ROOT/src" -name '*.o' -printf '%T@ %p\n' | sort -n | sed -n 1p | cut -d' ' -f2-)"
if [ -n "$oldest_o" ] &&
   [ -n "$(find "$ROOT/include" "$ROOT/src" -name '*.h' -newer "$oldest_o" -print -quit)" ]; then
    make -C "$ROOT" clean PG_CONFIG="$PG_CONFIG"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

make -C "$ROOT" -j2 PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$log"

# Installing needs root unless the PostgreSQL directories are writable.
if [ -w "$("$PG_CONFIG" --pkglibdir)" ] && [ -w "$("$PG_CONFIG" --sharedir)/extension" ]; then
    make -C "$ROOT" install PG_CONFIG="$PG_CONFIG"
elif command -v sudo >/dev/null 2>&1; then
    sudo make -C "$ROOT" install PG_CONFIG="$PG_CONFIG"
else
    echo "build.sh: cannot write to $("$PG_CONFIG" --pkglibdir); run as root" >&2
    exit 1
fi

warnings="$(grep -c 'warning:' "$log" || true)"
if [ "$warnings" -gt 0 ]; then
    echo "build.sh: $warnings compiler warning(s):"
    grep 'warning:' "$log"
fi
