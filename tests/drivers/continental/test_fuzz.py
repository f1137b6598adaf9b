"""Fuzzing the ARS548 and SRR520 decoders with mutated real packets (bit flips, byte overwrites, boundary
words, truncation, extension, header fields): every outcome is a decode or a PacketError, never another
exception; decoded lists respect their bounds.  A few thousand mutations by default, 1e5 when ``slow``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.continental.ars548 import MAX_DETECTIONS, Ars548DetectionList, Ars548ObjectList, decode_ars548
from edgefuse_drivers.continental.srr520 import Srr520Assembler, Srr520ObjectList, decode_srr520_frame
from edgefuse_drivers.packet_bag import PacketError, read_packets

DATA = Path(__file__).resolve().parents[2] / "data"
ARS = [p.data for p in read_packets(DATA / "nebula_continental" / "ars548" / "1708578204")]
SRR = [p.data for p in read_packets(DATA / "nebula_radar_lidar_packets" / "srr520" / "1708578209")]


def _mutate(rng: np.random.Generator, data: bytes, hot: int) -> bytes:
    """One mutation of ``data``; ``hot``: the header length, hit more often than the body."""
    b = bytearray(data)
    op = int(rng.integers(7))
    if op == 0:  # flip bits
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # overwrite bytes in the header
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(min(hot, len(b))))] = int(rng.integers(256))
    elif op == 2:  # boundary words at a random place
        i = int(rng.integers(max(1, len(b) - 4)))
        b[i:i + 4] = bytes(rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                       b"\x80\x00\x00\x00", b"\x7f\xc0\x00\x00"]))
    elif op == 3:  # truncate
        return bytes(b[: int(rng.integers(len(b)))])
    elif op == 4:  # extend
        return bytes(b) + rng.bytes(int(rng.integers(1, 64)))
    elif op == 5:  # random bytes of the same size
        return rng.bytes(len(b))
    else:  # random body, valid header
        return bytes(b[:hot]) + rng.bytes(max(0, len(b) - hot))
    return bytes(b)


def _run(n: int, seed: int, packets: list[bytes], hot: int, feed: Callable[[bytes], None]) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    outcomes = {"decoded": 0, "rejected": 0}
    for _ in range(n):
        data = _mutate(rng, packets[int(rng.integers(len(packets)))], hot)
        try:
            feed(data)
        except PacketError:
            outcomes["rejected"] += 1
        else:
            outcomes["decoded"] += 1
    return outcomes


def _ars548(data: bytes) -> None:
    out = decode_ars548(data)
    if isinstance(out, Ars548DetectionList):
        assert len(out.detections) <= MAX_DETECTIONS
    elif isinstance(out, Ars548ObjectList):
        assert len(out.objects) <= 200


def _srr520_feeder() -> Callable[[bytes], None]:
    asm = Srr520Assembler()

    def feed(data: bytes) -> None:
        out = asm.add(decode_srr520_frame(data))
        if out is not None:
            items = out.objects if isinstance(out, Srr520ObjectList) else out.detections
            assert len(items) <= 500
    return feed


def _srr520_sequence(n: int, seed: int) -> dict[str, int]:
    """Whole recordings with some frames mutated: the assembler sees realistic orders too."""
    rng = np.random.default_rng(seed)
    feed = _srr520_feeder()
    outcomes = {"decoded": 0, "rejected": 0}
    done = 0
    while done < n:
        for frame in SRR:
            data = _mutate(rng, frame, 36) if rng.random() < 0.2 else frame
            try:
                feed(data)
            except PacketError:
                outcomes["rejected"] += 1
            else:
                outcomes["decoded"] += 1
            done += 1
    return outcomes


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_ars548(seed: int) -> None:
    out = _run(2000, seed, ARS, 60, _ars548)
    assert out["decoded"] > 0 and out["rejected"] > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_srr520(seed: int) -> None:
    out = _run(2000, seed, SRR, 36, _srr520_feeder())
    assert out["decoded"] > 0 and out["rejected"] > 0
    out = _srr520_sequence(2000, seed)
    assert out["decoded"] > 0 and out["rejected"] > 0


@pytest.mark.slow
def test_fuzz_ars548_long() -> None:
    out = _run(100_000, 7, ARS, 60, _ars548)
    assert out["decoded"] + out["rejected"] == 100_000


@pytest.mark.slow
def test_fuzz_srr520_long() -> None:
    out = _run(100_000, 7, SRR, 36, _srr520_feeder())
    assert out["decoded"] + out["rejected"] == 100_000
    out = _srr520_sequence(100_000, 8)
    assert out["decoded"] > 0
