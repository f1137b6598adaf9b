"""Sources: where envelopes come from — the :class:`Source` seam, :func:`open_source`, :class:`BagSource`."""

from __future__ import annotations

from edgefuse.sources.bag import BagSource
from edgefuse.sources.base import Source, SourceTopic, TimeOffsets, open_source, register_source

__all__ = ["BagSource", "Source", "SourceTopic", "TimeOffsets", "open_source", "register_source"]
