#!/bin/sh
# One-shot: joins the six Redis nodes of docker-compose.yml into a cluster of three masters with
# one replica each, then waits until every node reports the cluster healthy. Does nothing if the
# cluster exists already (a second `up`).
set -eu
nodes="redis-1 redis-2 redis-3 redis-4 redis-5 redis-6"
if redis-cli -h redis-1 cluster info | grep -q '^cluster_state:ok'; then
  echo "redis cluster already formed"
  exit 0
fi
# redis-cli --cluster create wants addresses, not names
addrs=""
for n in $nodes; do
  addrs="$addrs $(getent hosts "$n" | cut -d' ' -f1):6379"
done
# shellcheck disable=SC2086 # one argument per node
redis-cli --cluster create $addrs --cluster-replicas 1 --cluster-yes
for _ in $(seq 1 60); do
  ok=0
  for n in $nodes; do
    redis-cli -h "$n" cluster info | grep -q '^cluster_state:ok' && ok=$((ok + 1))
  done
  [ "$ok" -eq 6 ] && { echo "redis cluster formed"; exit 0; }
  sleep 1
done
echo "redis cluster not healthy after 60 s" >&2
exit 1
