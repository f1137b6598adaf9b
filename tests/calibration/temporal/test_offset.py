"""Offset estimators on synthetic signals: accuracy, sign convention, and every bad-input case."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from edgefuse_calibration.temporal import (
    OnlineOffsetEstimator,
    Signal,
    Verdict,
    estimate_offset_cca,
    estimate_time_offset,
)

from edgefuse.errors import CalibrationError

from .conftest import sample, smooth_noise, stamps

METHODS = ["xcorr", "dtw"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("offset_s", [0.0371, -0.0123, 0.2])
def test_recovers_known_offset_with_different_rates(pair_factory: Any, method: str, offset_s: float) -> None:
    a, b, truth = pair_factory(offset_s=offset_s, rate_a=100.0, rate_b=30.0, seed=2)
    est = estimate_time_offset(a, b, method=method)
    assert est.verdict is Verdict.OK, est.diagnostics.get("reason")
    assert est.offset_ns is not None and est.uncertainty_ns is not None
    assert abs(est.offset_ns - truth) < 2_000_000
    assert abs(est.offset_ns - truth) < 4 * est.uncertainty_ns + 1_000_000


@pytest.mark.parametrize("method", METHODS)
def test_nan_gaps_are_masked_not_bridged(pair_factory: Any, method: str) -> None:
    a, b, truth = pair_factory(offset_s=0.05, seed=3)
    vb = b.values.copy()
    vb[100:180] = np.nan  # a 2.7 s hole
    vb[900:905] = np.nan
    est = estimate_time_offset(a, Signal(b.stamps_ns, vb, "b"), method=method)
    assert est.ok and est.offset_ns is not None
    assert abs(est.offset_ns - truth) < 2_000_000


def test_too_short_overlap(pair_factory: Any) -> None:
    a, b, _ = pair_factory(duration_s=60.0, seed=4)
    est = estimate_time_offset(a.window(0, 1_000_000_000), b.window(0, 1_000_000_000))
    assert est.verdict is Verdict.TOO_SHORT and est.offset_ns is None


def test_too_few_samples(pair_factory: Any) -> None:
    a, b, _ = pair_factory(seed=4)
    est = estimate_time_offset(a, Signal(b.stamps_ns[:5], b.values[:5], "b"))
    assert est.verdict is Verdict.TOO_SHORT


@pytest.mark.parametrize("method", ["xcorr", "dtw", "cca"])
def test_no_overlap(pair_factory: Any, method: str) -> None:
    a, b, _ = pair_factory(seed=5)
    est = estimate_time_offset(a, b.shifted(120_000_000_000), method=method)
    assert est.verdict is Verdict.NO_OVERLAP and est.offset_ns is None


@pytest.mark.parametrize("method", ["xcorr", "dtw", "cca"])
def test_no_motion(pair_factory: Any, method: str) -> None:
    a, b, _ = pair_factory(seed=6)
    rng = np.random.default_rng(6)
    still = Signal(b.stamps_ns, rng.normal(scale=0.01, size=b.values.shape), "still")
    assert estimate_time_offset(a, still, method=method).verdict is Verdict.INSUFFICIENT_EXCITATION
    flat = Signal(b.stamps_ns, np.zeros(b.values.shape), "flat")
    assert estimate_time_offset(a, flat, method=method).verdict is Verdict.INSUFFICIENT_EXCITATION


def test_unrelated_motion_is_refused() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(0, 60, 0.01)
    a = Signal(stamps(t), smooth_noise(rng, t.size, 1, 40, 0.3)[:, 0], "a")
    b = Signal(stamps(t), smooth_noise(rng, t.size, 1, 40, 0.3)[:, 0], "b")
    est = estimate_time_offset(a, b)
    assert not est.ok and est.offset_ns is None
    assert est.verdict in (Verdict.INSUFFICIENT_EXCITATION, Verdict.AMBIGUOUS)


def test_periodic_motion_is_ambiguous() -> None:
    t = np.arange(0, 30, 0.01)
    rng = np.random.default_rng(8)
    a = Signal(stamps(t), np.sin(2 * np.pi * 2.0 * t) + rng.normal(scale=0.01, size=t.size), "a")
    b = Signal(stamps(t), np.sin(2 * np.pi * 2.0 * (t - 0.03)) + rng.normal(scale=0.01, size=t.size), "b")
    est = estimate_time_offset(a, b, max_lag_ns=1_000_000_000)
    assert est.verdict is Verdict.AMBIGUOUS and est.offset_ns is None
    assert "second peak" in est.diagnostics["reason"]


def test_peak_at_search_edge_is_ambiguous(pair_factory: Any) -> None:
    a, b, _ = pair_factory(offset_s=0.34, seed=9)
    est = estimate_time_offset(a, b, max_lag_ns=300_000_000)
    assert est.verdict is Verdict.AMBIGUOUS and "edge" in est.diagnostics["reason"]


def test_non_monotonic_and_duplicate_stamps_raise() -> None:
    with pytest.raises(CalibrationError, match="non-monotonic stamps at index 2"):
        Signal(np.array([0, 10, 5, 20]), np.zeros(4), "x")
    with pytest.raises(CalibrationError, match="duplicate stamps at index 1"):
        Signal(np.array([0, 0, 5]), np.zeros(3), "x")
    with pytest.raises(CalibrationError, match="integer"):
        Signal(np.array([0.0, 1.0]), np.zeros(2), "x")
    with pytest.raises(CalibrationError, match="values must be"):
        Signal(np.array([0, 1]), np.zeros(3), "x")


def test_xcorr_rejects_multichannel(pair_factory: Any) -> None:
    a, b, _ = pair_factory(k=3)
    with pytest.raises(CalibrationError, match="cca"):
        estimate_time_offset(a, b, method="xcorr")
    with pytest.raises(CalibrationError, match="unknown time-offset method"):
        estimate_time_offset(a, b, method="magic")


def test_cca_recovers_offset_and_rotation(pair_factory: Any) -> None:
    from edgefuse.rig.transform import rotation_from_rpy

    rng = np.random.default_rng(10)
    tt = np.arange(-5.0, 65.0, 0.001)
    truth = smooth_noise(rng, tt.size, 3, 300, 0.3)
    R_a_from_b = rotation_from_rpy([20.0, -35.0, 110.0], degrees=True)
    ta = np.arange(0.0, 60.0, 0.005)          # 200 Hz gyro (frame a)
    tb = np.arange(0.02, 60.0, 0.05)          # 20 Hz camera rate (frame b), stamped 41.5 ms late
    va = sample(ta, tt, truth) + rng.normal(scale=0.01, size=(ta.size, 3))
    vb = sample(tb - 0.0415, tt, truth) @ R_a_from_b + rng.normal(scale=0.01, size=(tb.size, 3))
    est = estimate_offset_cca(Signal(stamps(ta), va, "gyro"), Signal(stamps(tb), vb, "cam"),
                              max_lag_ns=300_000_000)
    assert est.ok and est.offset_ns is not None
    assert abs(est.offset_ns - (-41_500_000)) < 2_000_000
    R = est.diagnostics["R_a_from_b"]
    err = np.degrees(np.arccos(np.clip((np.trace(R.T @ R_a_from_b) - 1) / 2, -1, 1)))
    assert err < 0.5
    assert est.diagnostics["canonical_correlations"][0] > 0.95


def test_online_estimator_flags_drift() -> None:
    rng = np.random.default_rng(12)
    tt = np.arange(-2.0, 125.0, 0.001)
    truth = smooth_noise(rng, tt.size, 1, 300, 0.3)[:, 0]
    ta = np.arange(0.0, 120.0, 0.01)
    tb = np.arange(0.0, 120.0, 0.03)
    # b's delay jumps from 20 ms to 80 ms at t = 60 s
    delay = np.where(tb < 60.0, 0.02, 0.08)
    va = np.interp(ta, tt, truth) + rng.normal(scale=0.01, size=ta.size)
    vb = np.interp(tb - delay, tt, truth) + rng.normal(scale=0.01, size=tb.size)
    est = OnlineOffsetEstimator(window_ns=20_000_000_000, hop_ns=5_000_000_000, drift_threshold_ns=10_000_000)
    ia = ib = 0
    while ia < ta.size or ib < tb.size:
        if ib >= tb.size or (ia < ta.size and ta[ia] <= tb[ib]):
            est.push_a(round(ta[ia] * 1e9), va[ia])
            ia += 1
        else:
            est.push_b(round(tb[ib] * 1e9), vb[ib])
            ib += 1
    hist = est.history
    assert len(hist) >= 15
    early = [u for u in hist if u.t_ns < 55e9 and u.estimate.ok]
    late = [u for u in hist if u.t_ns > 85e9 and u.estimate.ok]
    assert early and late
    early_ns = [u.estimate.offset_ns for u in early]
    late_ns = [u.estimate.offset_ns for u in late]
    assert None not in early_ns and None not in late_ns
    assert all(not u.drift for u in early) and all(u.drift for u in late)
    assert all(abs(o + 20_000_000) < 3_000_000 for o in early_ns if o is not None)
    assert all(abs(o + 80_000_000) < 3_000_000 for o in late_ns if o is not None)
    assert est.drift_detected
    with pytest.raises(CalibrationError, match="not after"):
        est.push_a(0, 0.0)
