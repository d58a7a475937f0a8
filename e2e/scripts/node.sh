#!/usr/bin/env bash
# Runs a single-node Kubernetes cluster: the control plane of control-plane.sh (with the
# scheduler and all controllers) and one node (containerd, kubelet, kube-proxy in iptables
# mode, a CNI bridge) in a network namespace of its own.
#
#   node.sh IMAGE.tar...   OCI archives to load into the node (the pause image among them)
#
# Network: a veth pair joins the host (10.87.0.1) and the node's namespace (10.87.0.2);
# pods get 10.88.0.0/16 on a bridge inside the node's namespace, Services 10.96.0.0/16.
# The apiserver listens on 10.87.0.1, so pods reach it through the `kubernetes` Service;
# anything the pods must reach (test doubles) listens there too. The host routes only the
# pod and Service ranges into the veth; the node's namespace has no default route and the
# host does not forward, so pod traffic never leaves the machine. One node runs at a time
# per machine (a lock): cgroup paths and these ranges are machine-wide.
#
# When the node is Ready, prints three lines: the admin kubeconfig, the host address pods
# can reach, the directory with every component's log. Runs until its stdin reaches end of
# file or it gets SIGINT/SIGTERM, then removes the pods, the node and the control plane.
#
# Environment:
#   AZURE_DRIVER_KUBE_BIN  directory with the kube binaries (default: built and cached by
#                          build-kube-apiserver.sh, with the node's binaries)
# Recipe: ../shared/contracts/local-node.md.
set -euo pipefail

log() { echo "node: $*" >&2; }

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root="${AZURE_DRIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-driver}"
node_components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
kube_bin="${AZURE_DRIVER_KUBE_BIN:-}"
for component in "${node_components[@]}"; do
  [ -n "$kube_bin" ] && [ -x "$kube_bin/$component" ] && continue
  kube_bin=$(KUBE_BUILD_WHAT="${node_components[*]/#/cmd/}" \
    "$script_dir/build-kube-apiserver.sh" | tail -n 1)
  break
done
for tool in containerd runc ctr nsenter ip iptables kubectl; do
  command -v "$tool" >/dev/null || { log "missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done

host_address=10.87.0.1
node_address=10.87.0.2
pod_cidr=10.88.0.0/16
service_cidr=10.96.0.0/16
netns=azure-driver-node
host_if=azd-host
node_if=azd-node
node_name=azure-driver-node
sandbox_image=localhost/azure-driver-node/pause:1

mkdir -p "$cache_root"
# The lock is machine-wide like what it guards, not per cache directory: two checkouts
# with different caches must still take turns.
mkdir -p /run/lock
exec 8>/run/lock/azure-driver-node.lock
if ! flock -n 8; then
  log "another node is running on this machine; waiting for it to stop"
  flock 8
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/azure-driver-node.XXXXXX")
# Our stdin, kept for the watcher below (background jobs would otherwise get /dev/null).
exec 3<&0

pids=()
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}
ctr_node() { ctr --address "$dir/containerd.sock" -n k8s.io "$@"; }
# What an earlier run killed without its cleanup may have left: its namespace and veth.
remove_network() {
  ip link del "$host_if" 2>/dev/null || true
  ip netns del "$netns" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  # Every step runs, whatever failed before it.
  set +e
  if [ -n "${stdin_watcher:-}" ]; then kill "$stdin_watcher" 2>/dev/null || true; fi
  [ -n "${kubelet_pid:-}" ] && stop_pids "$kubelet_pid" "${proxy_pid:-}"
  if [ -S "$dir/containerd.sock" ]; then
    # Pod processes live on in their shims when containerd stops: end them first.
    local task
    for task in $(ctr_node tasks ls -q 2>/dev/null); do
      ctr_node tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    sleep 1
  fi
  [ -n "${containerd_pid:-}" ] && stop_pids "$containerd_pid"
  local shims
  shims=$(pgrep -f -- "-address $dir/containerd.sock" || true)
  # shellcheck disable=SC2086 # one pid per word
  [ -n "$shims" ] && stop_pids $shims
  # The control plane stops when its stdin closes.
  exec 5>&-
  [ -n "${control_plane_pid:-}" ] && wait "$control_plane_pid" 2>/dev/null || true
  local netns_file
  for netns_file in /var/run/netns/cni-*; do
    [ -e "$netns_file" ] || continue
    grep -qxF "$(basename "$netns_file")" "$dir/netns-before" 2>/dev/null && continue
    ip netns del "$(basename "$netns_file")" 2>/dev/null || true
  done
  remove_network
  # Sandbox shm, secret volumes and container root filesystems mounted under $dir.
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
  local log_dir
  for log_dir in /var/log/pods/*; do
    [ -e "$log_dir" ] || continue
    grep -qxF "$(basename "$log_dir")" "$dir/pod-logs-before" 2>/dev/null || rm -rf "$log_dir"
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ls /var/run/netns 2>/dev/null >"$dir/netns-before" || true
ls /var/log/pods 2>/dev/null >"$dir/pod-logs-before" || true

# --- network: a namespace for the node, a veth to the host, routes for pods and Services
remove_network
ip netns add "$netns"
ip link add "$host_if" type veth peer name "$node_if" netns "$netns"
ip addr add "$host_address/30" dev "$host_if"
ip link set "$host_if" up
ip -n "$netns" addr add "$node_address/30" dev "$node_if"
ip -n "$netns" link set "$node_if" up
ip -n "$netns" link set lo up
ip route add "$pod_cidr" via "$node_address" dev "$host_if"
ip route add "$service_cidr" via "$node_address" dev "$host_if"
# Components run in the node's namespace through nsenter, never `ip netns exec` (it
# remounts /sys and hides the cgroups). Started directly (not through a function), so the
# pid we stop is theirs; they get none of our lock, stdin or control-plane pipe.
in_node=(nsenter "--net=/var/run/netns/$netns")
"${in_node[@]}" sysctl -qw net.ipv4.ip_forward=1
# Service replies between pods on the bridge must pass conntrack (br_netfilter).
"${in_node[@]}" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true

# --- control plane, its apiserver on the host end of the veth
mkfifo "$dir/control-plane.in"
CONTROL_PLANE_ADDRESS=$host_address CONTROL_PLANE_WORKLOADS=1 AZURE_DRIVER_KUBE_BIN=$kube_bin \
  CONTROL_PLANE_DIR="$dir/control-plane" \
  "$script_dir/control-plane.sh" <"$dir/control-plane.in" >"$dir/control-plane.out" 3<&- 8>&- &
control_plane_pid=$!
exec 5>"$dir/control-plane.in"
kubeconfig=
for _ in $(seq 1200); do
  kubeconfig=$(head -n 1 "$dir/control-plane.out" 2>/dev/null || true)
  [ -n "$kubeconfig" ] && break
  kill -0 "$control_plane_pid" 2>/dev/null || { log "the control plane did not start"; exit 1; }
  sleep 0.1
done
[ -n "$kubeconfig" ] || { log "the control plane did not start within 120 s"; exit 1; }
start=$(date +%s.%N)

# --- containerd with the CRI plugin, CNI bridge inside the node's namespace
mkdir -p "$dir/cni" "$dir/containerd"
cat >"$dir/cni/10-azure-driver.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "azure-driver-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "azd0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni-ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "10.88.0.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  # runc cannot give the sandbox oom_score_adj -998 without CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
EOF
"${in_node[@]}" containerd --config "$dir/containerd.toml" \
  >"$dir/containerd.log" 2>&1 3<&- 5>&- 8>&- &
containerd_pid=$!
pids+=("$containerd_pid")
for _ in $(seq 300); do
  ctr_node version >/dev/null 2>&1 && break
  kill -0 "$containerd_pid" 2>/dev/null || { log "containerd exited; see $dir/containerd.log"; exit 1; }
  sleep 0.1
done
for archive in "$@"; do
  ctr_node images import "$archive" >/dev/null
done

# --- kubelet and kube-proxy
cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
address: $node_address
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
# The machine is shared with builds: no eviction or image garbage collection for disk.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
"${in_node[@]}" "$kube_bin/kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$kubeconfig" \
  --container-runtime=remote --container-runtime-endpoint="unix://$dir/containerd.sock" \
  --root-dir="$dir/kubelet" --hostname-override="$node_name" --node-ip="$node_address" \
  >"$dir/kubelet.log" 2>&1 3<&- 5>&- 8>&- &
kubelet_pid=$!
pids+=("$kubelet_pid")

cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $kubeconfig
mode: iptables
hostnameOverride: $node_name
bindAddress: $node_address
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
EOF
"${in_node[@]}" "$kube_bin/kube-proxy" --config="$dir/kube-proxy.yaml" \
  >"$dir/kube-proxy.log" 2>&1 3<&- 5>&- 8>&- &
proxy_pid=$!
pids+=("$proxy_pid")

ready=0
for _ in $(seq 600); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { log "a node component exited; logs in $dir"; exit 1; }
  done
  if kubectl --kubeconfig "$kubeconfig" get node "$node_name" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; then
    ready=1
    break
  fi
  sleep 0.2
done
[ "$ready" = 1 ] || { log "node not Ready after 120 s; logs in $dir"; exit 1; }
log "node Ready $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the control plane; logs in $dir"
echo "$kubeconfig"
echo "$host_address"
echo "$dir"

cat <&3 >/dev/null &
stdin_watcher=$!
# Return when stdin closes or any component dies.
wait -n "$stdin_watcher" "$control_plane_pid" "${pids[@]}" || true
if kill -0 "$stdin_watcher" 2>/dev/null; then
  log "a component exited; see logs in $dir"
  exit 1
fi
