"""Live: `edgefuse drivers play-pcap` in a subprocess → velodyne:// source on a real 127.0.0.1 socket → the
same sweeps as the offline decode of the capture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from edgefuse_drivers.velodyne.source import VelodyneSource

from edgefuse.sources import open_source

DATA = Path(__file__).resolve().parents[2] / "data" / "velodyne"


def test_play_pcap_to_live_source_equals_offline_decode() -> None:
    capture = DATA / "nebula_vlp32.pcap"
    with open_source(capture, model="VLP32C", stamp="host") as offline:
        expect = [e.payload for e in offline.envelopes()]
    src = open_source("velodyne://127.0.0.1:0?model=VLP32C&stamp=host", idle_timeout_s=1.5)
    assert isinstance(src, VelodyneSource) and src.live
    with src:
        port = src.port
        proc = subprocess.Popen([sys.executable, "-m", "edgefuse_drivers.cli", "drivers", "play-pcap", str(capture),
                                 "--to", f"udp://127.0.0.1:{port}", "--rate", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            got = [e.payload for e in src.envelopes()]
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert "sent 76 datagrams" in out
        assert src.receiver is not None and src.receiver.stats.received == 76
        assert src.receiver.stats.dropped_queue == 0
    assert len(got) == len(expect) == 2
    for a, b in zip(got, expect, strict=True):
        # host stamps differ (receive vs capture time); the points are the same
        for f in ("x", "y", "z", "intensity", "ring", "return_type"):
            assert np.array_equal(a.points[f], b.points[f])
