"""Write the model cards (models/CARD.md format) of the shipped depth-completion model, FP32 and INT8, from
the shipped files (sha256) and the figures of ``results.json`` and ``bench/results/depth_completion.json``,
so that the cards never disagree with them::

    .venv/bin/python -m models.depth_completion.make_card

The shipped files live in the package data, ``edgefuse/data/models/depth_completion/`` (the bundled pipeline
``radiate_depth_completion`` runs them), each with its card: ``depth_completion_concat.yaml`` and
``depth_completion_concat.int8.yaml``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHIP = "concat"
#: where the shipped ONNX files and their cards live (package data)
SHIP_DIR = ROOT / "edgefuse" / "data" / "models" / "depth_completion"
#: the network's input size for the demo camera (672 x 376 → width 336, height 184: a multiple of 8)
HEIGHT, WIDTH = 184, 336

TEMPLATE = """\
# Written by python -m models.depth_completion.make_card (format: models/CARD.md). Do not edit by hand.
edgefuse_model_card: 1
name: depth_completion_{ship}{suffix_name}
model: depth_completion_{ship}{suffix}.onnx
sha256: {sha}
opset: 17
description: >-
  Camera + LiDAR depth completion: dense metric depth (metres along the camera z axis) in the camera image, from
  the image and the sparse depth image of a LiDAR sweep projected into it. Feature-level fusion network
  ({params} parameters, models/depth_completion/net.py): RGB and sparse-depth encoders (1/2, 1/4, 1/8 scales, no
  learned layer at full resolution) fused at every scale by concatenation + 1x1 conv, U-Net decoder to 1/2, a
  pixel-shuffle head that blends in-graph candidates (normalised-convolution local means over 1x3, 3x3, 7x7 and
  15x15 windows, nearest and farthest return in 3x3, free-form depth) with per-pixel masked exponential
  (softmax) weights, plus a residual of at most 2 m. H, W are dynamic in the graph (multiples of 8); trained at
  width 336, so this card fixes {h} x {w} (the demo's 672 x 376 ZED camera halved, height rounded to a multiple
  of 8). A dead or blinded camera: an all-zero image (trained with modality drop-out 0.3). Output range 0.1..80
  m; no post-processing.{int8_note}
inputs:
  - name: image
    edge: Image
    shape: [1, 3, {h}, {w}]
    dtype: float32
    layout: NCHW
    encoding: rgb8                  # RGB in [0, 1] (no normalisation: the first BatchNorm absorbs it)
    preprocess: {{resize: [{h}, {w}], interpolation: bilinear, scale: 0.00392156862745098}}
  - name: sparse_depth
    edge: Image
    shape: [1, 1, {h}, {w}]
    dtype: float32
    layout: NCHW
    encoding: 32FC1                 # metres (camera z), 0 where no return: lidar_camera_projection's depth
    preprocess: {{resize: [{h}, {w}], interpolation: sparse_min}}
outputs:
  - name: depth
    edge: Image
    shape: [1, 1, {h}, {w}]
    dtype: float32
    layout: NCHW
    encoding: 32FC1
training:
  data: "{train} ({train_frames} frames; see each SOURCE.md in ../shared/data)"
  licence: >-
    Apache-2.0 data (acfr_ouster_chessboard, opencalib_autocalib_v2, opencalib_radar_lidar_camera
    lidar2camera); weights Apache-2.0 (trained here). RADIATE, KITTI and nuScenes are used for evaluation
    only (RADIATE's terms unverified; KITTI and nuScenes non-commercial).
  method: >-
    self-supervised: 30 % of each crop's LiDAR returns are held out of the input and are the L1 targets
    (plus 0.1 x L1 on the kept inputs); 128 x 64 crops, flips, brightness/contrast jitter, input thinning to
    25-100 %, camera blanked with probability 0.3; the head starts at the cascade "smallest window with a
    return" (zero weights, prior logits as bias); AdamW 2e-3 cosine, batch 8, {steps} steps, 1 CPU thread,
    seed 0 (python -m models.depth_completion.train --mode {ship} --steps {steps} --threads 1).
metric:
  name: MAE
  unit: m
  fp32: {mae_fp32}
  int8: {mae_int8}
  protocol: >-
    held-out recordings (RADIATE fog 34 frames, KITTI 3, nuScenes 1, none seen in training); per frame a seeded
    20 % of the projected LiDAR returns are held out, the rest is the input; MAE / RMSE in metres on the
    held-out points, pooled over all recordings (models/depth_completion/evaluate.py -> results.json).
  mae_rmse_m:
{table}
figures:
{figures}
quantization:
  method: >-
    ONNX Runtime static quantization, QDQ, the learned layers only (Conv with its ReLU, the decoder's nearest
    Resize; concatenations of quantized tensors run as QLinearConcat, the head's pixel shuffle on uint8); the
    candidate depths and the blend stay float
  weights: per-channel int8
  activations: uint8
  calibration: MinMax, 16 frames of the training recordings (python -m models.depth_completion.export)
  fp32: {{file: depth_completion_{ship}.onnx, sha256: {fp32_sha}}}
  int8: {{file: depth_completion_{ship}.int8.onnx, sha256: {int8_sha}}}
"""


def cards() -> dict[str, str]:
    """Card file name → text, for the FP32 and the INT8 model."""
    res = json.loads((HERE / "results.json").read_text())
    bench_path = ROOT / "bench" / "results" / "depth_completion.json"
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else {}
    train = res["training"][SHIP]
    rows = []
    for method, per in res["table"].items():
        a = per["all"]
        rows.append(f"    \"{method}\": [{a['mae_m']}, {a['rmse_m']}]")
    figs = []
    for key in ("pre", "model_fp32", "model_int8"):
        if key in bench:
            figs.append(f"  {key}_p50_ms: {bench[key]['p50_ms']}")
            figs.append(f"  {key}_p99_ms: {bench[key]['p99_ms']}")
    for threads, row in bench.get("by_threads", {}).items():
        for key in ("model_fp32", "model_int8"):
            figs.append(f"  {key}_{threads}_threads_p50_ms: {row[key]['p50_ms']}")
            figs.append(f"  {key}_{threads}_threads_p99_ms: {row[key]['p99_ms']}")
        figs.append(f"  speedup_int8_{threads}_threads_p50: {row['speedup_int8_p50']}")
    if "cpu_time_1_thread" in bench:
        figs.append(f"  speedup_int8_cpu_time_1_thread_p50: {bench['cpu_time_1_thread']['speedup_int8_p50']}")
    if bench:
        figs.append(f"  threads: {bench.get('threads', 2)}")
        figs.append(f"  cpu: \"{bench['environment']['cpu']}\"")
        figs.append(f"  load_average_1min: {bench.get('load_average_1min')}")
        if "load_average_before" in bench:
            figs.append(f"  load_average_before_after: [{bench['load_average_before'][0]}, "
                        f"{bench['load_average_after'][0]}]")
        figs.append("  measured_by: python bench/bench_depth_completion.py")
    table = res["table"]
    fp32 = SHIP_DIR / f"depth_completion_{SHIP}.onnx"
    int8 = SHIP_DIR / f"depth_completion_{SHIP}.int8.onnx"
    shas = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (fp32, int8)}
    common = dict(ship=SHIP, params=train["params"], train=", ".join(train["train_recordings"]),
                  train_frames=train["train_frames"], steps=train["steps"], table="\n".join(rows),
                  figures="\n".join(figs) or "  not_measured: true", h=HEIGHT, w=WIDTH,
                  mae_fp32=table[f"fused_{SHIP}"]["all"]["mae_m"], mae_int8=table[f"fused_{SHIP} INT8"]["all"]["mae_m"],
                  fp32_sha=shas[fp32], int8_sha=shas[int8])
    return {
        f"depth_completion_{SHIP}.yaml": TEMPLATE.format(suffix="", suffix_name="", sha=shas[fp32], int8_note="",
                                                        **common),
        f"depth_completion_{SHIP}.int8.yaml": TEMPLATE.format(
            suffix=".int8", suffix_name="_int8", sha=shas[int8],
            int8_note=" This is the INT8 build of the FP32 model (quantization below).", **common),
    }


def main() -> None:
    for name, text in cards().items():
        (SHIP_DIR / name).write_text(text)
        print(f"wrote {SHIP_DIR / name}")


if __name__ == "__main__":
    main()
