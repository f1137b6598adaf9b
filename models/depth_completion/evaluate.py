"""Compare depth completion methods on held-out recordings: MAE / RMSE on held-out LiDAR points.

Protocol, per frame of the evaluation recordings (RADIATE fog, KITTI, nuScenes: none of them seen in
training), at the network resolution (width 336, see :mod:`models.depth_completion.data`):

1. every LiDAR return projected into the camera (z-buffered) is a ground-truth pixel;
2. a seeded random 20 % of them are held out (the targets); the other 80 % are the sparse input;
3. every method completes the sparse input; the error is taken on the held-out pixels only.

Methods: ``nearest`` (depth of the nearest input pixel, ``scipy.ndimage.distance_transform_edt``),
``ip_basic`` (:class:`edgefuse.fusion.densify.DepthCompleter`, the ``depth_densify`` stage's completer,
default settings, max depth 80 m), the three networks run through ONNX Runtime from their exported
files: ``fused_concat``, ``fused_gated`` and ``lidar_only`` (same size as ``fused_concat``), and the
INT8 files.  The fused networks are also run with the camera blanked (an all-zero image: night, a dead
or fogged-out camera): ``... (camera blanked)``.

MAE / RMSE are pooled over all held-out points of a recording; ``all`` pools every point of every
evaluation recording (RADIATE's 34 frames dominate it).  ``coverage`` is the share of held-out pixels
that received a depth (the networks and nearest neighbour always predict; IP-Basic leaves far-from-input
pixels empty).  Writes ``models/depth_completion/results.json``::

    .venv/bin/python -m models.depth_completion.evaluate
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy import ndimage

from edgefuse.fusion.densify import DepthCompleter
from models.depth_completion.data import EVAL_RECORDINGS, MAX_DEPTH_M, load, split_points

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
HOLDOUT = 0.2


def nearest(inp: np.ndarray) -> np.ndarray:
    if not np.any(inp > 0):
        return np.zeros_like(inp)
    _, (ri, ci) = ndimage.distance_transform_edt(inp <= 0, return_indices=True)
    out: np.ndarray = inp[ri, ci]
    return out


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    frames = load(EVAL_RECORDINGS)
    nets = {"fused_concat": "concat", "fused_gated": "gated", "lidar_only": "lidar"}
    sessions = {}
    for name, mode in nets.items():
        sessions[name] = session(BUILD / f"{mode}.onnx")
        sessions[name + " INT8"] = session(BUILD / f"{mode}.int8.onnx")
    errors: dict[str, dict[str, list[np.ndarray]]] = {}
    covered: dict[str, dict[str, list[int]]] = {}
    times: dict[str, list[float]] = {}
    rng = np.random.default_rng(2024)
    completers: dict[tuple[int, int], DepthCompleter] = {}

    def record(method: str, rec: str, pred: np.ndarray, tgt: np.ndarray) -> None:
        m = tgt > 0
        ok = m & (pred > 0)
        errors.setdefault(method, {}).setdefault(rec, []).append((pred[ok] - tgt[ok]).astype(np.float64))
        covered.setdefault(method, {}).setdefault(rec, []).append(int(m.sum()))

    for f in frames:
        inp, tgt = split_points(f.depth, HOLDOUT, rng)
        h, w = inp.shape
        record("nearest", f.recording, nearest(inp), tgt)
        comp = completers.setdefault((h, w), DepthCompleter(h, w, max_depth_m=MAX_DEPTH_M))
        t0 = time.perf_counter()
        dense = comp.complete(inp, copy=True)
        times.setdefault("ip_basic", []).append(time.perf_counter() - t0)
        record("ip_basic", f.recording, dense, tgt)
        img = np.ascontiguousarray(f.image.transpose(2, 0, 1)[None], np.float32)
        blank = np.zeros_like(img)
        dep = np.ascontiguousarray(inp[None, None], np.float32)
        for name, sess in sessions.items():
            t0 = time.perf_counter()
            has_image = any(i.name == "image" for i in sess.get_inputs())  # LiDAR-only: no image input
            feeds = {"image": img, "sparse_depth": dep} if has_image else {"sparse_depth": dep}
            out = sess.run(["depth"], feeds)[0][0, 0]
            times.setdefault(name, []).append(time.perf_counter() - t0)
            record(name, f.recording, out, tgt)
            if has_image:
                out = sess.run(["depth"], {"image": blank, "sparse_depth": dep})[0][0, 0]
                record(name + " (camera blanked)", f.recording, out, tgt)

    table: dict[str, dict[str, dict[str, float]]] = {}
    for method, per_rec in errors.items():
        table[method] = {}
        for rec in [*EVAL_RECORDINGS, "all"]:
            recs = EVAL_RECORDINGS if rec == "all" else (rec,)
            e = np.concatenate([x for r in recs for x in per_rec[r]])
            n = sum(sum(covered[method][r]) for r in recs)
            table[method][rec] = {"mae_m": round(float(np.mean(np.abs(e))), 3),
                                  "rmse_m": round(float(np.sqrt(np.mean(e**2))), 3),
                                  "points": int(e.size), "coverage": round(e.size / max(n, 1), 4)}
    per_frame = {k: {"median_ms": round(1e3 * float(np.median(v)), 2),
                     "p99_ms": round(1e3 * float(np.percentile(v, 99)), 2)} for k, v in times.items()}
    counts = {r: sum(1 for f in frames if f.recording == r) for r in EVAL_RECORDINGS}
    train_info = {m: json.loads((HERE / "checkpoints" / f"{m}.json").read_text()) for m in nets.values()
                  if (HERE / "checkpoints" / f"{m}.json").exists()}
    export_info = json.loads((BUILD / "export.json").read_text()) if (BUILD / "export.json").exists() else {}
    out = {"protocol": __doc__.split("Writes")[0].strip(), "holdout": HOLDOUT, "eval_frames": counts,
           "resolution_width": 336, "table": table, "time_per_frame_this_run": per_frame,
           "training": train_info, "export": export_info}
    (HERE / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    hdr = f"{'method':40s}" + "".join(f"{r:>22s}" for r in [*EVAL_RECORDINGS, "all"])
    print(hdr)
    for method, row in table.items():
        print(f"{method:40s}" + "".join(f"{row[r]['mae_m']:>9.3f} / {row[r]['rmse_m']:<9.3f}   "
                                        for r in [*EVAL_RECORDINGS, "all"]))


if __name__ == "__main__":
    main()
