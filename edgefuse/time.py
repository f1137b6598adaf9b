"""Integer-nanosecond time.

All stamps inside edgefuse are Python ``int`` or ``numpy.int64`` nanoseconds (names end in ``_ns``).
Floats in seconds only appear at user-facing edges (CLI, reports, plots).
"""

from __future__ import annotations

import time as _time
from typing import Any

import numpy as np

from edgefuse.errors import InputDataError

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000


def ns_from_ros(stamp: Any) -> int:
    """Convert a ROS ``Time`` (``sec``/``nanosec`` for ROS 2, ``sec``/``nanosec`` in rosbags' ROS 1 too)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ros_parts(stamp_ns: int) -> tuple[int, int]:
    """Split nanoseconds into ``(sec, nanosec)`` with ``0 <= nanosec < 1e9`` (negative stamps floor)."""
    sec, nsec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nsec


def ns_from_seconds(seconds: float | str) -> int:
    """Seconds (float or decimal string, e.g. ``"1574859772.428197"``) to integer ns.

    Decimal strings are parsed exactly, without going through a binary float, so unix stamps keep
    their full precision.
    """
    if isinstance(seconds, str):
        text = seconds.strip()
        neg = text.startswith("-")
        if neg or text.startswith("+"):
            text = text[1:]
        whole, _, frac = text.partition(".")
        if not whole.isdigit() and whole != "":
            raise InputDataError(f"not a decimal number of seconds: {seconds!r}")
        if frac and not frac.isdigit():
            raise InputDataError(f"not a decimal number of seconds: {seconds!r}")
        frac = (frac + "000000000")[:9]
        value = int(whole or "0") * NS_PER_S + int(frac or "0")
        return -value if neg else value
    return round(float(seconds) * NS_PER_S)


def seconds_from_ns(stamp_ns: int | np.integer[Any]) -> float:
    """Integer ns to float seconds (for display only)."""
    return int(stamp_ns) / NS_PER_S


def monotonic_ns() -> int:
    """Host monotonic clock in ns (used for receive stamps and latency)."""
    return _time.monotonic_ns()


def as_ns_array(stamps: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Return stamps as a contiguous int64 array, refusing floats (which would lose precision)."""
    arr = np.asarray(stamps)
    if arr.dtype.kind == "f":
        raise InputDataError("stamps must be integer nanoseconds, got floats; convert with ns_from_seconds")
    if arr.dtype.kind not in "iu":
        raise InputDataError(f"stamps must be integer nanoseconds, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)
