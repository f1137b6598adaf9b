"""MultiCameraProjector: nuScenes' six cameras in one call, equal to six single projections and OpenCV."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, Projector, project_to_depth
from edgefuse.fusion.projection import MultiCameraProjector, MultiProjectionResult

from .projection_reference import reference_projection

F64 = npt.NDArray[np.float64]

NUSCENES = Path(__file__).resolve().parents[1] / "data" / "nuscenes_demo_sample"
LIDAR_BIN = NUSCENES / "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"
CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
WIDTH, HEIGHT = 1600, 900


def _nuscenes() -> tuple[npt.NDArray[np.float32], dict[str, F64], dict[str, F64]]:
    """LIDAR_TOP points (N, 3), K and T_cam_from_lidar per camera.

    ``lidar2cam`` from the mmdetection3d info includes the ego motion between the LiDAR and each
    camera's timestamp (up to 0.33 m here), so it is used rather than the static rig chain.
    """
    info = json.loads((NUSCENES / "calib_and_boxes_from_pkl.json").read_text())
    xyz = np.fromfile(LIDAR_BIN, dtype=np.float32).reshape(-1, 5)[:, :3]
    K = {name: np.array(info["images"][name]["cam2img"], dtype=np.float64) for name in CAMERAS}
    T = {name: np.array(info["images"][name]["lidar2cam"], dtype=np.float64) for name in CAMERAS}
    return np.ascontiguousarray(xyz), K, T


def _check_assignment(multi: MultiProjectionResult, n: int) -> None:
    expected_cam = np.full(n, -1, np.int32)
    expected_uv = np.full((n, 2), np.nan, np.float32)
    for k in reversed(range(len(multi.results))):  # lowest id wins: write it last
        valid = multi.results[k].valid
        expected_cam[valid] = k
        expected_uv[valid] = multi.results[k].uv[valid]
    np.testing.assert_array_equal(multi.camera, expected_cam)
    np.testing.assert_array_equal(multi.uv, expected_uv)
    assert multi.n_assigned == int(np.count_nonzero(expected_cam >= 0))


def test_nuscenes_six_cameras_equal_single_projections_and_opencv() -> None:
    xyz, K, T = _nuscenes()
    assert xyz.shape[0] == 34_688
    projectors = [Projector(PINHOLE, K[c], None, WIDTH, HEIGHT, T[c], max_points=1000) for c in CAMERAS]
    multi = MultiCameraProjector(projectors, CAMERAS)
    multi.warmup()
    result = multi.project(xyz)
    assert result.names == CAMERAS
    for c in CAMERAS:
        single = project_to_depth(xyz, PINHOLE, K[c], None, WIDTH, HEIGHT, T[c])
        got = result[c]
        np.testing.assert_array_equal(got.depth, single.depth)
        np.testing.assert_array_equal(got.index, single.index)
        np.testing.assert_array_equal(got.uv, single.uv)
        np.testing.assert_array_equal(got.valid, single.valid)
        ref = reference_projection(xyz, PINHOLE, K[c], np.zeros(8), WIDTH, HEIGHT, T[c])
        np.testing.assert_array_equal(got.valid, ref.valid)
        np.testing.assert_allclose(got.uv[ref.valid], ref.uv[ref.valid], rtol=0.0, atol=1e-4)
        np.testing.assert_array_equal(got.index, ref.index)
        np.testing.assert_array_equal(got.depth, ref.depth)
    # SOURCE.md counts points with z > 0 and 0 <= u < W, 0 <= v < H (pixel corners at integers) from
    # lidar2cam: 3,067 / 3,079 / 3,704 / 4,826 / 4,097 / 3,379.  Ours (centres at integers, z >= 0.1 m)
    # may differ only by points within half a pixel of the border.
    source_counts = (3067, 3079, 3704, 4826, 4097, 3379)
    for c, count in zip(CAMERAS, source_counts, strict=True):
        assert abs(result[c].n_valid - count) <= 0.01 * count, (c, result[c].n_valid, count)
    _check_assignment(result, xyz.shape[0])
    # Neighbouring cameras overlap, so some points are seen twice but assigned once.
    assert result.n_assigned < sum(r.n_valid for r in result.results)
    with pytest.raises(KeyError, match="CAM_X"):
        result["CAM_X"]


def _transform(rng: np.random.Generator, yaw: float) -> F64:
    R, _ = cv2.Rodrigues(np.array([0.0, yaw, 0.0]) + rng.normal(scale=0.05, size=3))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.uniform(-0.5, 0.5, size=3)
    return T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixed_camera_models_ring(dtype: Any) -> None:
    rng = np.random.default_rng(31)
    setups = [
        (PINHOLE, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), np.zeros(8)),
        (PLUMB_BOB, np.array([[480.0, 0, 322], [0, 478, 237], [0, 0, 1]]),
         np.array([-0.28, 0.07, 0.0012, -0.0009, -0.004, 0, 0, 0])),
        (RATIONAL, np.array([[610.0, 0, 318], [0, 605, 242], [0, 0, 1]]),
         np.array([0.45, -0.12, 0.001, 0.002, 0.01, 0.8, -0.05, 0.02])),
        (EQUIDISTANT, np.array([[300.0, 0.9, 320], [0, 301, 240], [0, 0, 1]]),
         np.array([0.02, -0.01, 0.003, -0.001, 0, 0, 0, 0])),
    ]
    transforms = [_transform(rng, yaw) for yaw in (0.0, 1.4, 3.1, -1.5)]
    xyz = rng.uniform(-40.0, 40.0, size=(20_000, 3)).astype(dtype)
    xyz[::97] = np.nan
    projectors = [Projector(m, K, D, 640, 480, T, min_depth_m=0.5, max_radius=1.5)
                  for (m, K, D), T in zip(setups, transforms, strict=True)]
    multi = MultiCameraProjector(projectors)
    result = multi.project(xyz, copy=True)
    assert result.names == ("cam0", "cam1", "cam2", "cam3")
    for k, ((model, K, D), T) in enumerate(zip(setups, transforms, strict=True)):
        single = project_to_depth(xyz, model, K, D, 640, 480, T, min_depth_m=0.5, max_radius=1.5)
        np.testing.assert_array_equal(result.results[k].depth, single.depth)
        np.testing.assert_array_equal(result.results[k].index, single.index)
        assert result.results[k].n_valid > 500
    _check_assignment(result, xyz.shape[0])
    assert np.all(result.camera[::97] == -1)
    # A copied result survives the next call; a view does not.
    again = multi.project(xyz[:10])
    assert again.camera.shape == (10,)
    assert result.camera.shape == (20_000,)


def test_from_rig_matches_projectors_built_by_hand() -> None:
    from edgefuse.rig import from_nuscenes

    rig = from_nuscenes(NUSCENES / "calib_and_boxes_from_pkl.json")
    xyz, _, _ = _nuscenes()
    multi = MultiCameraProjector.from_rig(rig, list(CAMERAS[:3]), "LIDAR_TOP")
    result = multi.project(xyz)
    for c in CAMERAS[:3]:
        cam = rig.camera(c)
        T = np.asarray(rig.transform(cam.frame_id, "LIDAR_TOP").matrix)
        single = Projector.from_camera(cam, T).project(xyz)
        np.testing.assert_array_equal(result[c].index, single.index)
    with pytest.raises(Exception, match="NOPE"):
        MultiCameraProjector.from_rig(rig, ["NOPE"], "LIDAR_TOP")


def test_bad_input() -> None:
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    p = Projector(PINHOLE, K, None, 640, 480, np.eye(4))
    with pytest.raises(ValueError, match="non-empty"):
        MultiCameraProjector([])
    with pytest.raises(ValueError, match="unique"):
        MultiCameraProjector([p, p], ["a", "a"])
    with pytest.raises(ValueError, match="unique"):
        MultiCameraProjector([p], ["a", "b"])
    multi = MultiCameraProjector([p, p])
    with pytest.raises(ValueError, match="shape"):
        multi.project(np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        multi.project(np.zeros((4, 3), np.int32))
    empty = multi.project(np.zeros((0, 3), np.float32))
    assert empty.n_assigned == 0
    assert empty.camera.shape == (0,)
    assert not empty.results[0].depth.any()
    # Non-contiguous input is accepted (copied once); NaN/inf/behind-camera points are never assigned.
    xyz = np.zeros((6, 6), np.float64)[:, ::2]
    xyz[:, 2] = [5.0, -5.0, 0.0, np.nan, np.inf, 5.0]
    result = multi.project(xyz)
    np.testing.assert_array_equal(result.camera, [0, -1, -1, -1, -1, 0])


def test_steady_state_allocates_no_arrays() -> None:
    xyz, K, T = _nuscenes()
    multi = MultiCameraProjector([Projector(PINHOLE, K[c], None, WIDTH, HEIGHT, T[c]) for c in CAMERAS], CAMERAS)
    multi.warmup()
    multi.project(xyz)
    tracemalloc.start()
    try:
        for _ in range(3):
            multi.project(xyz)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # result objects and views only; one array would be >= 139 kB
