#!/usr/bin/env bash
# The main job on the embedded default: build the environment, generate the
# toy COCO data if absent, train ODConv Faster R-CNN R-50-FPN on it and print
# the COCO AP table (AP, AP50, AP75, AP_S, AP_M, AP_L).
# Extra arguments go to tools/train.py (e.g. --cfg-options ...). The config
# fixes the seed, so a run repeats bit for bit on the same machine; another
# seed: WORK_DIR=work_dirs/toy_seed1 bash tools/run_main_job.sh \
#   --cfg-options randomness.seed=1
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/env/setup_env.sh
PY="${DYNCONV_VENV:-$ROOT/.venv}/bin/python"
CONFIG=configs/toy/odconv_faster_rcnn_r50_fpn_toy.py
WORK_DIR="${WORK_DIR:-work_dirs/odconv_faster_rcnn_r50_fpn_toy}"

"$PY" tools/misc/generate_toy_coco.py --out data/toy_coco
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CHECKPOINT="$(cat "$WORK_DIR/last_checkpoint")"
"$PY" tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test"
