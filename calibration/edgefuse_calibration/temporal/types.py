"""Signals and offset estimates shared by every temporal-alignment method.

Offset convention (the rig's, see ``edgefuse/rig/rig.py``): stream ``a`` is the reference, and the
estimated ``offset_ns`` is what must be *added* to stream ``b``'s stamps to express them in ``a``'s
clock: ``t_a = t_b + offset_ns``.  A stream ``b`` stamped 30 ms late gets ``offset_ns = -30_000_000``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Verdict(enum.StrEnum):
    """How far an estimate can be trusted.  Only ``ok`` estimates carry an offset to write."""

    OK = "ok"
    INSUFFICIENT_EXCITATION = "insufficient_excitation"
    AMBIGUOUS = "ambiguous"
    NO_OVERLAP = "no_overlap"
    TOO_SHORT = "too_short"


@dataclass(frozen=True)
class Signal:
    """A sampled motion signal: ``stamps_ns`` (N,) int64 strictly increasing, ``values`` (N,) or (N, k)
    float64 (NaN marks a missing sample), ``name`` for reports and ``unit`` (e.g. ``rad/s``).

    The constructor checks shapes and stamp order and raises :class:`CalibrationError` on misuse
    (non-monotonic or duplicate stamps name the first offending index).
    """

    stamps_ns: I64
    values: F64
    name: str = "signal"
    unit: str = ""

    def __post_init__(self) -> None:
        st = np.asarray(self.stamps_ns)
        if st.ndim != 1 or not np.issubdtype(st.dtype, np.integer):
            raise CalibrationError(f"{self.name}: stamps_ns must be a 1-D integer array (ns),"
                                   f" got dtype {st.dtype} shape {st.shape}")
        vals = np.asarray(self.values, dtype=np.float64)
        if vals.ndim not in (1, 2) or vals.shape[0] != st.shape[0]:
            raise CalibrationError(f"{self.name}: values must be (N,) or (N, k) with N = {st.shape[0]}"
                                   f" stamps, got shape {vals.shape}")
        st = st.astype(np.int64, copy=False)
        if st.size > 1:
            bad = np.flatnonzero(np.diff(st) <= 0)
            if bad.size:
                i = int(bad[0]) + 1
                what = "duplicate" if st[i] == st[i - 1] else "non-monotonic"
                raise CalibrationError(
                    f"{self.name}: {what} stamps at index {i} ({int(st[i - 1])} then {int(st[i])} ns;"
                    f" {bad.size} such place(s)); sort or de-duplicate the stream first",
                    stamp_ns=int(st[i]))
        object.__setattr__(self, "stamps_ns", st)
        object.__setattr__(self, "values", vals)

    def __len__(self) -> int:
        return int(self.stamps_ns.shape[0])

    @property
    def ndim(self) -> int:
        """Number of channels (1 for a scalar signal)."""
        return 1 if self.values.ndim == 1 else int(self.values.shape[1])

    def matrix(self) -> F64:
        """Values as (N, k)."""
        return self.values.reshape(len(self), -1)

    def median_period_ns(self) -> int:
        """Median stamp spacing (0 for fewer than two samples)."""
        if len(self) < 2:
            return 0
        return int(np.median(np.diff(self.stamps_ns)))

    def shifted(self, offset_ns: int) -> Signal:
        """The same samples with ``offset_ns`` added to every stamp."""
        return Signal(self.stamps_ns + np.int64(offset_ns), self.values, self.name, self.unit)

    def window(self, t0_ns: int, t1_ns: int) -> Signal:
        """Samples with ``t0_ns <= stamp < t1_ns``."""
        i0, i1 = np.searchsorted(self.stamps_ns, [t0_ns, t1_ns])
        return Signal(self.stamps_ns[i0:i1], self.values[i0:i1], self.name, self.unit)


@dataclass
class OffsetEstimate:
    """One time-offset estimate.

    ``offset_ns`` / ``uncertainty_ns`` (one standard deviation) are set only when ``verdict`` is
    ``ok``; otherwise they are None and ``diagnostics['reason']`` says why.  ``diagnostics`` holds
    method-specific numbers (peak correlation, second peak, overlap, jackknife spread, the score
    curve ``lags_ns`` / ``score`` for plots, drift, rotation …).
    """

    offset_ns: int | None
    uncertainty_ns: int | None
    verdict: Verdict
    method: str
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the offset can be used (and written to a rig file)."""
        return self.verdict is Verdict.OK

    def as_tuple(self) -> tuple[int | None, int | None, Verdict, dict[str, Any]]:
        """``(offset_ns, uncertainty_ns, verdict, diagnostics)``."""
        return self.offset_ns, self.uncertainty_ns, self.verdict, self.diagnostics

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """JSON-ready dict; the score curves are left out unless ``curves``."""
        diag = {k: _jsonable(v) for k, v in self.diagnostics.items()
                if curves or k not in ("lags_ns", "score")}
        return {"method": self.method, "verdict": str(self.verdict), "offset_ns": self.offset_ns,
                "uncertainty_ns": self.uncertainty_ns,
                "offset_ms": None if self.offset_ns is None else self.offset_ns / 1e6,
                "uncertainty_ms": None if self.uncertainty_ns is None else self.uncertainty_ns / 1e6,
                "diagnostics": diag}


def refuse(method: str, verdict: Verdict, reason: str, **diagnostics: Any) -> OffsetEstimate:
    """An estimate without a number."""
    return OffsetEstimate(None, None, verdict, method, {"reason": reason, **diagnostics})


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
