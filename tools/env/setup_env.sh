#!/usr/bin/env bash
# Build (or reuse) the project's Python environment: a virtualenv with the pinned OpenMMLab stack,
# mmcv compiled with its ops, and this plugin installed in editable mode.
#
# Idempotent: a second run on the same machine checks a stamp and returns in seconds. The compiled
# mmcv wheel is cached outside the repository, keyed by Python, torch and mmcv versions, so it is
# compiled once per machine.
#
# Environment variables:
#   DYNCONV_VENV   virtualenv location (default: <repo>/.venv)
#   DYNCONV_CACHE  wheel cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dynconv-mmdet)
#   DYNCONV_PYTHON interpreter used to create the venv (default: python3.11)
#   MAX_JOBS       parallel compile jobs for mmcv (default: number of cores)
#   DYNCONV_PROGRESS_INTERVAL  seconds between progress lines while mmcv compiles (default: 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${DYNCONV_VENV:-$ROOT/.venv}"
CACHE="${DYNCONV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynconv-mmdet}"
PYTHON="${DYNCONV_PYTHON:-python3.11}"
REQ="$ROOT/tools/env/requirements.txt"
CONSTRAINTS="$ROOT/tools/env/constraints.txt"

TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

stamp_key() {
    cat "$REQ" "$CONSTRAINTS" "$ROOT/setup.cfg" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1
}

if [ -f "$VENV/.dynconv-stamp" ] && [ "$(cat "$VENV/.dynconv-stamp")" = "$(stamp_key)" ]; then
    exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or set DYNCONV_PYTHON"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is not Python 3.11 (the pinned stack needs 3.11)"

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_install() {
    "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@"
}

log "installing build tools and torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION"
pip_install 'pip>=23' 'setuptools<82' wheel ninja
pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
TORCH_TAG="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
WHEEL_DIR="$CACHE/wheels/${PYTAG}-torch${TORCH_TAG}-mmcv${MMCV_VERSION}"

if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "no cached mmcv wheel in $WHEEL_DIR: compiling mmcv $MMCV_VERSION with ops (15-35 minutes on 2 cores)"
    pip_install 'mmengine==0.10.7' 'numpy<2.3' addict packaging Pillow pyyaml yapf opencv-python
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "$PY" -m pip download --disable-pip-version-check -q -c "$CONSTRAINTS" --no-deps --no-binary :all: \
        --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes C++17 for the host compiler.
    grep -q -- "-std=c++17" "$SRC/setup.py" || die "mmcv setup.py has no -std=c++17 flag to correct"
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    # The compile prints nothing useful for 15-35 minutes: its output goes to a log and a progress
    # line (elapsed time, ninja step) comes every DYNCONV_PROGRESS_INTERVAL seconds.
    BUILD_LOG="$CACHE/logs/mmcv-$MMCV_VERSION-build.log"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        bash "$ROOT/tools/env/run_with_progress.sh" "compiling mmcv $MMCV_VERSION" "$BUILD_LOG" \
        "$PY" -m pip wheel --disable-pip-version-check -v -c "$CONSTRAINTS" --no-deps --no-build-isolation \
        "$SRC" -w "$BUILD/dist" \
        || die "mmcv $MMCV_VERSION did not compile; see $BUILD_LOG"
    mkdir -p "$WHEEL_DIR"
    cp "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"
    log "cached $(ls "$WHEEL_DIR")"
fi

log "installing mmcv (cached wheel), mmdet, mmpretrain and the plugin"
pip_install "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl -r "$REQ"
pip_install --no-deps --no-build-isolation -e "$ROOT"
# Deployment (dynconv_mmdet.deployment, tools/deployment): mmdeploy 1.3.1 pins protobuf<=3.20.2, which
# cannot be installed beside the onnxruntime and onnx above (protobuf >= 4.25), so it is installed
# without its pins; what it really imports (aenum, prettytable) comes from requirements.txt.
pip_install --no-deps 'mmdeploy==1.3.1'

"$PY" - <<'PY' || die "mmcv ops or mmdeploy are missing: delete the cached mmcv wheel under $WHEEL_DIR and run again"
from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack, RoIAlign, nms  # noqa: F401
import mmdet, mmpretrain, dynconv_mmdet  # noqa: F401,E401
import mmdeploy.apis, dynconv_mmdet.deployment  # noqa: F401,E401
PY
stamp_key > "$VENV/.dynconv-stamp"
log "environment ready: $VENV"
