"""Camera models against OpenCV (the independent reference) and their inverse."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefuse.errors import CalibrationError
from edgefuse.rig import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, CameraModel
from edgefuse.rig.camera import MODEL_IDS

K = np.array([[458.654, 0.0, 367.215], [0.0, 457.296, 248.375], [0.0, 0.0, 1.0]])
CASES = {
    "pinhole": np.zeros(0),
    "plumb_bob": np.array([-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, -0.0015]),
    "rational_polynomial": np.array([0.12, -0.05, 0.0011, -0.0007, 0.01, 0.3, -0.02, 0.005]),
    "equidistant": np.array([-0.0139, 0.0018, -0.0017, 0.0003]),
}


def _camera(model: str) -> CameraModel:
    return CameraModel(name="cam", frame_id="cam_optical", width=752, height=480, K=K, D=CASES[model],
                       model=model)


def _points_in_front(rng: np.random.Generator, n: int = 2000, half_fov: float = 0.9) -> np.ndarray:
    z = rng.uniform(0.2, 60.0, n)
    xy = rng.uniform(-half_fov, half_fov, (n, 2)) * z[:, None]
    return np.asarray(np.c_[xy, z], dtype=np.float64)


def _opencv(model: str, pts: np.ndarray) -> np.ndarray:
    if model == "equidistant":
        out, _ = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, CASES[model])
    else:
        d = CASES[model] if CASES[model].size else np.zeros(5)
        out, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, d)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


@pytest.mark.parametrize("model", list(CASES))
def test_project_matches_opencv(model: str) -> None:
    rng = np.random.default_rng(10 + MODEL_IDS[model])
    cam = _camera(model)
    pts = _points_in_front(rng)
    uv, valid = cam.project(pts)
    assert valid.all()
    np.testing.assert_allclose(uv, _opencv(model, pts), rtol=0, atol=1e-6)


@pytest.mark.parametrize("model", list(CASES))
def test_unproject_inverts_project(model: str) -> None:
    rng = np.random.default_rng(20 + MODEL_IDS[model])
    cam = _camera(model)
    pts = _points_in_front(rng, 500, 0.7)
    uv, _ = cam.project(pts)
    rays, ok = cam.unproject(uv)
    assert ok.all()
    np.testing.assert_allclose(rays[:, 2], 1.0)
    np.testing.assert_allclose(rays[:, :2], pts[:, :2] / pts[:, 2:], rtol=0, atol=1e-10)
    uv2, _ = cam.project(rays)
    np.testing.assert_allclose(uv2, uv, rtol=0, atol=1e-8)


def test_unproject_agrees_with_opencv_undistort() -> None:
    rng = np.random.default_rng(30)
    cam = _camera("plumb_bob")
    uv = rng.uniform([0, 0], [752, 480], (300, 2))
    rays, ok = cam.unproject(uv)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-15)
    ref = cv2.undistortPoints(uv.reshape(-1, 1, 2), K, CASES["plumb_bob"], R=None, P=None, criteria=crit)
    ref = ref.reshape(-1, 2)
    assert ok.all()
    np.testing.assert_allclose(rays[:, :2], ref, rtol=0, atol=1e-9)


def test_points_behind_or_beyond_fold_are_invalid() -> None:
    cam = _camera("plumb_bob")
    uv, valid = cam.project(np.array([[0.0, 0.0, -1.0], [1.0, 1.0, 0.0], [0.1, 0.2, 1.0], [np.nan, 0, 1]]))
    assert valid.tolist() == [False, False, True, False]
    assert np.isnan(uv[~valid]).all()
    # Strong barrel distortion folds over at r ≈ 0.93: a far off-axis point must not come back in.
    folded = CameraModel("c", "c", 640, 480, K, np.array([-0.5, 0.05, 0, 0, 0]), "plumb_bob")
    _, v = folded.project(np.array([[0.5, 0.0, 1.0], [3.0, 0.0, 1.0]]))
    assert v.tolist() == [True, False]


def test_kernel_params_layout() -> None:
    assert (PINHOLE, PLUMB_BOB, RATIONAL, EQUIDISTANT) == (0, 1, 2, 3)
    for model, d in CASES.items():
        mid, k, d8 = _camera(model).kernel_params()
        assert mid == MODEL_IDS[model]
        assert k.dtype == np.float64
        assert k.shape == (3, 3)
        assert k.flags.c_contiguous
        assert d8.dtype == np.float64
        assert d8.shape == (8,)
        np.testing.assert_array_equal(d8[: d.size], d)
        assert not d8[d.size:].any()


def test_camera_info_roundtrip() -> None:
    for model in CASES:
        cam = _camera(model)
        info = cam.to_camera_info(stamp_ns=123)
        assert info.stamp_ns == 123
        assert info.frame_id == "cam_optical"
        back = CameraModel.from_camera_info(info, name="cam")
        assert back.model == model
        np.testing.assert_array_equal(back.K, cam.K)
        np.testing.assert_array_equal(back.D, cam.D)
        np.testing.assert_array_equal(info.p[:, :3], cam.K)


def test_bad_parameters_rejected() -> None:
    with pytest.raises(CalibrationError, match="D for model plumb_bob must have 5"):
        CameraModel("c", "c", 640, 480, K, np.zeros(4), "plumb_bob")
    with pytest.raises(CalibrationError, match="unknown model 'fisheye62'"):
        CameraModel("c", "c", 640, 480, K, np.zeros(4), "fisheye62")
    bad = K.copy()
    bad[0, 0] = -1.0
    with pytest.raises(CalibrationError, match="focal lengths must be positive"):
        CameraModel("c", "c", 640, 480, bad, np.zeros(0), "pinhole")
    with pytest.raises(CalibrationError, match="width must be a positive integer"):
        CameraModel("c", "c", 0, 480, K, np.zeros(0), "pinhole")


def test_max_radius_is_the_fold_point_of_the_distortion() -> None:
    import math

    from edgefuse.rig import CameraModel

    K = [[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]]
    cam = CameraModel("c", "c", 100, 100, np.array(K), np.array([-0.5, 0.0, 0.0, 0.0, 0.0]), "plumb_bob")
    # r_d = r (1 - 0.5 r^2) stops growing where 1 - 1.5 r^2 = 0
    assert cam.max_radius == pytest.approx(math.sqrt(1 / 1.5), abs=1e-4)  # found on a 5e-5 grid
    assert CameraModel("p", "p", 100, 100, np.array(K), np.zeros(0), "pinhole").max_radius == math.inf
