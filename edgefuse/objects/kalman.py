"""Linear Kalman filter with filterpy's equations, compiled with Numba.

``KalmanFilter`` keeps x (n,), P (n, n), F, Q, H (m, n), R (m, m) like ``filterpy.kalman.KalmanFilter``;
``predict`` is x ← F x, P ← F P Fᵀ + Q; ``update`` uses S = H P Hᵀ + R, K = P Hᵀ S⁻¹ and the Joseph
form P ← (I − K H) P (I − K H)ᵀ + K R Kᵀ.  :meth:`KalmanFilter.run` filters a whole measurement
sequence in one compiled loop (the fast path); ``predict``/``update`` are there for step-by-step use.

Bad input: a measurement with NaN/inf, or one whose innovation covariance is singular, is not applied
(counted in ``rejected``); a covariance given to ``update`` (``R=``) that is not symmetric PSD is
rejected the same way.  The filter state is never made non-finite by input.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from edgefuse.objects import _kf_kernels as kfk
from edgefuse.objects.association import AssociationError
from edgefuse.objects.types import psd_ok

F64 = npt.NDArray[np.float64]


class FilterError(AssociationError):
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


class KalmanFilter:
    """Linear Kalman filter (see module docstring).  Matrices are float64 copies."""

    def __init__(self, dim_x: int, dim_z: int) -> None:
        if dim_x <= 0 or dim_z <= 0:
            raise FilterError(f"dim_x and dim_z must be > 0, got {dim_x}, {dim_z}")
        self.x = np.zeros(dim_x)
        self.P = np.eye(dim_x)
        self.F = np.eye(dim_x)
        self.Q = np.eye(dim_x)
        self.H = np.zeros((dim_z, dim_x))
        self.R = np.eye(dim_z)
        self.rejected: Counter[str] = Counter()
        self._tmp = (np.empty((dim_x, dim_x)), np.empty((dim_x, dim_x)), np.empty(dim_x))
        self._ws = kfk._kf_workspace(dim_x, dim_z)

    def _check(self) -> None:
        n, m = self.x.shape[0], self.H.shape[0]
        for name, shape in (("P", (n, n)), ("F", (n, n)), ("Q", (n, n)), ("H", (m, n)), ("R", (m, m))):
            a = getattr(self, name)
            if a.shape != shape:
                raise FilterError(f"{name} has shape {a.shape}, expected {shape}")
            setattr(self, name, np.ascontiguousarray(a, dtype=np.float64))
        self.x = np.ascontiguousarray(self.x, dtype=np.float64).reshape(n)

    def predict(self) -> None:
        """x ← F x, P ← F P Fᵀ + Q."""
        self._check()
        kfk._kf_predict(self.x, self.P, self.F, self.Q, *self._tmp)

    def update(self, z: npt.ArrayLike, R: npt.ArrayLike | None = None) -> bool:
        """Apply measurement ``z`` (m,); returns False (and counts the reason) when it is rejected."""
        self._check()
        zz = np.asarray(z, dtype=np.float64).reshape(-1)
        if zz.shape[0] != self.H.shape[0]:
            raise FilterError(f"measurement has {zz.shape[0]} values, H expects {self.H.shape[0]}")
        if not np.all(np.isfinite(zz)):
            self.rejected["non_finite_measurement"] += 1
            return False
        RR = self.R
        if R is not None:
            RR = np.ascontiguousarray(R, dtype=np.float64)
            if RR.shape != self.R.shape or not psd_ok(RR):
                self.rejected["bad_covariance"] += 1
                return False
        if not kfk._kf_update(self.x, self.P, zz, self.H, RR, self._ws):
            self.rejected["singular_innovation"] += 1
            return False
        return True

    def run(self, zs: npt.ArrayLike, *, store_cov: bool = False) -> tuple[F64, F64 | None]:
        """Predict + update for each row of ``zs`` (K, m) in one compiled loop, starting from the
        current x, P (which are left unchanged).  Rows with NaN are predicted only (counted).
        Returns (states (K, n), covariances (K, n, n) or None)."""
        self._check()
        z = np.ascontiguousarray(zs, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.H.shape[0]:
            raise FilterError(f"measurements must have shape (K, {self.H.shape[0]}), got {z.shape}")
        n = self.x.shape[0]
        xs = np.empty((z.shape[0], n))
        Ps = np.empty((z.shape[0], n, n)) if store_cov else np.empty((1, n, n))
        skipped = kfk._kf_run(self.x, self.P, self.F, self.Q, self.H, self.R, z, xs, Ps, store_cov)
        if skipped:
            self.rejected["skipped_update"] += int(skipped)
        return xs, (Ps if store_cov else None)

    def warmup(self) -> None:
        """Compile the kernels (call at start, never on the first message)."""
        kf = KalmanFilter(2, 1)
        kf.H[0, 0] = 1.0
        kf.run(np.zeros((2, 1)))
        kf.predict()
        kf.update(np.zeros(1))


__all__ = ["FilterError", "KalmanFilter", "constant_velocity_model"]
