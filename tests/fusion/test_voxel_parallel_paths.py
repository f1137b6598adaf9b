"""Voxelizers and PointTransformer with threads > 1: serial first, and bit-identical parallel results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgefuse.fusion._parallel import ParallelChooser
from edgefuse.fusion.pointcloud_ops import PointTransformer, transform_points
from edgefuse.fusion.voxel import PARALLEL_MIN_POINTS, DynamicVoxelizer, PillarVoxelizer, Voxelizer

from .test_voxel_hard import KITTI_RANGE, KITTI_VOXEL, kitti_points, random_cloud


class _AlwaysParallel(ParallelChooser):
    """Forces the parallel kernel on every eligible call (result identity on any machine)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.threads = 2

    def pick(self) -> bool:
        self.calls += 1
        return True


def _clouds() -> list[Any]:
    kitti = kitti_points()
    assert kitti.shape[0] >= PARALLEL_MIN_POINTS
    return [kitti, kitti.astype(np.float64), random_cloud(61, 70_000)]


def test_hard_and_pillar_parallel_paths_are_bit_identical() -> None:
    for pts in _clouds():
        serial = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000)
        ref = serial.voxelize(pts, copy=True)
        par = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000, threads=2)
        par._chooser = _AlwaysParallel()
        for _ in range(2):
            got = par.voxelize(pts)
            np.testing.assert_array_equal(got.voxels, ref.voxels)
            np.testing.assert_array_equal(got.coords, ref.coords)
            np.testing.assert_array_equal(got.num_points, ref.num_points)
            assert (got.n_outside, got.n_dropped_voxels, got.n_dropped_points) == (
                ref.n_outside, ref.n_dropped_voxels, ref.n_dropped_points)
        assert par._chooser.calls == 2
    pts = kitti_points()
    pil_ref = PillarVoxelizer([0.16, 0.16], [0, -39.68, -3, 69.12, 39.68, 1]).voxelize(pts)
    pil_ref_features = pil_ref.features.copy()
    pil = PillarVoxelizer([0.16, 0.16], [0, -39.68, -3, 69.12, 39.68, 1], threads=2)
    pil._vox._chooser = _AlwaysParallel()
    got_p = pil.voxelize(pts)
    np.testing.assert_array_equal(got_p.features, pil_ref_features)
    assert pil._vox._chooser.calls == 1


def test_dynamic_parallel_path_is_bit_identical() -> None:
    for pts in _clouds():
        ref = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE).voxelize(pts, copy=True)
        par = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE, threads=2)
        par._chooser = _AlwaysParallel()
        for _ in range(2):
            got = par.voxelize(pts)
            np.testing.assert_array_equal(got.point_voxel, ref.point_voxel)
            np.testing.assert_array_equal(got.coords, ref.coords)
            np.testing.assert_array_equal(got.num_points, ref.num_points)


def test_transformer_parallel_path_is_bit_identical() -> None:
    pts = kitti_points()
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    T[:3, 3] = [0.3, -0.2, 1.5]
    ref = transform_points(pts, T)
    tr = PointTransformer(T, threads=2)
    tr._chooser = _AlwaysParallel()
    np.testing.assert_array_equal(tr.apply(pts), ref)
    assert tr._chooser.calls == 1


@pytest.mark.parametrize("kind", ["hard", "dynamic", "transform"])
def test_threads2_starts_on_the_serial_kernel(kind: str) -> None:
    """No parallel call before the warm-up and the first probe interval (72 eligible calls)."""
    pts = kitti_points()
    obj: Any
    if kind == "hard":
        obj = Voxelizer(KITTI_VOXEL, KITTI_RANGE, max_points_per_voxel=5, max_voxels=16000, threads=2)
        call = obj.voxelize
    elif kind == "dynamic":
        obj = DynamicVoxelizer(KITTI_VOXEL, KITTI_RANGE, threads=2)
        call = obj.voxelize
    else:
        obj = PointTransformer(np.eye(4), threads=2)
        call = obj.apply
    obj.warmup()
    for _ in range(30):
        call(pts)
    call(pts[:1000])  # below PARALLEL_MIN_POINTS: not timed by the chooser
    assert obj._chooser.calls == 30
    assert obj._chooser.parallel_calls == 0 and obj._chooser.probes == 0
    assert obj._chooser.reference() is not None
