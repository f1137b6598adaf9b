"""Sinks: where a pipeline's outputs go — :class:`Sink` (the seam) and :class:`RecordSink` (digests + bag/MCAP)."""

from __future__ import annotations

from edgefuse.sinks.base import Sink
from edgefuse.sinks.record import RecordSink, check_writable_output

__all__ = ["RecordSink", "Sink", "check_writable_output"]
