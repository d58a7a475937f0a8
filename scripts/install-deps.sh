#!/usr/bin/env bash
# Installs the system packages the build, the tests and the demo need (Debian; as root or
# through sudo, never prompting) and the Rust components cargo fmt/clippy need.
set -euo pipefail

log() { echo "install-deps: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

packages=(
  # local control plane (e2e/scripts/control-plane.sh); kube itself is built from source
  etcd-server golang-go rsync jq curl openssl ca-certificates dpkg-dev
  golang-github-modern-go-reflect2-dev
  # the node (e2e/scripts/node.sh) and the image built without a registry (build-image.sh)
  containerd runc containernetworking-plugins iptables nftables iproute2 procps util-linux
  mmdebstrap buildah
  # native builds: librdkafka (rdkafka-sys with ssl), zlib, OpenSSL
  build-essential cmake pkg-config python3 libssl-dev zlib1g-dev libsasl2-dev
)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

command -v cargo >/dev/null || { log "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" ||
      rustup component add "$component" >&2
  done
fi
command -v kubectl >/dev/null || { log "kubectl is missing from PATH"; exit 1; }
