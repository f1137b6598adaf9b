"""Kalman filter vs filterpy, CTRV EKF/UKF behaviour, bad measurements."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter as FilterpyKF

from edgefuse.objects import FilterError, KalmanFilter, constant_velocity_model
from edgefuse.objects import _kf_kernels as kfk


def _setup(kf: KalmanFilter | FilterpyKF, F: np.ndarray, Q: np.ndarray, H: np.ndarray) -> None:
    kf.x = np.zeros(6) if isinstance(kf, KalmanFilter) else np.zeros((6, 1))
    kf.P = np.eye(6) * 10.0
    kf.F, kf.Q, kf.H, kf.R = F.copy(), Q.copy(), H.copy(), np.diag([0.25, 0.3, 0.5])


def test_run_equals_filterpy() -> None:
    rng = np.random.default_rng(21)
    F, Q, H = constant_velocity_model(0.05, 3, q=0.7)
    zs = np.cumsum(rng.normal(0, 0.2, (3000, 3)), axis=0) + rng.normal(0, 0.5, (3000, 3))
    ours = KalmanFilter(6, 3)
    _setup(ours, F, Q, H)
    xs, Ps = ours.run(zs, store_cov=True)
    ref = FilterpyKF(6, 3)
    _setup(ref, F, Q, H)
    ref_x = np.empty((3000, 6))
    for k in range(3000):
        ref.predict()
        ref.update(zs[k])
        ref_x[k] = ref.x.ravel()
    np.testing.assert_allclose(xs, ref_x, rtol=0, atol=1e-9)
    assert Ps is not None
    np.testing.assert_allclose(Ps[-1], ref.P, rtol=0, atol=1e-9)
    # step-by-step API gives the same states
    step = KalmanFilter(6, 3)
    _setup(step, F, Q, H)
    for k in range(50):
        step.predict()
        assert step.update(zs[k])
    np.testing.assert_allclose(step.x, ref_x[49], atol=1e-12)


def test_bad_measurements_are_rejected_and_counted() -> None:
    F, Q, H = constant_velocity_model(0.1, 3)
    kf = KalmanFilter(6, 3)
    _setup(kf, F, Q, H)
    kf.predict()
    x0 = kf.x.copy()
    assert not kf.update([np.nan, 0, 0])
    assert not kf.update([0, 0, 0], R=np.array([[1.0, 2, 0], [2, 1, 0], [0, 0, 1]]))  # not PSD
    assert not kf.update([0, 0, 0], R=np.full((3, 3), np.nan))
    np.testing.assert_array_equal(kf.x, x0)
    assert kf.rejected == {"non_finite_measurement": 1, "bad_covariance": 2}
    zs = np.zeros((5, 3))
    zs[2] = np.inf
    xs, _ = kf.run(zs)
    assert np.all(np.isfinite(xs)) and kf.rejected["skipped_update"] == 1
    with pytest.raises(FilterError):
        kf.update([0.0, 0.0])
    with pytest.raises(FilterError):
        kf.run(np.zeros((4, 2)))
    with pytest.raises(FilterError, match="F has shape"):
        kf.F = np.eye(5)
    assert kf.F.shape == (6, 6)


def test_ctrv_ekf_and_ukf_agree_and_follow_a_turn() -> None:
    rng = np.random.default_rng(4)
    dt, v, w = 0.1, 10.0, 0.3
    truth = np.array([0.0, 0.0, 0.0, v, w])
    H = np.zeros((2, 5))
    H[0, 0] = H[1, 1] = 1.0
    R = np.eye(2) * 0.04
    states = {}
    for kind in ("ekf", "ukf"):
        x = np.array([0.0, 0.0, 0.0, 8.0, 0.0])
        P = np.diag([0.1, 0.1, 0.1, 4.0, 0.25])
        ws = kfk._kf_workspace(5, 2)
        t = truth.copy()
        r = np.random.default_rng(4)
        for _ in range(100):
            nxt = np.empty(5)
            kfk._ctrv_f(t, dt, nxt)
            t = nxt
            if kind == "ekf":
                kfk._ekf_ctrv_predict(x, P, dt, 1.0, 0.2)
            else:
                kfk._ukf_ctrv_predict(x, P, dt, 1.0, 0.2, 1.0, 2.0, 0.0)
            assert kfk._kf_update(x, P, t[:2] + r.normal(0, 0.2, 2), H, R, ws)
        states[kind] = x.copy()
        assert np.all(np.linalg.eigvalsh(P) > 0)
        assert abs(x[3] - v) < 0.5 and abs(x[4] - w) < 0.05
        assert np.hypot(*(x[:2] - t[:2])) < 0.5
    _ = rng
    np.testing.assert_allclose(states["ekf"][3:], states["ukf"][3:], atol=0.1)
