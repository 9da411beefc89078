#!/usr/bin/env bash
# A Docker engine of the tests' own, from Debian's docker.io: its own data root (kept between runs,
# so the stand-in base images and build cache survive), socket and exec root, so it never touches a
# system engine. It makes no firewall rules (--iptables=false) and no default bridge: published
# ports go through docker-proxy on 127.0.0.1, and containers reach each other only on the networks
# a test or compose creates, which they remove again.
#   engine.sh start   start it unless it answers already; prints the DOCKER_HOST to use
#   engine.sh stop    stop every container, remove the networks made, stop the engine
#   engine.sh host    print the DOCKER_HOST
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/docker"
run=/run/peertracker-docker
sock="unix://$run/docker.sock"
export DOCKER_HOST="$sock"

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "${1:-}" in
  host) echo "$sock" ;;
  start)
    if answers; then echo "$sock"; exit 0; fi
    command -v dockerd >/dev/null || { echo "engine.sh: dockerd not found (Debian package docker.io)" >&2; exit 2; }
    mkdir -p "$cache/data" "$run"
    # a stale pid file from an engine killed without cleanup keeps a new one from starting
    rm -f "$run/docker.pid"
    nohup dockerd --data-root "$cache/data" --exec-root "$run/exec" --pidfile "$run/docker.pid" \
      -H "$sock" --storage-driver overlay2 --iptables=false --ip6tables=false --bridge=none \
      --containerd-namespace peertracker --containerd-plugins-namespace peertracker-plugins \
      >"$run/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
      if answers; then echo "$sock"; exit 0; fi
      sleep 0.5
    done
    echo "engine.sh: dockerd did not answer within 30 s; its log:" >&2
    tail -n 30 "$run/dockerd.log" >&2
    exit 1
    ;;
  stop)
    bridges=""
    if answers; then
      ids=$(docker ps -aq)
      [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
      # the Linux bridges of this engine's networks (br-<first 12 of the id>), in case one outlives it
      bridges=$(docker network ls -q --filter driver=bridge | cut -c1-12 | sed 's/^/br-/')
      docker network prune -f >/dev/null 2>&1 || true
    fi
    if [ -f "$run/docker.pid" ]; then
      pid=$(cat "$run/docker.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    for link in $bridges; do
      ip link show "$link" >/dev/null 2>&1 && ip link delete "$link" 2>/dev/null || true
    done
    ;;
  *) echo "usage: engine.sh start|stop|host" >&2; exit 2 ;;
esac
