"""One entry point over the three methods."""

from __future__ import annotations

from typing import Any

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal.types import OffsetEstimate, Signal

METHODS = ("xcorr", "dtw", "cca")


def estimate_time_offset(a: Signal, b: Signal, *, method: str = "xcorr", **options: Any) -> OffsetEstimate:
    """Offset of ``b`` relative to reference ``a`` (``t_a = t_b + offset``) with ``method`` one of
    ``xcorr`` (scalar), ``dtw`` (scalar, warp constrained to offset + drift) or ``cca`` (multivariate).
    ``options`` go to the method (see :func:`estimate_offset_xcorr` for the shared ones)."""
    if method == "xcorr":
        from edgefuse_calibration.temporal.xcorr import estimate_offset_xcorr

        return estimate_offset_xcorr(a, b, **options)
    if method == "dtw":
        from edgefuse_calibration.temporal.dtw import estimate_offset_dtw

        return estimate_offset_dtw(a, b, **options)
    if method == "cca":
        from edgefuse_calibration.temporal.cca import estimate_offset_cca

        return estimate_offset_cca(a, b, **options)
    raise CalibrationError(f"unknown time-offset method {method!r} (expected one of {', '.join(METHODS)})")
