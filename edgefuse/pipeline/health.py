"""Per-input health: gaps, silence at the end, messages no set used, and a verdict per input.

A :class:`HealthMonitor` is fed one ``(input, stamp_ns)`` per envelope (:meth:`HealthMonitor.observe`, a
few hundred nanoseconds, bounded memory) by whoever runs the pipeline — the replay runner now, a live node
later — and summarises on demand (:meth:`HealthMonitor.report`), given the synchronizer's counters.

Definitions (stamps are the envelopes' ``stamp_ns``: acquisition time, offset-corrected):

- **nominal period**: the median of the input's last :data:`WINDOW` intervals between consecutive
  stamps (re-estimated every :data:`REESTIMATE_EVERY` intervals), so a few gaps or bursts do not move it.
  Out-of-order and duplicate stamps are counted and left out of the intervals.
- **gap**: an interval longer than ``gap_periods`` nominal periods at the time it happened (default
  :data:`DEFAULT_GAP_PERIODS`: three periods, i.e. at least about three messages in a row missing).
  The first :data:`MIN_INTERVALS` intervals wait until a period can be estimated and are checked then.
  Each gap is reported with its start (absolute ns and seconds since the run's first stamp), duration
  and length in periods; the first :data:`MAX_GAPS_LISTED` are listed, all are counted.
- **silent at the end**: the time between the input's last stamp and the run's end (``end_ns``: the
  latest stamp of any input unless given, e.g. the host clock of a live node).
- **never used**: messages of the input that joined no set (the synchronizer's drops by reason, plus what
  is still queued), from :class:`edgefuse.sync.base.SyncStats`.

Verdict per input (the worst that applies; every reason is listed):

- ``absent``: no message at all;
- ``stopped``: silent at the end for longer than ``gap_periods`` periods;
- ``degraded``: at least one gap; messages out of order or duplicated; a held input missing from sets
  (none, or only a too old message, at a set's stamp); no message joined any set; or too few messages
  (fewer than 3) to estimate a period;
- ``ok``: none of these.

Messages never used are reported with their reasons but do not by themselves degrade the verdict: a
faster stream paired with a slower one leaves some unused (``unmatched``, ``max_interval``), and when one
input stalls the others' queues overflow (``queue_full``) — the stalled input is the one flagged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgefuse.errors import ConfigError
from edgefuse.sync.base import InputStats, SyncStats

#: Default gap threshold, in nominal periods.
DEFAULT_GAP_PERIODS = 3.0
#: Intervals kept per input for the period estimate.
WINDOW = 128
#: The period estimate is refreshed after this many new intervals.
REESTIMATE_EVERY = 16
#: Intervals needed before gaps are judged as they come.
MIN_INTERVALS = 4
#: Gaps listed in detail per input (all are counted).
MAX_GAPS_LISTED = 20

_VERDICT_ORDER = ("ok", "degraded", "stopped", "absent")
_NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class Gap:
    """One interval longer than the threshold: ``start_ns`` (last stamp before it) .. ``end_ns``."""

    start_ns: int
    end_ns: int
    period_ns: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class InputHealth:
    """Running numbers of one input (see the module documentation)."""

    name: str
    gap_periods: float = DEFAULT_GAP_PERIODS
    count: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    out_of_order: int = 0
    duplicates: int = 0
    gaps_total: int = 0
    longest_gap_ns: int = 0
    gaps: list[Gap] = field(default_factory=list)
    _intervals: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _pending: list[tuple[int, int]] = field(default_factory=list)
    _period_ns: int | None = None
    _since_estimate: int = 0

    def observe(self, stamp_ns: int) -> None:
        """Account for one message stamped ``stamp_ns``."""
        self.count += 1
        last = self.last_ns
        if last is None:
            self.first_ns = self.last_ns = stamp_ns
            return
        if stamp_ns <= last:
            if stamp_ns == last:
                self.duplicates += 1
            else:
                self.out_of_order += 1
            return
        self.last_ns = stamp_ns
        interval = stamp_ns - last
        self._intervals.append(interval)
        self._since_estimate += 1
        period = self._period_ns
        if (period is None or self._since_estimate >= REESTIMATE_EVERY) and len(self._intervals) >= MIN_INTERVALS:
            self._estimate()
            period = self._period_ns
        if period is None:
            self._pending.append((last, stamp_ns))
            return
        if interval > self.gap_periods * period:
            self._gap(last, stamp_ns, period)

    def _estimate(self) -> None:
        ordered = sorted(self._intervals)
        n = len(ordered)
        mid = n // 2
        self._period_ns = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) // 2
        self._since_estimate = 0
        if self._pending:
            pending, self._pending = self._pending, []
            for start, end in pending:
                if end - start > self.gap_periods * self._period_ns:
                    self._gap(start, end, self._period_ns)

    def _gap(self, start_ns: int, end_ns: int, period_ns: int) -> None:
        self.gaps_total += 1
        self.longest_gap_ns = max(self.longest_gap_ns, end_ns - start_ns)
        if len(self.gaps) < MAX_GAPS_LISTED:
            self.gaps.append(Gap(start_ns, end_ns, period_ns))

    @property
    def period_ns(self) -> int | None:
        """The nominal period [ns]; None with fewer than 2 intervals.

        A stream too short for :data:`MIN_INTERVALS` gets its estimate (and its intervals judged) here.
        """
        if self._period_ns is None and len(self._intervals) >= 2:
            self._estimate()
        return self._period_ns

    def summary(self, *, end_ns: int | None, origin_ns: int | None, stats: InputStats | None,
                held: bool = False) -> dict[str, Any]:
        """The JSON-ready health entry of this input (see :meth:`HealthMonitor.report`)."""
        period = self.period_ns
        origin = origin_ns if origin_ns is not None else (self.first_ns or 0)

        def rel_s(ns: int) -> float:
            return (ns - origin) / _NS_PER_S

        reasons: list[str] = []
        verdict = "ok"

        def worse(v: str, reason: str) -> None:
            nonlocal verdict
            reasons.append(reason)
            if _VERDICT_ORDER.index(v) > _VERDICT_ORDER.index(verdict):
                verdict = v

        silent_ns: int | None = None
        if self.count == 0:
            worse("absent", "no message received")
        else:
            assert self.last_ns is not None
            if end_ns is not None:
                silent_ns = max(0, end_ns - self.last_ns)
            if period is None:
                worse("degraded", f"only {self.count} message(s): too few to estimate a period")
            elif silent_ns is not None and silent_ns > self.gap_periods * period:
                worse("stopped", f"no message for the last {silent_ns / _NS_PER_S:.2f} s "
                                 f"({silent_ns / period:.1f} periods) of the run, since {rel_s(self.last_ns):+.2f} s")
            if self.gaps_total:
                longest = max(self.gaps, key=lambda g: g.duration_ns)
                worse("degraded", f"{self.gaps_total} gap(s) longer than {self.gap_periods:g} periods, longest "
                                  f"{self.longest_gap_ns / _NS_PER_S:.2f} s at {rel_s(longest.start_ns):+.2f} s")
            if self.out_of_order or self.duplicates:
                worse("degraded", f"{self.out_of_order} out-of-order and {self.duplicates} duplicate stamp(s)")
        unused: dict[str, Any] | None = None
        if stats is not None:
            never = stats.dropped_total + stats.queued
            by_reason = dict(sorted(stats.dropped.items()))
            if stats.queued:
                by_reason["queued"] = stats.queued
            unused = {"count": never, "by_reason": by_reason}
            if stats.received and stats.used == 0:
                worse("degraded", f"none of its {stats.received} message(s) joined a set")
            if stats.missing:
                worse("degraded", f"missing from {stats.missing} set(s) (no message recent enough)")
        return {
            "verdict": verdict,
            "reasons": reasons,
            "messages": self.count,
            "first_s": None if self.first_ns is None else rel_s(self.first_ns),
            "last_s": None if self.last_ns is None else rel_s(self.last_ns),
            "nominal_period_ms": None if period is None else period / 1e6,
            "gap_threshold_ms": None if period is None else self.gap_periods * period / 1e6,
            "gaps": {
                "count": self.gaps_total,
                "longest_s": self.longest_gap_ns / _NS_PER_S,
                "listed": [{"start_ns": g.start_ns, "start_s": rel_s(g.start_ns),
                            "duration_s": g.duration_ns / _NS_PER_S, "periods": g.duration_ns / g.period_ns}
                           for g in self.gaps],
            },
            "silent_at_end_s": None if silent_ns is None else silent_ns / _NS_PER_S,
            "out_of_order": self.out_of_order,
            "duplicates": self.duplicates,
            "never_used": unused,
            "held": held,
        }


class HealthMonitor:
    """Health of every input of a pipeline, fed envelope by envelope (see the module documentation).

    Args:
        inputs: the input names.
        gap_periods: gap threshold in nominal periods (> 1).
        held: inputs joined by zero-order hold (marked ``held`` in the report).
    """

    def __init__(self, inputs: Iterable[str], gap_periods: float = DEFAULT_GAP_PERIODS,
                 held: Iterable[str] = ()) -> None:
        try:
            self.gap_periods = float(gap_periods)
        except (TypeError, ValueError):
            self.gap_periods = float("nan")
        if not 1.0 < self.gap_periods < float("inf"):
            raise ConfigError(f"gap_periods must be a finite number > 1, got {gap_periods!r}")
        self.inputs = {name: InputHealth(name, self.gap_periods) for name in inputs}
        self.held = frozenset(held)

    def observe(self, input: str, stamp_ns: int) -> None:
        """One message of ``input`` stamped ``stamp_ns`` (unknown inputs are ignored)."""
        h = self.inputs.get(input)
        if h is not None:
            h.observe(stamp_ns)

    def report(self, sync_stats: SyncStats | None = None, *, end_ns: int | None = None) -> dict[str, Any]:
        """Per-input health as a JSON-ready dict.

        ``end_ns`` is the end of the run (default: the latest stamp of any input); times ``*_s`` are
        seconds since the run's first stamp (``origin_ns``).
        """
        firsts = [h.first_ns for h in self.inputs.values() if h.first_ns is not None]
        lasts = [h.last_ns for h in self.inputs.values() if h.last_ns is not None]
        origin = min(firsts) if firsts else None
        end = end_ns if end_ns is not None else (max(lasts) if lasts else None)
        per: dict[str, Any] = {}
        stats_of: Mapping[str, InputStats] = {} if sync_stats is None else sync_stats.inputs
        for name, h in self.inputs.items():
            per[name] = h.summary(end_ns=end, origin_ns=origin, stats=stats_of.get(name),
                                  held=name in self.held)
        worst = max((e["verdict"] for e in per.values()), key=_VERDICT_ORDER.index, default="ok")
        return {
            "gap_periods": self.gap_periods,
            "origin_ns": origin,
            "end_ns": end,
            "verdict": worst,
            "not_ok": [name for name, e in per.items() if e["verdict"] != "ok"],
            "inputs": per,
        }


def format_health(health: Mapping[str, Any]) -> list[str]:
    """Terminal lines for a :meth:`HealthMonitor.report`: one per input, its verdict, numbers and reasons."""
    lines = [f"input health (gap: > {health['gap_periods']:g} nominal periods): {health['verdict']}"
             + (f" ({', '.join(health['not_ok'])} not ok)" if health["not_ok"] else "")]
    width = max((len(n) for n in health["inputs"]), default=0)
    for name, e in health["inputs"].items():
        parts = [f"{e['messages']} msgs"]
        if e["nominal_period_ms"] is not None:
            parts.append(f"period {e['nominal_period_ms']:.1f} ms")
        parts.append(f"{e['gaps']['count']} gaps")
        unused = e["never_used"]
        if unused is not None:
            why = ", ".join(f"{r} {n}" for r, n in unused["by_reason"].items())
            parts.append(f"{unused['count']} never used" + (f" ({why})" if why else ""))
        line = f"  {name:<{width}}  {e['verdict'].upper() if e['verdict'] != 'ok' else 'ok':<9}{', '.join(parts)}"
        lines.append(line)
        lines += [f"  {'':<{width}}  {'':<9}- {r}" for r in e["reasons"]]
    return lines
