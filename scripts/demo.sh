#!/usr/bin/env bash
# Brings azure-driver up locally on its embedded defaults: a local Kubernetes control
# plane (etcd + kube-apiserver + kube-controller-manager) with the AzureResource CRD
# installed and the examples from deploy/examples applied in namespace `default`.
# Prints how to point kubectl at it and runs until Ctrl-C, then stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
AZURE_DRIVER_KUBE_BIN="$(e2e/scripts/build-kube-apiserver.sh | tail -n 1)"
export AZURE_DRIVER_KUBE_BIN

# The control plane runs until its stdin closes: this shell holds the write end, so the
# control plane goes down with it however it ends.
coproc CONTROL_PLANE { exec e2e/scripts/control-plane.sh; }
# shellcheck disable=SC2153 # CONTROL_PLANE_PID is set by coproc
control_plane_pid=$CONTROL_PLANE_PID
control_plane_stdin=${CONTROL_PLANE[1]}
stop() {
  trap - EXIT INT TERM
  exec {control_plane_stdin}>&-
  wait "$control_plane_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! read -r kubeconfig <&"${CONTROL_PLANE[0]}"; then
  echo "demo: the control plane did not start (see its log above)" >&2
  exit 1
fi
kubectl() { command kubectl --kubeconfig "$kubeconfig" "$@"; }

kubectl apply -f deploy/crds/azureresources.yaml
kubectl wait --for condition=Established --timeout=60s crd/azureresources.azure-driver.io
kubectl apply --namespace default -f deploy/examples/
kubectl get azureresources --namespace default

cat <<EOT

azure-driver demo is running. In another shell:

  export KUBECONFIG=$kubeconfig
  kubectl get azr -A
  kubectl explain azureresource.spec

Press Ctrl-C to stop and remove everything.
EOT
wait "$control_plane_pid"
