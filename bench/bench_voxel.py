"""Benchmark voxelization, BEV and point-cloud utilities (``edgefuse.fusion.voxel`` / ``bev`` / ``pointcloud_ops``).

Public API only.  Input: KITTI object frame 000001 (120,268 points, HDL-64E) from ``$EDGEFUSE_DATA`` or
``../shared/data`` (falls back to the 115,384-point frame 000000 in ``tests/data``).  Settings: SECOND's
car defaults, range [0, -40, -3, 70.4, 40, 1], voxel 0.05 x 0.05 x 0.1 m, 5 points per voxel, and two
caps: 16,000 voxels (SECOND's training cap; this frame has 44,279 voxels in range, so the cap is
reached) and 60,000 (not reached).

Hard voxelization is compared in the same process with SECOND's Numba kernel called its fastest way,
for both ``on_cap`` modes, twice: interleaved call by call (every variant sees the same load, and
finds the caches as the others left them, as in a pipeline) and back to back (blocks of calls of one
variant, each with its own data in the caches):

- ``on_cap="stop"`` vs SECOND's own ``points_to_voxel`` in its fastest version (traveller59/second.pytorch
  commit 8ece472, "greatly increase point to voxel performance": the dense ``coor_to_voxelidx`` grid
  is allocated once, passed in, and only its touched cells are reset after each call).  second.pytorch
  is not on PyPI: give its ``second/core/point_cloud/point_cloud_ops.py`` from that commit with
  ``--second-source PATH`` or ``$EDGEFUSE_SECOND_POINT_CLOUD_OPS``, or put it at
  ``~/.cache/edgefuse/bench/second_8ece472_point_cloud_ops.py`` (in a clone of second.pytorch:
  ``git show 8ece472:second/core/point_cloud/point_cloud_ops.py > PATH``).  Without it the same
  variant is timed with mmdet3d's copy of the kernel (below) on the points SECOND examines before it stops
  (SECOND's ``break`` makes its result exactly that of the copy on that prefix; checked).
- ``on_cap="continue"`` vs mmdet3d's copy of that kernel (``_points_to_voxel_reverse_kernel`` in the PyPI
  wheel ``mmdet3d==1.4.0``, ``mmdet3d/models/task_modules/voxel/voxel_generator.py``, Apache-2.0), which
  continues past the cap, called exactly like SECOND's fastest version calls its own (grid reused,
  touched cells reset, outputs ``np.zeros`` per call).
- also: the same kernels with every output preallocated too (the caller clears what a call wrote;
  the fastest way to call them that we know, not an API of either project), and mmdet3d's
  ``points_to_voxel`` as shipped (it allocates and fills its 360 MB grid on every call).

The wheel is read from ``--second-wheel PATH`` or fetched with ``pip download --no-deps`` into
``~/.cache/edgefuse/bench``; its file is executed with a stub for its one mmdet3d import (the registry
decorator of the unused ``VoxelGenerator`` class).  Nothing of either project is copied into
edgefuse.  Every baseline's output is checked to be identical to ours.  Each comparison is repeated
``--rounds`` times; the ratios of medians of each round are reported with their range.

Reported: median/p99/max (ms) per operation, JIT warm-up time (this process, may load from the disk
cache) and cold (subprocess, empty cache), steady-state allocation (tracemalloc peak), and with
``--contention`` threads=1 vs threads=2 (hard, dynamic, pillars, transform), idle and while another
process keeps one core busy, calls interleaved so both see the same load: median, min and p99 and
their threads=2 / threads=1 ratios.  ``--contention-only`` runs just that and writes
``bench/results/voxel_contention.json``.

    python bench/bench_voxel.py [--reps 200] [--hard-reps 100] [--rounds 3] [--contention] [--contention-only]
                                [--second-wheel PATH] [--second-source PATH] [--hard-only]

Prints JSON and writes ``bench/results/voxel.json`` (``--hard-only``: ``bench/results/voxel_hard.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
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

import numba
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
NO_CAP_VOXELS = 60000
DYNAMIC_DEADLINE_MS = 2.0
SECOND_WHEEL = "mmdet3d==1.4.0"
SECOND_FILE = "mmdet3d/models/task_modules/voxel/voxel_generator.py"
SECOND_SOURCE_ENV = "EDGEFUSE_SECOND_POINT_CLOUD_OPS"
BENCH_CACHE = Path.home() / ".cache" / "edgefuse" / "bench"
#: where SECOND's file is looked for when neither --second-source nor the variable names it
SECOND_SOURCE_CACHED = BENCH_CACHE / "second_8ece472_point_cloud_ops.py"


def _points() -> tuple[npt.NDArray[np.float32], str]:
    base = Path(os.environ.get("EDGEFUSE_DATA", ROOT.parent / "shared" / "data"))
    path = base / "kitti_object_3frames" / "training" / "velodyne" / "000001.bin"
    if not path.exists():
        path = ROOT / "tests" / "data" / "kitti_object_3frames" / "training" / "velodyne" / "000000.bin"
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4), f"KITTI object {path.parent.parent.name}/{path.name}"


def _mmdet3d_voxel_generator(wheel: str | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The namespace of mmdet3d's voxel_generator.py (SECOND's kernel, continuing past the cap) or None."""
    info: dict[str, Any] = {"source": f"{SECOND_WHEEL} wheel, {SECOND_FILE} (SECOND's numba kernel, unmodified)"}
    path = Path(wheel) if wheel else None
    if path is None:
        cache = BENCH_CACHE
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
    return namespace, info


def _second_own(path: str | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The namespace of SECOND's own point_cloud_ops.py (commit 8ece472: grid passed in), or None."""
    path = path or os.environ.get(SECOND_SOURCE_ENV)
    if not path and SECOND_SOURCE_CACHED.exists():
        path = str(SECOND_SOURCE_CACHED)
    if not path:
        return None, {"error": f"not given (--second-source, ${SECOND_SOURCE_ENV} or {SECOND_SOURCE_CACHED}); "
                               "second.pytorch is not on PyPI"}
    source = Path(path).read_bytes()
    info = {"source": "traveller59/second.pytorch second/core/point_cloud/point_cloud_ops.py (unmodified)",
            "path": path, "file_sha256": hashlib.sha256(source).hexdigest()}
    namespace: dict[str, Any] = {"__name__": "second_point_cloud_ops"}
    exec(compile(source, path, "exec"), namespace)
    if "coor_to_voxelidx" not in inspect.signature(namespace["points_to_voxel"]).parameters:
        return None, {**info, "error": "this version allocates its grid per call; give commit 8ece472's file"}
    return namespace, info


@numba.njit(cache=False)
def _reset_cells(grid: Any, coors: Any, m: int) -> None:
    """Bench harness: set the cells of the first ``m`` voxels back to -1 (what SECOND's fast variant does)."""
    for i in range(m):
        grid[coors[i, 0], coors[i, 1], coors[i, 2]] = -1


class _KernelCaller:
    """Calls SECOND's (or mmdet3d's copy of its) ``_points_to_voxel_reverse_kernel`` with a reused grid.

    ``fresh=True``: like SECOND's fastest ``points_to_voxel`` (outputs from ``np.zeros`` per call).
    ``fresh=False``: outputs preallocated as well (views returned, valid until the next call, like
    ours); the rows and counts the previous call wrote are cleared before the kernel runs (the fastest
    way to call the kernel we know of).
    """

    def __init__(self, kernel: Callable[..., Any], grid: npt.NDArray[np.int32], max_voxels: int, fresh: bool) -> None:
        self.kernel, self.grid, self.max_voxels, self.fresh = kernel, grid, max_voxels, fresh
        self.size = np.asarray(VOXEL, dtype=np.float32)
        self.crange = np.asarray(RANGE, dtype=np.float32)
        self.num = np.zeros(max_voxels, dtype=np.int32)
        self.voxels = np.zeros((max_voxels, MAX_POINTS, 4), dtype=np.float32)
        self.coors = np.zeros((max_voxels, 3), dtype=np.int32)
        self.last_m = 0

    def __call__(self, pts: npt.NDArray[np.float32]) -> tuple[Any, Any, Any]:
        if self.fresh:
            num = np.zeros(self.max_voxels, dtype=np.int32)
            voxels = np.zeros((self.max_voxels, MAX_POINTS, pts.shape[1]), dtype=pts.dtype)
            coors = np.zeros((self.max_voxels, 3), dtype=np.int32)
        else:
            num, voxels, coors = self.num, self.voxels, self.coors
            voxels[:self.last_m] = 0
            num[:self.last_m] = 0
        m = self.kernel(pts, self.size, self.crange, num, self.grid, voxels, coors, MAX_POINTS, self.max_voxels)
        _reset_cells(self.grid, coors, m)
        self.last_m = m
        return voxels[:m], coors[:m], num[:m]


def _identical(a: Any, b: Any) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _interleaved_variants(fns: dict[str, Callable[[], object]], reps: int, *,
                          back_to_back: bool = False) -> dict[str, dict[str, float]]:
    """Each variant ``reps`` times.

    Interleaved (default): one call of each in turn (order rotating), so all see the same load, and
    each call finds the caches as the other variants left them (as in a pipeline, where other stages
    run between two voxelizations).  ``back_to_back``: blocks of 10 calls of one variant in turn, the
    first call of each block not timed, so each variant runs with its own data in the caches.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for fn in fns.values():
        fn()
    block = 10 if back_to_back else 1
    for i in range(-(-reps // (block - 1 if back_to_back else 1))):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            for k in range(block):
                start = time.perf_counter()
                fns[name]()
                if not (back_to_back and k == 0):
                    times[name].append(time.perf_counter() - start)
    out = {}
    for name, t in times.items():
        ms = np.asarray(t) * 1e3
        out[name] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()),
                     "p99_ms": float(np.percentile(ms, 99)), "reps": int(ms.size)}
    return out


def _hard_case(pts: npt.NDArray[np.float32], max_voxels: int, second: dict[str, Any] | None,
               mmdet: dict[str, Any] | None, *, reps: int, rounds: int, slow_reps: int) -> dict[str, Any]:
    """ours (stop, continue) vs the baselines at one cap; see the module docs."""
    stop = Voxelizer(VOXEL, RANGE, max_points_per_voxel=MAX_POINTS, max_voxels=max_voxels, on_cap="stop")
    cont = Voxelizer(VOXEL, RANGE, max_points_per_voxel=MAX_POINTS, max_voxels=max_voxels, on_cap="continue")
    stop.warmup()
    cont.warmup()
    ours_stop = stop.voxelize(pts, copy=True)
    ours_cont = cont.voxelize(pts, copy=True)
    examined = pts.shape[0] - ours_stop.n_dropped_voxels if ours_stop.n_dropped_voxels else pts.shape[0]
    case: dict[str, Any] = {
        "max_voxels": max_voxels, "cap_reached": ours_cont.n_dropped_voxels > 0,
        "stop": {"voxels": ours_stop.n_voxels, "points_kept": int(ours_stop.num_points.sum()),
                 "points_examined": int(examined), "n_outside": ours_stop.n_outside,
                 "n_dropped_voxels": ours_stop.n_dropped_voxels, "n_dropped_points": ours_stop.n_dropped_points},
        "continue": {"voxels": ours_cont.n_voxels, "points_kept": int(ours_cont.num_points.sum()),
                     "n_outside": ours_cont.n_outside, "n_dropped_voxels": ours_cont.n_dropped_voxels,
                     "n_dropped_points": ours_cont.n_dropped_points},
        "voxels_whose_count_differs_stop_vs_continue": float(np.mean(ours_stop.num_points
                                                                     != ours_cont.num_points)),
    }
    fns: dict[str, Callable[[], object]] = {"ours_stop": lambda: stop.voxelize(pts),
                                            "ours_continue": lambda: cont.voxelize(pts)}
    pairs: dict[str, str] = {}  # baseline -> the variant of ours it is compared with
    checks: dict[str, bool] = {}
    shape = tuple(reversed(stop.grid))  # (nz, ny, nx)

    def new_grid() -> npt.NDArray[np.int32]:
        """Each baseline variant its own reused grid (360 MB): one variant's cells are not warm for another."""
        return np.full(shape, -1, dtype=np.int32)

    expected_stop = (ours_stop.voxels, ours_stop.coords, ours_stop.num_points)
    expected_cont = (ours_cont.voxels, ours_cont.coords, ours_cont.num_points)
    if mmdet is not None:
        kernel = mmdet["_points_to_voxel_reverse_kernel"]
        fast = _KernelCaller(kernel, new_grid(), max_voxels, fresh=True)
        pre = _KernelCaller(kernel, new_grid(), max_voxels, fresh=False)
        fns["mmdet3d_kernel_fastest_continue"] = lambda: fast(pts)
        fns["mmdet3d_kernel_prealloc_continue"] = lambda: pre(pts)
        pairs |= {"mmdet3d_kernel_fastest_continue": "ours_continue",
                  "mmdet3d_kernel_prealloc_continue": "ours_continue"}
        checks["mmdet3d_kernel_fastest_continue"] = _identical(fast(pts), expected_cont)
        checks["mmdet3d_kernel_prealloc_continue"] = _identical(pre(pts), expected_cont)
        if second is None:
            prefix = pts[:examined]
            fast_p = _KernelCaller(kernel, new_grid(), max_voxels, fresh=True)
            pre_p = _KernelCaller(kernel, new_grid(), max_voxels, fresh=False)
            fns["second_fastest_stop_via_mmdet3d_kernel_on_prefix"] = lambda: fast_p(prefix)
            fns["second_kernel_prealloc_stop_via_mmdet3d_kernel_on_prefix"] = lambda: pre_p(prefix)
            pairs |= {"second_fastest_stop_via_mmdet3d_kernel_on_prefix": "ours_stop",
                      "second_kernel_prealloc_stop_via_mmdet3d_kernel_on_prefix": "ours_stop"}
            checks["second_fastest_stop_via_mmdet3d_kernel_on_prefix"] = _identical(fast_p(prefix), expected_stop)
            checks["second_kernel_prealloc_stop_via_mmdet3d_kernel_on_prefix"] = _identical(pre_p(prefix),
                                                                                            expected_stop)
    if second is not None:
        size, crange = np.asarray(VOXEL, dtype=np.float32), np.asarray(RANGE, dtype=np.float32)
        own = second["points_to_voxel"]
        pre_s = _KernelCaller(second["_points_to_voxel_reverse_kernel"], new_grid(), max_voxels, fresh=False)
        grid = new_grid()
        fns["second_fastest_stop"] = lambda: own(pts, size, crange, grid, MAX_POINTS, True, max_voxels)
        fns["second_kernel_prealloc_stop"] = lambda: pre_s(pts)
        pairs |= {"second_fastest_stop": "ours_stop", "second_kernel_prealloc_stop": "ours_stop"}
        checks["second_fastest_stop"] = _identical(own(pts, size, crange, grid, MAX_POINTS, True, max_voxels),
                                                   expected_stop)
        checks["second_kernel_prealloc_stop"] = _identical(pre_s(pts), expected_stop)
    case["identical_outputs"] = checks
    for mode in ("interleaved", "back_to_back"):
        case[mode] = []
        for _ in range(rounds):
            stats = _interleaved_variants(fns, reps, back_to_back=mode == "back_to_back")
            ratios = {f"{base}/{ours}": {"median": stats[base]["median_ms"] / stats[ours]["median_ms"],
                                         "min": stats[base]["min_ms"] / stats[ours]["min_ms"]}
                      for base, ours in pairs.items()}
            case[mode].append({"stats": stats, "speedup": ratios, "load_before": os.getloadavg()})
        case[f"{mode}_speedup_median_range"] = {
            name: [min(r["speedup"][name]["median"] for r in case[mode]),
                   max(r["speedup"][name]["median"] for r in case[mode])] for name in case[mode][0]["speedup"]}
    if mmdet is not None:  # secondary: mmdet3d's points_to_voxel as shipped (a new 360 MB grid per call)
        shipped = mmdet["points_to_voxel"]
        ref = shipped(pts, VOXEL, RANGE, MAX_POINTS, True, max_voxels)
        case["identical_outputs"]["mmdet3d_points_to_voxel"] = _identical(ref, expected_cont)
        slow = _interleaved_variants({"mmdet3d_points_to_voxel": lambda: shipped(pts, VOXEL, RANGE, MAX_POINTS, True,
                                                                                 max_voxels),
                                      "ours_continue": lambda: cont.voxelize(pts)}, slow_reps)
        case["secondary_grid_per_call"] = {
            "stats": slow, "speedup_median": slow["mmdet3d_points_to_voxel"]["median_ms"]
            / slow["ours_continue"]["median_ms"]}
    return case


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
    parser.add_argument("--hard-reps", type=int, default=100, help="calls of each hard variant per round")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each hard comparison")
    parser.add_argument("--second-reps", type=int, default=10, help="calls of mmdet3d's per-call-grid variant")
    parser.add_argument("--second-source", help="SECOND's point_cloud_ops.py at commit 8ece472")
    parser.add_argument("--hard-only", action="store_true", help="only the hard voxelization comparison")
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
    mmdet, mmdet_info = _mmdet3d_voxel_generator(args.second_wheel)
    second, second_info = _second_own(args.second_source)
    hard: dict[str, Any] = {
        "method": "interleaved: one call of each variant in turn, order rotating; back_to_back: blocks of 10 "
                  "calls of one variant (first not timed); speedup = baseline / ours (ratio of medians per "
                  "round, and of minima)",
        "mmdet3d_baseline": mmdet_info, "second_baseline": second_info,
        "edgefuse_steady_alloc_peak_bytes": _alloc_peak_bytes(lambda: vox.voxelize(pts)),
    }
    for name, cap in (("cap_reached", MAX_VOXELS), ("no_cap", NO_CAP_VOXELS)):
        hard[name] = _hard_case(pts, cap, second, mmdet, reps=args.hard_reps, rounds=args.rounds,
                                slow_reps=args.second_reps)
    report["hard_voxelization"] = hard
    if args.hard_only:
        write_json(RESULTS.with_name("voxel_hard.json"), report)
        return 0

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
