"""Online time-offset estimation: re-estimate over a sliding window while a pipeline runs, flag drift."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal.estimate import estimate_time_offset
from edgefuse_calibration.temporal.types import OffsetEstimate, Signal


@dataclass(frozen=True)
class OnlineUpdate:
    """One re-estimate: window end ``t_ns``, the estimate, and whether it disagrees with the reference
    offset by more than the drift threshold (``drift``) together with that difference."""

    t_ns: int
    estimate: OffsetEstimate
    drift: bool
    delta_ns: int | None


class OnlineOffsetEstimator:
    """Sliding-window offset estimator for two live streams.

    Push samples with :meth:`push_a` (reference) and :meth:`push_b` in stamp order per stream.  Every
    ``hop_ns`` of data, :meth:`push_a`/:meth:`push_b` return an :class:`OnlineUpdate` computed on the
    last ``window_ns`` (else None).  The reference offset is ``reference_offset_ns`` (e.g. the rig's)
    or, when None, the first ``ok`` estimate.  An ``ok`` estimate is flagged as drift when it differs
    from the reference by more than ``max(drift_threshold_ns, 3 σ)``.  Estimates that are not ``ok``
    are reported but never flag drift.  Memory is bounded by the window (old samples are dropped).
    """

    def __init__(self, *, window_ns: int = 30_000_000_000, hop_ns: int = 5_000_000_000,
                 method: str = "xcorr", drift_threshold_ns: int = 10_000_000,
                 reference_offset_ns: int | None = None, max_lag_ns: int = 1_000_000_000,
                 **options: Any) -> None:
        if window_ns <= 0 or hop_ns <= 0:
            raise CalibrationError("window_ns and hop_ns must be positive")
        self.window_ns = int(window_ns)
        self.hop_ns = int(hop_ns)
        self.method = method
        self.drift_threshold_ns = int(drift_threshold_ns)
        self.reference_offset_ns = reference_offset_ns
        self.max_lag_ns = int(max_lag_ns)
        self.options = options
        self._a: deque[tuple[int, npt.NDArray[np.float64]]] = deque()
        self._b: deque[tuple[int, npt.NDArray[np.float64]]] = deque()
        self._next_ns: int | None = None
        self.history: list[OnlineUpdate] = []

    def push_a(self, stamp_ns: int, value: npt.ArrayLike) -> OnlineUpdate | None:
        """Add a reference sample; returns an update when one is due."""
        return self._push(self._a, stamp_ns, value)

    def push_b(self, stamp_ns: int, value: npt.ArrayLike) -> OnlineUpdate | None:
        """Add a sample of the stream being aligned; returns an update when one is due."""
        return self._push(self._b, stamp_ns, value)

    @property
    def drift_detected(self) -> bool:
        """True when the latest ``ok`` update was flagged."""
        for u in reversed(self.history):
            if u.estimate.ok:
                return u.drift
        return False

    def _push(self, buf: deque[tuple[int, npt.NDArray[np.float64]]], stamp_ns: int,
              value: npt.ArrayLike) -> OnlineUpdate | None:
        stamp_ns = int(stamp_ns)
        if buf and stamp_ns <= buf[-1][0]:
            raise CalibrationError(f"online offset: stamp {stamp_ns} is not after the previous one"
                                   f" ({buf[-1][0]})", stamp_ns=stamp_ns)
        buf.append((stamp_ns, np.atleast_1d(np.asarray(value, dtype=np.float64))))
        if self._next_ns is None:
            self._next_ns = stamp_ns + self.window_ns
        keep_from = stamp_ns - self.window_ns - self.max_lag_ns
        for q in (self._a, self._b):
            while q and q[0][0] < keep_from:
                q.popleft()
        if stamp_ns < self._next_ns or not self._a or not self._b:
            return None
        self._next_ns = stamp_ns + self.hop_ns
        return self._update(stamp_ns)

    def _update(self, now_ns: int) -> OnlineUpdate:
        t0 = now_ns - self.window_ns
        a = _signal(self._a, t0, "a")
        b = _signal(self._b, t0, "b")
        est = estimate_time_offset(a, b, method=self.method, max_lag_ns=self.max_lag_ns, **self.options)
        drift = False
        delta = None
        if est.ok and est.offset_ns is not None:
            if self.reference_offset_ns is None:
                self.reference_offset_ns = est.offset_ns
            delta = est.offset_ns - self.reference_offset_ns
            limit = max(self.drift_threshold_ns, 3 * (est.uncertainty_ns or 0))
            drift = abs(delta) > limit
        upd = OnlineUpdate(now_ns, est, drift, delta)
        self.history.append(upd)
        return upd


def _signal(buf: deque[tuple[int, npt.NDArray[np.float64]]], t0_ns: int, name: str) -> Signal:
    rows = [(t, v) for t, v in buf if t >= t0_ns]
    st = np.array([t for t, _ in rows], dtype=np.int64)
    vals = np.stack([v for _, v in rows]) if rows else np.zeros((0, 1))
    if vals.ndim == 2 and vals.shape[1] == 1:
        vals = vals[:, 0]
    return Signal(st, vals, name)
