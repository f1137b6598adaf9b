"""The live NMEA source over a real pseudo-terminal: paced sentences, garbage on the line, a device that
vanishes (bounded reconnects) and one that comes back under the same name."""

from __future__ import annotations

import os
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.gnss.nmea import checksum
from edgefuse_drivers.gnss.source import NmeaSerialSource

from edgefuse.envelope import Envelope
from edgefuse.errors import DriverError
from edgefuse.sources import open_source

DATA = Path(__file__).resolve().parents[2] / "data" / "gps_nmea_logs"


def sentence(body: str) -> bytes:
    return f"${body}*{checksum(body.encode()):02X}\r\n".encode()


def epoch_now() -> tuple[bytes, datetime]:
    """A GGA + RMC burst stamped with the current UTC time (as a receiver would send it)."""
    now = datetime.now(UTC)
    hms = now.strftime("%H%M%S") + f".{now.microsecond // 10000:02d}"
    date = now.strftime("%d%m%y")
    gga = sentence(f"GPGGA,{hms},4404.1306,N,12118.8515,W,1,10,0.98,1127.7,M,-19.6,M,,")
    rmc = sentence(f"GPRMC,{hms},A,4404.1306,N,12118.8515,W,1.50,90.0,{date},,,A")
    return gga + rmc, now


def reader(src: NmeaSerialSource) -> tuple[queue.Queue[Envelope | BaseException | None], threading.Thread]:
    q: queue.Queue[Envelope | BaseException | None] = queue.Queue()

    def run() -> None:
        try:
            for env in src.envelopes():
                q.put(env)
        except BaseException as exc:
            q.put(exc)
        q.put(None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return q, t


def drain(q: queue.Queue[Envelope | BaseException | None], timeout: float) -> list[Envelope | BaseException]:
    out: list[Envelope | BaseException] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = q.get(timeout=0.05)
        except queue.Empty:
            continue
        if item is None:
            break
        out.append(item)
    return out


def test_live_paced_sentences_with_garbage_and_clock_offset(pty: tuple[int, str]) -> None:
    master, name = pty
    src = open_source(f"nmea+serial://{name}?baud=115200&frame_id=ant")
    assert isinstance(src, NmeaSerialSource) and src.live and src.stamp_clock == "header"
    rng = np.random.default_rng(3)
    sent: list[datetime] = []
    with src:
        q, t = reader(src)
        for i in range(8):
            burst, now = epoch_now()
            sent.append(now)
            if i % 2:
                junk = rng.integers(0, 256, 40).astype(np.uint8).tobytes().replace(b"$", b"#")
                burst = junk + (b"\r\n" if i % 4 == 1 else b"") + burst  # alone on a line, or glued to a sentence
            os.write(master, burst)
            time.sleep(0.15)
        got = drain(q, 1.0)
        src.stop()
        t.join(timeout=5)
    assert not t.is_alive()
    fixes = [e for e in got if isinstance(e, Envelope) and e.topic == "/gnss/fix"]
    vels = [e for e in got if isinstance(e, Envelope) and e.topic == "/gnss/vel"]
    assert len(fixes) == 8 and len(vels) == 8
    stamps = [e.stamp_ns for e in fixes]
    want = [round(s.timestamp() * 100) * 10**7 for s in sent]  # the sentences carry centiseconds
    assert [abs(a - b) <= 10**7 for a, b in zip(stamps, want, strict=True)] == [True] * 8
    assert fixes[0].payload.frame_id == "ant" and vels[0].payload.linear[0] == pytest.approx(1.5 * 1852 / 3600)
    stats = src.stats()
    assert stats["nmea"]["garbage_bytes"] >= 4 * 40 - 10
    clock = stats["clock"]
    # host − GNSS: the sentence's time was cut to centiseconds, then written and read on this host
    assert clock["epochs"] == 8 and -2e7 <= clock["offset_ns"] <= 5e8
    assert clock["jitter_ns"] is not None and clock["jitter_ns"] < 2e8
    assert all(e.meta["host_wall_ns"] - e.meta["gnss_utc_ns"] >= clock["offset_ns"] for e in fixes)


def test_stamp_by_host_clock(pty: tuple[int, str]) -> None:
    master, name = pty
    src = open_source(f"nmea+serial://{name}?stamp=host")
    assert src.stamp_clock == "host"
    with src:
        q, t = reader(src)  # type: ignore[arg-type]
        before = time.time_ns()
        os.write(master, epoch_now()[0])
        got = drain(q, 0.6)
        src.stop()  # type: ignore[attr-defined]
        t.join(timeout=5)
    fixes = [e for e in got if isinstance(e, Envelope) and e.topic == "/gnss/fix"]
    assert len(fixes) == 1
    assert before <= fixes[0].stamp_ns <= time.time_ns()
    assert fixes[0].stamp_ns == fixes[0].meta["host_wall_ns"] != fixes[0].meta["gnss_utc_ns"]


def test_device_gone_is_reported_after_bounded_reconnects(pty: tuple[int, str]) -> None:
    master, name = pty
    src = open_source(f"nmea+serial://{name}?reconnect_attempts=3&reconnect_delay_s=0.05")
    with src:
        q, t = reader(src)  # type: ignore[arg-type]
        os.write(master, epoch_now()[0])
        time.sleep(0.3)
        os.close(master)
        got = drain(q, 5.0)
        t.join(timeout=5)
    assert not t.is_alive()
    assert sum(isinstance(e, Envelope) and e.topic == "/gnss/fix" for e in got) == 1
    errors = [e for e in got if isinstance(e, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], DriverError)
    assert "not back after 3 reopen attempt(s)" in str(errors[0])
    serial = src.stats()["serial"]  # type: ignore[attr-defined]
    assert serial["disconnects"] == 1 and serial["failed_reopens"] == 3 and serial["reconnects"] == 0


def test_device_that_comes_back_is_reopened(tmp_path: Path) -> None:
    """A udev-style stable name (symlink) pointing at a new pty after the first one vanished."""
    link = tmp_path / "gps"
    m1, s1 = os.openpty()
    link.symlink_to(os.ttyname(s1))
    os.close(s1)
    src = open_source(f"nmea+serial://{link}?reconnect_attempts=20&reconnect_delay_s=0.05")
    m2 = -1
    try:
        with src:
            q, t = reader(src)  # type: ignore[arg-type]
            os.write(m1, epoch_now()[0])
            time.sleep(0.3)
            os.close(m1)
            m2, s2 = os.openpty()
            link.unlink()
            link.symlink_to(os.ttyname(s2))
            os.close(s2)
            deadline = time.monotonic() + 5
            while src.stats()["serial"]["reconnects"] == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.05)
            os.write(m2, epoch_now()[0])
            got = drain(q, 0.8)
            src.stop()  # type: ignore[attr-defined]
            t.join(timeout=5)
    finally:
        if m2 >= 0:
            os.close(m2)
    fixes = [e for e in got if isinstance(e, Envelope) and e.topic == "/gnss/fix"]
    assert len(fixes) == 2
    serial = src.stats()["serial"]  # type: ignore[attr-defined]
    assert serial["disconnects"] == 1 and serial["reconnects"] == 1
