"""Damaged Velodyne packets: counted and reported, the valid data around them kept; a fuzzed decoder never crashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.pcap import CaptureReader
from edgefuse_drivers.velodyne.decode import Decoder, validate_packets
from edgefuse_drivers.velodyne.models import model
from edgefuse_drivers.velodyne.sweep import SweepAssembler

DATA = Path(__file__).resolve().parents[2] / "data" / "velodyne"


def _packets() -> list[tuple[bytes, int]]:
    return [(p.payload, p.stamp_ns) for p in CaptureReader(DATA / "nebula_vlp32.pcap")]


def _points(items: list[tuple[bytes, int]]) -> tuple[int, SweepAssembler]:
    asm = SweepAssembler(model("VLP32C"), stamp="host")
    n = sum(len(c.points) for c in asm.add_many(items)) + sum(len(c.points) for c in asm.finish())
    return n, asm


def test_wrong_size_product_and_bad_blocks_are_counted_and_the_rest_kept() -> None:
    good = _packets()
    n_good, _ = _points(good)
    bad = list(good)
    bad.insert(5, (good[5][0][:600], good[5][1]))  # truncated
    bad.insert(9, (good[9][0] + b"\0", good[9][1]))  # too long
    wrong_product = bytearray(good[20][0])
    wrong_product[1205] = 0x22  # a VLP-16 packet in a VLP-32C stream
    bad.insert(20, (bytes(wrong_product), good[20][1]))
    n_bad, asm = _points(bad)
    assert n_bad == n_good  # nothing valid lost, nothing invalid decoded
    assert asm.problems() == {"wrong packet size": 2, "product id not VLP32C": 1}
    assert "PROBLEMS" in asm.report()
    # a block with a broken flag is skipped, its packet's other blocks kept
    flip = bytearray(good[3][0])
    flip[100] = 0x00
    n_flip, asm = _points([*good[:3], (bytes(flip), good[3][1]), *good[4:]])
    assert asm.problems() == {"block without 0xFFEE flag": 1}
    assert n_good - 32 <= n_flip < n_good


def test_duplicated_and_reordered_packets_do_not_crash_and_are_decoded() -> None:
    good = _packets()
    dup = [*good[:10], *good[5:10], *good[10:]]
    n_dup, asm = _points(dup)
    n_good, _ = _points(good)
    assert n_dup > n_good and not asm.problems()
    swapped = list(good)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    n_sw, _ = _points(swapped)
    assert n_sw == n_good


def _fuzz(count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = np.frombuffer(b"".join(p for p, _ in _packets()), np.uint8).reshape(-1, 1206)
    for name in ("VLP16", "VLP32C", "HDL32E"):
        dec = Decoder(model(name))
        done = 0
        while done < count:
            batch = base[rng.integers(0, len(base), 64)].copy()
            flips = rng.integers(0, batch.size, 64 * 8)
            batch.reshape(-1)[flips] ^= rng.integers(1, 256, flips.size).astype(np.uint8)
            rows = rng.random(64) < 0.2
            batch[rows] = rng.integers(0, 256, (int(rows.sum()), 1206)).astype(np.uint8)
            ok = validate_packets(batch, model(name)).ok
            batch[:, 1205] = model(name).product_ids[0]  # force past validation too
            batch[:, 1204] = 0x39
            for arr in (batch[ok], batch):
                pts = dec.decode(arr, np.arange(len(arr), dtype=np.int64) * 1_000_000)
                assert len(pts) <= len(arr) * 384
                assert np.all(np.isfinite(pts.x)) and np.all((pts.azimuth >= 0) & (pts.azimuth < 360))
            done += 64


def test_fuzz_decoder_thousands() -> None:
    _fuzz(2048, 1)


@pytest.mark.slow
def test_fuzz_decoder_1e5() -> None:
    _fuzz(100_000, 2)
