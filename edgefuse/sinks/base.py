"""The :class:`Sink` seam: where a pipeline's outputs go (bag writer now; transport publisher, live view later)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Sink(Protocol):
    """Receives a pipeline's outputs.

    ``open`` gets every output topic with its edge type (see :mod:`edgefuse.msgs.edges`) before the first
    ``write``; ``write`` gets one output payload with the data time it is stamped with; ``close`` flushes
    and releases everything (called once, also after a failure).  A sink never loses data silently: what
    it cannot write it counts and reports.
    """

    def open(self, outputs: Mapping[str, str]) -> None: ...

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None: ...

    def close(self) -> None: ...
