"""Device choice, the CUDA availability probe and the device buffer pool (no ``numba.cuda`` at import)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError, ParameterError

__all__ = ["DEVICES", "TOLERANCES", "BufferPool", "CudaUnavailableError", "cuda_status", "resolve_device"]

log = logging.getLogger("edgefuse.fusion.cuda")

#: the values of a stage's ``device`` parameter
DEVICES = ("auto", "cpu", "cuda")

#: Agreement of the CUDA kernels with the CPU kernels where it is not bit-identical (absolute, in the
#: output's unit).  On the simulator every output is bit-identical except BEV mean intensity (atomic
#: float32 sums in another order).
TOLERANCES: dict[str, float] = {
    "projection.uv_px": 1e-3,  # fisheye atan (libdevice vs libm): a few ulp of float64 before float32 rounding
    "projection.depth_m": 0.0,  # float32(float64 z): the same products on both sides
    "deskew.xyz_m": 1e-9,  # sin/cos (libdevice vs libm, or Taylor vs libm at the 0.5 rad switch)
    "bev.mean_intensity": 1e-4,  # relative: float32 sums in atomic order
    "bev.density": 1e-6,  # log (libdevice vs libm)
}


class CudaUnavailableError(EdgefuseError):
    """CUDA was requested where it cannot run (no numba-cuda, no GPU/driver, a driver/runtime mismatch)."""


_STATUS: tuple[bool, str] | None = None


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before ``numba.cuda`` loads)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _probe() -> tuple[bool, str]:
    try:
        from numba import cuda as _cuda
    except ImportError as exc:  # numba without its CUDA target and no numba-cuda
        return False, f"numba.cuda cannot be imported ({exc}); install the extra: pip install 'edgefuse[cuda]'"
    if simulator_enabled():
        return True, "Numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1): results only, no speed"
    cuda: Any = _cuda
    try:
        if not cuda.is_available():
            return False, "no usable CUDA GPU/driver (numba.cuda.is_available() is False)"
        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
        cc = device.compute_capability
        # A driver/runtime mismatch or a missing NVVM shows here: compile and run a one-thread kernel.
        from edgefuse.fusion.cuda import _kernels

        _kernels.smoke_test()
    except Exception as exc:
        return False, f"CUDA unusable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return True, f"{name} (compute capability {cc[0]}.{cc[1]})"


def cuda_status(*, refresh: bool = False) -> tuple[bool, str]:
    """``(available, why)``: whether CUDA kernels can run here, probed once per process (compiles and runs
    a one-thread kernel, so a driver/runtime mismatch is found before a stage relies on it)."""
    global _STATUS  # noqa: PLW0603
    if _STATUS is None or refresh:
        _STATUS = _probe()
    return _STATUS


def resolve_device(requested: str) -> tuple[str, str]:
    """The device a stage runs on for ``requested`` (``"auto"``, ``"cpu"``, ``"cuda"``) and why.

    ``"auto"`` and ``"cuda"`` give ``"cuda"`` where :func:`cuda_status` says it runs, else ``"cpu"``;
    for ``"cuda"`` that fallback is logged once (one line) by the caller's report.  Never raises for an
    unavailable GPU; raises :class:`ParameterError` for an unknown name.
    """
    if requested not in DEVICES:
        raise ParameterError(f"device must be one of {DEVICES}, got {requested!r}")
    if requested == "cpu":
        return "cpu", "device: cpu requested"
    ok, why = cuda_status()
    if ok:
        return "cuda", f"device: cuda ({why})"
    return "cpu", f"device: {requested} requested, running on cpu: {why}"


@dataclass
class BufferPool:
    """Device (or pinned-free host) arrays reused between calls, keyed by name.

    :meth:`get` returns an array of at least ``rows`` rows (``row_shape`` and ``dtype`` fixed per name):
    the existing one when it is large enough, else a new one of ``max(rows, 2 * old)`` rows.  Counts every
    allocation (``allocations``) and the bytes held (``nbytes``), so a steady state with no allocation
    can be checked.  ``allocate`` is the function making an array of a shape and dtype (default
    ``numba.cuda.device_array``).
    """

    allocate: Any = None
    allocations: int = 0
    nbytes: int = 0
    _arrays: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, rows: int, row_shape: tuple[int, ...] = (), dtype: Any = np.float32) -> Any:
        """A device array of shape ``(>= rows, *row_shape)`` and ``dtype``; slice ``[:rows]`` to use it."""
        dt = np.dtype(dtype)
        have = self._arrays.get(name)
        if have is not None and have.shape[1:] == tuple(row_shape) and np.dtype(have.dtype) == dt \
                and have.shape[0] >= rows:
            return have
        new_rows = max(int(rows), 1)
        if have is not None and have.shape[1:] == tuple(row_shape) and np.dtype(have.dtype) == dt:
            new_rows = max(new_rows, 2 * have.shape[0])
            self.nbytes -= int(have.nbytes)
        elif have is not None:
            self.nbytes -= int(have.nbytes)
        alloc = self.allocate
        if alloc is None:
            from numba import cuda

            alloc = cuda.device_array
        array = alloc((new_rows, *row_shape), dtype=dt)
        self._arrays[name] = array
        self.allocations += 1
        self.nbytes += int(array.nbytes)
        return array

    def __len__(self) -> int:
        return len(self._arrays)


def fallback_line(stage: str, why: str) -> str:
    """The one log line of a stage that falls back from CUDA to the CPU."""
    return f"stage '{stage}': {why}"


def log_fallback(stage: str, why: str) -> None:
    log.warning(fallback_line(stage, why))
