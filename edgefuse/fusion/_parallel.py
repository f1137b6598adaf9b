"""Serial-first choice between a kernel and its parallel twin (``threads > 1``), and running the latter.

Every fusion kernel with a ``threads`` option has a serial kernel and a parallel one that give
bit-identical results, so which one runs is purely a speed decision.  On a small machine shared with
other processes the parallel kernel is often the slower one: a Numba (OpenMP) region waits for its
slowest thread, and a worker preempted by another process stalls the whole call for a scheduler
time slice (several milliseconds on a call that takes one).  :class:`ParallelChooser` therefore
treats the serial kernel as the baseline and the parallel kernel as a candidate that has to earn its
place, so that ``threads > 1`` is never measurably slower than ``threads = 1``.

Policy (all counts are calls of the owning object that are large enough to be eligible):

1. **Warm-up**: the first ``warmup_calls`` calls run serial and build the serial reference (median
   of the last ``serial_window`` serial timings, per point).
2. **Serial state, bounded exploration**: the parallel kernel is tried (a *probe*) once every
   ``interval`` calls, ``interval`` starting at ``probe_interval``.  A probe *wins* when it is faster
   than the serial reference by more than ``margin``; otherwise it *loses* and ``interval`` grows
   ``backoff``-fold, up to ``max_probe_interval`` — so on a machine where parallel never pays,
   exploration decays to one call in ``max_probe_interval``.  After a win the next probe comes
   ``confirm_interval`` calls later; ``confirm`` consecutive wins switch to the parallel state.
3. **Cheap contention gate**: before a probe the chooser reads the number of runnable tasks from
   ``/proc/loadavg`` (about 15 µs, only when a probe is due) and the CPUs this process may run on
   (``os.sched_getaffinity``).  When fewer idle CPUs remain than the parallel kernel would use, the
   probe is skipped: it would only measure a stall.  Where ``/proc/loadavg`` is missing the measured
   time alone decides.
4. **Parallel state, immediate fall-back**: every call runs parallel except one serial call in
   ``refresh_every``, which keeps the serial reference current (a serial call is never slower than
   ``threads = 1``).  The chooser switches back to serial as soon as one parallel call takes more
   than twice the serial reference or the median of the last ``confirm`` parallel calls is no longer
   below it.  (The gate is not read in this state: right after a parallel region the pool's own
   workers are still spinning and count as runnable, so it would see contention that is not there.)
   Exploration then restarts at ``probe_interval`` if the parallel spell lasted at least
   ``max_probe_interval / 4`` calls; a shorter spell (the load flaps) counts as a lost probe and
   the interval grows ``backoff``-fold, which bounds how often a stall can recur.

Cost bound: in the serial state at most one call in ``probe_interval`` (after the warm-up), decaying
to one in ``max_probe_interval``, runs the slower kernel; on a loaded machine none does.  With the
defaults a run on a machine where parallel loses probes at calls 72, 328 and 1352, then once every
1024 calls: under 0.5 % of the calls of a 300-call run, so neither its median nor its p99 moves.
In the parallel state, a change of load costs at most two slow calls before the fall-back.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["ParallelChooser", "idle_cpus", "run_parallel", "usable_cpus"]

_LOADAVG = "/proc/loadavg"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where unsupported)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def idle_cpus() -> int | None:
    """Usable CPUs not taken by another runnable task right now, or None when unknown.

    Reads the instantaneous runnable-task count (4th field of ``/proc/loadavg``, which counts the
    calling thread too), so it is a snapshot, not the 1-minute load average.
    """
    try:
        with open(_LOADAVG, "rb") as f:
            fields = f.read().split()
        running = int(fields[3].split(b"/")[0])
    except (OSError, IndexError, ValueError):
        return None
    return usable_cpus() - max(0, running - 1)


def _median(values: deque[float]) -> float:
    """Median of a short window (pure Python: a few µs, where ``np.median`` costs about 15)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def max_threads() -> int:
    """Numba's thread-pool size (``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


def run_parallel(threads: int, func: Any, *args: Any) -> Any:
    """Call the parallel kernel ``func(*args)`` on at most ``threads`` Numba threads; returns its result."""
    previous = numba.get_num_threads()
    wanted = min(threads, max_threads())
    if wanted == previous:
        return func(*args)
    numba.set_num_threads(wanted)
    try:
        return func(*args)
    finally:
        numba.set_num_threads(previous)


class ParallelChooser:
    """Decide per call whether the parallel kernel runs (see the module docs for the policy).

    Use: ``parallel = chooser.pick()``, run that kernel, then ``chooser.record(parallel, seconds / n)``
    with the call's time normalised by its size (so clouds of different sizes compare).

    Args:
        threads: the owner's ``threads``; the parallel kernel is never picked when fewer than two
            of them can run (``min(threads, usable CPUs, NUMBA_NUM_THREADS) < 2``).
        idle: returns the number of idle usable CPUs, or None when unknown (default
            :func:`idle_cpus`; injectable for tests).
        Other arguments: the policy's constants (module docs).
    """

    SERIAL = "serial"
    PARALLEL = "parallel"

    def __init__(
        self,
        threads: int,
        *,
        warmup_calls: int = 8,
        probe_interval: int = 64,
        backoff: int = 4,
        max_probe_interval: int = 1024,
        confirm: int = 3,
        confirm_interval: int = 4,
        margin: float = 0.1,
        serial_window: int = 16,
        refresh_every: int = 16,
        idle: Callable[[], int | None] = idle_cpus,
    ) -> None:
        self.threads = min(int(threads), usable_cpus(), max_threads())
        self._warmup = warmup_calls
        self._base = probe_interval
        self._backoff = backoff
        self._max_interval = max_probe_interval
        self._confirm = confirm
        self._confirm_interval = confirm_interval
        self._margin = margin
        self._refresh_every = refresh_every
        self._idle = idle
        self._serial: deque[float] = deque(maxlen=serial_window)
        self._parallel: deque[float] = deque(maxlen=confirm)
        self.state = self.SERIAL
        self._interval = probe_interval
        self._countdown = warmup_calls + probe_interval
        self._wins = 0
        self._since_refresh = 0
        self._spell = 0
        #: Counters for benchmarks and tests.
        self.calls = 0
        self.parallel_calls = 0
        self.probes = 0
        self.skipped_busy = 0
        self.switches = 0

    @property
    def enabled(self) -> bool:
        """Whether the parallel kernel can ever be picked (at least two usable threads)."""
        return self.threads >= 2

    def reference(self) -> float | None:
        """Median serial time per unit over the window, or None before any serial call."""
        return _median(self._serial) if self._serial else None

    def pick(self) -> bool:
        """Return True when this call should run the parallel kernel."""
        self.calls += 1
        if not self.enabled:
            return False
        if self.state == self.PARALLEL:
            self._spell += 1
            self._since_refresh += 1
            if self._since_refresh >= self._refresh_every:
                self._since_refresh = 0
                return False
            return True
        self._countdown -= 1
        if self._countdown > 0 or len(self._serial) < self._warmup:
            return False
        if not self._gate_open():
            self.skipped_busy += 1
            self._countdown = self._interval
            return False
        self.probes += 1
        return True

    def record(self, parallel: bool, seconds_per_unit: float) -> None:
        """Store the time of the call just made with the kernel :meth:`pick` chose."""
        if not parallel:
            self._serial.append(seconds_per_unit)
            return
        self.parallel_calls += 1
        ref = self.reference()
        self._parallel.append(seconds_per_unit)
        if ref is None:  # pragma: no cover (pick() never probes before the warm-up)
            return
        if self.state == self.PARALLEL:
            if seconds_per_unit > 2.0 * ref or _median(self._parallel) >= ref:
                self._fall_back()
            return
        if seconds_per_unit < (1.0 - self._margin) * ref:
            self._wins += 1
            if self._wins >= self._confirm:
                self.state = self.PARALLEL
                self.switches += 1
                self._since_refresh = 0
                self._spell = 0
                self._wins = 0
            else:
                self._countdown = self._confirm_interval
        else:
            self._to_serial(min(self._interval * self._backoff, self._max_interval))

    def _gate_open(self) -> bool:
        idle = self._idle()
        return idle is None or idle >= self.threads

    def _fall_back(self) -> None:
        long_spell = self._spell >= self._max_interval // 4
        self._to_serial(self._base if long_spell else min(self._interval * self._backoff, self._max_interval))

    def _to_serial(self, interval: int) -> None:
        if self.state == self.PARALLEL:
            self.switches += 1
        self.state = self.SERIAL
        self._wins = 0
        self._parallel.clear()
        self._interval = interval
        self._countdown = interval

    def snapshot(self) -> dict[str, Any]:
        """State and counters (for benchmarks and logs)."""
        return {"state": self.state, "threads": self.threads, "calls": self.calls,
                "parallel_calls": self.parallel_calls, "probes": self.probes,
                "skipped_busy": self.skipped_busy, "switches": self.switches,
                "probe_interval": self._interval}
