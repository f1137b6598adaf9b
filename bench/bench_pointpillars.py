"""PointPillars-contract network end to end on CPU: voxelize → ONNX model → decode, FP32 and INT8.

The network is UNTRAINED (random weights, ``models/pointpillars``): the figures are latency only.  Per
frame of the three KITTI object clouds in ``tests/data`` (about 120k points each):

1. ``voxelize``: :class:`edgefuse.fusion.voxel.PillarVoxelizer` (0.16 m pillars, 32 points, 16000 pillars,
   raw ``x, y, z, i``) plus the ``voxel_idxs`` column of zeros: the contract's three inputs;
2. ``model``: ONNX Runtime (CPU provider, ``--threads`` intra-op threads, graph optimisations on);
3. ``decode``: :class:`edgefuse.objects.pillars_decode.PillarsDecoder` (score >= 0.1, <= 4096 boxes).
   The random head puts most anchors near score 0.5, far more than a trained head does, so the decode
   time here is an upper bound (it sorts 4096 candidates every frame).

Builds the ONNX files first when absent (``python -m models.pointpillars.export``, needs the ``train``
extra).  Prints JSON and writes ``bench/results/pointpillars.json``::

    python bench/bench_pointpillars.py [--reps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._env import environment  # noqa: E402
from edgefuse.fusion.voxel import PillarVoxelizer  # noqa: E402
from edgefuse.objects.pillars_decode import PillarsDecoder  # noqa: E402

BUILD = ROOT / "models" / "pointpillars" / "build"
KITTI = ROOT / "tests" / "data" / "kitti_object_3frames" / "training" / "velodyne"


def _pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def run(model: Path, clouds: list[np.ndarray], reps: int, threads: int) -> dict[str, object]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    vox = PillarVoxelizer((0.16, 0.16), (0.0, -39.68, -3.0, 69.12, 39.68, 1.0), max_points_per_pillar=32,
                          max_pillars=16000, augment=False, on_cap="continue")
    vox.warmup()
    dec = PillarsDecoder()
    dec.warmup()
    idx = np.zeros((16000, 4), np.int32)
    t_vox, t_model, t_dec, t_all, n_boxes = [], [], [], [], []
    for rep in range(reps + 1):
        for cloud in clouds:
            t0 = time.perf_counter()
            p = vox.voxelize(cloud)
            n = p.n_pillars
            idx[:n, 1:] = p.coords
            feeds = {"voxels": p.features, "voxel_num": p.num_points, "voxel_idxs": idx[:n]}
            t1 = time.perf_counter()
            cls, box, dirs = sess.run(["cls_preds", "box_preds", "dir_cls_preds"], feeds)
            t2 = time.perf_counter()
            det = dec.decode(cls, box, dirs, frame_id="velodyne")
            t3 = time.perf_counter()
            if rep == 0:
                continue  # first pass warms ORT's arenas
            t_vox.append(t1 - t0)
            t_model.append(t2 - t1)
            t_dec.append(t3 - t2)
            t_all.append(t3 - t0)
            n_boxes.append(len(det))
    pre_post = float(np.median(np.add(t_vox, t_dec)) / np.median(t_model))
    return {"model": model.name, "frames": len(t_all), "end_to_end": _pct(t_all), "voxelize": _pct(t_vox),
            "model_run": _pct(t_model), "decode": _pct(t_dec), "pre_post_over_model_p50": round(pre_post, 4),
            "boxes_mean": float(np.mean(n_boxes))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pointpillars.json")
    a = ap.parse_args()
    fp32 = BUILD / "pointpillars_kitti_untrained.onnx"
    int8 = BUILD / "pointpillars_kitti_untrained.int8.onnx"
    if not (fp32.exists() and int8.exists()):
        from models.pointpillars.export import export

        export(BUILD)
    clouds = [np.fromfile(f, dtype=np.float32).reshape(-1, 4) for f in sorted(KITTI.glob("*.bin"))]
    res_fp32 = run(fp32, clouds, a.reps, a.threads)
    res_int8 = run(int8, clouds, a.reps, a.threads)
    out = {"benchmark": "pointpillars", "note": "UNTRAINED network: latency only", "threads": a.threads,
           "load_average_1min": os.getloadavg()[0],
           "points_per_cloud": [int(c.shape[0]) for c in clouds], "fp32": res_fp32, "int8": res_int8,
           "int8_speedup_model_p50": round(res_fp32["model_run"]["p50_ms"] / res_int8["model_run"]["p50_ms"], 3),
           "export": json.loads((BUILD / "export.json").read_text()), "environment": environment()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
