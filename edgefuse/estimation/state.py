"""The 15-variable state, per-sensor update selections, and the reasons a measurement is rejected.

State layout (robot_localization's order; world frame for pose, body (``base_link``) frame for the
rest; SI units, angles in radians)::

    0 x   1 y   2 z   3 roll   4 pitch   5 yaw
    6 vx  7 vy  8 vz  9 vroll 10 vpitch 11 vyaw
    12 ax 13 ay 14 az

A sensor's ``config`` is 15 booleans in that order choosing which state variables it updates (the
``*_config`` vectors of ekf_localization_node).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ConfigError
from edgefuse.estimation import _kernels as kern

STATE_NAMES: tuple[str, ...] = (
    "x", "y", "z", "roll", "pitch", "yaw",
    "vx", "vy", "vz", "vroll", "vpitch", "vyaw",
    "ax", "ay", "az",
)
N_STATE = 15
POSE = slice(0, 6)
TWIST = slice(6, 12)
ACCEL = slice(12, 15)

#: Reason names of rejected measurements, as counted by the filters.
KERNEL_REASONS: dict[int, str] = {
    kern.ST_MAHALANOBIS: "mahalanobis",
    kern.ST_NUMERICAL: "numerical",
    kern.ST_OUT_OF_ORDER: "out_of_order",
    kern.ST_DUPLICATE: "duplicate",
    kern.ST_TOO_OLD: "too_old",
    kern.ST_FUTURE: "future",
    kern.ST_NONFINITE: "nan",
    kern.ST_NOT_PSD: "not_psd",
}
#: Reasons found before the kernel runs (see :mod:`edgefuse.estimation.sensors`).
PRE_REASONS: tuple[str, ...] = ("no_fix", "unknown_frame", "not_provided", "out_of_range")
REASONS: tuple[str, ...] = tuple(dict.fromkeys([*KERNEL_REASONS.values(), *PRE_REASONS]))


def parse_config(value: Any, what: str = "config") -> npt.NDArray[np.bool_]:
    """A 15-boolean update selection from a list (or a list of variable names)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        if items and all(isinstance(v, str) for v in items):
            unknown = [v for v in items if v not in STATE_NAMES]
            if unknown:
                raise ConfigError(f"{what}: unknown state variable(s) {unknown}; known: {list(STATE_NAMES)}")
            return np.array([name in items for name in STATE_NAMES], dtype=bool)
        if len(items) == N_STATE and all(isinstance(v, bool | np.bool_) for v in items):
            return np.array(items, dtype=bool)
    raise ConfigError(f"{what} must be 15 booleans (x y z roll pitch yaw vx vy vz vroll vpitch vyaw ax ay az)"
                      f" or a list of those names, got {value!r}")


def parse_matrix(value: Any, what: str, *, psd: bool = True) -> npt.NDArray[np.float64]:
    """A 15×15 covariance from 15 diagonal values, 225 row-major values, or a 15×15 nested list."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers, got {value!r}") from None
    if a.shape == (N_STATE,):
        a = np.diag(a)
    elif a.shape == (N_STATE * N_STATE,):
        a = a.reshape(N_STATE, N_STATE)
    if a.shape != (N_STATE, N_STATE):
        raise ConfigError(f"{what} must have 15 (diagonal) or 225 values, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{what} contains NaN or infinite values")
    if psd:
        if not np.allclose(a, a.T, atol=1e-12):
            raise ConfigError(f"{what} is not symmetric")
        lo = float(np.linalg.eigvalsh(a).min())
        if lo < -1e-12:
            raise ConfigError(f"{what} is not positive semi-definite (smallest eigenvalue {lo:.3g})")
    return a
