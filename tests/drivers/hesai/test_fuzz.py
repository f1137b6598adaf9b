"""Fuzzing the XT32 decoder with mutated real packets (bit flips, header/tail byte overwrites, boundary words,
truncation, extension, random bytes) fed in a stream between valid packets: every packet is decoded or
counted as rejected, never an exception; the points that come out respect their bounds.  A few thousand
mutations by default, 1e5 when ``slow`` (run once with NUMBA_BOUNDSCHECK=1 too)."""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_drivers.hesai.xt32 import PACKET_SIZE, ReturnType, Xt32Decoder

from tests.drivers.hesai.conftest import excerpt_packets

PACKETS = excerpt_packets()
_HOT = [*range(12), *range(1052, 1080)]  # header and tail
_LABELS = {int(v) for v in ReturnType}


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    b = bytearray(data)
    op = int(rng.integers(7))
    if op == 0:  # flip bits anywhere
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # overwrite header/tail bytes
        for _ in range(int(rng.integers(1, 5))):
            b[_HOT[int(rng.integers(len(_HOT)))]] = int(rng.integers(256))
    elif op == 2:  # boundary words at a random place
        i = int(rng.integers(len(b) - 4))
        b[i:i + 4] = bytes(rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                       b"\x80\x00\x00\x00", b"\x9f\x8c\x00\x00"]))
    elif op == 3:  # truncate
        return bytes(b[: int(rng.integers(len(b)))])
    elif op == 4:  # extend
        return bytes(b) + rng.bytes(int(rng.integers(1, 64)))
    elif op == 5:  # random bytes of the right size with a valid start
        return b"\xee\xff" + rng.bytes(PACKET_SIZE - 2)
    else:  # a valid header on random azimuths/distances
        body = bytearray(rng.bytes(len(b)))
        body[:12] = b[:12]
        body[1052:] = b[1052:]
        return bytes(body)
    return bytes(b)


def _fuzz(n: int, seed: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    dec = Xt32Decoder()
    total = 0
    points = 0
    for start in range(0, n, batch):
        stream: list[bytes] = []
        for k in range(min(batch, n - start)):
            stream.append(PACKETS[(start + k) % len(PACKETS)])
            stream.append(_mutate(rng, PACKETS[int(rng.integers(len(PACKETS)))]))
        total += len(stream)
        for sweep in dec.add(stream):
            p = sweep.points
            points += len(p)
            xyz = np.stack([p["x"], p["y"], p["z"]], 1).astype(np.float64)
            assert np.isfinite(xyz).all()
            assert np.linalg.norm(xyz, axis=1).max(initial=0) <= 120.0 + 1e-3
            assert p["ring"].max(initial=0) < 32
            assert set(np.unique(p["return_type"]).tolist()) <= _LABELS
        c = dec.counters
        assert c.packets == total and c.decoded + c.rejected_total == total
    assert dec.counters.decoded >= total // 2  # the valid packets between the mutations all decode
    assert points > 0 and dec.counters.rejected_total > 0


def test_fuzz_default() -> None:
    _fuzz(4000, seed=1, batch=400)


@pytest.mark.slow
def test_fuzz_1e5() -> None:
    _fuzz(100_000, seed=2, batch=2000)
