"""Hard voxelization when ``max_voxels`` is reached: ``on_cap="stop"`` (SECOND) and ``"continue"`` (mmdet3d).

SECOND's own ``points_to_voxel`` (traveller59/second.pytorch, ``second/core/point_cloud/point_cloud_ops.py``)
ends its pass at the first point that needs a voxel beyond the cap; the copies in mmdet3d (Numba),
mmcv (``Voxelization``) and spconv 1.x skip only that point and let later points join existing voxels.
Both are checked against the slow reference, and against the original functions when they can be
loaded (otherwise those two tests are skipped with the reason).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import voxel as voxel_module
from edgefuse.fusion.voxel import PillarVoxelizer, Voxelizer, VoxelParamError, voxelize

from .test_voxel_hard import KITTI_RANGE, KITTI_VOXEL, kitti_points
from .test_voxel_parallel_paths import _AlwaysParallel
from .voxel_reference import ref_hard_voxelize

SMALL_RANGE = [0.0, -5.0, -2.0, 10.0, 5.0, 1.0]
SMALL_VOXEL = [0.5, 0.5, 0.4]
#: where bench/bench_voxel.py keeps the mmdet3d wheel it downloads (and looks for SECOND's file)
BENCH_CACHE = Path.home() / ".cache" / "edgefuse" / "bench"
MMDET3D_FILE = "mmdet3d/models/task_modules/voxel/voxel_generator.py"
SECOND_CACHED_NAME = "second_8ece472_point_cloud_ops.py"


@pytest.fixture(params=["columns", "hash"])
def index(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the column grid (every grid here is small enough) and with the hash table."""
    if request.param == "hash":
        monkeypatch.setattr(voxel_module, "COLUMN_GRID_MAX_CELLS", 0)
    return str(request.param)


def dense_cloud(seed: int, n: int, dtype: Any = np.float32) -> npt.NDArray[Any]:
    """Points over 20 x 20 x 8 cells (some outside), so voxels are revisited after any small cap."""
    rng = np.random.default_rng(seed)
    pts = np.empty((n, 4), dtype=dtype)
    pts[:, 0] = rng.uniform(-0.5, 10.5, n)
    pts[:, 1] = rng.uniform(-5.0, 5.0, n)
    pts[:, 2] = rng.uniform(-2.0, 1.0, n)
    pts[:, 3] = rng.uniform(0.0, 1.0, n)
    return pts


_KITTI_REFERENCE: dict[str, Any] = {}  # the slow reference on the KITTI frame, once per on_cap


def check(vox: Voxelizer, pts: npt.NDArray[Any], on_cap: str, *, cache: dict[str, Any] | None = None) -> None:
    g = vox.geometry
    lo, size = g.lo_size(pts.dtype)
    if cache is not None and on_cap in cache:
        ref = cache[on_cap]
    else:
        ref = ref_hard_voxelize(pts, lo, size, g.grid, vox.max_points_per_voxel, vox.max_voxels,
                                vox.coord_order == "zyx", on_cap)
        if cache is not None:
            cache[on_cap] = ref
    ref_v, ref_c, ref_n, ref_stats = ref
    res = vox.voxelize(pts)
    np.testing.assert_array_equal(res.coords, ref_c)
    np.testing.assert_array_equal(res.num_points, ref_n)
    np.testing.assert_array_equal(res.voxels, ref_v)
    assert (res.n_outside, res.n_dropped_voxels, res.n_dropped_points) == ref_stats
    kept = int(res.num_points.sum())
    assert res.n_outside + res.n_dropped_voxels + res.n_dropped_points + kept == pts.shape[0]


def test_hand_made_case() -> None:
    """Cap 2: A, B make voxels 0 and 1, C needs a third, D is in A's voxel."""
    pts = np.array([[0.1, 0.1, 0.1, 1], [1.1, 0.1, 0.1, 2], [2.1, 0.1, 0.1, 3], [0.2, 0.2, 0.2, 4]], np.float32)
    args = ([1.0, 1.0, 1.0], [0, 0, 0, 4, 4, 4])
    stop = Voxelizer(*args, max_points_per_voxel=3, max_voxels=2, on_cap="stop").voxelize(pts, copy=True)
    cont = Voxelizer(*args, max_points_per_voxel=3, max_voxels=2, on_cap="continue").voxelize(pts, copy=True)
    np.testing.assert_array_equal(stop.num_points, [1, 1])
    np.testing.assert_array_equal(cont.num_points, [2, 1])
    np.testing.assert_array_equal(cont.voxels[0, 1], pts[3])
    np.testing.assert_array_equal(stop.voxels[0, 1], np.zeros(4, np.float32))
    assert (stop.n_outside, stop.n_dropped_voxels, stop.n_dropped_points) == (0, 2, 0)
    assert (cont.n_outside, cont.n_dropped_voxels, cont.n_dropped_points) == (0, 1, 0)


@pytest.mark.parametrize("on_cap", ["stop", "continue"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["zyx", "xyz"])
def test_cap_reached_matches_reference(on_cap: str, dtype: Any, order: str, index: str) -> None:
    vox = Voxelizer(SMALL_VOXEL, SMALL_RANGE, max_points_per_voxel=3, max_voxels=500, coord_order=order,
                    on_cap=on_cap)
    for seed in range(3):  # the same voxelizer reused: its table must be clean after each call
        pts = dense_cloud(seed, 3000, dtype)
        check(vox, pts, on_cap)
        assert vox.voxelize(pts).n_voxels == 500
    assert (vox._index.columns.size > 0) == (index == "columns")
    assert not vox._index.occupied.any() and np.all(vox._index.table[:, 0] == -1)  # left clean for the next call


def test_modes_differ_when_the_cap_is_reached() -> None:
    pts = dense_cloud(7, 3000)
    stop = Voxelizer(SMALL_VOXEL, SMALL_RANGE, max_points_per_voxel=3, max_voxels=500).voxelize(pts, copy=True)
    cont = Voxelizer(SMALL_VOXEL, SMALL_RANGE, max_points_per_voxel=3, max_voxels=500,
                     on_cap="continue").voxelize(pts, copy=True)
    np.testing.assert_array_equal(stop.coords, cont.coords)  # the same first 500 voxels
    assert np.mean(stop.num_points != cont.num_points) > 0.3  # 0.498 with this seed
    assert np.all(stop.num_points <= cont.num_points)


@pytest.mark.parametrize("on_cap", ["stop", "continue"])
def test_kitti_cap_reached_matches_reference(on_cap: str, index: str) -> None:
    pts = kitti_points()
    vox = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000, on_cap=on_cap)
    check(vox, pts, on_cap, cache=_KITTI_REFERENCE)
    assert vox.voxelize(pts).n_dropped_voxels > 0


def test_no_cap_modes_agree() -> None:
    pts = kitti_points()
    a = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=100_000).voxelize(pts, copy=True)
    b = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=100_000,
                  on_cap="continue").voxelize(pts, copy=True)
    assert a.n_dropped_voxels == 0
    for x, y in ((a.voxels, b.voxels), (a.coords, b.coords), (a.num_points, b.num_points)):
        np.testing.assert_array_equal(x, y)


def test_defaults_are_second_stop() -> None:
    assert Voxelizer(SMALL_VOXEL, SMALL_RANGE).on_cap == "stop"
    assert PillarVoxelizer([0.5, 0.5], SMALL_RANGE).on_cap == "stop"
    pts = dense_cloud(3, 3000)
    one = voxelize(pts, SMALL_VOXEL, SMALL_RANGE, max_points_per_voxel=3, max_voxels=500)
    lo, size = np.asarray(SMALL_RANGE[:3], np.float32), np.asarray(SMALL_VOXEL, np.float32)
    ref = ref_hard_voxelize(pts, lo, size, (20, 20, 8), 3, 500, True, "stop")
    np.testing.assert_array_equal(one.num_points, ref[2])
    ref_c = voxelize(pts, SMALL_VOXEL, SMALL_RANGE, max_points_per_voxel=3, max_voxels=500, on_cap="continue")
    np.testing.assert_array_equal(ref_c.num_points, ref_hard_voxelize(pts, lo, size, (20, 20, 8), 3, 500, True,
                                                                      "continue")[2])


@pytest.mark.parametrize("on_cap", ["stop", "continue"])
def test_parallel_path_identical_when_cap_reached(on_cap: str, index: str) -> None:
    cases = [(kitti_points(), KITTI_VOXEL, KITTI_RANGE, 16000),
             (dense_cloud(11, 70_000), SMALL_VOXEL, SMALL_RANGE, 900)]
    for pts, voxel, rng, max_voxels in cases:
        serial = Voxelizer(voxel, rng, max_points_per_voxel=5, max_voxels=max_voxels, on_cap=on_cap)
        ref = serial.voxelize(pts, copy=True)
        assert ref.n_dropped_voxels > 0
        par = Voxelizer(voxel, rng, max_points_per_voxel=5, max_voxels=max_voxels, on_cap=on_cap, threads=2)
        par._chooser = _AlwaysParallel()
        for _ in range(2):
            got = par.voxelize(pts)
            np.testing.assert_array_equal(got.voxels, ref.voxels)
            np.testing.assert_array_equal(got.coords, ref.coords)
            np.testing.assert_array_equal(got.num_points, ref.num_points)
            assert (got.n_outside, got.n_dropped_voxels, got.n_dropped_points) == (
                ref.n_outside, ref.n_dropped_voxels, ref.n_dropped_points)


@pytest.mark.parametrize("on_cap", ["stop", "continue"])
def test_pillars_follow_on_cap(on_cap: str, index: str) -> None:
    pts = dense_cloud(5, 4000)
    pil = PillarVoxelizer([0.5, 0.5], SMALL_RANGE, max_points_per_pillar=4, max_pillars=150, augment=False,
                          on_cap=on_cap)
    got = pil.voxelize(pts)
    lo, size = np.asarray(SMALL_RANGE[:3], np.float32), np.asarray([0.5, 0.5, 3.0], np.float32)
    ref_v, ref_c, ref_n, ref_stats = ref_hard_voxelize(pts, lo, size, (20, 20, 1), 4, 150, True, on_cap)
    np.testing.assert_array_equal(got.features, ref_v)
    np.testing.assert_array_equal(got.coords, ref_c)
    np.testing.assert_array_equal(got.num_points, ref_n)
    assert (got.n_outside, got.n_dropped_voxels, got.n_dropped_points) == ref_stats


@pytest.mark.parametrize("bad", ["break", "", None, 1, "STOP"])
def test_bad_on_cap_raises(bad: Any) -> None:
    with pytest.raises(VoxelParamError) as info:
        Voxelizer(SMALL_VOXEL, SMALL_RANGE, on_cap=bad)
    assert info.value.field == "on_cap"
    with pytest.raises(VoxelParamError):
        PillarVoxelizer([0.5, 0.5], SMALL_RANGE, on_cap=bad)


# -- the original functions, where they can be loaded ------------------------------------------------------


def _second_points_to_voxel() -> tuple[Callable[..., Any] | None, str]:
    """SECOND's own ``points_to_voxel``: a copy of its point_cloud_ops.py named by
    ``$EDGEFUSE_SECOND_POINT_CLOUD_OPS`` or kept where bench/bench_voxel.py looks for it, else the
    ``second`` package (second.pytorch is not on PyPI)."""
    path = os.environ.get("EDGEFUSE_SECOND_POINT_CLOUD_OPS")
    if not path and (BENCH_CACHE / SECOND_CACHED_NAME).exists():
        path = str(BENCH_CACHE / SECOND_CACHED_NAME)
    if path:
        namespace: dict[str, Any] = {"__name__": "second_point_cloud_ops"}
        exec(compile(Path(path).read_text(), path, "exec"), namespace)
        return namespace["points_to_voxel"], path
    try:
        module = importlib.import_module("second.core.point_cloud.point_cloud_ops")
    except ImportError:
        return None, ("SECOND (traveller59/second.pytorch) is not installed and is not on PyPI; set "
                      "EDGEFUSE_SECOND_POINT_CLOUD_OPS to its second/core/point_cloud/point_cloud_ops.py, or put "
                      f"that file at {BENCH_CACHE / SECOND_CACHED_NAME}")
    return module.points_to_voxel, "second.core.point_cloud.point_cloud_ops"


def _mmdet3d_points_to_voxel() -> tuple[Callable[..., Any] | None, str]:
    """mmdet3d's Numba copy: the installed package, or the wheel bench/bench_voxel.py keeps in its cache."""
    try:
        module = importlib.import_module("mmdet3d.models.task_modules.voxel.voxel_generator")
    except Exception:  # mmdet3d's import needs torch, mmcv, mmengine: any failure means absent
        wheels = sorted(BENCH_CACHE.glob("mmdet3d-1.4.0-*.whl")) if BENCH_CACHE.exists() else []
        if not wheels:
            return None, ("mmdet3d is not importable and no mmdet3d-1.4.0 wheel is in "
                          f"{BENCH_CACHE} (python bench/bench_voxel.py downloads it)")
        source = zipfile.ZipFile(wheels[0]).read(MMDET3D_FILE)
        registry = types.ModuleType("mmdet3d.registry")

        class _Registry:
            def register_module(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
                return lambda cls: cls

        registry.MODELS = _Registry()  # type: ignore[attr-defined]
        saved = {name: sys.modules.get(name) for name in ("mmdet3d", "mmdet3d.registry")}
        sys.modules.setdefault("mmdet3d", types.ModuleType("mmdet3d"))
        sys.modules["mmdet3d.registry"] = registry
        try:
            namespace: dict[str, Any] = {"__name__": "mmdet3d_voxel_generator"}
            exec(compile(source, MMDET3D_FILE, "exec"), namespace)
        finally:
            for name, old in saved.items():
                if old is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = old
        return namespace["points_to_voxel"], wheels[0].name
    return module.points_to_voxel, "mmdet3d"


def _call(fn: Callable[..., Any], pts: npt.NDArray[Any], voxel: list[float], rng: list[float], *, max_points: int,
          max_voxels: int) -> tuple[Any, Any, Any]:
    size = np.asarray(voxel, dtype=pts.dtype)
    crange = np.asarray(rng, dtype=pts.dtype)
    if "coor_to_voxelidx" in inspect.signature(fn).parameters:  # SECOND after 2019-01: grid passed in
        grid = np.round((crange[3:] - crange[:3]) / size).astype(np.int32)
        coor_to_voxelidx = np.full(tuple(grid[::-1].tolist()), -1, dtype=np.int32)
        out = fn(pts, size, crange, coor_to_voxelidx, max_points, True, max_voxels)
        assert np.all(coor_to_voxelidx == -1)  # it cleans what it touched
        return out  # type: ignore[no-any-return]
    return fn(pts, size, crange, max_points, True, max_voxels)  # type: ignore[no-any-return]


def _compare_with(fn: Callable[..., Any], on_cap: str) -> None:
    cases = [(kitti_points(), KITTI_VOXEL, KITTI_RANGE, 5, 16000),
             (dense_cloud(2, 3000), SMALL_VOXEL, SMALL_RANGE, 3, 500)]
    for pts, voxel, rng, max_points, max_voxels in cases:
        ours = Voxelizer(voxel, rng, max_points_per_voxel=max_points, max_voxels=max_voxels,
                         on_cap=on_cap).voxelize(pts)
        assert ours.n_dropped_voxels > 0  # the cap is reached
        theirs = _call(fn, pts, voxel, rng, max_points=max_points, max_voxels=max_voxels)
        np.testing.assert_array_equal(ours.voxels, theirs[0])
        np.testing.assert_array_equal(ours.coords, theirs[1])
        np.testing.assert_array_equal(ours.num_points, theirs[2])


def test_stop_equals_second_points_to_voxel() -> None:
    fn, why = _second_points_to_voxel()
    if fn is None:
        pytest.skip(why)
    _compare_with(fn, "stop")


def test_continue_equals_mmdet3d_points_to_voxel() -> None:
    fn, why = _mmdet3d_points_to_voxel()
    if fn is None:
        pytest.skip(why)
    _compare_with(fn, "continue")
