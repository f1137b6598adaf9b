"""Rotation between two sensors from paired angular rates (SYNTHETIC rates)."""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_calibration.spatial import rotation_from_rates
from edgefuse_calibration.spatial._common import exp_so3

from edgefuse.errors import CalibrationError


def test_rotation_recovered() -> None:
    rng = np.random.default_rng(0)
    R = exp_so3([0.3, -1.0, 2.0])
    wb = rng.normal(0, 0.8, (500, 3))
    wa = wb @ R.T + rng.normal(0, 0.01, (500, 3))
    wa[10] = np.nan
    res = rotation_from_rates(wa, wb)
    assert res.verdict == "ok"
    assert res.T is not None
    ang = np.degrees(np.arccos((np.trace(res.T.R @ R.T) - 1) / 2))
    assert ang < 0.1
    assert res.metrics["n_samples"] == 499


def test_single_axis_motion_refused() -> None:
    rng = np.random.default_rng(1)
    wb = np.zeros((300, 3))
    wb[:, 2] = rng.normal(0, 1.0, 300)
    res = rotation_from_rates(wb, wb)
    assert res.verdict == "refused"
    assert "one axis" in res.reasons[0]


def test_no_motion_refused_and_bad_shape() -> None:
    res = rotation_from_rates(np.zeros((100, 3)), np.zeros((100, 3)))
    assert res.verdict == "refused"
    assert "excitation" in res.reasons[0]
    with pytest.raises(CalibrationError):
        rotation_from_rates(np.zeros((10, 3)), np.zeros((9, 3)))


def test_constant_gyro_bias_estimated() -> None:
    rng = np.random.default_rng(4)
    R = exp_so3([0.2, 0.5, -1.2])
    wb = rng.normal(0, 0.6, (400, 3))
    bias = np.array([0.05, -0.08, 0.1])
    wa = wb @ R.T + rng.normal(0, 0.005, (400, 3))
    res = rotation_from_rates(wa, wb + bias)  # b is the biased gyro
    assert res.ok and res.T is not None
    assert np.degrees(np.arccos(np.clip((np.trace(res.T.R @ R.T) - 1) / 2, -1, 1))) < 0.1
    np.testing.assert_allclose(res.metrics["rate_offset_rad_s"], -R @ bias, atol=0.003)


def test_unrelated_streams_refused() -> None:
    rng = np.random.default_rng(5)
    res = rotation_from_rates(rng.normal(0, 0.5, (300, 3)), rng.normal(0, 0.5, (300, 3)))
    assert res.verdict == "refused" and res.T is None
    assert "explain only" in res.reasons[0]


def test_bias_alone_is_not_motion() -> None:
    rng = np.random.default_rng(6)
    still = rng.normal(0, 0.003, (300, 3))
    res = rotation_from_rates(still, still + np.array([0.0, 0.02, 0.076]))  # a resting, biased gyro
    assert res.verdict == "refused"
    assert "insufficient excitation" in res.reasons[0]


def test_noisy_but_determined_rotation_is_accepted() -> None:
    # noise lowers the explained variance (here ~80 %) but the rotation is still well determined
    rng = np.random.default_rng(7)
    R = exp_so3([0.4, -0.2, 0.9])
    wb = rng.normal(0, 0.3, (3000, 3))
    wa = wb @ R.T + rng.normal(0, 0.15, (3000, 3))
    res = rotation_from_rates(wa, wb)
    assert res.ok and res.T is not None, res.reasons
    assert res.metrics["explained_variance"] < 0.9
    err = np.degrees(np.arccos(np.clip((np.trace(res.T.R @ R.T) - 1) / 2, -1, 1)))
    assert err < 3 * res.metrics["rot_std_deg"]


def test_too_noisy_rotation_is_refused_as_not_determined() -> None:
    rng = np.random.default_rng(8)
    R = exp_so3([0.4, -0.2, 0.9])
    wb = rng.normal(0, 0.25, (40, 3))
    wa = wb @ R.T + rng.normal(0, 0.12, (40, 3))
    res = rotation_from_rates(wa, wb, min_explained=0.0)
    assert res.verdict == "refused" and res.T is None
    assert any("rotation not determined" in r for r in res.reasons), res.reasons


def test_one_sensor_vibrating_while_the_other_is_still_is_refused() -> None:
    rng = np.random.default_rng(9)
    gyro = rng.normal(0, 0.2, (500, 3))          # vibration on the IMU
    camera = rng.normal(0, 0.004, (500, 3))      # the camera barely turns
    res = rotation_from_rates(camera, gyro, a_frame="cam", b_frame="imu")
    assert res.verdict == "refused"
    assert "insufficient excitation: the cam rates" in res.reasons[0]
