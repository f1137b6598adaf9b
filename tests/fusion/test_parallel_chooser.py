"""ParallelChooser policy (synthetic timings) and the Projector's parallel path (bit-identical results)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgefuse.fusion import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, Projector, _parallel
from edgefuse.fusion._parallel import ParallelChooser, idle_cpus, run_parallel, usable_cpus
from edgefuse.fusion.projection import PARALLEL_MIN_POINTS

from .test_projection import CAMERAS, HEIGHT, WIDTH, _cloud, _transform

SERIAL_S = 1e-8  # seconds per point of the synthetic serial kernel


def _chooser(threads: int = 2, idle: int | None = 2, **kwargs: int | float) -> ParallelChooser:
    chooser = ParallelChooser(threads, idle=lambda: idle, **kwargs)  # type: ignore[arg-type]
    chooser.threads = threads  # independent of this machine's CPU count
    return chooser


def _drive(chooser: ParallelChooser, calls: int, parallel_s: Callable[[int], float],
           serial_s: Callable[[int], float] = lambda _: SERIAL_S) -> list[bool]:
    """Run ``calls`` calls with synthetic per-point times; return which path each call took."""
    picks = []
    for i in range(calls):
        parallel = chooser.pick()
        chooser.record(parallel, parallel_s(i) if parallel else serial_s(i))
        picks.append(parallel)
    return picks


def test_starts_serial_and_probes_rarely_when_parallel_loses() -> None:
    chooser = _chooser()
    picks = _drive(chooser, 300, lambda _: 3 * SERIAL_S)
    assert not any(picks[:71])  # warm-up (8) + first interval (64): serial only
    assert [i + 1 for i, p in enumerate(picks) if p] == [72]  # then 64 * 4 = 256 calls until the next
    picks = _drive(chooser, 5000, lambda _: 3 * SERIAL_S)
    probes = [i for i, p in enumerate(picks) if p]
    assert np.all(np.diff(probes) <= 1024) and np.diff(probes)[-1] == 1024  # bounded exploration
    assert chooser.state == ParallelChooser.SERIAL
    assert chooser.probes == chooser.parallel_calls == 1 + len(probes)
    assert chooser.probes / chooser.calls < 0.005


def test_switches_only_after_confirmed_wins_by_a_margin() -> None:
    slightly = _chooser()
    _drive(slightly, 3000, lambda _: 0.95 * SERIAL_S)  # faster, but by less than the 10 % margin
    assert slightly.state == ParallelChooser.SERIAL and slightly.switches == 0
    faster = _chooser()
    picks = _drive(faster, 100, lambda _: 0.6 * SERIAL_S)
    first = picks.index(True)
    assert first == 71
    assert faster.state == ParallelChooser.PARALLEL and faster.switches == 1
    # three probes 4 calls apart, then parallel except one serial refresh call in 16
    assert [i for i in range(first, first + 15) if picks[i]] == [71, 75, 79, 80, 81, 82, 83, 84, 85]
    tail = picks[first + 15:]
    assert 1 - sum(tail) / len(tail) == pytest.approx(1 / 16, abs=0.02)


def test_one_losing_probe_resets_confirmation() -> None:
    times = iter([0.6, 0.6, 1.5, 0.6, 0.6, 0.6] + [0.6] * 1000)
    chooser = _chooser()
    _drive(chooser, 1000, lambda _: next(times) * SERIAL_S)
    assert chooser.switches == 1  # wins, wins, loses (backs off), then three wins in a row
    assert chooser.probes == 6


def test_falls_back_at_once_when_parallel_stalls() -> None:
    chooser = _chooser()
    load = {"parallel": 0.6}
    picks = _drive(chooser, 120, lambda _: load["parallel"] * SERIAL_S)
    assert chooser.state == ParallelChooser.PARALLEL
    load["parallel"] = 3.0  # another process takes a core: the parallel region waits on a preempted thread
    picks = _drive(chooser, 200, lambda _: load["parallel"] * SERIAL_S)
    assert sum(picks[:3]) == 1 and picks[0]  # one slow call, then serial
    assert chooser.state == ParallelChooser.SERIAL
    assert sum(picks) <= 2  # the first call and at most one probe (64 calls later) in 200


def test_falls_back_when_parallel_stops_being_faster() -> None:
    chooser = _chooser()
    _drive(chooser, 120, lambda _: 0.6 * SERIAL_S)
    picks = _drive(chooser, 10, lambda _: 1.2 * SERIAL_S)  # slower, but not a stall (< 2x)
    assert picks[:2] == [True, True] and not any(picks[3:])  # median of the last three >= serial
    assert chooser.state == ParallelChooser.SERIAL


def test_busy_cpus_skip_probes() -> None:
    idle = {"cpus": 0}
    chooser = ParallelChooser(2, idle=lambda: idle["cpus"])
    chooser.threads = 2
    assert not any(_drive(chooser, 2000, lambda _: 0.5 * SERIAL_S))
    assert chooser.skipped_busy > 0 and chooser.probes == 0
    idle["cpus"] = 2
    _drive(chooser, 100, lambda _: 0.5 * SERIAL_S)
    assert chooser.state == ParallelChooser.PARALLEL
    idle["cpus"] = 1  # the pool's own spinning workers look like this right after a region:
    _drive(chooser, 100, lambda _: 0.5 * SERIAL_S)  # measured time, not the gate, rules this state
    assert chooser.state == ParallelChooser.PARALLEL


def test_unknown_load_leaves_the_decision_to_measured_time() -> None:
    chooser = _chooser(idle=None)
    _drive(chooser, 100, lambda _: 0.5 * SERIAL_S)
    assert chooser.state == ParallelChooser.PARALLEL


@pytest.mark.parametrize("threads", [1, 2])
def test_never_parallel_with_one_usable_thread(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if threads == 2:
        monkeypatch.setattr(_parallel, "usable_cpus", lambda: 1)  # e.g. taskset -c 0
    chooser = ParallelChooser(threads, idle=lambda: 8)
    assert not chooser.enabled
    assert not any(_drive(chooser, 500, lambda _: 0.1 * SERIAL_S))


def test_run_median_and_p99_match_serial_under_contention() -> None:
    """Simulated contended run: parallel 3x slower with heavy-tailed noise; the chooser's run is serial's."""
    rng = np.random.default_rng(3)
    n = 300
    noise = rng.lognormal(0.0, 0.25, size=n)
    serial_run = SERIAL_S * noise
    chooser = _chooser()
    took = np.empty(n)
    for i in range(n):
        parallel = chooser.pick()
        took[i] = (3.0 if parallel else 1.0) * serial_run[i]
        chooser.record(parallel, took[i])
    assert np.median(took) == pytest.approx(np.median(serial_run), rel=0.01)
    assert np.percentile(took, 99) <= 1.05 * np.percentile(serial_run, 99)


def test_idle_cpus_reads_runnable_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(_parallel, "_LOADAVG", str(loadavg))
    monkeypatch.setattr(_parallel, "usable_cpus", lambda: 4)
    loadavg.write_text("1.50 1.20 0.90 3/456 12345\n")
    assert idle_cpus() == 2  # 3 runnable, one of them the caller
    loadavg.write_text("0.00 0.00 0.00 1/80 1\n")
    assert idle_cpus() == 4
    loadavg.write_text("garbage\n")
    assert idle_cpus() is None
    loadavg.unlink()
    assert idle_cpus() is None


def test_usable_cpus_and_run_parallel_restore_thread_count() -> None:
    import numba

    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
    before = numba.get_num_threads()
    assert run_parallel(64, lambda x: x + 1, 1) == 2
    assert numba.get_num_threads() == before


class _AlwaysParallel(ParallelChooser):
    """Forces the parallel kernel on every eligible call (to test result identity on any machine)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.threads = 2

    def pick(self) -> bool:
        self.calls += 1
        return True


@pytest.mark.parametrize("model", [PLUMB_BOB, RATIONAL, EQUIDISTANT])
def test_projector_parallel_path_is_bit_identical(model: int) -> None:
    rng = np.random.default_rng(40 + model)
    K, D = CAMERAS[model]
    T = _transform(rng)
    xyz = _cloud(rng, T, 55_000)
    assert xyz.shape[0] >= PARALLEL_MIN_POINTS
    serial = Projector(model, K, D, WIDTH, HEIGHT, T, threads=1)
    expected = serial.project(xyz, copy=True)
    parallel = Projector(model, K, D, WIDTH, HEIGHT, T, threads=2)
    parallel._chooser = _AlwaysParallel()
    for _ in range(3):
        got = parallel.project(xyz)
        np.testing.assert_array_equal(got.uv, expected.uv)
        np.testing.assert_array_equal(got.valid, expected.valid)
        np.testing.assert_array_equal(got.depth, expected.depth)
        np.testing.assert_array_equal(got.index, expected.index)
        assert got.n_valid == expected.n_valid
    assert parallel._chooser.parallel_calls == 3


def test_projector_threads2_starts_serial_and_pinhole_never_uses_the_chooser() -> None:
    rng = np.random.default_rng(50)
    K, D = CAMERAS[EQUIDISTANT]
    T = _transform(rng)
    xyz = _cloud(rng, T, 50_000)
    fisheye = Projector(EQUIDISTANT, K, D, WIDTH, HEIGHT, T, threads=2)
    for _ in range(20):
        fisheye.project(xyz)
    assert fisheye._chooser.calls == 20 and fisheye._chooser.parallel_calls == 0
    fisheye.project(xyz[:1000])  # below PARALLEL_MIN_POINTS: not a chooser call
    assert fisheye._chooser.calls == 20
    K0, _ = CAMERAS[PINHOLE]
    pinhole = Projector(PINHOLE, K0, None, WIDTH, HEIGHT, T, threads=2)
    for _ in range(3):
        pinhole.project(xyz)
    assert pinhole._chooser.calls == 0


def test_flapping_load_backs_off_and_a_long_spell_restarts_exploration() -> None:
    chooser = _chooser()
    count = {"parallel": 0}

    def flapping(_: int) -> float:  # parallel is fast, but every 10th parallel call stalls
        count["parallel"] += 1
        return (3.0 if count["parallel"] % 10 == 0 else 0.6) * SERIAL_S

    picks = _drive(chooser, 6000, flapping)
    stalls = count["parallel"] // 10
    assert stalls <= 10  # probe interval grew to 1024 instead of re-entering every 64 calls
    assert sum(picks) < 0.02 * len(picks)
    steady = _chooser()
    _drive(steady, 400, lambda _: 0.6 * SERIAL_S)  # parallel for > 256 calls
    assert steady.state == ParallelChooser.PARALLEL
    picks = _drive(steady, 80, lambda i: (3.0 if i == 0 else 0.6) * SERIAL_S)  # one stall, then fast again
    assert steady.state == ParallelChooser.PARALLEL and steady.switches == 3  # out, then back in
    assert picks.index(True, 1) == 64  # next probe after the base interval
