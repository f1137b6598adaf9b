"""Batch extended and unscented Kalman filters over a user's own Numba-compiled model.

:class:`BatchEKF` and :class:`BatchUKF` run a whole measurement sequence in one compiled call (the
kernels are in :mod:`edgefuse.objects._nl_kernels`).  They follow filterpy's ``ExtendedKalmanFilter``
(Joseph-form update) and ``UnscentedKalmanFilter`` with ``MerweScaledSigmaPoints`` step for step, and
``bench/bench_kalman.py`` checks them against filterpy on a 100k-step radar problem.

**Model functions** are ``numba.njit`` functions that write their result into ``out`` (no return value,
no allocation needed).  Arrays are float64, C-contiguous; ``n`` = state size (from ``Q``), ``m`` =
measurement size (from ``R``)::

    f(x, dt, out)            # process model: out (n,) = f(x) over dt seconds
    F(x, dt, out)            # its Jacobian ∂f/∂x at x: out (n, n)           (EKF only)
    h(x, out)                # measurement model: out (m,)
    H(x, out)                # its Jacobian ∂h/∂x at x: out (m, n)           (EKF only)
    residual_z(a, b, out)    # a − b in measurement space, out (m,)  (default: plain subtraction)
    residual_x(a, b, out)    # a − b in state space, out (n,)        (UKF; default: subtraction)
    x_mean(sigmas, Wm, out)  # weighted mean of sigma points (2n+1, n)  (UKF; default: Σ Wm·σ)
    z_mean(sigmas, Wm, out)  # the same in measurement space (2n+1, m)  (UKF; default: Σ Wm·σ)

Constants a model needs (a sensor position, a time step) are globals or closure variables of the
Numba function: Numba freezes them at compile time.  The functions must not raise (compile them with
``error_model="numpy"`` if a division may hit zero); a NaN/inf they return is caught per step.

**Angles.**  A measurement that is an angle (an azimuth) needs a residual that wraps the difference
(filterpy's ``residual_z``): pass ``residual_z=angle_residual(1)`` (indices of the angle components;
differences wrapped into [-π, π) by :func:`wrap_angle`), or your own function.  For the UKF, when the
sigma points of an angle can straddle ±π, also pass ``z_mean=angle_mean(1)`` (circular mean of those
components: atan2 of the weighted sums of sine and cosine).  Angles in the state work the same way
with ``residual_x`` / ``x_mean``; the state update itself is ``x + K·y`` (wrap angles inside ``f`` if
they must stay in range).

**Bad steps** never stop the run and never touch the state: a measurement row with a NaN/inf is
skipped (prediction only, ``missing_measurement``); an innovation covariance S that is not positive
definite rejects that update (``innovation_not_pd``); model outputs that are not finite reject the
prediction (``nonfinite_prediction``: the whole step is skipped) or the update
(``nonfinite_update``); a UKF covariance without a Cholesky factor gives no sigma points
(``sigma_points_not_pd``: the step, or its update, is skipped).  Each step's code is in
:attr:`NonlinearRun.status`, the totals in :attr:`NonlinearRun.rejected`.  Bad arguments (shapes,
non-finite or non-PSD covariances, model functions that are not Numba functions, do not compile for
the documented signature, write outside ``out``, leave part of it unwritten or modify their input at the
initial state) raise :class:`~edgefuse.objects.kalman.FilterError` before anything runs.

The first :meth:`BatchEKF.run` (or :meth:`BatchEKF.warmup`) in a process compiles the kernel for the
given functions (about a second or more); it is not cached on disk.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba.core.dispatcher import Dispatcher
from numba.core.errors import NumbaError

from edgefuse._kernels_linalg import wrap_pi
from edgefuse.objects import _nl_kernels as nlk
from edgefuse.objects.kalman import FilterError
from edgefuse.objects.types import psd_ok

F64 = npt.NDArray[np.float64]

#: reason names of the per-step status codes (index = code)
REASONS = ("ok", "missing_measurement", "innovation_not_pd", "nonfinite_prediction", "nonfinite_update",
           "sigma_points_not_pd")

#: angle wrapped into [-π, π): a Numba function, callable from a user's model functions
wrap_angle = wrap_pi

# pre-flight: outputs are pre-filled with a NaN carrying this payload, followed by a guard zone
_SENTINEL_BITS = np.uint64(0x7FF8DEADBEEFCAFE)
_GUARD = 64


@dataclass(frozen=True)
class NonlinearRun:
    """Result of :meth:`BatchEKF.run` / :meth:`BatchUKF.run`.

    Attributes:
        x: final state (n,).
        P: final covariance (n, n).
        xs: state after each step (K, n).
        Ps: covariance after each step (K, n, n) when run with ``store_cov=True``, else None.
        status: per-step code (K,) int8, an index into :data:`REASONS` (0 = predicted and updated).
        rejected: count per reason of the steps that were not fully applied.
    """

    x: F64
    P: F64
    xs: F64
    Ps: F64 | None
    status: npt.NDArray[np.int8]
    rejected: Counter[str]


def angle_residual(*indices: int) -> Callable[..., None]:
    """A Numba residual ``(a, b, out)``: ``out = a − b`` with the components at ``indices`` wrapped into
    [-π, π).  Use as ``residual_z`` (or ``residual_x``).  The same indices give the same function (so
    filters built with it share their compiled kernel)."""
    return _angle_residual(_indices(indices))


def angle_mean(*indices: int) -> Callable[..., None]:
    """A Numba mean ``(sigmas, Wm, out)``: weighted sum, except the components at ``indices``, which get
    the circular mean ``atan2(Σ Wm·sin σ, Σ Wm·cos σ)``.  Use as ``z_mean`` (or ``x_mean``).  The same
    indices give the same function."""
    return _angle_mean(_indices(indices))


@functools.cache
def _angle_residual(idx: tuple[int, ...]) -> Callable[..., None]:
    @numba.njit(cache=False)
    def residual(a: F64, b: F64, out: F64) -> None:
        for i in range(out.shape[0]):
            out[i] = a[i] - b[i]
        for i in idx:
            out[i] = wrap_pi(out[i])

    return residual


@functools.cache
def _angle_mean(idx: tuple[int, ...]) -> Callable[..., None]:
    @numba.njit(cache=False)
    def mean(sigmas: F64, Wm: F64, out: F64) -> None:
        for j in range(out.shape[0]):
            acc = 0.0
            for s in range(sigmas.shape[0]):
                acc += Wm[s] * sigmas[s, j]
            out[j] = acc
        for j in idx:
            sn = 0.0
            cs = 0.0
            for s in range(sigmas.shape[0]):
                sn += Wm[s] * math.sin(sigmas[s, j])
                cs += Wm[s] * math.cos(sigmas[s, j])
            out[j] = math.atan2(sn, cs)

    return mean


def _indices(indices: Sequence[int]) -> tuple[int, ...]:
    if not indices or any(not isinstance(i, int) or i < 0 for i in indices):
        raise FilterError(f"angle indices must be non-negative ints, got {tuple(indices)!r}")
    return tuple(sorted(set(indices)))


def _jitted(fn: Any, name: str) -> Any:
    if not isinstance(fn, Dispatcher):
        raise FilterError(f"{name} must be a numba.njit function (got {type(fn).__name__}); decorate it with "
                          f"@numba.njit")
    return fn


def _matrix(a: npt.ArrayLike, shape: tuple[int, ...], name: str, *, cov: bool = False) -> F64:
    arr = np.array(a, dtype=np.float64, order="C", copy=True)
    if arr.shape != shape and arr.size == math.prod(shape) and len(shape) == 1:
        arr = arr.reshape(shape)  # a state given as a column (n, 1)
    if arr.shape != shape:
        raise FilterError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise FilterError(f"{name} has non-finite values")
    if cov and not psd_ok(arr):
        raise FilterError(f"{name} is not a symmetric positive semidefinite covariance")
    return arr


def _noise(a: npt.ArrayLike, name: str) -> F64:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise FilterError(f"{name} must be a square matrix, got shape {arr.shape}")
    return _matrix(arr, arr.shape, name, cov=True)


def _guarded(shape: tuple[int, ...]) -> tuple[npt.NDArray[np.uint64], F64]:
    """An output array of ``shape`` filled with the sentinel NaN, inside a buffer with a guard zone
    after it (bits view of the whole buffer, the output view)."""
    size = math.prod(shape)
    bits = np.full(size + _GUARD, _SENTINEL_BITS, dtype=np.uint64)
    return bits, bits.view(np.float64)[:size].reshape(shape)


def _preflight(fn: Any, call: str, inputs: tuple[Any, ...], out_shape: tuple[int, ...]) -> F64:
    """Call a compiled model function once (this also compiles it) and check that it writes all of
    ``out`` and nothing else and leaves its inputs alone; returns ``out``."""
    bits, out = _guarded(out_shape)
    before = [a.copy() for a in inputs if isinstance(a, np.ndarray)]
    try:
        fn(*inputs, out)
    except NumbaError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FilterError(f"{call} does not compile for float64 C-contiguous arrays of the documented shapes "
                          f"(out {out_shape}): {first}") from None
    except Exception as e:  # a user function failing at the initial state (or a wrong argument count)
        raise FilterError(f"{call} failed at the initial state ({type(e).__name__}: {e})") from None
    size = math.prod(out_shape)
    if np.any(bits[size:] != _SENTINEL_BITS):
        raise FilterError(f"{call} writes beyond out (shape {out_shape})")
    unwritten = bits[:size] == _SENTINEL_BITS
    if np.any(unwritten):
        where = tuple(int(i) for i in np.argwhere(unwritten.reshape(out_shape))[0])
        raise FilterError(f"{call} leaves out{list(where)} unwritten (out has shape {out_shape})")
    after = [a for a in inputs if isinstance(a, np.ndarray)]
    if any(not np.array_equal(b, a, equal_nan=True) for b, a in zip(before, after, strict=True)):
        raise FilterError(f"{call} modifies its input")
    return out


def _sequence(zs: npt.ArrayLike, dt: float | npt.ArrayLike, m: int) -> tuple[F64, F64]:
    z = np.ascontiguousarray(zs, dtype=np.float64)
    if z.ndim == 1 and m == 1:
        z = z.reshape(-1, 1)
    if z.ndim != 2 or z.shape[1] != m:
        raise FilterError(f"measurements must have shape (K, {m}), got {z.shape}")
    d = np.asarray(dt, dtype=np.float64)
    if d.ndim == 0:
        dts = np.full(z.shape[0], float(d))
    elif d.shape == (z.shape[0],):
        dts = np.ascontiguousarray(d)
    else:
        raise FilterError(f"dt must be a number or have shape ({z.shape[0]},), got {d.shape}")
    if not np.all(np.isfinite(dts)):
        raise FilterError("dt has non-finite values")
    return z, dts


def _result(x: F64, P: F64, xs: F64, Ps: F64 | None, status: npt.NDArray[np.int8]) -> NonlinearRun:
    counts = np.bincount(status, minlength=nlk.N_STATUS)
    rejected: Counter[str] = Counter({REASONS[i]: int(c) for i, c in enumerate(counts) if i and c})
    return NonlinearRun(x=x, P=P, xs=xs, Ps=Ps, status=status, rejected=rejected)


def _call_kernel(kernel: Callable[[], None]) -> None:
    try:
        kernel()
    except NumbaError as e:
        raise FilterError(f"the batch kernel does not compile with these model functions: {e}") from None
    except Exception as e:  # a user function raising inside the compiled loop
        raise FilterError(f"a model function raised {type(e).__name__} during the run ({e}); model functions "
                          f"must not raise (e.g. compile them with error_model='numpy')") from None


class BatchEKF:
    """Extended Kalman filter over a whole measurement sequence in one compiled call.

    Args:
        f, F, h, H: the model and its Jacobians, Numba functions (signatures in the module docstring).
        Q: process noise covariance (n, n), added at every step.
        R: measurement noise covariance (m, m).
        residual_z: measurement residual ``(a, b, out)``; default ``a − b``.  Angles: see
            :func:`angle_residual`.

    Each step (filterpy's ``predict()`` then ``update(z, H, h, residual=residual_z)``): F at the
    previous estimate, x ← f(x, dt), P ← F P Fᵀ + Q; then y = residual_z(z, h(x)), H at the
    prediction, S = H P Hᵀ + R, K = P Hᵀ S⁻¹, x ← x + K y and P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ.
    """

    def __init__(self, f: Callable[..., None], F: Callable[..., None], h: Callable[..., None],
                 H: Callable[..., None], *, Q: npt.ArrayLike, R: npt.ArrayLike,
                 residual_z: Callable[..., None] | None = None) -> None:
        self.f = _jitted(f, "f")
        self.F = _jitted(F, "F")
        self.h = _jitted(h, "h")
        self.H = _jitted(H, "H")
        self.residual_z = nlk.subtract if residual_z is None else _jitted(residual_z, "residual_z")
        self.Q = _noise(Q, "Q")
        self.R = _noise(R, "R")

    @property
    def dim_x(self) -> int:
        return int(self.Q.shape[0])

    @property
    def dim_z(self) -> int:
        return int(self.R.shape[0])

    def _check_model(self, x0: F64, dt: float, z0: F64) -> None:
        n, m = self.dim_x, self.dim_z
        _preflight(self.f, "f(x, dt, out)", (x0.copy(), dt), (n,))
        _preflight(self.F, "F(x, dt, out)", (x0.copy(), dt), (n, n))
        hx = _preflight(self.h, "h(x, out)", (x0.copy(),), (m,))
        _preflight(self.H, "H(x, out)", (x0.copy(),), (m, n))
        zz = np.where(np.isfinite(z0), z0, hx)
        _preflight(self.residual_z, "residual_z(a, b, out)", (np.ascontiguousarray(zz), hx.copy()), (m,))

    def run(self, x0: npt.ArrayLike, P0: npt.ArrayLike, zs: npt.ArrayLike, dt: float | npt.ArrayLike, *,
            store_cov: bool = False) -> NonlinearRun:
        """Filter every row of ``zs`` (K, m) from the prior ``x0`` (n,), ``P0`` (n, n); ``dt`` (seconds)
        is one number or one per step (K,).  Returns the final state and covariance, the state after
        each step, and the covariance after each step only with ``store_cov`` (K·n² floats)."""
        n, m = self.dim_x, self.dim_z
        x = _matrix(x0, (n,), "x0")
        P = _matrix(P0, (n, n), "P0", cov=True)
        z, dts = _sequence(zs, dt, m)
        self._check_model(x, float(dts[0]) if dts.size else 1.0, z[0] if len(z) else np.zeros(m))
        K = z.shape[0]
        xs = np.empty((K, n))
        Ps = np.empty((K, n, n)) if store_cov else np.empty((1, n, n))
        status = np.zeros(K, dtype=np.int8)
        _call_kernel(lambda: nlk._ekf_run(self.f, self.F, self.h, self.H, self.residual_z, x, P, self.Q, self.R,
                                          z, dts, xs, Ps, store_cov, status))
        return _result(x, P, xs, Ps if store_cov else None, status)

    def warmup(self, x0: npt.ArrayLike, P0: npt.ArrayLike, dt: float = 1.0) -> None:
        """Check the model functions and compile the kernel for them (a two-step run from ``x0``,
        ``P0`` without measurements), so that the first real run pays no JIT."""
        self.run(x0, P0, np.full((2, self.dim_z), np.nan), dt)


class BatchUKF:
    """Unscented Kalman filter (Van der Merwe's scaled sigma points) over a whole measurement sequence in
    one compiled call.

    Args:
        f, h: the process and measurement models, Numba functions (module docstring).
        Q, R: process (n, n) and measurement (m, m) noise covariances.
        alpha, beta, kappa: sigma-point parameters (filterpy's ``MerweScaledSigmaPoints``):
            λ = α²(n + κ) − n, Wm₀ = λ/(n + λ), Wc₀ = Wm₀ + 1 − α² + β, others 1/(2(n + λ)).
        residual_x, residual_z, x_mean, z_mean: optional hooks (module docstring; filterpy's
            ``residual_x``, ``residual_z``, ``x_mean_fn``, ``z_mean_fn``).

    Each step is filterpy's ``predict()`` then ``update(z)``, including its re-drawing of the sigma
    points from the predicted state before the update.
    """

    def __init__(self, f: Callable[..., None], h: Callable[..., None], *, Q: npt.ArrayLike,
                 R: npt.ArrayLike, alpha: float = 0.1, beta: float = 2.0, kappa: float = 0.0,
                 residual_x: Callable[..., None] | None = None, residual_z: Callable[..., None] | None = None,
                 x_mean: Callable[..., None] | None = None, z_mean: Callable[..., None] | None = None) -> None:
        self.f = _jitted(f, "f")
        self.h = _jitted(h, "h")
        self.residual_x = nlk.subtract if residual_x is None else _jitted(residual_x, "residual_x")
        self.residual_z = nlk.subtract if residual_z is None else _jitted(residual_z, "residual_z")
        self.x_mean = nlk.weighted_mean if x_mean is None else _jitted(x_mean, "x_mean")
        self.z_mean = nlk.weighted_mean if z_mean is None else _jitted(z_mean, "z_mean")
        self.Q = _noise(Q, "Q")
        self.R = _noise(R, "R")
        n = self.dim_x
        if not all(math.isfinite(v) for v in (alpha, beta, kappa)) or alpha <= 0.0:
            raise FilterError(f"alpha must be > 0 and alpha, beta, kappa finite; got {alpha}, {beta}, {kappa}")
        lam = alpha * alpha * (n + kappa) - n
        if not n + lam > 0.0:
            raise FilterError(f"n + lambda = alpha²(n + kappa) must be > 0, got {n + lam} (n = {n})")
        self.alpha, self.beta, self.kappa = float(alpha), float(beta), float(kappa)
        self._c = n + lam
        self.Wm = np.full(2 * n + 1, 0.5 / (n + lam))
        self.Wc = self.Wm.copy()
        self.Wm[0] = lam / (n + lam)
        self.Wc[0] = lam / (n + lam) + (1.0 - alpha * alpha + beta)

    @property
    def dim_x(self) -> int:
        return int(self.Q.shape[0])

    @property
    def dim_z(self) -> int:
        return int(self.R.shape[0])

    def _check_model(self, x0: F64, dt: float, z0: F64) -> None:
        n, m = self.dim_x, self.dim_z
        _preflight(self.f, "f(x, dt, out)", (x0.copy(), dt), (n,))
        hx = _preflight(self.h, "h(x, out)", (x0.copy(),), (m,))
        _preflight(self.residual_x, "residual_x(a, b, out)", (x0.copy(), x0.copy()), (n,))
        zz = np.ascontiguousarray(np.where(np.isfinite(z0), z0, hx))
        _preflight(self.residual_z, "residual_z(a, b, out)", (zz, hx.copy()), (m,))
        _preflight(self.x_mean, "x_mean(sigmas, Wm, out)", (np.repeat(x0[None], 2 * n + 1, 0), self.Wm.copy()),
                   (n,))
        _preflight(self.z_mean, "z_mean(sigmas, Wm, out)", (np.repeat(hx[None], 2 * n + 1, 0), self.Wm.copy()),
                   (m,))

    def run(self, x0: npt.ArrayLike, P0: npt.ArrayLike, zs: npt.ArrayLike, dt: float | npt.ArrayLike, *,
            store_cov: bool = False) -> NonlinearRun:
        """As :meth:`BatchEKF.run`."""
        n, m = self.dim_x, self.dim_z
        x = _matrix(x0, (n,), "x0")
        P = _matrix(P0, (n, n), "P0", cov=True)
        z, dts = _sequence(zs, dt, m)
        self._check_model(x, float(dts[0]) if dts.size else 1.0, z[0] if len(z) else np.zeros(m))
        K = z.shape[0]
        xs = np.empty((K, n))
        Ps = np.empty((K, n, n)) if store_cov else np.empty((1, n, n))
        status = np.zeros(K, dtype=np.int8)
        _call_kernel(lambda: nlk._ukf_run(self.f, self.h, self.residual_x, self.residual_z, self.x_mean,
                                          self.z_mean, x, P, self.Q, self.R, z, dts, self.Wm, self.Wc, self._c,
                                          xs, Ps, store_cov, status))
        return _result(x, P, xs, Ps if store_cov else None, status)

    def warmup(self, x0: npt.ArrayLike, P0: npt.ArrayLike, dt: float = 1.0) -> None:
        """Check the model functions and compile the kernel for them (a two-step run from ``x0``,
        ``P0`` without measurements), so that the first real run pays no JIT."""
        self.run(x0, P0, np.full((2, self.dim_z), np.nan), dt)


__all__ = ["REASONS", "BatchEKF", "BatchUKF", "NonlinearRun", "angle_mean", "angle_residual", "wrap_angle"]
