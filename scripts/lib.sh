# shellcheck shell=bash
#
# Shared functions for the service scripts in this folder (kafka.sh,
# redis.sh, redis-cluster.sh and others). Source it; it does nothing by
# itself.
#
# Every service keeps its state (data, logs, pid files) under
# $SERVICES_DIR/<name>, by default <repo>/.services/<name>. A script stops
# only processes whose pid it wrote itself, and checks /proc/<pid>/cmdline
# against a pattern before trusting a pid file, so a recycled pid is never
# signalled.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"

# SCRIPT_NAME prefixes every message; the sourcing script may override it.
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}"

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

die() {
	log "error: $*"
	exit 1
}

# now_s prints the current time in whole seconds since the epoch.
now_s() { date +%s; }

# apt_install PKG... installs Debian packages without prompts. It runs
# apt-get update only when a first attempt fails (a fresh machine has no
# package lists yet).
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for a dpkg lock held by another install instead of failing.
	local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
	if "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null 2>&1; then
		return 0
	fi
	"${apt[@]}" update >/dev/null || die "apt-get update failed"
	"${apt[@]}" install -y --no-install-recommends "$@" >/dev/null ||
		die "apt-get install $* failed"
}

# need_cmd CMD PKG installs PKG when CMD is not on the PATH.
need_cmd() {
	command -v "$1" >/dev/null && return 0
	apt_install "$2"
	command -v "$1" >/dev/null || die "$1 still missing after installing $2"
}

# port_open PORT [HOST] succeeds when something accepts TCP connections.
port_open() {
	local port="$1" host="${2:-127.0.0.1}"
	timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# wait_until TIMEOUT_S WHAT CMD... polls CMD every 0.5 s until it succeeds.
# It fails (without exiting) after TIMEOUT_S seconds.
wait_until() {
	local timeout="$1" what="$2" deadline
	shift 2
	deadline=$(($(now_s) + timeout))
	until "$@" >/dev/null 2>&1; do
		if (($(now_s) >= deadline)); then
			log "timed out after ${timeout}s waiting for $what"
			return 1
		fi
		sleep 0.5
	done
}

# pid_read PIDFILE prints the pid stored in PIDFILE, if any.
pid_read() {
	[[ -s "$1" ]] || return 1
	local pid
	pid="$(tr -dc '0-9' <"$1")"
	[[ -n "$pid" ]] || return 1
	printf '%s\n' "$pid"
}

# pid_alive PIDFILE PATTERN succeeds when the pid in PIDFILE is a live
# process whose command line contains PATTERN (a fixed string). A process
# in the middle of an exec (start_bg's setsid and nohup exec in turn) shows
# an empty command line for a moment, so a mismatch is checked again
# before it counts.
pid_alive() {
	local pid cmdline try
	pid="$(pid_read "$1")" || return 1
	for try in 1 2 3 4 5; do
		kill -0 "$pid" 2>/dev/null || return 1
		cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
		[[ "$cmdline" == *"$2"* ]] && return 0
		((try < 5)) && sleep 0.1
	done
	return 1
}

# lock_state DIR serialises start, stop and install of one service across
# concurrent callers (parallel test packages, say) with flock on DIR/.lock.
# The lock is held on descriptor 9 until the script exits.
lock_state() {
	mkdir -p "$1"
	exec 9>"$1/.lock"
	if ! flock -n 9; then
		log "waiting for another $SCRIPT_NAME command to finish (lock $1/.lock)"
		flock -w 600 9 || die "could not take the lock $1/.lock within 600s"
	fi
}

# start_bg PIDFILE LOGFILE CMD... starts CMD detached from this shell (own
# session, stdin closed, output appended to LOGFILE, the lock descriptor 9
# closed so the service does not hold the lock) and records its pid. Without job
# control a background child is never a process-group leader, so setsid
# execs in place and $! is the service's own pid.
start_bg() {
	local pidfile="$1" logfile="$2"
	shift 2
	mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
	setsid nohup "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	printf '%s\n' "$!" >"$pidfile"
}

# stop_pid PIDFILE PATTERN WHAT [TIMEOUT_S] stops the process recorded in
# PIDFILE if it is still ours: SIGTERM, a bounded wait, then SIGKILL. It
# removes the pid file in every case and is a no-op when nothing runs.
stop_pid() {
	local pidfile="$1" pattern="$2" what="$3" timeout="${4:-30}" pid
	if ! pid_alive "$pidfile" "$pattern"; then
		[[ -e "$pidfile" ]] && rm -f "$pidfile"
		log "$what is not running"
		return 0
	fi
	pid="$(pid_read "$pidfile")"
	log "stopping $what (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_until "$timeout" "$what to exit" pid_gone "$pid"; then
		log "$what did not exit after ${timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_until 10 "$what to die" pid_gone "$pid" ||
			die "$what (pid $pid) survived SIGKILL"
	fi
	rm -f "$pidfile"
	log "stopped $what"
}

# pid_gone PID succeeds when PID no longer exists. A zombie nobody reaps
# counts as gone once its last thread exited: a killed JVM's main thread is
# a zombie while its other threads still hold the listening sockets.
pid_gone() {
	[[ -d "/proc/$1" ]] || return 0
	[[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]] || return 1
	local tasks
	tasks="$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
	((tasks <= 1))
}

# port_closed PORT succeeds when nothing accepts connections on PORT.
port_closed() { ! port_open "$1"; }

# wait_ports_closed TIMEOUT_S PORT... waits until no process listens on the
# ports any more, so that a start right after a stop can bind them.
wait_ports_closed() {
	local timeout="$1" port
	shift
	for port in "$@"; do
		wait_until "$timeout" "127.0.0.1:$port to close" port_closed "$port" || return 1
	done
}

# file_size FILE prints the size of FILE in bytes, 0 when it is missing.
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# tail_log FILE [LINES] [OFFSET] prints the end of a log file for a failure
# report, only what was written after byte OFFSET (the size before a start)
# when it is given and the file did not shrink meanwhile.
tail_log() {
	local file="$1" lines="${2:-40}" offset="${3:-0}"
	[[ -s "$file" ]] || return 0
	(($(file_size "$file") >= offset)) || offset=0
	(($(file_size "$file") > offset)) || return 0
	log "last lines of $file:"
	tail -c +"$((offset + 1))" "$file" | tail -n "$lines" | sed 's/^/    /' >&2
}

# ensure_redis_server installs Debian's redis-server (and redis-cli) when
# missing. Debian's own service does not start here; the scripts run their
# own processes.
ensure_redis_server() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		apt_install redis-server redis-tools
	fi
	command -v redis-server >/dev/null || die "redis-server missing after install"
	command -v redis-cli >/dev/null || die "redis-cli missing after install"
}

# redis_ping PORT succeeds when a Redis on 127.0.0.1:PORT answers PONG.
redis_ping() {
	[[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

# usage_exit LINE prints a usage line and exits with status 2.
usage_exit() {
	printf 'usage: %s\n' "$1" >&2
	exit 2
}
