#!/usr/bin/env bash
#
# demo.sh runs the whole moderation flow on this machine, on the embedded
# sidecar: the sidecar (kfake and miniredis in its process), the spaCy
# analyzer, the Laravel API under PHP's built-in server, the projector on
# PostgreSQL and the push service with its status page. It prints the
# page's URL and runs until Ctrl-C, then stops everything it started, in
# reverse order.
#
# It expects the binaries in $BIN (make demo builds them), the Python venv
# with the analyzer (scripts/python.sh venv) and Debian's PHP packages
# (scripts/php.sh deps). PostgreSQL is started with scripts/postgres.sh and
# stopped again at the end when the demo started it.
#
# Environment (defaults in brackets):
#   BIN [<repo>/.bin]                 sidecar, projector and push binaries
#   PY_VENV [<repo>/.venv]            the venv with content-analyzer
#   DEMO_PORT [18090]                 the status page's port on 127.0.0.1
#   DEMO_LARAVEL_PORT [18000]         Laravel's port
#   DEMO_SIDECAR_PORT [15051]         the sidecar's gRPC port; its HTTP
#                                     interface is on the next port
#   DEMO_TOXIC_LEXICON [idiot,stupid,hate,moron]  lemmas the analyzer flags
#   SERVICES_DIR [<repo>/.services]   state and logs in $SERVICES_DIR/demo
set -euo pipefail

SCRIPT_NAME=demo
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN="${BIN:-$REPO_ROOT/.bin}"
PY_VENV="${PY_VENV:-$REPO_ROOT/.venv}"
DEMO_PORT="${DEMO_PORT:-18090}"
DEMO_LARAVEL_PORT="${DEMO_LARAVEL_PORT:-18000}"
DEMO_SIDECAR_PORT="${DEMO_SIDECAR_PORT:-15051}"
DEMO_TOXIC_LEXICON="${DEMO_TOXIC_LEXICON:-idiot,stupid,hate,moron}"
STATE="$SERVICES_DIR/demo"

SIDECAR_GRPC="127.0.0.1:$DEMO_SIDECAR_PORT"
SIDECAR_HTTP="127.0.0.1:$((DEMO_SIDECAR_PORT + 1))"
SIDECAR_METRICS="127.0.0.1:$((DEMO_SIDECAR_PORT + 2))"
ANALYZER="$PY_VENV/bin/content-analyzer"

# PIDS are the processes started so far, in start order; NAMES their names.
PIDS=()
NAMES=()
STARTED_POSTGRES=""

# stop_all stops what the demo started, the last started first, each with
# SIGTERM and a bounded wait, then SIGKILL. It is the EXIT trap: Ctrl-C and
# SIGTERM exit, and so run it.
stop_all() {
	trap - EXIT
	trap '' INT TERM
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid="${PIDS[i]}"
		kill -0 "$pid" 2>/dev/null || continue
		log "stopping ${NAMES[i]} (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_until 20 "${NAMES[i]} to exit" pid_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	wait 2>/dev/null || true
	if [[ -n "$STARTED_POSTGRES" ]]; then
		"$REPO_ROOT/scripts/postgres.sh" stop || true
	fi
	log "stopped; logs are in $STATE"
}

# run NAME CMD... starts CMD in the background with its output in
# $STATE/NAME.log.
run() {
	local name="$1"
	shift
	"$@" >"$STATE/$name.log" 2>&1 &
	PIDS+=("$!")
	NAMES+=("$name")
	log "started $name (pid $!), log $STATE/$name.log"
}

# wait_ready NAME TIMEOUT CMD... waits until CMD succeeds while NAME runs.
wait_ready() {
	local name="$1" timeout="$2" deadline i
	shift 2
	deadline=$(($(now_s) + timeout))
	until "$@" >/dev/null 2>&1; do
		for i in "${!NAMES[@]}"; do
			if [[ "${NAMES[i]}" == "$name" ]] && ! kill -0 "${PIDS[i]}" 2>/dev/null; then
				tail_log "$STATE/$name.log" 30
				die "$name exited during startup"
			fi
		done
		if (($(now_s) >= deadline)); then
			tail_log "$STATE/$name.log" 30
			die "$name was not ready within ${timeout}s"
		fi
		sleep 0.5
	done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# laravel_up succeeds once Laravel answers an unknown content id with 404.
laravel_up() {
	[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:$DEMO_LARAVEL_PORT/content/00000000-0000-4000-8000-000000000000")" == 404 ]]
}

main() {
	for b in sidecar projector push; do
		[[ -x "$BIN/$b" ]] || die "$BIN/$b is missing; run make demo"
	done
	[[ -x "$ANALYZER" ]] || die "$ANALYZER is missing; run scripts/python.sh venv"
	command -v php >/dev/null || die "php is missing; run scripts/php.sh deps"
	command -v curl >/dev/null || apt_install curl
	for port in "$DEMO_PORT" "$DEMO_LARAVEL_PORT" "$DEMO_SIDECAR_PORT" \
		"$((DEMO_SIDECAR_PORT + 1))" "$((DEMO_SIDECAR_PORT + 2))"; do
		port_open "$port" && die "127.0.0.1:$port is taken; stop what serves it or set the DEMO_*PORT variables"
	done
	mkdir -p "$STATE"
	trap stop_all EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	"$REPO_ROOT/scripts/postgres.sh" status >/dev/null 2>&1 || STARTED_POSTGRES=1
	"$REPO_ROOT/scripts/postgres.sh" start
	local db_url
	db_url="$("$REPO_ROOT/scripts/postgres.sh" url)"

	run sidecar env SIDECAR_GRPC_ADDR="$SIDECAR_GRPC" SIDECAR_HTTP_ADDR="$SIDECAR_HTTP" \
		SIDECAR_METRICS_ADDR="$SIDECAR_METRICS" SIDECAR_DATA_DIR="$STATE/sidecar-data" \
		SIDECAR_KAFKA_BROKERS= SIDECAR_REDIS_URL= SIDECAR_LOG_FORMAT=text "$BIN/sidecar"
	wait_ready sidecar 120 http_ok "http://$SIDECAR_METRICS/readyz"

	run analyzer env ANALYZER_SIDECAR_ADDR="$SIDECAR_GRPC" ANALYZER_TOXIC_LEXICON="$DEMO_TOXIC_LEXICON" \
		"$ANALYZER"
	run laravel env EVENTSTORE_URL="http://$SIDECAR_HTTP" APP_ENV=local LOG_CHANNEL=stderr \
		php -S "127.0.0.1:$DEMO_LARAVEL_PORT" -t "$REPO_ROOT/examples/laravel/public"
	wait_ready laravel 30 laravel_up
	run projector env PROJECTOR_SIDECAR_ADDR="$SIDECAR_GRPC" PROJECTOR_DATABASE_URL="$db_url" \
		PROJECTOR_LOG_FORMAT=text "$BIN/projector"
	run push env PUSH_ADDR="127.0.0.1:$DEMO_PORT" PUSH_SIDECAR_ADDR="$SIDECAR_GRPC" \
		PUSH_SUBMIT_URL="http://127.0.0.1:$DEMO_LARAVEL_PORT/content" PUSH_LOG_FORMAT=text "$BIN/push"
	wait_ready push 30 http_ok "http://127.0.0.1:$DEMO_PORT/healthz"

	cat >&2 <<EOF

  The status page:  http://127.0.0.1:$DEMO_PORT/
  Laravel API:      http://127.0.0.1:$DEMO_LARAVEL_PORT/content
  Read model:       psql '$db_url' -c 'SELECT * FROM content'

  Ctrl-C stops everything.

EOF
	# Wait until a process exits or Ctrl-C; either ends the demo, through
	# the EXIT trap.
	wait -n "${PIDS[@]}" || true
	local i
	for i in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
			log "${NAMES[i]} exited"
			tail_log "$STATE/${NAMES[i]}.log" 30
		fi
	done
	exit 1
}

main "$@"
