"""Deskew bad input: each case gives a clear error or a documented, bounded degradation."""

from __future__ import annotations

import numpy as np
import pytest

from edgefuse.errors import SyncError
from edgefuse.fusion.deskew import ConstantVelocity, Deskewer, DeskewError, deskew, integrate_imu
from edgefuse.msgs.types import ImuBatch

CV = ConstantVelocity((10.0, 0.0, 0.0), (0.0, 0.0, 0.5))


def _imu(n: int = 12, step_ns: int = 10_000_000, t0: int = 0) -> ImuBatch:
    stamps = t0 + np.arange(n, dtype=np.int64) * step_ns
    return ImuBatch(stamps, np.tile([0.0, 0.0, 0.5], (n, 1)), np.tile([0.0, 0.0, 9.81], (n, 1)))


def test_empty_cloud_gives_empty_result() -> None:
    r = deskew(np.zeros((0, 3)), np.zeros(0, np.int64), CV, reference_time_ns=0)
    assert r.points.shape == (0, 3) and r.n_outside == 0
    r = deskew(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), _imu(), reference_time_ns=5)
    assert r.points.shape == (0, 3)


def test_nonfinite_points_stay_nonfinite_and_do_not_spread() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 3)) * 10
    pts[3] = [np.nan, 1.0, 2.0]
    pts[7] = [np.inf, 0.0, 0.0]
    t = np.sort(rng.integers(0, 100_000_000, 50)).astype(np.int64)
    r = deskew(pts, t, CV, reference_time_ns=0)
    assert not np.all(np.isfinite(r.points[3])) and not np.all(np.isfinite(r.points[7]))
    ok = np.ones(50, bool)
    ok[[3, 7]] = False
    assert np.all(np.isfinite(r.points[ok]))
    clean = deskew(pts[ok], t[ok], CV, reference_time_ns=0)
    np.testing.assert_array_equal(r.points[ok], clean.points)


def test_nonfinite_times_give_nan_points_and_are_counted() -> None:
    pts = np.ones((5, 3))
    t = np.array([0.0, np.nan, 0.05, np.inf, 0.09])
    r = deskew(pts, t, CV, reference_time_ns=0, time_unit="s")
    assert r.n_nonfinite_time == 2
    assert np.all(np.isnan(r.points[[1, 3]])) and np.all(np.isfinite(r.points[[0, 2, 4]]))
    with pytest.raises(DeskewError, match="NaN or infinite"):
        deskew(pts[:2], np.array([np.nan, np.nan]), CV, reference_time_ns="start", time_unit="s")


def test_wrong_shapes_and_dtypes_raise() -> None:
    t = np.zeros(4, np.int64)
    with pytest.raises(DeskewError, match=r"\(N, 3\)"):
        deskew(np.zeros((4, 2)), t, CV, reference_time_ns=0)
    with pytest.raises(DeskewError, match=r"\(N, 3\)"):
        deskew([[0.0, 0.0, 0.0]] * 4, t, CV, reference_time_ns=0)  # type: ignore[arg-type]
    with pytest.raises(DeskewError, match="float32 or float64"):
        deskew(np.zeros((4, 3), np.int32), t, CV, reference_time_ns=0)
    with pytest.raises(DeskewError, match="4 points"):
        deskew(np.zeros((4, 3)), np.zeros(3, np.int64), CV, reference_time_ns=0)
    with pytest.raises(DeskewError, match="integer or float"):
        deskew(np.zeros((4, 3)), np.zeros(4, bool), CV, reference_time_ns=0)
    with pytest.raises(DeskewError, match=r"\(N,\)"):
        deskew(np.zeros((4, 3)), np.zeros((4, 1)), CV, reference_time_ns=0)
    with pytest.raises(DeskewError, match="time_unit"):
        deskew(np.zeros((4, 3)), t, CV, reference_time_ns=0, time_unit="minutes")
    with pytest.raises(DeskewError, match="reference_time_ns"):
        deskew(np.zeros((4, 3)), t, CV, reference_time_ns="middle")  # type: ignore[arg-type]
    with pytest.raises(DeskewError, match="motion must be"):
        deskew(np.zeros((4, 3)), t, "fast", reference_time_ns=0)  # type: ignore[arg-type]
    with pytest.raises(DeskewError, match="linear_mps"):
        deskew(np.zeros((4, 3)), t, ConstantVelocity((np.nan, 0, 0), (0, 0, 0)), reference_time_ns=0)
    with pytest.raises(DeskewError, match="T_imu_from_lidar"):
        deskew(np.zeros((4, 3)), t, CV, reference_time_ns=0, T_imu_from_lidar=np.eye(3))
    with pytest.raises(DeskewError, match="orthonormal"):
        deskew(np.zeros((4, 3)), t, CV, reference_time_ns=0, T_imu_from_lidar=np.diag([2.0, 1, 1, 1]))
    with pytest.raises(DeskewError, match="outside must be"):
        Deskewer(outside="ignore")
    with pytest.raises(DeskewError, match="writable"):
        Deskewer().deskew(np.zeros((4, 3)), t, CV, reference_time_ns=0, out=np.zeros((3, 3)))


def test_big_endian_times_are_converted() -> None:
    t = np.array([0, 50_000_000], dtype=">i8")
    a = deskew(np.ones((2, 3)), t, CV, reference_time_ns=0)
    b = deskew(np.ones((2, 3)), t.astype("<i8"), CV, reference_time_ns=0)
    np.testing.assert_array_equal(a.points, b.points)


def test_point_times_outside_imu_window() -> None:
    imu = _imu(n=6)  # covers [0, 50] ms
    pts = np.ones((4, 3))
    inside = np.array([0, 10, 20, 52], dtype=np.int64) * 1_000_000  # 52 ms: within 5 ms tolerance
    r = deskew(pts, inside, imu, reference_time_ns=0)
    assert r.n_outside == 0
    far = np.array([0, 10, 20, 90], dtype=np.int64) * 1_000_000
    with pytest.raises(DeskewError, match="1 of 4 point times"):
        deskew(pts, far, imu, reference_time_ns=0)
    r = deskew(pts, far, imu, reference_time_ns=0, outside="nan")
    assert r.n_outside == 1 and np.all(np.isnan(r.points[3])) and np.all(np.isfinite(r.points[:3]))
    r = deskew(pts, far, imu, reference_time_ns=0, outside="extrapolate")
    assert r.n_outside == 1 and np.all(np.isfinite(r.points))
    # no overlap at all
    with pytest.raises(DeskewError, match="do not overlap"):
        deskew(pts, far + 10_000_000_000, imu, reference_time_ns=10_000_000_000)
    # integrate_imu never extrapolates
    with pytest.raises(SyncError, match="do not cover"):
        integrate_imu(imu.stamps_ns, imu.angular_velocity, 0, 90_000_000)


def test_non_monotonic_imu_raises() -> None:
    imu = _imu()
    stamps = imu.stamps_ns.copy()
    stamps[[3, 4]] = stamps[[4, 3]]
    with pytest.raises(SyncError, match="strictly increasing"):
        deskew(np.ones((2, 3)), np.array([0, 50_000_000]), ImuBatch(stamps, imu.angular_velocity,
                                                                      imu.linear_acceleration),
               reference_time_ns=0)
    with pytest.raises(DeskewError, match="at least 2"):
        deskew(np.ones((2, 3)), np.array([0, 1]), ImuBatch(stamps[:1], imu.angular_velocity[:1],
                                                            imu.linear_acceleration[:1]), reference_time_ns=0)


def test_bad_imu_samples_raise() -> None:
    imu = _imu()
    gyro = imu.angular_velocity.copy()
    gyro[2, 1] = np.nan
    with pytest.raises(DeskewError, match="NaN"):
        integrate_imu(imu.stamps_ns, gyro, 0, 50_000_000)
    with pytest.raises(DeskewError, match="gyro must be"):
        integrate_imu(imu.stamps_ns, gyro[:, :2], 0, 50_000_000)
    with pytest.raises(DeskewError, match="gravity"):
        integrate_imu(imu.stamps_ns, imu.angular_velocity, 0, 50_000_000, accel_mps2=imu.linear_acceleration)
    with pytest.raises(DeskewError, match="accel must"):
        integrate_imu(imu.stamps_ns, imu.angular_velocity, 0, 50_000_000, accel_mps2=np.zeros((3, 3)),
                      gravity_mps2=(0, 0, -9.81))


def test_outside_policy_on_shared_time_runs() -> None:
    """Points sharing one time (a LiDAR column) outside the window: each is counted and handled."""
    imu = _imu(n=6)  # [0, 50] ms
    t = np.repeat(np.array([0, 20, 90], dtype=np.int64) * 1_000_000, 4)
    pts = np.ones((12, 3))
    r = deskew(pts, t, imu, reference_time_ns=0, outside="nan")
    assert r.n_outside == 4 and np.all(np.isnan(r.points[8:])) and np.all(np.isfinite(r.points[:8]))
    r = deskew(pts, t, imu, reference_time_ns=0, outside="extrapolate")
    assert r.n_outside == 4 and np.all(np.isfinite(r.points))
    # extrapolation continues the last segment's rotation: same as the constant rate would give
    cv = deskew(pts, t, ConstantVelocity((0, 0, 0), (0, 0, 0.5)), reference_time_ns=0)
    np.testing.assert_allclose(r.points, cv.points, atol=1e-12)
