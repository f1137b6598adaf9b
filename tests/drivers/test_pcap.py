"""The generic capture reader: pcap/pcapng, link types, fragments, damage counted not raised."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from edgefuse_drivers.pcap import CaptureReader, write_pcap

from edgefuse.errors import DriverError

DATA = Path(__file__).resolve().parents[1] / "data" / "velodyne"


def test_real_capture_with_broken_ip_lengths_and_position_packets() -> None:
    r = CaptureReader(DATA / "hdl32e.pcap")
    pk = list(r)
    assert r.format == "pcap" and r.link_types == ["ethernet"]
    assert sum(p.dst_port == 2368 and len(p.payload) == 1206 for p in pk) == 91
    assert sum(p.dst_port == 8308 and len(p.payload) == 512 for p in pk) == 9
    assert not r.problems


def test_truncated_capture_reads_what_is_valid(tmp_path: Path) -> None:
    src = (DATA / "nebula_vlp32.pcap").read_bytes()
    for cut in (len(src) - 1, len(src) - 700, 24 + 16 + 5):
        p = tmp_path / "cut.pcap"
        p.write_bytes(src[:cut])
        r = CaptureReader(p)
        n = len(list(r))
        assert n < 76 and sum(r.problems.values()) == 1 and r.first_problem_offset is not None
    p.write_bytes(b"garbage!" * 10)
    with pytest.raises(DriverError, match="not a packet capture"):
        list(CaptureReader(p))


def test_corrupt_record_length_stops_cleanly(tmp_path: Path) -> None:
    src = bytearray((DATA / "nebula_vlp32.pcap").read_bytes())
    third = 24 + 2 * (16 + 1248)  # the third record's header; its captured length is at +8
    struct.pack_into("<I", src, third + 8, 0xFFFFFF)
    p = tmp_path / "bad.pcap"
    p.write_bytes(bytes(src))
    r = CaptureReader(p)
    assert len(list(r)) == 2 and r.problems == {"record length beyond the limit": 1}


def _pcapng(frames: list[bytes], tsresol: int = 9) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0))
    for i, f in enumerate(frames):
        ts = 1_700_000_000_000_000_000 + i
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


def test_pcapng_and_ip_fragments(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 10  # 2560 B, sent in two fragments
    udp = struct.pack(">HHHH", 5000, 6000, 8 + len(payload), 0) + payload

    def ip(chunk: bytes, off: int, more: bool) -> bytes:
        return b"\xff" * 12 + b"\x08\x00" + struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), 7,
                                                         (0x2000 if more else 0) | off // 8, 64, 17, 0,
                                                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + chunk

    p = tmp_path / "f.pcapng"
    p.write_bytes(_pcapng([ip(udp[:1480], 0, True), ip(udp[1480:], 1480, False), b"\xff" * 12 + b"\x86\xdd"]))
    r = CaptureReader(p)
    pk = list(r)
    assert r.format == "pcapng" and len(pk) == 1 and pk[0].payload == payload
    assert pk[0].stamp_ns == 1_700_000_000_000_000_001 and pk[0].dst_port == 6000 and pk[0].src == "10.0.0.1"
    assert r.skipped == {"IPv6": 1}


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "w.pcap"
    items: list[tuple[int, bytes] | tuple[int, bytes, int]] = [(1_000_000_123, b"abc"), (2_000_000_000, b"de", 9)]
    write_pcap(p, items)
    pk = list(CaptureReader(p))
    assert [(x.stamp_ns, x.payload, x.dst_port) for x in pk] == [
        (1_000_000_123, b"abc", 2368), (2_000_000_000, b"de", 9)]
