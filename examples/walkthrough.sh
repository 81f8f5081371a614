#!/usr/bin/env bash
# The walkthrough (docs/walkthrough.md): deploy twice, diff, roll back — on the in-memory cluster and a
# throwaway SQLite store. Prints each command and its real output.
# Stops at the first command that fails (exit code of that command).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cp -r "$REPO/examples/demo" "$WORK/demo"
cd "$WORK"
export SBKUBE_STATE_URL="$WORK/state.db" SBKUBE_MEMORY_CLUSTER="$WORK/cluster.json"
run() {
  printf '$ %s\n' "$*"
  "$@" 2>&1 || { rc=$?; printf 'walkthrough: failed with exit code %s: %s\n' "$rc" "$*" >&2; exit "$rc"; }
  printf '\n'
}
trap 'rm -rf "$WORK"' EXIT
run sbkube deploy --app-dir demo
# Change a value, a manifest, and drop one manifest file from the web app.
sed -i 's/replicaCount: 1/replicaCount: 2/' demo/config.yaml
sed -i 's/manifests: \[manifests\/web.yaml, manifests\/svc.yaml\]/manifests: [manifests\/web.yaml]/' demo/config.yaml
sed -i "s/nginx:1.27-alpine/nginx:1.28-alpine/" demo/manifests/web.yaml
run sbkube deploy --app-dir demo
run sbkube state list
run sbkube state diff latest~1 latest
run sbkube rollback --app-dir demo --dry-run
run sbkube rollback --app-dir demo
run sbkube state history redis
run sbkube state show latest
