#!/usr/bin/env bash
# A local Apache Kafka broker (KRaft mode, one node that is broker and controller) from Maven
# Central's jars on this machine's Java (17 or newer): no Docker, no download but Maven's.
#
#   deploy/kafka.sh fetch   the broker's jars into the cache (once); prints their directory
#   deploy/kafka.sh start   start a broker in the background; prints the KAFKA_BROKERS=... line
#   deploy/kafka.sh stop    stop it and delete its data directory
#   deploy/kafka.sh run     run a broker in the foreground (what start runs; tests run this)
#
# Variables:
#   KAFKA_PORT        client port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  the KRaft controller's port (default KAFKA_PORT + 1)
#   KAFKA_DIR         data, config, log and pid file (default ./.kafka, relative to where you run
#                     it; gitignored). `stop` deletes it.
#   KAFKA_CACHE       where the jars go (default ${XDG_CACHE_HOME:-~/.cache}/peertracker/kafka-4.4.0)
#   KAFKA_HEAP        the broker's heap (default 512m)
# Several nodes (each broker and controller; one `run` or `start` per node, each with its own
# ports and KAFKA_DIR):
#   KAFKA_NODE_ID     this node's id (default 1)
#   KAFKA_VOTERS      the controllers, id@host:controller-port,… (default this node alone)
#   KAFKA_CLUSTER_ID  the cluster's id, the same on every node (default a new one: one node)
#   KAFKA_REPLICATION replicas of new topics and of Kafka's own (default 1); min.insync.replicas
#                     is one less (at least 1), so a topic survives one node's loss acknowledged
# The broker listens on 127.0.0.1 only, without TLS or authentication: for a laptop and for
# tests, not for production. Topics are created on first use with the partitions of
# KAFKA_PARTITIONS (default 6).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VERSION=4.4.0
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DIR="${KAFKA_DIR:-./.kafka}"
CACHE="${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/kafka-$VERSION}"
HEAP="${KAFKA_HEAP:-512m}"
PARTITIONS="${KAFKA_PARTITIONS:-6}"
NODE_ID="${KAFKA_NODE_ID:-1}"
VOTERS="${KAFKA_VOTERS:-$NODE_ID@127.0.0.1:$CPORT}"
REPLICATION="${KAFKA_REPLICATION:-1}"
TIMEOUT_S=60

die() { echo "kafka.sh: $*" >&2; exit 1; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ "${KAFKA_CLUSTER_ID:-}" != -* ]] || die "KAFKA_CLUSTER_ID=$KAFKA_CLUSTER_ID: must not start with '-' (kafka-storage would take it for an option)"
for v in PORT CPORT PARTITIONS NODE_ID REPLICATION; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v=${!v}: not a number"
done
((PORT >= 1024 && PORT <= 65535 && CPORT >= 1024 && CPORT <= 65535 && PORT != CPORT)) \
  || die "KAFKA_PORT=$PORT, KAFKA_CONTROLLER_PORT=$CPORT: two different ports from 1024 to 65535"

fetch() {
  if [[ -f "$CACHE/.complete" ]]; then return; fi
  command -v mvn >/dev/null || die "mvn not found; install Maven (Debian: apt-get install maven)"
  mkdir -p "$CACHE/lib"
  # (the pom names the version; the copy is whole once .complete exists)
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$CACHE/lib" -DincludeScope=runtime -Dkafka.version="$VERSION" >&2 \
    || die "fetching Kafka $VERSION's jars with Maven failed (see above)"
  touch "$CACHE/.complete"
}

run() {
  command -v java >/dev/null || die "java not found; install Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
  fetch
  mkdir -p "$DIR/data"
  local dir
  dir="$(cd "$DIR" && pwd)"
  local isr=$((REPLICATION > 1 ? REPLICATION - 1 : 1))
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=$PARTITIONS
default.replication.factor=$REPLICATION
min.insync.replicas=$isr
offsets.topic.replication.factor=$REPLICATION
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$REPLICATION
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    java -cp "$CACHE/lib/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-$(java -cp "$CACHE/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)}" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || die "formatting the storage failed: $(cat "$dir/format.log")"
  fi
  exec java "-Xmx$HEAP" -cp "$CACHE/lib/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$dir" kafka.Kafka "$dir/server.properties"
}

start() {
  if port_taken "$PORT"; then die "127.0.0.1:$PORT is taken (another broker? KAFKA_PORT chooses the port)"; fi
  fetch
  mkdir -p "$DIR"
  "$0" run >"$DIR/broker.log" 2>&1 &
  echo $! >"$DIR/broker.pid"
  for _ in $(seq $((TIMEOUT_S * 10))); do
    if port_taken "$PORT"; then
      echo "KAFKA_BROKERS=127.0.0.1:$PORT"
      return
    fi
    kill -0 "$(cat "$DIR/broker.pid")" 2>/dev/null || die "the broker exited; its log: $DIR/broker.log"
    sleep 0.1
  done
  die "the broker did not answer on 127.0.0.1:$PORT within ${TIMEOUT_S}s; its log: $DIR/broker.log"
}

stop() {
  if [[ -f "$DIR/broker.pid" ]]; then
    local pid
    pid="$(cat "$DIR/broker.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}

case "${1:-start}" in
  fetch) fetch; echo "$CACHE/lib" ;;
  run) run ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: deploy/kafka.sh [fetch|start|stop|run]" ;;
esac
