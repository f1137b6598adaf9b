"""``edgefuse record`` live: a real NMEA log written at pace to a pseudo-terminal, recorded by the CLI in a
child process, read back and compared with the sentences sent; stopped by duration and by signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edgefuse_drivers.gnss.nmea import GGA, parse_sentence

from edgefuse.sources import open_source

LOG = Path(__file__).resolve().parent / "data" / "gps_nmea_logs" / "mt3339.log"
EDGEFUSE = [sys.executable, "-m", "edgefuse.cli"]


def bursts() -> list[bytes]:
    """The log's epochs (each starting at a GGA) as the receiver sent them."""
    out: list[bytes] = []
    for line in LOG.read_bytes().splitlines():
        if not line.startswith(b"$"):
            continue
        if line.startswith(b"$GPGGA") or not out:
            out.append(b"")
        out[-1] += line + b"\r\n"
    return out


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*EDGEFUSE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_opened(master: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """Wait until the recorder has the pty open (the master sees the slave's termios change is not portable:
    poll for the child's fd instead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fds = Path(f"/proc/{proc.pid}/fd")
        try:
            if any(os.readlink(fd).startswith("/dev/pts/") for fd in fds.iterdir()):
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.communicate(timeout=5))
        time.sleep(0.05)
    raise AssertionError("recorder did not open the pty")


def send(master: int, n: int, pace_s: float = 0.15) -> list[GGA]:
    sent: list[GGA] = []
    for burst in bursts()[:n]:
        os.write(master, burst)
        gga = parse_sentence(burst.split(b"\r\n")[0])
        assert isinstance(gga, GGA)
        sent.append(gga)
        time.sleep(pace_s)
    return sent


def test_record_nmea_pty_for_a_duration(tmp_path: Path, pty: tuple[int, str]) -> None:
    master, name = pty
    out = tmp_path / "gnss_bag"
    proc = start(["record", f"nmea+serial://{name}?baud=9600", str(out), "--duration", "4", "--stats"])
    try:
        wait_opened(master, proc)
        sent = send(master, 12)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert out.is_dir() and not (tmp_path / "gnss_bag.partial").exists()
    assert "/gnss/fix" in stdout and "complete" in stdout
    src = open_source(out)
    with src:
        envs = list(src.envelopes())
    fixes = [e.payload for e in envs if e.topic == "/gnss/fix"]
    vels = [e for e in envs if e.topic == "/gnss/vel"]
    assert len(fixes) == 12 and len(vels) == 12
    for fix, gga in zip(fixes, sent, strict=True):
        assert fix.latitude_deg == gga.latitude_deg and fix.longitude_deg == gga.longitude_deg
        assert fix.altitude_m == pytest.approx(gga.altitude_msl_m + gga.geoid_sep_m)
        assert fix.stamp_ns // 10**9 % 86400 == int(gga.time_s or 0)
    info = subprocess.run([*EDGEFUSE, "info", str(out), "--json"], capture_output=True, text=True, timeout=60,
                          check=True)
    assert '"/gnss/fix"' in info.stdout and "NavSatFix" in info.stdout
    stats = json.loads(stdout[stdout.index("{"):])
    st = next(iter(stats.values()))
    assert st["nmea"]["sentences"]["GGA"] == 12 and st["messages"]["/gnss/fix"] == 12
    assert st["clock"]["epochs"] == 12 and st["clock"]["offset_ns"] > 0  # 2015 fixes recorded today


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_record_stopped_by_signal_closes_the_bag(tmp_path: Path, pty: tuple[int, str], sig: int) -> None:
    master, name = pty
    out = tmp_path / "bag"
    proc = start(["record", f"nmea+serial://{name}", str(out), "-q"])
    try:
        wait_opened(master, proc)
        send(master, 5)
        time.sleep(0.3)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert f"stopped by {signal.Signals(sig).name}" in stdout
    src = open_source(out)
    with src:
        assert sum(e.topic == "/gnss/fix" for e in src.envelopes()) == 5


def test_record_lost_device_leaves_partial_bag_and_says_so(tmp_path: Path) -> None:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    out = tmp_path / "bag"
    proc = start(["record", f"nmea+serial://{name}?reconnect_attempts=2&reconnect_delay_s=0.05", str(out), "-q"])
    try:
        wait_opened(master, proc)
        send(master, 3)
        os.close(master)
        stdout, _stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2
    assert "SOURCE FAILED" in stdout and "not back after 2 reopen attempt(s)" in stdout
    partial = tmp_path / "bag.partial"
    assert not out.exists() and partial.is_dir()
    src = open_source(partial)
    with src:
        assert sum(e.topic == "/gnss/fix" for e in src.envelopes()) == 3


def test_record_refuses_existing_output(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("keep")
    res = subprocess.run([*EDGEFUSE, "record", "nmea+serial:///dev/null", str(tmp_path / "x")], check=False,
                         capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "already exists" in res.stderr
