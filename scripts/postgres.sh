#!/usr/bin/env bash
#
# postgres.sh runs Debian's PostgreSQL as a server of ours on loopback for
# the read model's tests and the demo, with its own data directory. Debian's
# own cluster and service are never started or touched. The server runs as
# the postgres user (PostgreSQL refuses to run as root) and trusts every
# connection from 127.0.0.1: it is for tests and demos only, and runs with
# fsync off.
#
#   install   apt-get install postgresql when it is missing
#   start     install, initdb once, start, wait until ready, create the
#             database (idempotent)
#   stop      stop the server this script started
#   status    print running/stopped; exit 0 when running
#   url       print the URL of the database
#
# Environment (defaults in brackets):
#   POSTGRES_PORT [15432]            port on 127.0.0.1
#   POSTGRES_DB [readmodel]          database that start creates
#   POSTGRES_START_TIMEOUT [60]      seconds to wait for the server
#   SERVICES_DIR [<repo>/.services]  state lives in $SERVICES_DIR/postgres
#
# The server's files must be reachable by the postgres user. When they are
# not (a checkout under /root, say), the data directory and the log go to
# /var/tmp/eventsidecar-postgres-<hash of the state directory> instead, and
# $SERVICES_DIR/postgres/home names that place.
set -euo pipefail

SCRIPT_NAME=postgres
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POSTGRES_PORT="${POSTGRES_PORT:-15432}"
POSTGRES_DB="${POSTGRES_DB:-readmodel}"
POSTGRES_START_TIMEOUT="${POSTGRES_START_TIMEOUT:-60}"

STATE="$SERVICES_DIR/postgres"

# set_home sets where the server's files are: HOME_DIR (the state
# directory, or the place it names), DATA, LOGFILE, PIDFILE (the server's
# own: its first line is the postmaster's pid) and PID_PATTERN.
set_home() {
	HOME_DIR="$STATE"
	[[ -s "$STATE/home" ]] && HOME_DIR="$(cat "$STATE/home")"
	DATA="$HOME_DIR/data"
	LOGFILE="$HOME_DIR/postgres.log"
	PIDFILE="$DATA/postmaster.pid"
	PID_PATTERN="$DATA"
}
set_home

# choose_home picks the place of a new data directory: the state
# directory when the postgres user reaches it, else one under /var/tmp.
choose_home() {
	(($(id -u) == 0)) || return 0
	runuser -u postgres -- test -x "$STATE" 2>/dev/null && return 0
	local home
	home="/var/tmp/eventsidecar-postgres-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
	log "the postgres user cannot reach $STATE; keeping the server's files in $home"
	install -d -o postgres -g postgres -m 700 "$home"
	printf '%s\n' "$home" >"$STATE/home"
	set_home
}

# pg_bin prints the bin directory of the newest installed PostgreSQL.
pg_bin() {
	local dir
	dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
	[[ -n "$dir" && -x "$dir/pg_ctl" ]] || return 1
	printf '%s\n' "$dir"
}

ensure_postgres() {
	pg_bin >/dev/null || apt_install postgresql
	pg_bin >/dev/null || die "PostgreSQL's pg_ctl missing after installing postgresql"
	command -v psql >/dev/null || apt_install postgresql-client
}

# as_pg CMD... runs CMD as the postgres user when this script runs as root,
# else as the caller. Descriptor 9 (the lock) is closed so that the server
# pg_ctl leaves running does not hold it.
as_pg() {
	if (($(id -u) == 0)); then
		runuser -u postgres -- "$@" 9>&-
	else
		"$@" 9>&-
	fi
}

# server_pid prints the postmaster's pid from its pid file.
server_pid() {
	[[ -s "$PIDFILE" ]] || return 1
	head -n 1 "$PIDFILE" | tr -dc '0-9'
}

# server_alive succeeds when the postmaster of our data directory runs.
server_alive() {
	local pid
	pid="$(server_pid)" || return 1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PID_PATTERN"
}

pg_ready() {
	timeout 5 "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres
}

psql_cmd() {
	timeout 30 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres "$@"
}

cmd_install() {
	ensure_postgres
	log "$("$(pg_bin)/postgres" --version) available"
}

cmd_init() {
	[[ -s "$DATA/PG_VERSION" ]] && return 0
	mkdir -p "$STATE"
	choose_home
	log "initialising $DATA"
	if (($(id -u) == 0)); then
		install -d -o postgres -g postgres -m 700 "$DATA"
		runuser -u postgres -- test -w "$DATA" || die "the postgres user cannot write $DATA"
	else
		install -d -m 700 "$DATA"
	fi
	as_pg "$(pg_bin)/initdb" -D "$DATA" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 || {
		tail_log "$STATE/initdb.log" 20
		die "initdb failed"
	}
}

cmd_start() {
	ensure_postgres
	if server_alive; then
		if pg_ready; then
			log "already running (pid $(server_pid)) on 127.0.0.1:$POSTGRES_PORT"
			ensure_db
			return 0
		fi
		log "pid $(server_pid) is running but does not answer yet; waiting"
		wait_until "$POSTGRES_START_TIMEOUT" "postgres to answer" pg_ready ||
			die "postgres did not answer within ${POSTGRES_START_TIMEOUT}s"
		ensure_db
		return 0
	fi
	if port_open "$POSTGRES_PORT"; then
		if pg_ready; then
			log "a PostgreSQL not started by this script already answers on 127.0.0.1:$POSTGRES_PORT; using it"
			ensure_db
			return 0
		fi
		die "127.0.0.1:$POSTGRES_PORT is taken by something that is not PostgreSQL; stop it or set POSTGRES_PORT"
	fi

	cmd_init
	touch "$LOGFILE"
	(($(id -u) == 0)) && chown postgres:postgres "$LOGFILE"
	local offset
	offset="$(file_size "$LOGFILE")"
	log "starting postgres on 127.0.0.1:$POSTGRES_PORT"
	# An empty unix_socket_directories serves TCP only, so that nothing is
	# written outside the data directory.
	if ! as_pg "$(pg_bin)/pg_ctl" start -D "$DATA" -l "$LOGFILE" -w \
		-t "$POSTGRES_START_TIMEOUT" -s \
		-o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -c unix_socket_directories='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off"; then
		tail_log "$LOGFILE" 20 "$offset"
		die "postgres did not start"
	fi
	wait_until "$POSTGRES_START_TIMEOUT" "postgres to answer" pg_ready || {
		tail_log "$LOGFILE" 20 "$offset"
		die "postgres did not answer within ${POSTGRES_START_TIMEOUT}s"
	}
	ensure_db
	log "ready on 127.0.0.1:$POSTGRES_PORT (pid $(server_pid))"
}

# ensure_db creates $POSTGRES_DB when it does not exist.
ensure_db() {
	local found
	found="$(psql_cmd -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'")"
	[[ "$found" == 1 ]] && return 0
	log "creating database $POSTGRES_DB"
	psql_cmd -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
}

cmd_stop() {
	if ! server_alive; then
		log "postgres is not running"
		return 0
	fi
	local pid
	pid="$(server_pid)"
	log "stopping postgres (pid $pid)"
	# Fast shutdown: roll back open transactions, disconnect the clients.
	if ! as_pg "$(pg_bin)/pg_ctl" stop -D "$DATA" -m fast -w -t 30 -s; then
		log "postgres did not stop within 30s; sending SIGQUIT"
		kill -QUIT "$pid" 2>/dev/null || true
		wait_until 10 "postgres to exit" pid_gone "$pid" || die "postgres (pid $pid) survived SIGQUIT"
	fi
	wait_ports_closed 10 "$POSTGRES_PORT" ||
		log "warning: 127.0.0.1:$POSTGRES_PORT is still open after the stop; another process serves it"
	log "stopped postgres"
}

cmd_status() {
	if server_alive && pg_ready; then
		echo "postgres: running (pid $(server_pid)) on 127.0.0.1:$POSTGRES_PORT"
		return 0
	fi
	if port_open "$POSTGRES_PORT"; then
		echo "postgres: stopped (ours); 127.0.0.1:$POSTGRES_PORT is served by a process this script did not start"
	else
		echo "postgres: stopped"
	fi
	return 1
}

case "${1:-}" in
install) lock_state "$STATE" && cmd_install ;;
start) lock_state "$STATE" && cmd_start ;;
stop) lock_state "$STATE" && cmd_stop ;;
status) cmd_status ;;
url) echo "postgres://postgres@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB?sslmode=disable" ;;
*) usage_exit "$0 {install|start|stop|status|url}" ;;
esac
