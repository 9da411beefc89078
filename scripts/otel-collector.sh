#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that the OpenTelemetry test runs (OTLP receiver, batch
# processor, debug exporter; manifest: scripts/otelcol-builder.yaml) with the collector builder,
# from the Go module proxy, and prints the binary's path. Needs Go; about 3 minutes the first
# time, then the binary is reused.
#
#   scripts/otel-collector.sh [build]   build unless present; print the path
#   scripts/otel-collector.sh path      print the path; exit 1 if it is not built
#
# The binary goes to ${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/otelcol-0.165.0/ (OTELCOL_DIR
# overrides); the test finds it there, or at OTELCOL_BIN.
set -euo pipefail

VERSION=0.165.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/otelcol-builder.yaml"
dir="${OTELCOL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/otelcol-$VERSION}"
bin="$dir/otelcol-peertracker"

case "${1:-build}" in
  path)
    [[ -x "$bin" ]] || { echo "otel-collector: not built: run scripts/otel-collector.sh build" >&2; exit 1; }
    echo "$bin"
    exit 0
    ;;
  build) ;;
  *)
    echo "usage: scripts/otel-collector.sh [build|path]" >&2
    exit 2
    ;;
esac

# (a build of another manifest is not reused: the manifest's hash is kept beside the binary)
sum="$(sha256sum "$manifest" | cut -d' ' -f1)"
if [[ -x "$bin" && "$(cat "$dir/manifest.sha256" 2>/dev/null)" == "$sum" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "otel-collector: go not found (Debian: apt-get install golang, or Go from go.dev)" >&2; exit 1; }
mkdir -p "$dir"
export GOBIN="$dir/tools" GOFLAGS="${GOFLAGS:-} -buildvcs=false"
echo "otel-collector: building the collector builder v$VERSION" >&2
go install "go.opentelemetry.io/collector/cmd/builder@v$VERSION" >&2
echo "otel-collector: building the collector (about 3 minutes the first time)" >&2
rm -rf "$dir/src"
(cd "$dir" && "$GOBIN/builder" --config "$manifest" >&2)
# the binary is all that is kept; the generated sources are rebuilt from the manifest
mv "$dir/src/otelcol-peertracker" "$bin.tmp"
mv "$bin.tmp" "$bin"
rm -rf "$dir/src"
echo "$sum" >"$dir/manifest.sha256"
"$bin" --version >&2
echo "$bin"
