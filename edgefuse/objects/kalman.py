"""Linear Kalman filter with filterpy's equations, compiled with Numba.

``KalmanFilter`` keeps x (n,), P (n, n), F, Q, H (m, n), R (m, m) like ``filterpy.kalman.KalmanFilter``;
``predict`` is x ← F x, P ← F P Fᵀ + Q; ``update`` uses S = H P Hᵀ + R, K = P Hᵀ S⁻¹ and
P ← P − K S Kᵀ, which for the optimal gain equals filterpy's Joseph form
P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ; P is kept exactly symmetric.  :meth:`KalmanFilter.run` filters
a whole measurement sequence in one compiled loop (the fast path) and returns the final state and
covariance with the per-step states (per-step covariances only on request); ``predict``/``update``
are there for step-by-step use.  Nonlinear models: :mod:`edgefuse.objects.nonlinear`.

Bad input: a measurement with NaN/inf, or one whose innovation covariance is singular, is not applied
(counted in ``rejected``); a covariance given to ``update`` (``R=``) that is not symmetric PSD is
rejected the same way.  Assigning a matrix with the wrong shape or a non-finite value, or a P, Q or R
that is not symmetric PSD, raises :class:`FilterError` and leaves the filter as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EstimationError
from edgefuse.objects import _kf_kernels as kfk
from edgefuse.objects.types import psd_ok

F64 = npt.NDArray[np.float64]


class FilterError(EstimationError):
    """A Kalman filter was given inconsistent shapes or invalid model matrices."""


def constant_velocity_model(dt: float, dim: int = 3, q: float = 1.0) -> tuple[F64, F64, F64]:
    """(F, Q, H) of a constant-velocity model with state (p_1..p_dim, v_1..v_dim) and position
    measurements; Q is the discrete white-noise-acceleration model with spectral density ``q``."""
    F = np.eye(2 * dim)
    F[:dim, dim:] = dt * np.eye(dim)
    q11, q12, q22 = dt**4 / 4, dt**3 / 2, dt**2
    Q = np.zeros((2 * dim, 2 * dim))
    Q[:dim, :dim] = q11 * np.eye(dim)
    Q[:dim, dim:] = q12 * np.eye(dim)
    Q[dim:, :dim] = q12 * np.eye(dim)
    Q[dim:, dim:] = q22 * np.eye(dim)
    H = np.zeros((dim, 2 * dim))
    H[:, :dim] = np.eye(dim)
    return F, q * Q, H


@dataclass(frozen=True)
class KalmanRun:
    """Result of :meth:`KalmanFilter.run`.

    Attributes:
        xs: state after each step (K, n).
        Ps: covariance after each step (K, n, n) with ``store_cov=True``, else None.
        x: final state (n,) (the initial one when K = 0).
        P: final covariance (n, n).
        skipped: steps whose update was skipped (non-finite measurement or singular S).

    Unpacks as ``xs, Ps = kf.run(zs)``, the tuple ``run`` returned before it returned this.
    """

    xs: F64
    Ps: F64 | None
    x: F64
    P: F64
    skipped: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.xs, self.Ps))


def _matrix_property(name: str, doc: str) -> property:
    """A float64 C-contiguous matrix attribute whose shape is checked when it is assigned."""

    def get(self: KalmanFilter) -> F64:
        return getattr(self, "_" + name)  # type: ignore[no-any-return]

    def set_(self: KalmanFilter, value: npt.ArrayLike) -> None:
        a = np.array(value, dtype=np.float64, order="C", copy=True)
        shape = self._shapes[name]
        if name == "x" and a.size == shape[0]:
            a = a.reshape(shape)  # filterpy users give x as a column (n, 1)
        if a.shape != shape:
            raise FilterError(f"{name} has shape {a.shape}, expected {shape}")
        if not np.all(np.isfinite(a)):
            raise FilterError(f"{name} has non-finite values")
        if name in {"P", "Q", "R"} and not psd_ok(a):
            raise FilterError(f"{name} is not a symmetric positive semidefinite covariance")
        setattr(self, "_" + name, a)

    return property(get, set_, doc=doc)


class KalmanFilter:
    """Linear Kalman filter (see module docstring).

    ``x`` (n,), ``P``, ``F``, ``Q`` (n, n), ``H`` (m, n), ``R`` (m, m) are float64 attributes.  Assigning
    one stores a C-contiguous float64 copy after checking its shape (a wrong shape raises
    :class:`FilterError` at the assignment); editing one in place is allowed.  Structure is read from
    the matrices at every call, so in-place edits are always honoured: an H whose rows each select one
    state component takes the selection update (S = P[sel, sel] + R), F is applied through its
    non-zeros only, and S⁻¹ is closed-form for m ≤ 3.
    """

    x = _matrix_property("x", "State (n,).")
    P = _matrix_property("P", "State covariance (n, n).")
    F = _matrix_property("F", "State transition (n, n).")
    Q = _matrix_property("Q", "Process noise covariance (n, n).")
    H = _matrix_property("H", "Measurement matrix (m, n).")
    R = _matrix_property("R", "Measurement noise covariance (m, m).")

    def __init__(self, dim_x: int, dim_z: int) -> None:
        if dim_x <= 0 or dim_z <= 0:
            raise FilterError(f"dim_x and dim_z must be > 0, got {dim_x}, {dim_z}")
        n, m = dim_x, dim_z
        self._shapes = {"x": (n,), "P": (n, n), "F": (n, n), "Q": (n, n), "H": (m, n), "R": (m, m)}
        self._x = np.zeros(n)
        self._P = np.eye(n)
        self._F = np.eye(n)
        self._Q = np.eye(n)
        self._H = np.zeros((m, n))
        self._R = np.eye(m)
        self.rejected: Counter[str] = Counter()
        # scratch for the step-by-step kernels (allocated once, see _kf_predict_step / _kf_update_step)
        self._iw = np.empty(n + 1 + n * n + m, dtype=np.int64)
        self._fw = np.empty(2 * n * n + n + m + 3 * m * m + 4 * n * m)

    @property
    def dim_x(self) -> int:
        return self._shapes["x"][0]

    @property
    def dim_z(self) -> int:
        return self._shapes["R"][0]

    def predict(self) -> None:
        """x ← F x, P ← F P Fᵀ + Q."""
        kfk._kf_predict_step(self._x, self._P, self._F, self._Q, self._iw, self._fw)

    def update(self, z: npt.ArrayLike, R: npt.ArrayLike | None = None) -> bool:
        """Apply measurement ``z`` (m,); returns False (and counts the reason) when it is rejected."""
        zz = np.asarray(z, dtype=np.float64)
        m = self._shapes["R"][0]
        if zz.size != m:
            raise FilterError(f"measurement has {zz.size} values, H expects {m}")
        if zz.ndim != 1 or not zz.flags.c_contiguous:
            zz = np.ascontiguousarray(zz).reshape(m)
        RR = self._R
        if R is not None:
            RR = np.ascontiguousarray(R, dtype=np.float64)
            if RR.shape != (m, m) or not psd_ok(RR):
                self.rejected["bad_covariance"] += 1
                return False
        code = kfk._kf_update_step(self._x, self._P, zz, self._H, RR, self._iw, self._fw)
        if code == 0:
            return True
        self.rejected["non_finite_measurement" if code == 1 else "singular_innovation"] += 1
        return False

    def run(self, zs: npt.ArrayLike, *, store_cov: bool = False, commit: bool = False) -> KalmanRun:
        """Predict + update for each row of ``zs`` (K, m) in one compiled loop, starting from the
        current x, P.  Rows with NaN/inf are predicted only (counted in ``rejected``).

        Returns a :class:`KalmanRun`: the final state and covariance, the state after each step, and
        the covariance after each step only with ``store_cov`` (K·n² more floats to write).  The
        filter's own x, P are left unchanged unless ``commit``, which sets them to the final ones (to
        continue with the next batch or step by step)."""
        m = self._shapes["R"][0]
        z = np.ascontiguousarray(zs, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != m:
            raise FilterError(f"measurements must have shape (K, {m}), got {z.shape}")
        n = self._shapes["x"][0]
        xs = np.empty((z.shape[0], n))
        Ps = np.empty((z.shape[0], n, n)) if store_cov else np.empty((1, n, n))
        x = self._x.copy()
        P = self._P.copy()
        skipped = int(kfk._kf_run_inplace(x, P, self._F, self._Q, self._H, self._R, z, xs, Ps, store_cov, True))
        if skipped:
            self.rejected["skipped_update"] += skipped
        if commit:
            self._x, self._P = x.copy(), P.copy()
        return KalmanRun(xs=xs, Ps=Ps if store_cov else None, x=x, P=P, skipped=skipped)

    def warmup(self) -> None:
        """Compile the kernels (call at start, never on the first message)."""
        kf = KalmanFilter(2, 1)
        kf.H[0, 0] = 1.0
        kf.run(np.zeros((2, 1)))
        kf.predict()
        kf.update(np.zeros(1))
        kf.H[0, 1] = 0.5  # general (non-selection) update path
        kf.update(np.zeros(1))


__all__ = ["FilterError", "KalmanFilter", "KalmanRun", "constant_velocity_model"]
