#!/usr/bin/env bash
# The one device check (docs/JETSON.md): on a machine with an NVIDIA GPU, install what the GPU paths need
# into a venv of their own, compare the CUDA kernels with the CPU kernels on the KITTI / nuScenes clouds
# in tests/data, time them (p50/p99, with and without host<->device copies), run any models/ ONNX model
# on the TensorRT / CUDA providers, and write bench/results/device_check/device_check.{json,txt}.
# Bounded to 8 minutes; every failure is one log line and a report entry, never a crash.
#   bash bench/device_check.sh            # GPU machine
#   bash bench/device_check.sh --dry-run  # any machine: CUDA simulator, tiny clouds, no install
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
for a in "$@"; do [ "$a" = "--dry-run" ] && DRY=1; done
PY=python3
if [ "$DRY" = 1 ]; then
  PY="${EDGEFUSE_PYTHON:-.venv/bin/python}"
else
  VENV="${EDGEFUSE_DEVICE_VENV:-.venv-device}"
  # --system-site-packages: on Jetson, JetPack's own onnxruntime-gpu / OpenCV builds are the ones to use
  [ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV" \
    || echo "[device_check] venv creation failed; using python3"
  if [ -x "$VENV/bin/python" ]; then
    PY="$VENV/bin/python"
    timeout 240 "$PY" -m pip install -q -e . "numba-cuda>=0.30" \
      || echo "[device_check] pip install of edgefuse/numba-cuda failed (continuing)"
    if ! "$PY" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
      timeout 180 "$PY" -m pip install -q onnxruntime-gpu \
        || echo "[device_check] pip install onnxruntime-gpu failed (models run on what is there)"
    fi
  fi
fi
timeout 420 "$PY" bench/device_check.py "$@"
rc=$?
[ $rc -eq 124 ] && echo "[device_check] timed out after 420 s; partial results, if any, are in bench/results/device_check"
exit $rc
