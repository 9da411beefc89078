#!/usr/bin/env bash
# Builds the Kubernetes tools that the chart's checks use, from the Go module proxy and PyPI, and
# keeps them in ${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/k8s/ (K8S_TOOLS_DIR overrides):
#
#   helm             helm.sh/helm/v4 (v3.22.0 is served but not approved here, so v4)
#   helm-unittest    the helm-unittest plugin, built from its module (its replace directive keeps
#                    `go install` from taking it) and installed without its download hook
#   kubeconform      strict schema checks, against schemas generated offline (below)
#   kube-apiserver   a real API server, and kubectl, built from the k8s.io/kubernetes module
#   schemas/         JSON schemas from the same release's OpenAPI document (openapi2jsonschema)
#   crds/            the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs
#
#   scripts/k8s/tools.sh [build]   build what is missing; print the tools' folder
#   scripts/k8s/tools.sh path      print the folder; exit 1 unless everything is built
#
# Cold, kube-apiserver takes about 10 CPU-minutes and 2.4 GB; everything else a few minutes.
# etcd comes from Debian (etcd-server), installed by .ci/run.
set -euo pipefail
# (the body is one group, read whole before it runs: editing this file during a build cannot break it)
{

HELM_VERSION=4.3.2
UNITTEST_VERSION=1.1.2
KUBECONFORM_VERSION=0.8.0
K8S_VERSION=1.37.2
OPENAPI2JSONSCHEMA_VERSION=0.9.1
# the ServiceMonitor and PrometheusRule CRDs, from the operator's module (its newest served here)
PROMETHEUS_OPERATOR_VERSION=0.85.0

dir="${K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/k8s}"
bin="$dir/bin"
stamp="helm-$HELM_VERSION unittest-$UNITTEST_VERSION kubeconform-$KUBECONFORM_VERSION k8s-$K8S_VERSION o2js-$OPENAPI2JSONSCHEMA_VERSION prom-op-$PROMETHEUS_OPERATOR_VERSION"

complete() {
  [[ "$(cat "$dir/versions" 2>/dev/null)" == "$stamp" ]] \
    && [[ -x "$bin/helm" && -x "$bin/kubeconform" && -x "$bin/kube-apiserver" && -x "$bin/kubectl" ]] \
    && [[ -x "$dir/helm-plugins/unittest/untt" && -f "$dir/schemas/v$K8S_VERSION-standalone-strict/service-v1.json" ]] \
    && [[ -f "$dir/crds/servicemonitors.yaml" && -f "$dir/crds/prometheusrules.yaml" ]]
}

case "${1:-build}" in
  path)
    complete || { echo "k8s tools: not built: run scripts/k8s/tools.sh build" >&2; exit 1; }
    echo "$dir"
    exit 0
    ;;
  build) ;;
  *)
    echo "usage: scripts/k8s/tools.sh [build|path]" >&2
    exit 2
    ;;
esac
if complete; then
  echo "$dir"
  exit 0
fi

command -v go >/dev/null || { echo "k8s tools: go not found" >&2; exit 1; }
mkdir -p "$bin" "$dir/src"
export GOBIN="$bin" GOFLAGS="${GOFLAGS:-} -buildvcs=false"
say() { echo "k8s tools: $*" >&2; }

# a module's source, writable, from the module cache (for the modules that need their go.mod fixed)
module_dir() { # module version: the module's folder in the module cache (read-only)
  go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}
module_copy() { # module version target
  local src
  src="$(module_dir "$1" "$2")"
  rm -rf "$3"
  cp -r "$src" "$3"
  chmod -R u+w "$3"
}

if [[ ! -x "$bin/helm" ]] || ! "$bin/helm" version --short 2>/dev/null | grep -q "v$HELM_VERSION"; then
  say "building helm v$HELM_VERSION"
  go install "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION" >&2
fi

if [[ ! -x "$bin/kubeconform" ]] || ! "$bin/kubeconform" -v 2>/dev/null | grep -q "$KUBECONFORM_VERSION"; then
  say "building kubeconform v$KUBECONFORM_VERSION"
  go install "github.com/yannh/kubeconform/cmd/kubeconform@v$KUBECONFORM_VERSION" >&2
fi

plugin="$dir/helm-plugins/unittest"
if [[ ! -x "$plugin/untt" || "$(cat "$plugin/.version" 2>/dev/null)" != "$UNITTEST_VERSION" ]]; then
  say "building helm-unittest v$UNITTEST_VERSION"
  src="$dir/src/helm-unittest"
  module_copy github.com/helm-unittest/helm-unittest "v$UNITTEST_VERSION" "$src"
  rm -rf "$plugin"
  mkdir -p "$plugin"
  (cd "$src" && GOWORK=off GOFLAGS="$GOFLAGS -mod=mod" go build -o "$plugin/untt" ./cmd/helm-unittest >&2)
  # a plugin.yaml of our own: the module's runs install and update hooks that download a release
  cat >"$plugin/plugin.yaml" <<YAML
name: unittest
version: "$UNITTEST_VERSION"
usage: unit tests of a chart's templates
description: helm-unittest v$UNITTEST_VERSION, built from its Go module
ignoreFlags: false
command: "\$HELM_PLUGIN_DIR/untt"
YAML
  echo "$UNITTEST_VERSION" >"$plugin/.version"
  rm -rf "$src"
fi

if [[ ! -x "$bin/kube-apiserver" || ! -x "$bin/kubectl" ]] \
  || ! "$bin/kubectl" version --client 2>/dev/null | grep -q "v$K8S_VERSION"; then
  say "building kube-apiserver and kubectl v$K8S_VERSION (about 10 CPU-minutes the first time)"
  src="$dir/src/kubernetes"
  module_copy k8s.io/kubernetes "v$K8S_VERSION" "$src"
  # The module is published for building inside its own repository: its go.work and the replace
  # block point at ./staging, which the module zip lacks. Without them, each k8s.io/* v0.0.0
  # requirement is pinned to the published module of the same release (v0.<minor>.<patch>).
  rm -f "$src/go.work" "$src/go.work.sum"
  python3 - "$src/go.mod" "0.${K8S_VERSION#1.}" <<'PY'
import re, sys
path, staged = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r"(?ms)^replace \(\n.*?^\)\n", "", text)
text = re.sub(r"(?m)^replace k8s\.io/\S+ => \./staging/\S+\n", "", text)
text = re.sub(r"(?m)^(\s*k8s\.io/[\w./-]+) v0\.0\.0$", lambda m: f"{m.group(1)} v{staged}", text)
open(path, "w").write(text)
PY
  ver_pkg=k8s.io/component-base/version
  ldflags="-X $ver_pkg.gitVersion=v$K8S_VERSION -X $ver_pkg.gitMajor=1 -X $ver_pkg.gitMinor=${K8S_VERSION#1.}"
  ldflags="${ldflags%.*}"
  (cd "$src" && GOWORK=off GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "$ldflags" -o "$bin/" ./cmd/kube-apiserver ./cmd/kubectl >&2)
  rm -rf "$src"
fi

schemas="$dir/schemas/v$K8S_VERSION-standalone-strict"
if [[ ! -f "$schemas/service-v1.json" ]]; then
  say "generating JSON schemas from the v$K8S_VERSION OpenAPI document"
  venv="$dir/venv"
  if ! "$venv/bin/openapi2jsonschema" --help >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    # --no-deps: it pins old versions of its dependencies that no longer install; these work
    "$venv/bin/pip" install -q --no-deps "openapi2jsonschema==$OPENAPI2JSONSCHEMA_VERSION"
    "$venv/bin/pip" install -q jsonref click pyyaml
  fi
  rm -rf "$schemas"
  mkdir -p "$schemas"
  swagger="$(module_dir k8s.io/kubernetes "v$K8S_VERSION")/api/openapi-spec/swagger.json"
  # --expanded names files <kind>-<group>-<version>.json, as kubeconform looks them up (without it
  # autoscaling/v1 and v2 share one file). The output folder must be relative: given an absolute
  # one, the tool resolves its $refs against the working folder joined with it. (A few recursive
  # types of workload scheduling fail with a recursion error; the chart uses none of them.)
  (cd "$dir/schemas" && "$venv/bin/openapi2jsonschema" -o "v$K8S_VERSION-standalone-strict" \
    --expanded --kubernetes --stand-alone --strict "$swagger" >"$dir/schemas/openapi2jsonschema.log" 2>&1)
fi

if [[ ! -f "$dir/crds/servicemonitors.yaml" || ! -f "$dir/crds/prometheusrules.yaml" ]]; then
  say "taking the ServiceMonitor and PrometheusRule CRDs from prometheus-operator v$PROMETHEUS_OPERATOR_VERSION"
  crds="$(module_dir github.com/prometheus-operator/prometheus-operator "v$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd"
  mkdir -p "$dir/crds"
  for kind in servicemonitors prometheusrules; do
    cp "$crds/monitoring.coreos.com_$kind.yaml" "$dir/crds/$kind.yaml"
    chmod u+w "$dir/crds/$kind.yaml"
  done
fi

echo "$stamp" >"$dir/versions"
complete || { echo "k8s tools: build incomplete" >&2; exit 1; }
echo "$dir"
exit
}
