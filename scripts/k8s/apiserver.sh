#!/usr/bin/env bash
# A real Kubernetes API server on loopback for the Helm chart's tests: Debian's etcd plus the
# kube-apiserver and kubectl that scripts/k8s/tools.sh builds. There is no kubelet, scheduler or
# controller manager: objects are validated (the server's own semantic checks, which schema checks
# miss) and stored, and no pod ever runs.
#
#   scripts/k8s/apiserver.sh start [DIR]   start both (or reuse the pair already ready in DIR);
#                                          prints KUBECONFIG=DIR/kubeconfig on stdout
#   scripts/k8s/apiserver.sh stop [DIR]    stop both and remove DIR (nothing to stop is fine)
#
# DIR defaults to ${K8S_DIR:-./.k8s}; it holds the etcd data, the certificates, the token, the pid
# files and the logs (etcd.log, kube-apiserver.log). Ports are free ones picked at start;
# K8S_ETCD_PORT, K8S_ETCD_PEER_PORT and K8S_API_PORT fix them instead. With K8S_OWNER_PID set, a
# watchdog stops the pair once that process is gone, so a test run that dies before its cleanup
# leaves nothing running. Ready in 3 to 6 s (5 s on 2 busy CPUs), in about 330 MB of memory
# (kube-apiserver 280 to 310 MB, etcd 40 MB); stop takes about 1.5 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
cmd="${1:-}"
dir="${2:-${K8S_DIR:-./.k8s}}"
# absolute, since the kubeconfig names files in DIR and may be read from another directory
dir="$(realpath -m "$dir")"
# stop removes DIR only when it holds this marker, so a mistyped DIR never gets deleted
marker="$dir/.peertracker-k8s-apiserver"

say() { echo "apiserver.sh: $*" >&2; }

# the pid in NAME.pid, if that process is alive and still the one started (a pid file outliving
# its process may by now name an unrelated one): by default its program is NAME, else its
# command line holds the second argument
alive_pid() { # name [text]
  local pid args
  pid="$(cat "$dir/$1.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && running "$pid" || return 1
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  if [[ -n "${2:-}" ]]; then
    [[ "$args" == *"$2"* ]] || return 1
  else
    [[ "$(basename "$(head -n 1 <<<"$args")")" == "$1" ]] || return 1
  fi
  echo "$pid"
}

# whether PID still runs: an exited process stays a zombie until whoever inherited it reaps it,
# which may take a while, and kill -0 succeeds on a zombie
running() { # pid
  local state
  # (the state follows the command's name, in parentheses that may hold spaces)
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

terminate() { # name: TERM, then KILL after 5 s
  local pid
  pid="$(alive_pid "$1")" || { rm -f "$dir/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    say "$1 (pid $pid) ignored TERM for 5 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do running "$pid" || break; sleep 0.1; done
  fi
  rm -f "$dir/$1.pid"
}

stop() {
  [[ -e "$dir" ]] || return 0
  if [[ ! -f "$marker" ]]; then
    # (an empty DIR, made beforehand, is fine to start in)
    [[ -d "$dir" && -z "$(ls -A "$dir")" ]] && return 0
    say "$dir was not made by apiserver.sh start; leaving it alone"
    return 1
  fi
  # the watchdog first, so it does not run a second stop meanwhile (unless it is the one stopping:
  # it execs this script)
  local wd
  if wd="$(alive_pid watchdog apiserver.sh)" && [[ "$wd" != "$$" ]]; then
    kill "$wd" 2>/dev/null || true
  fi
  # the API server before etcd: without etcd it spends its shutdown retrying the storage
  terminate kube-apiserver
  terminate etcd
  rm -rf "$dir"
}

kubectl_() { "$tools/bin/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout=5s "$@"; }

ready() { [[ -f "$dir/kubeconfig" ]] && kubectl_ get --raw /readyz >/dev/null 2>&1; }

# what start prints when something does not come up, before it stops what it started
fail() {
  say "$*"
  local log
  for log in "$dir/etcd.log" "$dir/kube-apiserver.log"; do
    [[ -s "$log" ]] || continue
    echo "--- last lines of $log" >&2
    tail -n 25 "$log" >&2
  done
  exit 1
}

case "$cmd" in
  stop)
    stop
    exit 0
    ;;
  start) ;;
  *)
    echo "usage: scripts/k8s/apiserver.sh start|stop [DIR]" >&2
    exit 2
    ;;
esac

if ! tools="$(bash "$here/tools.sh" path 2>/dev/null)"; then
  say "kube-apiserver and kubectl not built: run scripts/k8s/tools.sh build (10 CPU-minutes cold)"
  exit 1
fi
if ! command -v etcd >/dev/null; then
  say "etcd not found: apt-get install -y --no-install-recommends etcd-server (Debian)"
  exit 1
fi
command -v openssl >/dev/null || { say "openssl not found: apt-get install -y openssl"; exit 1; }
command -v python3 >/dev/null || { say "python3 not found (it picks the free ports)"; exit 1; }

if [[ -f "$marker" ]] && alive_pid kube-apiserver >/dev/null && alive_pid etcd >/dev/null \
  && ready; then
  echo "KUBECONFIG=$dir/kubeconfig"
  exit 0
fi
# whatever a start that died half-way left behind (a live etcd keeps its data dir locked)
stop || { say "choose another DIR"; exit 1; }

started=0
# from here on, a failure of any kind stops what was started and removes DIR
trap '[[ $started == 1 ]] || stop' EXIT
# (a caller's timeout or Ctrl-C too: the signal becomes an exit, so the trap above runs)
trap 'exit 1' INT TERM HUP
mkdir -p "$dir"
chmod 700 "$dir"
touch "$marker"
t0=$SECONDS

# Free ports, asked of the kernel: all three sockets are bound at once, so they differ; another
# process could take one before etcd or the server binds it, in which case start fails and says so.
# (Debian's python3 when there is one: a pyenv shim in front of it adds up to seconds under load)
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3
read -r etcd_port peer_port api_port < <("$py" -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
')
etcd_port="${K8S_ETCD_PORT:-$etcd_port}"
peer_port="${K8S_ETCD_PEER_PORT:-$peer_port}"
api_port="${K8S_API_PORT:-$api_port}"
etcd_url="http://127.0.0.1:$etcd_port"
peer_url="http://127.0.0.1:$peer_port"

# A single-member cluster of its own. Its first leader election waits out the election timeout
# (1 to 2 s by default); a lone member has no peer to lose touch with, so a short one is safe.
# --logger=zap: etcd 3.4's default logger is deprecated and says so at every start.
etcd --name peertracker --data-dir "$dir/etcd" --logger=zap --log-level=warn \
  --heartbeat-interval=25 --election-timeout=250 \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
  --initial-cluster "peertracker=$peer_url" --initial-cluster-state new \
  </dev/null >"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"

# Meanwhile, the credentials. The API server makes its own self-signed serving certificate in
# --cert-dir (for localhost, 127.0.0.1 and the kubernetes service's names), the token authenticates
# the tests as a member of system:masters (AlwaysAllow authorizes everything anyway), and the key
# signs and verifies service-account tokens, which the server refuses to start without.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa.key" 2>/dev/null
token="$(openssl rand -hex 32)"
echo "$token,peertracker-tests,peertracker-tests,system:masters" >"$dir/tokens.csv"
chmod 600 "$dir/sa.key" "$dir/tokens.csv"

for _ in $(seq 1 100); do
  curl -fsS --max-time 2 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && break
  alive_pid etcd >/dev/null || fail "etcd exited at start (port $etcd_port or $peer_port taken?)"
  sleep 0.1
done
curl -fsS --max-time 2 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' \
  || fail "etcd not healthy within 10 s"

# --endpoint-reconciler-type=none: there is no node to publish as the kubernetes service's
# endpoint. ServiceAccount admission off: no token controller fills the service accounts it would
# otherwise wait for. --allow-privileged: so a chart's privileged pods are checked, not refused.
"$tools/bin/kube-apiserver" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --cert-dir="$dir/certs" \
  --etcd-servers="$etcd_url" \
  --token-auth-file="$dir/tokens.csv" \
  --authorization-mode=AlwaysAllow \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$dir/sa.key" \
  --service-account-signing-key-file="$dir/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --endpoint-reconciler-type=none \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --profiling=false \
  </dev/null >"$dir/kube-apiserver.log" 2>&1 &
echo $! >"$dir/kube-apiserver.pid"

# The kubeconfig trusts the certificate the server generates (the file holds the serving
# certificate and the CA that signed it), so the tests' clients verify TLS instead of skipping it.
cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: peertracker
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $dir/certs/apiserver.crt
users:
  - name: peertracker-tests
    user:
      token: $token
contexts:
  - name: peertracker
    context:
      cluster: peertracker
      user: peertracker-tests
      namespace: default
current-context: peertracker
EOF
chmod 600 "$dir/kubeconfig"

while true; do
  alive_pid kube-apiserver >/dev/null || fail "kube-apiserver exited at start"
  alive_pid etcd >/dev/null || fail "etcd exited"
  ready && break
  ((SECONDS - t0 < 60)) || fail "kube-apiserver not ready within 60 s"
  sleep 0.2
done

# The server makes the default namespace itself, shortly after it is ready; a chart test that
# starts before that would see `namespaces "default" not found`.
for _ in $(seq 1 50); do
  kubectl_ get namespace default >/dev/null 2>&1 && break
  kubectl_ create namespace default >/dev/null 2>&1 && break
  sleep 0.1
done
kubectl_ get namespace default >/dev/null 2>&1 || fail "no default namespace"

if [[ -n "${K8S_OWNER_PID:-}" ]]; then
  # polls rather than waits: the owner is not this script's child
  (
    while running "$K8S_OWNER_PID" && [[ -f "$marker" ]]; do sleep 1; done
    [[ -f "$marker" ]] && exec bash "$self" stop "$dir"
  ) </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
fi

started=1
say "ready in $((SECONDS - t0)) s ($dir)"
echo "KUBECONFIG=$dir/kubeconfig"
