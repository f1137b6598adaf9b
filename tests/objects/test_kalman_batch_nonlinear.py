"""KalmanFilter.run's final state and covariance; the batch EKF / UKF over Numba user models against
filterpy (the oracle) on a radar range/azimuth/elevation problem whose azimuth crosses ±π; rejected
steps (NaN measurements, S not positive definite, non-finite model outputs) counted, never raised; bad
arguments refused with FilterError."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import pytest
from filterpy.kalman import ExtendedKalmanFilter, MerweScaledSigmaPoints, UnscentedKalmanFilter
from filterpy.kalman import KalmanFilter as FilterpyKF

from edgefuse.objects import (
    BatchEKF,
    BatchUKF,
    FilterError,
    KalmanFilter,
    angle_mean,
    angle_residual,
    constant_velocity_model,
    wrap_angle,
)

F64 = npt.NDArray[np.float64]
DT = 0.1


# -- the radar model, as Numba functions (ours) and as plain Python (filterpy) ---------------------------
@numba.njit(cache=True)
def cv_f(x: F64, dt: float, out: F64) -> None:
    for i in range(3):
        out[i] = x[i] + dt * x[3 + i]
        out[3 + i] = x[3 + i]


@numba.njit(cache=True)
def cv_F(x: F64, dt: float, out: F64) -> None:  # noqa: N802
    out[:, :] = 0.0
    for i in range(6):
        out[i, i] = 1.0
    for i in range(3):
        out[i, 3 + i] = dt


@numba.njit(cache=True)
def radar_h(x: F64, out: F64) -> None:
    px, py, pz = x[0], x[1], x[2]
    out[0] = math.sqrt(px * px + py * py + pz * pz)
    out[1] = math.atan2(py, px)
    out[2] = math.atan2(pz, math.sqrt(px * px + py * py))


@numba.njit(cache=True)
def radar_H(x: F64, out: F64) -> None:  # noqa: N802
    px, py, pz = x[0], x[1], x[2]
    rho2 = px * px + py * py
    rho = math.sqrt(rho2)
    r2 = rho2 + pz * pz
    r = math.sqrt(r2)
    out[:, :] = 0.0
    out[0, 0] = px / r
    out[0, 1] = py / r
    out[0, 2] = pz / r
    out[1, 0] = -py / rho2
    out[1, 1] = px / rho2
    out[2, 0] = -px * pz / (r2 * rho)
    out[2, 1] = -py * pz / (r2 * rho)
    out[2, 2] = rho / r2


def py_h(x: F64) -> F64:
    v = np.ravel(x)
    px, py, pz = float(v[0]), float(v[1]), float(v[2])
    return np.array([math.sqrt(px * px + py * py + pz * pz), math.atan2(py, px), math.atan2(pz, math.hypot(px, py))])


def py_H(x: F64) -> F64:  # noqa: N802
    out = np.empty((3, 6))
    radar_H(np.ascontiguousarray(np.ravel(x), dtype=np.float64), out)
    return out


def py_residual(a: F64, b: F64) -> F64:
    y = np.subtract(a, b)
    y[1] = (y[1] + math.pi) % (2 * math.pi) - math.pi
    return y


def radar(steps: int, seed: int) -> dict[str, Any]:
    """A target circling the radar at 5 km, 50 m/s, starting at azimuth 3.0 rad: the azimuth crosses
    ±π after ~14 s.  Returns truth, measurements (range, azimuth, elevation) and the filter set-up."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1) * DT
    truth = np.stack([5000 * np.cos(0.01 * t + 3.0), 5000 * np.sin(0.01 * t + 3.0), 1000 + 200 * np.sin(0.01 * t)], 1)
    zs = np.stack([np.linalg.norm(truth, axis=1), np.arctan2(truth[:, 1], truth[:, 0]),
                   np.arctan2(truth[:, 2], np.hypot(truth[:, 0], truth[:, 1]))], 1)
    zs += rng.normal(0, 1, zs.shape) * np.array([5.0, 1e-3, 1e-3])
    zs[:, 1] = (zs[:, 1] + np.pi) % (2 * np.pi) - np.pi
    F, Q, _ = constant_velocity_model(DT, 3, q=1.0)
    R = np.diag([25.0, 1e-6, 1e-6])
    x0 = np.array([truth[0, 0] + 30, truth[0, 1] - 20, truth[0, 2] + 10, 0.0, -50.0, 0.0])
    P0 = np.diag([400.0, 400, 400, 900, 900, 100])
    assert np.sum(np.abs(np.diff(zs[:, 1])) > np.pi) >= 1  # the azimuth wraps at least once
    return {"truth": truth, "zs": zs, "F": F, "Q": Q, "R": R, "x0": x0, "P0": P0}


# -- KalmanFilter.run ------------------------------------------------------------------------------------
def test_run_returns_the_final_state_and_covariance_without_storing_them_all() -> None:
    rng = np.random.default_rng(5)
    F, Q, H = constant_velocity_model(0.05, 3, q=0.7)
    R = np.diag([0.25, 0.3, 0.5])
    zs = np.cumsum(rng.normal(0, 0.2, (2000, 3)), axis=0) + rng.normal(0, 0.5, (2000, 3))
    zs[[10, 500]] = np.nan
    kf = KalmanFilter(6, 3)
    kf.F, kf.Q, kf.H, kf.R, kf.P = F, Q, H, R, np.eye(6) * 10.0
    ref = FilterpyKF(6, 3)
    ref.x, ref.P, ref.F, ref.Q, ref.H, ref.R = np.zeros((6, 1)), np.eye(6) * 10.0, F, Q, H, R
    for z in zs:
        ref.predict()
        ref.update(None if np.isnan(z).any() else z)
    res = kf.run(zs)
    assert res.Ps is None
    assert res.skipped == 2
    np.testing.assert_allclose(res.x, ref.x[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.P, ref.P, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.x, res.xs[-1])
    stored = kf.run(zs, store_cov=True)  # the history, when asked for, ends with the same covariance
    assert stored.Ps is not None
    np.testing.assert_array_equal(stored.Ps[-1], res.P)
    xs, Ps = kf.run(zs)  # still unpacks like the (xs, Ps) tuple it used to be
    np.testing.assert_array_equal(xs, res.xs)
    assert Ps is None
    np.testing.assert_array_equal(kf.x, np.zeros(6))  # the filter is untouched ...
    kf.run(zs[:1000], commit=True)  # ... unless committed: two halves equal the whole
    second = kf.run(zs[1000:], commit=True)
    np.testing.assert_array_equal(second.P, res.P)
    np.testing.assert_array_equal(kf.x, res.x)
    empty = KalmanFilter(6, 3).run(np.empty((0, 3)))
    np.testing.assert_array_equal(empty.P, np.eye(6))


# -- EKF / UKF vs filterpy -------------------------------------------------------------------------------
def test_batch_ekf_equals_filterpy_on_the_radar_problem_with_skipped_rows() -> None:
    prob = radar(2500, seed=1)
    zs = prob["zs"].copy()
    # the first step after the target crossed ±π measures just before the wrap (-2 σ): predicted and
    # measured azimuths are then ~2π apart unless the residual wraps
    k = int(np.flatnonzero(np.arctan2(prob["truth"][:, 1], prob["truth"][:, 0]) < 0)[0])
    zs[k, 1] = wrap_angle(math.atan2(prob["truth"][k, 1], prob["truth"][k, 0]) - 2e-3)
    assert zs[k, 1] > 3.0
    zs[[3, 700, 701]] = np.nan
    zs[1200, 1] = np.inf
    ekf = BatchEKF(cv_f, cv_F, radar_h, radar_H, Q=prob["Q"], R=prob["R"], residual_z=angle_residual(1))
    res = ekf.run(prob["x0"], prob["P0"], zs, DT, store_cov=True)
    assert res.Ps is not None
    ref = ExtendedKalmanFilter(6, 3)
    ref.x, ref.P, ref.F, ref.Q, ref.R = prob["x0"].reshape(6, 1), prob["P0"].copy(), prob["F"], prob["Q"], prob["R"]
    for k, z in enumerate(zs):
        ref.predict()
        if np.all(np.isfinite(z)):
            ref.update(z.reshape(3, 1), py_H, lambda x: py_h(x).reshape(3, 1), residual=py_residual)
        np.testing.assert_allclose(res.xs[k], ref.x[:, 0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.Ps[k], ref.P, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.P, res.Ps[-1])
    assert res.rejected == {"missing_measurement": 4}
    assert np.flatnonzero(res.status).tolist() == [3, 700, 701, 1200]
    rmse = np.sqrt(np.mean(np.sum((res.xs[100:, :3] - prob["truth"][100:]) ** 2, axis=1)))
    assert rmse < 10.0  # it tracks through the azimuth wrap
    # the same problem with a plain-subtraction residual loses the target at the ±π crossing
    naive = BatchEKF(cv_f, cv_F, radar_h, radar_H, Q=prob["Q"], R=prob["R"]).run(prob["x0"], prob["P0"], zs, DT)
    assert np.max(np.linalg.norm(naive.xs[:, :3] - prob["truth"], axis=1)) > 100.0


@pytest.mark.parametrize(("alpha", "beta", "kappa"), [(1.0, 2.0, -3.0), (0.3, 2.0, 0.0)])
def test_batch_ukf_equals_filterpy_on_the_radar_problem(alpha: float, beta: float, kappa: float) -> None:
    prob = radar(600, seed=2)
    zs = prob["zs"].copy()
    zs[50] = np.nan
    F = prob["F"]

    def fx(x: F64, dt: float) -> F64:
        return F @ x  # type: ignore[no-any-return]

    def z_mean(sig: F64, Wm: F64) -> F64:
        z: F64 = np.dot(Wm, sig)
        z[1] = math.atan2(float(np.dot(Wm, np.sin(sig[:, 1]))), float(np.dot(Wm, np.cos(sig[:, 1]))))
        return z

    ukf = BatchUKF(cv_f, radar_h, Q=prob["Q"], R=prob["R"], alpha=alpha, beta=beta, kappa=kappa,
                   residual_z=angle_residual(1), z_mean=angle_mean(1))
    res = ukf.run(prob["x0"], prob["P0"], zs, DT, store_cov=True)
    assert res.Ps is not None
    ref = UnscentedKalmanFilter(6, 3, DT, py_h, fx, MerweScaledSigmaPoints(6, alpha, beta, kappa),
                                residual_z=py_residual, z_mean_fn=z_mean)
    ref.x, ref.P, ref.Q, ref.R = prob["x0"].copy(), prob["P0"].copy(), prob["Q"], prob["R"]
    for k, z in enumerate(zs):
        ref.predict()
        ref.update(None if np.isnan(z).any() else z)
        np.testing.assert_allclose(res.xs[k], ref.x, rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.Ps[k], ref.P, rtol=0, atol=1e-9)
    assert res.rejected == {"missing_measurement": 1}


# -- rejected steps: counted, never raised -----------------------------------------------------------------
@numba.njit(cache=True)
def ramp_f(x: F64, dt: float, out: F64) -> None:
    out[0] = x[0] + dt * x[1]
    out[1] = x[1] if x[0] < 1e6 else math.inf  # blows up far away: non-finite prediction


@numba.njit(cache=True)
def ramp_F(x: F64, dt: float, out: F64) -> None:  # noqa: N802
    out[0, 0] = 1.0
    out[0, 1] = dt
    out[1, 0] = 0.0
    out[1, 1] = 1.0


@numba.njit(cache=True, error_model="numpy")
def sqrt_h(x: F64, out: F64) -> None:
    out[0] = math.sqrt(x[0]) if x[0] >= 0.0 else math.nan  # not finite for x < 0


@numba.njit(cache=True, error_model="numpy")
def sqrt_H(x: F64, out: F64) -> None:  # noqa: N802
    out[0, 0] = 0.5 / math.sqrt(x[0]) if x[0] > 0.0 else math.nan
    out[0, 1] = 0.0


def test_bad_steps_are_counted_and_leave_the_state_alone() -> None:
    rng = np.random.default_rng(3)
    ekf = BatchEKF(ramp_f, ramp_F, sqrt_h, sqrt_H, Q=np.eye(2) * 1e-4, R=np.eye(1) * 0.01)
    ukf = BatchUKF(ramp_f, sqrt_h, Q=np.eye(2) * 1e-4, R=np.eye(1) * 0.01, alpha=1.0, kappa=1.0)
    # S = H·0·Hᵀ + 0 is not positive definite: every EKF update is rejected, the prediction kept
    r = BatchEKF(ramp_f, ramp_F, sqrt_h, sqrt_H, Q=np.zeros((2, 2)), R=np.zeros((1, 1))).run(
        np.array([4.0, 1.0]), np.zeros((2, 2)), np.ones((5, 1)), 1.0)
    assert r.rejected == {"innovation_not_pd": 5}
    np.testing.assert_array_equal(r.xs[:, 0], [5.0, 6, 7, 8, 9])
    # a zero covariance has no Cholesky factor, so the UKF has no sigma points: steps skipped
    r = ukf.run(np.array([4.0, 1.0]), np.zeros((2, 2)), np.ones((5, 1)), 1.0)
    assert r.rejected == {"sigma_points_not_pd": 5}
    np.testing.assert_array_equal(r.x, [4.0, 1.0])
    for filt in (ekf, ukf):
        # the measurement model is NaN for x < 0: those updates are rejected
        r = filt.run(np.array([1.0, -1.0]), np.eye(2) * 0.01, np.full((6, 1), 0.5), 1.0)
        assert r.rejected["nonfinite_update"] >= 4
        assert np.all(np.isfinite(r.xs))
        # a prediction that is not finite skips the step
        r = filt.run(np.array([2e6, 1.0]), np.eye(2), np.full((3, 1), 1000.0), 1.0)
        assert r.rejected == {"nonfinite_prediction": 3}
        np.testing.assert_array_equal(r.x, [2e6, 1.0])
        # random sequences with NaN / inf / huge values: the run always completes
        for _ in range(200):
            zs = rng.normal(2.0, 1.0, (20, 1)) * rng.choice([1.0, 1e150, np.nan, np.inf], (20, 1),
                                                            p=[0.85, 0.05, 0.05, 0.05])
            x0 = rng.normal(1.0, 2.0, 2)
            r = filt.run(x0, np.diag(rng.uniform(0.0, 2.0, 2)), zs, rng.uniform(0.01, 1.0))
            assert sum(r.rejected.values()) == np.count_nonzero(r.status)
            assert np.all(np.isfinite(r.x))
            assert np.all(np.isfinite(r.P))


# -- bad arguments ---------------------------------------------------------------------------------------
@numba.njit(cache=True)
def h_too_long(x: F64, out: F64) -> None:
    for i in range(out.shape[0] + 1):
        out[i] = x[0]


@numba.njit(cache=True)
def h_half(x: F64, out: F64) -> None:
    out[0] = x[0]


@numba.njit(cache=True)
def f_in_place(x: F64, dt: float, out: F64) -> None:
    x[0] += dt
    out[:] = x


@numba.njit(cache=True)
def h_returns(x: F64) -> float:
    return float(x[0])


@numba.njit(cache=True)
def h_raises(x: F64, out: F64) -> None:
    if x[0] > 100.0:
        raise ValueError("out of range")
    out[0] = x[0]
    out[1] = x[1]


@numba.njit(cache=True)
def h2(x: F64, out: F64) -> None:
    out[0] = x[0]
    out[1] = x[1]


@numba.njit(cache=True)
def H2(x: F64, out: F64) -> None:  # noqa: N802
    out[:, :] = 0.0
    out[0, 0] = 1.0
    out[1, 1] = 1.0


def test_bad_arguments_raise_filter_error() -> None:
    Q, R = np.eye(2) * 0.01, np.eye(2) * 0.1
    x0, P0, zs = np.zeros(2), np.eye(2), np.zeros((4, 2))

    def plain_h(x: F64, out: F64) -> None:
        out[:] = x

    with pytest.raises(FilterError, match=r"numba\.njit"):
        BatchEKF(ramp_f, ramp_F, plain_h, H2, Q=Q, R=R)
    with pytest.raises(FilterError, match="positive semidefinite"):
        BatchEKF(ramp_f, ramp_F, h2, H2, Q=np.diag([1.0, -1.0]), R=R)
    with pytest.raises(FilterError, match="square"):
        BatchUKF(ramp_f, h2, Q=Q, R=np.ones(2))
    with pytest.raises(FilterError, match="alpha"):
        BatchUKF(ramp_f, h2, Q=Q, R=R, alpha=0.0)
    ekf = BatchEKF(ramp_f, ramp_F, h2, H2, Q=Q, R=R)
    for bad, match in (((np.zeros(3), P0, zs, 0.1), "x0 has shape"),
                       ((x0, np.diag([1.0, -1.0]), zs, 0.1), "P0 is not"),
                       ((x0, P0, np.zeros((4, 3)), 0.1), "measurements"),
                       ((x0, P0, zs, np.ones(3)), "dt must"),
                       ((x0, P0, zs, math.nan), "dt has")):
        with pytest.raises(FilterError, match=match):
            ekf.run(*bad)
    for model, match in ((BatchEKF(ramp_f, ramp_F, h_too_long, H2, Q=Q, R=R), "writes beyond out"),
                         (BatchEKF(ramp_f, ramp_F, h_half, H2, Q=Q, R=R), r"leaves out\[1\] unwritten"),
                         (BatchEKF(f_in_place, ramp_F, h2, H2, Q=Q, R=R), "modifies its input"),
                         (BatchUKF(ramp_f, h_returns, Q=Q, R=R),  # type: ignore[arg-type]
                          r"h\(x, out\) failed .*TypeError"),
                         (BatchUKF(ramp_f, h_raises, Q=Q, R=R), r"h\(x, out\) failed .*out of range")):
        with pytest.raises(FilterError, match=match):
            model.run(np.array([200.0, 0.0]), P0, zs, 0.1)
    # a model function that raises only later, inside the compiled loop
    with pytest.raises(FilterError, match="must not raise"):
        BatchUKF(ramp_f, h_raises, Q=Q, R=R).run(np.array([99.0, 10.0]), P0, np.zeros((5, 2)), 1.0)
    with pytest.raises(FilterError, match="indices"):
        angle_residual(-1)


def test_angle_helpers() -> None:
    res = angle_residual(1)
    out = np.empty(3)
    res(np.array([1.0, 3.1, 0.0]), np.array([0.5, -3.1, 0.0]), out)
    np.testing.assert_allclose(out, [0.5, 6.2 - 2 * math.pi, 0.0], atol=1e-12)
    mean = angle_mean(0)
    sig = np.array([[math.pi - 0.01, 1.0], [-math.pi + 0.01, 3.0]])
    m = np.empty(2)
    mean(sig, np.array([0.5, 0.5]), m)
    assert abs(abs(m[0]) - math.pi) < 1e-12
    assert m[1] == 2.0
    assert wrap_angle(3 * math.pi) == -math.pi
    assert wrap_angle(0.25) == 0.25
