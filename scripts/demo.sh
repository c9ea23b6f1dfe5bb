#!/usr/bin/env bash
# "make demo": build and install pg_trickle, (re)start a scratch server in
# ./.cluster (or /var/tmp/pg_trickle-demo) with pg_trickle preloaded, and run scripts/demo.sql against a
# fresh "demo" database.   "scripts/demo.sh stop" stops that server.
# The port is 5499 unless PGTRICKLE_DEMO_PORT says otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PORT="${PGTRICKLE_DEMO_PORT:-5499}"
unset MAKEFLAGS MFLAGS MAKELEVEL   # see build.sh

if [ "$(id -u)" -eq 0 ]; then
    AS_PG=(runuser -u postgres --)   # initdb and postgres refuse to run as root
    as_pg_hint="runuser -u postgres -- "
else
    AS_PG=()
    as_pg_hint=""
fi

# ./.cluster, unless the server's user cannot reach the checkout (say, one
# under /root, which is 0700): then a directory of its own under /var/tmp
CLUSTER="$ROOT/.cluster"
if ! "${AS_PG[@]}" test -x "$ROOT"; then
    CLUSTER="/var/tmp/pg_trickle-demo"
fi
DATA="$CLUSTER/data"

pg_ctl() { "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" "$@"; }
psql() { "${AS_PG[@]}" "$PGBIN/psql" -X -h "$CLUSTER" -p "$PORT" -v ON_ERROR_STOP=1 "$@"; }

case "${1:-}" in
    "") ;;
    stop)
        PGBIN="$(dirname "$PG_CONFIG")"
        if [ -d "$DATA" ] && pg_ctl status >/dev/null 2>&1; then
            pg_ctl stop -m fast
        else
            echo "demo server is not running"
        fi
        exit 0 ;;
    *)
        echo "usage: $0 [stop]" >&2
        exit 2 ;;
esac

"$ROOT/scripts/build.sh"
PGBIN="$("$PG_CONFIG" --bindir)"

# The checkout belongs to root; the server needs a directory of its own.
mkdir -p "$CLUSTER"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$CLUSTER"
fi
if ! "${AS_PG[@]}" test -w "$CLUSTER"; then
    echo "demo.sh: the server cannot write $CLUSTER (is every directory above it traversable?)" >&2
    exit 1
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$DATA" -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi

# Restart every run: the library was just reinstalled, and a preloaded library
# is only read at server start.
if pg_ctl status >/dev/null 2>&1; then
    pg_ctl stop -m fast
fi

# Our settings live in one marked block so a rerun (e.g. with another port)
# replaces it instead of piling up duplicates.
conf="$DATA/postgresql.conf"
"${AS_PG[@]}" sed -i '/^# BEGIN pg_trickle demo/,/^# END pg_trickle demo/d' "$conf"
"${AS_PG[@]}" tee -a "$conf" >/dev/null <<EOF
# BEGIN pg_trickle demo (rewritten by scripts/demo.sh)
port = $PORT
listen_addresses = ''
unix_socket_directories = '${CLUSTER//\'/\'\'}'
shared_preload_libraries = 'pg_trickle'
# END pg_trickle demo
EOF

if ! pg_ctl start -w -l "$CLUSTER/server.log"; then
    tail -n 30 "$CLUSTER/server.log" >&2
    exit 1
fi

psql -q -d postgres -c 'SET client_min_messages = warning' \
    -c 'DROP DATABASE IF EXISTS demo WITH (FORCE)' -c 'CREATE DATABASE demo'
psql -e -d demo <"$ROOT/scripts/demo.sql"

cat <<EOF

The demo server is still running (log: $CLUSTER/server.log).
  connect:  ${as_pg_hint}psql -h $CLUSTER -p $PORT demo
  stop:     scripts/demo.sh stop
EOF
