#!/usr/bin/env bash
#
# redis-cluster.sh runs a three-master Redis Cluster (no replicas, no
# persistence) on loopback for tests, from Debian's redis-server.
#
#   start     install, start the nodes, create the cluster once, wait until
#             every node reports cluster_state:ok (idempotent)
#   stop      stop the nodes this script started and forget the cluster, so
#             the next start creates a fresh, empty one
#   status    print running/stopped; exit 0 when the cluster is ok
#
# Environment (defaults in brackets):
#   REDIS_CLUSTER_PORTS ["17001 17002 17003"]  node ports on 127.0.0.1; each
#                                  also uses PORT+10000 for the cluster bus
#   REDIS_CLUSTER_START_TIMEOUT [60]  seconds to wait for cluster_state:ok
#   SERVICES_DIR [<repo>/.services]   state in $SERVICES_DIR/redis-cluster
set -euo pipefail

SCRIPT_NAME=redis-cluster
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -r -a PORTS <<<"${REDIS_CLUSTER_PORTS:-17001 17002 17003}"
REDIS_CLUSTER_START_TIMEOUT="${REDIS_CLUSTER_START_TIMEOUT:-60}"

STATE="$SERVICES_DIR/redis-cluster"

# PID_PATTERN: see redis.sh; a node retitles itself "redis-server
# 127.0.0.1:PORT [cluster]" once it runs.
PID_PATTERN="redis-server"

node_dir() { printf '%s/%s\n' "$STATE" "$1"; }
node_pidfile() { printf '%s/%s/redis.pid\n' "$STATE" "$1"; }
node_log() { printf '%s/%s/redis.log\n' "$STATE" "$1"; }
node_ours() { pid_alive "$(node_pidfile "$1")" "$PID_PATTERN"; }

# count_ours prints how many of the nodes run as processes of ours.
count_ours() {
	local port n=0
	for port in "${PORTS[@]}"; do
		if node_ours "$port"; then n=$((n + 1)); fi
	done
	echo "$n"
}

# cluster_field PORT FIELD prints one field of CLUSTER INFO from a node.
cluster_field() {
	timeout 3 redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null |
		tr -d '\r' | sed -n "s/^$2://p"
}

# cluster_ok succeeds when every node sees a healthy cluster of all nodes
# with every slot assigned.
cluster_ok() {
	local port
	for port in "${PORTS[@]}"; do
		[[ "$(cluster_field "$port" cluster_state)" == ok ]] || return 1
		[[ "$(cluster_field "$port" cluster_slots_assigned)" == 16384 ]] || return 1
		[[ "$(cluster_field "$port" cluster_known_nodes)" == "${#PORTS[@]}" ]] || return 1
	done
}

# cluster_empty succeeds when no node knows any other node or owns a slot,
# so that `redis-cli --cluster create` may run.
cluster_empty() {
	local port
	for port in "${PORTS[@]}"; do
		[[ "$(cluster_field "$port" cluster_known_nodes)" == 1 ]] || return 1
		[[ "$(cluster_field "$port" cluster_slots_assigned)" == 0 ]] || return 1
	done
}

# start_node PORT starts one node of ours, or fails when the port is taken
# by a process this script did not start.
start_node() {
	local port="$1" dir pidfile
	dir="$(node_dir "$port")"
	pidfile="$(node_pidfile "$port")"
	if node_ours "$port"; then
		return 0
	fi
	rm -f "$pidfile"
	port_open "$port" && die "127.0.0.1:$port is taken by a process this script did not start; stop it or set REDIS_CLUSTER_PORTS"
	port_open "$((port + 10000))" && die "127.0.0.1:$((port + 10000)) (cluster bus of $port) is taken; stop it or set REDIS_CLUSTER_PORTS"

	mkdir -p "$dir"
	log "starting node 127.0.0.1:$port"
	start_bg "$pidfile" "$(node_log "$port")" redis-server \
		--bind 127.0.0.1 --port "$port" \
		--cluster-enabled yes --cluster-config-file nodes.conf \
		--cluster-node-timeout 5000 \
		--save '' --appendonly no \
		--daemonize no --dir "$dir" --logfile '' \
		--protected-mode yes --loglevel notice
}

# wait_node PORT waits until a node we started answers PONG.
wait_node() {
	local port="$1" deadline=$(($(now_s) + REDIS_CLUSTER_START_TIMEOUT))
	until redis_ping "$port"; do
		if ! node_ours "$port" || (($(now_s) >= deadline)); then
			tail_log "$(node_log "$port")" 20
			die "node 127.0.0.1:$port did not start"
		fi
		sleep 0.2
	done
}

cmd_start() {
	local port started
	started="$(now_s)"
	if cluster_ok; then
		local ours
		ours="$(count_ours)"
		if ((ours == ${#PORTS[@]})); then
			log "already running and ok on ports ${PORTS[*]}"
		else
			log "a healthy cluster already answers on ports ${PORTS[*]} ($ours of ${#PORTS[@]} nodes started by this script); using it"
		fi
		return 0
	fi

	ensure_redis_server
	for port in "${PORTS[@]}"; do start_node "$port"; done
	for port in "${PORTS[@]}"; do wait_node "$port"; done

	# Nodes restarted after a crash reload nodes.conf and rejoin by
	# themselves; only a set of blank nodes is created anew.
	if cluster_empty; then
		local addrs=()
		for port in "${PORTS[@]}"; do addrs+=("127.0.0.1:$port"); done
		log "creating cluster of ${addrs[*]}"
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
			>"$STATE/create.log" 2>&1 || {
			tail_log "$STATE/create.log" 20
			die "redis-cli --cluster create failed"
		}
	fi

	if ! wait_until "$REDIS_CLUSTER_START_TIMEOUT" "cluster_state:ok on every node" cluster_ok; then
		for port in "${PORTS[@]}"; do
			log "node $port: state=$(cluster_field "$port" cluster_state) slots=$(cluster_field "$port" cluster_slots_assigned) known_nodes=$(cluster_field "$port" cluster_known_nodes)"
		done
		die "cluster is not ok; '$0 stop' then '$0 start' creates a fresh one"
	fi
	log "ready on ports ${PORTS[*]} ($(($(now_s) - started))s)"
}

cmd_stop() {
	local port stopped=()
	for port in "${PORTS[@]}"; do
		node_ours "$port" && stopped+=("$port")
		stop_pid "$(node_pidfile "$port")" "$PID_PATTERN" "node $port" 30
		# Without persistence a stopped node has no data left; dropping its
		# cluster config makes the next start create a clean cluster.
		rm -f "$(node_dir "$port")/nodes.conf"
	done
	((${#stopped[@]} == 0)) || wait_ports_closed 10 "${stopped[@]}" ||
		log "warning: a node port is still open after the stop; another process serves it"
}

cmd_status() {
	local ours
	ours="$(count_ours)"
	if ((ours == ${#PORTS[@]})) && cluster_ok; then
		echo "redis-cluster: running on ports ${PORTS[*]}, cluster_state:ok"
		return 0
	fi
	if ((ours == 0)); then
		echo "redis-cluster: stopped"
	else
		echo "redis-cluster: degraded ($ours of ${#PORTS[@]} nodes running, cluster not ok)"
	fi
	return 1
}

case "${1:-}" in
start) lock_state "$STATE" && cmd_start ;;
stop) lock_state "$STATE" && cmd_stop ;;
status) cmd_status ;;
*) usage_exit "$0 {start|stop|status}" ;;
esac
