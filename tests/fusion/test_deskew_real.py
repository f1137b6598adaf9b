"""Deskew on the real Ouster OS-1-128 capture (tests/data/ouster_sdk_pcaps): seam and IMU variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion.deskew import ConstantVelocity, deskew, integrate_imu, so3_exp

PCAPS = Path(__file__).resolve().parents[1] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
F64 = npt.NDArray[np.floating[Any]]


@pytest.fixture(scope="module")
def capture() -> tuple[object, list[object], object, F64]:
    from edgefuse_drivers.ouster import OusterPcap

    src = OusterPcap(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json")
    poses = np.loadtxt(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt").reshape(-1, 3, 4)
    return src, list(src.scans()), src.imu_batch(), poses


def _seam(grid: F64, ok: npt.NDArray[np.bool_], s0: int) -> float:
    e = (s0 - 1) % grid.shape[0]
    both = ok[e] & ok[s0] & (grid[e, :, 2] > -1.0) & (grid[s0, :, 2] > -1.0)
    return float(np.median(np.linalg.norm(grid[e][both] - grid[s0][both], axis=1)))


def test_retimed_real_sweep_seam_closes(capture: tuple[object, list[object], object, F64]) -> None:
    """The real sweep as a static scene, re-measured with the capture's motion at the real column
    times, seam facing a wall (column 772): deskew restores the scene and closes the seam."""
    from edgefuse_drivers.ouster import xyz_lut

    src, scans, _imu, poses = capture
    scan = scans[0]
    lut = xyz_lut(src.info)  # type: ignore[attr-defined]
    world, _t, ok = scan.xyz(lut)  # type: ignore[attr-defined]
    W, H = scan.range_mm.shape  # type: ignore[attr-defined]
    v = poses[1][:, 3] / 0.1
    w = np.array([-0.0111, -0.0234, 0.0015])
    s0 = 772
    t = np.repeat(np.roll(scan.timestamp_ns, s0), H)  # type: ignore[attr-defined]
    tau = (t - t[s0 * H]) * 1e-9
    meas = np.empty_like(world)
    for i in range(0, len(world), H):
        meas[i : i + H] = (world[i : i + H] - v * tau[i]) @ so3_exp(w * tau[i])
    fixed = deskew(meas, t, ConstantVelocity(v, w), reference_time_ns="start").points
    np.testing.assert_allclose(fixed[ok], world[ok], atol=1e-6)
    g = ok.reshape(W, H)
    scene, raw, after = (_seam(p.reshape(W, H, 3), g, s0) for p in (world, meas, fixed))
    assert raw > 0.15 and scene < 0.08  # a 2.46 m/s sensor: ≈ 0.2 m step at the seam
    assert after == pytest.approx(scene, abs=1e-6)


def test_recorded_sweeps_imu_and_constant_velocity_agree(capture: tuple[object, list[object], object, F64]) -> None:
    """On the recorded sweeps, the IMU-integrated variant (gyro + the poses' velocity, sensor↔IMU
    extrinsic) and the constant-velocity variant move points alike: the gyro agrees with the poses."""
    from edgefuse_drivers.ouster import xyz_lut

    src, scans, imu, poses = capture
    info = src.info  # type: ignore[attr-defined]
    lut = xyz_lut(info)
    T_imu_from_sensor = np.linalg.inv(info.T_sensor_from_imu)
    T1 = np.vstack([poses[1], [0, 0, 0, 1.0]])
    v = T1[:3, 3] / 0.1
    ang = T1[:3, :3]
    w = np.array([ang[2, 1] - ang[1, 2], ang[0, 2] - ang[2, 0], ang[1, 0] - ang[0, 1]]) / 2 / 0.1
    scan = scans[1]
    xyz, t, ok = scan.xyz(lut)  # type: ignore[attr-defined]
    cv = deskew(xyz, t, ConstantVelocity(v, w), reference_time_ns="start").points
    motion = integrate_imu(imu.stamps_ns, imu.angular_velocity, int(t.min()), int(t.max()),  # type: ignore[attr-defined]
                           initial_velocity_mps=v)
    res = deskew(xyz, t, motion, reference_time_ns="start", T_imu_from_lidar=T_imu_from_sensor)
    assert res.n_outside == 0
    moved = np.linalg.norm(cv - xyz, axis=1)[ok]
    assert 0.2 < moved.max() < 0.6 and 0.05 < np.median(moved) < 0.25  # 2.5 m/s over 0.1 s, plus rotation
    diff = np.linalg.norm(res.points - cv, axis=1)[ok]
    assert np.median(diff) < 0.03 and np.percentile(diff, 99) < 0.1
