#!/usr/bin/env bash
# One resource-driver request's round trip, locally: a real kube-apiserver, the ARM
# simulator, the controller, a Kafka test broker and the shim over HTTPS. Sends a
# Brent-shaped Create of a resource group, prints the 202 answer, the AzureResource and
# the Kafka result, then stops everything it started.
#
# Usage: webhook-shim/scripts/demo.sh   (from anywhere; builds what it needs)
# Needs: cargo, kubectl, curl, openssl; the control plane as in e2e/scripts/control-plane.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
log() { echo "demo: $*" >&2; }

log "building the shim, the controller, armsim and the Kafka test broker"
cargo build -q -p azure-driver-shim --bin azure-driver-shim --example kafka-test-broker
cargo build -q -p azure-driver-controller -p armsim --bins
target="${CARGO_TARGET_DIR:-$repo/target}/debug"

work=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 4>&- 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

first_line() { # file, what
  for _ in $(seq 1 600); do
    if [ -s "$1" ]; then head -n 1 "$1"; return 0; fi
    sleep 0.5
  done
  log "$2 did not start"; return 1
}

# Control plane: runs until its stdin (fd 3) closes.
mkfifo "$work/cp.in"
"$repo/e2e/scripts/control-plane.sh" < "$work/cp.in" > "$work/cp.out" &
pids+=($!)
exec 3> "$work/cp.in"
export KUBECONFIG
KUBECONFIG=$(first_line "$work/cp.out" "the control plane")
kubectl apply --server-side -f "$repo/deploy/crds/azureresources.yaml" > /dev/null
kubectl wait --for condition=established --timeout=60s crd/azureresources.azure-driver.io > /dev/null

mkdir -p "$work/armsim"
"$target/armsim" --listen 127.0.0.1:0 --tls-dir "$work/armsim" > "$work/armsim.out" 2> "$work/armsim.log" &
pids+=($!)
arm=$(first_line "$work/armsim.out" "armsim")

AZURE_RESOURCE_MANAGER_ENDPOINT="$arm" AZURE_AUTHORITY_HOST="$arm" AZURE_CA_FILE="$work/armsim/ca.pem" \
  "$target/azure-driver-controller" --metrics-addr 127.0.0.1:0 --leader-election false \
  > "$work/controller.log" 2>&1 &
pids+=($!)

mkfifo "$work/kafka.in"
"$target/examples/kafka-test-broker" < "$work/kafka.in" > "$work/kafka.out" 2> "$work/kafka.log" &
pids+=($!)
exec 4> "$work/kafka.in"
bootstrap=$(first_line "$work/kafka.out" "the Kafka test broker")

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=azure-driver" \
  -addext "subjectAltName=DNS:azure-driver,DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2> /dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$target/azure-driver-shim" --port "$port" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
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
sed -n 2p "$work/kafka.out"
echo "== kubectl get azureresources"
kubectl get azr
[ "$(wc -l < "$work/kafka.out")" -ge 2 ] || { log "no result on Kafka; shim log:"; cat "$work/shim.log" >&2; exit 1; }
