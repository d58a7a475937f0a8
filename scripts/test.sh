#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests and the end-to-end tests
# against a real local kube-apiserver. Works unattended on a fresh Debian machine as root
# (installs what is missing; the first run builds kube-apiserver, ~5 min on 2 cores).
# Build output goes to $CARGO_TARGET_DIR (default ~/.cache/azure-driver/target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/azure-driver/target}"
AZURE_DRIVER_KUBE_BIN="$(e2e/scripts/build-kube-apiserver.sh | tail -n 1)"
export AZURE_DRIVER_KUBE_BIN

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo xtask arch --deny
cargo test --workspace
