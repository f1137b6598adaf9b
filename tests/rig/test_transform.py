"""Transform and FrameGraph: algebra against independent references (scipy), and every error path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from edgefuse.errors import CalibrationError
from edgefuse.rig import CalibrationWarning, FrameGraph, Transform


def _random_transform(rng: np.random.Generator) -> Transform:
    return Transform.from_rt(Rotation.random(random_state=rng).as_matrix(), rng.normal(size=3))


def test_quaternion_roundtrip_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = Rotation.random(random_state=rng).as_quat()  # scipy: (x, y, z, w)
        T = Transform.from_quat_xyzw([1.0, 2.0, 3.0], q)
        np.testing.assert_allclose(T.R, Rotation.from_quat(q).as_matrix(), atol=1e-14)
        q2 = T.to_quat_xyzw()
        assert q2[3] >= 0
        np.testing.assert_allclose(q2, q if q[3] >= 0 else -q, atol=1e-12)
        np.testing.assert_array_equal(T.t, [1.0, 2.0, 3.0])


def test_wxyz_is_reordered() -> None:
    rng = np.random.default_rng(2)
    q = Rotation.random(random_state=rng).as_quat()
    a = Transform.from_quat_xyzw(np.zeros(3), q)
    b = Transform.from_quat_wxyz(np.zeros(3), np.r_[q[3], q[:3]])
    assert a.allclose(b, atol=1e-15)


def test_euler_is_ros_rpy_convention() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        rpy = rng.uniform(-np.pi, np.pi, 3) * np.array([1, 0.49, 1])
        T = Transform.from_euler(np.zeros(3), rpy)
        # scipy lower-case "xyz" = extrinsic rotations about fixed x, then y, then z = Rz·Ry·Rx.
        np.testing.assert_allclose(T.R, Rotation.from_euler("xyz", rpy).as_matrix(), atol=1e-14)
        np.testing.assert_allclose(T.to_euler(), rpy, atol=1e-12)
    T = Transform.from_euler(np.zeros(3), [0, 0, 90], degrees=True)
    np.testing.assert_allclose(T.apply([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-15)


def test_inverse_compose_apply() -> None:
    rng = np.random.default_rng(4)
    A, B = _random_transform(rng), _random_transform(rng)
    p = rng.normal(size=(100, 3))
    np.testing.assert_allclose((A @ B).apply(p), A.apply(B.apply(p)), atol=1e-12)
    np.testing.assert_allclose(A.inverse().apply(A.apply(p)), p, atol=1e-12)
    np.testing.assert_allclose((A @ A.inverse()).matrix, np.eye(4), atol=1e-14)
    np.testing.assert_allclose(A.apply(p[0]), A.matrix[:3, :3] @ p[0] + A.matrix[:3, 3])
    with pytest.raises(CalibrationError, match=r"shape \(N, 3\)"):
        A.apply(np.zeros((4, 2)))


def test_inverse_of_inverse_is_exact_for_nearly_orthonormal_input() -> None:
    # Calibration files carry rotations orthonormal to ~1e-7 (KITTI); inverse must not use R^T.
    R = Rotation.from_euler("z", 0.3).as_matrix() * (1 + 5e-8)
    T = Transform.from_rt(R, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(T.inverse().inverse().matrix, T.matrix, rtol=0, atol=1e-15)


def test_non_orthonormal_rotation_is_rejected_with_distance() -> None:
    R = np.eye(3)
    R[0, 1] = 1e-3
    with pytest.raises(CalibrationError, match=r"not orthonormal: max\|R\*R\^T - I\| = 0\.001"):
        Transform.from_rt(R, np.zeros(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        T = Transform.from_rt(R, np.zeros(3), normalize=True)
    assert any(issubclass(w.category, CalibrationWarning) and "re-orthonormalised" in str(w.message)
               for w in caught)
    np.testing.assert_allclose(T.R @ T.R.T, np.eye(3), atol=1e-15)


def test_reflection_and_bad_shapes_rejected() -> None:
    with pytest.raises(CalibrationError, match="det"):
        Transform.from_rt(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(CalibrationError, match="3 elements"):
        Transform.from_rt(np.eye(3), [1.0, 2.0])
    with pytest.raises(CalibrationError, match="last row"):
        Transform(np.ones((4, 4)))
    with pytest.raises(CalibrationError, match="norm"):
        Transform.from_quat_xyzw(np.zeros(3), [0, 0, 0, 2])


def _graph(rng: np.random.Generator) -> tuple[FrameGraph, dict[str, Transform]]:
    Ts = {name: _random_transform(rng) for name in ("lidar", "imu", "cam", "cam_right")}
    g = FrameGraph()
    g.add("base", "lidar", Ts["lidar"])
    g.add("base", "imu", Ts["imu"])
    g.add("lidar", "cam", Ts["cam"])
    g.add("cam", "cam_right", Ts["cam_right"])
    return g, Ts


def test_lookup_walks_both_directions() -> None:
    rng = np.random.default_rng(5)
    g, Ts = _graph(rng)
    T_base_from_camr = Ts["lidar"] @ Ts["cam"] @ Ts["cam_right"]
    assert g.lookup("base", "cam_right").allclose(T_base_from_camr, 1e-12)
    assert g.lookup("cam_right", "base").allclose(T_base_from_camr.inverse(), 1e-12)
    # across branches: imu -> cam_right through the common ancestor base
    expected = Ts["imu"].inverse() @ T_base_from_camr
    assert g.lookup("imu", "cam_right").allclose(expected, 1e-12)
    assert g.lookup("cam", "cam").allclose(Transform.identity())
    assert g.parent("cam") == "lidar"
    assert g.root("cam_right") == "base"


def test_graph_errors_name_the_frames() -> None:
    rng = np.random.default_rng(6)
    g, _ = _graph(rng)
    with pytest.raises(CalibrationError, match=r"unknown frame.*'radar'"):
        g.lookup("radar", "cam")
    g.add("odom", "gps", Transform.identity())
    with pytest.raises(CalibrationError, match="'gps' and 'cam' are not connected"):
        g.lookup("gps", "cam")
    with pytest.raises(CalibrationError, match="'cam' already has parent 'lidar'"):
        g.add("imu", "cam", Transform.identity())
    with pytest.raises(CalibrationError, match="cycle"):
        g.add("cam_right", "base", Transform.identity())
    with pytest.raises(CalibrationError, match="own parent"):
        g.add("x", "x", Transform.identity())
