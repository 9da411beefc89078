#!/usr/bin/env bash
# The whole PeerTracker cluster on one machine, without Docker: a 6-node Redis Cluster
# (deploy/local-redis-cluster.sh), a Kafka broker (deploy/kafka.sh), two gateways sharing them, and
# a stats worker counting their announce events into the Redis Cluster, and the stats API.
#
#   deploy/local-cluster.sh          start everything; prints the URLs
#   deploy/local-cluster.sh stop     stop everything and delete the data directory
#
# Needs a build (npm ci && npm run build), redis-server and redis-cli, Java 17 and Maven.
# Variables:
#   LOCAL_CLUSTER_DIR  data, logs and pid files (default ./.local-cluster; `stop` deletes it)
#   BASE_PORT          Redis nodes on BASE_PORT … BASE_PORT+5 (default 7000; bus ports + 10000)
#   KAFKA_PORT         the Kafka broker (default 9092; its controller on the next port)
#   GATEWAY_PORT       gateway 1's HTTP and UDP port (default 6969); gateway 2 on the next one
#   API_PORT           the stats API (default 8080)
#   WORKER_PORT        the stats worker's /health and /metrics (default 9470)
# Other variables the services read (TRACKER_*, STATS_*, e.g. STATS_ROLLUP_EVERY_MS) pass through.
# Start and stop with the same variables. Everything listens on 127.0.0.1 only, without passwords:
# for a laptop, not for production.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="${LOCAL_CLUSTER_DIR:-./.local-cluster}"
GATEWAY_PORT="${GATEWAY_PORT:-6969}"
API_PORT="${API_PORT:-8080}"
WORKER_PORT="${WORKER_PORT:-9470}"
TIMEOUT_S=60

die() { echo "local-cluster: $*" >&2; exit 1; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ "$GATEWAY_PORT" =~ ^[0-9]+$ ]] && ((GATEWAY_PORT >= 1024 && GATEWAY_PORT < 65535)) \
  || die "GATEWAY_PORT=$GATEWAY_PORT: need a number from 1024 to 65534"
for v in API_PORT WORKER_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} >= 1024 && ${!v} <= 65535)) || die "$v=${!v}: need a number from 1024 to 65535"
done

stop_all() {
  local name pid
  for name in api worker gateway-2 gateway-1; do
    [[ -f "$DIR/$name.pid" ]] || continue
    pid="$(cat "$DIR/$name.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  [[ -d "$DIR/kafka" ]] && KAFKA_DIR="$DIR/kafka" "$HERE/kafka.sh" stop >/dev/null
  [[ -d "$DIR/redis" ]] && REDIS_CLUSTER_DIR="$DIR/redis" "$HERE/local-redis-cluster.sh" stop >/dev/null
  if [[ -d "$DIR" ]]; then
    [[ -f "$DIR/.peertracker-local-cluster" ]] || die "$DIR was not made by this script; not deleting it"
    rm -rf "$DIR"
  fi
  echo "local cluster stopped"
}

wait_health() {
  local port=$1 name=$2
  for ((t = 0; ; t++)); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return
    kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || die "$name exited: $(tail -3 "$DIR/$name.log")"
    ((t < TIMEOUT_S * 10)) || die "$name did not answer /health within ${TIMEOUT_S}s; its log: $DIR/$name.log"
    sleep 0.1
  done
}

start_all() {
  [[ -f "$ROOT/services/gateway/dist/main.js" && -f "$ROOT/services/stats-worker/dist/main.js" ]] \
    || die "build first: npm ci && npm run build"
  command -v curl >/dev/null || die "curl not found"
  [[ -d "$DIR" ]] && die "$DIR exists: the cluster may be running (run '$0 stop' first, or set LOCAL_CLUSTER_DIR)"
  local p
  for p in "$GATEWAY_PORT" "$((GATEWAY_PORT + 1))" "$API_PORT" "$WORKER_PORT"; do
    port_taken "$p" && die "port $p is taken (GATEWAY_PORT, API_PORT and WORKER_PORT choose the ports)"
  done
  mkdir -p "$DIR"
  touch "$DIR/.peertracker-local-cluster"
  echo "*" >"$DIR/.gitignore"
  DIR="$(cd "$DIR" && pwd)"
  trap 'echo "local-cluster: start failed; stopping what was started" >&2; stop_all >/dev/null 2>&1 || true' EXIT

  local nodes brokers
  nodes="$(REDIS_CLUSTER_DIR="$DIR/redis" "$HERE/local-redis-cluster.sh" start | sed -n 's/^REDIS_CLUSTER_NODES=//p')"
  [[ -n "$nodes" ]] || die "the Redis Cluster did not start"
  brokers="$(KAFKA_DIR="$DIR/kafka" "$HERE/kafka.sh" start | sed -n 's/^KAFKA_BROKERS=//p')"
  [[ -n "$brokers" ]] || die "the Kafka broker did not start"
  # one connection-ID secret for both gateways (a UDP client may be answered by either)
  local secret
  secret="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"

  local i port
  for i in 1 2; do
    port=$((GATEWAY_PORT + i - 1))
    TRACKER_HOST=127.0.0.1 TRACKER_HTTP_PORT=$port TRACKER_UDP_PORT=$port TRACKER_CONNECTION_SECRET=$secret \
      TRACKER_STORE=redis REDIS_CLUSTER_NODES=$nodes KAFKA_BROKERS=$brokers TRACKER_GATEWAY_ID=gateway-$i \
      nohup node "$ROOT/services/gateway/dist/main.js" >"$DIR/gateway-$i.log" 2>&1 &
    echo $! >"$DIR/gateway-$i.pid"
  done
  KAFKA_BROKERS=$brokers REDIS_CLUSTER_NODES=$nodes STATS_WORKER_ID=worker-1 \
    STATS_WORKER_HOST=127.0.0.1 STATS_WORKER_PORT=$WORKER_PORT \
    nohup node "$ROOT/services/stats-worker/dist/main.js" >"$DIR/worker.log" 2>&1 &
  echo $! >"$DIR/worker.pid"
  REDIS_CLUSTER_NODES=$nodes STATS_API_HOST=127.0.0.1 STATS_API_PORT=$API_PORT \
    nohup node "$ROOT/services/stats-worker/dist/api-main.js" >"$DIR/api.log" 2>&1 &
  echo $! >"$DIR/api.pid"
  wait_health "$GATEWAY_PORT" gateway-1
  wait_health "$((GATEWAY_PORT + 1))" gateway-2
  wait_health "$API_PORT" api
  wait_health "$WORKER_PORT" worker
  # (until a gateway has its Kafka producer, its events are dropped and counted)
  for p in "$GATEWAY_PORT" "$((GATEWAY_PORT + 1))"; do
    for ((t = 0; ; t++)); do
      curl -fsS "http://127.0.0.1:$p/metrics" 2>/dev/null | grep -q '^tracker_events_connected 1$' && break
      ((t < TIMEOUT_S * 10)) || die "the gateway on port $p did not connect to Kafka within ${TIMEOUT_S}s; see $DIR/gateway-*.log"
      sleep 0.1
    done
  done
  trap - EXIT

  cat <<EOF
PeerTracker cluster up (data and logs in $DIR):
  gateway 1: http://127.0.0.1:$GATEWAY_PORT/announce  udp://127.0.0.1:$GATEWAY_PORT/announce
  gateway 2: http://127.0.0.1:$((GATEWAY_PORT + 1))/announce  udp://127.0.0.1:$((GATEWAY_PORT + 1))/announce
  metrics:   http://127.0.0.1:$GATEWAY_PORT/metrics  http://127.0.0.1:$((GATEWAY_PORT + 1))/metrics  http://127.0.0.1:$WORKER_PORT/metrics
  stats API: http://127.0.0.1:$API_PORT/v1/series?from=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:00Z)  (routes: http://127.0.0.1:$API_PORT/openapi.json)

REDIS_CLUSTER_NODES=$nodes
KAFKA_BROKERS=$brokers

Stop it with: $0 stop
EOF
}

case "${1:-start}" in
  start) start_all ;;
  stop) stop_all ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (start, stop)" ;;
esac
