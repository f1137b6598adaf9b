"""Point-cloud utilities (transforms, crops, RANSAC ground, range images) and their stages."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from edgefuse.errors import PipelineError
from edgefuse.fusion.pointcloud_ops import (
    HDL32E_ELEVATIONS_DEG,
    HDL64E_ELEVATIONS_DEG,
    PointTransformer,
    RangeImageBuilder,
    crop_box,
    crop_fov,
    crop_oriented_box,
    crop_range,
    ransac_ground,
    ring_edges,
    ring_from_elevation,
    transform_points,
    uniform_ring_edges,
)
from edgefuse.fusion.voxel import VoxelParamError
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.stages.voxel import GroundRemovalStage, PointCloudCropStage

from .voxel_reference import ref_range_image

DATA = Path(__file__).resolve().parents[1] / "data"
KITTI = DATA / "kitti_object_3frames" / "training" / "velodyne" / "000000.bin"
RADIATE_VELO = DATA / "radiate_tiny_foggy" / "data" / "radiate" / "tiny_foggy" / "velo_lidar" / "000040.csv"


def kitti() -> npt.NDArray[np.float32]:
    return np.fromfile(KITTI, dtype=np.float32).reshape(-1, 4)


def rigid(seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    T[:3, 3] = rng.normal(size=3) * 5
    return T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_matches_numpy(dtype: Any) -> None:
    pts = kitti().astype(dtype)
    T = rigid(1)
    ref = pts[:, :3].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    got = transform_points(pts, T)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref.astype(dtype), rtol=1e-6, atol=1e-5)
    out = np.empty((len(pts), 3), dtype=np.float64)
    assert transform_points(pts, T, out=out) is out
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9 if dtype == np.float64 else 1e-4)


def test_point_transformer_parallel_identical_and_no_allocation() -> None:
    pts = kitti()
    T = rigid(2)
    ref = transform_points(pts, T)
    tr = PointTransformer(T, threads=2)
    tr.warmup()
    for _ in range(6):  # starts serial; the forced parallel path: tests/fusion/test_voxel_parallel_paths.py
        np.testing.assert_array_equal(tr.apply(pts), ref)
    tracemalloc.start()
    try:
        for _ in range(3):
            tr.apply(pts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024


def test_transform_bad_input() -> None:
    pts = kitti()
    with pytest.raises(VoxelParamError, match="orthonormal"):
        transform_points(pts, np.diag([2.0, 1, 1, 1]))
    with pytest.raises(VoxelParamError, match="4x4"):
        transform_points(pts, np.eye(3))
    with pytest.raises(VoxelParamError, match="NaN"):
        transform_points(pts, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="out must be"):
        transform_points(pts, np.eye(4), out=np.empty((3, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        transform_points(pts.astype(np.int16), np.eye(4))
    assert transform_points(np.zeros((0, 3), dtype=np.float32), np.eye(4)).shape == (0, 3)
    nan = np.array([[np.nan, 0, 0]], dtype=np.float32)
    assert np.isnan(transform_points(nan, np.eye(4))[0, 0])  # NaN stays NaN (documented: not filtered)


def test_crops_match_numpy() -> None:
    pts = kitti()
    pts[::101, 1] = np.nan
    x, y, z = (pts[:, i].astype(np.float64) for i in range(3))
    box = crop_box(pts, [0, -40, -3], [70.4, 40, 1])
    np.testing.assert_array_equal(box, (x >= 0) & (x < 70.4) & (y >= -40) & (y < 40) & (z >= -3) & (z < 1))
    r = np.sqrt(x * x + y * y + z * z)
    np.testing.assert_array_equal(crop_range(pts, 5.0, 30.0), (r >= 5) & (r <= 30))
    rp = np.sqrt(x * x + y * y)
    np.testing.assert_array_equal(crop_range(pts, 0.0, 10.0, planar=True), rp <= 10)
    az = np.degrees(np.arctan2(y, x))
    el = np.degrees(np.arctan2(z, rp))
    fov = crop_fov(pts, (-45, 45), (-20, 2))
    np.testing.assert_array_equal(fov, (np.abs(az) <= 45) & (el >= -20) & (el <= 2))
    behind = crop_fov(pts, (135, -135))  # wraps through 180
    np.testing.assert_array_equal(behind, np.abs(az) >= 135)
    np.testing.assert_array_equal(crop_fov(pts), np.isfinite(az))
    yaw = 0.4
    c = np.array([10.0, 2.0, -1.0])
    rel = np.stack([x, y, z], axis=1) - c
    R = Rotation.from_euler("z", yaw).as_matrix()
    local = rel @ R  # R^T applied to each row
    want = np.all(np.abs(local) <= np.array([4.0, 2.0, 1.5]) / 2, axis=1)
    got = crop_oriented_box(pts, c, [4.0, 2.0, 1.5], yaw_rad=yaw)
    assert want.sum() > 50
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(crop_oriented_box(pts, c, [4.0, 2.0, 1.5], R=R), want)


def test_crop_bad_input() -> None:
    pts = kitti()
    with pytest.raises(VoxelParamError):
        crop_box(pts, [0, 0, 0], [0, 1, 1])
    with pytest.raises(VoxelParamError):
        crop_range(pts, 5.0, 1.0)
    with pytest.raises(VoxelParamError):
        crop_range(pts, -1.0, 1.0)
    with pytest.raises(VoxelParamError):
        crop_oriented_box(pts, [0, 0, 0], [1, 0, 1])
    with pytest.raises(VoxelParamError):
        crop_oriented_box(pts, [0, 0, 0], [1, 1, 1], R=np.eye(3) * 2)
    with pytest.raises(VoxelParamError):
        crop_fov(pts, (-10, 10), (5, -5))
    with pytest.raises(ValueError, match="out must be"):
        crop_box(pts, [0, 0, 0], [1, 1, 1], out=np.zeros(3, dtype=bool))
    assert crop_box(np.zeros((0, 3)), [0, 0, 0], [1, 1, 1]).shape == (0,)


def synthetic_ground(seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    normal = np.array([0.05, -0.03, 1.0])
    normal /= np.linalg.norm(normal)
    d = 1.7
    xy = rng.uniform(-30, 30, size=(20000, 2))
    z = -(normal[0] * xy[:, 0] + normal[1] * xy[:, 1] + d) / normal[2] + rng.normal(0, 0.02, 20000)
    ground = np.column_stack([xy, z])
    clutter = rng.uniform([-30, -30, -1], [30, 30, 3], size=(8000, 3))
    pts = np.vstack([ground, clutter]).astype(np.float32)
    return pts, np.append(normal, d)


def test_ransac_recovers_plane_and_is_deterministic() -> None:
    pts, plane = synthetic_ground(3)
    res = ransac_ground(pts, threshold_m=0.1, seed=7)
    assert res.found
    np.testing.assert_allclose(res.plane, plane, atol=5e-3)
    assert res.inliers[:20000].mean() > 0.99
    again = ransac_ground(pts, threshold_m=0.1, seed=7)
    np.testing.assert_array_equal(again.plane, res.plane)
    np.testing.assert_array_equal(again.inliers, res.inliers)
    dist = np.abs(pts.astype(np.float64) @ res.plane[:3] + res.plane[3])
    np.testing.assert_array_equal(res.inliers, dist <= 0.1)
    raw = ransac_ground(pts, threshold_m=0.1, seed=7, refine=False)
    assert raw.found and abs(raw.plane[3] - plane[3]) < 0.1


def test_ransac_kitti_ground() -> None:
    pts = kitti()
    res = ransac_ground(pts, threshold_m=0.2, seed=0)
    # KITTI's Velodyne is mounted 1.73 m above the road: plane z = -1.73 near the car, normal ~ +z.
    assert res.plane[2] > 0.99
    assert 1.5 < res.plane[3] < 1.9
    assert 0.25 < res.n_inliers / len(pts) < 0.75


def test_ransac_bad_and_degenerate_input() -> None:
    empty = ransac_ground(np.zeros((0, 3), dtype=np.float32))
    assert not empty.found and empty.n_inliers == 0
    wall = np.column_stack([np.zeros(100), np.linspace(0, 5, 100), np.tile(np.linspace(0, 2, 10), 10)])
    res = ransac_ground(wall.astype(np.float32))
    assert not res.found and not res.inliers.any()  # a vertical plane is not ground
    nan = np.full((50, 3), np.nan, dtype=np.float32)
    assert not ransac_ground(nan).found
    for kwargs in ({"threshold_m": 0.0}, {"n_iter": 0}, {"max_tilt_deg": 100.0}, {"sample_size": -3}):
        with pytest.raises(VoxelParamError):
            ransac_ground(wall, **kwargs)


def test_ring_from_elevation_and_range_image_kitti() -> None:
    pts = kitti()
    edges = ring_edges(HDL64E_ELEVATIONS_DEG)
    rings = ring_from_elevation(pts, edges)
    el = np.arctan2(pts[:, 2].astype(np.float64), np.hypot(pts[:, 0], pts[:, 1]).astype(np.float64))
    want = np.searchsorted(edges, el, side="right") - 1
    want[(el < edges[0]) | (el > edges[-1])] = -1
    want[el == edges[-1]] = 63
    np.testing.assert_array_equal(rings, want)
    assert (rings >= 0).mean() > 0.9
    builder = RangeImageBuilder(64, 512)
    img = builder.compute(pts, rings)
    ref_r, ref_i = ref_range_image(pts, rings, 64, 512)
    np.testing.assert_array_equal(img.index, ref_i)
    np.testing.assert_array_equal(img.range, ref_r)
    # uniform bins over the HDL-64E field of view as an alternative
    u = ring_from_elevation(pts, uniform_ring_edges(64, -24.8, 2.0))
    assert (u >= 0).mean() > 0.9


def test_range_image_radiate_ring_field_and_reuse() -> None:
    data = np.loadtxt(RADIATE_VELO, delimiter=",", dtype=np.float64)
    pts = data[:, :4].astype(np.float32)
    rings = data[:, 4].astype(np.uint16)
    assert rings.max() == 31
    builder = RangeImageBuilder(32, 1024, top_ring_first=True)
    builder.warmup()
    builder.compute(np.fliplr(pts[:5000, :3]).copy(), rings[:5000])  # leaves pixels that must be reset
    img = builder.compute(pts, rings)
    ref_r, ref_i = ref_range_image(pts, rings, 32, 1024)
    np.testing.assert_array_equal(img.index, ref_i)
    np.testing.assert_array_equal(img.range, ref_r)
    assert (img.index >= 0).mean() > 0.25  # ~650 points per ring, 1024 columns
    # RADIATE's ring 0 is the lowest beam: its elevation is below ring 31's.
    r_el = np.degrees(np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1])))
    assert np.median(r_el[rings == 0]) < -25 and np.median(r_el[rings == 31]) > 5
    assert abs(np.median(r_el[rings == 0]) - HDL32E_ELEVATIONS_DEG[0]) < 1.0


def test_range_image_bad_input() -> None:
    builder = RangeImageBuilder(4, 8)
    pts = np.array([[1, 0, 0], [np.nan, 0, 0], [2, 0, 0], [1, 1, 0]], dtype=np.float32)
    img = builder.compute(pts, np.array([0, 1, 9, -1], dtype=np.int32))  # ring 9 and -1 out of range
    assert (img.index >= 0).sum() == 1 and img.index[3, 4] == 0
    with pytest.raises(ValueError, match="rings"):
        builder.compute(pts, np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="rings"):
        builder.compute(pts, np.zeros(3, dtype=np.int32))
    with pytest.raises(VoxelParamError):
        RangeImageBuilder(0, 8)
    with pytest.raises(VoxelParamError):
        ring_edges([1.0, 0.5])
    with pytest.raises(VoxelParamError):
        uniform_ring_edges(64, 2.0, -24.0)


def test_crop_and_ground_stages() -> None:
    pts = kitti()
    cloud = pointcloud_from_arrays(1, "velo", x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], intensity=pts[:, 3])
    crop = PointCloudCropStage("crop", {"box_min": [0, -40, -3], "box_max": [70.4, 40, 1], "max_range_m": 50.0,
                                        "azimuth_deg": [-45, 45]})
    out = crop.process({"cloud": cloud}, 1)["cloud"]
    want = crop_box(pts, [0, -40, -3], [70.4, 40, 1]) & crop_range(pts, 0, 50) & crop_fov(pts, (-45, 45))
    np.testing.assert_array_equal(out.points["intensity"], pts[want, 3])
    assert out.width == int(want.sum())
    ground = GroundRemovalStage("ground", {"seed": 3})
    ground.start()
    res = ground.process({"cloud": cloud}, 1)
    ref = ransac_ground(pts[:, :3], seed=3)
    assert res["ground"].width == ref.n_inliers and res["cloud"].width == len(pts) - ref.n_inliers
    with pytest.raises(PipelineError, match="box_max"):
        PointCloudCropStage("crop", {"box_min": [0, 0, 0]})
    with pytest.raises(PipelineError, match="max_m"):
        PointCloudCropStage("crop", {"min_range_m": 5.0, "max_range_m": 1.0})
    with pytest.raises(PipelineError, match="threshold_m"):
        GroundRemovalStage("ground", {"threshold_m": -1.0})
    with pytest.raises(Exception, match="no field"):
        crop.process({"cloud": pointcloud_from_arrays(1, "v", a=np.zeros(3))}, 1)
    assert math.isfinite(float(ref.plane[3]))
