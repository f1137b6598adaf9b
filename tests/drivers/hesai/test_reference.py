"""The XT32 decoder against nebula's reference point cloud: the excerpt in tests/data always, the whole
recording from ../shared/data when it is there."""

from __future__ import annotations

import numpy as np
import pytest
from edgefuse_drivers.hesai.source import HesaiPacketSource
from edgefuse_drivers.hesai.xt32 import POINT_DTYPE, ReturnType, Xt32Calibration, Xt32Decoder, packet_stamps_ns

from edgefuse.errors import ConfigError
from tests.drivers.hesai.conftest import FULL, load_excerpt

#: the reference sweep's stamp: sensor time of the earliest firing of the block group where it started
REF_STAMP_NS = 1_564_024_769_918_737_000


def _xyz(points: np.ndarray) -> np.ndarray:
    return np.stack([points["x"], points["y"], points["z"]], axis=1)


def test_excerpt_equals_nebula_reference() -> None:
    ex = load_excerpt()
    dec = Xt32Decoder()
    sweeps = dec.add([bytes(p) for p in ex["packets"]])
    # packet 2 (1498 in the bag) crosses the cut: the partial sweep before it; packet 38 (1998) completes the
    # reference sweep, whose points here are the reference's first and last rows
    assert [(s.serial, s.packet) for s in sweeps] == [(0, 2), (1, 38)]
    ref = np.concatenate([ex["ref_head"], ex["ref_tail"]])
    got = sweeps[1].points
    assert got.dtype == POINT_DTYPE
    assert len(got) == len(ref) == 2205 + 2429
    err = np.abs(_xyz(got).astype(np.float64) - ref)
    assert err.max() <= 1e-3
    assert np.array_equal(_xyz(got), ref)  # bit for bit: nebula's float32 arithmetic, same point order
    assert sweeps[1].stamp_ns == REF_STAMP_NS
    assert dec.counters.rejected == {} and dec.counters.decoded == 40


def test_point_fields() -> None:
    ex = load_excerpt()
    pts = Xt32Decoder().add([bytes(p) for p in ex["packets"]])[1].points
    assert set(np.unique(pts["ring"])) <= set(range(32)) and len(np.unique(pts["ring"])) == 32
    # dual return, last + strongest: the labels nebula gives that mode
    labels = {int(v) for v in np.unique(pts["return_type"])}
    assert labels <= {ReturnType.LAST, ReturnType.STRONGEST, ReturnType.SECONDSTRONGEST, ReturnType.LAST_STRONGEST,
                      ReturnType.IDENTICAL}
    assert ReturnType.LAST_STRONGEST in labels and ReturnType.STRONGEST in labels
    assert pts["intensity"].max() <= 255 and pts["intensity"].min() >= 0
    rng = np.linalg.norm(_xyz(pts).astype(np.float64), axis=1)
    assert rng.min() >= 0.05 - 1e-6 and rng.max() <= 120 + 1e-4
    # time since the sweep stamp: the head firings right after it, the tail ones ~0.1 s (one turn at 600 rpm)
    t = pts["time"].astype(np.int64)
    head, tail = t[:2205], t[2205:]
    assert head.min() == 0 and head.max() < 5_000_000
    assert tail.min() > 95_000_000 and tail.max() < 101_000_000
    # within a firing the channels are 1.512 us apart
    same = (np.diff(pts["ring"].astype(np.int64)) == 1) & (np.abs(np.diff(t)) < 50_000)
    assert same.sum() > 1000
    assert np.all(np.diff(t)[same] == 1512)
    # no firing of the sweep is later than the last firing of the packet that completed it
    stamps = packet_stamps_ns(ex["packets"])
    assert tail.max() <= int(stamps[38]) - REF_STAMP_NS + 5632 + 368 + 1512 * 31


def test_cut_angle_moves_the_cut() -> None:
    ex = load_excerpt()
    packets = [bytes(p) for p in ex["packets"]]
    at_0 = [(s.serial, s.packet) for s in Xt32Decoder().add(packets)]
    at_180 = [(s.serial, s.packet) for s in Xt32Decoder(cut_angle_deg=180.0).add(packets)]
    assert at_0 != at_180 and all(p not in {2, 38} for _, p in at_180)


def test_range_filter_and_calibration_errors(tmp_path: object) -> None:
    ex = load_excerpt()
    packets = [bytes(p) for p in ex["packets"]]
    near = Xt32Decoder(max_range=1.0).add(packets)[1].points
    assert 0 < len(near) < 2205 + 2429
    assert np.linalg.norm(_xyz(near).astype(np.float64), axis=1).max() <= 1.0 + 1e-5
    with pytest.raises(ConfigError, match="range"):
        Xt32Decoder(min_range=3.0, max_range=1.0)
    from pathlib import Path

    bad = Path(str(tmp_path)) / "cal.csv"
    bad.write_text("Channel,Elevation,Azimuth\n1,2,3\n")
    with pytest.raises(ConfigError, match="32 rows"):
        Xt32Calibration.load(bad)
    cal = Xt32Calibration.load()
    assert cal.elevation_deg[0] == pytest.approx(14.972363) and cal.azimuth_offset_deg[31] == pytest.approx(-0.129679)


@pytest.mark.skipif(FULL is None, reason="the full nebula XT32 recording (../shared/data/nebula_radar_lidar_packets/"
                    "hesai_xt32) is not on this machine; the excerpt test covers the decoder")
def test_full_recording_equals_reference_pcd() -> None:
    from edgefuse.sources.base import open_source

    assert FULL is not None
    raw = (FULL / "1673400678101968885.pcd").read_bytes()
    start = raw.index(b"DATA binary\n") + len(b"DATA binary\n")
    ref = np.frombuffer(raw[start:], dtype=np.float32).reshape(-1, 3)
    src = open_source(f"hesai://{FULL / '1673400677802009732'}")
    assert isinstance(src, HesaiPacketSource)
    with src:
        envs = list(src.envelopes())
    assert [len(e.payload.points) for e in envs] == [62826, 63058, 63040, 63021]
    last = envs[-1]
    # nebula names the reference after the record time of the bag message during which the sweep completed
    assert last.recv_ns == 1_673_400_678_101_968_885
    assert last.stamp_ns == REF_STAMP_NS
    assert len(last.payload.points) == len(ref) == 63021
    assert np.abs(_xyz(last.payload.points).astype(np.float64) - ref).max() <= 1e-3
    assert np.array_equal(_xyz(last.payload.points), ref)
    assert src.counters.as_dict()["rejected"] == {} and src.counters.packets == 2000
