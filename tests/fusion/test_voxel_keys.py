"""The hard kernel's inside test ``c <= top`` at the grid's edge, where float32 cannot hold ``grid - 1``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgefuse.fusion.voxel import VoxelGeometry, Voxelizer

from .voxel_reference import ref_hard_voxelize

WIDE = 2**25 + 4  # cells along x: float32 holds 2^25 and 2^25 + 4 but not 2^25 + 3 (= grid - 1)


def test_top_is_the_largest_value_below_the_grid() -> None:
    g = VoxelGeometry.create([1.0, 1.0, 1.0], [0, 0, 0, WIDE, 3, 2])
    assert g.grid == (WIDE, 3, 2)
    top32 = g.top(np.dtype(np.float32))
    assert top32.dtype == np.float32
    assert top32.tolist() == [2.0**25, 2.0, 1.0]
    assert float(np.nextafter(top32[0], np.float32(np.inf))) > WIDE - 1  # compared exactly, in float64
    assert g.top(np.dtype(np.float64)).tolist() == [WIDE - 1, 2.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_of_a_wide_grid_matches_reference(dtype: Any) -> None:
    x = np.array([2.0**25 - 4, 2.0**25, 2.0**25 + 4, 2.0**25 + 8, WIDE - 0.5, 0.25, -0.25], dtype=np.float64)
    pts = np.zeros((x.size, 4), dtype=dtype)
    pts[:, 0] = x
    pts[:, 1:3] = 0.5
    vox = Voxelizer([1.0, 1.0, 1.0], [0, 0, 0, WIDE, 1, 1], max_points_per_voxel=2, max_voxels=10)
    assert vox._index.columns.size == 0  # more columns than the column grid takes: the hash table
    res = vox.voxelize(pts)
    lo, size = vox.geometry.lo_size(pts.dtype)
    ref_v, ref_c, ref_n, ref_stats = ref_hard_voxelize(pts, lo, size, vox.grid, 2, 10, True)
    np.testing.assert_array_equal(res.coords, ref_c)
    np.testing.assert_array_equal(res.num_points, ref_n)
    np.testing.assert_array_equal(res.voxels, ref_v)
    assert (res.n_outside, res.n_dropped_voxels, res.n_dropped_points) == ref_stats
    inside_x = [2**25 - 4, 2**25, WIDE - 1, 0] if dtype == np.float64 else [2**25 - 4, 2**25, 0]
    # float32: 2^25 + 4 = grid is outside, and WIDE - 0.5 rounds to 2^25 + 4 as well
    assert sorted(res.coords[:, 2].tolist()) == sorted(inside_x)
