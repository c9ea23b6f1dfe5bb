# Shared by the bench/run_*.sh scripts: a scratch server of their own.
#
# The caller sets BENCH (this directory), ROOT, PORT, CLUSTER, NAME (for
# log lines and the postgresql.conf marker) and optionally EXTRA_CONF
# (postgresql.conf lines, which override the defaults below) and a
# function bench_exit_hook (run first on exit) before sourcing this file,
# then calls
#   bench_build            build and install pg_trickle unless BENCH_SKIP_BUILD=1
#   bench_start_cluster    initdb in $CLUSTER/data, start, CREATE DATABASE bench
# and uses bpsql (psql on database bench) and sqlv (one value).  The server
# is stopped and $CLUSTER removed on exit (kept, stopped, with
# BENCH_KEEP_CLUSTER=1).

PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
unset MAKEFLAGS MFLAGS MAKELEVEL   # see scripts/build.sh
PGBIN="$("$PG_CONFIG" --bindir)"
DATA="$CLUSTER/data"
SERVER_LOG="$CLUSTER/server.log"
PSQL_LOG="$CLUSTER/psql.log"
TIMEOUT="${BENCH_STATEMENT_TIMEOUT:-20min}"

log() { echo "[$NAME $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    AS_PG=(runuser -u postgres --)   # initdb and postgres refuse to run as root
else
    AS_PG=()
fi

pg_ctl() { "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" "$@"; }
# psql on database $DB (default bench); statement_timeout bounds every statement
bpsql() {
    "${AS_PG[@]}" env PGOPTIONS="-c statement_timeout=$TIMEOUT -c client_min_messages=warning" \
        "$PGBIN/psql" -X -q -h "$CLUSTER" -p "$PORT" -d "${DB:-bench}" -v ON_ERROR_STOP=1 "$@"
}
# one value from one query
sqlv() { bpsql -At -c "$1"; }

server_running() { [ -f "$DATA/PG_VERSION" ] && pg_ctl status >/dev/null 2>&1; }

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # a script's own clean-up first (background clients, ...)
    if declare -F bench_exit_hook >/dev/null; then
        bench_exit_hook || true
    fi
    if [ $rc -ne 0 ] && [ -f "$SERVER_LOG" ]; then
        log "failed (exit $rc); tail of $SERVER_LOG:"
        tail -n 20 "$SERVER_LOG" >&2 || true
        if [ -f "$PSQL_LOG" ]; then
            log "tail of $PSQL_LOG:"
            tail -n 20 "$PSQL_LOG" >&2 || true
        fi
    fi
    if server_running; then
        log "stopping the server"
        pg_ctl stop -m fast >/dev/null || true
    fi
    if [ "${BENCH_KEEP_CLUSTER:-0}" = 1 ]; then
        log "kept $CLUSTER (stopped)"
    else
        rm -rf "$CLUSTER"
    fi
    exit $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_build() {
    [ "${BENCH_SKIP_BUILD:-0}" = 1 ] && return 0
    log "building and installing pg_trickle (scripts/build.sh)"
    local buildlog
    buildlog="$(mktemp)"
    if ! "$ROOT/scripts/build.sh" >"$buildlog" 2>&1; then
        cat "$buildlog" >&2
        rm -f "$buildlog"
        die "build failed"
    fi
    rm -f "$buildlog"
}

# A server left running by an interrupted run is stopped; the cluster is
# always created afresh.  Durability settings stay at their defaults;
# autovacuum is off (the scripts VACUUM ANALYZE at fixed points) and
# pg_trickle.enabled = off (every refresh is explicit) unless EXTRA_CONF
# says otherwise.
bench_start_cluster() {
    if server_running; then
        log "stopping a server left in $CLUSTER"
        pg_ctl stop -m fast >/dev/null
    fi
    rm -rf "$CLUSTER"
    mkdir -p "$CLUSTER" "$BENCH/results"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$CLUSTER"
    fi
    "${AS_PG[@]}" test -w "$CLUSTER" ||
        die "the server cannot write $CLUSTER (is every directory above it traversable?)"
    log "initdb in $DATA"
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$DATA" -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    "${AS_PG[@]}" tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# ---- bench/$NAME
port = $PORT
listen_addresses = ''
unix_socket_directories = '${CLUSTER//\'/\'\'}'
shared_preload_libraries = 'pg_trickle'
shared_buffers = 2GB
effective_cache_size = 16GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
pg_trickle.enabled = off
logging_collector = off
${EXTRA_CONF:-}
EOF
    log "starting the server (log: $SERVER_LOG)"
    pg_ctl start -w -l "$SERVER_LOG" >/dev/null || die "server did not start"
    "${AS_PG[@]}" "$PGBIN/psql" -X -q -h "$CLUSTER" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
        -c 'CREATE DATABASE bench'
}
