#!/usr/bin/env bash
#
# kafka.sh runs a real single-node Apache Kafka (KRaft, broker and
# controller in one JVM) on loopback for tests. The jars come from Maven
# Central through scripts/kafka/pom.xml; no distribution tarball is needed.
#
#   install            resolve the jars into the cache (idempotent)
#   start              install, format storage once, start, wait until ready
#   stop               stop the broker this script started
#   status             print running/stopped; exit 0 when running
#   logs [-f] [N]      print (or follow) the last N lines of the server log
#   run-class CLASS..  run a Kafka main class with the jars, e.g.
#                      org.apache.kafka.tools.TopicCommand --list ...
#
# Environment (defaults in brackets):
#   KAFKA_PORT [19092]             PLAINTEXT listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT [19093]  CONTROLLER listener on 127.0.0.1
#   KAFKA_VERSION [4.4.0]          org.apache.kafka:kafka_2.13 version
#   KAFKA_HEAP_OPTS [-Xms256m -Xmx768m]
#   KAFKA_START_TIMEOUT [120]      seconds to wait for the broker
#   KAFKA_STOP_TIMEOUT [60]        seconds before SIGKILL on stop
#   SERVICES_DIR [<repo>/.services] state lives in $SERVICES_DIR/kafka
set -euo pipefail

SCRIPT_NAME=kafka
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"

POM="$REPO_ROOT/scripts/kafka/pom.xml"
STATE="$SERVICES_DIR/kafka"
LIBS="$STATE/libs"
DATA="$STATE/data"
LOGS="$STATE/logs"
PIDFILE="$STATE/kafka.pid"
PROPS="$STATE/server.properties"
LOG4J="$STATE/log4j2.xml"
TOOLS_LOG4J="$STATE/tools-log4j2.xml"
CLUSTER_ID_FILE="$STATE/cluster.id"
FORMATTED_FILE="$STATE/formatted.ports"
SERVER_LOG="$LOGS/server.log"
CONSOLE_LOG="$LOGS/kafka.out"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# PID_PATTERN identifies our broker in /proc/<pid>/cmdline.
PID_PATTERN="kafka.Kafka $PROPS"

# STARTED_MESSAGE is what KafkaRaftServer logs once the broker is up.
STARTED_MESSAGE="Kafka Server started"

# install_stamp names what the jar cache was resolved from, so a changed
# pom or version triggers a new resolve and an unchanged one does not.
install_stamp() {
	printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

# installed succeeds when the jar cache matches the pom and version.
installed() {
	[[ -f "$LIBS/.installed" && "$(cat "$LIBS/.installed")" == "$(install_stamp)" ]]
}

cmd_install() {
	local stamp
	stamp="$(install_stamp)"
	if installed; then
		log "kafka $KAFKA_VERSION already installed in $LIBS"
		return 0
	fi

	need_cmd java openjdk-17-jre-headless
	need_cmd mvn maven
	java_major_ok || die "Kafka 4 needs Java 17 or newer; found: $(java -version 2>&1 | head -n1)"

	log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
	local tmp="$LIBS.tmp.$$" started
	started="$(now_s)"
	rm -rf "$tmp"
	mkdir -p "$STATE"
	# Maven writes nothing next to the pom for copy-dependencies, but run it
	# from the state dir anyway so the checkout stays clean.
	if ! (cd "$STATE" && mvn -q -B -f "$POM" \
		-Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp") >"$STATE/install.log" 2>&1; then
		tail_log "$STATE/install.log"
		rm -rf "$tmp"
		die "maven could not resolve kafka $KAFKA_VERSION (full output in $STATE/install.log)"
	fi
	[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"

	printf '%s\n' "$stamp" >"$tmp/.installed"
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
	log "installed kafka $KAFKA_VERSION ($(find "$LIBS" -name '*.jar' | wc -l) jars) in $(($(now_s) - started))s"
}

java_major_ok() {
	local v
	v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
	[[ "${v%%.*}" =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17))
}

# run_class [timeout S] CLASS ARGS... runs a Kafka main class with a small
# heap and a console-only log4j2 config that prints warnings and errors,
# optionally killed after S seconds.
run_class() {
	local limit=()
	if [[ "${1:-}" == timeout ]]; then
		limit=(timeout "$2")
		shift 2
	fi
	write_tools_log4j
	"${limit[@]}" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dlog4j2.configurationFile="$TOOLS_LOG4J" \
		-cp "$LIBS/*" "$@"
}

write_tools_log4j() {
	mkdir -p "$STATE"
	cat >"$TOOLS_LOG4J" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="stderr"/></Root>
  </Loggers>
</Configuration>
EOF
}

# write_config writes server.properties and the broker's log4j2 config from
# the current environment, on every start.
write_config() {
	mkdir -p "$DATA" "$LOGS"
	cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh on every start; edit the script, not this.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA

# Topics are created explicitly by the sidecar and the tests.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1

# One node: every internal topic has a single replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1

# Tests join groups often; do not wait for more members.
group.initial.rebalance.delay.ms=0

# After a kill -9 the new process cannot register until the old broker
# session expires (9 s by default); a shorter session shortens that wait.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000

# The event log is the truth: keep records and committed offsets forever
# (offsets of idle groups would otherwise expire after 7 days).
log.retention.ms=-1
log.retention.bytes=-1
offsets.retention.minutes=5256000
EOF

	cat >"$LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh: INFO to server.log, WARN to kafka.out. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <Console name="console" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
    <RollingFile name="server" fileName="$SERVER_LOG" filePattern="$SERVER_LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="50MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO">
      <AppenderRef ref="server"/>
      <AppenderRef ref="console" level="WARN"/>
    </Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

# format_storage formats the KRaft log dir once, as a standalone controller
# whose voter set is this node. The controller port is recorded because the
# voter set keeps that endpoint: a later change needs a fresh data dir.
format_storage() {
	local ports="$KAFKA_PORT $KAFKA_CONTROLLER_PORT"
	if [[ -f "$DATA/meta.properties" ]]; then
		local was
		was="$(cat "$FORMATTED_FILE" 2>/dev/null || true)"
		if [[ -n "$was" && "${was#* }" != "$KAFKA_CONTROLLER_PORT" ]]; then
			die "$DATA was formatted with controller port ${was#* }, not $KAFKA_CONTROLLER_PORT; use that port or remove $DATA"
		fi
		return 0
	fi

	if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
		# A Kafka cluster id is 16 random bytes in unpadded base64url.
		head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$CLUSTER_ID_FILE"
	fi
	log "formatting $DATA (cluster id $(cat "$CLUSTER_ID_FILE"))"
	if ! run_class kafka.tools.StorageTool format --standalone \
		-t "$(cat "$CLUSTER_ID_FILE")" -c "$PROPS" >"$LOGS/format.log" 2>&1; then
		tail_log "$LOGS/format.log"
		die "formatting storage failed"
	fi
	printf '%s\n' "$ports" >"$FORMATTED_FILE"
}

# cluster_id_at prints the cluster id of the Kafka at $BOOTSTRAP, proving
# that it answers metadata requests. It fails when none answers in time.
cluster_id_at() {
	local out
	out="$(run_class timeout "${1:-30}" org.apache.kafka.tools.ClusterTool \
		cluster-id --bootstrap-server "$BOOTSTRAP" 2>/dev/null)" || return 1
	out="$(sed -n 's/^Cluster ID: *//p' <<<"$out")"
	[[ -n "$out" ]] || return 1
	printf '%s\n' "$out"
}

# broker_started succeeds once this start's part of the server log says the
# server started. LOG_OFFSET and OUT_OFFSET are the sizes of the server log
# and the console log before the start.
broker_started() {
	[[ -f "$SERVER_LOG" ]] || return 1
	local offset="$LOG_OFFSET"
	(($(file_size "$SERVER_LOG") >= offset)) || offset=0 # it rolled over
	tail -c +"$((offset + 1))" "$SERVER_LOG" | grep -qF "$STARTED_MESSAGE"
}

# wait_ready waits until our broker logged its start, listens, and answers a
# metadata request with our cluster id. It dies with the log tail otherwise.
wait_ready() {
	local deadline=$(($(now_s) + KAFKA_START_TIMEOUT)) want got
	want="$(cat "$CLUSTER_ID_FILE" 2>/dev/null || true)"
	while true; do
		if ! pid_alive "$PIDFILE" "$PID_PATTERN"; then
			tail_log "$CONSOLE_LOG" 20 "$OUT_OFFSET"
			tail_log "$SERVER_LOG" 40 "$LOG_OFFSET"
			rm -f "$PIDFILE"
			die "kafka exited during startup"
		fi
		if broker_started && port_open "$KAFKA_PORT"; then
			break
		fi
		if (($(now_s) >= deadline)); then
			tail_log "$SERVER_LOG" 40 "$LOG_OFFSET"
			die "kafka did not start within ${KAFKA_START_TIMEOUT}s (pid $(pid_read "$PIDFILE"), still running; see $SERVER_LOG)"
		fi
		sleep 0.5
	done

	local left=$((deadline - $(now_s)))
	((left < 15)) && left=15
	got="$(cluster_id_at "$left")" || {
		tail_log "$SERVER_LOG" 40 "$LOG_OFFSET"
		die "kafka logged its start but does not answer metadata requests on $BOOTSTRAP"
	}
	[[ -z "$want" || "$got" == "$want" ]] ||
		die "kafka on $BOOTSTRAP has cluster id $got, expected $want"
}

cmd_start() {
	local started
	started="$(now_s)"
	if pid_alive "$PIDFILE" "$PID_PATTERN"; then
		if port_open "$KAFKA_PORT"; then
			log "already running (pid $(pid_read "$PIDFILE")) on $BOOTSTRAP"
			return 0
		fi
		log "pid $(pid_read "$PIDFILE") is running but $BOOTSTRAP does not answer yet; waiting"
		LOG_OFFSET=0 OUT_OFFSET=0
		wait_ready
		log "ready on $BOOTSTRAP"
		return 0
	fi
	rm -f "$PIDFILE"

	cmd_install

	local port foreign
	for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
		port_open "$port" || continue
		if [[ "$port" == "$KAFKA_PORT" ]] && foreign="$(cluster_id_at 15)"; then
			log "a Kafka not started by this script already answers on $BOOTSTRAP (cluster id $foreign); using it"
			return 0
		fi
		die "127.0.0.1:$port is taken by something that is not our Kafka; stop it or set KAFKA_PORT and KAFKA_CONTROLLER_PORT"
	done

	write_config
	format_storage

	LOG_OFFSET="$(file_size "$SERVER_LOG")"
	OUT_OFFSET="$(file_size "$CONSOLE_LOG")"
	log "starting kafka $KAFKA_VERSION on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
	# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags.
	start_bg "$PIDFILE" "$CONSOLE_LOG" java $KAFKA_HEAP_OPTS \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOG4J" \
		-Dkafka.logs.dir="$LOGS" \
		-cp "$LIBS/*" kafka.Kafka "$PROPS"
	wait_ready
	log "ready on $BOOTSTRAP (pid $(pid_read "$PIDFILE"), cluster id $(cat "$CLUSTER_ID_FILE"), $(($(now_s) - started))s)"
}

cmd_stop() {
	local ours=""
	pid_alive "$PIDFILE" "$PID_PATTERN" && ours=1
	stop_pid "$PIDFILE" "$PID_PATTERN" kafka "$KAFKA_STOP_TIMEOUT"
	if [[ -n "$ours" ]]; then
		wait_ports_closed 10 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ||
			log "warning: a port is still open after the stop; another process serves it"
	fi
}

cmd_status() {
	if pid_alive "$PIDFILE" "$PID_PATTERN"; then
		if port_open "$KAFKA_PORT"; then
			echo "kafka: running (pid $(pid_read "$PIDFILE")) on $BOOTSTRAP"
			return 0
		fi
		echo "kafka: starting (pid $(pid_read "$PIDFILE")), $BOOTSTRAP not answering yet"
		return 1
	fi
	if port_open "$KAFKA_PORT"; then
		echo "kafka: stopped (ours); $BOOTSTRAP is served by a process this script did not start"
	else
		echo "kafka: stopped"
	fi
	return 1
}

cmd_logs() {
	local follow="" lines=100
	for arg in "$@"; do
		case "$arg" in
		-f) follow=1 ;;
		*[!0-9]* | "") die "logs: unknown argument $arg" ;;
		*) lines="$arg" ;;
		esac
	done
	[[ -f "$SERVER_LOG" ]] || die "no log yet at $SERVER_LOG"
	if [[ -n "$follow" ]]; then
		exec tail -n "$lines" -F "$SERVER_LOG"
	fi
	tail -n "$lines" "$SERVER_LOG"
}

cmd_run_class() {
	(($# > 0)) || die "run-class: name a main class"
	installed || { lock_state "$STATE" && cmd_install; }
	run_class "$@"
}

case "${1:-}" in
install) lock_state "$STATE" && cmd_install ;;
start) lock_state "$STATE" && cmd_start ;;
stop) lock_state "$STATE" && cmd_stop ;;
status) cmd_status ;;
logs) shift && cmd_logs "$@" ;;
run-class) shift && cmd_run_class "$@" ;;
*) usage_exit "$0 {install|start|stop|status|logs [-f] [N]|run-class CLASS [ARGS...]}" ;;
esac
