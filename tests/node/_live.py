"""Shared helpers for the live node tests: free ports, CLI subprocesses, waiting with timeouts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgefuse.cli", *args]


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.setdefault("EDGEFUSE_NUMBA_CACHE_DIR", str(ROOT / ".venv" / "numba-cache"))
    out["PYTHONUNBUFFERED"] = "1"
    return out


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, proc: subprocess.Popen[Any] | None = None,
             log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log is not None and log.exists() else ""
            raise AssertionError(f"process ended (rc {proc.returncode}) while waiting for {what}:\n{text}")
        time.sleep(0.05)
    text = log.read_text() if log is not None and log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}:\n{text}")


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A CLI process with stdout+stderr in ``log``; SIGKILLed if still alive at the end."""
    with log.open("wb") as f:
        proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env(), cwd=ROOT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout_s)


def start_node(tmp: Path, pipeline: str, port: int, *extra: str, name: str = "node") -> tuple[list[str], Path]:
    log = tmp / f"{name}.log"
    args = cli("node", pipeline, "-o", f"listen=tcp/127.0.0.1:{port}", "-o", "multicast_scouting=false",
               "--report", str(tmp / f"{name}.json"), *extra)
    return args, log


def zenoh_client_options(port: int) -> dict[str, Any]:
    return {"connect": [f"tcp/127.0.0.1:{port}"], "multicast_scouting": False}


DEMO_INPUTS = {"lidar": "/velodyne_points", "camera": "/zed_left/image_raw/compressed",
               "radar": "/radar/polar/compressed"}


def check_demo_live_equals_replay(tmp: Path) -> dict[str, Any]:
    """The node's report (``tmp/node.json``) after ``play`` (``tmp/play.json``) of the demo: every played input
    message received and fed, none dropped, and the outputs' digests equal to ``edgefuse replay``'s."""
    import json

    from edgefuse.replay import replay

    report: dict[str, Any] = json.loads((tmp / "node.json").read_text())
    played = json.loads((tmp / "play.json").read_text())
    assert played["errors"] == {}, played["first_errors"]
    for name, topic in DEMO_INPUTS.items():
        live = report["inputs_live"][name]
        assert live["received"] == played["published"][topic] == report["inputs_fed"][name], live
        assert live["dropped"] == {}
        assert live["decode_errors"] == 0
    replayed = replay(ROOT / "edgefuse" / "data" / "pipelines" / "radiate_demo.yaml",
                      max_speed=True).report["output_digests"]
    assert set(report["output_digests"]) >= {"/edgefuse/zed_left/depth", "/edgefuse/lidar/colored",
                                             "/edgefuse/radar/points", "/edgefuse/radar/colored"}
    assert report["output_digests"] == {t: replayed[t] for t in report["output_digests"]}
    return report
