#!/usr/bin/env bash
# A local 6-node Redis Cluster (3 masters, 3 replicas) for trying PeerTracker's cluster mode,
# made from this machine's redis-server and redis-cli (Debian: apt-get install redis-server).
#
#   deploy/local-redis-cluster.sh          start it; prints the REDIS_CLUSTER_NODES=... line
#   deploy/local-redis-cluster.sh stop     stop it and delete its data directory
#   deploy/local-redis-cluster.sh status   cluster info of the first node
#
# Variables:
#   BASE_PORT          first port (default 7000): nodes on 127.0.0.1 BASE_PORT … BASE_PORT+5,
#                      cluster bus on each port + 10000
#   REDIS_CLUSTER_DIR  data, configs, logs and pid files (default ./.redis-cluster, relative to
#                      where you run it; gitignored). `stop` deletes it.
# Start and stop with the same BASE_PORT and REDIS_CLUSTER_DIR. Nodes bind 127.0.0.1 only, with
# no password: for a laptop, not for production.
set -euo pipefail

BASE_PORT="${BASE_PORT:-7000}"
DIR="${REDIS_CLUSTER_DIR:-./.redis-cluster}"
HOST=127.0.0.1
NODES=6
TIMEOUT_S=30

die() { echo "local-redis-cluster: $*" >&2; exit 1; }

[[ "$BASE_PORT" =~ ^[0-9]+$ ]] && (( BASE_PORT >= 1024 && BASE_PORT + NODES - 1 + 10000 <= 65535 )) \
  || die "BASE_PORT=$BASE_PORT: need a number from 1024 to $((65535 - 10000 - NODES + 1)) (bus ports are port + 10000)"
PORTS=()
for ((i = 0; i < NODES; i++)); do PORTS+=($((BASE_PORT + i))); done

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; install Redis first (Debian/Ubuntu: sudo apt-get install redis-server, macOS: brew install redis)"
}

# true when something listens on 127.0.0.1:$1 (bash's /dev/tcp, so no ss/lsof needed)
port_taken() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

cli() { local port=$1; shift; redis-cli -h "$HOST" -p "$port" "$@"; }

stop_cluster() {
  local stopped=0 port pidfile pid
  for port in "${PORTS[@]}"; do
    pidfile="$DIR/redis-$port.pid"
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
  done
  if [[ -d "$DIR" ]]; then
    # only delete what looks like ours
    [[ -f "$DIR/.peertracker-redis-cluster" ]] || die "$DIR was not made by this script; not deleting it"
    rm -rf "$DIR"
    echo "stopped $stopped redis-server process(es), removed $DIR"
  else
    echo "nothing to stop: $DIR does not exist"
  fi
}

start_cluster() {
  need redis-server
  need redis-cli
  if [[ -d "$DIR" ]]; then
    die "$DIR exists: a cluster may be running already (run '$0 stop' first, or set REDIS_CLUSTER_DIR)"
  fi
  local port taken=()
  for port in "${PORTS[@]}"; do
    port_taken "$port" && taken+=("$port")
    port_taken "$((port + 10000))" && taken+=("$((port + 10000)) (bus)")
  done
  ((${#taken[@]} == 0)) || die "port(s) already in use on $HOST: ${taken[*]}; stop what uses them or choose another BASE_PORT (e.g. BASE_PORT=$((BASE_PORT + 100)) $0)"

  mkdir -p "$DIR"
  touch "$DIR/.peertracker-redis-cluster"
  echo "*" >"$DIR/.gitignore" # keeps the directory out of git wherever it is made
  DIR="$(cd "$DIR" && pwd)"
  # if anything below fails, do not leave half a cluster running
  trap 'echo "local-redis-cluster: start failed; stopping what was started" >&2; stop_cluster >/dev/null 2>&1 || true' EXIT

  for port in "${PORTS[@]}"; do
    redis-server --port "$port" --bind "$HOST" --protected-mode no \
      --cluster-enabled yes --cluster-config-file "$DIR/nodes-$port.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no --dir "$DIR" \
      --daemonize yes --pidfile "$DIR/redis-$port.pid" --logfile "$DIR/redis-$port.log" \
      || die "redis-server on port $port did not start; see $DIR/redis-$port.log"
  done
  for port in "${PORTS[@]}"; do
    for ((t = 0; ; t++)); do
      [[ "$(cli "$port" ping 2>/dev/null)" == PONG ]] && break
      ((t < TIMEOUT_S * 10)) || die "redis-server on port $port does not answer; see $DIR/redis-$port.log"
      sleep 0.1
    done
  done

  local addrs=()
  for port in "${PORTS[@]}"; do addrs+=("$HOST:$port"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/cluster-create.log" 2>&1 \
    || die "redis-cli --cluster create failed: $(tail -5 "$DIR/cluster-create.log")"

  local ok
  for ((t = 0; ; t++)); do
    ok=0
    for port in "${PORTS[@]}"; do
      info="$(cli "$port" cluster info 2>/dev/null || true)"
      [[ "$info" == *cluster_state:ok* && "$info" == *cluster_known_nodes:$NODES* ]] && ok=$((ok + 1))
    done
    ((ok == NODES)) && break
    ((t < TIMEOUT_S * 10)) || die "cluster_state:ok not reached on all $NODES nodes within ${TIMEOUT_S}s; see $DIR/*.log"
    sleep 0.1
  done
  trap - EXIT

  local IFS=,
  echo "Redis Cluster up: $NODES nodes (3 masters, 3 replicas) on $HOST:${PORTS[0]}-${PORTS[$((NODES - 1))]}, data in $DIR"
  echo "Use it with:"
  echo
  echo "REDIS_CLUSTER_NODES=${addrs[*]}"
  echo
  echo "Stop it with: $0 stop"
}

case "${1:-start}" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  status) need redis-cli; cli "${PORTS[0]}" cluster info ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (start, stop, status)" ;;
esac
