"""Hard voxelization (SECOND semantics), dynamic voxelization and pillars vs the slow references."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion.voxel import (
    DynamicVoxelizer,
    PillarVoxelizer,
    VoxelGeometry,
    Voxelizer,
    VoxelParamError,
    dynamic_voxelize,
    voxelize,
)

from .voxel_reference import ref_dynamic_voxelize, ref_hard_voxelize, ref_pillar_features

KITTI = Path(__file__).resolve().parents[1] / "data" / "kitti_object_3frames" / "training" / "velodyne" / "000000.bin"
KITTI_RANGE = [0.0, -40.0, -3.0, 70.4, 40.0, 1.0]
KITTI_VOXEL = [0.05, 0.05, 0.1]


def kitti_points() -> npt.NDArray[np.float32]:
    return np.fromfile(KITTI, dtype=np.float32).reshape(-1, 4)


def random_cloud(seed: int, n: int, dtype: Any = np.float32) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    pts = np.empty((n, 4), dtype=dtype)
    pts[:, 0] = rng.uniform(-1.0, 11.0, n)  # some outside [0, 10)
    pts[:, 1] = rng.uniform(-5.5, 5.5, n)
    pts[:, 2] = rng.uniform(-2.2, 1.2, n)
    pts[:, 3] = rng.uniform(0.0, 1.0, n)
    # voxel boundaries exactly, and repeated points
    pts[: n // 20, 0] = np.round(pts[: n // 20, 0], 1)
    pts[n // 20: n // 10] = pts[: n // 20]
    return pts


def check_against_reference(vox: Voxelizer, pts: npt.NDArray[Any], zyx: bool) -> None:
    g = vox.geometry
    lo, size = g.lo_size(pts.dtype)
    ref_v, ref_c, ref_n, ref_stats = ref_hard_voxelize(pts, lo, size, g.grid, vox.max_points_per_voxel,
                                                       vox.max_voxels, zyx)
    res = vox.voxelize(pts)
    np.testing.assert_array_equal(res.coords, ref_c)
    np.testing.assert_array_equal(res.num_points, ref_n)
    np.testing.assert_array_equal(res.voxels, ref_v)
    assert res.voxels.dtype == pts.dtype
    assert (res.n_outside, res.n_dropped_voxels, res.n_dropped_points) == ref_stats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["zyx", "xyz"])
@pytest.mark.parametrize(("max_pts", "max_vox"), [(3, 50), (5, 100000), (1, 7)])
def test_hard_matches_reference_random(dtype: Any, order: str, max_pts: int, max_vox: int) -> None:
    vox = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1], max_points_per_voxel=max_pts, max_voxels=max_vox,
                    coord_order=order)
    for seed in range(3):  # reuse of the same voxelizer across calls (hash-table generations)
        check_against_reference(vox, random_cloud(seed, 3000, dtype), order == "zyx")


def test_hard_matches_reference_kitti() -> None:
    pts = kitti_points()
    vox = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000)
    check_against_reference(vox, pts, True)
    res = vox.voxelize(pts)
    assert res.n_voxels == 16000 and res.n_dropped_voxels > 0  # KITTI car settings hit the cap
    one = voxelize(pts, KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000)
    np.testing.assert_array_equal(one.voxels, res.voxels)
    assert one.voxels.flags.writeable and not res.voxels.flags.writeable


def test_grid_matches_second_formula() -> None:
    g = VoxelGeometry.create(KITTI_VOXEL, KITTI_RANGE)
    assert g.grid == (1408, 1600, 40)
    assert VoxelGeometry.create([0.16, 0.16, 4], [0, -39.68, -3, 69.12, 39.68, 1]).grid == (432, 496, 1)


def test_parallel_path_identical_to_serial() -> None:
    pts = kitti_points()
    serial = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000)
    par = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000, threads=2)
    ref = serial.voxelize(pts, copy=True)
    for _ in range(8):  # threads=2 starts serial; forced parallel paths: tests/fusion/test_voxel_parallel_paths.py
        got = par.voxelize(pts)
        np.testing.assert_array_equal(got.voxels, ref.voxels)
        np.testing.assert_array_equal(got.coords, ref.coords)
        assert got.n_outside == ref.n_outside and got.n_dropped_points == ref.n_dropped_points
    dyn_s = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE).voxelize(pts, copy=True)
    dyn_p = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE, threads=2)
    for _ in range(8):
        got_d = dyn_p.voxelize(pts)
        np.testing.assert_array_equal(got_d.point_voxel, dyn_s.point_voxel)
        np.testing.assert_array_equal(got_d.coords, dyn_s.coords)
        np.testing.assert_array_equal(got_d.num_points, dyn_s.num_points)


def test_steady_state_allocates_nothing() -> None:
    pts = kitti_points()
    vox = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000)
    dyn = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE)
    vox.warmup()
    dyn.warmup()
    first = vox.voxelize(pts)
    dyn.voxelize(pts)
    tracemalloc.start()
    try:
        for _ in range(5):
            again = vox.voxelize(pts)
            dyn.voxelize(pts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # result objects and views only, no (N,) or (M, ...) arrays
    assert np.shares_memory(first.voxels, again.voxels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dynamic_matches_reference(dtype: Any) -> None:
    vox = DynamicVoxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1], max_points=10)  # grows once
    for seed, order in ((3, "zyx"), (4, "zyx")):
        pts = random_cloud(seed, 2500, dtype)
        g = vox.geometry
        lo, size = g.lo_size(pts.dtype)
        pv, coords, num = ref_dynamic_voxelize(pts, lo, size, g.grid, order == "zyx")
        res = vox.voxelize(pts)
        np.testing.assert_array_equal(res.point_voxel, pv)
        np.testing.assert_array_equal(res.coords, coords)
        np.testing.assert_array_equal(res.num_points, num)
        assert res.n_outside == int(np.count_nonzero(pv < 0))


def test_dynamic_agrees_with_uncapped_hard_kitti() -> None:
    pts = kitti_points()
    dyn = dynamic_voxelize(pts, KITTI_VOXEL, KITTI_RANGE, coord_order="xyz")
    hard = voxelize(pts, KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=512, max_voxels=len(pts), coord_order="xyz")
    np.testing.assert_array_equal(dyn.coords, hard.coords)
    np.testing.assert_array_equal(dyn.num_points, hard.num_points)
    assert dyn.n_outside == hard.n_outside
    inside = dyn.point_voxel >= 0
    lo = np.array([0, -40, -3], dtype=np.float32)
    cells = np.floor((pts[inside, :3] - lo) / np.array(KITTI_VOXEL, dtype=np.float32)).astype(np.int32)
    np.testing.assert_array_equal(dyn.coords[dyn.point_voxel[inside]], cells)


@pytest.mark.parametrize("order", ["zyx", "xyz"])
def test_pillars_match_reference(order: str) -> None:
    pts = random_cloud(7, 4000)
    pil = PillarVoxelizer([0.5, 0.5], [0, -5, -2, 10, 5, 1], max_points_per_pillar=6, max_pillars=300,
                          coord_order=order)
    assert pil.grid == (20, 20, 1)
    res = pil.voxelize(pts)
    g = pil.geometry
    lo, size = g.lo_size(pts.dtype)
    ref_v, ref_c, ref_n, stats = ref_hard_voxelize(pts, lo, size, g.grid, 6, 300, order == "zyx")
    np.testing.assert_array_equal(res.coords, ref_c)
    np.testing.assert_array_equal(res.num_points, ref_n)
    assert (res.n_outside, res.n_dropped_voxels, res.n_dropped_points) == stats
    ref_f = ref_pillar_features(ref_v, ref_c, ref_n, g.lo, g.size, order == "zyx")
    assert res.features.shape == (res.n_pillars, 6, 9)
    np.testing.assert_allclose(res.features, ref_f, rtol=0, atol=2e-6)
    z_index = res.coords[:, 0] if order == "zyx" else res.coords[:, 2]
    assert np.all(z_index == 0)
    plain = PillarVoxelizer([0.5, 0.5], [0, -5, -2, 10, 5, 1], max_points_per_pillar=6, max_pillars=300,
                            augment=False).voxelize(pts)
    assert plain.features.shape[2] == 4


# -- bad input -----------------------------------------------------------------------------------------------
def test_empty_cloud() -> None:
    vox = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1])
    res = vox.voxelize(np.zeros((0, 4), dtype=np.float32))
    assert res.n_voxels == 0 and res.voxels.shape == (0, 5, 4) and res.n_outside == 0
    dyn = DynamicVoxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1]).voxelize(np.zeros((0, 3)))
    assert dyn.n_voxels == 0 and dyn.point_voxel.shape == (0,)


def test_nonfinite_points_are_dropped_and_counted() -> None:
    pts = np.array([[1, 1, 0, 1], [np.nan, 1, 0, 1], [1, np.inf, 0, 1], [1, 1, -np.inf, 1], [1e30, 0, 0, 1],
                    [1.1, 1.1, 0.1, np.nan]], dtype=np.float32)
    vox = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1])
    res = vox.voxelize(pts)
    assert res.n_voxels == 1 and res.n_outside == 4
    assert res.num_points[0] == 2 and np.isnan(res.voxels[0, 1, 3])  # other channels are copied as they are
    dyn = DynamicVoxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1]).voxelize(pts)
    np.testing.assert_array_equal(dyn.point_voxel, [0, -1, -1, -1, -1, 0])


def test_out_of_range_only() -> None:
    pts = np.full((100, 3), 50.0, dtype=np.float32)
    res = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1]).voxelize(pts)
    assert res.n_voxels == 0 and res.n_outside == 100


def test_noncontiguous_and_byteswapped_inputs_are_converted() -> None:
    pts = random_cloud(11, 2000)
    vox = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1])
    ref = vox.voxelize(pts, copy=True)
    wide = np.zeros((2000, 8), dtype=np.float32)
    wide[:, ::2] = pts
    got = vox.voxelize(wide[:, ::2])
    np.testing.assert_array_equal(got.voxels, ref.voxels)
    got = vox.voxelize(pts.astype(">f4"))
    np.testing.assert_array_equal(got.voxels, ref.voxels)


@pytest.mark.parametrize(
    ("points", "exc"),
    [
        (np.zeros((5, 4), dtype=np.int32), TypeError),
        (np.zeros((5, 4), dtype=np.float16), TypeError),
        (np.zeros((5, 2), dtype=np.float32), ValueError),
        (np.zeros(12, dtype=np.float32), ValueError),
        ([[0.0, 0.0, 0.0]], TypeError),
    ],
)
def test_bad_points_raise(points: Any, exc: type[Exception]) -> None:
    vox = Voxelizer([0.5, 0.5, 0.4], [0, -5, -2, 10, 5, 1])
    with pytest.raises(exc, match="points"):
        vox.voxelize(points)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"voxel_size": [0.0, 0.5, 0.5]}, "voxel_size"),
        ({"voxel_size": [0.5, -0.5, 0.5]}, "voxel_size"),
        ({"voxel_size": [0.5, np.nan, 0.5]}, "voxel_size"),
        ({"voxel_size": [0.5, 0.5]}, "voxel_size"),
        ({"voxel_size": [50.0, 0.5, 0.5]}, "voxel_size"),
        ({"voxel_size": [1e-9, 1e-9, 1e-9]}, "voxel_size"),
        ({"point_range": [0, 0, 0, 0, 1, 1]}, "point_range"),
        ({"point_range": [0, 0, 0, 1, 1, np.inf]}, "point_range"),
        ({"point_range": [0, 0, 0, 1, 1]}, "point_range"),
        ({"max_voxels": 0}, "max_voxels"),
        ({"max_points_per_voxel": -1}, "max_points_per_voxel"),
        ({"coord_order": "yxz"}, "coord_order"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"voxel_size": [0.5, 0.5, 0.4], "point_range": [0, -5, -2, 10, 5, 1]}
    args.update(kwargs)
    with pytest.raises(VoxelParamError) as info:
        Voxelizer(args.pop("voxel_size"), args.pop("point_range"), **args)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
