"""``edgefuse record``: write what live sources deliver to an MCAP bag.

:func:`record` opens every source (any :func:`~edgefuse.sources.open_source` URL: ``nmea+serial://``,
``witmotion+serial://``, ``camera://`` …, or a recording), reads each in a thread of its own and writes
their envelopes, in the order they arrive, to a ROS 2 bag through :class:`~edgefuse.sinks.RecordSink`
(CDR, MCAP; the bag's log time of a message is its envelope stamp).  The bag is written at
``<out>.partial`` and moved to ``<out>`` when the recording ends: after ``duration_s``, when every source
has ended, or on SIGINT/SIGTERM (for a recorder, being stopped is the normal end: the bag is complete and
the call returns normally, saying which signal stopped it).  A source that fails (a serial device gone for
good) is reported and the others go on; the bag is then closed readable but left at ``<out>.partial``,
as the sink does for every run that did not end as asked.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edgefuse._cli_common import interrupt_reason
from edgefuse.envelope import Envelope
from edgefuse.errors import EdgefuseError, ReplayError
from edgefuse.msgs.edges import type_of_msgtype
from edgefuse.sinks.record import RecordSink, check_writable_output
from edgefuse.sources.base import Source, open_source

__all__ = ["RecordResult", "format_record", "record"]

#: how long :func:`record` waits for a source's thread to end after asking it to stop [s]
STOP_TIMEOUT_S = 5.0


@dataclass
class RecordResult:
    """What a recording wrote: where, per-topic counts, how it ended, and each source's own statistics."""

    path: Path | None
    complete: bool
    counts: dict[str, int]
    duration_s: float
    stopped_by: str | None = None
    source_errors: dict[str, str] = field(default_factory=dict)
    source_stats: dict[str, Any] = field(default_factory=dict)
    write_errors: dict[str, int] = field(default_factory=dict)


def _reader(index: int, source: Source, out: queue.Queue[tuple[int, Envelope | BaseException | None]]) -> None:
    try:
        for env in source.envelopes():
            out.put((index, env))
    except Exception as exc:  # reported by record(); the other sources go on
        out.put((index, exc))
    out.put((index, None))


def _drain(q: queue.Queue[tuple[int, Envelope | BaseException | None]], sink: RecordSink, errors: dict[str, str],
           urls: Sequence[str]) -> None:
    """Write what the readers delivered before they stopped."""
    while True:
        try:
            index, item = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, Envelope):
            sink.write(item.topic, item.stamp_ns, item.payload)
        elif isinstance(item, BaseException):
            errors[str(urls[index])] = str(item)


def record(urls: Sequence[str], out: str | Path, *, duration_s: float | None = None, overwrite: bool = False,
           progress: TextIO | None = None) -> RecordResult:
    """Record ``urls`` to the bag ``out`` (see the module documentation).

    Raises:
        ReplayError: ``out`` cannot be written, or a source has a topic of a type edgefuse cannot write.
        SourceError / DriverError: a source cannot be opened.
    """
    out = Path(out)
    check_writable_output(out, overwrite=overwrite)
    sources = [open_source(u) for u in urls]
    outputs: dict[str, str] = {}
    for url, src in zip(urls, sources, strict=True):
        for topic, info in src.topics().items():
            edge = type_of_msgtype(info.msgtype)
            if edge is None:
                raise ReplayError(f"{url}: topic {topic} has type {info.msgtype}, which edgefuse cannot record")
            if topic in outputs:
                raise ReplayError(f"{url}: topic {topic} is also delivered by another source; give it another name")
            outputs[topic] = edge
    sink = RecordSink(out, overwrite=overwrite, viewer_extras=False)
    q: queue.Queue[tuple[int, Envelope | BaseException | None]] = queue.Queue()
    threads: list[threading.Thread] = []
    errors: dict[str, str] = {}
    stopped_by: str | None = None
    opened: list[Source] = []
    start = time.monotonic()
    try:
        for src in sources:
            src.open()
            opened.append(src)
        sink.open(outputs)
        for i, src in enumerate(sources):
            t = threading.Thread(target=_reader, args=(i, src, q), name=f"record-{i}", daemon=True)
            t.start()
            threads.append(t)
        running = len(sources)
        next_progress = start + 1.0
        while running:
            now = time.monotonic()
            if duration_s is not None and now - start >= duration_s:
                break
            try:
                index, item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                errors[str(urls[index])] = str(item)
                if progress is not None:
                    print(f"edgefuse record: {urls[index]}: {item}", file=progress)
            else:
                sink.write(item.topic, item.stamp_ns, item.payload)
            if progress is not None and now >= next_progress:
                next_progress = now + 1.0
                total = sum(sink.counts.values())
                print(f"\rrecording {now - start:6.1f} s, {total} messages", end="", file=progress, flush=True)
    except KeyboardInterrupt as exc:
        stopped_by = interrupt_reason(exc)
    finally:
        for src in opened:
            try:
                src.close()
            except EdgefuseError as exc:
                errors.setdefault(str(urls[sources.index(src)]), f"close: {exc}")
        for t in threads:
            t.join(timeout=STOP_TIMEOUT_S)
        _drain(q, sink, errors, urls)
        if errors:
            sink.mark_incomplete("source failed: " + "; ".join(f"{u}: {e}" for u, e in errors.items()))
        sink.close()
        if progress is not None:
            print("", file=progress)
    stats: dict[str, Any] = {}
    for u, s in zip(urls, sources, strict=True):
        get_stats = getattr(s, "stats", None)  # drivers report their counts; the Source protocol has no hook
        if callable(get_stats):
            stats[str(u)] = get_stats()
    return RecordResult(path=sink.path, complete=bool(sink.complete), counts=dict(sink.counts),
                        duration_s=time.monotonic() - start, stopped_by=stopped_by, source_errors=errors,
                        source_stats=stats, write_errors=dict(sink.write_errors))


def format_record(result: RecordResult) -> str:
    """The human summary: where the bag is, how it ended, messages per topic, source problems."""
    state = "complete" if result.complete else "INCOMPLETE"
    lines = [f"bag: {result.path} ({state}, {result.duration_s:.1f} s"
             + (f", stopped by {result.stopped_by.removeprefix('interrupted by ')})" if result.stopped_by else ")")]
    width = max((len(t) for t in result.counts), default=5)
    for topic, n in sorted(result.counts.items()):
        lines.append(f"  {topic:<{width}}  {n:>8} messages")
    for topic, n in sorted(result.write_errors.items()):
        lines.append(f"  {topic}: {n} message(s) could not be serialised (left out)")
    for url, err in result.source_errors.items():
        lines.append(f"SOURCE FAILED {url}: {err}")
    return "\n".join(lines)
