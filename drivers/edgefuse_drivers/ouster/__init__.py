"""Ouster LiDAR driver: libpcap captures (and live UDP payloads) → LiDAR frames with per-column
time, XYZ from the sensor's beam intrinsics, and IMU samples.

- :class:`SensorInfo` reads the sensor metadata JSON;
- :func:`parse_lidar_packet` / :func:`parse_imu_packet` decode one UDP payload;
- :class:`PcapReader` yields UDP datagrams from a libpcap file;
- :class:`OusterPcap` groups packets into :class:`LidarScan` frames and IMU batches;
  :func:`xyz_lut` + :meth:`LidarScan.xyz` give points in the sensor (or LiDAR) frame.
"""

from __future__ import annotations

from edgefuse_drivers.ouster.metadata import SensorInfo
from edgefuse_drivers.ouster.packets import (
    G_MPS2,
    IMU_PACKET_BYTES,
    SUPPORTED_PROFILES,
    ImuPacket,
    LidarPacket,
    lidar_packet_bytes,
    parse_imu_packet,
    parse_lidar_packet,
)
from edgefuse_drivers.ouster.pcap import PcapReader, UdpDatagram, read_udp
from edgefuse_drivers.ouster.scan import LidarScan, OusterPcap, XYZLut, xyz_lut

__all__ = [
    "G_MPS2",
    "IMU_PACKET_BYTES",
    "SUPPORTED_PROFILES",
    "ImuPacket",
    "LidarPacket",
    "LidarScan",
    "OusterPcap",
    "PcapReader",
    "SensorInfo",
    "UdpDatagram",
    "XYZLut",
    "lidar_packet_bytes",
    "parse_imu_packet",
    "parse_lidar_packet",
    "read_udp",
    "xyz_lut",
]
