#!/usr/bin/env bash
# Builds kube-apiserver (and kube-controller-manager) from Debian's kubernetes source
# package and caches the binaries outside the work tree, keyed by the source version.
# KUBE_BUILD_WHAT names other commands to build into the same directory (node.sh adds
# cmd/kube-scheduler cmd/kubelet cmd/kube-proxy). Prints the cache directory holding the
# binaries on its last stdout line.
# Recipe: ../shared/contracts/local-control-plane.md.
set -euo pipefail

KUBE_SRC_VERSION="1.20.2"
CACHE_ROOT="${AZURE_DRIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-driver}"
BIN_DIR="$CACHE_ROOT/kube-$KUBE_SRC_VERSION/bin"
WHAT="${KUBE_BUILD_WHAT:-cmd/kube-apiserver cmd/kube-controller-manager}"

have_all() {
  for w in $WHAT; do [ -x "$BIN_DIR/$(basename "$w")" ] || return 1; done
}

if have_all; then
  echo "$BIN_DIR"
  exit 0
fi

log() { echo "build-kube-apiserver: $*" >&2; }

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local need=()
  for p in golang-go etcd-server rsync jq golang-github-modern-go-reflect2-dev dpkg-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ! -f /etc/apt/sources.list.d/azure-driver-debsrc.list ]; then
    echo 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' |
      sudo_if_needed tee /etc/apt/sources.list.d/azure-driver-debsrc.list >/dev/null
    NEED_UPDATE=1
  fi
  if [ "${#need[@]}" -gt 0 ] || [ "${NEED_UPDATE:-0}" = 1 ]; then
    log "installing ${need[*]:-(source index only)}"
    sudo_if_needed apt-get update -qq >&2
    if [ "${#need[@]}" -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${need[@]}" >&2
    fi
  fi
}

install_packages

WORK="$CACHE_ROOT/kube-$KUBE_SRC_VERSION/src"
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d "kubernetes-$KUBE_SRC_VERSION" ]; then
  log "fetching Debian source package"
  apt-get source --download-only kubernetes >&2
  tar xzf kubernetes_*.orig.tar.gz
fi
cd "kubernetes-$KUBE_SRC_VERSION"

# The vendored reflect2 v1.0.1 crashes the apiserver under Debian's Go on the first
# custom resource; Debian ships the fixed 1.0.2.
if ! grep -q 'v1.0.2-patched' vendor/github.com/modern-go/reflect2/.azure-driver 2>/dev/null; then
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
  rm -f vendor/github.com/modern-go/reflect2/*_test.go
  echo v1.0.2-patched > vendor/github.com/modern-go/reflect2/.azure-driver
fi

mkdir -p .go/src/k8s.io .home
[ -e .go/src/k8s.io/kubernetes ] || ln -s ../../.. .go/src/k8s.io/kubernetes
mkdir -p "$BIN_DIR"
for w in $WHAT; do
  name=$(basename "$w")
  [ -x "$BIN_DIR/$name" ] && continue
  log "building $name (several minutes on 2 cores)"
  if ! GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$PWD/.home" GOFLAGS=-mod=vendor make WHAT="$w" >&2; then
    # a failed first run leaves empty generator binaries behind
    rm -rf _output
    GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$PWD/.home" GOFLAGS=-mod=vendor make WHAT="$w" >&2
  fi
  cp "_output/bin/$name" "$BIN_DIR/$name.tmp"
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
done
echo "$BIN_DIR"
