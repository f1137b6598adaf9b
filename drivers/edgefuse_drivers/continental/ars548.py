"""Continental ARS548 RDI 4D imaging radar: decoding one UDP payload (SOME/IP event) into a detection list or
an object list.

Interface: Continental "ARS548 RDI – Ethernet interface specification" (the sensor's public UDP/SOME/IP
interface document); field layouts cross-checked by reading the open-source Autoware nebula driver
(``nebula_continental``).  Every multi-byte field is big-endian (network order), floats IEEE-754 binary32.

Packet layout (byte offsets)::

    0   u16 service_id (0)      2  u16 method_id      4  u32 length (= UDP payload size − 8)
    8   u16 client_id           10 u16 session_id     12 u8 protocol_version, interface_version,
                                                          message_type, return_code
    16  E2E profile 07 header: u64 crc, u32 length, u32 sequence counter, u32 data_id
        (all zero when the sensor does not protect the event, as in the reference recording)
    36  u32 timestamp_nanoseconds, u32 timestamp_seconds, u8 sync status (1 ok, 2 never, 3 lost)
    45  u32 event data qualifier, u8 extended qualifier

Detection list (method 336, 35,336 bytes): 50 u16 origin invalid flags, 52 twelve f32 (origin x, std,
y, std, z, std, roll, std, pitch, std, yaw, std), 100 u8 list invalid flags, 101 800 detections of 44
bytes (see :data:`_DET_WIRE`), 35301 f32 ambiguity-free radial velocity min/max, 35309 u32 number of
detections, 35313 f32 alignment azimuth/elevation correction, 35321 u8 alignment status, 14 reserved.

Object list (method 329, 9,401 bytes = 50 objects; 37,452 bytes = 200 objects on firmware x.40): 50 u8
number of objects, 51 objects of 187 bytes (see :data:`_OBJ_WIRE`).

The status events (sensor status 380, filter status 396; an 8-byte header without SOME/IP session fields)
are recognised and not decoded (:func:`decode_ars548` returns None).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse_drivers.packet_bag import PacketError

__all__ = [
    "DETECTION_DTYPE",
    "DETECTION_LIST_BYTES",
    "DETECTION_LIST_METHOD",
    "OBJECT_DTYPE",
    "OBJECT_LIST_BYTES",
    "OBJECT_LIST_METHOD",
    "Ars548DetectionList",
    "Ars548ObjectList",
    "SomeIpHeader",
    "decode_ars548",
    "decode_detection_list",
    "decode_object_list",
    "parse_someip_header",
]

SERVICE_ID = 0
DETECTION_LIST_METHOD = 336
OBJECT_LIST_METHOD = 329
SENSOR_STATUS_METHOD = 380
FILTER_STATUS_METHOD = 396
DETECTION_LIST_BYTES = 35_336
#: object-list payload size → number of object slots (firmware before x.40: 50; x.40 corner radars: 200)
OBJECT_LIST_BYTES = {9_401: 50, 37_452: 200}
MAX_DETECTIONS = 800
HEADER_BYTES = 36
_NOTIFICATION = 0x02

_DET_WIRE = np.dtype([
    ("azimuth_angle", ">f4"), ("azimuth_angle_std", ">f4"), ("invalid_flags", "u1"),
    ("elevation_angle", ">f4"), ("elevation_angle_std", ">f4"), ("range", ">f4"), ("range_std", ">f4"),
    ("range_rate", ">f4"), ("range_rate_std", ">f4"), ("rcs", "i1"), ("measurement_id", ">u2"),
    ("raw_positive_predictive_value", "u1"), ("classification", "u1"), ("raw_multi_target_probability", "u1"),
    ("object_id", ">u2"), ("raw_ambiguity_flag", "u1"), ("sort_index", ">u2"),
])
assert _DET_WIRE.itemsize == 44

#: one ARS548 detection (polar, in the sensor frame): angles [rad], range [m], range rate (radial velocity,
#: positive away) [m/s], standard deviations in the same units, ``rcs`` [dBm²], ``invalid_flags`` bit 0..7 =
#: distance, distance std, azimuth, azimuth std, elevation, elevation std, range rate, range rate std
#: invalid; ``raw_positive_predictive_value``/``raw_multi_target_probability``/``raw_ambiguity_flag`` in %.
DETECTION_DTYPE = _DET_WIRE.newbyteorder("=")

_OBJ_WIRE = np.dtype([
    ("status_sensor", ">u2"), ("object_id", ">u4"), ("age", ">u2"), ("status_measurement", "u1"),
    ("status_movement", "u1"), ("position_invalid_flags", ">u2"), ("position_reference", "u1"),
    ("position_x", ">f4"), ("position_x_std", ">f4"), ("position_y", ">f4"), ("position_y_std", ">f4"),
    ("position_z", ">f4"), ("position_z_std", ">f4"), ("position_covariance_xy", ">f4"),
    ("orientation", ">f4"), ("orientation_std", ">f4"), ("existence_invalid_flags", "u1"),
    ("raw_existence_probability", ">f4"), ("existence_ppv", ">f4"),
    ("raw_classification_car", "u1"), ("raw_classification_truck", "u1"),
    ("raw_classification_motorcycle", "u1"), ("raw_classification_bicycle", "u1"),
    ("raw_classification_pedestrian", "u1"), ("raw_classification_animal", "u1"),
    ("raw_classification_hazard", "u1"), ("raw_classification_unknown", "u1"),
    ("classification_overdrivable", "u1"), ("classification_underdrivable", "u1"),
    ("abs_vel_invalid_flags", "u1"), ("absolute_velocity_x", ">f4"), ("absolute_velocity_x_std", ">f4"),
    ("absolute_velocity_y", ">f4"), ("absolute_velocity_y_std", ">f4"), ("absolute_velocity_covariance_xy", ">f4"),
    ("rel_vel_invalid_flags", "u1"), ("relative_velocity_x", ">f4"), ("relative_velocity_x_std", ">f4"),
    ("relative_velocity_y", ">f4"), ("relative_velocity_y_std", ">f4"), ("relative_velocity_covariance_xy", ">f4"),
    ("abs_accel_invalid_flags", "u1"), ("absolute_acceleration_x", ">f4"),
    ("absolute_acceleration_x_std", ">f4"), ("absolute_acceleration_y", ">f4"),
    ("absolute_acceleration_y_std", ">f4"), ("absolute_acceleration_covariance_xy", ">f4"),
    ("rel_accel_invalid_flags", "u1"), ("relative_acceleration_x", ">f4"),
    ("relative_acceleration_x_std", ">f4"), ("relative_acceleration_y", ">f4"),
    ("relative_acceleration_y_std", ">f4"), ("relative_acceleration_covariance_xy", ">f4"),
    ("orientation_rate_invalid_flags", "u1"), ("orientation_rate_mean", ">f4"), ("orientation_rate_std", ">f4"),
    ("shape_length_status", ">u4"), ("shape_length_invalid_flags", "u1"), ("shape_length_edge_mean", ">f4"),
    ("shape_length_edge_std", ">f4"), ("shape_width_status", ">u4"), ("shape_width_invalid_flags", "u1"),
    ("shape_width_edge_mean", ">f4"), ("shape_width_edge_std", ">f4"),
])
assert _OBJ_WIRE.itemsize == 187

#: one ARS548 tracked object (vehicle/"object" frame as configured on the sensor): positions [m], velocities
#: [m/s], accelerations [m/s²], orientation and its rate [rad, rad/s], classification and existence
#: probabilities in %, ``position_reference`` the box point the position refers to (0..7), status codes as
#: sent (measurement: 0 measured, 1 predicted, 2 new, 255 invalid; movement: 0 dynamic, 1 static).
OBJECT_DTYPE = _OBJ_WIRE.newbyteorder("=")


@dataclass(frozen=True, slots=True)
class SomeIpHeader:
    """The SOME/IP header and the (optional) E2E profile-07 header of one ARS548 event."""

    service_id: int
    method_id: int
    length: int
    client_id: int
    session_id: int
    protocol_version: int
    interface_version: int
    message_type: int
    return_code: int
    e2e_crc: int
    e2e_length: int
    e2e_counter: int
    e2e_data_id: int


@dataclass(frozen=True, slots=True)
class Ars548DetectionList:
    """A decoded detection list.  ``sensor_stamp_ns``: the sensor's own time of the measurement (PTP/gPTP
    synchronised when ``sync_status`` is 1)."""

    header: SomeIpHeader
    sensor_stamp_ns: int
    sync_status: int
    event_data_qualifier: int
    extended_qualifier: int
    origin_invalid_flags: int
    origin_pos: tuple[float, float, float]
    origin_pos_std: tuple[float, float, float]
    origin_roll: float
    origin_roll_std: float
    origin_pitch: float
    origin_pitch_std: float
    origin_yaw: float
    origin_yaw_std: float
    list_invalid_flags: int
    ambiguity_free_velocity_min: float
    ambiguity_free_velocity_max: float
    alignment_azimuth_correction: float
    alignment_elevation_correction: float
    alignment_status: int
    detections: npt.NDArray[np.void]


@dataclass(frozen=True, slots=True)
class Ars548ObjectList:
    """A decoded object list (``objects``: the valid entries, :data:`OBJECT_DTYPE`)."""

    header: SomeIpHeader
    sensor_stamp_ns: int
    sync_status: int
    event_data_qualifier: int
    extended_qualifier: int
    objects: npt.NDArray[np.void]


_HDR = struct.Struct(">HHIHHBBBBQIII")


def parse_someip_header(data: bytes) -> SomeIpHeader:
    """The SOME/IP + E2E header of one ARS548 list event, checked: service id 0, SOME/IP length equal to
    the payload size − 8, protocol version 1, message type notification.

    Raises:
        PacketError: shorter than the 36-byte header, or one of the checks fails (``reason`` says which).
    """
    if len(data) < HEADER_BYTES:
        raise PacketError("size", f"ARS548 packet of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header")
    hdr = SomeIpHeader(*_HDR.unpack_from(data, 0))
    _check_ids(hdr.service_id, hdr.length, len(data))
    if hdr.protocol_version != 1:
        raise PacketError("protocol_version", f"SOME/IP protocol version {hdr.protocol_version}, expected 1")
    if hdr.message_type != _NOTIFICATION:
        raise PacketError("message_type", f"SOME/IP message type 0x{hdr.message_type:02x}, expected 0x02 "
                          "(notification)")
    return hdr


def _check_ids(service_id: int, length: int, size: int) -> None:
    if service_id != SERVICE_ID:
        raise PacketError("service_id", f"SOME/IP service id {service_id}, expected {SERVICE_ID}")
    if length != size - 8:
        raise PacketError("length", f"SOME/IP length {length} does not match the {size}-byte payload "
                          f"(expected {size - 8})")


def _stamp(data: bytes) -> tuple[int, int, int, int]:
    nsec, sec, sync, qualifier, ext = struct.unpack_from(">IIBIB", data, HEADER_BYTES)
    if nsec >= 1_000_000_000:
        raise PacketError("timestamp", f"timestamp nanoseconds {nsec} >= 1e9")
    if sync not in {1, 2, 3}:
        raise PacketError("sync_status", f"time sync status {sync}, expected 1, 2 or 3")
    return sec * 1_000_000_000 + nsec, sync, qualifier, ext


def decode_detection_list(data: bytes) -> Ars548DetectionList:
    """Decode a detection-list event (method 336).

    Raises:
        PacketError: wrong size/header, a detection count over 800, bad stamp fields.
    """
    hdr = parse_someip_header(data)
    if hdr.method_id != DETECTION_LIST_METHOD:
        raise PacketError("method_id", f"method {hdr.method_id} is not a detection list ({DETECTION_LIST_METHOD})")
    if len(data) != DETECTION_LIST_BYTES:
        raise PacketError("size", f"detection list of {len(data)} bytes, expected {DETECTION_LIST_BYTES}")
    stamp, sync, qualifier, ext = _stamp(data)
    origin_flags = struct.unpack_from(">H", data, 50)[0]
    o = struct.unpack_from(">12f", data, 52)
    list_flags = data[100]
    tail = 101 + MAX_DETECTIONS * _DET_WIRE.itemsize
    vmin, vmax, count, az_corr, el_corr, align = struct.unpack_from(">ffIffB", data, tail)
    if count > MAX_DETECTIONS:
        raise PacketError("count", f"{count} detections, more than the {MAX_DETECTIONS} slots")
    dets = np.frombuffer(data, dtype=_DET_WIRE, count=count, offset=101).astype(DETECTION_DTYPE)
    return Ars548DetectionList(
        header=hdr, sensor_stamp_ns=stamp, sync_status=sync, event_data_qualifier=qualifier,
        extended_qualifier=ext, origin_invalid_flags=origin_flags, origin_pos=(o[0], o[2], o[4]),
        origin_pos_std=(o[1], o[3], o[5]), origin_roll=o[6], origin_roll_std=o[7], origin_pitch=o[8],
        origin_pitch_std=o[9], origin_yaw=o[10], origin_yaw_std=o[11], list_invalid_flags=list_flags,
        ambiguity_free_velocity_min=vmin, ambiguity_free_velocity_max=vmax,
        alignment_azimuth_correction=az_corr, alignment_elevation_correction=el_corr, alignment_status=align,
        detections=dets)


def decode_object_list(data: bytes) -> Ars548ObjectList:
    """Decode an object-list event (method 329; 50 or 200 object slots by size).

    Raises:
        PacketError: wrong size/header, an object count over the slots, bad stamp fields.
    """
    hdr = parse_someip_header(data)
    if hdr.method_id != OBJECT_LIST_METHOD:
        raise PacketError("method_id", f"method {hdr.method_id} is not an object list ({OBJECT_LIST_METHOD})")
    slots = OBJECT_LIST_BYTES.get(len(data))
    if slots is None:
        raise PacketError("size", f"object list of {len(data)} bytes, expected one of {sorted(OBJECT_LIST_BYTES)}")
    stamp, sync, qualifier, ext = _stamp(data)
    count = data[50]
    if count > slots:
        raise PacketError("count", f"{count} objects, more than the {slots} slots")
    objs = np.frombuffer(data, dtype=_OBJ_WIRE, count=count, offset=51).astype(OBJECT_DTYPE)
    return Ars548ObjectList(header=hdr, sensor_stamp_ns=stamp, sync_status=sync, event_data_qualifier=qualifier,
                            extended_qualifier=ext, objects=objs)


def decode_ars548(data: bytes) -> Ars548DetectionList | Ars548ObjectList | None:
    """Decode one ARS548 UDP payload: a detection list, an object list, or None for the status events
    (sensor status 380, filter status 396) this decoder does not turn into data.

    Raises:
        PacketError: malformed, or an unknown method id (``reason`` ``"method_id"``).
    """
    if len(data) < 8:
        raise PacketError("size", f"ARS548 packet of {len(data)} bytes is shorter than its 8-byte header")
    service_id, method_id, length = struct.unpack_from(">HHI", data, 0)
    _check_ids(service_id, length, len(data))
    if method_id == DETECTION_LIST_METHOD:
        return decode_detection_list(data)
    if method_id == OBJECT_LIST_METHOD:
        return decode_object_list(data)
    if method_id in {SENSOR_STATUS_METHOD, FILTER_STATUS_METHOD}:
        return None
    raise PacketError("method_id", f"unknown ARS548 method id {method_id}")
