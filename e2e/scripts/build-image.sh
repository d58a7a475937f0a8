#!/usr/bin/env bash
# Builds the product image from the repository's Dockerfile with buildah, without any
# registry: the base images the Dockerfile names are made locally (a Debian root
# filesystem from mmdebstrap; a Rust builder image from that plus the machine's own Rust
# toolchain), and so is the pause image the node's sandboxes use.
#
# Prints two lines: the OCI archive of the product image, then the OCI archive of the pause
# image (both loadable with `ctr -n k8s.io images import`). Everything is cached under
# $AZURE_DRIVER_CACHE/images (default ~/.cache/azure-driver/images): base images by Debian
# release and Rust version, cargo's registry and target directory through the Dockerfile's
# cache mounts, so a rebuild after a source change recompiles only the changed crates.
#
# Environment:
#   AZURE_DRIVER_IMAGE   name of the product image (default localhost/azure-driver:e2e)
# Recipe: ../shared/contracts/local-node.md.
set -euo pipefail

log() { echo "build-image: $*" >&2; }

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache_root="${AZURE_DRIVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-driver}"
cache="$cache_root/images"
image="${AZURE_DRIVER_IMAGE:-localhost/azure-driver:e2e}"
debian_release=bookworm
rust_version=$(rustc --version | awk '{print $2}')
rust_sysroot=$(rustc --print sysroot)
base_prefix=localhost/azure-driver-build
runtime_base="$base_prefix/debian:$debian_release-slim"
builder_base="$base_prefix/rust:$rust_version-$debian_release"
pause_image=localhost/azure-driver-node/pause:1

for tool in buildah mmdebstrap gcc; do
  command -v "$tool" >/dev/null || { log "missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done
mkdir -p "$cache/archives" "$cache/tmp"
# Buildah keeps its images, and the Dockerfile's cache mounts, in the cache directory.
export TMPDIR="$cache/tmp"
bh=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver overlay)

have_image() { "${bh[@]}" inspect --type image "$1" >/dev/null 2>&1; }

# A Debian root filesystem with the given extra packages, as an image.
debian_image() { # name, comma-separated packages, extra mmdebstrap arguments...
  local name=$1 packages=$2 rootfs ctr
  shift 2
  rootfs="$cache/tmp/rootfs-$$.tar"
  log "making $name with mmdebstrap (about a minute)"
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --aptopt='APT::Install-Recommends "false"' "$@" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$debian_release" "$rootfs" >&2
  ctr=$("${bh[@]}" from scratch)
  "${bh[@]}" add "$ctr" "$rootfs" / >&2
  rm -f "$rootfs"
  "${bh[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$ctr" >&2
  echo "$ctr"
}

if ! have_image "$runtime_base"; then
  ctr=$(debian_image "$runtime_base" ca-certificates)
  "${bh[@]}" commit --rm "$ctr" "$runtime_base" >&2
fi

if ! have_image "$builder_base"; then
  # The Dockerfile's builder stage installs the same packages; having them already makes
  # that step a no-op apart from the package index. The build stage fetches crates over
  # HTTPS, so it trusts the local CAs this machine trusts (a TLS-intercepting proxy);
  # nothing of it reaches the runtime image.
  local_cas=()
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    local_cas=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share'
      --customize-hook='chroot "$1" update-ca-certificates')
  fi
  ctr=$(debian_image "$builder_base" \
    ca-certificates,build-essential,cmake,pkg-config,python3,libssl-dev,zlib1g-dev,libsasl2-dev \
    "${local_cas[@]}")
  mnt=$("${bh[@]}" mount "$ctr")
  log "copying Rust $rust_version from $rust_sysroot"
  mkdir -p "$mnt/usr/local/rust" "$mnt/usr/local/cargo/bin"
  (cd "$rust_sysroot" && tar --exclude=./share/doc -cf - .) | tar -C "$mnt/usr/local/rust" -xf -
  "${bh[@]}" umount "$ctr" >/dev/null
  # The layout of the official rust image: cargo's home in /usr/local/cargo.
  "${bh[@]}" config --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$ctr" >&2
  "${bh[@]}" commit --rm "$ctr" "$builder_base" >&2
fi

if ! have_image "$pause_image"; then
  log "building the pause image"
  work=$(mktemp -d "$cache/tmp/pause.XXXXXX")
  cat >"$work/pause.c" <<'EOF'
/* The sandbox process of every pod: holds the namespaces, reaps orphans, ends on a signal. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
  gcc -Os -static -o "$work/pause" "$work/pause.c"
  ctr=$("${bh[@]}" from scratch)
  "${bh[@]}" copy "$ctr" "$work/pause" /pause >&2
  "${bh[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$ctr" >&2
  "${bh[@]}" commit --rm "$ctr" "$pause_image" >&2
  rm -rf "$work"
fi
pause_archive="$cache/archives/pause.tar"
if [ ! -s "$pause_archive" ]; then
  "${bh[@]}" push -q "$pause_image" "oci-archive:$pause_archive.tmp:$pause_image" >&2
  mv "$pause_archive.tmp" "$pause_archive"
fi

log "building $image from $repo/Dockerfile"
start=$(date +%s)
# Host network for the build steps (package index, crates.io); no bridge is created.
"${bh[@]}" bud --quiet --network host --pull=never --layers \
  --build-arg "BUILDER_IMAGE=$builder_base" \
  --build-arg "RUNTIME_IMAGE=$runtime_base" \
  -f "$repo/Dockerfile" -t "$image" "$repo" >&2
archive="$cache/archives/$(echo "$image" | tr '/:' '__').tar"
rm -f "$archive.tmp"
"${bh[@]}" push -q "$image" "oci-archive:$archive.tmp:$image" >&2
mv "$archive.tmp" "$archive"
log "built $image in $(($(date +%s) - start)) s"
echo "$archive"
echo "$pause_archive"
