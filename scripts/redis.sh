#!/usr/bin/env bash
#
# redis.sh runs Debian's redis-server as a process of ours on loopback for
# tests, without persistence (a restart starts empty, which the amnesia
# tests rely on). Debian's own service is never started or touched.
#
#   install   apt-get install redis-server when it is missing
#   start     install, start, wait until PING answers PONG (idempotent)
#   stop      stop the redis-server this script started
#   status    print running/stopped; exit 0 when running
#
# Environment (defaults in brackets):
#   REDIS_PORT [16379]               port on 127.0.0.1
#   REDIS_START_TIMEOUT [30]         seconds to wait for PONG
#   SERVICES_DIR [<repo>/.services]  state lives in $SERVICES_DIR/redis
set -euo pipefail

SCRIPT_NAME=redis
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT="${REDIS_PORT:-16379}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"

STATE="$SERVICES_DIR/redis"
PIDFILE="$STATE/redis.pid"
LOGFILE="$STATE/redis.log"

# PID_PATTERN identifies our process in /proc/<pid>/cmdline. redis-server
# retitles itself once it runs ("redis-server 127.0.0.1:PORT"), so only the
# program name is common to both titles.
PID_PATTERN="redis-server"

cmd_install() {
	ensure_redis_server
	log "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') available"
}

cmd_start() {
	if pid_alive "$PIDFILE" "$PID_PATTERN"; then
		if redis_ping "$REDIS_PORT"; then
			log "already running (pid $(pid_read "$PIDFILE")) on 127.0.0.1:$REDIS_PORT"
			return 0
		fi
		log "pid $(pid_read "$PIDFILE") is running but does not answer yet; waiting"
		wait_ping 0
		return 0
	fi
	rm -f "$PIDFILE"

	ensure_redis_server

	if port_open "$REDIS_PORT"; then
		if redis_ping "$REDIS_PORT"; then
			log "a Redis not started by this script already answers on 127.0.0.1:$REDIS_PORT; using it"
			return 0
		fi
		die "127.0.0.1:$REDIS_PORT is taken by something that is not Redis; stop it or set REDIS_PORT"
	fi

	mkdir -p "$STATE"
	local offset
	offset="$(file_size "$LOGFILE")"
	log "starting redis-server on 127.0.0.1:$REDIS_PORT"
	start_bg "$PIDFILE" "$LOGFILE" redis-server \
		--bind 127.0.0.1 --port "$REDIS_PORT" \
		--save '' --appendonly no \
		--daemonize no --dir "$STATE" --logfile '' \
		--protected-mode yes --loglevel notice
	wait_ping "$offset"
}

# wait_ping OFFSET waits until our redis answers PONG; OFFSET is the log
# size before the start, for the failure report.
wait_ping() {
	local deadline=$(($(now_s) + REDIS_START_TIMEOUT))
	until redis_ping "$REDIS_PORT"; do
		if ! pid_alive "$PIDFILE" "$PID_PATTERN"; then
			tail_log "$LOGFILE" 20 "$1"
			rm -f "$PIDFILE"
			die "redis-server exited during startup"
		fi
		if (($(now_s) >= deadline)); then
			tail_log "$LOGFILE" 20 "$1"
			die "redis-server did not answer PING within ${REDIS_START_TIMEOUT}s"
		fi
		sleep 0.2
	done
	log "ready on 127.0.0.1:$REDIS_PORT (pid $(pid_read "$PIDFILE"))"
}

cmd_stop() {
	local ours=""
	pid_alive "$PIDFILE" "$PID_PATTERN" && ours=1
	stop_pid "$PIDFILE" "$PID_PATTERN" redis-server 30
	if [[ -n "$ours" ]]; then
		wait_ports_closed 10 "$REDIS_PORT" ||
			log "warning: 127.0.0.1:$REDIS_PORT is still open after the stop; another process serves it"
	fi
}

cmd_status() {
	if pid_alive "$PIDFILE" "$PID_PATTERN" && redis_ping "$REDIS_PORT"; then
		echo "redis: running (pid $(pid_read "$PIDFILE")) on 127.0.0.1:$REDIS_PORT"
		return 0
	fi
	if port_open "$REDIS_PORT"; then
		echo "redis: stopped (ours); 127.0.0.1:$REDIS_PORT is served by a process this script did not start"
	else
		echo "redis: stopped"
	fi
	return 1
}

case "${1:-}" in
install) lock_state "$STATE" && cmd_install ;;
start) lock_state "$STATE" && cmd_start ;;
stop) lock_state "$STATE" && cmd_stop ;;
status) cmd_status ;;
*) usage_exit "$0 {install|start|stop|status}" ;;
esac
