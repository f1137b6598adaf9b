"""Depth densification on real frames: IP-Basic-style ``DepthCompleter`` vs nearest-neighbour fill vs no fill.

Public API only.  Protocol, per frame (seeded):

1. Project the whole LiDAR sweep into the camera (z-buffered); these pixels and depths are the
   ground truth.
2. Hold out ``--holdout`` (default 20 %) of the points in view, chosen at random.  The *evaluation
   pixels* are the pixels whose z-buffer winner is a held-out point; their truth is that point's depth.
3. Project the remaining points: the sparse input image.  Densify it with each method and compare at
   the evaluation pixels.

Methods: ``no_fill`` (the sparse input as it is: an evaluation pixel has a value only when another,
farther kept point falls into the same pixel, so its coverage is small and its error is that of
occluded points), ``nearest`` (every pixel takes the depth of the nearest input pixel in Euclidean
pixel distance, ``scipy.ndimage.distance_transform_edt``) and ``ip_basic``
(:class:`edgefuse.fusion.densify.DepthCompleter` with default settings).  For each: coverage (share of
evaluation pixels that got a depth), MAE and RMSE in metres over the covered ones, and the median
time per frame.

Data: KITTI object frames 000000-000002, nuScenes CAM_FRONT (one keyframe), RADIATE ``tiny_foggy``
LiDAR → ``zed_left`` (unrectified plumb_bob).  Read from ``$EDGEFUSE_DATA`` or ``../shared/data``;
falls back to the excerpts in ``tests/data`` (fewer frames) when those are absent.

    python bench/bench_densify.py [--holdout 0.2] [--radiate-frames 10] [--reps 20]

Prints JSON and writes ``bench/results/densify.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

import edgefuse
from edgefuse.fusion import PINHOLE, Projector
from edgefuse.fusion.densify import DepthCompleter
from edgefuse.rig import from_kitti_object, from_radiate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "densify.json"
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Frame = tuple[str, npt.NDArray[np.float32], Projector]


def _data_root() -> Path:
    return Path(os.environ.get("EDGEFUSE_DATA", ROOT.parent / "shared" / "data"))


def _pick(name: str, sub: str) -> Path:
    shared = _data_root() / name / sub
    return shared if shared.exists() else ROOT / "tests" / "data" / name / sub


def _kitti_frames() -> Iterator[Frame]:
    base = _pick("kitti_object_3frames", "training")
    for calib_path in sorted((base / "calib").glob("*.txt")):
        frame = calib_path.stem
        rig = from_kitti_object(calib_path)  # K from P2; baseline and R0_rect folded into T_cam2_from_velodyne
        K, T = rig.camera("cam2").K, rig.transform("cam2", "velodyne").matrix
        image = cv2.imread(str(base / "image_2" / f"{frame}.png"), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FileNotFoundError(base / "image_2" / f"{frame}.png")
        h, w = image.shape[:2]
        xyz = np.fromfile(base / "velodyne" / f"{frame}.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
        yield f"kitti/{frame}", np.ascontiguousarray(xyz), Projector(PINHOLE, K, None, w, h, T)


def _nuscenes_frames() -> Iterator[Frame]:
    base = ROOT / "tests" / "data" / "nuscenes_demo_sample"
    info = json.loads((base / "calib_and_boxes_from_pkl.json").read_text())
    cam = info["images"]["CAM_FRONT"]
    xyz = np.fromfile(next(base.glob("*LIDAR_TOP*.pcd.bin")), dtype=np.float32).reshape(-1, 5)[:, :3]
    # lidar2cam includes the ego motion between the LiDAR and camera stamps.
    projector = Projector(PINHOLE, np.array(cam["cam2img"]), None, 1600, 900, np.array(cam["lidar2cam"]))
    yield "nuscenes/CAM_FRONT", np.ascontiguousarray(xyz), projector


def _radiate_frames(limit: int) -> Iterator[Frame]:
    shared = _data_root() / "radiate_tiny_foggy"
    base = shared if shared.exists() else ROOT / "tests" / "data" / "radiate_tiny_foggy"
    rig = from_radiate(base / "config" / "default-calib.yaml")
    camera = rig.camera("zed_left")
    T = np.asarray(rig.transform(camera.frame_id, "lidar").matrix)
    projector = Projector.from_camera(camera, T, max_radius=float(camera.max_radius))
    files = sorted((base / "data" / "radiate" / "tiny_foggy" / "velo_lidar").glob("*.csv"))
    step = max(len(files) // max(limit, 1), 1)
    for path in files[::step][:limit]:
        xyz = np.loadtxt(path, delimiter=",", dtype=np.float32)[:, :3]
        yield f"radiate/{path.stem}", np.ascontiguousarray(xyz), projector


def nearest_fill(sparse: F32) -> F32:
    """Every pixel takes the depth of the nearest non-zero pixel (Euclidean distance in pixels)."""
    empty = sparse <= 0
    if empty.all():
        return np.zeros_like(sparse)
    _, (rows, cols) = ndimage.distance_transform_edt(empty, return_indices=True)
    out: F32 = sparse[rows, cols]
    return out


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _errors(pred: F32, truth: F32) -> dict[str, Any]:
    covered = pred > 0
    diff = (pred[covered] - truth[covered]).astype(np.float64)
    return {
        "n": int(truth.size),
        "covered": int(covered.sum()),
        "abs_sum": float(np.abs(diff).sum()),
        "sq_sum": float((diff * diff).sum()),
    }


def _summary(acc: dict[str, Any]) -> dict[str, Any]:
    covered = max(acc["covered"], 1)
    return {
        "eval_pixels": acc["n"],
        "coverage": acc["covered"] / max(acc["n"], 1),
        "mae_m": acc["abs_sum"] / covered if acc["covered"] else None,
        "rmse_m": float(np.sqrt(acc["sq_sum"] / covered)) if acc["covered"] else None,
    }


def evaluate(frames: list[Frame], holdout: float, reps: int, seed: int) -> dict[str, Any]:
    """Hold-out evaluation over ``frames`` (pooled over evaluation pixels) plus per-frame figures."""
    methods = ("no_fill", "nearest", "ip_basic")
    pooled = {m: {"n": 0, "covered": 0, "abs_sum": 0.0, "sq_sum": 0.0} for m in methods}
    per_frame = []
    completers: dict[tuple[int, int], DepthCompleter] = {}
    times: dict[str, list[float]] = {"nearest": [], "ip_basic": []}
    for k, (name, xyz, projector) in enumerate(frames):
        rng = np.random.default_rng(seed + k)
        full = projector.project(xyz, copy=True)
        in_view = np.flatnonzero(full.valid)
        held = np.zeros(xyz.shape[0], dtype=bool)
        held[rng.choice(in_view, size=round(holdout * in_view.size), replace=False)] = True
        winners = full.index >= 0
        eval_mask = winners.copy()
        eval_mask[winners] = held[full.index[winners]]
        truth = full.depth[eval_mask]
        sparse = projector.project(np.ascontiguousarray(xyz[~held]), copy=True).depth
        shape = sparse.shape
        completer = completers.get(shape)
        if completer is None:
            completer = completers[shape] = DepthCompleter(*shape)
            completer.warmup()
        preds = {"no_fill": sparse, "nearest": nearest_fill(sparse), "ip_basic": completer.complete(sparse, copy=True)}
        times["nearest"].append(_median_ms(lambda s=sparse: nearest_fill(s), reps))  # type: ignore[misc]
        times["ip_basic"].append(_median_ms(lambda s=sparse, c=completer: c.complete(s), reps))  # type: ignore[misc]
        entry: dict[str, Any] = {"frame": name, "points": int(xyz.shape[0]), "in_view": int(in_view.size),
                                 "input_pixels": int(np.count_nonzero(sparse)),
                                 "image": [int(shape[1]), int(shape[0])]}
        for method in methods:
            err = _errors(preds[method][eval_mask], truth)
            for key in pooled[method]:
                pooled[method][key] += err[key]
            entry[method] = _summary(err)
        per_frame.append(entry)
    result: dict[str, Any] = {m: _summary(pooled[m]) for m in methods}
    result["nearest"]["median_ms"] = float(np.median(times["nearest"]))
    result["ip_basic"]["median_ms"] = float(np.median(times["ip_basic"]))
    result["frames"] = per_frame
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--radiate-frames", type=int, default=10)
    parser.add_argument("--reps", type=int, default=20, help="timing repetitions per frame")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "densify",
        "edgefuse": edgefuse.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "cores": os.cpu_count(),
        "holdout": args.holdout,
        "seed": args.seed,
        "protocol": ("hold out a random share of the in-view LiDAR points; evaluate at the pixels those "
                     "points win in the full z-buffer; MAE/RMSE over covered evaluation pixels"),
        "datasets": {},
    }
    datasets = {
        "kitti": list(_kitti_frames()),
        "nuscenes_cam_front": list(_nuscenes_frames()),
        "radiate_zed_left": list(_radiate_frames(args.radiate_frames)),
    }
    for name, frames in datasets.items():
        report["datasets"][name] = evaluate(frames, args.holdout, args.reps, args.seed)
    text = json.dumps(report, indent=2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
