"""Continental object lists as ``radar_msgs/RadarTracks``: the mapping on nebula's reference objects, the
message's (de)serialisation (CDR, ROS 1, Zenoh type hash) and ``edgefuse convert`` of an ARS548 capture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edgefuse_drivers.continental.source import ContinentalPacketSource
from edgefuse_drivers.continental.tracks import CLASS_CODES, ars548_tracks, uuid_of
from edgefuse_drivers.packet_bag import read_packets
from edgefuse_drivers.pcap import write_pcap

from edgefuse.bag import bag_info
from edgefuse.msgs import deserialize, serialize
from edgefuse.msgs.convert import from_payload, to_payload
from edgefuse.msgs.edges import msgtype_of, type_of_msgtype
from edgefuse.msgs.types import RADAR_TRACK_DTYPE, RadarTracksData
from edgefuse.sources import open_source

from .test_reference import _yaml

DATA = Path(__file__).resolve().parents[2] / "data"
ARS = DATA / "nebula_continental" / "ars548"
SRR_BAG = DATA / "nebula_radar_lidar_packets" / "srr520" / "1708578209"
ARS_TOPIC = "/sensing/radar/front_center/nebula_packets"
SRR_TOPIC = "/sensing/radar/front_left/nebula_packets"
TRACKS = "radar_msgs/msg/RadarTracks"


def _ars_tracks() -> RadarTracksData:
    with ContinentalPacketSource(ARS / "1708578204", driver="ars548") as src:
        env = next(iter(src.envelopes([f"{ARS_TOPIC}/objects"])))
    assert env.msgtype == TRACKS and isinstance(env.payload, RadarTracksData)
    return env.payload


def test_ars548_mapping_on_reference_objects() -> None:
    ref = _yaml(ARS / "1708578204_199326753_object.yaml")["objects"]
    tracks = _ars_tracks().tracks
    assert len(tracks) == len(ref) == 50
    order = ("car", "truck", "motorcycle", "bicycle", "pedestrian", "animal", "hazard", "unknown")
    seen = set()
    for t, r in zip(tracks, ref, strict=True):
        assert int.from_bytes(bytes(t["uuid"]), "big") == int(r["object_id"])
        assert np.allclose(t["position"], [r["position"][k] for k in "xyz"], rtol=1e-5, atol=1e-6)
        assert np.allclose(t["velocity"], [r["absolute_velocity"]["x"], r["absolute_velocity"]["y"], 0], atol=1e-5)
        assert np.allclose(t["acceleration"][:2], [r["absolute_acceleration"][k] for k in "xy"], atol=1e-5)
        assert np.allclose(t["size"], [r["shape_length_edge_mean"], r["shape_width_edge_mean"], 0], atol=1e-5)
        probs = [int(r[f"raw_classification_{c}"]) for c in order]
        expect = (CLASS_CODES[order[int(np.argmax(probs))]] if max(probs) > 0
                  else {0: 2, 1: 1}.get(int(r["status_movement"]), 0))
        assert int(t["classification"]) == expect
        seen.add(int(t["classification"]))
        sx, sy, sz = (float(r["position_std"][k]) for k in "xyz")
        pc = t["position_covariance"]
        assert np.allclose(pc, [sx * sx, float(r["position_covariance_xy"]), 0, sy * sy, 0, sz * sz], rtol=2e-5)
        vx, vy = (float(r["absolute_velocity_std"][k]) for k in "xy")
        assert np.allclose(t["velocity_covariance"],
                           [vx * vx, float(r["absolute_velocity_covariance_xy"]), 0, vy * vy, 0, 0], rtol=2e-5)
    # this list has hazard- and unknown-classed objects and unclassified stationary ones
    assert seen == {CLASS_CODES["hazard"], CLASS_CODES["unknown"], 1}


def test_srr520_objects_become_tracks() -> None:
    with ContinentalPacketSource(SRR_BAG, driver="srr520") as src:
        env = next(iter(src.envelopes([f"{SRR_TOPIC}/objects"])))
    objs, tracks = env.meta["objects"], env.payload.tracks
    assert env.msgtype == TRACKS and len(tracks) == len(objs) == 40
    assert np.array_equal(tracks["uuid"], uuid_of(objs["object_id"]))
    assert np.allclose(tracks["position"][:, :2], np.stack([objs["dist_x"], objs["dist_y"]], 1))
    assert np.allclose(tracks["position_covariance"][:, 0], objs["dist_x_std"].astype(np.float64) ** 2, rtol=1e-6)
    assert (tracks["classification"] == 0).all()


@pytest.mark.parametrize("fmt", ["cdr", "ros1"])
def test_radar_tracks_round_trip(fmt: str) -> None:
    """The ROS 1 bytes use edgefuse's (ROS 2 layout) definition: noetic's radar_msgs/RadarTrack differs."""
    data = _ars_tracks()
    assert type_of_msgtype(TRACKS) == "RadarTracks" and msgtype_of("RadarTracks") == TRACKS
    raw = serialize(from_payload(data), TRACKS, fmt=fmt)  # type: ignore[arg-type]
    back = to_payload(deserialize(raw, TRACKS, fmt=fmt), TRACKS)  # type: ignore[arg-type]
    assert isinstance(back, RadarTracksData)
    assert back.stamp_ns == data.stamp_ns and back.frame_id == data.frame_id
    assert back.tracks.dtype == RADAR_TRACK_DTYPE
    for name in RADAR_TRACK_DTYPE.names or ():
        assert np.array_equal(back.tracks[name], data.tracks[name]), name


def test_radar_tracks_zenoh_type_hash() -> None:
    from edgefuse.transport.zenoh import type_hash

    h = type_hash(TRACKS)
    assert h.startswith("RIHS01_") and len(h) == 7 + 64
    assert h != type_hash("radar_msgs/msg/RadarScan")


def test_convert_ars548_capture_writes_objects(tmp_path: Path) -> None:
    packets = [p.data for p in read_packets(ARS / "1708578204")]
    cap = tmp_path / "ars548.pcap"
    write_pcap(cap, [(1_708_578_204_000_000_000 + i * 10_000_000, p) for i, p in enumerate(packets)],
               src="10.13.1.114", dst="224.0.2.2", src_port=42102, dst_port=42102)
    out = tmp_path / "bag"
    res = subprocess.run([sys.executable, "-m", "edgefuse.cli", "convert", str(cap), str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "not written" not in res.stdout
    info = bag_info(out)
    assert info.topics["/ars548/objects"].msgtype == TRACKS and info.topics["/ars548/objects"].count == 1
    with open_source(out) as bag:
        env = next(iter(bag.envelopes(["/ars548/objects"])))
    assert isinstance(env.payload, RadarTracksData)
    assert np.array_equal(env.payload.tracks["uuid"], _ars_tracks().tracks["uuid"])
    assert np.allclose(env.payload.tracks["position"], ars548_tracks(_objects())["position"])


def _objects() -> np.ndarray:
    with ContinentalPacketSource(ARS / "1708578204", driver="ars548") as src:
        env = next(iter(src.envelopes([f"{ARS_TOPIC}/objects"])))
    return np.asarray(env.meta["objects"])
