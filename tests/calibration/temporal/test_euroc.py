"""EuRoC V1_01 'ForOnlineAlignment' (40 s of strong motion): gyro vs ground-truth orientation rate.

The positive real-data case for rotation-rate alignment.  The ground truth (``gt0``, 40 Hz) is
EuRoC's state estimate, stamped on the IMU clock, so the expected offset is ≈ 0; the frames coincide
(``T_BS`` = identity), so CCA's rotation must come out ≈ identity.  This excerpt has no camera images
(see SUBSET.md): the camera path itself is checked on the micro set in test_real.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_calibration.temporal import (
    Signal,
    Verdict,
    estimate_time_offset,
    inject_offset,
    rotation_rate_from_orientations,
)

from edgefuse.errors import CalibrationError
from edgefuse.rig.transform import rotation_from_quat_xyzw

from .conftest import DATA

ROOT = DATA / "euroc_v101_micro/ForOnlineAlignment/real_data/mav0"
# max(2 ms, a tenth of the slower stream's period): gt0 runs at 40 Hz -> 2.5 ms
TOLERANCE_NS = 2_500_000
MAX_LAG_NS = 200_000_000


def euroc_gyro_and_gt_rate() -> tuple[Signal, Signal]:
    imu = np.loadtxt(ROOT / "imu0/data.csv", delimiter=",", comments="#")
    gt = np.loadtxt(ROOT / "gt0/data_imu_span.csv", delimiter=",", comments="#")
    gyro = Signal(imu[:, 0].astype(np.int64), imu[:, 1:4], "imu0_gyro", "rad/s")
    # gt0 quaternion columns are (w, x, y, z), body (= IMU) to world, printed with 6 decimals
    # (norms off by up to ~1e-5): normalise before converting
    q = gt[:, [5, 6, 7, 4]]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    R = np.stack([rotation_from_quat_xyzw(x) for x in q])
    rate = rotation_rate_from_orientations(gt[:, 0].astype(np.int64), R, name="gt0_rotation_rate")
    return gyro, rate


@pytest.fixture(scope="module")
def euroc() -> tuple[Signal, Signal]:
    return euroc_gyro_and_gt_rate()


def norm(s: Signal) -> Signal:
    return Signal(s.stamps_ns, np.linalg.norm(s.values, axis=1), s.name + "_norm", s.unit)


def test_gt_rate_is_the_gyro_minus_bias(euroc: tuple[Signal, Signal]) -> None:
    """The derived body rate matches the gyro sample by sample (strong motion: up to 2 rad/s)."""
    gyro, rate = euroc
    assert np.nanmax(np.abs(rate.values)) > 1.0
    g = np.stack([np.interp(rate.stamps_ns, gyro.stamps_ns, gyro.values[:, i]) for i in range(3)], axis=1)
    resid = g - rate.values
    inside = (rate.stamps_ns > gyro.stamps_ns[0]) & (rate.stamps_ns < gyro.stamps_ns[-1])
    # gyro = true rate + bias: the median residual is the gyro bias that gt0 itself lists,
    # b_w = (-0.002153, 0.020744, 0.075806) rad/s (measured: -0.0025, 0.0214, 0.0755)
    assert np.all(np.abs(np.median(resid[inside], axis=0) - [-0.002153, 0.020744, 0.075806]) < 0.003)
    assert np.sqrt(np.mean(resid[inside] ** 2)) < 0.1


@pytest.mark.parametrize("method", ["xcorr", "dtw", "cca"])
def test_gyro_vs_ground_truth_offset_is_zero(euroc: tuple[Signal, Signal], method: str) -> None:
    gyro, rate = euroc
    a, b = (gyro, rate) if method == "cca" else (norm(gyro), norm(rate))
    est = estimate_time_offset(a, b, method=method, max_lag_ns=MAX_LAG_NS)
    assert est.verdict is Verdict.OK, est.diagnostics
    assert est.offset_ns is not None and est.uncertainty_ns is not None
    # measured: xcorr +0.5 ± 0.8 ms, dtw +0.1 ± 0.4 ms, cca -0.7 ± 0.5 ms
    assert abs(est.offset_ns) < 2_000_000
    assert est.uncertainty_ns < 2_000_000
    if method == "cca":
        assert est.diagnostics["rotation_angle_deg"] < 0.5  # T_BS is the identity
        assert est.diagnostics["canonical_correlations"][0] > 0.99


@pytest.mark.parametrize("method", ["xcorr", "cca"])
def test_injected_offsets_recovered(euroc: tuple[Signal, Signal], method: str) -> None:
    gyro, rate = euroc
    a, b = (gyro, rate) if method == "cca" else (norm(gyro), norm(rate))
    base = estimate_time_offset(a, b, method=method, max_lag_ns=MAX_LAG_NS)
    assert base.ok and base.offset_ns is not None
    for ms in (3.3, -7.9, 25.0, -61.7, 120.4):
        est = estimate_time_offset(a, inject_offset(b, int(ms * 1e6)), method=method, max_lag_ns=MAX_LAG_NS)
        assert est.ok and est.offset_ns is not None, (ms, est.diagnostics)
        assert abs(est.offset_ns - base.offset_ns - ms * 1e6) <= TOLERANCE_NS, (ms, est.offset_ns)


def test_still_segment_is_refused(euroc: tuple[Signal, Signal]) -> None:
    """The same sensors with the motion removed (a hover-like segment made by keeping only the
    bias-level noise) must not produce a number."""
    gyro, rate = euroc
    rng = np.random.default_rng(3)
    still_g = Signal(gyro.stamps_ns, 0.076 + rng.normal(scale=0.003, size=len(gyro)), "still_gyro")
    still_r = Signal(rate.stamps_ns, rng.normal(scale=0.003, size=len(rate)), "still_gt")
    est = estimate_time_offset(still_g, still_r, max_lag_ns=MAX_LAG_NS)
    assert est.verdict is Verdict.INSUFFICIENT_EXCITATION and est.offset_ns is None


def test_orientation_rate_bad_input() -> None:
    st = np.arange(5, dtype=np.int64) * 25_000_000
    with pytest.raises(CalibrationError, match=r"\(N, 3, 3\)"):
        rotation_rate_from_orientations(st, np.zeros((5, 4)))
    with pytest.raises(CalibrationError, match="relative rotations"):
        rotation_rate_from_orientations(st, np.tile(np.eye(3), (4, 1, 1)))
    R = np.tile(np.eye(3), (5, 1, 1))
    R[2] = np.nan
    sig = rotation_rate_from_orientations(st, R)
    assert np.isnan(sig.values[1:3]).all() and np.allclose(sig.values[[0, 3]], 0.0)
