"""The ``device`` parameter of the GPU-capable stages: which device runs them, why, and the fallback.

``device: auto`` runs on CUDA where :func:`edgefuse.fusion.cuda.cuda_status` says it runs (numba-cuda
installed, a GPU and a driver that compile and run a test kernel) and on the CPU otherwise; ``cuda``
asks for the GPU and falls back to the CPU with one log line when it cannot run; ``cpu`` never touches
CUDA.  A CUDA failure at run time (out of device memory, a launch error) switches the stage to the CPU
for good, with one log line, and the call is redone there: never a crash.  :meth:`StageDevice.report`
is the stage's report entry (``stages.<name>.details.device``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from edgefuse.errors import EdgefuseError

Device = Literal["auto", "cpu", "cuda"]
T = TypeVar("T")
log = logging.getLogger("edgefuse.stages")


class StageDevice:
    """The device of one stage (see the module docs)."""

    def __init__(self, stage: str, requested: str) -> None:
        from edgefuse.fusion.cuda import resolve_device

        self.stage = stage
        self.requested = requested
        self.device, self.reason = resolve_device(requested)
        self.fallbacks = 0
        self.timing: dict[str, float] = {}
        if requested == "cuda" and self.device == "cpu":
            log.warning("stage '%s': %s", stage, self.reason)

    def pick(self, cpu: type[T], cuda_name: str) -> type[T]:
        """``cpu``, or the class ``cuda_name`` of :mod:`edgefuse.fusion.cuda` when running on CUDA."""
        if self.device != "cuda":
            return cpu
        import edgefuse.fusion.cuda as gpu

        cls: type[T] = getattr(gpu, cuda_name)
        return cls

    def failed(self, exc: BaseException) -> None:
        """A CUDA failure: run on the CPU from now on (one log line, counted in the report)."""
        first = str(exc).splitlines()[0] if str(exc) else ""
        self.device = "cpu"
        self.reason = f"device: cuda failed at run time ({type(exc).__name__}: {first}), running on cpu"
        self.fallbacks += 1
        log.warning("stage '%s': %s", self.stage, self.reason)

    def run(self, call: Callable[[], T], rebuild: Callable[[], None]) -> T:
        """``call()``; on CUDA, an exception other than an edgefuse error (bad input stays an input error)
        switches to the CPU: ``rebuild()`` drops the CUDA objects and ``call()`` runs again."""
        if self.device != "cuda":
            return call()
        try:
            result = call()
        except EdgefuseError:
            raise
        except Exception as exc:
            self.failed(exc)
            rebuild()
            return call()
        return result

    def record(self, obj: Any) -> None:
        """Keep the last call's copy/kernel split of a CUDA object (``last_timing``)."""
        timing = getattr(obj, "last_timing", None)
        if isinstance(timing, dict):
            self.timing = dict(timing)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requested": self.requested, "device": self.device, "reason": self.reason,
                               "fallbacks": self.fallbacks}
        if self.device == "cuda" and self.timing:
            out["last_call_s"] = self.timing
        return out
