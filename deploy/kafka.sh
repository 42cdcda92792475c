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
#   deploy/kafka.sh rotate-password P a new password for principal P, applied to the running
#                                     broker (restart the clients that connect as P)
#   deploy/kafka.sh fetch             resolve Kafka from Maven Central only (what start does first)
#
# Every client authenticates (SASL/SCRAM-SHA-512; the broker's own admin principal uses PLAIN,
# a static credential in the broker's 0600 config) and is authorized by ACL, with the KRaft
# StandardAuthorizer and allow.everyone.if.no.acl.found=false. The principals and what each may
# do are in shared/kafka/access.py; their passwords are generated on first start, one 0600 file
# per principal in the credentials folder, and provisioned by deploy/kafka/Provision.java.
#
# Environment (all optional): POLICYTRACK_KAFKA_PORT (9092: the first node's port),
# POLICYTRACK_KAFKA_CONTROLLER_PORT (one node: port+1; a cluster: port+100, +101, +102),
# POLICYTRACK_KAFKA_DATA_DIR (.data/kafka; a cluster uses <it>-cluster/node-I),
# POLICYTRACK_KAFKA_CREDENTIALS_DIR (.data/kafka-credentials: beside the data, so that a --fresh
# start keeps the passwords), POLICYTRACK_KAFKA_TLS (1: clients connect with SASL_SSL, to
# certificates made with openssl in <credentials>/tls), POLICYTRACK_KAFKA_HEAP (512m per node),
# POLICYTRACK_PYTHON (the interpreter that creates the topics; .venv/bin/python),
# POLICYTRACK_KAFKA_JAVA_OPTIONS (instead of the G1 options; the tests ask for C1 and the serial GC).
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
CREDENTIALS="${POLICYTRACK_KAFKA_CREDENTIALS_DIR:-$(dirname "$SINGLE_DATA")/kafka-credentials}"
TLS="${POLICYTRACK_KAFKA_TLS:-}"
case "$TLS" in 0 | false | no) TLS="" ;; esac
CLIENT_PROTOCOL=SASL_PLAINTEXT
[ -z "$TLS" ] || CLIENT_PROTOCOL=SASL_SSL
START_TIMEOUT="${POLICYTRACK_KAFKA_START_TIMEOUT:-90}"
JAVA_OPTIONS="${POLICYTRACK_KAFKA_JAVA_OPTIONS:-}"
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

# Several starts may resolve at once (the test workers of a fresh checkout): one resolves, under
# a lock, into a folder of its own that becomes the library only when complete; the others wait
# for it and use what it made.
resolve() {
  [ -f "$LIB/.complete" ] && return 0
  mkdir -p "$(dirname "$LIB")"
  (
    flock 9
    [ -f "$LIB/.complete" ] && exit 0
    say "resolving Apache Kafka $KAFKA_VERSION from Maven Central into ${LIB#"$ROOT"/} (first use only)"
    local fetched="$LIB.$$"
    rm -rf "$fetched" && mkdir -p "$fetched"
    mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$fetched" || { rm -rf "$fetched"; die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"; }
    touch "$fetched/.complete"
    rm -rf "$LIB" && mv -T "$fetched" "$LIB"
  ) 9>"$LIB.lock"
}

pid_alive() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PLAIN knows two static principals: the broker's admin, and the operator who reads the log by
# hand with kcat. Debian's kcat links librdkafka 2.0.2, whose SCRAM client Kafka 4 rejects
# (librdkafka#4895, fixed in 2.6.1); every other client uses SCRAM-SHA-512.
jaas_plain() {
  local admin users
  admin="$(cat "$CREDENTIALS/admin")"
  users="user_admin=\"$admin\""
  [ "${1:-}" != with-operator ] || users="$users user_operator=\"$(cat "$CREDENTIALS/operator")\""
  echo "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$admin\" $users;"
}

tls_config() {
  [ -n "$TLS" ] || return 0
  cat <<EOF
ssl.keystore.type=PEM
ssl.keystore.certificate.chain=$CREDENTIALS/tls/broker.pem
ssl.keystore.key=$CREDENTIALS/tls/broker.key
ssl.truststore.type=PEM
ssl.truststore.location=$CREDENTIALS/tls/ca.pem
ssl.client.auth=none
EOF
}

write_config() {
  local i="$1" dir port controller quorum listener
  dir="$(node_dir "$i")"
  port="$(node_port "$i")"
  controller="$(controller_port "$i")"
  listener="$(echo "$CLIENT_PROTOCOL" | tr '[:upper:]' '[:lower:]')"
  if [ "$NODES" -eq 1 ]; then quorum="controller.quorum.bootstrap.servers=127.0.0.1:$controller"
  else quorum="controller.quorum.voters=$(voters)"; fi
  mkdir -p "$dir/log" "$dir/logs"
  # The config holds the admin password: readable by its owner only, from its first byte.
  (umask 077 && cat >"$dir/server.properties" <<EOF
# Written by deploy/kafka.sh: node $i of $NODES, a combined broker+controller on loopback.
process.roles=broker,controller
node.id=$i
$quorum
listeners=$CLIENT_PROTOCOL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=$CLIENT_PROTOCOL://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$CLIENT_PROTOCOL
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,$CLIENT_PROTOCOL:$CLIENT_PROTOCOL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$(jaas_plain)
listener.name.$listener.plain.sasl.jaas.config=$(jaas_plain with-operator)
listener.name.$listener.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$(tls_config)
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
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
  )
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
  # shellcheck disable=SC2206  # the options are words on purpose
  JAVA=(java -Xms128m -Xmx"$HEAP" ${JAVA_OPTIONS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20} -Djava.awt.headless=true
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

py() {
  [ -x "$PYTHON" ] || die "no Python environment at $PYTHON: run 'make venv' first"
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" POLICYTRACK_KAFKA_CREDENTIALS_DIR="$CREDENTIALS" "$PYTHON" "$@"
}

ensure_credentials() {
  py -m shared.kafka.access passwords --credentials-dir "$CREDENTIALS" >&2
}

# kcat -F <credentials>/kcat.conf: how people read the log by hand, as the operator (who reads,
# never writes), with PLAIN (see jaas_plain).
write_kcat_config() {
  (umask 077 && {
    echo "bootstrap.servers=$(bootstrap)"
    echo "security.protocol=$CLIENT_PROTOCOL"
    echo "sasl.mechanisms=PLAIN"
    echo "sasl.username=operator"
    echo "sasl.password=$(cat "$CREDENTIALS/operator")"
    [ -z "$TLS" ] || echo "ssl.ca.location=$CREDENTIALS/tls/ca.pem"
  } >"$CREDENTIALS/kcat.conf")
}

# Certificates for the TLS option: a CA of this installation and a certificate for the brokers
# on 127.0.0.1 and localhost; clients trust the CA (POLICYTRACK_KAFKA_SSL_CAFILE).
ensure_tls() {
  [ -n "$TLS" ] || return 0
  local tls="$CREDENTIALS/tls"
  [ -f "$tls/broker.pem" ] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found: install it for POLICYTRACK_KAFKA_TLS"
  (umask 077 && mkdir -p "$tls" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=policytrack local CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext" &&
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 3650 -extfile "$tls/san.ext" -out "$tls/broker.pem" 2>/dev/null) \
    || die "could not make TLS certificates in $tls"
  say "made a CA and a broker certificate in $tls (clients: POLICYTRACK_KAFKA_SSL_CAFILE=$tls/ca.pem)"
}

# What the topics tool and the provisioner connect as: the admin principal.
as_admin() (
  export POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS="$(bootstrap)" POLICYTRACK_KAFKA_USERNAME=admin \
    POLICYTRACK_KAFKA_SECURITY_PROTOCOL="$CLIENT_PROTOCOL"
  [ -z "$TLS" ] || export POLICYTRACK_KAFKA_SSL_CAFILE="$CREDENTIALS/tls/ca.pem"
  "$@"
)

# How to run Provision.java (into PROVISION): compiled once per version of its source (launching the source
# compiles it on every start, a second of CPU each time); from the source where there is no javac.
provisioner() {
  local source="$ROOT/deploy/kafka/Provision.java" classes
  classes="$(dirname "$LIB")/provision-$(sha256sum "$source" | cut -c1-16)"
  if [ ! -f "$classes/Provision.class" ] && command -v javac >/dev/null 2>&1; then
    mkdir -p "$classes.$$" && javac -nowarn -d "$classes.$$" -cp "$LIB/*" "$source" >&2 \
      && { mv -T "$classes.$$" "$classes" 2>/dev/null || rm -rf "$classes.$$"; }
  fi
  if [ -f "$classes/Provision.class" ]; then PROVISION=(-cp "$classes:$LIB/*" Provision); else PROVISION=(-cp "$LIB/*" "$source"); fi
}

# The principals and ACLs of shared/kafka/access.py, applied with Kafka's own Admin client;
# skipped when nothing changed since the last time (the record is kept with the data, so a
# fresh start provisions again).
provision() {
  local spec marker digest data
  data="$(if [ "$NODES" -eq 1 ]; then echo "$SINGLE_DATA"; else echo "$CLUSTER_DATA"; fi)"
  spec="$(py -m shared.kafka.access spec --credentials-dir "$CREDENTIALS")"
  digest="$( (echo "$spec"; for name in $(echo "$spec" | sed -n 's/^user \([^ ]*\) .*/\1/p'); do cat "$CREDENTIALS/$name"; done) \
    | sha256sum | cut -d' ' -f1)"
  marker="$data/provisioned"
  [ -f "$marker" ] && [ "$(cat "$marker")" = "$digest" ] && return 0
  cat >"$data/provision-log4j2.properties" <<'EOF'
rootLogger.level=WARN
rootLogger.appenderRef.stderr.ref=STDERR
appender.stderr.type=Console
appender.stderr.name=STDERR
appender.stderr.target=SYSTEM_ERR
appender.stderr.layout.type=PatternLayout
appender.stderr.layout.pattern=%p %m%n
EOF
  provisioner
  # shellcheck disable=SC2086  # the options are words on purpose
  if ! echo "$spec" | as_admin java -Xmx256m $JAVA_OPTIONS -Dlog4j2.configurationFile="$data/provision-log4j2.properties" \
    "${PROVISION[@]}" "$(bootstrap)" admin "$CREDENTIALS/admin" >&2; then
    die "could not provision the principals and ACLs"
  fi
  echo "$digest" >"$marker"
}

ensure_topics() {
  POLICYTRACK_KAFKA_REPLICATION_FACTOR="$(replication)" POLICYTRACK_KAFKA_MIN_INSYNC_REPLICAS="$(min_isr)" \
    as_admin py -m shared.kafka.topics --wait "$START_TIMEOUT" "$@" >&2
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
  ensure_credentials
  ensure_tls
  local i
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  for i in $(seq 1 "$NODES"); do await_node "$i"; done
  provision
  ensure_topics
  write_kcat_config
  say "ready on $(bootstrap) ($CLIENT_PROTOCOL, SCRAM-SHA-512; passwords in $CREDENTIALS)"
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

rotate_password() {
  local principal="${1:?rotate-password needs a principal}" path
  path="$CREDENTIALS/$principal"
  [ -f "$path" ] || die "no principal $principal (its password would be in $path)"
  [ "$principal" != admin ] || die "the admin password is in each broker's config: stop, delete $path, start"
  any_alive || die "the broker is not running"
  mv "$path" "$path.old"
  ensure_credentials
  if ! (provision); then mv "$path.old" "$path"; die "the new password was not applied; the old one stays"; fi
  rm -f "$path.old"
  say "new password for $principal in $path; restart the clients that connect as $principal"
  [ "$principal" != operator ] || say "the operator also signs in with PLAIN (kcat): restart the broker for that"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  restart) stop; start ;;
  status) status ;;
  rotate-password) shift; rotate_password "$@" ;;
  fetch) require_tools && resolve ;;
  *) echo "usage: $0 start [--fresh] [--nodes N] | stop [--node I] | restart | status | rotate-password P | fetch" >&2; exit 2 ;;
esac
