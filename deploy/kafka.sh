#!/usr/bin/env bash
# A real Apache Kafka broker for development and tests, without Docker.
#
#   deploy/kafka.sh start [--fresh]   resolve Kafka from Maven Central (first use), format
#                                     KRaft storage, run broker+controller, wait, create topics
#   deploy/kafka.sh stop              graceful shutdown; the data stays
#   deploy/kafka.sh status            exit 0 when the broker runs and answers
#
# Environment (all optional): POLICYTRACK_KAFKA_PORT (9092), POLICYTRACK_KAFKA_CONTROLLER_PORT
# (port+1), POLICYTRACK_KAFKA_DATA_DIR (.data/kafka), POLICYTRACK_KAFKA_HEAP (512m),
# POLICYTRACK_PYTHON (the interpreter that creates the topics; .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LIB="$ROOT/.cache/kafka/$KAFKA_VERSION/lib"
PORT="${POLICYTRACK_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${POLICYTRACK_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DATA="${POLICYTRACK_KAFKA_DATA_DIR:-$ROOT/.data/kafka}"
HEAP="${POLICYTRACK_KAFKA_HEAP:-512m}"
PYTHON="${POLICYTRACK_PYTHON:-$ROOT/.venv/bin/python}"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/logs/server.log"
START_TIMEOUT="${POLICYTRACK_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${POLICYTRACK_KAFKA_STOP_TIMEOUT:-60}"

say() { printf 'kafka: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

require_tools() {
  command -v java >/dev/null 2>&1 || die "java not found: install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
  if [ ! -f "$LIB/.complete" ]; then
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Apache Maven to fetch Kafka (Debian: apt-get install maven)"
  fi
}

resolve() {
  [ -f "$LIB/.complete" ] && return 0
  say "resolving Apache Kafka $KAFKA_VERSION from Maven Central into ${LIB#"$ROOT"/} (first use only)"
  rm -rf "$LIB" && mkdir -p "$LIB"
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB" \
    || die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  touch "$LIB/.complete"
}

pid_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$DATA/log" "$DATA/logs"
  cat >"$DATA/server.properties" <<EOF
# Written by deploy/kafka.sh: a single combined broker+controller on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/log
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
EOF
  cat >"$DATA/log4j2.properties" <<'EOF'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
EOF
}

JAVA=(java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$DATA/log4j2.properties" -cp "$LIB/*")

format_storage() {
  [ -f "$DATA/log/meta.properties" ] && return 0
  local cluster_id
  cluster_id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  "${JAVA[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$DATA/server.properties" >>"$LOGFILE" 2>&1 || die "formatting KRaft storage failed; see $LOGFILE"
  say "formatted KRaft storage in $DATA/log (cluster $cluster_id)"
}

ensure_topics() {
  [ -x "$PYTHON" ] || die "no Python environment at $PYTHON to create topics: run 'make venv' first"
  POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$PORT" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m shared.kafka.topics --wait "$START_TIMEOUT" >&2
}

start() {
  local fresh="${1:-}"
  require_tools
  if [ "$fresh" = "--fresh" ]; then
    stop
    say "wiping $DATA"
    rm -rf "$DATA"
  fi
  if pid_alive; then
    say "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
    ensure_topics
    return 0
  fi
  port_open "$PORT" && die "port $PORT is taken by another process; stop it or set POLICYTRACK_KAFKA_PORT"
  resolve
  write_config
  format_storage
  say "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (log: $LOGFILE)"
  nohup "${JAVA[@]}" kafka.Kafka "$DATA/server.properties" >>"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$PORT"; do
    pid_alive || { tail -n 30 "$LOGFILE" >&2; die "the broker exited during start-up; see $LOGFILE"; }
    [ $SECONDS -lt $deadline ] || die "the broker did not open port $PORT within ${START_TIMEOUT}s; see $LOGFILE"
    sleep 0.2
  done
  ensure_topics
  say "ready on 127.0.0.1:$PORT"
}

stop() {
  if ! pid_alive; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  say "stopping (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "no clean shutdown within ${STOP_TIMEOUT}s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  say "stopped; data kept in $DATA"
}

status() {
  if pid_alive && port_open "$PORT"; then
    say "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
  else
    say "not running"
    return 1
  fi
}

case "${1:-}" in
  start) shift; start "${1:-}" ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 start [--fresh] | stop | restart | status" >&2; exit 2 ;;
esac
