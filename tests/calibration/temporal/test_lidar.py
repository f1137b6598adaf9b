"""Gyro vs LiDAR rotation (scan-to-scan ICP) on a real Ouster OS-1-128 capture with IMU packets.

The capture (ouster-sdk test data, see tests/data/ouster_sdk_pcaps/SOURCE.md) holds 3 frames and 30
IMU samples in 0.3 s, decoded with ``edgefuse_drivers.ouster``.  What it can validate: the ICP
rotation rate against the poses shipped with the capture and against the gyro over the same
intervals.  What it cannot: a time offset — two rotation-rate samples are far too few, and every
method must say so (``too_short``) rather than print a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from edgefuse_calibration.temporal import (
    Signal,
    Verdict,
    estimate_time_offset,
    lidar_rotation_rate,
)
from edgefuse_calibration.temporal._so3 import angle_deg, log_so3

from edgefuse.errors import CalibrationError

from .conftest import DATA

pytest.importorskip("open3d")

PCAPS = DATA / "ouster_sdk_pcaps/tests/pcaps"
PCAP = PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap"
META = PCAPS / "OS-1-128_v2.3.0_1024x10.json"
POSES = PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt"


def ouster_gyro_and_lidar_rate() -> tuple[Signal, Signal, list[dict[str, Any]]]:
    """(gyro in the sensor frame, ICP rotation rate in the sensor frame, ICP info per pair)."""
    from edgefuse_drivers.ouster import OusterPcap, xyz_lut

    rec = OusterPcap(PCAP, META)
    lut = xyz_lut(rec.info, "sensor")
    clouds, mids = [], []
    for scan in rec.scans():
        pts, _, ok = scan.xyz(lut)
        clouds.append(pts[ok])
        ts = scan.timestamp_ns[scan.column_valid]
        mids.append(int(ts.min() + (ts.max() - ts.min()) // 2))  # middle of the sweep
    imu = rec.imu_batch()
    R_sensor_from_imu = rec.info.T_sensor_from_imu[:3, :3]
    gyro = Signal(imu.stamps_ns, imu.angular_velocity @ R_sensor_from_imu.T, "os_imu_gyro", "rad/s")
    rate, info = lidar_rotation_rate(np.array(mids, dtype=np.int64), clouds, voxel_m=0.3)
    return gyro, rate, info


@pytest.fixture(scope="module")
def ouster() -> tuple[Signal, Signal, list[dict[str, Any]]]:
    return ouster_gyro_and_lidar_rate()


def reference_relative_poses() -> list[np.ndarray]:
    P = np.loadtxt(POSES).reshape(-1, 3, 4)
    T = np.tile(np.eye(4), (P.shape[0], 1, 1))
    T[:, :3, :] = P
    return [np.linalg.inv(T[i]) @ T[i + 1] for i in range(P.shape[0] - 1)]


def test_icp_matches_the_shipped_poses(ouster: tuple[Signal, Signal, list[dict[str, Any]]]) -> None:
    _, rate, info = ouster
    assert len(rate) == 2 and np.all(np.isfinite(rate.values))
    for pair, T_ref in zip(info, reference_relative_poses(), strict=True):
        T = pair["T_prev_from_cur"]
        assert pair["fitness"] > 0.95
        # measured: 0.08° and 0.05° rotation difference, 1.9 and 1.4 cm translation (0.25 m steps)
        assert angle_deg(T[:3, :3].T @ T_ref[:3, :3]) < 0.2
        assert np.linalg.norm(T[:3, 3] - T_ref[:3, 3]) < 0.05


def test_icp_rotation_agrees_with_the_gyro(ouster: tuple[Signal, Signal, list[dict[str, Any]]]) -> None:
    """Mean gyro rate over each 100 ms interval vs the ICP rate (both in the sensor frame): the
    vehicle pitches at about -0.03 rad/s; ICP and gyro agree to about 0.01 rad/s (0.06° per scan)."""
    gyro, rate, _ = ouster
    half = 50_000_000
    for t, w in zip(rate.stamps_ns, rate.values, strict=True):
        m = (gyro.stamps_ns >= t - half) & (gyro.stamps_ns < t + half)
        assert m.sum() == 10  # 100 Hz IMU
        assert np.linalg.norm(gyro.values[m].mean(axis=0) - w) < 0.02
    assert np.all(rate.values[:, 1] < -0.01)  # the pitch rate the gyro also sees


@pytest.mark.parametrize("method", ["xcorr", "dtw", "cca"])
def test_offset_is_refused_as_too_short(ouster: tuple[Signal, Signal, list[dict[str, Any]]],
                                        method: str) -> None:
    gyro, rate, _ = ouster
    if method == "cca":
        a, b = gyro, rate
    else:  # the pitch axis carries the motion
        a = Signal(gyro.stamps_ns, gyro.values[:, 1], "gyro_y")
        b = Signal(rate.stamps_ns, rate.values[:, 1], "lidar_y")
    est = estimate_time_offset(a, b, method=method, max_lag_ns=50_000_000)
    assert est.verdict is Verdict.TOO_SHORT, est.diagnostics
    assert est.offset_ns is None and est.uncertainty_ns is None


def test_lidar_rotation_rate_bad_input() -> None:
    rng = np.random.default_rng(5)
    cloud = rng.uniform(-10, 10, size=(500, 3))
    with pytest.raises(CalibrationError, match="2 stamps but 1 clouds"):
        lidar_rotation_rate(np.array([0, 100_000_000]), [cloud])
    with pytest.raises(CalibrationError, match="at least two scans"):
        lidar_rotation_rate(np.array([0]), [cloud])
    bad = cloud.copy()
    bad[3, 1] = np.nan
    with pytest.raises(CalibrationError, match="non-finite"):
        lidar_rotation_rate(np.array([0, 100_000_000]), [cloud, bad])
    with pytest.raises(CalibrationError, match=r"\(N >= 10, 3\)"):
        lidar_rotation_rate(np.array([0, 100_000_000]), [cloud, cloud[:, :2]])


def test_unregistrable_scans_give_a_gap_not_a_rate() -> None:
    """Two unrelated random clouds: ICP fitness stays low and the rate is NaN (masked later)."""
    rng = np.random.default_rng(6)
    a = rng.uniform(-20, 20, size=(3000, 3))
    b = rng.uniform(-20, 20, size=(3000, 3)) + np.array([100.0, 0.0, 0.0])
    sig, info = lidar_rotation_rate(np.array([0, 100_000_000]), [a, b], voxel_m=0.5)
    assert info[0]["fitness"] < 0.3
    assert np.isnan(sig.values).all()


def test_log_so3_roundtrip_small_rotation() -> None:
    from edgefuse.rig.transform import rotation_from_rpy

    R = rotation_from_rpy([0.0, -0.2, 0.05], degrees=True)
    assert np.isclose(np.linalg.norm(log_so3(R)), np.radians(angle_deg(R)))
