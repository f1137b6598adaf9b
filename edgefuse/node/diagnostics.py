"""``/diagnostics`` for the live node: ``diagnostic_msgs/DiagnosticArray`` at 1 Hz.

One status per stage, one for the end-to-end path, one for processing and one per input, named
``edgefuse/<pipeline>/stage/<name>``, ``…/end_to_end``, ``…/processing``, ``…/input/<name>``.

- **Latency** (stages, end-to-end, processing): p50/p90/p99/max over the samples of the last
  ``window_s`` seconds (default 5 s), against the pipeline's budget for that path.  Level: ``ERROR`` when
  the window's p99 exceeds the deadline (more than 1 % of the window late); ``WARN`` when any sample in the
  window missed the deadline, or the p99 exceeds the budget's ``p99_ms``; ``OK`` otherwise (and always
  when the path has no budget: the numbers are still given).  The numbers are the ones the replay report
  gives for the whole run (same recorders, see :mod:`edgefuse.pipeline.latency`).
- **Inputs**: rate over the window, seconds since the last message, received/processed/dropped by reason,
  decode errors.  Level: ``STALE`` when nothing arrived for ``stale_after_s`` (default 1 s; never
  arrived counts from activation); ``WARN`` when messages were dropped or failed to decode in the window;
  ``OK`` otherwise.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefuse.pipeline.latency import LatencyRecorder
from edgefuse.time import NS_PER_MS, NS_PER_S

if TYPE_CHECKING:
    from edgefuse.node.inputs import InputCounters

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"


@dataclass
class Status:
    """One diagnostic_msgs/DiagnosticStatus."""

    level: int
    name: str
    message: str
    hardware_id: str = ""
    values: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"level": LEVEL_NAMES[self.level], "name": self.name, "message": self.message,
                "values": dict(self.values)}


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


class _Window:
    """Which samples of a recorder fall into the last ``window_ns`` (by the times ticks were taken)."""

    def __init__(self) -> None:
        self.marks: deque[tuple[int, int, int]] = deque()  # (tick ns, sample count, misses) at each tick

    def slice(self, rec: LatencyRecorder, now_ns: int, window_ns: int) -> tuple[np.ndarray[Any, Any], int]:
        self.marks.append((now_ns, rec.count, rec.misses))
        while len(self.marks) > 1 and self.marks[1][0] <= now_ns - window_ns:
            self.marks.popleft()
        _, start, misses0 = self.marks[0] if len(self.marks) > 1 else (0, 0, 0)
        return rec.samples_ns[start:], rec.misses - misses0


class Diagnostics:
    """Builds the statuses from a running node's recorders and input counters."""

    def __init__(self, pipeline: str, *, window_s: float = 5.0, stale_after_s: float = 1.0,
                 hardware_id: str = "") -> None:
        self.prefix = f"edgefuse/{pipeline}"
        self.window_ns = int(window_s * NS_PER_S)
        self.stale_after_ns = int(stale_after_s * NS_PER_S)
        self.hardware_id = hardware_id
        self._windows: dict[str, _Window] = {}
        self._drops_seen: dict[str, tuple[int, int]] = {}
        self.last: list[Status] = []

    def latency_status(self, name: str, rec: LatencyRecorder, p99_budget_ms: float | None,
                       now_ns: int) -> Status:
        window = self._windows.setdefault(name, _Window())
        samples, misses = window.slice(rec, now_ns, self.window_ns)
        values = {"window_s": _fmt(self.window_ns / NS_PER_S), "count": str(int(samples.size)),
                  "total_count": str(rec.count), "total_deadline_misses": str(rec.misses)}
        p99 = None
        if samples.size:
            p50, p90, p99 = (float(v) for v in np.percentile(samples, [50, 90, 99]) / NS_PER_MS)
            values.update(p50_ms=_fmt(p50), p90_ms=_fmt(p90), p99_ms=_fmt(p99),
                          max_ms=_fmt(float(samples.max()) / NS_PER_MS))
        deadline_ms = None if rec.budget_ns is None else rec.budget_ns / NS_PER_MS
        values["deadline_ms"] = _fmt(deadline_ms)
        values["deadline_misses"] = str(misses)
        if p99_budget_ms is not None:
            values["p99_budget_ms"] = _fmt(p99_budget_ms)
        level, message = OK, "within budget" if deadline_ms is not None else "no budget"
        if not samples.size:
            message = "no samples in the window"
        elif deadline_ms is not None and p99 is not None and p99 > deadline_ms:
            level, message = ERROR, f"p99 {p99:.2f} ms > deadline {deadline_ms:g} ms"
        elif misses:
            level, message = WARN, f"{misses} deadline miss(es) in the window"
        elif p99_budget_ms is not None and p99 is not None and p99 > p99_budget_ms:
            level, message = WARN, f"p99 {p99:.2f} ms > p99 budget {p99_budget_ms:g} ms"
        return Status(level, f"{self.prefix}/{name}", message, self.hardware_id, values)

    def input_status(self, name: str, c: InputCounters, now_ns: int, active_since_ns: int) -> Status:
        last = c.last_recv_ns
        age_ns = now_ns - (last if last is not None else active_since_ns)
        dropped = sum(c.dropped.values())
        prev_dropped, prev_errors = self._drops_seen.get(name, (0, 0))
        self._drops_seen[name] = (dropped, c.decode_errors)
        values = {
            "topic": c.wire_topic, "type": c.msgtype, "rate_hz": _fmt(c.rate_hz(now_ns, self.window_ns)),
            "age_s": _fmt(age_ns / NS_PER_S) if last is not None else "never",
            "received": str(c.received), "processed": str(c.processed), "decode_errors": str(c.decode_errors),
        }
        for reason, n in sorted(c.dropped.items()):
            values[f"dropped_{reason}"] = str(n)
        if age_ns > self.stale_after_ns:
            level = STALE
            message = ("no message yet" if last is None
                       else f"stale: no message for {age_ns / NS_PER_S:.1f} s")
        elif dropped > prev_dropped or c.decode_errors > prev_errors:
            level = WARN
            message = (f"{dropped - prev_dropped} dropped, {c.decode_errors - prev_errors} undecodable "
                       "since the last report")
        else:
            level, message = OK, "receiving"
        return Status(level, f"{self.prefix}/input/{name}", message, self.hardware_id, values)


def to_message(statuses: list[Status], stamp_ns: int, typestore: Any) -> Any:
    """A rosbags ``diagnostic_msgs/msg/DiagnosticArray`` of ``statuses`` stamped ``stamp_ns``."""
    from edgefuse.msgs._common import make_header, make_msg

    ts = typestore
    out = []
    for s in statuses:
        kvs = [make_msg(ts, "diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in s.values.items()]
        out.append(make_msg(ts, "diagnostic_msgs/msg/DiagnosticStatus", level=s.level, name=s.name, message=s.message,
                            hardware_id=s.hardware_id, values=kvs))
    return make_msg(ts, DIAGNOSTICS_TYPE, header=make_header(ts, stamp_ns, ""), status=out)
