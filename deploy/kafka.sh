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
# A second listener with TLS and SASL (for the tests of KAFKA_TLS* and KAFKA_SASL_*), when
# KAFKA_SECURE_PORT is set:
#   KAFKA_SECURE_PORT      its port on 127.0.0.1 (SASL_SSL: TLS, then PLAIN or SCRAM-SHA-256/512)
#   KAFKA_TLS_KEYSTORE     PEM file with the broker's private key (PKCS#8, unencrypted) and certificate
#   KAFKA_TLS_CLIENT_CA    PEM file of a CA: clients must then show a certificate it signed
#   KAFKA_SASL_USERS       user:password,… accepted by every mechanism (letters, digits, . _ - only)
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
SECURE_PORT="${KAFKA_SECURE_PORT:-}"
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
  local listeners="PLAINTEXT://127.0.0.1:$PORT" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  local scram=() plain_users="" pair
  if [[ -n "$SECURE_PORT" ]]; then
    [[ "$SECURE_PORT" =~ ^[0-9]+$ ]] || die "KAFKA_SECURE_PORT=$SECURE_PORT: not a number"
    [[ -f "${KAFKA_TLS_KEYSTORE:-}" ]] || die "KAFKA_SECURE_PORT needs KAFKA_TLS_KEYSTORE, a PEM file of the key and certificate"
    [[ "${KAFKA_SASL_USERS:-}" =~ ^[A-Za-z0-9._-]+:[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+:[A-Za-z0-9._-]+)*$ ]] \
      || die "KAFKA_SECURE_PORT needs KAFKA_SASL_USERS=user:password,… (letters, digits, . _ -)"
    listeners="$listeners,SECURE://127.0.0.1:$SECURE_PORT"
    protocols="$protocols,SECURE:SASL_SSL"
    for pair in ${KAFKA_SASL_USERS//,/ }; do
      plain_users="$plain_users user_${pair%%:*}=\"${pair#*:}\""
      scram+=(--add-scram "SCRAM-SHA-256=[name=${pair%%:*},password=${pair#*:}]" --add-scram "SCRAM-SHA-512=[name=${pair%%:*},password=${pair#*:}]")
    done
  fi
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
listeners=$listeners,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
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
  if [[ -n "$SECURE_PORT" ]]; then
    cat >>"$dir/server.properties" <<EOF
listener.name.secure.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.secure.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.secure.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$KAFKA_TLS_KEYSTORE
EOF
    if [[ -n "${KAFKA_TLS_CLIENT_CA:-}" ]]; then
      cat >>"$dir/server.properties" <<EOF
listener.name.secure.ssl.client.auth=required
listener.name.secure.ssl.truststore.type=PEM
listener.name.secure.ssl.truststore.location=$KAFKA_TLS_CLIENT_CA
EOF
    fi
  fi
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    java -cp "$CACHE/lib/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-$(java -cp "$CACHE/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)}" \
      -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 || die "formatting the storage failed: $(cat "$dir/format.log")"
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
