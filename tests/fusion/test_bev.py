"""BEV grids (edgefuse.fusion.bev) and the bev_grid stage vs the slow reference; LiDAR and radar."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgefuse.errors import PipelineError
from edgefuse.fusion.bev import BevGrid, bev_grid
from edgefuse.fusion.radar import polar_to_points
from edgefuse.fusion.voxel import VoxelParamError
from edgefuse.msgs import pointcloud_from_arrays, pointcloud_from_structured
from edgefuse.stages.voxel import BevGridStage

from .voxel_reference import ref_bev

DATA = Path(__file__).resolve().parents[1] / "data"
KITTI = DATA / "kitti_object_3frames" / "training" / "velodyne" / "000000.bin"
RADAR = DATA / "radiate_tiny_foggy" / "data" / "radiate" / "tiny_foggy" / "Navtech_Polar" / "000010.png"
ALL = ["max_z", "min_z", "mean_intensity", "density", "occupancy"]


def _check(grid: BevGrid, pts: Any, intensity: Any, **ref_kwargs: Any) -> None:
    img = grid.compute(pts, intensity=intensity)
    inten = intensity if intensity is not None else (pts[:, 3] if pts.shape[1] >= 4 else None)
    ref = ref_bev(pts, inten, grid.x_range, grid.y_range, grid.resolution[0], grid.z_range, list(grid.channels),
                  grid.density_log_norm, grid.empty_height)
    assert img.shape == ref.shape == grid.shape
    np.testing.assert_allclose(img, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("log_norm", [0.0, 16.0])
def test_bev_matches_reference_random_and_reuse(log_norm: float) -> None:
    rng = np.random.default_rng(1)
    grid = BevGrid((-4.0, 4.0), (-3.0, 5.0), 0.5, z_range=(-1.0, 2.0), channels=ALL, density_log_norm=log_norm,
                   empty_height=-5.0)
    for seed in range(3):  # reuse: cells touched by the previous cloud are reset
        rng = np.random.default_rng(seed)
        pts = rng.uniform([-5, -4, -1.5, 0], [5, 6, 2.5, 1], size=(3000, 4)).astype(np.float32)
        pts[::97, 0] = np.nan
        pts[::89, 2] = np.inf
        _check(grid, pts, None)
    _check(grid, pts[:, :3].astype(np.float64), None)  # no intensity channel: 0
    _check(grid, pts[:, :3], pts[:, 3] * 2)


def test_bev_kitti_frame() -> None:
    pts = np.fromfile(KITTI, dtype=np.float32).reshape(-1, 4)
    grid = BevGrid((0, 70.4), (-40, 40), 0.4, z_range=(-3, 1), channels=ALL, density_log_norm=64)
    _check(grid, pts, None)
    img = grid.compute(pts)
    occ = img[..., 4] > 0
    assert occ.sum() > 2000
    assert np.all(img[occ, 0] >= img[occ, 1]) and np.all(img[occ, 0] < 1) and np.all(img[occ, 1] >= -3)
    one = bev_grid(pts, (0, 70.4), (-40, 40), 0.4, z_range=(-3, 1), channels=ALL, density_log_norm=64)
    np.testing.assert_array_equal(one, img)


def test_bev_radar_points_radiate() -> None:
    polar = cv2.imread(str(RADAR), cv2.IMREAD_GRAYSCALE)
    radar = polar_to_points(polar, threshold=80.0, min_range_m=2.0)
    xyz = np.stack([radar["x"], radar["y"], radar["z"]], axis=1)
    grid = BevGrid((-50, 50), (-50, 50), 0.5, channels=["mean_intensity", "density", "occupancy"])
    img = grid.compute(xyz, intensity=radar["intensity"])
    ref = ref_bev(xyz, radar["intensity"], (-50, 50), (-50, 50), 0.5, (-math.inf, math.inf),
                  ["mean_intensity", "density", "occupancy"], 0.0, 0.0)
    np.testing.assert_allclose(img, ref, rtol=1e-5, atol=1e-5)
    assert img[..., 2].sum() > 50 and np.all(img[img[..., 2] > 0, 0] >= 80)


def test_bev_steady_state_allocates_nothing() -> None:
    pts = np.fromfile(KITTI, dtype=np.float32).reshape(-1, 4)
    grid = BevGrid((0, 70.4), (-40, 40), 0.1, z_range=(-3, 1), channels=ALL)
    grid.warmup()
    first = grid.compute(pts)
    tracemalloc.start()
    try:
        for _ in range(3):
            again = grid.compute(pts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024
    assert np.shares_memory(first, again) and not again.flags.writeable


def test_bev_empty_and_bad_input() -> None:
    grid = BevGrid((0, 10), (0, 10), 1.0, channels=["max_z", "occupancy"], empty_height=-9)
    img = grid.compute(np.zeros((0, 3), dtype=np.float32))
    assert np.all(img[..., 0] == -9) and np.all(img[..., 1] == 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        grid.compute(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="intensity"):
        grid.compute(np.zeros((3, 3), dtype=np.float32), intensity=np.zeros(2, dtype=np.float32))
    for kwargs, field in (
        ({"resolution_m": 0.0}, "resolution_m"),
        ({"resolution_m": -1.0}, "resolution_m"),
        ({"resolution_m": 100.0}, "resolution_m"),
        ({"x_range": (5, 5)}, "x_range"),
        ({"y_range": (0, np.nan)}, "y_range"),
        ({"channels": ["max_z", "max_z"]}, "channels"),
        ({"channels": ["height"]}, "channels"),
        ({"density_log_norm": 0.5}, "density_log_norm"),
    ):
        args: dict[str, Any] = {"x_range": (0, 10), "y_range": (0, 10), "resolution_m": 1.0}
        args.update(kwargs)
        with pytest.raises(VoxelParamError) as info:
            BevGrid(args.pop("x_range"), args.pop("y_range"), args.pop("resolution_m"), **args)
        assert info.value.field == field


def test_bev_stage() -> None:
    pts = np.fromfile(KITTI, dtype=np.float32).reshape(-1, 4)
    cloud = pointcloud_from_arrays(5, "velo", x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], intensity=pts[:, 3])
    stage = BevGridStage("bev", {"resolution_m": 0.2, "z_range": [-3, 1]})
    stage.start()
    out = stage.process({"cloud": cloud}, 5)["image"]
    assert out.encoding == "32FC3" and out.frame_id == "velo" and out.data.shape == (400, 352, 3)
    ref = BevGrid((0, 70.4), (-40, 40), 0.2, z_range=(-3, 1), channels=["max_z", "mean_intensity", "density"],
                  density_log_norm=64).compute(pts)
    np.testing.assert_array_equal(out.data, ref)
    no_int = pointcloud_from_structured(6, "velo", cloud.points[["x", "y", "z"]])
    out2 = stage.process({"cloud": no_int}, 6)["image"]
    assert np.all(out2.data[..., 1] == 0) and out2.data[..., 2].sum() > 0
    five = BevGridStage("bev", {"channels": ALL, "resolution_m": 0.2, "z_range": [-3, 1]})  # any channel count
    five.start()
    assert five.process({"cloud": cloud}, 5)["image"].encoding == f"32FC{len(ALL)}"
    with pytest.raises(PipelineError, match="resolution_m"):
        BevGridStage("bev", {"resolution_m": -0.1})
    assert BevGridStage.check_params({"channels": "max_z"})  # must be a list
