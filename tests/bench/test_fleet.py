"""Fleet replay on a real Dask LocalCluster (2 single-thread worker processes on 127.0.0.1): one task per
re-timed copy of the demo recording, a worker killed mid-run, a bag that cannot be read listed as failed,
per-bag reports and one merged report whose histograms are the exact sum of the per-bag ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefuse.bench.bags import retimed_copies
from edgefuse.bench.fleet import expand_bags, run_fleet, warm_pipeline
from edgefuse.bench.html import write_report
from edgefuse.cli import bundled_pipelines
from edgefuse.pipeline.latency import LatencyHistogram

pytest.importorskip("distributed")

DEMO = bundled_pipelines()["radiate_demo"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("fleet")
    return [str(p) for p in retimed_copies(DEMO.parent.parent / "demo", folder, 6, span_s=0.6)]


def test_fleet_survives_a_killed_worker_and_lists_a_bad_bag(bags: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + os.urandom(4000))
    all_bags = [*bags, str(bad)]
    killed: list[int] = []
    written: dict[int, dict[str, Any]] = {}
    clients: list[Any] = []

    def kill_busy(i: int, rec: dict[str, Any]) -> None:
        """At the first record (workers warm, bags running): SIGKILL a worker that has a bag in hand."""
        written[i] = rec
        if killed:
            return
        client = clients[0]
        busy = [addr for addr, keys in client.processing().items() if keys]
        if not busy:
            return
        pid = client.run(os.getpid, workers=busy[:1], on_error="return").get(busy[0])
        if isinstance(pid, int):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    merged = run_fleet(str(DEMO), all_bags, repeats=1, max_speed=True, rate=None, workers=2,
                       on_started=clients.append, on_record=kill_busy)
    assert killed, "the worker was not killed"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    # every good bag has its report (the killed worker's task ran again elsewhere), the bad one is listed
    assert merged["bags"] == 6 and sorted(written) == list(range(6))
    assert [f["bag"] for f in merged["failed"]] == [str(bad)] and merged["failed"][0]["error"]
    assert merged["fleet"]["mode"].startswith("dask LocalCluster, 2 worker")
    # merged histograms are exactly the per-bag ones added (so merged percentiles are exact)
    for name in ("end_to_end", "project", "processing"):
        total = LatencyHistogram()
        for rec in written.values():
            total.merge(LatencyHistogram.from_dict(rec["series"][name]["histogram"]))
        m = merged["series"][name]
        assert LatencyHistogram.from_dict(m["histogram"]).counts == total.counts
        assert m["summary"]["p99_ms"] == total.percentile_ms(99) and m["summary"]["p50_ms"] == total.percentile_ms(50)
    assert merged["sets"] == sum(r["sets"] for r in written.values()) > 0
    # one number per worker: Numba ran with one thread in every worker
    assert {r["device"]["numba_threads"] for r in written.values()} == {"1"}
    out = tmp_path / "out"
    write_report(merged, out)
    page = (out / "report.html").read_text()
    assert "garbage.mcap" in page and "failed bag" in page
    assert json.loads((out / "report.json").read_text())["bags"] == 6


def test_in_process_fleet_gives_the_same_record_shape(bags: list[str]) -> None:
    merged = run_fleet(str(DEMO), bags[:2], repeats=1, max_speed=True, rate=None)
    assert merged["fleet"]["mode"] == "in-process" and merged["bags"] == 2 and not merged["failed"]
    assert [b["bag"] for b in merged["per_bag"]] == bags[:2]
    f = merged["fleet"]
    assert [w["pid"] for w in f["warm"]] == [os.getpid()]  # this process was warmed before the bags
    assert f["total_s"] >= f["start_s"] + f["wall_s"] and len(merged["cpu_s"]) == 2
    assert f["driver_cpu_s"] >= sum(merged["cpu_s"]) > 0  # in-process: the replays are this process's work


def test_warm_pipeline_starts_once_per_process() -> None:
    first = warm_pipeline(str(DEMO))
    again = warm_pipeline(str(DEMO))
    assert "error" not in first and set(first["stages_ms"]) == {s["name"] for s in _stages()}
    assert again["cached"] and again["start_s"] == first["start_s"] and again["pid"] == os.getpid()
    assert "error" in warm_pipeline(str(DEMO.parent / "no-such-pipeline.yaml"))


def _stages() -> list[dict[str, Any]]:
    from edgefuse.pipeline.config import load_pipeline

    return [{"name": s.name} for s in load_pipeline(DEMO).stages]


def _worker_settings() -> tuple[str | None, bool]:
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), bool(dask.config.get("distributed.worker.profile.enabled"))


def test_warm_workers_give_the_results_of_a_fresh_process(bags: list[str], tmp_path: Path) -> None:
    """Every worker warms up once (its own pid, not cached before), and the bags it then replays give the
    outputs (digests) and set counts of the same bags replayed by a fresh process that never warmed up."""
    settings: list[Any] = []
    merged = run_fleet(str(DEMO), bags[:3], repeats=1, max_speed=True, rate=None, workers=2,
                       on_started=lambda client: settings.extend(client.run(_worker_settings).values()))
    # the workers run without Dask's sampling profiler and its 64 KiB malloc trim threshold
    assert settings == [(None, False)] * 2
    warm = merged["fleet"]["warm"]
    assert len(warm) == 2 and len({w["pid"] for w in warm}) == 2 and os.getpid() not in {w["pid"] for w in warm}
    assert all(not w["cached"] and "error" not in w for w in warm)
    code = ("import json, sys\nfrom edgefuse.bench.run import bench_bag\n"
            "print(json.dumps([{k: r[k] for k in ('bag', 'sets', 'output_digests')} for r in "
            "(bench_bag(sys.argv[1], b, repeats=1, rate=None, max_speed=True) for b in sys.argv[2:])]))")
    proc = subprocess.run([sys.executable, "-c", code, str(DEMO), *bags[:3]], capture_output=True, text=True,
                          timeout=240, check=True)
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [{k: b[k] for k in ("bag", "sets", "output_digests")} for b in merged["per_bag"]] == fresh
    assert all(b["output_digests"] for b in fresh)


def test_expand_bags(bags: list[str], tmp_path: Path) -> None:
    folder = str(Path(bags[0]).parent)
    assert expand_bags([f"{folder}/bag_00[0-2]"]) == bags[:3]
    assert expand_bags([f"{bags[1]},{bags[0]}", bags[1]]) == [bags[1], bags[0]]
    from edgefuse.errors import ReplayError

    with pytest.raises(ReplayError, match="no bag matches"):
        expand_bags([str(tmp_path / "none*")])
