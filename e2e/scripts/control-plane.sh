#!/usr/bin/env bash
# Runs a local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager
# (namespace deletion, garbage collection, service account tokens) on free loopback ports.
#
# When the apiserver is ready, prints the path of an admin kubeconfig (usable by kubectl,
# Helm and kube-rs) as its only stdout line. Runs until its stdin reaches end of file or it
# gets SIGINT/SIGTERM, then stops everything it started and removes its directory. A
# parent that keeps a pipe to our stdin therefore takes the control plane down with it
# however it ends.
#
# Environment:
#   AZURE_DRIVER_KUBE_BIN  directory with kube-apiserver and kube-controller-manager
#                          (default: built and cached by build-kube-apiserver.sh)
#   CONTROL_PLANE_DIR      directory to run in, kept on exit (default: a fresh temp dir,
#                          removed on exit)
#   CONTROL_PLANE_ADDRESS  address the apiserver listens on and advertises (default
#                          127.0.0.1; node.sh gives one its pods can reach)
#   CONTROL_PLANE_WORKLOADS=1  also run kube-scheduler and every controller of
#                          kube-controller-manager, so Deployments get running Pods
#                          on a node (node.sh)
# Recipe: ../shared/contracts/local-control-plane.md.
set -euo pipefail

log() { echo "control-plane: $*" >&2; }

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kube_bin="${AZURE_DRIVER_KUBE_BIN:-}"
if [ -z "$kube_bin" ]; then
  kube_bin=$("$script_dir/build-kube-apiserver.sh" | tail -n 1)
fi
address="${CONTROL_PLANE_ADDRESS:-127.0.0.1}"
workloads="${CONTROL_PLANE_WORKLOADS:-0}"
components=(kube-apiserver kube-controller-manager)
[ "$workloads" = 1 ] && components+=(kube-scheduler)
for tool in "${components[@]/#/$kube_bin/}"; do
  [ -x "$tool" ] || { log "missing $tool"; exit 1; }
done
for tool in etcd openssl curl; do
  command -v "$tool" >/dev/null || { log "missing $tool (scripts/test.sh installs it)"; exit 1; }
done

if [ -n "${CONTROL_PLANE_DIR:-}" ]; then
  dir="$CONTROL_PLANE_DIR"
  keep_dir=1
  mkdir -p "$dir"
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/azure-driver-cp.XXXXXX")
  keep_dir=0
fi

# Our stdin, kept for the watcher below (background jobs would otherwise get /dev/null).
exec 3<&0

pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
cleanup() {
  trap - EXIT INT TERM
  if [ -n "${stdin_watcher:-}" ]; then kill "$stdin_watcher" 2>/dev/null || true; fi
  stop_all
  if [ "$keep_dir" = 0 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A random port nobody answers on. Another process may still take it before we bind, so
# start-up is retried with new ports.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
      ! (exec 9<>"/dev/tcp/$address/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
token=$(openssl rand -hex 24)
echo "$token,admin,admin,system:masters" >"$dir/tokens.csv"

# Starts etcd and the apiserver; returns non-zero if either dies before the apiserver is
# ready (typically a port taken in the meantime).
start_once() {
  local etcd_port peer_port api_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  rm -rf "$dir/etcd" "$dir/certs"

  etcd --name default --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" \
    >"$dir/etcd.log" 2>&1 &
  pids+=($!)
  local etcd_pid=$!

  "$kube_bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$address" --advertise-address="$address" \
    --secure-port="$api_port" --insecure-port=0 \
    --cert-dir="$dir/certs" \
    --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$dir/sa.pub" \
    --service-account-signing-key-file="$dir/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    >"$dir/kube-apiserver.log" 2>&1 &
  pids+=($!)
  local api_pid=$!

  for _ in $(seq 600); do
    if ! kill -0 "$etcd_pid" 2>/dev/null || ! kill -0 "$api_pid" 2>/dev/null; then
      return 1
    fi
    if curl -sfk -o /dev/null -H "Authorization: Bearer $token" \
      "https://$address:$api_port/readyz"; then
      API_PORT=$api_port
      return 0
    fi
    sleep 0.2
  done
  log "kube-apiserver not ready after 120 s"
  return 1
}

started=0
for attempt in 1 2 3; do
  if start_once; then
    started=1
    break
  fi
  log "start attempt $attempt failed; last apiserver log lines:"
  tail -n 5 "$dir/kube-apiserver.log" >&2 || true
  stop_all
done
[ "$started" = 1 ] || exit 1

# The apiserver's self-signed bundle (serving certificate and its CA) verifies the server.
kubeconfig="$dir/kubeconfig"
controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token
[ "$workloads" = 1 ] && controllers='*'
ca_data=$(base64 -w0 <"$dir/certs/apiserver.crt")
cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: azure-driver-local
  cluster:
    server: https://$address:$API_PORT
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $token
contexts:
- name: azure-driver-local
  context:
    cluster: azure-driver-local
    user: admin
    namespace: default
current-context: azure-driver-local
EOF
chmod 600 "$kubeconfig"

"$kube_bin/kube-controller-manager" \
  --kubeconfig="$kubeconfig" \
  --controllers="$controllers" \
  --service-account-private-key-file="$dir/sa.key" \
  --root-ca-file="$dir/certs/apiserver.crt" \
  --leader-elect=false --port=0 --secure-port=0 \
  >"$dir/kube-controller-manager.log" 2>&1 &
pids+=($!)
if [ "$workloads" = 1 ]; then
  "$kube_bin/kube-scheduler" --kubeconfig="$kubeconfig" --leader-elect=false \
    --port=0 --secure-port=0 >"$dir/kube-scheduler.log" 2>&1 &
  pids+=($!)
fi

log "ready: kube-apiserver https://$address:$API_PORT, logs in $dir"
echo "$kubeconfig"

cat <&3 >/dev/null &
stdin_watcher=$!
# Return when stdin closes or any component dies.
wait -n "$stdin_watcher" "${pids[@]}" || true
if kill -0 "$stdin_watcher" 2>/dev/null; then
  log "a component exited; see logs in $dir"
  kill "$stdin_watcher" 2>/dev/null || true
  exit 1
fi
