"""Target-based LiDAR-camera extrinsics on SYNTHETIC boards (rendered through a known camera)."""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_calibration.spatial import fit_plane_ransac, observation_from, pose_error, solve_plane_to_plane
from edgefuse_calibration.spatial._common import exp_so3
from edgefuse_calibration.spatial.synthetic import board_points, random_board_pose, render_board

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform

PAT = (7, 5)
SQ = 0.08
CAM = CameraModel(name="c", frame_id="c", width=400, height=300,
                   K=np.array([[320.0, 0, 200], [0, 320, 150], [0, 0, 1]]),
                  D=np.array([-0.1, 0.02, 0, 0, 0]), model="plumb_bob")
T_CL = Transform.from_rt(exp_so3([1.2, -1.2, 1.2]), [0.1, -0.2, 0.05])  # lidar x fwd -> camera z fwd-ish


def _obs(rng: np.random.Generator, n: int, poses: list[Transform] | None = None) -> list:  # type: ignore[type-arg]
    out = []
    for k in range(n):
        Tcb = poses[k] if poses else random_board_pose(rng, PAT, SQ)
        img = render_board(CAM, Tcb, PAT, SQ, rng=rng)
        pts = board_points(T_CL.inverse() @ Tcb, PAT, SQ, rng=rng)
        o, why = observation_from(img, pts, CAM, PAT, SQ)
        assert o is not None, why
        out.append(o)
    return out


def test_plane_to_plane_recovers_extrinsics() -> None:
    rng = np.random.default_rng(1)
    res = solve_plane_to_plane(_obs(rng, 5))
    assert res.verdict == "ok"
    assert res.T is not None
    dr, dt = pose_error(res.T, T_CL)
    assert dr < 0.5  # 400x300 synthetic images: PnP normals good to ~0.2 deg
    assert dt < 0.02
    assert res.metrics["rms_point_to_plane_m"] < 0.01


def test_too_few_poses_refused() -> None:
    rng = np.random.default_rng(2)
    res = solve_plane_to_plane(_obs(rng, 2))
    assert res.verdict == "refused"
    assert res.T is None
    assert "board poses" in res.reasons[0]


def test_parallel_boards_are_degenerate() -> None:
    rng = np.random.default_rng(3)
    base = random_board_pose(rng, PAT, SQ)
    poses = [Transform.from_rt(base.R, base.t + np.array([dx, 0.0, dz]))
             for dx, dz in ((0.0, 0.0), (0.1, 0.4), (-0.1, 0.8))]
    res = solve_plane_to_plane(_obs(rng, 3, poses))
    assert res.verdict == "refused"
    assert "degenerate" in res.reasons[0]


def test_no_board_in_image() -> None:
    blank = np.full((CAM.height, CAM.width), 128, np.uint8)
    o, why = observation_from(blank, np.zeros((500, 3)), CAM, PAT, SQ)
    assert o is None
    assert "no checkerboard" in why


def test_plane_fit_ignores_nan_and_refuses_empty() -> None:
    rng = np.random.default_rng(4)
    pts = np.c_[rng.uniform(-1, 1, (400, 2)), 2.0 + rng.normal(0, 0.003, 400)]
    pts[::7] = np.nan
    fit = fit_plane_ransac(pts)
    assert fit is not None
    plane, mask = fit
    assert abs(abs(plane.normal[2]) - 1) < 1e-3
    assert abs(plane.offset - 2.0) < 0.01
    assert not mask[::7].any()
    assert fit_plane_ransac(np.zeros((0, 3))) is None
    with pytest.raises(CalibrationError):
        fit_plane_ransac(np.zeros((10, 2)))
