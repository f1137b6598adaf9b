"""The 6-D start search of the targetless LiDAR-camera refinement (issue 16): scrambled Sobol samples of all
six parameters, distinct basins as starts, rotation about the edge points' centroid -- small synthetic
inputs with known answers, and one REAL near scene (the ACFR excerpt)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from edgefuse_calibration.spatial import (
    LidarCameraFrame,
    TargetlessOptions,
    perturb,
    random_perturbation,
    refine_lidar_camera,
)
from edgefuse_calibration.spatial._common import pose_error
from edgefuse_calibration.spatial.targetless import (
    _UNIT,
    EdgeAlignmentCost,
    _edge_depth,
    _FrameData,
    _from_pivot,
    _sobol_starts,
    _to_pivot,
)

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform
from tests.calibration.spatial.test_board import CAM as FISHEYE
from tests.calibration.spatial.test_board import _image, _published, _scan
from tests.calibration.spatial.test_targetless_score import CAM


def _blobs(*centres: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[0:100, 0:200]
    out = np.zeros((100, 200), np.float32)
    for u, v in centres:
        out = np.maximum(out, np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / 8.0).astype(np.float32))
    return out


def test_rotation_about_the_centroid_keeps_the_centroid_in_place() -> None:
    """``_from_pivot``: rotating 3 deg about a point 4 m ahead moves that point by the translation part only
    (about the camera centre it would move ~21 cm); ``_to_pivot`` inverts it."""
    c = np.array([0.5, -0.2, 4.0])
    v = np.r_[np.deg2rad([2.0, -2.0, 0.5]), 0.05, 0.0, -0.1]
    x = _from_pivot(v, c)
    T = EdgeAlignmentCost.transform_of(x, Transform.identity())
    assert np.allclose(T.apply(c[None])[0], c + v[3:], atol=1e-12)
    about_camera = EdgeAlignmentCost.transform_of(v, Transform.identity()).apply(c[None])[0]
    assert np.linalg.norm(about_camera - (c + v[3:])) > 0.15
    assert np.allclose(_to_pivot(x, c), v, atol=1e-12)
    assert np.allclose(x[:3], v[:3])


def test_edge_centroid_is_the_weighted_mean_in_the_guess_camera_frame() -> None:
    pts = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 4.0]])
    fd = _FrameData(pts, np.array([1.0, 3.0]), {0: _blobs((100, 50))}, 0.1, CAM)
    T0 = Transform.from_rt(np.eye(3), np.array([0.0, 0.0, 1.0]))
    assert np.allclose(EdgeAlignmentCost([fd], T0).centroid, [0.75, 0.0, 4.5])


def test_sobol_starts_are_seeded_six_d_and_in_distinct_basins() -> None:
    """Two image blobs, 30 px apart, and one edge point 1 m ahead: the best sample projects onto a blob,
    the starts are at least ``search_min_separation`` apart (so both blobs get a start, not the first
    blob's neighbours), translation is sampled too, and the same seed gives the same starts."""
    fd = _FrameData(np.array([[0.0, 0.0, 1.0]]), np.ones(1), {0: _blobs((108, 50), (78, 50))}, 0.1, CAM)
    cost = EdgeAlignmentCost([fd], Transform.identity())
    opt = TargetlessOptions(gammas=(0.9,), grid_level=0, search_samples=3000, search_starts=4,
                            search_box=(12.0, 0.25), search_min_separation=3.0)
    n = [0]
    starts = _sobol_starts(cost, opt, n)
    assert n[0] == 3000 and len(starts) == 4
    scores = [cost(x, 0) for x in starts]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8
    U = [x / _UNIT for x in starts]
    assert min(np.linalg.norm(a - b) for i, a in enumerate(U) for b in U[i + 1:]) >= 3.0
    assert any(not np.allclose(x[3:], 0.0) for x in starts)
    for x in starts:
        assert np.all(np.abs(np.degrees(x[:3])) <= 12.0) and np.all(np.abs(x[3:]) <= 0.25 + 1e-9)
    us = [CAM.project(EdgeAlignmentCost.transform_of(x, Transform.identity()).apply(fd.pts))[0][0, 0]
          for x, s in zip(starts, scores, strict=True) if s > 0.5]
    assert any(abs(u - 108) < 3 for u in us) and any(abs(u - 78) < 3 for u in us)
    again = _sobol_starts(cost, opt, [0])
    assert all(np.array_equal(a, b) for a, b in zip(starts, again, strict=True))
    other = _sobol_starts(cost, TargetlessOptions(**{**opt.__dict__, "seed": 1}), [0])
    assert not all(np.array_equal(a, b) for a, b in zip(starts, other, strict=True))


def test_auto_search_goes_six_d_for_near_scenes_only() -> None:
    """The weighted median edge depth decides: a lab 3 m away gets the 6-D start search, a street 25 m away
    the rotation grid (where 20 cm of translation moves points by under half a degree)."""
    def cost(z: float, far_z: float) -> EdgeAlignmentCost:
        pts = np.array([[0.0, 0.0, z], [0.1, 0.0, z], [0.0, 0.1, far_z]])
        return EdgeAlignmentCost([_FrameData(pts, np.array([1.0, 1.0, 1.5]), {0: _blobs((100, 50))}, 0.1, CAM)],
                                 Transform.identity())
    assert _edge_depth(cost(3.0, 30.0)) == pytest.approx(3.0)
    assert _edge_depth(cost(3.0, 30.0 + 1e-9)) <= TargetlessOptions().near_scene_m
    assert _edge_depth(cost(25.0, 30.0)) > TargetlessOptions().near_scene_m
    assert _edge_depth(EdgeAlignmentCost([], Transform.identity())) == float("inf")
    pts = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 10.0]])
    assert _edge_depth(EdgeAlignmentCost([_FrameData(pts, np.array([1.0, 3.0]), {0: _blobs((1, 1))}, 0.1, CAM)],
                                         Transform.identity())) == pytest.approx(10.0)


def test_unknown_pivot_is_a_calibration_error() -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((100, 200, 3)) * 255).astype(np.uint8)
    xyz = np.c_[rng.uniform(-1, 1, (2000, 2)), rng.choice([2.0, 6.0], 2000)]
    with pytest.raises(CalibrationError, match="pivot"):
        refine_lidar_camera([LidarCameraFrame(xyz, img, camera=CAM)], CAM, Transform.identity(),
                            options=TargetlessOptions(pivot="scene", min_edge_points=0, min_texture_fraction=0))
    with pytest.raises(CalibrationError, match="search"):
        refine_lidar_camera([LidarCameraFrame(xyz, img, camera=CAM)], CAM, Transform.identity(),
                            options=TargetlessOptions(search="everywhere", min_edge_points=0, min_texture_fraction=0))


def test_real_near_scene_six_d_search_lands_near_the_published_pose_and_stays_refused() -> None:
    """REAL data: ACFR Ouster-64 + fisheye poses 2 and 6 (tests/data/acfr_ouster_chessboard_excerpt, a lab
    scene ~3 m away), the bench's 5th seeded 3 deg / 20 cm perturbation.  The rotation-grid search locks a
    compensating rotation in (its best candidate ~2.7 deg / 17 cm from the published extrinsic); the 6-D
    search ("auto" picks it for a scene this near) ends within 0.5 deg / 5 cm of it.  The starts do not
    corroborate one another there (the score has competing optima), so the verdict stays refused: nothing
    is written that the checks do not support."""
    frames = []
    for i in (2, 6):
        org = _scan(i, intensity=False)
        ring = np.repeat(np.arange(org.shape[0]), org.shape[1])
        xyz = org.reshape(-1, 3)
        ok = np.isfinite(xyz).all(axis=1) & (np.linalg.norm(xyz, axis=1) > 0.1)
        frames.append(LidarCameraFrame(xyz[ok], _image(i), ring=ring[ok], camera=FISHEYE))
    Tref = _published()
    rng = np.random.default_rng(0)
    for _ in range(5):
        dr, dt = random_perturbation(rng, 3.0, 0.2)
    T0 = perturb(Tref, dr, dt)
    opt = TargetlessOptions(edge_map="nms", occlusion_deg=0.5)  # the bench's multi-frame score
    out = {}
    for search in ("auto", "grid"):
        res = refine_lidar_camera(frames, FISHEYE, T0, options=replace(opt, search=search))
        if res.T is not None and res.verdict == "ok":  # an accepted result must be within the goal
            rot, tr = pose_error(res.T, Tref)
            assert rot <= 0.5 and tr <= 0.05
        out[res.metrics["search"]] = pose_error(Transform(np.asarray(res.metrics["candidate_T_cam_from_lidar"]),
                                                          normalize=True), Tref)
        assert res.metrics["edge_median_depth_m"] < 5.0
    assert out["sobol6d"][0] < 0.5 and out["sobol6d"][1] < 0.05
    assert out["grid"][0] > 1.5 and out["grid"][1] > 0.10
