"""ContinentalPacketSource over nebula packet bags: open_source URL schemes, topics, stamps, and bad packets
written into a real bag (counted, skipped, the valid lists around them kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgefuse_drivers.continental.ars548 import Ars548ObjectList
from edgefuse_drivers.continental.source import ContinentalPacketSource
from edgefuse_drivers.packet_bag import packet_typestore, read_packets

from edgefuse.bag import BagWriter
from edgefuse.errors import SourceError
from edgefuse.msgs.types import RadarScanData, RadarTracksData
from edgefuse.sources.base import Source, open_source

DATA = Path(__file__).resolve().parents[2] / "data"
ARS_BAG = DATA / "nebula_continental" / "ars548" / "1708578204"
SRR_BAG = DATA / "nebula_radar_lidar_packets" / "srr520" / "1708578209"
ARS_TOPIC = "/sensing/radar/front_center/nebula_packets"
SRR_TOPIC = "/sensing/radar/front_left/nebula_packets"


def test_open_source_ars548_scheme() -> None:
    src = open_source(f"ars548://{ARS_BAG}")
    assert isinstance(src, ContinentalPacketSource) and isinstance(src, Source)
    with src:
        assert set(src.topics()) == {f"{ARS_TOPIC}/detections", f"{ARS_TOPIC}/objects"}
        envs = list(src.envelopes())
    by_topic = {e.topic: e for e in envs}
    det = by_topic[f"{ARS_TOPIC}/detections"]
    assert det.msgtype == "radar_msgs/msg/RadarScan"
    assert isinstance(det.payload, RadarScanData)
    assert len(det.payload.returns) == 308
    assert det.payload.frame_id == "front_center/radar_link"
    first = det.payload.returns[0]
    assert float(first["range"]) == pytest.approx(3.37381, abs=1e-5)
    assert float(first["azimuth"]) == pytest.approx(-0.918583, abs=1e-6)
    assert float(first["elevation"]) == pytest.approx(0.184710, abs=1e-6)
    assert float(first["doppler_velocity"]) == pytest.approx(-3.64937, abs=1e-5)
    assert float(first["amplitude"]) == -10.0
    # sensor time by default; the packet's receive time in meta (0.2467 s later in this recording)
    assert det.stamp_ns == det.meta["sensor_stamp_ns"] == 1_708_578_203_955_760_000
    assert det.meta["receive_ns"] == 1_708_578_204_202_447_652
    assert det.recv_ns == 1_709_877_048_998_351_210  # bag record time
    obj = by_topic[f"{ARS_TOPIC}/objects"]
    assert isinstance(obj.payload, RadarTracksData) and len(obj.payload.tracks) == 50
    assert obj.msgtype == "radar_msgs/msg/RadarTracks" and obj.payload.frame_id == "front_center/radar_link"
    assert isinstance(obj.meta["list"], Ars548ObjectList) and len(obj.meta["objects"]) == 50
    report = src.stamp_report()
    assert report[f"{ARS_TOPIC}/detections"]["mean_ns"] == 246_687_652
    assert src.counters.as_dict()["rejected"] == {}


def test_receive_stamp_option_and_time_offsets() -> None:
    with ContinentalPacketSource(ARS_BAG, driver="ars548", stamp="receive") as src:
        src.set_time_offsets({f"{ARS_TOPIC}/detections": -1000})
        det = next(e for e in src.envelopes([f"{ARS_TOPIC}/detections"]))
    assert det.stamp_ns == 1_708_578_204_202_447_652 - 1000
    assert det.meta["header_stamp_ns"] == 1_708_578_204_202_447_652


def test_open_source_srr520_scheme() -> None:
    with open_source(f"srr520://{SRR_BAG}") as src:
        envs = {e.topic: e for e in src.envelopes()}
    assert len(envs[f"{SRR_TOPIC}/near_detections"].payload.returns) == 194
    assert len(envs[f"{SRR_TOPIC}/hrr_detections"].payload.returns) == 32
    assert len(envs[f"{SRR_TOPIC}/objects"].payload.tracks) == 40
    near = envs[f"{SRR_TOPIC}/near_detections"]
    assert near.stamp_ns == 1_708_578_209_045_566_935
    assert np.all(near.payload.returns["elevation"] == 0)


def test_unknown_topic_and_wrong_bag() -> None:
    with ContinentalPacketSource(ARS_BAG, driver="ars548") as src, pytest.raises(SourceError, match="unknown topic"):
        list(src.envelopes(["/nope"]))
    with pytest.raises(SourceError, match="driver"):
        ContinentalPacketSource(ARS_BAG, driver="ars999")  # type: ignore[arg-type]


def _write_bag(path: Path, topic: str, packets: list[tuple[int, bytes]]) -> None:
    ts = packet_typestore()
    pkt_cls = ts.types["nebula_msgs/msg/NebulaPacket"]
    msg_cls = ts.types["nebula_msgs/msg/NebulaPackets"]
    time_cls = ts.types["builtin_interfaces/msg/Time"]
    header_cls = ts.types["std_msgs/msg/Header"]
    with BagWriter(path, storage="sqlite3", typestore=ts) as bag:
        bag.add_topic(topic, "nebula_msgs/msg/NebulaPackets")
        for stamp, data in packets:
            t = time_cls(sec=stamp // 10**9, nanosec=stamp % 10**9)
            msg = msg_cls(header=header_cls(stamp=t, frame_id="radar"),
                          packets=[pkt_cls(stamp=t, data=np.frombuffer(data, dtype=np.uint8))])
            bag.write(topic, stamp, msg)


def test_bad_ars548_packets_counted_valid_kept(tmp_path: Path) -> None:
    good = [(p.recv_ns, p.data) for p in read_packets(ARS_BAG)]
    obj, det = good[0][1], good[1][1]
    bad_service = b"\x00\x07" + det[2:]
    wrong_method = det[:2] + (999).to_bytes(2, "big") + det[4:]
    too_many = bytearray(det)
    too_many[35309:35313] = (801).to_bytes(4, "big")
    packets = [good[0], (good[0][0] + 1, det[:1000]), (good[0][0] + 2, bad_service), good[1],
               (good[1][0] + 1, wrong_method), (good[1][0] + 2, bytes(too_many)), (good[1][0] + 3, b""),
               (good[1][0] + 4, obj + b"\0")]
    _write_bag(tmp_path / "bad", ARS_TOPIC, packets)
    with ContinentalPacketSource(tmp_path / "bad", driver="ars548") as src:
        envs = list(src.envelopes())
    assert [e.topic.rsplit("/", 1)[1] for e in envs] == ["objects", "detections"]
    assert len(envs[1].payload.returns) == 308
    c = src.counters
    assert c.packets == 8 and c.decoded == 2
    assert c.rejected == {"length": 2, "service_id": 1, "method_id": 1, "count": 1, "size": 1}
    assert len(c.first_errors) == 5


def test_bad_srr520_frames_break_only_their_list(tmp_path: Path) -> None:
    good = [(p.recv_ns, p.data) for p in read_packets(SRR_BAG)]
    frames: list[tuple[int, Any]] = list(good)
    # flip one bit in a near-range element frame: the near list's CRC no longer matches
    flipped = bytearray(frames[5][1])
    flipped[10] ^= 0x01
    frames[5] = (frames[5][0], bytes(flipped))
    # garbage frames between lists: unknown CAN id, truncated object element, wrong size
    frames.insert(52, (frames[51][0], (4242).to_bytes(4, "big") + bytes(8)))
    frames.insert(53, (frames[51][0], b"\x00\x00"))
    frames.insert(54, (frames[51][0], (1201).to_bytes(4, "big") + bytes(10)))
    _write_bag(tmp_path / "bad", SRR_TOPIC, frames)
    with ContinentalPacketSource(tmp_path / "bad", driver="srr520") as src:
        topics = [e.topic.rsplit("/", 1)[1] for e in src.envelopes()]
    assert topics == ["objects", "hrr_detections"]
    assert src.counters.rejected == {"can_id": 1, "size": 2, "list: near: list CRC mismatch": 1}
