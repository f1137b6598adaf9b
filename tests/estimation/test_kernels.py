"""Kernels against slow, obviously-correct references: motion model, Jacobian, EKF / UKF steps."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from edgefuse.estimation import _kernels as kern

F64 = npt.NDArray[np.float64]


def _rot(r: float, p: float, y: float) -> F64:
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx  # type: ignore[no-any-return]


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def ref_propagate(x: F64, dt: float) -> F64:
    """The motion model written out plainly."""
    out = x.copy()
    R = _rot(x[3], x[4], x[5])
    out[0:3] = x[0:3] + R @ (x[6:9] * dt + 0.5 * x[12:15] * dt * dt)
    r, p = x[3], x[4]
    E = np.array([[1, math.sin(r) * math.tan(p), math.cos(r) * math.tan(p)],
                  [0, math.cos(r), -math.sin(r)],
                  [0, math.sin(r) / math.cos(p), math.cos(r) / math.cos(p)]])
    rpy = x[3:6] + E @ x[9:12] * dt
    out[3:6] = [_wrap(a) for a in rpy]
    out[6:9] = x[6:9] + x[12:15] * dt
    return out


def _random_state(rng: np.random.Generator) -> F64:
    x = rng.normal(0, 1, 15)
    x[3:5] = rng.uniform(-0.6, 0.6, 2)
    x[5] = rng.uniform(-3, 3)
    return x


def test_propagate_matches_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = _random_state(rng)
        dt = float(rng.uniform(0.001, 0.2))
        out = np.empty(15)
        kern._propagate(x, dt, out)
        np.testing.assert_allclose(out, ref_propagate(x, dt), atol=1e-12)


def test_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        x = _random_state(rng)
        dt = float(rng.uniform(0.01, 0.1))
        F = np.empty((15, 15))
        kern._jacobian(x, dt, F)
        num = np.empty((15, 15))
        h = 1e-6
        for j in range(15):
            xp, xm = x.copy(), x.copy()
            xp[j] += h
            xm[j] -= h
            d = ref_propagate(xp, dt) - ref_propagate(xm, dt)
            d[3:6] = [_wrap(a) for a in d[3:6]]
            num[:, j] = d / (2 * h)
        np.testing.assert_allclose(F, num, atol=1e-6)


def test_ekf_predict_and_update_match_textbook() -> None:
    rng = np.random.default_rng(2)
    x = _random_state(rng)
    A = rng.normal(0, 0.1, (15, 15))
    P = A @ A.T + np.eye(15) * 0.01
    Q = np.diag(rng.uniform(0.001, 0.05, 15))
    dt = 0.05
    F = np.empty((15, 15))
    kern._jacobian(x, dt, F)
    x_ref = ref_propagate(x, dt)
    P_ref = F @ P @ F.T + Q * dt
    xk, Pk = x.copy(), P.copy()
    kern._predict_ekf(xk, Pk, Q, dt)
    np.testing.assert_allclose(xk, x_ref, atol=1e-12)
    np.testing.assert_allclose(Pk, P_ref, atol=1e-12)
    # update on (vx, vyaw, yaw) with a wrapped yaw innovation
    idx = np.array([6, 11, 5, 0, 0, 0], np.int64)
    m = 3
    z = np.array([0.4, -0.1, _wrap(xk[5] + 0.3), 0, 0, 0])
    R = np.zeros((6, 6))
    R[:3, :3] = np.diag([0.01, 0.02, 0.03])
    H = np.zeros((3, 15))
    for i in range(m):
        H[i, idx[i]] = 1.0
    y = z[:3] - H @ xk
    y[2] = _wrap(y[2])
    S = H @ Pk @ H.T + R[:3, :3]
    Kg = Pk @ H.T @ np.linalg.inv(S)
    x_up = xk + Kg @ y
    P_up = (np.eye(15) - Kg @ H) @ Pk
    st = kern._update(xk, Pk, z, idx, m, R, np.inf, kern.KIND_DIRECT, np.zeros(4), np.nan, np.zeros(5))
    assert st == kern.ST_OK
    x_up[3:6] = [_wrap(a) for a in x_up[3:6]]
    np.testing.assert_allclose(xk, x_up, atol=1e-10)
    np.testing.assert_allclose(Pk, 0.5 * (P_up + P_up.T), atol=1e-10)


def test_mahalanobis_gate_rejects_and_keeps_state() -> None:
    x = np.zeros(15)
    P = np.eye(15) * 0.01
    z = np.array([1.0, 0, 0, 0, 0, 0])  # 1 m off with sigma ~0.14 m: distance ~7
    idx = np.zeros(6, np.int64)
    R = np.zeros((6, 6))
    R[0, 0] = 0.01
    st = kern._update(x, P, z, idx, 1, R, 3.0, kern.KIND_DIRECT, np.zeros(4), np.nan, np.zeros(5))
    assert st == kern.ST_MAHALANOBIS
    assert np.all(x == 0) and np.allclose(P, np.eye(15) * 0.01)
    st = kern._update(x, P, z, idx, 1, R, 10.0, kern.KIND_DIRECT, np.zeros(4), np.nan, np.zeros(5))
    assert st == kern.ST_OK and abs(x[0] - 0.5) < 1e-12


def test_ukf_prediction_close_to_ekf_for_mild_motion() -> None:
    rng = np.random.default_rng(3)
    x = np.zeros(15)
    x[5] = 0.3
    x[6] = 1.0
    x[11] = 0.1
    P = np.diag(rng.uniform(1e-4, 1e-3, 15))
    Q = np.eye(15) * 0.01
    xe, Pe = x.copy(), P.copy()
    xu, Pu = x.copy(), P.copy()
    kern._predict_ekf(xe, Pe, Q, 0.05)
    assert kern._predict_ukf(xu, Pu, Q, 0.05, 1e-3, 2.0, 0.0)
    # equal to first order; the unscented mean keeps the second-order terms (e.g. E[cos yaw] < cos E[yaw])
    np.testing.assert_allclose(xu, xe, atol=5e-5)
    np.testing.assert_allclose(Pu, Pe, atol=2e-5)
    # with (almost) no orientation uncertainty the motion is linear in the rest: the two agree tightly
    P2 = P.copy()
    for i in (3, 4, 5, 9, 10, 11):
        P2[i, i] = 1e-14
    xe, Pe, xu, Pu = x.copy(), P2.copy(), x.copy(), P2.copy()
    kern._predict_ekf(xe, Pe, Q, 0.05)
    assert kern._predict_ukf(xu, Pu, Q, 0.05, 1e-3, 2.0, 0.0)
    np.testing.assert_allclose(xu, xe, atol=1e-9)
    np.testing.assert_allclose(Pu, Pe, atol=1e-7)
    assert np.linalg.eigvalsh(Pu).min() > 0
