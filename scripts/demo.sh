#!/usr/bin/env bash
# Brings azure-driver up end to end on this machine, on its embedded defaults:
#   - a local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager)
#     with the AzureResource CRD,
#   - the ARM simulator (armsim) standing in for Azure, over HTTPS with its own CA,
#   - the controller, reconciling the examples in deploy/examples until they are Ready,
#   - a Kafka test broker (librdkafka's mock cluster) and the shim over HTTPS,
# then sends one Brent-shaped Create request and shows its 202, the AzureResource it
# became and the result on Kafka. Runs until Ctrl-C (or exits at once with --once) and
# stops everything it started however it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

once=false
case "${1:-}" in
  --once) once=true ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--once]" >&2; exit 2 ;;
esac

log() { echo "demo: $*" >&2; }

scripts/install-deps.sh
AZURE_DRIVER_KUBE_BIN="$(e2e/scripts/build-kube-apiserver.sh | tail -n 1)"
export AZURE_DRIVER_KUBE_BIN
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/azure-driver/target}"

log "building the controller, the shim, armsim and the Kafka test broker"
cargo build -q -p azure-driver-controller -p azure-driver-shim -p armsim --bins
cargo build -q -p azure-driver-shim --example kafka-test-broker
bin="$CARGO_TARGET_DIR/debug"

work=$(mktemp -d)
pids=()
cleanup() {
  trap - EXIT INT TERM
  # Closing the control plane's and the broker's stdin stops them.
  exec 3>&- 4>&- 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

first_line() { # file, what
  for _ in $(seq 1 600); do
    if [ -s "$1" ]; then head -n 1 "$1"; return 0; fi
    sleep 0.5
  done
  log "$2 did not start"
  return 1
}

# The control plane runs until its stdin (fd 3) closes.
mkfifo "$work/cp.in"
e2e/scripts/control-plane.sh < "$work/cp.in" > "$work/cp.out" &
pids+=($!)
exec 3> "$work/cp.in"
export KUBECONFIG
KUBECONFIG=$(first_line "$work/cp.out" "the control plane")
kubectl apply --server-side -f deploy/crds/azureresources.yaml > /dev/null
kubectl wait --for condition=Established --timeout=60s crd/azureresources.azure-driver.io > /dev/null

mkdir -p "$work/armsim"
"$bin/armsim" --listen 127.0.0.1:0 --tls-dir "$work/armsim" > "$work/armsim.out" 2> "$work/armsim.log" &
pids+=($!)
arm=$(first_line "$work/armsim.out" "armsim")

export AZURE_RESOURCE_MANAGER_ENDPOINT="$arm" AZURE_AUTHORITY_HOST="$arm" AZURE_CA_FILE="$work/armsim/ca.pem"
"$bin/azure-driver-controller" --metrics-addr 127.0.0.1:0 --leader-election false \
  > "$work/controller.log" 2>&1 &
pids+=($!)

# armsim accepts any client secret; these values only exist in this throw-away cluster.
kubectl create secret generic azure-credentials --namespace default \
  --from-literal=tenantId=00000000-0000-0000-0000-0000000000aa \
  --from-literal=clientId=demo-client --from-literal=clientSecret=demo-secret \
  --from-literal=subscriptionId=00000000-0000-0000-0000-000000000001 > /dev/null
kubectl apply --namespace default -f deploy/examples/ > /dev/null
log "waiting for the examples to become Ready"
if ! kubectl wait --namespace default --for=jsonpath='{.status.phase}'=Ready --timeout=180s azr --all > /dev/null; then
  kubectl get azr --namespace default
  log "not every example became Ready; controller log:"
  tail -n 40 "$work/controller.log" >&2
  exit 1
fi
echo "== kubectl get azureresources"
kubectl get azr --namespace default

mkfifo "$work/kafka.in"
"$bin/examples/kafka-test-broker" < "$work/kafka.in" > "$work/kafka.out" 2> "$work/kafka.log" &
pids+=($!)
exec 4> "$work/kafka.in"
bootstrap=$(first_line "$work/kafka.out" "the Kafka test broker")

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=azure-driver" \
  -addext "subjectAltName=DNS:azure-driver,DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2> /dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/azure-driver-shim" --port "$port" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
  --kafka-bootstrap "$bootstrap" --namespace default > "$work/shim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf --cacert "$work/tls.crt" "https://localhost:$port/management/health" > /dev/null && break
  sleep 0.2
done

request='{
  "lifecycleName": "Create",
  "driverFiles": "",
  "systemProperties": {
    "resourceId": {"type": "string", "value": "5f0c9a7e-0d1b-4c55-9d7e-2f1a3b4c5d6e"},
    "resourceName": {"type": "string", "value": "demo-rg"},
    "resourceType": {"type": "string", "value": "resource::AzureResourceGroup::1.0"}
  },
  "resourceProperties": {
    "resourcegroup_name": {"type": "string", "value": "demo-rg"},
    "resourcegroup_location": {"type": "string", "value": "westeurope"}
  },
  "deploymentLocation": {"name": "azure-demo", "type": "Azure", "properties": {
    "tenantId": "demo-tenant", "clientId": "demo-client", "clientSecret": "demo-secret",
    "subscriptionId": "00000000-0000-0000-0000-000000000001"}}
}'
echo "== POST https://localhost:$port/api/driver/lifecycle/execute"
curl -sS --cacert "$work/tls.crt" -H 'content-type: application/json' -H 'tenantId: demo' \
  -H 'x-tracectx-TransactionId: demo-tx-1' --data "$request" \
  "https://localhost:$port/api/driver/lifecycle/execute"
echo
echo "== Kafka topic lm_vnfc_lifecycle_execution_events"
for _ in $(seq 1 240); do
  [ "$(wc -l < "$work/kafka.out")" -ge 2 ] && break
  sleep 0.5
done
if [ "$(wc -l < "$work/kafka.out")" -lt 2 ]; then
  log "no result on Kafka; shim log:"
  tail -n 40 "$work/shim.log" >&2
  exit 1
fi
sed -n 2p "$work/kafka.out"
echo "== kubectl get azureresources (after the request)"
kubectl get azr --namespace default

if $once; then
  exit 0
fi
cat <<EOT

azure-driver is running end to end. In another shell:

  export KUBECONFIG=$KUBECONFIG
  kubectl get azr -A
  kubectl explain azureresource.spec
  curl --cacert $work/tls.crt https://localhost:$port/management/health   # the shim
  curl --cacert $work/armsim/ca.pem $arm/_armsim/inventory                 # what "Azure" holds

Logs: $work/{controller,shim,armsim,kafka}.log
Press Ctrl-C to stop and remove everything.
EOT
wait "${pids[0]}"
