#!/usr/bin/env bash
# Runs a real single-node Apache Kafka (KRaft) on 127.0.0.1:9092, fetched from Maven Central.
#
#   scripts/kafka-local.sh start            fetch Kafka if needed, format storage once, start, wait until ready
#   scripts/kafka-local.sh stop             SIGTERM, wait for a clean shutdown (SIGKILL only after 60 s)
#   scripts/kafka-local.sh status           is it running and answering metadata requests
#   scripts/kafka-local.sh logs [-f]        the broker's server.log
#   scripts/kafka-local.sh fetch            only fetch the Kafka classpath (kafka/pom.xml -> kafka/lib/)
#   scripts/kafka-local.sh reset            stop and delete the local data (topics, offsets)
#   scripts/kafka-local.sh topics ARGS      the real kafka-topics, --bootstrap-server filled in
#   scripts/kafka-local.sh console-consumer ARGS   the real kafka-console-consumer, likewise
#   scripts/kafka-local.sh consumer-groups ARGS    the real kafka-consumer-groups, likewise
#   scripts/kafka-local.sh run CLASS ARGS   any other Kafka tool class from the same classpath
#
# Data, logs and the pid file live in <repo>/.local/kafka/ (git-ignored).
# KAFKA_HEAP_OPTS (default -Xms256m -Xmx768m) bounds the broker's heap.
# A second, independent broker (the chaos tests stop and restart their own) takes
# KAFKA_LOCAL_STATE (its own state folder), KAFKA_LOCAL_PORT and KAFKA_LOCAL_CONTROLLER_PORT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_DIR="$ROOT/kafka"
LIB="$KAFKA_DIR/lib"
STATE="${KAFKA_LOCAL_STATE:-$ROOT/.local/kafka}"
PORT="${KAFKA_LOCAL_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_LOCAL_CONTROLLER_PORT:-9093}"
DATA="$STATE/data"
LOGS="$STATE/logs"
PIDFILE="$STATE/kafka.pid"
PROPS="$STATE/server.properties"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$PORT}"
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
READY_TIMEOUT_S="${KAFKA_READY_TIMEOUT_S:-120}"

log() { echo "kafka-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_tools() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} with apt-get"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
  fi
}

# Copies the runtime classpath of kafka/pom.xml into kafka/lib/ once (and again when the POM changes).
fetch() {
  ensure_tools
  local stamp="$LIB/.pom.sha256" want
  want="$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "fetching Apache Kafka from Maven Central (kafka/pom.xml) into kafka/lib/"
  rm -rf "$LIB"
  mvn -B -q -f "$KAFKA_DIR/pom.xml" dependency:copy-dependencies \
    || die "maven could not fetch Apache Kafka; check that Maven Central is reachable"
  echo "$want" > "$stamp"
}

java_tool() {
  local class="$1"; shift
  # The JVM's own warnings (unified logging, e.g. a thread that failed to start on a loaded
  # machine) go to stdout by default; stderr keeps stdout for the tool's output alone.
  java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Xlog:disable -Xlog:all=warning:stderr \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.yaml" \
    -cp "$LIB/*" "$class" "$@"
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && grep -q kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# A real metadata request: list topics through the Admin client.
metadata_ok() {
  timeout 30 bash -c "$(declare -f java_tool); LIB='$LIB' KAFKA_DIR='$KAFKA_DIR' java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server '$BOOTSTRAP' --list" >/dev/null 2>&1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  fetch
  if pid="$(running_pid)"; then log "already running (pid $pid)"; return 0; fi
  if port_open "$PORT"; then die "127.0.0.1:$PORT is taken by another process; stop it or use KAFKA_BOOTSTRAP with your own broker"; fi
  mkdir -p "$DATA" "$LOGS"
  { sed -e "s/127\.0\.0\.1:9092/127.0.0.1:$PORT/g" -e "s/127\.0\.0\.1:9093/127.0.0.1:$CONTROLLER_PORT/g" "$KAFKA_DIR/server.properties"
    echo; echo "log.dirs=$DATA"; } > "$PROPS"
  if [ ! -f "$DATA/meta.properties" ]; then
    local cluster_id; cluster_id="$(java_tool kafka.tools.StorageTool random-uuid)"
    log "formatting storage in $DATA (cluster id $cluster_id)"
    java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" >"$LOGS/format.log" 2>&1 \
      || { cat "$LOGS/format.log" >&2; die "formatting the storage failed"; }
  fi
  log "starting broker (KRaft, 127.0.0.1:$PORT, heap $HEAP)"
  # setsid: the broker outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid nohup java $HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.yaml" -Dkafka.logs.dir="$LOGS" \
    -cp "$LIB/*" kafka.Kafka "$PROPS" >"$LOGS/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until port_open "$PORT" && metadata_ok; do
    if ! running_pid >/dev/null; then tail -n 30 "$LOGS/server.log" "$LOGS/stdout.log" >&2 2>/dev/null || true; die "the broker exited during start-up (logs above)"; fi
    [ $SECONDS -lt $deadline ] || die "the broker did not answer a metadata request within ${READY_TIMEOUT_S}s; see scripts/kafka-local.sh logs"
    sleep 1
  done
  log "ready (pid $(cat "$PIDFILE")) in ${SECONDS}s"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then log "not running"; rm -f "$PIDFILE"; return 0; fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }; sleep 1; done
  log "no clean shutdown within 60 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    if metadata_ok; then echo "running (pid $pid), answering on $BOOTSTRAP"; return 0; fi
    echo "running (pid $pid) but not answering on $BOOTSTRAP"; return 1
  fi
  # A broker this checkout did not start (another checkout's, or your own) counts if it answers.
  if port_open "$PORT" && metadata_ok; then echo "a broker started elsewhere is answering on $BOOTSTRAP"; return 0; fi
  echo "not running"; return 3
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  fetch) fetch ;;
  reset) stop; rm -rf "$DATA"; log "local data deleted" ;;
  logs) if [ "${1:-}" = "-f" ]; then tail -F "$LOGS/server.log"; else tail -n "${1:-100}" "$LOGS/server.log"; fi ;;
  topics) fetch; java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  console-consumer) fetch; java_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" "$@" ;;
  console-producer) fetch; java_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" "$@" ;;
  consumer-groups) fetch; java_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
  run) fetch; [ $# -gt 0 ] || die "usage: kafka-local.sh run CLASS [ARGS]"; java_tool "$@" ;;
  *) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
