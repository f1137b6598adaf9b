"""IMU-camera rotation from angular rates on REAL EuRoC V1_01 data.

- Strong motion (``ForOnlineAlignment``, 40 s): the real gyro against the ground-truth body rate (gt0,
  body = IMU frame) expressed in cam0's frame through EuRoC's published ``T_BS`` of cam0.  The motion,
  noise and gyro bias are real; the camera-frame rates are the ground truth rotated by the published
  extrinsic (the excerpt has no images), so the answer is known: ``R_cam0_from_imu = T_BS[:3, :3]ᵀ``.
- The micro set's camera window (4.7 s of take-off, rates from real cam0 feature tracking): too little
  rotation, which must be refused.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from edgefuse_calibration.spatial import rotation_from_rates
from edgefuse_calibration.temporal import rotation_rate_from_orientations

from edgefuse.rig.transform import rotation_from_quat_xyzw

EUROC = Path(__file__).resolve().parents[2] / "data" / "euroc_v101_micro"
ONLINE = EUROC / "ForOnlineAlignment/real_data/mav0"
GT_GYRO_BIAS = np.array([-0.002153, 0.020744, 0.075806])  # b_w listed in gt0 (rad/s, IMU frame)


def _cam0_from_imu() -> np.ndarray:
    text = (EUROC / "MicroEurocDataset/mav0/cam0/sensor.yaml").read_text()
    block = re.search(r"T_BS:.*?data:\s*\[(.*?)\]", text, re.S)
    assert block is not None
    T_imu_from_cam = np.array([float(v) for v in block.group(1).split(",")]).reshape(4, 4)
    return T_imu_from_cam[:3, :3].T


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra @ Rb.T) - 1) / 2, -1, 1))))


@pytest.fixture(scope="module")
def paired() -> tuple[np.ndarray, np.ndarray]:
    """(camera-frame ground-truth rate, gyro interpolated at the same stamps), rad/s."""
    imu = np.loadtxt(ONLINE / "imu0/data.csv", delimiter=",", comments="#")
    gt = np.loadtxt(ONLINE / "gt0/data_imu_span.csv", delimiter=",", comments="#")
    q = gt[:, [5, 6, 7, 4]]  # (w, x, y, z) -> (x, y, z, w), printed with 6 decimals: renormalise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rate = rotation_rate_from_orientations(gt[:, 0].astype(np.int64),
                                           np.stack([rotation_from_quat_xyzw(x) for x in q]))
    t = rate.stamps_ns
    ok = (t > imu[0, 0]) & (t < imu[-1, 0]) & np.isfinite(rate.values).all(axis=1)
    gyro = np.stack([np.interp(t[ok], imu[:, 0], imu[:, 1 + i]) for i in range(3)], axis=1)
    return rate.values[ok] @ _cam0_from_imu().T, gyro


def test_published_cam0_rotation_recovered_from_real_gyro(paired: tuple[np.ndarray, np.ndarray]) -> None:
    cam, gyro = paired
    res = rotation_from_rates(cam, gyro, a_frame="cam0", b_frame="imu0")
    assert res.ok, res.reasons
    assert res.T is not None
    err = _angle_deg(res.T.R, _cam0_from_imu())
    # measured: 0.14 deg, reported std 0.09 deg
    assert err < 0.3
    assert err < 3 * res.metrics["rot_std_deg"]
    # the estimated rate offset is the gyro bias (as gt0 lists it) seen from the camera frame
    np.testing.assert_allclose(res.metrics["rate_offset_rad_s"], -_cam0_from_imu() @ GT_GYRO_BIAS, atol=0.005)


def test_ignoring_the_gyro_bias_costs_accuracy(paired: tuple[np.ndarray, np.ndarray]) -> None:
    cam, gyro = paired
    with_bias = rotation_from_rates(cam, gyro)
    without = rotation_from_rates(cam, gyro, estimate_bias=False)
    assert with_bias.T is not None and without.T is not None
    R = _cam0_from_imu()
    assert _angle_deg(without.T.R, R) > 2 * _angle_deg(with_bias.T.R, R)  # measured 0.49 vs 0.14 deg
    assert "rate_offset_rad_s" not in without.metrics


def test_take_off_window_of_real_camera_rates_is_refused() -> None:
    imu = np.loadtxt(EUROC / "MicroEurocDataset/mav0/imu0/data_first1000.csv", delimiter=",", comments="#")
    with open(EUROC / "derived_cam0_rotation_rate.csv", encoding="utf-8") as fh:
        rows = np.array([[float(x) for x in r[:4]] for r in csv.reader(fh) if not r[0].startswith("#")])
    gyro = np.stack([np.interp(rows[:, 0], imu[:, 0], imu[:, 1 + i]) for i in range(3)], axis=1)
    res = rotation_from_rates(rows[:, 1:4], gyro, a_frame="cam0", b_frame="imu0")
    assert res.verdict == "refused" and res.T is None
    # the camera hardly turns (< 0.031 rad/s); the gyro's vibration alone is not shared motion
    assert "insufficient excitation: the cam0 rates" in res.reasons[0], res.reasons
    assert res.metrics["rate_rms_per_axis_rad_s_cam0"][1] < 0.02
