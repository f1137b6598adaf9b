"""HesaiPacketSource over real PandarScan bags: the hesai:// scheme, topics, stamps, and bad packets (truncated,
bit-flipped, wrong size) written into a real bag: counted by reason, the valid packets around them kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.hesai.source import HesaiPacketSource
from edgefuse_drivers.packet_bag import packet_typestore

from edgefuse.bag import BagWriter
from edgefuse.errors import SourceError
from edgefuse.msgs.types import PointCloud
from edgefuse.sources.base import Source, open_source
from tests.drivers.hesai.conftest import load_excerpt
from tests.drivers.hesai.test_reference import REF_STAMP_NS

TOPIC = "/pandar_packets"


def _write_bag(path: Path, messages: list[tuple[int, list[tuple[int, bytes]]]]) -> None:
    """A PandarScan bag: per message (record stamp, [(packet receive stamp, payload)])."""
    ts = packet_typestore()
    pkt_cls, scan_cls = ts.types["pandar_msgs/msg/PandarPacket"], ts.types["pandar_msgs/msg/PandarScan"]
    time_cls, header_cls = ts.types["builtin_interfaces/msg/Time"], ts.types["std_msgs/msg/Header"]
    with BagWriter(path, storage="sqlite3", typestore=ts) as bag:
        bag.add_topic(TOPIC, "pandar_msgs/msg/PandarScan")
        for record_ns, packets in messages:
            pkts = []
            for stamp, data in packets:
                buf = np.zeros(1500, dtype=np.uint8)
                buf[:len(data)] = np.frombuffer(data[:1500], dtype=np.uint8)
                pkts.append(pkt_cls(stamp=time_cls(sec=stamp // 10**9, nanosec=stamp % 10**9), data=buf,
                                    size=min(len(data), 1500)))
            t = time_cls(sec=record_ns // 10**9, nanosec=record_ns % 10**9)
            bag.write(TOPIC, record_ns, scan_cls(header=header_cls(stamp=t, frame_id="hesai"), packets=pkts))


def _excerpt_messages() -> list[tuple[int, list[tuple[int, bytes]]]]:
    ex = load_excerpt()
    out: dict[int, list[tuple[int, bytes]]] = {}
    for data, recv, rec in zip(ex["packets"], ex["recv_ns"], ex["record_ns"], strict=True):
        out.setdefault(int(rec), []).append((int(recv), bytes(data)))
    return sorted(out.items())


def test_hesai_scheme_yields_reference_sweep(tmp_path: Path) -> None:
    _write_bag(tmp_path / "xt32", _excerpt_messages())
    src = open_source(f"hesai://{tmp_path / 'xt32'}")
    assert isinstance(src, HesaiPacketSource) and isinstance(src, Source)
    with src:
        assert set(src.topics()) == {f"{TOPIC}/points"}
        envs = list(src.envelopes())
    assert [e.meta["serial"] for e in envs] == [0, 1]
    env = envs[1]
    assert env.msgtype == "sensor_msgs/msg/PointCloud2" and isinstance(env.payload, PointCloud)
    assert env.payload.frame_id == "hesai"
    assert env.stamp_ns == env.payload.stamp_ns == env.meta["sensor_stamp_ns"] == REF_STAMP_NS
    assert env.recv_ns == 1_673_400_678_101_968_885  # the record time of the message that completed it
    ex = load_excerpt()
    ref = np.concatenate([ex["ref_head"], ex["ref_tail"]])
    pts = env.payload.points
    assert np.array_equal(np.stack([pts["x"], pts["y"], pts["z"]], 1), ref)
    assert envs[0].meta["first_sweep"] and not env.meta["first_sweep"]
    assert src.counters.as_dict() == {"packets": 40, "decoded": 40, "rejected": {}, "first_errors": []}
    assert src.unfinished_points > 0  # the last packet's points after the cut: a sweep the bag does not finish


def test_receive_stamp_and_errors(tmp_path: Path) -> None:
    _write_bag(tmp_path / "xt32", _excerpt_messages())
    with HesaiPacketSource(tmp_path / "xt32", stamp="receive") as src:
        env = list(src.envelopes())[1]
    assert env.stamp_ns == env.meta["receive_ns"] == int(load_excerpt()["recv_ns"][38])
    with HesaiPacketSource(tmp_path / "xt32") as src, pytest.raises(SourceError, match="unknown topic"):
        list(src.envelopes(["/nope"]))
    with pytest.raises(SourceError, match="stamp"):
        HesaiPacketSource(tmp_path / "xt32", stamp="gps")  # type: ignore[arg-type]


def test_bad_packets_counted_valid_kept(tmp_path: Path) -> None:
    messages = _excerpt_messages()
    rec, pkts = messages[1]  # the tail: packets 1980-1999
    stamp, good = pkts[5]
    flipped_sop = bytearray(good)
    flipped_sop[0] ^= 0x10
    flipped_az = bytearray(good)  # the second return's azimuth differs from its firing's
    flipped_az[12 + 130 + 1] ^= 0x01
    bad_mode = bytearray(good)
    bad_mode[1052 + 10] = 0x99
    bad_date = bytearray(good)
    bad_date[1052 + 14] = 13  # month 13
    extra = [(stamp, good[:700]), (stamp, bytes(flipped_sop)), (stamp, good + b"\0"), (stamp, b""),
             (stamp, bytes(flipped_az)), (stamp, bytes(bad_mode)), (stamp, bytes(bad_date))]
    messages[1] = (rec, pkts[:6] + extra + pkts[6:])
    _write_bag(tmp_path / "bad", messages)
    with HesaiPacketSource(tmp_path / "bad") as src:
        envs = list(src.envelopes())
    ex = load_excerpt()
    ref = np.concatenate([ex["ref_head"], ex["ref_tail"]])
    pts = envs[1].payload.points
    assert np.array_equal(np.stack([pts["x"], pts["y"], pts["z"]], 1), ref)  # nothing lost, nothing added
    c = src.counters
    assert c.packets == 47 and c.decoded == 40
    assert c.rejected == {"size": 3, "start": 1, "azimuth": 1, "return_mode": 1, "time": 1}
    assert len(c.first_errors) == 5 and "message 1 packet 6" in c.first_errors[0]
