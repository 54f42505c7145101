# Start a throwaway PostgreSQL server for the test suite and export EVOLVE_TEST_POSTGRES_URL.
# Source it (`. .ci/postgres.sh`); the server listens on 127.0.0.1 only, on a fresh port, keeps its
# data in a temporary directory, and is stopped (and the directory removed) when the shell exits
# or when you call `evolve_postgres_stop`.

evolve_postgres_bin() {
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        # /usr/local/bin may hold only links to pg_ctl and initdb: use the folder they point into.
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return
    fi
    # Debian and Ubuntu keep the server binaries outside PATH.
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$found" ]; then
        echo "$found"
        return
    fi
    return 1
}

evolve_postgres_start() {
    local bin
    if ! bin=$(evolve_postgres_bin); then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(evolve_postgres_bin) || { echo "postgres.sh: no pg_ctl after installing postgresql" >&2; return 1; }
    fi
    # initdb refuses to run as root: run the server as the postgres user then.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        as=(runuser -u postgres --)
    fi
    EVOLVE_PG_DIR=$(mktemp -d /tmp/evolve-pg.XXXXXX)
    chmod 755 "$EVOLVE_PG_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$EVOLVE_PG_DIR"
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$EVOLVE_PG_DIR/data" -U postgres -A trust --no-sync >"$EVOLVE_PG_DIR/initdb.log" 2>&1 \
        || { cat "$EVOLVE_PG_DIR/initdb.log" >&2; return 1; }
    "${as[@]}" "$bin/pg_ctl" -D "$EVOLVE_PG_DIR/data" -l "$EVOLVE_PG_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $EVOLVE_PG_DIR -c fsync=off" start >/dev/null \
        || { cat "$EVOLVE_PG_DIR/server.log" >&2; rm -rf "$EVOLVE_PG_DIR"; return 1; }
    EVOLVE_PG_BIN=$bin
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres evolve_test || { evolve_postgres_stop; return 1; }
    export EVOLVE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/evolve_test"
    trap evolve_postgres_stop EXIT
    echo "postgres.sh: PostgreSQL on 127.0.0.1:$port, EVOLVE_TEST_POSTGRES_URL=$EVOLVE_TEST_POSTGRES_URL" >&2
}

evolve_postgres_stop() {
    if [ -n "${EVOLVE_PG_DIR:-}" ] && [ -d "$EVOLVE_PG_DIR/data" ]; then
        local as=()
        if [ "$(id -u)" = 0 ]; then
            as=(runuser -u postgres --)
        fi
        "${as[@]}" "$EVOLVE_PG_BIN/pg_ctl" -D "$EVOLVE_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$EVOLVE_PG_DIR"
    fi
    unset EVOLVE_PG_DIR EVOLVE_TEST_POSTGRES_URL
}

evolve_postgres_start
