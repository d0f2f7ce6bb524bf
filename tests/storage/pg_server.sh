#!/usr/bin/env bash
# A throwaway PostgreSQL server for the storage tests, on a free loopback port in a folder of its own.
#
#   url="$(bash tests/storage/pg_server.sh start DIR)"   # DIR: an empty folder (e.g. from mktemp -d)
#   SPACEBOT_TEST_DATABASE_URL="$url" pytest tests/storage -q
#   bash tests/storage/pg_server.sh stop DIR              # stops the server and deletes DIR
#
# initdb refuses to run as root, so as root the server runs as an unprivileged user (postgres if the
# system has it, else nobody). It listens on 127.0.0.1 only, trusts local connections, and skips
# fsync: it holds test data for one run and nothing else.
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
DB_USER=spacebot

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action="$1"
dir="$(cd "$2" && pwd)"

if [[ "$(id -u)" -eq 0 ]]; then
    run_as="$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)"
    as_owner() { (cd "$dir" && runuser -u "$run_as" -- "$@"); }
else
    run_as="$(id -un)"
    as_owner() { (cd "$dir" && "$@"); }
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    chown "$run_as" "$dir"
    chmod 700 "$dir"
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    local port attempt
    for attempt in 1 2 3; do  # another program may take the free port before the server binds it
        port="$(free_port)"
        if as_owner "$PG_BIN/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" -o \
            "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
            echo "postgresql+asyncpg://$DB_USER@127.0.0.1:$port/postgres"
            return 0
        fi
        echo "pg_server.sh: start on port $port failed (attempt $attempt)" >&2
    done
    cat "$dir/server.log" >&2
    exit 1
}

stop() {
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$PG_BIN/pg_ctl" stop -D "$dir/data" -m fast -t 30 >/dev/null || true
    fi
    rm -rf "$dir"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
