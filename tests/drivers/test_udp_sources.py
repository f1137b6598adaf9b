"""Live UDP for Hesai XT32 (hesai+udp://) and ARS548 (ars548+udp://, multicast too): the real recorded packets
sent over 127.0.0.1 give what the offline decoders give; garbage and truncated datagrams are counted and the
valid data kept; the same packets in a capture reach the same sources through open_source("x.pcap")."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgefuse_drivers.continental.source import ContinentalPacketSource
from edgefuse_drivers.continental.udp import Ars548UdpSource
from edgefuse_drivers.hesai.udp import HesaiUdpSource
from edgefuse_drivers.hesai.xt32 import Xt32Decoder
from edgefuse_drivers.packet_bag import read_packets
from edgefuse_drivers.pcap import write_pcap

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError
from edgefuse.sources import open_source

from .hesai.conftest import excerpt_packets

ARS548_BAG = Path(__file__).resolve().parents[1] / "data" / "nebula_continental" / "ars548" / "1708578204"
GARBAGE = [b"", b"\xee\xff" * 3, b"\x00" * 1080, b"\xee\xff" + b"\x01" * 1078, b"\x00\x00\x01\x50" + b"\xff" * 60]


def _send(packets: Sequence[bytes], dest: tuple[str, int], *, garbage_every: int = 0,
          multicast_if: str | None = None) -> threading.Thread:
    def run() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            if multicast_if:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(multicast_if))
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            for i, p in enumerate(packets):
                if garbage_every and (i + 1) % garbage_every == 0:
                    s.sendto(GARBAGE[(i // garbage_every) % len(GARBAGE)], dest)
                    s.sendto(p[: len(p) // 3], dest)  # truncated
                s.sendto(p, dest)
                time.sleep(0.001)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _hesai_offline(packets: list[bytes]) -> list[np.ndarray]:
    return [s.points for s in Xt32Decoder().add(packets)]


@pytest.mark.parametrize("garbage_every", [0, 4])
def test_hesai_live_equals_offline(garbage_every: int) -> None:
    packets = excerpt_packets()
    expect = _hesai_offline(packets)
    assert expect  # the excerpt completes sweeps
    src = open_source("hesai+udp://127.0.0.1:0", idle_timeout_s=1.0)
    assert isinstance(src, HesaiUdpSource) and src.live and src.stamp_clock == "header"
    with src:
        sender = _send(packets, ("127.0.0.1", src.port), garbage_every=garbage_every)
        envs = list(src.envelopes())
        sender.join(timeout=10)
    got = [e.payload.points for e in envs]
    assert len(got) == len(expect)
    for a, b in zip(got, expect, strict=True):
        assert np.array_equal(a, b)
    stats = src.stats()
    n_bad = 2 * (len(packets) // garbage_every) if garbage_every else 0
    assert sum(stats["rejected"].values()) == n_bad
    assert stats["packets"] == len(packets) + n_bad and stats["udp"]["dropped_queue"] == 0
    assert stats["clock"]["count"] == len(packets)


def test_hesai_capture_through_dispatcher(tmp_path: Path) -> None:
    packets = excerpt_packets()
    cap = tmp_path / "xt32.pcap"
    write_pcap(cap, [(1_673_400_678_000_000_000 + i * 500_000, p) for i, p in enumerate(packets)], dst_port=2368)
    src = open_source(cap)
    assert isinstance(src, HesaiUdpSource) and not src.live
    with src:
        got = [e.payload.points for e in src.envelopes()]
    expect = _hesai_offline(packets)
    assert len(got) == len(expect) and all(np.array_equal(a, b) for a, b in zip(got, expect, strict=True))
    assert "host - sensor clock" in src.report()


def _ars548_offline() -> tuple[list[bytes], list[Any]]:
    packets = [p.data for p in read_packets(ARS548_BAG)]
    with ContinentalPacketSource(ARS548_BAG, driver="ars548") as ref:
        expect = [e.payload for e in ref.envelopes()]
    return packets, expect


def _check_ars548(envs: list[Envelope], expect: list[Any]) -> None:
    assert len(envs) == len(expect) == 2
    dets = [e for e in envs if e.topic == "/ars548/detections"]
    objs = [e for e in envs if e.topic == "/ars548/objects"]
    ref_dets = [p for p in expect if hasattr(p, "returns")]
    ref_objs = [p for p in expect if hasattr(p, "tracks")]
    assert len(dets) == len(ref_dets) == 1 and len(objs) == len(ref_objs) == 1
    assert np.array_equal(dets[0].payload.returns, ref_dets[0].returns)
    assert dets[0].payload.stamp_ns == ref_dets[0].stamp_ns
    assert np.array_equal(objs[0].payload.tracks, ref_objs[0].tracks) and len(ref_objs[0].tracks) == 50
    assert objs[0].msgtype == "radar_msgs/msg/RadarTracks"


@pytest.mark.parametrize("multicast", [False, True])
def test_ars548_live_equals_offline(multicast: bool) -> None:
    packets, expect = _ars548_offline()
    url = "ars548+udp://127.0.0.1:0" + ("?multicast=224.0.2.2" if multicast else "")
    src = open_source(url, idle_timeout_s=1.0)
    assert isinstance(src, Ars548UdpSource) and src.live and src.multicast == ("224.0.2.2" if multicast else None)
    with src:
        dest = ("224.0.2.2" if multicast else "127.0.0.1", src.port)
        sender = _send(packets * 2, dest, garbage_every=1, multicast_if="127.0.0.1" if multicast else None)
        envs = list(src.envelopes())
        sender.join(timeout=10)
    _check_ars548(envs[:2], expect)
    _check_ars548(envs[2:], expect)
    stats = src.stats()
    assert sum(stats["rejected"].values()) == 8 and stats["packets"] == 12
    assert stats["udp"]["dropped_queue"] == 0


def test_ars548_capture_through_dispatcher(tmp_path: Path) -> None:
    packets, expect = _ars548_offline()
    cap = tmp_path / "ars548.pcap"
    write_pcap(cap, [(1_708_578_204_000_000_000 + i * 10_000_000, p) for i, p in enumerate(packets)],
               dst_port=42102, dst="224.0.2.2")
    src = open_source(cap)
    assert isinstance(src, Ars548UdpSource)
    with src:
        envs = list(src.envelopes())
    _check_ars548(envs, expect)


def test_bad_urls() -> None:
    with pytest.raises(SourceError, match="unknown hesai\\+udp:// option"):
        open_source("hesai+udp://127.0.0.1:0?speed=3")
    with pytest.raises(SourceError, match="stamp must be"):
        open_source("ars548+udp://127.0.0.1:0?stamp=gps")
