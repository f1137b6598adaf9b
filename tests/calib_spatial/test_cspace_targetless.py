"""Targetless LiDAR-camera refinement on the REAL KITTI frame 000000 (tests/data/kitti_object_3frames)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from edgefuse_calibration.spatial import (
    LidarCameraFrame,
    lidar_edge_points,
    perturb,
    random_perturbation,
    refine_lidar_camera,
    write_result_to_rig,
)

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, from_kitti_object, load_rig, save_rig

ROOT = Path(__file__).resolve().parents[1] / "data" / "kitti_object_3frames" / "training"


def _kitti() -> tuple[LidarCameraFrame, CameraModel, object]:
    rig = from_kitti_object(ROOT / "calib" / "000000.txt")
    img = cv2.imread(str(ROOT / "image_2" / "000000.png"))
    pts = np.fromfile(ROOT / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    c = rig.camera("cam2")
    cam = CameraModel(name="cam2", frame_id="cam2", width=img.shape[1], height=img.shape[0], K=c.K, D=c.D)
    return LidarCameraFrame(pts, img), cam, rig


def test_edge_points_are_depth_discontinuities() -> None:
    fr, _, _ = _kitti()
    pts, w = lidar_edge_points(fr.xyz)
    assert 1000 < len(pts) < len(fr.xyz) // 5
    assert np.all(w >= np.sqrt(0.5) - 1e-12)
    bad = fr.xyz.astype(np.float64)
    bad[::3] = np.nan
    p2, _ = lidar_edge_points(bad)
    assert np.isfinite(p2).all()
    with pytest.raises(CalibrationError):
        lidar_edge_points(np.zeros((5, 2)))


def test_kitti_frame0_perturbed_is_refused_and_not_written(tmp_path: Path) -> None:
    """On this frame (bushes, textured wall) edge alignment has several optima: the tool must say so."""
    fr, cam, rig = _kitti()
    Tref = rig.transform("cam2", "velodyne")  # type: ignore[attr-defined]
    dr, dt = random_perturbation(np.random.default_rng(0), 3.0, 0.2)
    T0 = perturb(Tref, dr, dt)
    res = refine_lidar_camera([fr], cam, T0, camera_frame="cam2", lidar_frame="velodyne")
    assert res.verdict == "refused"
    assert res.T is None
    assert res.metrics["multistart_rot_spread_deg"] > 0.3
    rig_path = tmp_path / "rig.yaml"
    save_rig(rig, rig_path)  # type: ignore[arg-type]
    before = rig_path.read_text()
    assert write_result_to_rig(res, rig_path) is False
    assert rig_path.read_text() == before
    assert load_rig(rig_path).transform("cam2", "velodyne").allclose(Tref, 1e-9)  # type: ignore[arg-type]


def test_empty_cloud_and_blank_image_refused() -> None:
    fr, cam, rig = _kitti()
    T = rig.transform("cam2", "velodyne")  # type: ignore[attr-defined]
    empty = refine_lidar_camera([LidarCameraFrame(np.zeros((0, 3)), fr.image)], cam, T)
    assert empty.verdict == "refused"
    assert "LiDAR depth-edge points" in empty.reasons[0]
    nan = refine_lidar_camera([LidarCameraFrame(np.full((1000, 3), np.nan), fr.image)], cam, T)
    assert nan.verdict == "refused"
    blank = refine_lidar_camera([LidarCameraFrame(fr.xyz, np.zeros_like(fr.image))], cam, T)
    assert blank.verdict == "refused"
    assert any("texture" in r for r in blank.reasons)
    with pytest.raises(CalibrationError):
        refine_lidar_camera([LidarCameraFrame(fr.xyz, fr.image[:100])], cam, T)
    with pytest.raises(CalibrationError):
        refine_lidar_camera([], cam, T)
