"""Structured Kalman fast paths (selection H, sparse F, closed-form S⁻¹, literal-size kernels) against
the general dense path and a slow NumPy reference; step-by-step API against ``run``; bad input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.objects import FilterError, KalmanFilter, constant_velocity_model
from edgefuse.objects import _kf_kernels as kfk

F64 = npt.NDArray[np.float64]


def _ref_run(x: F64, P: F64, F: F64, Q: F64, H: F64, R: F64, zs: F64) -> tuple[F64, F64]:  # noqa: PLR0917
    """Textbook Kalman filter (filterpy's equations, Joseph form), one NumPy step at a time."""
    x, P = x.copy(), P.copy()
    xs = np.empty((zs.shape[0], x.shape[0]))
    eye = np.eye(x.shape[0])
    for k, z in enumerate(zs):
        x = F @ x
        P = F @ P @ F.T + Q
        if np.all(np.isfinite(z)):
            S = H @ P @ H.T + R
            K = P @ H.T @ np.linalg.inv(S)
            x = x + K @ (z - H @ x)
            IKH = eye - K @ H
            P = IKH @ P @ IKH.T + K @ R @ K.T
        xs[k] = x
    return xs, P


def _spd(rng: np.random.Generator, n: int, scale: float = 1.0) -> F64:
    a = rng.normal(0, 1, (n, n))
    return scale * (a @ a.T / n + np.eye(n))


def _model(rng: np.random.Generator, n: int, m: int, *, selection: bool) -> tuple[F64, ...]:
    """A stable sparse F, SPD Q, R, P0, and an H that selects components or mixes them."""
    F = np.eye(n)
    for i in range(n - 1):
        F[i, i + 1] = rng.uniform(-0.2, 0.2)
    F[n - 1, 0] = 0.05
    if selection:
        H = np.zeros((m, n))
        H[np.arange(m), rng.choice(n, m, replace=False)] = 1.0
    else:
        H = rng.normal(0, 1, (m, n))
    return F, _spd(rng, n, 0.01), H, _spd(rng, m, 0.5), _spd(rng, n, 2.0)


def _filter(F: F64, Q: F64, H: F64, R: F64, P: F64) -> KalmanFilter:
    kf = KalmanFilter(F.shape[0], H.shape[0])
    kf.F, kf.Q, kf.H, kf.R, kf.P = F, Q, H, R, P
    kf.x = np.linspace(-1, 1, F.shape[0])
    return kf


# (6, 3) takes the literal-size kernel, the others the run-time-size one; m = 4 uses
# Gauss–Jordan instead of the closed-form inverse
SIZES = [(6, 3), (4, 2), (5, 2), (3, 1), (8, 4), (2, 2)]


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("selection", [True, False])
def test_run_structured_dense_and_reference_agree(n: int, m: int, selection: bool) -> None:
    rng = np.random.default_rng(100 * n + m)
    F, Q, H, R, P0 = _model(rng, n, m, selection=selection)
    K = 400
    zs = rng.normal(0, 1, (K, m)).cumsum(axis=0)
    zs[[7, 150]] = np.nan
    kf = _filter(F, Q, H, R, P0)
    x_ref, P_ref = _ref_run(kf.x, P0, F, Q, H, R, zs)
    xs_s = np.empty((K, n))
    Ps_s = np.empty((K, n, n))
    xs_d, Ps_d = np.empty_like(xs_s), np.empty_like(Ps_s)
    sk_s = kfk._kf_run(kf.x, kf.P, F, Q, H, R, zs, xs_s, Ps_s, True, True)
    sk_d = kfk._kf_run(kf.x, kf.P, F, Q, H, R, zs, xs_d, Ps_d, True, False)
    assert sk_s == sk_d == 2
    tol = 1e-9 * max(1.0, float(np.abs(x_ref).max()))
    np.testing.assert_allclose(xs_s, x_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(xs_d, x_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(xs_s, xs_d, rtol=0, atol=tol)
    np.testing.assert_allclose(Ps_s[-1], P_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Ps_d[-1], P_ref, rtol=1e-9, atol=1e-12)
    assert np.array_equal(Ps_s, Ps_s.transpose(0, 2, 1))  # kept exactly symmetric
    # the public API: same states, x and P untouched by run, skipped updates counted
    x0 = kf.x.copy()
    xs, Ps = kf.run(zs, store_cov=True)
    np.testing.assert_array_equal(xs, xs_s)
    assert Ps is not None
    np.testing.assert_array_equal(Ps, Ps_s)
    np.testing.assert_array_equal(kf.x, x0)
    np.testing.assert_array_equal(kf.P, P0)
    assert kf.rejected["skipped_update"] == 2


@pytest.mark.parametrize(("n", "m"), [(6, 3), (5, 2), (8, 4)])
@pytest.mark.parametrize("selection", [True, False])
def test_step_api_equals_run(n: int, m: int, selection: bool) -> None:
    rng = np.random.default_rng(7 * n + m)
    F, Q, H, R, P0 = _model(rng, n, m, selection=selection)
    zs = rng.normal(0, 1, (200, m)).cumsum(axis=0)
    zs[33] = np.inf
    kf = _filter(F, Q, H, R, P0)
    xs, Ps = kf.run(zs, store_cov=True)
    assert Ps is not None
    for k, z in enumerate(zs):
        kf.predict()
        assert kf.update(z) == (k != 33)
        np.testing.assert_allclose(kf.x, xs[k], rtol=0, atol=1e-12 * max(1.0, float(np.abs(xs[k]).max())))
    np.testing.assert_allclose(kf.P, Ps[-1], rtol=1e-12, atol=1e-14)
    assert kf.rejected == {"skipped_update": 1, "non_finite_measurement": 1}


def test_in_place_edits_of_h_and_f_are_honoured() -> None:
    rng = np.random.default_rng(3)
    F, Q, H = constant_velocity_model(0.1, 3, q=0.3)
    R = np.diag([0.2, 0.3, 0.4])
    P0 = np.eye(6) * 4.0
    zs = rng.normal(0, 1, (60, 3)).cumsum(axis=0)
    kf = _filter(F, Q, H, R, P0)
    x, P = kf.x.copy(), P0.copy()
    for k in range(60):
        if k == 20:  # selection → mixed H
            kf.H[0, 3] = 0.5
            kf.F[0, 1] = 0.01
        if k == 40:  # and back to a selection
            kf.H[0, 3] = 0.0
        kf.predict()
        assert kf.update(zs[k])
        xr, P = _ref_run(x, P, kf.F.copy(), Q, kf.H.copy(), R, zs[k:k + 1])
        x = xr[0]
        np.testing.assert_allclose(kf.x, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(kf.P, P, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_inv_small_matches_numpy_and_flags_singular(m: int) -> None:
    rng = np.random.default_rng(m)
    out, work = np.empty((m, m)), np.empty((m, m))
    for _ in range(20):
        a = rng.normal(0, 1, (m, m)) + 3 * np.eye(m)
        assert kfk._inv_small(a, out, work)
        np.testing.assert_allclose(out, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    sing = np.ones((m, m)) if m > 1 else np.zeros((1, 1))
    assert not kfk._inv_small(sing, out, work)
    assert not kfk._inv_small(np.full((m, m), np.nan), out, work)


def test_h_selection_detection() -> None:
    sel = np.empty(3, dtype=np.int64)
    H = np.zeros((3, 6))
    H[0, 4] = H[1, 0] = H[2, 2] = 1.0
    assert kfk._h_selection(H, sel)
    assert sel.tolist() == [4, 0, 2]
    for i, j, v in ((0, 5, 1.0), (1, 3, 1e-300), (2, 2, -1.0), (2, 2, 0.0), (1, 0, 2.0)):
        H2 = H.copy()
        H2[i, j] = v
        assert not kfk._h_selection(H2, sel), (i, j, v)


def test_csr_predict_equals_dense_predict() -> None:
    rng = np.random.default_rng(11)
    n = 7
    F = rng.normal(0, 1, (n, n)) * (rng.random((n, n)) < 0.4)
    Q = _spd(rng, n)
    P = _spd(rng, n)
    x = rng.normal(0, 1, n)
    x1, P1 = x.copy(), P.copy()
    kfk._kf_predict_step(x1, P1, F, Q, np.empty(n + 1 + n * n, np.int64), np.empty(2 * n * n + n))
    np.testing.assert_allclose(x1, F @ x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(P1, F @ P @ F.T + Q, rtol=1e-12, atol=1e-12)
    assert np.array_equal(P1, P1.T)


def test_singular_innovation_is_rejected_and_filter_stays_healthy() -> None:
    F, Q, H = constant_velocity_model(0.1, 3, q=0.0)
    kf = KalmanFilter(6, 3)
    kf.F, kf.Q, kf.H = F, Q, H
    kf.P = np.zeros((6, 6))
    kf.R = np.zeros((3, 3))  # S = 0: singular
    kf.predict()
    x0, P0 = kf.x.copy(), kf.P.copy()
    assert not kf.update([1.0, 2.0, 3.0])
    assert kf.rejected["singular_innovation"] == 1
    np.testing.assert_array_equal(kf.x, x0)
    np.testing.assert_array_equal(kf.P, P0)
    xs, _ = kf.run(np.ones((4, 3)))
    assert np.all(np.isfinite(xs)) and kf.rejected["skipped_update"] == 4
    kf.H[0, 3] = 0.5  # the general path rejects it too
    assert not kf.update([1.0, 2.0, 3.0])
    assert kf.rejected["singular_innovation"] == 2


def test_assignments_are_checked_and_copied() -> None:
    kf = KalmanFilter(6, 3)
    kf.x = np.arange(6.0).reshape(6, 1)  # a filterpy-style column is accepted
    assert kf.x.shape == (6,)
    user_P = np.eye(6) * 2.0
    kf.P = user_P
    kf.predict()
    assert np.array_equal(user_P, np.eye(6) * 2.0)  # the caller's array is never written
    P_before = kf.P.copy()
    bad: list[tuple[str, object, str]] = [
        ("P", np.full((6, 6), np.nan), "non-finite"),
        ("P", np.diag([1.0, 1, 1, 1, 1, -1]), "positive semidefinite"),
        ("Q", np.triu(np.ones((6, 6))), "positive semidefinite"),
        ("R", np.eye(2), "shape"),
        ("H", np.ones((3, 5)), "shape"),
        ("F", [[np.inf] * 6] * 6, "non-finite"),
        ("x", np.zeros(5), "shape"),
    ]
    for name, value, msg in bad:
        with pytest.raises(FilterError, match=msg):
            setattr(kf, name, value)
    np.testing.assert_array_equal(kf.P, P_before)
    assert kf.R.shape == (3, 3) and kf.x.shape == (6,)
    with pytest.raises(FilterError, match="dim_x"):
        KalmanFilter(0, 1)
