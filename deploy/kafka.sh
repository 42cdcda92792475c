#!/usr/bin/env bash
# A real Apache Kafka broker (or a cluster of them) for development and tests, without Docker.
#
#   deploy/kafka.sh start [--fresh] [--nodes N]
#       resolve Kafka from Maven Central (first use), format KRaft storage, run combined
#       broker+controller nodes, wait, create topics. One node by default (127.0.0.1:9092).
#       --nodes 3 runs three on 9092, 9093 and 9094, each with its own data and log folder;
#       topics get replication factor 3, min.insync.replicas=2, no unclean leader election.
#       Nodes of a cluster that are down are started again; running ones are left alone.
#   deploy/kafka.sh stop [--node I]   graceful shutdown of every node (or of node I); data stays
#   deploy/kafka.sh status            each node, then each partition's leader and in-sync
#                                     replicas; exit 0 when every node runs and answers
#
# Environment (all optional): POLICYTRACK_KAFKA_PORT (9092: the first node's port),
# POLICYTRACK_KAFKA_CONTROLLER_PORT (one node: port+1; a cluster: port+100, +101, +102),
# POLICYTRACK_KAFKA_DATA_DIR (.data/kafka; a cluster uses <it>-cluster/node-I),
# POLICYTRACK_KAFKA_HEAP (512m per node), POLICYTRACK_PYTHON (the interpreter that creates
# the topics; .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LIB="$ROOT/.cache/kafka/$KAFKA_VERSION/lib"
PORT="${POLICYTRACK_KAFKA_PORT:-9092}"
SINGLE_DATA="${POLICYTRACK_KAFKA_DATA_DIR:-$ROOT/.data/kafka}"
CLUSTER_DATA="$SINGLE_DATA-cluster"
HEAP="${POLICYTRACK_KAFKA_HEAP:-512m}"
PYTHON="${POLICYTRACK_PYTHON:-$ROOT/.venv/bin/python}"
START_TIMEOUT="${POLICYTRACK_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${POLICYTRACK_KAFKA_STOP_TIMEOUT:-60}"
# How many nodes: what start is told; otherwise the cluster recorded by the last start with --nodes.
NODES=1
if [ -f "$CLUSTER_DATA/nodes" ]; then NODES="$(cat "$CLUSTER_DATA/nodes")"; fi

say() { printf 'kafka: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

node_dir() { if [ "$NODES" -eq 1 ]; then echo "$SINGLE_DATA"; else echo "$CLUSTER_DATA/node-$1"; fi; }
node_port() { echo $((PORT + $1 - 1)); }
controller_port() {
  if [ "$NODES" -eq 1 ]; then echo "${POLICYTRACK_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
  else echo $((${POLICYTRACK_KAFKA_CONTROLLER_PORT:-$((PORT + 100))} + $1 - 1)); fi
}
replication() { if [ "$NODES" -ge 3 ]; then echo 3; else echo "$NODES"; fi; }
min_isr() { if [ "$NODES" -ge 3 ]; then echo 2; else echo 1; fi; }
joined() { local sep="$1" list="" item; shift; for item in "$@"; do list="$list${list:+$sep}$item"; done; echo "$list"; }
bootstrap() { local i all=(); for i in $(seq 1 "$NODES"); do all+=("127.0.0.1:$(node_port "$i")"); done; joined , "${all[@]}"; }
voters() { local i all=(); for i in $(seq 1 "$NODES"); do all+=("$i@127.0.0.1:$(controller_port "$i")"); done; joined , "${all[@]}"; }
pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
logfile() { echo "$(node_dir "$1")/logs/server.log"; }

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

pid_alive() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  local i="$1" dir port controller quorum
  dir="$(node_dir "$i")"
  port="$(node_port "$i")"
  controller="$(controller_port "$i")"
  if [ "$NODES" -eq 1 ]; then quorum="controller.quorum.bootstrap.servers=127.0.0.1:$controller"
  else quorum="controller.quorum.voters=$(voters)"; fi
  mkdir -p "$dir/log" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
# Written by deploy/kafka.sh: node $i of $NODES, a combined broker+controller on loopback.
process.roles=broker,controller
node.id=$i
$quorum
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/log
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$(replication)
min.insync.replicas=$(min_isr)
unclean.leader.election.enable=false
offsets.topic.replication.factor=$(replication)
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$(replication)
transaction.state.log.min.isr=$(min_isr)
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$(replication)
share.coordinator.state.topic.min.isr=$(min_isr)
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
EOF
  cat >"$dir/log4j2.properties" <<'EOF'
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

java_for() {
  JAVA=(java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$(node_dir "$1")/log4j2.properties" -cp "$LIB/*")
}

cluster_id() {
  local file="$CLUSTER_DATA/cluster-id"
  [ "$NODES" -gt 1 ] || file="$SINGLE_DATA/cluster-id"
  if [ ! -f "$file" ]; then
    java_for 1
    mkdir -p "$(dirname "$file")"
    "${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$file"
  fi
  cat "$file"
}

format_storage() {
  local i="$1" dir id
  dir="$(node_dir "$i")"
  [ -f "$dir/log/meta.properties" ] && return 0
  id="$(cluster_id)"
  java_for "$i"
  local how=()
  [ "$NODES" -eq 1 ] && how=(--standalone)
  "${JAVA[@]}" kafka.tools.StorageTool format "${how[@]}" -t "$id" -c "$dir/server.properties" \
    >>"$(logfile "$i")" 2>&1 || die "formatting KRaft storage of node $i failed; see $(logfile "$i")"
  say "formatted KRaft storage in $dir/log (cluster $id)"
}

ensure_topics() {
  [ -x "$PYTHON" ] || die "no Python environment at $PYTHON to create topics: run 'make venv' first"
  POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS="$(bootstrap)" POLICYTRACK_KAFKA_REPLICATION_FACTOR="$(replication)" \
    POLICYTRACK_KAFKA_MIN_INSYNC_REPLICAS="$(min_isr)" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m shared.kafka.topics --wait "$START_TIMEOUT" "$@" >&2
}

start_node() {
  local i="$1" port
  port="$(node_port "$i")"
  if pid_alive "$i"; then
    say "node $i already running (pid $(cat "$(pidfile "$i")")) on 127.0.0.1:$port"
    return 0
  fi
  port_open "$port" && die "port $port is taken by another process; stop it or set POLICYTRACK_KAFKA_PORT"
  write_config "$i"
  format_storage "$i"
  say "starting Kafka $KAFKA_VERSION node $i on 127.0.0.1:$port (log: $(logfile "$i"))"
  java_for "$i"
  nohup "${JAVA[@]}" kafka.Kafka "$(node_dir "$i")/server.properties" >>"$(logfile "$i")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$i")"
}

await_node() {
  local i="$1" port deadline=$((SECONDS + START_TIMEOUT))
  port="$(node_port "$i")"
  until port_open "$port"; do
    pid_alive "$i" || { tail -n 30 "$(logfile "$i")" >&2; die "node $i exited during start-up; see $(logfile "$i")"; }
    [ $SECONDS -lt $deadline ] || die "node $i did not open port $port within ${START_TIMEOUT}s; see $(logfile "$i")"
    sleep 0.2
  done
}

start() {
  local fresh="" nodes=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --fresh) fresh=1 ;;
      --nodes) shift; nodes="${1:?--nodes needs a number}" ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  [ "$nodes" -ge 1 ] 2>/dev/null || die "--nodes must be a positive number"
  require_tools
  if [ -n "$fresh" ]; then
    stop
    say "wiping $(if [ "$nodes" -eq 1 ]; then echo "$SINGLE_DATA"; else echo "$CLUSTER_DATA"; fi)"
    if [ "$nodes" -eq 1 ]; then rm -rf "$SINGLE_DATA"; else rm -rf "$CLUSTER_DATA"; fi
  fi
  if [ "$nodes" -ne "$NODES" ] && any_alive; then
    die "$NODES node(s) are running; stop them before starting $nodes"
  fi
  NODES="$nodes"
  if [ "$NODES" -gt 1 ]; then mkdir -p "$CLUSTER_DATA" && echo "$NODES" >"$CLUSTER_DATA/nodes"; else rm -f "$CLUSTER_DATA/nodes"; fi
  resolve
  local i
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  for i in $(seq 1 "$NODES"); do await_node "$i"; done
  ensure_topics
  say "ready on $(bootstrap)"
}

any_alive() { local i; for i in $(seq 1 "$NODES"); do pid_alive "$i" && return 0; done; return 1; }

stop_nodes() {
  local i pids=()
  for i in "$@"; do
    if pid_alive "$i"; then
      pids+=("$(cat "$(pidfile "$i")")")
      say "stopping node $i (pid ${pids[-1]})"
    fi
  done
  # All at once. Whichever node goes last may still wait for a controlled shutdown that needs a
  # controller quorum no longer there; it is killed after a shorter wait (its log is recovered
  # at the next start, and nothing acknowledged is lost: the others held every record too).
  [ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
  local wait="$STOP_TIMEOUT" pid
  [ "$NODES" -eq 1 ] || [ $# -eq 1 ] || wait="${POLICYTRACK_KAFKA_CLUSTER_STOP_TIMEOUT:-20}"
  local deadline=$((SECONDS + wait))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        say "no clean shutdown of pid $pid within ${wait}s; killing"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  done
  for i in "$@"; do pid_alive "$i" || rm -f "$(pidfile "$i")"; done
}

stop() {
  if [ "${1:-}" = "--node" ]; then
    [ "$NODES" -gt 1 ] || die "--node is for a cluster; none was started with --nodes"
    stop_nodes "${2:?--node needs a number}"
    say "stopped node $2; data kept in $(node_dir "$2")"
    return 0
  fi
  if ! any_alive; then
    say "not running"
    return 0
  fi
  stop_nodes $(seq 1 "$NODES")
  say "stopped; data kept in $(if [ "$NODES" -eq 1 ]; then echo "$SINGLE_DATA"; else echo "$CLUSTER_DATA"; fi)"
}

status() {
  local i up=0
  for i in $(seq 1 "$NODES"); do
    if pid_alive "$i" && port_open "$(node_port "$i")"; then
      say "node $i running (pid $(cat "$(pidfile "$i")")) on 127.0.0.1:$(node_port "$i")"
      up=$((up + 1))
    else
      say "node $i not running (127.0.0.1:$(node_port "$i"))"
    fi
  done
  [ "$up" -gt 0 ] || return 1
  [ "$NODES" -eq 1 ] || ensure_topics --describe || true
  [ "$up" -eq "$NODES" ]
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 start [--fresh] [--nodes N] | stop [--node I] | restart | status" >&2; exit 2 ;;
esac
