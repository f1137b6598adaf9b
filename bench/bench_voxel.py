"""Benchmark voxelization, BEV and point-cloud utilities (``edgefuse.fusion.voxel`` / ``bev`` / ``pointcloud_ops``).

Public API only.  Input: KITTI object frame 000001 (120,268 points, HDL-64E) from ``$EDGEFUSE_DATA`` or
``../shared/data`` (falls back to the 115,384-point frame 000000 in ``tests/data``).  Settings: SECOND's
car defaults, range [0, -40, -3, 70.4, 40, 1], voxel 0.05 x 0.05 x 0.1 m, 5 points per voxel, 16,000
voxels.

Baseline for hard voxelization: SECOND's Numba ``points_to_voxel`` as shipped, unmodified, in the PyPI
wheel ``mmdet3d==1.4.0`` (``mmdet3d/models/task_modules/voxel/voxel_generator.py``, Apache-2.0;
OpenMMLab's copy of traveller59/second.pytorch's ``second/core/point_cloud/point_cloud_ops.py``).  The
file is read from the wheel (``--second-wheel PATH``, or fetched with ``pip download --no-deps`` into
``~/.cache/edgefuse/bench``) and executed with a stub for its one mmdet3d import (the registry
decorator of the ``VoxelGenerator`` class, which is not used).  Nothing of it is copied into edgefuse.
Both run in this process, JIT warm; the outputs are checked to be identical.

Reported: median/p99/max (ms) per operation, JIT warm-up time (this process, may load from the disk
cache) and cold (subprocess, empty cache), steady-state allocation (tracemalloc peak), and with
``--contention`` threads=1 vs threads=2 (hard, dynamic, pillars, transform), idle and while another
process keeps one core busy, calls interleaved so both see the same load: median, min and p99 and
their threads=2 / threads=1 ratios.  ``--contention-only`` runs just that and writes
``bench/results/voxel_contention.json``.

    python bench/bench_voxel.py [--reps 200] [--contention] [--contention-only] [--second-wheel PATH]

Prints JSON and writes ``bench/results/voxel.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _env import environment, write_json  # bench/_env.py (benches run as scripts)

from edgefuse.fusion.bev import BevGrid
from edgefuse.fusion.pointcloud_ops import (
    HDL64E_ELEVATIONS_DEG,
    PointTransformer,
    RangeImageBuilder,
    crop_box,
    ransac_ground,
    ring_edges,
    ring_from_elevation,
)
from edgefuse.fusion.voxel import DynamicVoxelizer, PillarVoxelizer, Voxelizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "voxel.json"
CONTENTION_RESULTS = ROOT / "bench" / "results" / "voxel_contention.json"
RANGE = [0.0, -40.0, -3.0, 70.4, 40.0, 1.0]
VOXEL = [0.05, 0.05, 0.1]
MAX_POINTS, MAX_VOXELS = 5, 16000
DYNAMIC_DEADLINE_MS = 2.0
SECOND_WHEEL = "mmdet3d==1.4.0"
SECOND_FILE = "mmdet3d/models/task_modules/voxel/voxel_generator.py"


def _points() -> tuple[npt.NDArray[np.float32], str]:
    base = Path(os.environ.get("EDGEFUSE_DATA", ROOT.parent / "shared" / "data"))
    path = base / "kitti_object_3frames" / "training" / "velodyne" / "000001.bin"
    if not path.exists():
        path = ROOT / "tests" / "data" / "kitti_object_3frames" / "training" / "velodyne" / "000000.bin"
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4), f"KITTI object {path.parent.parent.name}/{path.name}"


def _second_points_to_voxel(wheel: str | None) -> tuple[Callable[..., Any] | None, dict[str, Any]]:
    """SECOND's ``points_to_voxel`` from the mmdet3d wheel, or None with the reason."""
    info: dict[str, Any] = {"source": f"{SECOND_WHEEL} wheel, {SECOND_FILE} (SECOND's numba kernel, unmodified)"}
    path = Path(wheel) if wheel else None
    if path is None:
        cache = Path.home() / ".cache" / "edgefuse" / "bench"
        found = sorted(cache.glob("mmdet3d-1.4.0-*.whl")) if cache.exists() else []
        if not found:
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                            "-d", str(cache), SECOND_WHEEL], check=False, capture_output=True)
            found = sorted(cache.glob("mmdet3d-1.4.0-*.whl"))
        path = found[0] if found else None
    if path is None or not path.exists():
        info["error"] = "mmdet3d 1.4.0 wheel not available (pass --second-wheel PATH)"
        return None, info
    source = zipfile.ZipFile(path).read(SECOND_FILE)
    info["wheel"] = path.name
    info["file_sha256"] = hashlib.sha256(source).hexdigest()
    registry = types.ModuleType("mmdet3d.registry")

    class _Registry:
        def register_module(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
            return lambda cls: cls

    registry.MODELS = _Registry()  # type: ignore[attr-defined]
    sys.modules.setdefault("mmdet3d", types.ModuleType("mmdet3d"))
    sys.modules["mmdet3d.registry"] = registry
    namespace: dict[str, Any] = {"__name__": "second_voxel_generator"}
    exec(compile(source, SECOND_FILE, "exec"), namespace)
    return namespace["points_to_voxel"], info


def _stats(fn: Callable[[], object], reps: int, deadline_ms: float | None = None) -> dict[str, float]:
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    ms = times * 1e3
    out = {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
           "reps": reps}
    if deadline_ms is not None:
        out["deadline_ms"] = deadline_ms
        out["deadline_misses"] = int(np.count_nonzero(ms > deadline_ms))
    return out


def _stats_preemption(fn: Callable[[], object], reps: int, deadline_ms: float) -> dict[str, Any]:
    """:func:`_stats` plus the tail split by whether the call was preempted.

    A call during which the process had an involuntary context switch (``ru_nivcsw`` grew) lost the
    CPU to another process; on a shared machine those calls make the tail.  Reported: how many calls
    were preempted, and median/p99/max of the calls that were not.
    """
    times = np.empty(reps)
    preempted = np.zeros(reps, dtype=bool)
    for i in range(reps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
        preempted[i] = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw > before
    ms = times * 1e3
    out: dict[str, Any] = {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
                           "max_ms": float(ms.max()), "reps": reps, "deadline_ms": deadline_ms,
                           "deadline_misses": int(np.count_nonzero(ms > deadline_ms)),
                           "preempted_calls": int(preempted.sum()),
                           "deadline_misses_preempted": int(np.count_nonzero((ms > deadline_ms) & preempted))}
    quiet = ms[~preempted]
    if quiet.size:
        out["not_preempted"] = {"median_ms": float(np.median(quiet)), "p99_ms": float(np.percentile(quiet, 99)),
                                "max_ms": float(quiet.max()), "calls": int(quiet.size)}
    return out


def _alloc_peak_bytes(fn: Callable[[], object], reps: int = 5) -> int:
    fn()
    tracemalloc.start()
    try:
        for _ in range(reps):
            fn()
        return int(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _cold_jit_seconds() -> float | None:
    code = ("from edgefuse.fusion.voxel import Voxelizer, DynamicVoxelizer; "
            f"v = Voxelizer({VOXEL}, {RANGE}); d = DynamicVoxelizer({VOXEL}, {RANGE}); "
            "print(v.warmup() + d.warmup())")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, EDGEFUSE_NUMBA_CACHE_DIR=cache, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _interleaved(pairs: dict[str, tuple[Any, Any]], pts: Any, reps: int) -> dict[str, Any]:
    """threads=1 vs threads=2 with the calls interleaved (order alternating), so both see the same load.

    Each pair holds the two objects (``voxelize`` or ``apply``); ``chooser`` is the threads=2
    object's path-chooser state afterwards (a private attribute, read for the report only).
    """
    out: dict[str, Any] = {}
    for name, (obj1, obj2) in pairs.items():
        one = getattr(obj1, "voxelize", None) or obj1.apply
        two = getattr(obj2, "voxelize", None) or obj2.apply
        t1 = np.empty(reps)
        t2 = np.empty(reps)
        for i in range(reps):
            for fn, times in ((one, t1), (two, t2)) if i % 2 == 0 else ((two, t2), (one, t1)):
                start = time.perf_counter()
                fn(pts)
                times[i] = time.perf_counter() - start
        a, b = t1 * 1e3, t2 * 1e3
        chooser = getattr(obj2, "_vox", obj2)._chooser
        out[name] = {
            "threads1_median_ms": float(np.median(a)), "threads1_min_ms": float(a.min()),
            "threads1_p99_ms": float(np.percentile(a, 99)),
            "threads2_median_ms": float(np.median(b)), "threads2_min_ms": float(b.min()),
            "threads2_p99_ms": float(np.percentile(b, 99)),
            "ratio_median": float(np.median(b) / np.median(a)), "ratio_min": float(b.min() / a.min()),
            "ratio_p99": float(np.percentile(b, 99) / np.percentile(a, 99)),
            "chooser": chooser.snapshot(),
        }
    return out


def _contention(pts: Any, reps: int) -> dict[str, Any]:
    """threads=2 / threads=1 idle, then with one core held by a busy loop (same objects in both phases)."""
    pillar = ([0.16, 0.16], [0, -39.68, -3, 69.12, 39.68, 1])
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]

    def make(name: str, threads: int) -> Any:
        if name == "hard":
            return Voxelizer(VOXEL, RANGE, max_points_per_voxel=MAX_POINTS, max_voxels=MAX_VOXELS, threads=threads)
        if name == "dynamic":
            return DynamicVoxelizer(VOXEL, RANGE, threads=threads)
        if name == "pillars":
            return PillarVoxelizer(*pillar, max_points_per_pillar=32, max_pillars=16000, threads=threads)
        return PointTransformer(T, threads=threads)

    pairs = {name: (make(name, 1), make(name, 2)) for name in ("hard", "dynamic", "pillars", "transform")}
    for one, two in pairs.values():
        one.warmup()
        two.warmup()
    cont: dict[str, Any] = {"method": "threads=1 and threads=2 calls interleaved, order alternating (same load "
                                      "for both); busy = another process running `while True: pass`",
                            "load_before": os.getloadavg(), "reps": reps}
    cont["idle"] = _interleaved(pairs, pts, reps)
    busy = _busy()
    try:
        time.sleep(0.3)
        cont["one_core_busy"] = _interleaved(pairs, pts, reps)
    finally:
        busy.kill()
        busy.wait()
    return cont


def _busy() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--second-reps", type=int, default=20)
    parser.add_argument("--contention", action="store_true", help="threads=1 vs 2 with one core busy")
    parser.add_argument("--second-wheel", help="path to mmdet3d-1.4.0-py3-none-any.whl")
    parser.add_argument("--no-cold-jit", action="store_true")
    parser.add_argument("--contention-only", action="store_true",
                        help="only threads=1 vs 2; writes bench/results/voxel_contention.json")
    parser.add_argument("--contention-reps", type=int, default=400)
    args = parser.parse_args()
    pts, source = _points()
    reps = args.reps
    if args.contention_only:
        write_json(CONTENTION_RESULTS, {"benchmark": "voxel_contention", **environment(),
                                        "input": {"source": source, "points": int(pts.shape[0])},
                                        **_contention(pts, args.contention_reps)})
        return 0
    report: dict[str, Any] = {
        "benchmark": "voxel",
        **environment(),
        "input": {"source": source, "points": int(pts.shape[0])},
        "settings": {"point_range": RANGE, "voxel_size": VOXEL, "max_points_per_voxel": MAX_POINTS,
                     "max_voxels": MAX_VOXELS},
    }

    vox = Voxelizer(VOXEL, RANGE, max_points_per_voxel=MAX_POINTS, max_voxels=MAX_VOXELS)
    dyn = DynamicVoxelizer(VOXEL, RANGE)
    report["warmup_s"] = {"voxelizer": vox.warmup(), "dynamic": dyn.warmup()}
    ours = vox.voxelize(pts, copy=True)
    hard: dict[str, Any] = {
        "voxels": ours.n_voxels, "n_outside": ours.n_outside, "n_dropped_voxels": ours.n_dropped_voxels,
        "n_dropped_points": ours.n_dropped_points,
        "edgefuse_threads1": _stats(lambda: vox.voxelize(pts), reps),
        "edgefuse_steady_alloc_peak_bytes": _alloc_peak_bytes(lambda: vox.voxelize(pts)),
    }
    second, second_info = _second_points_to_voxel(args.second_wheel)
    hard["second_baseline"] = second_info
    if second is not None:
        start = time.perf_counter()
        ref = second(pts, VOXEL, RANGE, MAX_POINTS, True, MAX_VOXELS)
        second_info["first_call_incl_jit_s"] = time.perf_counter() - start
        hard["identical_to_second"] = bool(np.array_equal(ref[0], ours.voxels) and np.array_equal(ref[1], ours.coords)
                                           and np.array_equal(ref[2], ours.num_points))
        hard["second_points_to_voxel"] = _stats(lambda: second(pts, VOXEL, RANGE, MAX_POINTS, True, MAX_VOXELS),
                                                args.second_reps)
        hard["speedup_vs_second"] = hard["second_points_to_voxel"]["median_ms"] / hard["edgefuse_threads1"]["median_ms"]
    report["hard_voxelization"] = hard

    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    dres = dyn.voxelize(pts)
    first_ms = (time.perf_counter() - start) * 1e3
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    report["dynamic_voxelization"] = {
        "voxels": dres.n_voxels, "n_outside": dres.n_outside,
        # First real cloud after warmup(): the hash table's pages are written at construction.
        "first_call_ms": first_ms, "first_call_minor_page_faults": faults,
        "edgefuse_threads1": _stats_preemption(lambda: dyn.voxelize(pts), reps, DYNAMIC_DEADLINE_MS),
        "steady_alloc_peak_bytes": _alloc_peak_bytes(lambda: dyn.voxelize(pts)),
    }

    pil = PillarVoxelizer([0.16, 0.16], [0, -39.68, -3, 69.12, 39.68, 1], max_points_per_pillar=32,
                          max_pillars=16000)
    pil.warmup()
    report["pillars_augmented"] = {"settings": "PointPillars car: 0.16 m, 32 pts, 16000 pillars, 9 features",
                                   "pillars": pil.voxelize(pts).n_pillars,
                                   "edgefuse_threads1": _stats(lambda: pil.voxelize(pts), reps)}
    bev = BevGrid((0, 70.4), (-40, 40), 0.1, z_range=(-3, 1), density_log_norm=64)
    bev.warmup()
    report["bev_5ch_800x704"] = {"edgefuse": _stats(lambda: bev.compute(pts), reps),
                                 "steady_alloc_peak_bytes": _alloc_peak_bytes(lambda: bev.compute(pts))}
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    tr = PointTransformer(T)
    tr.warmup()
    numpy_tr = _stats(lambda: pts[:, :3] @ T[:3, :3].T.astype(np.float32) + T[:3, 3].astype(np.float32), reps)
    report["transform_4x4"] = {"edgefuse_threads1": _stats(lambda: tr.apply(pts), reps), "numpy_matmul": numpy_tr}
    mask = np.empty(len(pts), dtype=bool)
    report["crop_box"] = {"edgefuse": _stats(lambda: crop_box(pts, RANGE[:3], RANGE[3:], out=mask), reps)}
    ransac_ground(pts)
    report["ransac_ground_100it_8192sample"] = {"edgefuse": _stats(lambda: ransac_ground(pts, out=mask), 30)}
    edges = ring_edges(HDL64E_ELEVATIONS_DEG)
    rings = np.empty(len(pts), dtype=np.int32)
    ring_from_elevation(pts, edges, out=rings)
    rib = RangeImageBuilder(64, 2048)
    rib.warmup()
    report["range_image_64x2048"] = {
        "ring_from_elevation": _stats(lambda: ring_from_elevation(pts, edges, out=rings), reps),
        "build": _stats(lambda: rib.compute(pts, rings), reps)}

    if args.contention:
        report["contention"] = _contention(pts, args.contention_reps)
    if not args.no_cold_jit:
        report["cold_jit_warmup_s"] = _cold_jit_seconds()
    write_json(RESULTS, report)
    return 0




if __name__ == "__main__":
    sys.exit(main())
