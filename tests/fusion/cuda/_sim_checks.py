"""Run every CUDA kernel under Numba's CUDA simulator against its CPU kernel; print one JSON line.

Run as a script (``NUMBA_ENABLE_CUDASIM=1`` is set here, before ``numba.cuda`` is first imported, in a
fresh process: the simulator must not replace ``numba.cuda`` in the test process itself).  Inputs are
small real clouds (a few hundred points of KITTI 000000 and the nuScenes LIDAR_TOP sweep): the simulator
runs each CUDA thread as a Python thread.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "data"
#: lidar (x forward, y left, z up) -> camera optical frame (x right, y down, z forward)
T_CAM_LIDAR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.1], [1.0, 0.0, 0.0, 0.2], [0.0, 0.0, 0.0, 1.0]])


def kitti(n: int) -> np.ndarray:
    pts = np.fromfile(DATA / "kitti_object_3frames/training/velodyne/000000.bin", dtype=np.float32).reshape(-1, 4)
    return np.ascontiguousarray(pts[:: max(1, pts.shape[0] // n)][:n])


def nuscenes(n: int) -> np.ndarray:
    path = next((DATA / "nuscenes_demo_sample").glob("*LIDAR_TOP*.pcd.bin"))
    pts = np.fromfile(path, dtype=np.float32).reshape(-1, 5)[:, :4]
    return np.ascontiguousarray(pts[:: max(1, pts.shape[0] // n)][:n])


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def projection(out: dict[str, Any]) -> None:
    from edgefuse.fusion._models import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL
    from edgefuse.fusion.cuda import CudaProjector
    from edgefuse.fusion.projection import Projector

    pts = kitti(300)[:, :3]
    pts = np.vstack([pts, pts[:5], [[np.nan, 0, 0], [10, 0, np.inf]]]).astype(np.float32)  # duplicates: ties
    K = np.array([[12.0, 0.0, 16.0], [0.0, 12.0, 12.0], [0.0, 0.0, 1.0]])
    models = {"pinhole": (PINHOLE, None), "plumb_bob": (PLUMB_BOB, [0.1, -0.05, 0.001, 0.002, 0.01]),
              "rational": (RATIONAL, [0.1, -0.05, 0.001, 0.002, 0.01, 0.02, 0.01, 0.005]),
              "equidistant": (EQUIDISTANT, [0.05, 0.01, -0.01, 0.001])}
    for name, (model, D) in models.items():
        cpu = Projector(model, K, D, 32, 24, T_CAM_LIDAR)
        gpu = CudaProjector(model, K, D, 32, 24, T_CAM_LIDAR)
        for dt in (np.float32, np.float64):
            a = cpu.project(pts.astype(dt), copy=True, per_point=True)
            b = gpu.project(pts.astype(dt), copy=True)
            out[f"projection.{name}.{np.dtype(dt).name}"] = {
                "n_valid": [a.n_valid, b.n_valid], "index": same(a.index, b.index), "depth": same(a.depth, b.depth),
                "uv": same(a.uv, b.uv), "valid": same(a.valid, b.valid), "n_pixels": a.n_pixels}
        before = gpu.pool.allocations
        gpu.project(pts)
        gpu.project(pts[:100])
        out[f"projection.{name}.steady_allocations"] = gpu.pool.allocations - before
        out[f"projection.{name}.timing_keys"] = sorted(gpu.last_timing)


def voxels(out: dict[str, Any]) -> None:
    from edgefuse.fusion.cuda import CudaDynamicVoxelizer, CudaPillarVoxelizer, CudaVoxelizer
    from edgefuse.fusion.voxel import DynamicVoxelizer, PillarVoxelizer, Voxelizer

    rng_ = [0.0, -20.0, -3.0, 40.0, 20.0, 1.0]
    size = [2.0, 2.0, 1.0]
    for cloud_name, cloud in (("kitti", kitti(400)), ("nuscenes", nuscenes(400))):
        pts = cloud.copy()
        pts[7, 0] = np.nan
        for dt in (np.float32, np.float64):
            p = pts.astype(dt)
            a = DynamicVoxelizer(size, rng_).voxelize(p, copy=True)
            gd = CudaDynamicVoxelizer(size, rng_)
            b = gd.voxelize(p, copy=True)
            before = gd.pool.allocations
            gd.voxelize(p)
            out[f"dynamic.{cloud_name}.{np.dtype(dt).name}"] = {
                "m": [a.n_voxels, b.n_voxels], "point_voxel": same(a.point_voxel, b.point_voxel),
                "coords": same(a.coords, b.coords), "num_points": same(a.num_points, b.num_points),
                "steady_allocations": gd.pool.allocations - before}
            for on_cap in ("stop", "continue"):
                for max_voxels in (500, 12):
                    kw: dict[str, Any] = {"max_points_per_voxel": 3, "max_voxels": max_voxels, "on_cap": on_cap}
                    a2 = Voxelizer(size, rng_, **kw).voxelize(p, copy=True)
                    b2 = CudaVoxelizer(size, rng_, **kw).voxelize(p, copy=True)
                    out[f"hard.{cloud_name}.{np.dtype(dt).name}.{on_cap}.{max_voxels}"] = {
                        "m": [a2.n_voxels, b2.n_voxels], "voxels": same(a2.voxels, b2.voxels),
                        "coords": same(a2.coords, b2.coords), "num_points": same(a2.num_points, b2.num_points),
                        "stats": [[a2.n_outside, a2.n_dropped_voxels, a2.n_dropped_points],
                                  [b2.n_outside, b2.n_dropped_voxels, b2.n_dropped_points]]}
        pa = PillarVoxelizer([4.0, 4.0], rng_, max_points_per_pillar=4, max_pillars=40).voxelize(pts)
        fa = pa.features.copy()
        pb = CudaPillarVoxelizer([4.0, 4.0], rng_, max_points_per_pillar=4, max_pillars=40).voxelize(pts)
        out[f"pillars.{cloud_name}"] = {"features": same(fa, pb.features), "m": [pa.n_pillars, pb.n_pillars],
                                        "coords": same(pa.coords, pb.coords)}


def bev(out: dict[str, Any]) -> None:
    from edgefuse.fusion.bev import BevGrid
    from edgefuse.fusion.cuda import CudaBevGrid

    pts = kitti(400)
    for norm in (0.0, 64.0):
        kw: dict[str, Any] = {"z_range": (-2.5, 1.0), "density_log_norm": norm, "empty_height": -3.0}
        a = BevGrid((0.0, 40.0), (-20.0, 20.0), 4.0, **kw).compute(pts, copy=True)
        gb = CudaBevGrid((0.0, 40.0), (-20.0, 20.0), 4.0, **kw)
        b = gb.compute(pts, copy=True)
        before = gb.pool.allocations
        gb.compute(pts)
        out[f"bev.{norm:g}"] = {"exact": [same(a[..., i], b[..., i]) for i in range(a.shape[2])],
                                "max_abs": float(np.max(np.abs(a - b))), "occupied": int(np.sum(a[..., 4])),
                                "steady_allocations": gb.pool.allocations - before}


def deskew(out: dict[str, Any]) -> None:
    from edgefuse.fusion.cuda import CudaDeskewer
    from edgefuse.fusion.deskew import ConstantVelocity, Deskewer
    from edgefuse.msgs.types import ImuBatch

    pts = kitti(300)[:, :3]
    n = pts.shape[0]
    t = np.linspace(0, 100_000_000, n).astype(np.int64)
    t[3] = t[2]
    stamps = np.arange(5_000_000, 96_000_000, 5_000_000, dtype=np.int64)
    gyro = np.column_stack([0.1 * np.sin(stamps * 1e-8), 0.2 * np.cos(stamps * 1e-8), 3 + np.sin(stamps * 3e-8)])
    motions: dict[str, Any] = {"cv": ConstantVelocity((5.0, 0.3, 0.0), (0.01, 0.02, 3.0)),
               "imu": ImuBatch(stamps, gyro, np.zeros((stamps.size, 3)))}
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.3]
    for name, motion in motions.items():
        for outside in ("extrapolate", "nan"):
            a = Deskewer(T, outside=outside, max_extrapolation_ns=0)
            g = CudaDeskewer(T, outside=outside, max_extrapolation_ns=0)
            ra = a.deskew(pts, t, motion, reference_time_ns="mid")
            pa = ra.points.copy()
            rb = g.deskew(pts, t, motion, reference_time_ns="mid")
            before = g.pool.allocations
            g.deskew(pts, t, motion, reference_time_ns="mid")
            diff = np.abs(pa.astype(np.float64) - rb.points)
            out[f"deskew.{name}.{outside}"] = {
                "n_outside": [ra.n_outside, rb.n_outside], "nan_same": same(np.isnan(pa), np.isnan(rb.points)),
                "max_abs": float(np.nanmax(diff)) if np.any(np.isfinite(diff)) else 0.0,
                "steady_allocations": g.pool.allocations - before}


def main() -> None:
    from edgefuse.fusion.cuda import cuda_status, resolve_device

    out: dict[str, Any] = {"status": list(cuda_status()), "auto": list(resolve_device("auto"))}
    wanted = sys.argv[1:] or ["projection", "voxels", "bev", "deskew"]
    for name in wanted:
        globals()[name](out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
