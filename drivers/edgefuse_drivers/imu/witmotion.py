"""WitMotion WT901-family IMUs (WT901, WT901C, JY901, HWT901B …): the WIT standard serial protocol.

Format as documented by WitMotion's "WT901 Datasheet" / "WIT Standard Communication Protocol" (WitMotion
Shenzhen Co., Ltd.; section "Output data"): every packet is 11 bytes, ``0x55``, a type byte, eight data
bytes (four little-endian int16 words) and a checksum byte, the low 8 bits of the sum of the ten bytes
before it.  Types read here:

========  ==================================  ==============================================
``0x50``  time (YY MM DD hh mm ss ms16)       not used (the module's own clock, never set)
``0x51``  acceleration ax, ay, az, T          a = w / 32768 · 16 g; T = w / 100 °C
``0x52``  angular velocity wx, wy, wz, V      ω = w / 32768 · 2000 °/s
``0x53``  angle roll, pitch, yaw, version     θ = w / 32768 · 180 °
``0x54``  magnetic field hx, hy, hz, T        counted, not published (no MagneticField payload)
``0x59``  quaternion q0 (w), q1, q2, q3       q = w / 32768
========  ==================================  ==============================================

Other types 0x55–0x5A (port status, pressure, GPS) are counted as ``unhandled``.  A byte that does not
start a valid packet — wrong checksum, unknown type — is dropped alone, and the parser looks for the next
``0x55``: so it resynchronises after any garbage, counting ``bad_checksum`` and ``garbage_bytes``.

**Samples.** The module sends one group per output period: 0x51, 0x52, 0x53 (and whatever else is
enabled), acceleration first.  A group ends at the next 0x51, or when the caller flushes (a quiet line).
A group with acceleration and angular velocity gives one ``sensor_msgs/Imu``: acceleration in m/s²
(g = 9.80665), angular velocity in rad/s, orientation (x, y, z, w) from the quaternion packet when
enabled, else from the angles (roll about x, pitch about y, yaw about z, applied z-y-x); a group without
either has ``orientation_covariance[0,0] = -1`` (REP 145: orientation unknown).  Groups without
acceleration or angular velocity are counted ``incomplete`` and dropped.

**Covariance** (diagonal, from the WT901 datasheet's figures): acceleration stability 0.01 g →
σ = 0.098 m/s²; gyroscope stability 0.05 °/s; static angle accuracy 0.05° (roll, pitch) and 1° (yaw, 9-axis
mode).  Pass other standard deviations to :class:`WitDecoder` for another model.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from edgefuse.msgs.types import ImuData

__all__ = ["PACKET_LEN", "G", "WitDecoder", "WitGroup", "WitStats", "euler_to_quaternion", "packet"]

G = 9.80665
PACKET_LEN = 11
_HEADER = 0x55
_KNOWN = frozenset(range(0x50, 0x5B))
_WORDS = struct.Struct("<4h")


def packet(kind: int, words: tuple[int, int, int, int]) -> bytes:
    """One packet of ``kind`` with four int16 ``words`` (for tests and simulators)."""
    body = bytes([_HEADER, kind]) + _WORDS.pack(*words)
    return body + bytes([sum(body) & 0xFF])


def euler_to_quaternion(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(x, y, z, w) of R = Rz(yaw)·Ry(pitch)·Rx(roll), angles in radians."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


@dataclass
class WitStats:
    """Counts: packets by type, bad checksums, garbage bytes, unhandled packets, incomplete groups."""

    packets: dict[int, int] = field(default_factory=dict)
    bad_checksum: int = 0
    garbage_bytes: int = 0
    unhandled: int = 0
    incomplete: int = 0
    samples: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"packets": {f"0x{k:02X}": v for k, v in sorted(self.packets.items())},
                "bad_checksum": self.bad_checksum, "garbage_bytes": self.garbage_bytes,
                "unhandled": self.unhandled, "incomplete": self.incomplete, "samples": self.samples}


@dataclass
class WitGroup:
    """One output period's packets, and when its first byte arrived (host clocks, ns)."""

    mono_ns: int
    wall_ns: int
    accel: np.ndarray | None = None
    gyro: np.ndarray | None = None
    angles: np.ndarray | None = None
    quaternion: np.ndarray | None = None
    temperature_c: float | None = None


class WitDecoder:
    """Bytes → :class:`ImuData` samples (see the module documentation).

    Args:
        frame_id: the IMU frame.
        accel_std: acceleration standard deviation [m/s²].
        gyro_std: angular velocity standard deviation [rad/s].
        angle_std: orientation standard deviations (roll, pitch, yaw) [rad].
    """

    def __init__(self, frame_id: str = "imu", *, accel_std: float = 0.01 * G,
                 gyro_std: float = math.radians(0.05),
                 angle_std: tuple[float, float, float] = (math.radians(0.05), math.radians(0.05), math.radians(1.0)),
                 ) -> None:
        self.frame_id = frame_id
        self.stats = WitStats()
        self._buf = bytearray()
        self._group: WitGroup | None = None
        self._acc_cov = np.eye(3) * accel_std ** 2
        self._gyro_cov = np.eye(3) * gyro_std ** 2
        self._ori_cov = np.diag(np.square(angle_std))
        self._stamp = (0, 0)

    def feed(self, data: bytes, mono_ns: int, wall_ns: int) -> list[tuple[ImuData, WitGroup]]:
        """Samples completed by ``data`` (received at the given host times), with their groups."""
        buf = self._buf
        if not buf:
            self._stamp = (mono_ns, wall_ns)
        buf += data
        out: list[tuple[ImuData, WitGroup]] = []
        i = 0
        n = len(buf)
        while n - i >= PACKET_LEN:
            if buf[i] != _HEADER:
                j = buf.find(_HEADER, i + 1)
                skip = (n if j < 0 else j) - i
                self.stats.garbage_bytes += skip
                i += skip
                continue
            kind = buf[i + 1]
            if kind not in _KNOWN:
                self.stats.garbage_bytes += 1
                i += 1
                continue
            if sum(buf[i:i + 10]) & 0xFF != buf[i + 10]:
                self.stats.bad_checksum += 1
                self.stats.garbage_bytes += 1
                i += 1
                continue
            words = _WORDS.unpack_from(buf, i + 2)
            self.stats.packets[kind] = self.stats.packets.get(kind, 0) + 1
            done = self._packet(kind, words, self._stamp if i == 0 else (mono_ns, wall_ns))
            if done is not None:
                out.append(done)
            i += PACKET_LEN
        del buf[:i]
        if buf and i:
            self._stamp = (mono_ns, wall_ns)
        return out

    def _packet(self, kind: int, w: tuple[int, int, int, int],
                stamp: tuple[int, int]) -> tuple[ImuData, WitGroup] | None:
        done = None
        if kind == 0x51 and self._group is not None:
            done = self.flush()
        group = self._group
        if group is None:
            group = self._group = WitGroup(*stamp)
        v = np.array(w[:3], dtype=np.float64) / 32768.0
        if kind == 0x51:
            group.accel = v * 16.0 * G
            group.temperature_c = w[3] / 100.0
        elif kind == 0x52:
            group.gyro = np.radians(v * 2000.0)
        elif kind == 0x53:
            group.angles = np.radians(v * 180.0)
        elif kind == 0x59:
            q = np.array(w, dtype=np.float64) / 32768.0
            group.quaternion = np.array([q[1], q[2], q[3], q[0]])
        elif kind not in (0x50, 0x54):
            self.stats.unhandled += 1
        return done

    def flush(self) -> tuple[ImuData, WitGroup] | None:
        """Close the open group (quiet line, end of input): its sample, or None (nothing / incomplete)."""
        group, self._group = self._group, None
        if group is None:
            return None
        if group.accel is None or group.gyro is None:
            self.stats.incomplete += 1
            return None
        ori_cov = self._ori_cov.copy()
        if group.quaternion is not None and np.linalg.norm(group.quaternion) > 0.5:
            q = group.quaternion / np.linalg.norm(group.quaternion)
        elif group.angles is not None:
            q = euler_to_quaternion(*group.angles)
        else:
            q = np.array([0.0, 0.0, 0.0, 1.0])
            ori_cov = np.zeros((3, 3))
            ori_cov[0, 0] = -1.0
        self.stats.samples += 1
        imu = ImuData(stamp_ns=group.wall_ns, frame_id=self.frame_id, orientation=q, orientation_covariance=ori_cov,
                      angular_velocity=group.gyro, angular_velocity_covariance=self._gyro_cov.copy(),
                      linear_acceleration=group.accel, linear_acceleration_covariance=self._acc_cov.copy())
        return imu, group
