"""Write ``card.yaml`` from the shipped files (sha256, size) and the figures of ``results.json`` and
``bench/results/depth_completion.json``, so that the card never disagrees with them::

    .venv/bin/python -m models.depth_completion.make_card
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHIP = "concat"

TEMPLATE = """\
# Model card (draft; the lead aligns the format with models/CARD.md). Written by make_card.py.
name: depth_completion_{ship}
task: camera + LiDAR depth completion (dense metric depth in the camera image from a sparse LiDAR projection)
architecture: >-
  Feature-level fusion network ({params} parameters, models/depth_completion/net.py): an RGB encoder and a
  sparse-depth encoder of the same shape (1, 1/2, 1/4, 1/8 scales), fused at every scale by concatenation and
  a 1x1 conv + BN + ReLU (the gated fusion was trained and evaluated beside it and did no better), U-Net
  decoder; the head blends in-graph candidates
  (normalised-convolution local means over 3/5/9/17 px, a nearest-surface fill, a free-form depth) with
  per-pixel softmax weights and adds a residual of at most +-2 m.
inputs:
  image: {{shape: [1, 3, H, W], dtype: float32, layout: NCHW, channels: RGB, range: "0..1 (8-bit / 255)",
    frame: camera image, normalisation: "inside the graph: (x - 0.45) / 0.25"}}
  sparse_depth: {{shape: [1, 1, H, W], dtype: float32, unit: metres (camera z), missing: 0,
    frame: "the same camera image (LiDAR projected with the camera model, z-buffered, nearest return wins)"}}
  dims: "H, W dynamic, multiples of 8; trained and evaluated at width 336 (demo: 184 x 336)"
outputs:
  depth: {{shape: [1, 1, H, W], dtype: float32, unit: metres (camera z), range: "0.1..80", frame: camera image}}
pre_processing: >-
  Downscale the camera image to width 336 with cv2.INTER_AREA (height by the aspect, the top rows cropped to a
  multiple of 8), BGR->RGB, /255, HWC->CHW. Scale the intrinsics to that image (f' = s f,
  c' = s (c + 0.5) - 0.5, minus the cropped rows) and project the LiDAR sweep with
  edgefuse.fusion.projection.Projector (min 0.5 m, max 80 m) into it: one return per pixel, 0 where none.
  A dead / blinded camera: feed an all-zero image (the net was trained with that, modality drop-out 0.3).
post_processing: none (the output is the depth image)
training_data:
  recordings: "{train}"
  frames: {train_frames}
  licence: Apache-2.0 (acfr_ouster_chessboard, opencalib_autocalib_v2, opencalib_radar_lidar_camera
    lidar2camera; see each SOURCE.md in ../shared/data). RADIATE, KITTI and nuScenes are NOT used for training
    (RADIATE's dataset terms are unverified; KITTI and nuScenes are non-commercial) — only for evaluation.
  method: >-
    self-supervised: 30 % of each crop's LiDAR returns are held out of the input and are the L1 targets
    (plus 0.1 x L1 on the kept inputs); 128 x 64 crops, flips, brightness/contrast jitter, input thinning to
    25-100 %, camera blanked with probability 0.3 (modality drop-out); AdamW 2e-3 cosine, batch 8, {steps} steps,
    1 CPU thread, seed 0 (python -m models.depth_completion.train --mode {ship} --steps {steps}).
metric:
  protocol: >-
    held-out recordings (RADIATE fog 34 frames, KITTI 3, nuScenes 1 — none seen in training); per frame a seeded
    20 % of the projected LiDAR returns are held out, the rest is the input; MAE / RMSE in metres on the held-out
    points, pooled (models/depth_completion/evaluate.py -> results.json, full table there).
  all_recordings_mae_rmse_m:
{table}
quantization: >-
  INT8: ONNX Runtime static quantization, QDQ, convolutions only (the in-graph candidate depths and the blend stay
  float), per-channel int8 weights, uint8 activations, MinMax calibration on
  16 frames of the training recordings (python -m models.depth_completion.export).
latency_2_threads:
{latency}
stage_budget: >-
  p99 at most 100 ms per frame on 2 cores; the stage runs once per LiDAR sweep and a 10 Hz LiDAR (the demo's HDL-32E)
  delivers one every 100 ms, so a slower stage falls behind and drops sweeps. Pre-processing <= 20 % of the model.
files:
  fp32: {{file: depth_completion_{ship}.onnx, bytes: {fp32_bytes}, sha256: {fp32_sha}, opset: 17}}
  int8: {{file: depth_completion_{ship}.int8.onnx, bytes: {int8_bytes}, sha256: {int8_sha}, opset: 17}}
licence_of_weights: Apache-2.0 (trained here on Apache-2.0 data)
"""


def main() -> None:
    res = json.loads((HERE / "results.json").read_text())
    bench_path = ROOT / "bench" / "results" / "depth_completion.json"
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else {}
    train = res["training"][SHIP]
    rows = []
    for method, per in res["table"].items():
        a = per["all"]
        rows.append(f"    \"{method}\": [{a['mae_m']}, {a['rmse_m']}]")
    lat = []
    for key in ("pre", "model_fp32", "model_int8", "ip_basic_same_resolution"):
        if key in bench:
            lat.append(f"    {key}: {{p50_ms: {bench[key]['p50_ms']}, p99_ms: {bench[key]['p99_ms']}}}")
    if bench:
        lat.append(f"    pre_over_model_fp32_p50: {bench['pre_over_model_fp32_p50']}")
        lat.append(f"    load_average_1min_during_run: {bench.get('load_average_1min')}")
        lat.append(f"    measured_by: \"python bench/bench_depth_completion.py on {bench['environment']['cpu']}\"")
    fp32 = HERE / f"depth_completion_{SHIP}.onnx"
    int8 = HERE / f"depth_completion_{SHIP}.int8.onnx"
    text = TEMPLATE.format(
        ship=SHIP, params=train["params"], train=", ".join(train["train_recordings"]),
        train_frames=train["train_frames"], steps=train["steps"], table="\n".join(rows),
        latency="\n".join(lat) or "    not measured", fp32_bytes=fp32.stat().st_size,
        fp32_sha=hashlib.sha256(fp32.read_bytes()).hexdigest(), int8_bytes=int8.stat().st_size,
        int8_sha=hashlib.sha256(int8.read_bytes()).hexdigest())
    (HERE / "card.yaml").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
