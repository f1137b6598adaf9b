"""Sensor messages → measurement rows for the filters (vectorised; a single message is a batch of one).

Each sensor has a :class:`SensorSpec` (robot_localization's per-sensor parameters).  Its messages are
turned into up to three *parts*, each a measurement row over the state variables the sensor's
``config`` selects, expressed in the filter frames:

- IMU (``sensor_msgs/Imu``): orientation → roll, pitch, yaw (``R_world_base = R_world_imu ·
  R_base_imuᵀ``); angular velocity → vroll, vpitch, vyaw (``R_base_imu · ω``); linear acceleration →
  ax, ay, az (``R_base_imu · a``, minus gravity ``R_world_baseᵀ·[0, 0, g]`` with
  ``remove_gravitational_acceleration`` — from the message's orientation, or from the filter's when
  the message has none).  Covariances are rotated the same way.  A covariance whose first element is
  −1 means "not provided" (ROS convention): that part is skipped and counted as ``not_provided``.
- Odometry (``nav_msgs/Odometry``): pose → x … yaw (``T_world_base = T_world_frame · T_frame_child ·
  T_child_base``), twist → vx … vyaw (``v_base = R_base_child·v − ω_base × t_base_child``).
- GNSS (``sensor_msgs/NavSatFix``): ENU relative to the datum (the first valid fix) → x, y, z through
  the navsat transform (``KIND_GNSS`` rows, see :mod:`edgefuse.estimation._kernels`).

``relative``: poses are taken relative to the sensor's first pose.  ``differential``: consecutive poses
become body-frame velocities (``(Σₖ + Σₖ₋₁)/dt²``), so two absolute sources never fight.

Rejected before the filter (counted, see :data:`edgefuse.estimation.state.PRE_REASONS`): GNSS status −1
(``no_fix``), fixes outside WGS84 ranges (``out_of_range``), frames the rig cannot resolve
(``unknown_frame``), parts the message marks as absent (``not_provided``).  The kernel then rejects
non-finite values or covariances (``nan``) and covariances that are not symmetric positive
semi-definite (``not_psd``); variances below ``1e-9`` are raised to ``1e-9`` (sensors publish zeros).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ConfigError
from edgefuse.estimation import _kernels as kern
from edgefuse.estimation.navsat import Datum
from edgefuse.estimation.state import PRE_REASONS, parse_config
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
KINDS = ("imu", "odom", "gnss")
PARTS = 3  # slots per sensor: 0 pose/orientation (or GNSS), 1 twist/angular velocity, 2 acceleration


@dataclass
class SensorSpec:
    """One input sensor of a filter (robot_localization's ``<sensor>N_*`` parameters).

    Attributes:
        name: sensor name (e.g. ``imu0``); counters are kept per name.
        kind: ``imu`` | ``odom`` | ``gnss``.
        config: 15 booleans (state order) choosing the variables this sensor updates.
        frame_id: the sensor frame to look up in the rig, overriding the message's ``frame_id``.
        differential / relative: see the module docstring (pose parts only).
        remove_gravitational_acceleration: IMU only.
        gravity_m_s2: magnitude of gravity removed.
        pose_rejection_threshold / twist_rejection_threshold / acceleration_rejection_threshold:
            Mahalanobis-distance gates per part (``inf``: off).
        yaw_offset_rad / magnetic_declination_rad: GNSS: added to the IMU yaw to get the ENU heading
            of the robot at the datum (navsat_transform_node's parameters).
        use_odometry_yaw: GNSS: the filter's world frame is ENU-aligned already (no heading needed).
        zero_altitude: GNSS: report altitude 0 (then ``z`` is usually left out of ``config``).
        default_variance_m2: GNSS: per-axis variance when the fix's covariance type is 0 (unknown).
    """

    name: str
    kind: str
    config: Any
    frame_id: str | None = None
    differential: bool = False
    relative: bool = False
    remove_gravitational_acceleration: bool = False
    gravity_m_s2: float = 9.80665
    pose_rejection_threshold: float = math.inf
    twist_rejection_threshold: float = math.inf
    acceleration_rejection_threshold: float = math.inf
    yaw_offset_rad: float = 0.0
    magnetic_declination_rad: float = 0.0
    use_odometry_yaw: bool = False
    zero_altitude: bool = False
    default_variance_m2: float = 1.0
    mask: npt.NDArray[np.bool_] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"sensor '{self.name}': kind must be one of {KINDS}, got {self.kind!r}")
        self.mask = parse_config(self.config, f"sensor '{self.name}' config")
        for attr in ("pose_rejection_threshold", "twist_rejection_threshold", "acceleration_rejection_threshold"):
            v = float(getattr(self, attr))
            if not v > 0:
                raise ConfigError(f"sensor '{self.name}': {attr} must be > 0, got {v}")
            setattr(self, attr, v)
        if self.kind == "gnss" and (self.mask[3:].any()):
            raise ConfigError(f"sensor '{self.name}': a GNSS fix can only update x, y, z")
        if not self.mask.any():
            raise ConfigError(f"sensor '{self.name}': config selects no state variable")

    @classmethod
    def from_dict(cls, name: str, kind: str, d: dict[str, Any]) -> SensorSpec:
        known = {f for f in cls.__dataclass_fields__ if f not in ("name", "kind", "mask")}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"sensor '{name}': unknown key(s) {unknown}; known: {sorted(known)}")
        if "config" not in d:
            raise ConfigError(f"sensor '{name}': 'config' (15 booleans) is required")
        return cls(name=name, kind=kind, **d)


@dataclass
class SensorMemory:
    """Per-sensor state kept between batches: first pose (relative), previous pose (differential)."""

    first_R: F64 | None = None  # noqa: N815 (rotation matrix)
    first_p: F64 | None = None
    prev_t: int | None = None
    prev_R: F64 | None = None  # noqa: N815 (rotation matrix)
    prev_p: F64 | None = None
    prev_cov: F64 | None = None
    last_yaw: float = float("nan")  # IMU: world yaw of the base from the latest orientation
    last_yaw_t: int | None = None


@dataclass
class Rows:
    """Measurement rows (kernel input).  ``pre`` is −1 for rows that go to the filter, else an index
    into :data:`PRE_REASONS` (rejected before the filter; counted)."""

    t: I64
    slot: I64
    kind: I64
    z: F64
    idx: I64
    m: I64
    R: F64
    thresh: F64
    aux: F64
    pre: npt.NDArray[np.int8]

    @classmethod
    def empty(cls, n: int = 0) -> Rows:
        return cls(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 6)),
                   np.zeros((n, 6), np.int64), np.zeros(n, np.int64), np.zeros((n, 6, 6)), np.full(n, np.inf),
                   np.full(n, np.nan), np.full(n, -1, np.int8))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        if not parts:
            return Rows.empty()
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                      ("t", "slot", "kind", "z", "idx", "m", "R", "thresh", "aux", "pre")))

    def sorted_by_arrival(self, order: npt.ArrayLike) -> Rows:
        o = np.asarray(order)
        return Rows(*(getattr(self, f)[o] for f in
                      ("t", "slot", "kind", "z", "idx", "m", "R", "thresh", "aux", "pre")))


# -- rotations (vectorised) ------------------------------------------------------------------------
def rot_from_quat(q: F64) -> F64:
    """(N, 4) xyzw → (N, 3, 3); quaternions are normalised."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    R = np.empty((q.shape[0], 3, 3))
    R[:, 0, 0] = 1 - 2 * (y * y + z * z)
    R[:, 0, 1] = 2 * (x * y - z * w)
    R[:, 0, 2] = 2 * (x * z + y * w)
    R[:, 1, 0] = 2 * (x * y + z * w)
    R[:, 1, 1] = 1 - 2 * (x * x + z * z)
    R[:, 1, 2] = 2 * (y * z - x * w)
    R[:, 2, 0] = 2 * (x * z - y * w)
    R[:, 2, 1] = 2 * (y * z + x * w)
    R[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def rpy_from_rot(R: F64) -> F64:
    """(N, 3, 3) → (N, 3) roll, pitch, yaw with R = Rz(yaw)·Ry(pitch)·Rx(roll)."""
    pitch = np.arcsin(np.clip(-R[:, 2, 0], -1.0, 1.0))
    roll = np.arctan2(R[:, 2, 1], R[:, 2, 2])
    yaw = np.arctan2(R[:, 1, 0], R[:, 0, 0])
    return np.stack([roll, pitch, yaw], -1)


def rot_from_rpy(rpy: F64) -> F64:
    """(N, 3) → (N, 3, 3), R = Rz·Ry·Rx."""
    r, p, y = rpy[:, 0], rpy[:, 1], rpy[:, 2]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
        np.stack([-sp, cp * sr, cp * cr], -1),
    ], -2)


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> F64:
    """Quaternion (x, y, z, w) of R = Rz(yaw)·Ry(pitch)·Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


# -- decoded arrays ---------------------------------------------------------------------------------
@dataclass
class ImuArrays:
    t: I64
    frame_id: str
    q: F64  # (N, 4) xyzw
    q_cov: F64  # (N, 3, 3)
    w: F64
    w_cov: F64
    a: F64
    a_cov: F64

    @classmethod
    def from_payloads(cls, msgs: Sequence[ImuData]) -> ImuArrays:
        return cls(np.array([m.stamp_ns for m in msgs], np.int64), msgs[0].frame_id if msgs else "",
                   np.array([m.orientation for m in msgs], np.float64).reshape(-1, 4),
                   np.array([m.orientation_covariance for m in msgs], np.float64).reshape(-1, 3, 3),
                   np.array([m.angular_velocity for m in msgs], np.float64).reshape(-1, 3),
                   np.array([m.angular_velocity_covariance for m in msgs], np.float64).reshape(-1, 3, 3),
                   np.array([m.linear_acceleration for m in msgs], np.float64).reshape(-1, 3),
                   np.array([m.linear_acceleration_covariance for m in msgs], np.float64).reshape(-1, 3, 3))


@dataclass
class OdomArrays:
    t: I64
    frame_id: str
    child_frame_id: str
    p: F64
    q: F64
    pose_cov: F64  # (N, 6, 6)
    v: F64
    w: F64
    twist_cov: F64

    @classmethod
    def from_payloads(cls, msgs: Sequence[OdometryData]) -> OdomArrays:
        return cls(np.array([m.stamp_ns for m in msgs], np.int64), msgs[0].frame_id if msgs else "",
                   msgs[0].child_frame_id if msgs else "",
                   np.array([m.position for m in msgs], np.float64).reshape(-1, 3),
                   np.array([m.orientation for m in msgs], np.float64).reshape(-1, 4),
                   np.array([m.pose_covariance for m in msgs], np.float64).reshape(-1, 6, 6),
                   np.array([m.linear_velocity for m in msgs], np.float64).reshape(-1, 3),
                   np.array([m.angular_velocity for m in msgs], np.float64).reshape(-1, 3),
                   np.array([m.twist_covariance for m in msgs], np.float64).reshape(-1, 6, 6))


@dataclass
class FixArrays:
    t: I64
    frame_id: str
    status: I64
    lat: F64
    lon: F64
    alt: F64
    cov: F64  # (N, 3, 3) ENU
    cov_type: I64

    @classmethod
    def from_payloads(cls, msgs: Sequence[NavSatFixData]) -> FixArrays:
        return cls(np.array([m.stamp_ns for m in msgs], np.int64), msgs[0].frame_id if msgs else "",
                   np.array([m.status for m in msgs], np.int64),
                   np.array([m.latitude_deg for m in msgs], np.float64),
                   np.array([m.longitude_deg for m in msgs], np.float64),
                   np.array([m.altitude_m for m in msgs], np.float64),
                   np.array([m.position_covariance for m in msgs], np.float64).reshape(-1, 3, 3),
                   np.array([m.position_covariance_type for m in msgs], np.int64))


# -- row building -----------------------------------------------------------------------------------
_REASON = {name: i for i, name in enumerate(PRE_REASONS)}


def _part(t: I64, slot: int, sel: npt.NDArray[np.intp], values: F64, cov: F64, thresh: float,  # noqa: PLR0917
          valid: npt.NDArray[np.bool_], kind: int = kern.KIND_DIRECT, reason_invalid: str = "not_provided") -> Rows:
    """Rows for one part: ``values`` (N, k) and ``cov`` (N, k, k) over state indices ``sel`` (k,).

    Invalid rows get ``reason_invalid``; values and covariances are checked (finite, PSD) by the kernel.
    """
    n = t.shape[0]
    m = sel.shape[0]
    rows = Rows(t.astype(np.int64, copy=True), np.full(n, slot, np.int64), np.full(n, kind, np.int64),
                np.zeros((n, 6)), np.zeros((n, 6), np.int64), np.full(n, m, np.int64), np.zeros((n, 6, 6)),
                np.full(n, thresh), np.full(n, np.nan), np.where(valid, -1, _REASON[reason_invalid]).astype(np.int8))
    rows.z[:, :m] = values
    rows.idx[:, :m] = sel
    rows.R[:, :m, :m] = cov
    return rows


def _sub(cov: F64, cols: npt.NDArray[np.intp]) -> F64:
    out: F64 = cov[:, cols[:, None], cols[None, :]]
    return out


def _rotate_cov(cov: F64, R: F64) -> F64:
    """R · cov · Rᵀ for (N, k, k) cov and (k, k) or (N, k, k) R."""
    out: F64 = np.einsum("...ij,...jk,...lk->...il", R, cov, R)
    return out


def _pose_rows(spec: SensorSpec, slot: int, t: I64, Rw: F64, p: F64, cov6: F64, valid: npt.NDArray[np.bool_],  # noqa: PLR0917
               mem: SensorMemory, use_position: bool, invalid_reason: str) -> Rows:
    """Rows from absolute poses (world frame) honouring relative / differential."""
    sel_pose = np.flatnonzero(spec.mask[0:6]) if use_position else 3 + np.flatnonzero(spec.mask[3:6])
    if sel_pose.size == 0:
        return Rows.empty()
    if spec.relative and valid.any():
        if mem.first_R is None:
            k = int(np.flatnonzero(valid)[0])
            mem.first_R = Rw[k].copy()
            mem.first_p = p[k].copy()
        assert mem.first_p is not None
        Rw = np.einsum("ji,njk->nik", mem.first_R, Rw)
        p = (p - mem.first_p) @ mem.first_R
    rpy = rpy_from_rot(Rw)
    full = np.concatenate([p, rpy], axis=1)
    if not spec.differential:
        return _part(t, slot, sel_pose, full[:, sel_pose], _sub(cov6, sel_pose), spec.pose_rejection_threshold,
                     valid, reason_invalid=invalid_reason)
    # differential: consecutive valid poses -> body-frame velocities of the selected variables
    n = t.shape[0]
    vel = np.full((n, 6), np.nan)
    vcov = np.full((n, 6, 6), np.nan)
    ok_prev = np.zeros(n, dtype=bool)
    prev_t, prev_R, prev_p, prev_cov = mem.prev_t, mem.prev_R, mem.prev_p, mem.prev_cov
    for i in np.flatnonzero(valid):
        if prev_t is not None and prev_R is not None and prev_p is not None and prev_cov is not None \
                and t[i] > prev_t:
            dt = (t[i] - prev_t) * 1e-9
            dR = prev_R.T @ Rw[i]
            vel[i, 0:3] = prev_R.T @ (p[i] - prev_p) / dt
            vel[i, 3:6] = rpy_from_rot(dR[None])[0] / dt
            vcov[i] = (cov6[i] + prev_cov) / (dt * dt)
            ok_prev[i] = True
        prev_t, prev_R, prev_p, prev_cov = int(t[i]), Rw[i], p[i], cov6[i]
    mem.prev_t, mem.prev_R, mem.prev_p, mem.prev_cov = prev_t, prev_R, prev_p, prev_cov
    keep = ok_prev | ~valid
    rows = _part(t[keep], slot, 6 + sel_pose, vel[keep][:, sel_pose], _sub(vcov[keep], sel_pose),
                 spec.twist_rejection_threshold, valid[keep], reason_invalid=invalid_reason)
    return rows


def imu_rows(spec: SensorSpec, sensor_index: int, arr: ImuArrays, R_base_imu: F64 | None,
             mem: SensorMemory) -> Rows:
    """Rows from IMU samples; ``R_base_imu`` None: the frame is unknown to the rig (rejected)."""
    n = arr.t.shape[0]
    if n == 0:
        return Rows.empty()
    base_slot = sensor_index * PARTS
    known = R_base_imu is not None
    Rbi = R_base_imu if R_base_imu is not None else np.eye(3)
    parts: list[Rows] = []
    frame_reason = "unknown_frame"
    with np.errstate(invalid="ignore"):
        has_q = (arr.q_cov[:, 0, 0] != -1.0) & (np.einsum("ij,ij->i", arr.q, arr.q) > 0.25)
    with np.errstate(invalid="ignore", divide="ignore"):
        Rwi = rot_from_quat(np.where(has_q[:, None], arr.q, np.array([0.0, 0.0, 0.0, 1.0])))
    Rwb = Rwi @ Rbi.T
    if known and has_q.any():
        k = int(np.flatnonzero(has_q)[-1])
        mem.last_yaw = math.atan2(Rwb[k, 1, 0], Rwb[k, 0, 0])
        mem.last_yaw_t = int(arr.t[k])
    if spec.mask[3:6].any():
        cov6 = np.zeros((n, 6, 6))
        cov6[:, 3:6, 3:6] = _rotate_cov(arr.q_cov, Rbi)
        valid = np.full(n, known) & has_q
        reason = "unknown_frame" if not known else "not_provided"
        parts.append(_pose_rows(spec, base_slot, arr.t, Rwb, np.zeros((n, 3)), cov6, valid, mem, False, reason))
    if spec.mask[9:12].any():
        sel = 9 + np.flatnonzero(spec.mask[9:12])
        w = arr.w @ Rbi.T
        c = _rotate_cov(arr.w_cov, Rbi)
        valid = np.full(n, known) & (arr.w_cov[:, 0, 0] != -1.0)
        parts.append(_part(arr.t, base_slot + 1, sel, w[:, sel - 9], _sub(c, sel - 9), spec.twist_rejection_threshold,
                           valid, reason_invalid=frame_reason if not known else "not_provided"))
    if spec.mask[12:15].any():
        sel = 12 + np.flatnonzero(spec.mask[12:15])
        a = arr.a @ Rbi.T
        c = _rotate_cov(arr.a_cov, Rbi)
        kind = np.full(n, kern.KIND_DIRECT)
        if spec.remove_gravitational_acceleration:
            g_body = Rwb[:, 2, :] * spec.gravity_m_s2  # R_wbᵀ·[0,0,g] = g · (row 2 of R_wb)
            a = np.where(has_q[:, None], a - g_body, a)
            kind = np.where(has_q, kern.KIND_DIRECT, kern.KIND_ACCEL_GRAVITY)
        valid = np.full(n, known) & (arr.a_cov[:, 0, 0] != -1.0)
        rows = _part(arr.t, base_slot + 2, sel, a[:, sel - 12], _sub(c, sel - 12),
                     spec.acceleration_rejection_threshold, valid,
                     reason_invalid=frame_reason if not known else "not_provided")
        rows.kind[:] = kind
        parts.append(rows)
    return Rows.concat(parts)


def imu_heading(arr: ImuArrays, R_base_imu: F64) -> tuple[I64, F64]:
    """(stamps, world yaw of the base) from IMU orientations (samples without orientation dropped)."""
    has_q = (arr.q_cov[:, 0, 0] != -1.0) & (np.linalg.norm(np.nan_to_num(arr.q), axis=1) > 0.5)
    if not has_q.any():
        return np.zeros(0, np.int64), np.zeros(0)
    Rwb = rot_from_quat(arr.q[has_q]) @ R_base_imu.T
    return arr.t[has_q], rpy_from_rot(Rwb)[:, 2]


def odom_rows(spec: SensorSpec, sensor_index: int, arr: OdomArrays,  # noqa: PLR0917
              T_world_frame: F64 | None, T_child_base: F64 | None, mem: SensorMemory) -> Rows:
    """Rows from odometry; the 4×4 transforms are None when the rig cannot resolve the frame."""
    n = arr.t.shape[0]
    if n == 0:
        return Rows.empty()
    base_slot = sensor_index * PARTS
    parts: list[Rows] = []
    if spec.mask[0:6].any():
        known = T_world_frame is not None and T_child_base is not None
        Twf = T_world_frame if T_world_frame is not None else np.eye(4)
        Tcb = T_child_base if T_child_base is not None else np.eye(4)
        with np.errstate(invalid="ignore", divide="ignore"):
            Rfc = rot_from_quat(arr.q)
        Rwb = Twf[:3, :3] @ Rfc @ Tcb[:3, :3]
        p = (Twf[:3, :3] @ (arr.p + np.einsum("nij,j->ni", Rfc, Tcb[:3, 3])).T).T + Twf[:3, 3]
        B = np.zeros((6, 6))
        B[:3, :3] = Twf[:3, :3]
        B[3:, 3:] = Twf[:3, :3]
        cov6 = _rotate_cov(arr.pose_cov, B)
        valid = np.full(n, known) & np.isfinite(arr.q).all(1)
        parts.append(_pose_rows(spec, base_slot, arr.t, Rwb, p, cov6, valid, mem, True,
                                "unknown_frame" if not known else "not_provided"))
    if spec.mask[6:12].any():
        sel = 6 + np.flatnonzero(spec.mask[6:12])
        known = T_child_base is not None
        Tbc = np.linalg.inv(T_child_base) if T_child_base is not None else np.eye(4)
        Rbc, tbc = Tbc[:3, :3], Tbc[:3, 3]
        w = arr.w @ Rbc.T
        v = arr.v @ Rbc.T - np.cross(w, tbc)
        B = np.zeros((6, 6))
        B[:3, :3] = Rbc
        B[3:, 3:] = Rbc
        c = _rotate_cov(arr.twist_cov, B)
        vals = np.concatenate([v, w], 1)
        parts.append(_part(arr.t, base_slot + 1, sel, vals[:, sel - 6], _sub(c, sel - 6),
                           spec.twist_rejection_threshold, np.full(n, known),
                           reason_invalid="unknown_frame"))
    return Rows.concat(parts)


def gnss_rows(spec: SensorSpec, sensor_index: int, arr: FixArrays, datum: Datum | None,
              heading_rad: float) -> tuple[Rows, Datum | None]:
    """Rows from fixes (ENU relative to ``datum``, which is the first valid fix when None).

    ``heading_rad``: the robot's ENU heading at the datum (IMU yaw + declination + offset), NaN when the
    world frame is ENU-aligned (``use_odometry_yaw``) or unknown.  Returns the rows and the datum.
    """
    n = arr.t.shape[0]
    if n == 0:
        return Rows.empty(), datum
    finite = np.isfinite(arr.lat) & np.isfinite(arr.lon) & np.isfinite(arr.alt)
    # A fix outside WGS84's coordinate ranges (or absurdly far above/below the ellipsoid) is a broken
    # receiver or message, never a position: rejected as ``out_of_range``, and never used as the datum.
    with np.errstate(invalid="ignore"):
        in_range = (np.abs(arr.lat) <= 90.0) & (np.abs(arr.lon) <= 180.0) & (np.abs(arr.alt) < 1.0e5)
    fix = arr.status >= 0
    if datum is None:
        good = np.flatnonzero(fix & finite & in_range)
        if good.size:
            k = int(good[0])
            alt0 = 0.0 if spec.zero_altitude else float(arr.alt[k])
            datum = Datum(float(arr.lat[k]), float(arr.lon[k]), alt0, int(arr.t[k]))
    sel = np.flatnonzero(spec.mask[0:3])
    if datum is None:
        enu = np.full((n, 3), np.nan)
    else:
        alt = np.zeros(n) if spec.zero_altitude else arr.alt
        with np.errstate(invalid="ignore"):
            enu = datum.enu(arr.lat, arr.lon, alt)
    cov = arr.cov.copy()
    unknown = arr.cov_type == 0
    cov[unknown] = np.eye(3) * spec.default_variance_m2
    rows = _part(arr.t, sensor_index * PARTS, sel, enu[:, sel], _sub(cov, sel), spec.pose_rejection_threshold,
                 fix, kind=kern.KIND_GNSS, reason_invalid="no_fix")
    rows.pre[fix & finite & ~in_range] = _REASON["out_of_range"]
    rows.aux[:] = heading_rad
    return rows, datum
