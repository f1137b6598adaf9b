"""Benchmark LiDAR → camera projection (``edgefuse.fusion.Projector``) against plain numpy.

Public API only (``serial_variant`` reads one private attribute to report which kernel ran).
Scenes: ``kitti`` (KITTI object frame 000001: 120,268 points, 1242x375, read from
``$EDGEFUSE_DATA`` or ``../shared/data``, skipped when absent) and ``synthetic`` (120,000 points
uniform in a KITTI-like volume around the car, same calibration and image size).  For each scene:
median/p99/max of ``Projector.project`` on one thread (JIT warm) and of a vectorised numpy version
with the same semantics in the same process, their ratio, and deadline misses against 1.5 ms.  JIT
time is reported separately, both as ``warmup()`` in this process (may load from cache) and cold in a
subprocess with an empty cache.  ``--contention`` also compares ``threads=1`` with ``threads=2``
(see :func:`_contention`), idle and while another process keeps one core busy, for the pinhole
scenes and for distortion models (PLUMB_BOB and EQUIDISTANT fisheye on the same cloud and image
size), the calls of the two projectors interleaved so both see the same load; ``--contention-only``
runs just that and writes ``bench/results/projection_contention.json``.  Also: PointPainting of the
projected cloud with a 4-channel float32 score map, and ``nuscenes_6cam`` (one nuScenes sweep into
six 1600x900 cameras with ``MultiCameraProjector`` vs six numpy projections).

``distorted`` (per scene): the same cloud through KITTI's own lens distortion (plumb_bob ``D_02`` of
KITTI raw, k1 = -0.37, which folds back at r = 1.21, short of the image corners), with the projector's
defaults, against the plumb_bob formula in numpy + the same numpy z-buffer, restricted to the
projector's valid radius (``Projector.max_radius``; ``inf`` before edgefuse had one), and against
``cv2.projectPoints`` + that z-buffer (few repetitions: it is about 100x slower from Python).
``ghost_pixels`` counts the pixels whose depth comes from a point beyond the fold (found by sampling
the radial map here).

``--compare-kernels FILE`` (development): times the serial projection kernels (one- and two-pass for
every model, the vectorised pinhole pair) of another copy of ``edgefuse/fusion/_kernels.py`` (e.g.
``git show REV:edgefuse/fusion/_kernels.py > /tmp/k.py``) against the installed ones on the same
inputs and radius, calls interleaved, and checks that their outputs are bit-identical (private
kernels: the one place this bench leaves the public API); writes ``bench/results/projection_kernels.json``.

    python bench/bench_projection.py [--reps 300] [--contention] [--contention-only] [--compare-kernels F]

Prints JSON and writes ``bench/results/projection.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from _env import environment, write_json  # bench/_env.py (benches run as scripts)

from edgefuse.fusion import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, Projector
from edgefuse.fusion.painting import PointPainter
from edgefuse.fusion.projection import MultiCameraProjector
from edgefuse.rig import from_kitti_object

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "projection.json"
CONTENTION_RESULTS = ROOT / "bench" / "results" / "projection_contention.json"
KERNELS_RESULTS = ROOT / "bench" / "results" / "projection_kernels.json"
WIDTH, HEIGHT = 1242, 375
DEADLINE_MS = 1.5
F64 = npt.NDArray[np.float64]


def _kitti_dir() -> Path:
    base = Path(os.environ.get("EDGEFUSE_DATA", ROOT.parent / "shared" / "data"))
    return base / "kitti_object_3frames" / "training"


def _calibration(path: Path) -> tuple[F64, F64]:
    """K (3, 3) and T_cam2_from_velodyne (4, 4) from a KITTI object calib file, via the rig importer
    (P2's baseline and R0_rect are folded into the transform there)."""
    rig = from_kitti_object(path)
    return rig.camera("cam2").K, rig.transform("cam2", "velodyne").matrix


class NumpyWork:
    """Preallocated per-image buffers of :func:`numpy_project` (the Projector preallocates too).

    Fresh full-image arrays on every call would cost a page fault per 4 KiB (they are larger than
    the allocator's mmap threshold), which is the allocator's cost, not the algorithm's.
    """

    def __init__(self, width: int, height: int) -> None:
        n = width * height
        self.best = np.full(n, np.inf)
        self.winner = np.full(n, np.iinfo(np.int32).max, dtype=np.int32)
        self.depth = np.zeros(n, dtype=np.float32)
        self.index = np.full(n, -1, dtype=np.int32)
        self.previous = np.zeros(0, dtype=np.intp)


def numpy_project(  # noqa: PLR0917
    xyz: npt.NDArray[np.float32], K: F64, T: F64, width: int, height: int,
    min_depth: float = 0.1, max_depth: float = 200.0, work: NumpyWork | None = None,
) -> tuple[npt.NDArray[np.float32], Any]:
    """Vectorised numpy projection + z-buffer with the Projector's semantics (pinhole with skew).

    The fastest correct numpy version we found (the baseline of the speed-up): camera ``z`` of every
    point from the three coordinate columns in float64 (elementwise, no BLAS call), the depth-range
    test, then ``x``/``y``/``u``/``v`` for the points in range only (``u`` and ``v`` rounded to
    float32 as the Projector publishes them), the in-image test, and a z-buffer with two
    ``ufunc.at`` scatters: ``np.minimum.at`` of the float64 depth per pixel, then ``np.minimum.at``
    of the point index among the points at that minimum (nearest wins, ties to the lowest index).
    With ``work`` the image buffers are reused (only the pixels written last time are reset, as the
    Projector does); the returned images are then views into it, valid until the next call.
    Result identical to the Projector's depth and index images (checked in the report).
    """
    w = work if work is not None else NumpyWork(width, height)
    R, t = T[:3, :3], T[:3, 3]
    x = xyz[:, 0].astype(np.float64)
    y = xyz[:, 1].astype(np.float64)
    z = xyz[:, 2].astype(np.float64)
    zc = R[2, 0] * x + R[2, 1] * y + R[2, 2] * z + t[2]
    keep = np.flatnonzero((zc >= min_depth) & (zc <= max_depth))
    xk, yk, zk, zk_c = x[keep], y[keep], z[keep], zc[keep]
    iz = 1.0 / zk_c
    xn = (R[0, 0] * xk + R[0, 1] * yk + R[0, 2] * zk + t[0]) * iz
    yn = (R[1, 0] * xk + R[1, 1] * yk + R[1, 2] * zk + t[1]) * iz
    u = (K[0, 0] * xn + K[0, 1] * yn + K[0, 2]).astype(np.float32).astype(np.float64)
    v = (K[1, 1] * yn + K[1, 2]).astype(np.float32).astype(np.float64)
    inside = (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)
    idx = keep[inside].astype(np.int32)
    pix = np.floor(v[inside] + 0.5).astype(np.intp) * width + np.floor(u[inside] + 0.5).astype(np.intp)
    zi = zk_c[inside]
    w.depth[w.previous] = 0.0
    w.index[w.previous] = -1
    np.minimum.at(w.best, pix, zi)
    nearest = zi == w.best[pix]
    hit = pix[nearest]
    np.minimum.at(w.winner, hit, idx[nearest])
    w.depth[hit] = w.best[hit]
    w.index[hit] = w.winner[hit]
    w.best[pix] = np.inf
    w.winner[hit] = np.iinfo(np.int32).max
    w.previous = hit
    return w.depth.reshape(height, width), w.index.reshape(height, width)


def numpy_project_matmul_lexsort(  # noqa: PLR0917
    xyz: npt.NDArray[np.float32], K: F64, T: F64, width: int, height: int,
    min_depth: float = 0.1, max_depth: float = 200.0,
) -> tuple[npt.NDArray[np.float32], Any]:
    """The earlier baseline, reported for comparison: ``(N, 3) @ R.T`` matmul and a 3-key ``np.lexsort``.

    Slower than :func:`numpy_project` mainly because the three-key lexsort of the in-image points
    costs more than two ``ufunc.at`` scatters (KITTI 000001, 18.6k points in view: 1.35 ms vs 0.21 ms).
    """
    cam = xyz.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    z = cam[:, 2]
    keep = np.flatnonzero((z >= min_depth) & (z <= max_depth))
    c = cam[keep]
    u = (K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2]).astype(np.float32).astype(np.float64)
    v = (K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]).astype(np.float32).astype(np.float64)
    inside = (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)
    idx = keep[inside]
    pix = np.floor(v[inside] + 0.5).astype(np.int64) * width + np.floor(u[inside] + 0.5).astype(np.int64)
    zi = z[idx]
    order = np.lexsort((idx, zi, pix))  # by pixel, then depth, then point index
    first = np.ones(order.size, dtype=bool)
    first[1:] = pix[order][1:] != pix[order][:-1]
    win = order[first]
    depth = np.zeros(width * height, dtype=np.float32)
    index = np.full(width * height, -1, dtype=np.int32)
    depth[pix[win]] = zi[win]
    index[pix[win]] = idx[win]
    return depth.reshape(height, width), index.reshape(height, width)


def _bind(fn: Callable[..., object], *args: Any) -> Callable[[], object]:
    """``fn`` with its arguments bound (a typed stand-in for a default-argument lambda)."""
    return lambda: fn(*args)


def _project_with_uv(projector: Projector, xyz: npt.NDArray[np.float32]) -> object:
    """``project`` plus the lazily computed per-point outputs (``uv`` and ``valid``, read after the call)."""
    return projector.project(xyz).uv


def _project_per_point(projector: Projector, xyz: npt.NDArray[np.float32]) -> object:
    """``project(per_point=True)``: ``uv`` and ``valid`` computed in the same pass."""
    return projector.project(xyz, per_point=True)


def _stats(fn: Callable[[], object], reps: int) -> dict[str, float]:
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    ms = times * 1e3
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "deadline_misses": int(np.count_nonzero(ms > DEADLINE_MS)),
            "reps": reps}


def _cold_jit_seconds() -> float | None:
    """Warm-up time in a fresh interpreter with an empty Numba cache (true compile time)."""
    code = ("import numpy as np; from edgefuse.fusion import Projector, PINHOLE; import time; "
            "p = Projector(PINHOLE, np.diag([700.0, 700.0, 1.0]), None, 1242, 375, np.eye(4)); "
            "print(p.warmup())")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, EDGEFUSE_NUMBA_CACHE_DIR=cache, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=False)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _scenes(rng: np.random.Generator) -> dict[str, tuple[npt.NDArray[np.float32], F64, F64]]:
    kitti = _kitti_dir()
    calib = kitti / "calib" / "000001.txt"
    if not calib.exists():
        calib = ROOT / "tests" / "data" / "kitti_object_3frames" / "training" / "calib" / "000000.txt"
    K, T = _calibration(calib)
    synthetic = rng.uniform([-80.0, -80.0, -3.0], [80.0, 80.0, 3.0], size=(120_000, 3)).astype(np.float32)
    scenes = {"synthetic_uniform_120k": (synthetic, K, T)}
    velo = kitti / "velodyne" / "000001.bin"
    if velo.exists():
        xyz = np.ascontiguousarray(np.fromfile(velo, dtype=np.float32).reshape(-1, 4)[:, :3])
        scenes["kitti_000001"] = (xyz, K, T)
    return scenes


def _nuscenes_six(reps: int) -> dict[str, Any]:
    """One nuScenes sweep (34,688 points) into all six 1600x900 cameras: one call vs six numpy runs."""
    base = ROOT / "tests" / "data" / "nuscenes_demo_sample"
    info = json.loads((base / "calib_and_boxes_from_pkl.json").read_text())
    xyz = np.ascontiguousarray(
        np.fromfile(next(base.glob("*LIDAR_TOP*.pcd.bin")), dtype=np.float32).reshape(-1, 5)[:, :3])
    cams = [(np.array(c["cam2img"]), np.array(c["lidar2cam"])) for c in info["images"].values()]
    multi = MultiCameraProjector([Projector(PINHOLE, K, None, 1600, 900, T) for K, T in cams], list(info["images"]))
    warmup_s = multi.warmup()
    result = multi.project(xyz)

    works = [NumpyWork(1600, 900) for _ in cams]

    def numpy_six() -> None:
        for (K, T), work in zip(cams, works, strict=True):
            numpy_project(xyz, K, T, 1600, 900, work=work)

    edge = _stats(_bind(multi.project, xyz), reps)
    ref = _stats(numpy_six, max(reps // 5, 20))
    return {"points": int(xyz.shape[0]), "cameras": len(cams), "image": [1600, 900],
            "points_in_view": [r.n_valid for r in result.results], "assigned": result.n_assigned,
            "warmup_s": warmup_s, "multi_camera_threads1": edge, "numpy_6x": ref,
            "speedup_vs_numpy": ref["median_ms"] / edge["median_ms"],
            "speedup_vs_numpy_min": ref["min_ms"] / edge["min_ms"]}


#: KITTI raw 2011_09_26 calib_cam_to_cam.txt, D_02 (k1, k2, p1, p2, k3): the lens of the camera whose
#: rectified images the KITTI object frames are.
KITTI_D02 = np.array([-3.691481e-01, 1.968681e-01, 1.353473e-03, 5.677587e-04, -6.770705e-02])


def _fold_radius(D: F64) -> float:
    """Where ``r (1 + k1 r^2 + k2 r^4 + k3 r^6)`` stops increasing, sampled every 1e-6 up to r = 5."""
    r = np.linspace(0.0, 5.0, 5_000_001)
    s = r * r
    f = r * (1 + D[0] * s + D[1] * s * s + D[4] * s * s * s)
    bad = np.flatnonzero(~(np.diff(f) > 0))
    return float(r[bad[0]]) if bad.size else np.inf


def numpy_project_distorted(  # noqa: PLR0917
    xyz: npt.NDArray[np.float32], K: F64, D: F64, T: F64, width: int, height: int, max_radius: float,
    min_depth: float = 0.1, max_depth: float = 200.0, work: NumpyWork | None = None, *, opencv: bool = False,
) -> tuple[npt.NDArray[np.float32], Any]:
    """Distorted (plumb_bob) projection + :func:`numpy_project`'s z-buffer: the baselines of the distorted
    scenes.  Camera coordinates in float64 column by column, the depth range and the valid radius
    ``hypot(x/z, y/z) <= max_radius``, then OpenCV's plumb_bob formula on those points only, in numpy
    (the strongest baseline: ``cv2.projectPoints`` always computes its Jacobians from Python and is about
    100x slower) or, with ``opencv``, by ``cv2.projectPoints``; pixels rounded to float32 as the Projector
    publishes them."""
    w = work if work is not None else NumpyWork(width, height)
    R, t = T[:3, :3], T[:3, 3]
    x = xyz[:, 0].astype(np.float64)
    y = xyz[:, 1].astype(np.float64)
    z = xyz[:, 2].astype(np.float64)
    zc = R[2, 0] * x + R[2, 1] * y + R[2, 2] * z + t[2]
    keep = np.flatnonzero((zc >= min_depth) & (zc <= max_depth))
    xk, yk, zk, zk_c = x[keep], y[keep], z[keep], zc[keep]
    iz = 1.0 / zk_c
    xn = (R[0, 0] * xk + R[0, 1] * yk + R[0, 2] * zk + t[0]) * iz
    yn = (R[1, 0] * xk + R[1, 1] * yk + R[1, 2] * zk + t[1]) * iz
    r2 = xn * xn + yn * yn
    sel = np.flatnonzero(r2 <= max_radius * max_radius)
    keep, zk_c, xn, yn, r2 = keep[sel], zk_c[sel], xn[sel], yn[sel], r2[sel]
    if opencv:
        cam = np.stack([xn * zk_c, yn * zk_c, zk_c], axis=1).reshape(-1, 1, 3)
        zero = np.zeros(3)
        uv = cv2.projectPoints(cam, zero, zero, K, D[:5])[0].reshape(-1, 2) if keep.size else np.zeros((0, 2))
        u = uv[:, 0].astype(np.float32).astype(np.float64)
        v = uv[:, 1].astype(np.float32).astype(np.float64)
    else:
        k1, k2, p1, p2, k3 = D[:5]
        cdist = 1.0 + k1 * r2 + k2 * (r2 * r2) + k3 * (r2 * r2 * r2)
        a1 = 2.0 * xn * yn
        xd = xn * cdist + p1 * a1 + p2 * (r2 + 2.0 * xn * xn)
        yd = yn * cdist + p1 * (r2 + 2.0 * yn * yn) + p2 * a1
        u = (K[0, 0] * xd + K[0, 1] * yd + K[0, 2]).astype(np.float32).astype(np.float64)
        v = (K[1, 1] * yd + K[1, 2]).astype(np.float32).astype(np.float64)
    inside = (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)
    idx = keep[inside].astype(np.int32)
    pix = np.floor(v[inside] + 0.5).astype(np.intp) * width + np.floor(u[inside] + 0.5).astype(np.intp)
    zi = zk_c[inside]
    w.depth[w.previous] = 0.0
    w.index[w.previous] = -1
    np.minimum.at(w.best, pix, zi)
    nearest = zi == w.best[pix]
    hit = pix[nearest]
    np.minimum.at(w.winner, hit, idx[nearest])
    w.depth[hit] = w.best[hit]
    w.index[hit] = w.winner[hit]
    w.best[pix] = np.inf
    w.winner[hit] = np.iinfo(np.int32).max
    w.previous = hit
    return w.depth.reshape(height, width), w.index.reshape(height, width)


def _distorted(xyz: npt.NDArray[np.float32], K: F64, T: F64, reps: int) -> dict[str, Any]:
    """The scene through KITTI's plumb_bob lens: Projector (defaults, one thread) vs OpenCV + numpy."""
    projector = Projector(PLUMB_BOB, K, KITTI_D02, WIDTH, HEIGHT, T, threads=1)
    warmup_s = projector.warmup()
    result = projector.project(xyz, copy=True)
    radius = float(getattr(projector, "max_radius", np.inf))
    fold = _fold_radius(KITTI_D02)
    cam = xyz.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        point_radius = np.hypot(cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2])
    winners = result.index[result.index >= 0]
    identical = {}
    for opencv in (False, True):
        depth_ref, index_ref = numpy_project_distorted(xyz, K, KITTI_D02, T, WIDTH, HEIGHT, radius, opencv=opencv)
        identical["opencv" if opencv else "numpy"] = {
            "identical": bool(np.array_equal(depth_ref, result.depth) and np.array_equal(index_ref, result.index)),
            "pixels_differing": int(np.count_nonzero(index_ref != result.index))}
    for _ in range(8):  # let the serial path chooser settle on its faster variant
        projector.project(xyz)
    edge = _stats(_bind(projector.project, xyz), reps)
    work = NumpyWork(WIDTH, HEIGHT)
    ref = _stats(_bind(numpy_project_distorted, xyz, K, KITTI_D02, T, WIDTH, HEIGHT, radius, 0.1, 200.0, work),
                 max(reps // 5, 20))
    ref_cv = _stats(lambda: numpy_project_distorted(xyz, K, KITTI_D02, T, WIDTH, HEIGHT, radius, 0.1, 200.0, work,
                                                    opencv=True), max(reps // 60, 5))
    return {
        "D": KITTI_D02.tolist(), "max_radius": radius, "fold_radius_sampled": fold, "warmup_s": warmup_s,
        "valid_points": result.n_valid, "pixels_with_depth": result.n_pixels,
        "ghost_pixels": int(np.count_nonzero(point_radius[winners] > fold)),
        "projector_threads1": edge, "numpy": ref, "opencv_projectpoints_numpy": ref_cv,
        "speedup_vs_numpy": ref["median_ms"] / edge["median_ms"],
        "speedup_vs_numpy_min": ref["min_ms"] / edge["min_ms"],
        "speedup_vs_opencv": ref_cv["median_ms"] / edge["median_ms"],
        "baseline_result_identical": identical,
    }


def _load_kernels(path: Path) -> Any:
    """Import a copy of ``edgefuse/fusion/_kernels.py`` under another name, with Numba's disk cache off
    for it (its functions would otherwise be cached under this file's path)."""
    from edgefuse import config

    spec = importlib.util.spec_from_file_location("compared_kernels", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = config.CONFIG.numba_cache_dir
    config.CONFIG.numba_cache_dir = None
    try:
        spec.loader.exec_module(module)
    finally:
        config.CONFIG.numba_cache_dir = saved
    return module


def _compare_kernels(path: Path, scenes: dict[str, tuple[npt.NDArray[np.float32], F64, F64]],
                     reps: int) -> dict[str, Any]:
    """Installed vs ``path``'s ``_project_points`` / ``_project_points_2pass``: median/min ms, ratio, identity.

    Same inputs, same radius (the installed Projector's), calls interleaved with the order alternating.
    """
    from edgefuse.fusion import _kernels as installed

    other = _load_kernels(path)
    models = {"plumb_bob_kitti": (PLUMB_BOB, KITTI_D02),
              "rational": (RATIONAL, np.array([0.45, -0.12, 0.001, 0.002, 0.01, 0.8, -0.05, 0.02])),
              "equidistant": (EQUIDISTANT, FISHEYE_D[:4]), "pinhole_general_kernel": (PINHOLE, None)}
    out: dict[str, Any] = {"file": str(path), "method": "same inputs, interleaved, order alternating"}
    for scene, (xyz, K, T) in scenes.items():
        n = xyz.shape[0]
        for name, (model, D) in models.items():
            p = Projector(model, K, D, WIDTH, HEIGHT, T)
            runs: dict[str, tuple[Callable[[], object], tuple[Any, ...]]] = {}
            for label, module in (("other", other), ("installed", installed)):
                for variant in ("one_pass", "two_pass"):
                    bufs = (np.empty((n, 2), np.float32), np.empty(n, np.int32), np.empty(n, np.float64),
                            np.empty(n, np.bool_))
                    args = (xyz, p._Rt, model, p._intr_t, p._D_t, WIDTH, HEIGHT, 0.1, 200.0, p._max_r2, *bufs)
                    if variant == "one_pass":
                        fn = _bind(module._project_points, *args)
                    else:
                        fn = _bind(module._project_points_2pass, *args, np.empty(n, np.int32))
                    fn()
                    runs[f"{label}/{variant}"] = (fn, bufs)
            first = runs["other/one_pass"][1]
            identical = all(np.array_equal(a, b, equal_nan=True) for _, bufs in runs.values()
                            for a, b in zip(first, bufs, strict=True))
            times: dict[str, list[float]] = {key: [] for key in runs}
            keys = list(runs)
            for i in range(reps):
                for key in keys if i % 2 == 0 else keys[::-1]:
                    start = time.perf_counter()
                    runs[key][0]()
                    times[key].append(time.perf_counter() - start)
            entry: dict[str, Any] = {"identical": identical, "valid_points": int(first[3].sum())}
            for key, values in times.items():
                ms = np.array(values) * 1e3
                entry[key] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min())}
            for variant in ("one_pass", "two_pass"):
                a, b = entry[f"installed/{variant}"], entry[f"other/{variant}"]
                entry[f"{variant}_installed_over_other_median"] = a["median_ms"] / b["median_ms"]
                entry[f"{variant}_installed_over_other_min"] = a["min_ms"] / b["min_ms"]
            out[f"{scene}/{name}"] = entry
        out[f"{scene}/pinhole_vectorised"] = _compare_pinhole(other, installed, xyz, K, T, reps=reps)
    return out


def _compare_pinhole(other: Any, installed: Any, xyz: npt.NDArray[np.float32], K: F64, T: F64, *,
                     reps: int) -> dict[str, Any]:
    """The vectorised pinhole pair (``_project_pinhole``, ``_project_pinhole_uv``) over the whole cloud."""
    p = Projector(PINHOLE, K, None, WIDTH, HEIGHT, T)
    n = xyz.shape[0]
    flat = xyz.reshape(-1)
    runs: dict[str, tuple[Callable[[], object], tuple[Any, ...]]] = {}
    for label, module in (("other", other), ("installed", installed)):
        for variant in ("depth", "per_point"):
            bufs: tuple[Any, ...] = (np.empty(n, np.int32), np.empty(n, np.float32))
            args = (flat, n, p._Rt, p._intr_t, WIDTH, HEIGHT, 0.1, 200.0, p._max_r2, *bufs)
            if variant == "depth":
                fn = _bind(module._project_pinhole, *args)
            else:
                extra = (np.empty(2 * n, np.float32), np.empty(n, np.bool_))
                fn = _bind(module._project_pinhole_uv, *args, *extra)
                bufs = (*bufs, *extra)
            fn()
            runs[f"{label}/{variant}"] = (fn, bufs)
    valid = runs["other/depth"][1][0] >= 0
    identical = all(np.array_equal(runs[f"other/{v}"][1][0], runs[f"installed/{v}"][1][0])
                    and np.array_equal(runs[f"other/{v}"][1][1][valid], runs[f"installed/{v}"][1][1][valid])
                    for v in ("depth", "per_point"))
    identical &= np.array_equal(runs["other/per_point"][1][2], runs["installed/per_point"][1][2], equal_nan=True)
    identical &= np.array_equal(runs["other/per_point"][1][3], runs["installed/per_point"][1][3])
    times: dict[str, list[float]] = {key: [] for key in runs}
    keys = list(runs)
    for i in range(reps):
        for key in keys if i % 2 == 0 else keys[::-1]:
            start = time.perf_counter()
            runs[key][0]()
            times[key].append(time.perf_counter() - start)
    entry: dict[str, Any] = {"identical": bool(identical), "valid_points": int(valid.sum())}
    for key, values in times.items():
        ms = np.array(values) * 1e3
        entry[key] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min())}
    for variant in ("depth", "per_point"):
        a, b = entry[f"installed/{variant}"], entry[f"other/{variant}"]
        entry[f"{variant}_installed_over_other_median"] = a["median_ms"] / b["median_ms"]
        entry[f"{variant}_installed_over_other_min"] = a["min_ms"] / b["min_ms"]
    return entry


def _busy() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


#: Distortion of the contention scenes: KITTI-raw-like radial/tangential, and a mild fisheye.
PLUMB_BOB_D = np.array([-0.37, 0.20, 0.0011, -0.0006, -0.07, 0.0, 0.0, 0.0])
FISHEYE_D = np.array([0.02, -0.01, 0.003, -0.001, 0.0, 0.0, 0.0, 0.0])


def _ab(one: Callable[[], object], two: Callable[[], object], reps: int) -> dict[str, Any]:
    """threads=1 (``one``) vs threads=2 (``two``), calls interleaved, order alternating per pair."""
    t1 = np.empty(reps)
    t2 = np.empty(reps)
    for i in range(reps):
        for fn, out in ((one, t1), (two, t2)) if i % 2 == 0 else ((two, t2), (one, t1)):
            start = time.perf_counter()
            fn()
            out[i] = time.perf_counter() - start
    a, b = t1 * 1e3, t2 * 1e3

    def stats(ms: npt.NDArray[np.float64]) -> dict[str, float]:
        return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()),
                "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}

    sa, sb = stats(a), stats(b)
    return {"threads1": sa, "threads2": sb, "reps": reps,
            "ratio_median": sb["median_ms"] / sa["median_ms"], "ratio_min": sb["min_ms"] / sa["min_ms"],
            "ratio_p99": sb["p99_ms"] / sa["p99_ms"]}


def _contention(scenes: dict[str, tuple[npt.NDArray[np.float32], F64, F64]], reps: int) -> dict[str, Any]:
    """threads=2 / threads=1 ratios (median, min, p99), idle then with one core held by a busy loop.

    The same two projectors serve both phases (the threads=2 one keeps what its path chooser
    learnt while idle, as in a long-running pipeline); ``chooser`` is the threads=2 projector's
    path-chooser state after each phase (a private attribute, read for the report only).
    """
    out: dict[str, Any] = {"method": "threads=1 / threads=2 calls interleaved, order alternating; "
                                     "busy = another process running `while True: pass`",
                           "load_before": os.getloadavg()}
    pairs: dict[str, tuple[Projector, Projector, npt.NDArray[np.float32]]] = {}
    distorted = "kitti_000001" if "kitti_000001" in scenes else next(iter(scenes))
    for name, (xyz, K, T) in scenes.items():
        for label, model, D in (("pinhole", PINHOLE, None), ("plumb_bob", PLUMB_BOB, PLUMB_BOB_D),
                                ("fisheye", EQUIDISTANT, FISHEYE_D)):
            if label != "pinhole" and name != distorted:
                continue
            one = Projector(model, K, D, WIDTH, HEIGHT, T, threads=1)
            two = Projector(model, K, D, WIDTH, HEIGHT, T, threads=2)
            one.warmup()
            two.warmup()
            pairs[f"{name}/{label}"] = (one, two, xyz)
    for phase in ("idle", "one_core_busy"):
        busy = _busy() if phase == "one_core_busy" else None
        try:
            if busy is not None:
                time.sleep(0.3)
            for key, (one, two, xyz) in pairs.items():
                entry = _ab(_bind(one.project, xyz), _bind(two.project, xyz), reps)
                entry["chooser"] = two._chooser.snapshot()
                out.setdefault(key, {})[phase] = entry
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--contention", action="store_true", help="also time threads=1/2 with one core busy")
    parser.add_argument("--no-cold-jit", action="store_true", help="skip the cold-compile subprocess")
    parser.add_argument("--contention-only", action="store_true",
                        help="only the threads=1/2 comparison; writes bench/results/projection_contention.json")
    parser.add_argument("--contention-reps", type=int, default=400)
    parser.add_argument("--compare-kernels", type=Path, default=None, metavar="FILE",
                        help="only time the serial kernels of FILE (a copy of edgefuse/fusion/_kernels.py) "
                             "against the installed ones; writes bench/results/projection_kernels.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.compare_kernels is not None:
        write_json(KERNELS_RESULTS, {"benchmark": "projection_kernels", **environment(),
                                     **_compare_kernels(args.compare_kernels, _scenes(rng), args.reps)})
        return 0
    if args.contention_only:
        write_json(CONTENTION_RESULTS, {"benchmark": "projection_contention", **environment(),
                                        **_contention(_scenes(rng), args.contention_reps)})
        return 0
    report: dict[str, Any] = {
        "benchmark": "projection",
        **environment(),
        "image": [WIDTH, HEIGHT],
        "deadline_ms": DEADLINE_MS,
        "scenes": {},
    }
    for name, (xyz, K, T) in _scenes(rng).items():
        projector = Projector(PINHOLE, K, None, WIDTH, HEIGHT, T, threads=1)
        warmup_s = projector.warmup()
        result = projector.project(xyz, copy=True)
        identical = {}
        for fn in (numpy_project, numpy_project_matmul_lexsort):
            depth_np, index_np = fn(xyz, K, T, WIDTH, HEIGHT)
            identical[fn.__name__] = bool(np.array_equal(depth_np, result.depth)
                                          and np.array_equal(index_np, result.index))
        edge = _stats(_bind(projector.project, xyz), args.reps)
        edge_uv = _stats(_bind(_project_with_uv, projector, xyz), args.reps)
        edge_pp = _stats(_bind(_project_per_point, projector, xyz), args.reps)
        work = NumpyWork(WIDTH, HEIGHT)
        ref = _stats(_bind(numpy_project, xyz, K, T, WIDTH, HEIGHT, 0.1, 200.0, work), max(args.reps // 5, 20))
        ref_old = _stats(_bind(numpy_project_matmul_lexsort, xyz, K, T, WIDTH, HEIGHT), max(args.reps // 10, 10))
        entry: dict[str, Any] = {
            "points": int(xyz.shape[0]),
            "valid_points": result.n_valid,
            "pixels_with_depth": result.n_pixels,
            "warmup_s": warmup_s,
            # Depth + index images (what numpy_project computes); uv/valid are computed on access.
            "projector_threads1": edge,
            # The same plus the per-point uv/valid: read after each call (lazy), or per_point=True.
            "projector_threads1_with_uv": edge_uv,
            "projector_threads1_per_point": edge_pp,
            "numpy": ref,
            "numpy_matmul_lexsort": ref_old,
            "speedup_vs_numpy": ref["median_ms"] / edge["median_ms"],
            # Minimum times: least disturbed by other processes on a shared machine.
            "speedup_vs_numpy_min": ref["min_ms"] / edge["min_ms"],
            "speedup_with_uv_vs_numpy": ref["median_ms"] / edge_uv["median_ms"],
            "speedup_per_point_vs_numpy": ref["median_ms"] / edge_pp["median_ms"],
            "speedup_vs_numpy_matmul_lexsort": ref_old["median_ms"] / edge["median_ms"],
            "numpy_result_identical": identical,
        }
        painter = PointPainter(max_points=xyz.shape[0])
        painter.warmup()
        scores = rng.random((HEIGHT, WIDTH, 4), dtype=np.float32)
        entry["painting_4ch"] = _stats(_bind(painter.paint, result, scores), args.reps)
        entry["distorted"] = _distorted(xyz, K, T, args.reps)
        report["scenes"][name] = entry
    if args.contention:
        report["contention"] = _contention(_scenes(np.random.default_rng(0)), args.contention_reps)
    report["scenes"]["nuscenes_6cam"] = _nuscenes_six(args.reps)
    if not args.no_cold_jit:
        report["cold_jit_warmup_s"] = _cold_jit_seconds()
    write_json(RESULTS, report)
    return 0




if __name__ == "__main__":
    sys.exit(main())
