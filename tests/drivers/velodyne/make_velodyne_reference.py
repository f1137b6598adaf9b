"""Build tests/data/velodyne/ from ../shared/data (run once; the outputs are committed).

- ``nebula_vlp16.pcap``: the packets of messages 3 and 4 of nebula's VLP-16 ground-truth bag (dual return),
  ``nebula_vlp16_ref.npz``: its reference cloud (x y z intensity channel), from ``1673400472138016708.pcd``;
- ``nebula_vlp32.pcap``: the 76 packets of message 1 of nebula's VLP-32C bag, ``nebula_vlp32_ref.npz``: its
  reference cloud (x y z) from ``1713492677464078412.pcd``;
- ``hdl32e.pcap``: rust-lidar-utils' ``velodyne_vlp32.pcap`` (an HDL-32E capture), copied byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from edgefuse_drivers.pcap import write_pcap
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

SHARED = Path("/work/shared/data")
OUT = Path(__file__).resolve().parents[2] / "data" / "velodyne"


def bag_packets(bagdir: Path) -> list[list[tuple[int, bytes]]]:
    ts = get_typestore(Stores.ROS2_HUMBLE)
    ts.register(get_types_from_msg("builtin_interfaces/Time stamp\nuint8[1206] data",
                                   "velodyne_msgs/msg/VelodynePacket"))
    ts.register(get_types_from_msg("std_msgs/Header header\nvelodyne_msgs/VelodynePacket[] packets",
                                   "velodyne_msgs/msg/VelodyneScan"))
    out = []
    with AnyReader([bagdir], default_typestore=ts) as r:
        for con, _t, raw in r.messages():
            m: Any = r.deserialize(raw, con.msgtype)
            out.append([(p.stamp.sec * 10**9 + p.stamp.nanosec, bytes(p.data)) for p in m.packets])
    return out


def read_pcd(path: Path) -> np.ndarray:
    data = path.read_bytes()
    hdr, _, body = data.partition(b"DATA binary\n")
    lines = dict(line.split(" ", 1) for line in hdr.decode().splitlines() if not line.startswith("#"))
    names, sizes, types = lines["FIELDS"].split(), lines["SIZE"].split(), lines["TYPE"].split()
    dt = np.dtype([(n, {"F": "f", "U": "u", "I": "i"}[t] + s) for n, s, t in zip(names, sizes, types, strict=True)])
    n = int(lines["POINTS"])
    return np.frombuffer(body[: n * dt.itemsize], dt)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    neb = SHARED / "nebula_radar_lidar_packets"
    msgs = bag_packets(neb / "vlp16" / "1673400471837873222")
    write_pcap(OUT / "nebula_vlp16.pcap", msgs[2] + msgs[3])
    ref = read_pcd(neb / "vlp16" / "1673400472138016708.pcd")
    np.savez_compressed(OUT / "nebula_vlp16_ref.npz", x=ref["x"], y=ref["y"], z=ref["z"], intensity=ref["intensity"],
                        channel=ref["channel"])
    msgs = bag_packets(neb / "vlp32" / "1713492677464078412")
    write_pcap(OUT / "nebula_vlp32.pcap", msgs[0])
    ref = read_pcd(neb / "vlp32" / "1713492677464078412.pcd")
    np.savez_compressed(OUT / "nebula_vlp32_ref.npz", x=ref["x"], y=ref["y"], z=ref["z"])
    shutil.copyfile(SHARED / "velodyne_pcaps/rust-lidar-utils/velodyne-test/test_files/velodyne_vlp32.pcap",
                    OUT / "hdl32e.pcap")


if __name__ == "__main__":
    main()
