"""Motion signals from recordings: gyro rates, wheel-odometry yaw rate, camera and LiDAR rotation rates.

A signal spec names a topic and a field, ``TOPIC:FIELD``:

| field | message | value |
|---|---|---|
| ``gyro_x`` ``gyro_y`` ``gyro_z`` | ``sensor_msgs/Imu`` | angular velocity component, rad/s (after ``R``) |
| ``gyro`` | ``sensor_msgs/Imu`` | 3-axis angular velocity (after ``R``) |
| ``gyro_norm`` | ``sensor_msgs/Imu`` | ‖ω‖, rad/s (frame-independent) |
| ``twist_yaw`` (= ``twist_z``), ``twist_x`` … | ``nav_msgs/Odometry`` | twist angular z (x, y), rad/s |
| ``speed`` | ``nav_msgs/Odometry`` | ‖linear velocity‖, m/s |

``R`` (3×3, optional) rotates the IMU's rates into another frame, e.g. ``T_base_from_imu.R`` to get the
yaw rate about the vehicle's z axis from an IMU mounted rotated.  Header stamps are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse_calibration.temporal.types import F64, Signal

IMU_FIELDS = ("gyro_x", "gyro_y", "gyro_z", "gyro", "gyro_norm")
ODOM_FIELDS = ("twist_yaw", "twist_x", "twist_y", "twist_z", "speed")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``TOPIC:FIELD`` (CalibrationError naming the known fields if malformed)."""
    topic, sep, fld = spec.rpartition(":")
    if not sep or not topic or fld not in IMU_FIELDS + ODOM_FIELDS:
        raise CalibrationError(f"bad signal spec {spec!r}: expected TOPIC:FIELD with FIELD one of"
                               f" {', '.join(IMU_FIELDS + ODOM_FIELDS)}")
    return topic, fld


def signals_from_bag(path: str | Path, specs: Sequence[str],
                     rotations: Sequence[npt.ArrayLike | None] | None = None) -> list[Signal]:
    """Read one :class:`Signal` per spec from a bag in a single pass (see module doc for specs).

    Messages are ordered by header stamp; a stream whose header stamps repeat or go backwards is
    reported (CalibrationError from :class:`Signal`) rather than silently sorted.
    """
    from edgefuse.bag import open_bag

    parsed = [parse_spec(s) for s in specs]
    rots = list(rotations) if rotations is not None else [None] * len(specs)
    topics = sorted({t for t, _ in parsed})
    rows: dict[str, list[tuple[int, F64]]] = {t: [] for t in topics}
    with open_bag(path) as bag:
        missing = [t for t in topics if t not in bag.topics]
        if missing:
            raise CalibrationError(f"topic(s) {', '.join(missing)} not in {path} (has:"
                                   f" {', '.join(sorted(bag.topics))})", file=path)
        for env in bag.envelopes(topics):
            pl = env.payload
            if hasattr(pl, "linear_acceleration"):
                vec = np.asarray(pl.angular_velocity, dtype=np.float64)
                rows[env.topic].append((env.stamp_ns, vec))
            elif hasattr(pl, "twist_covariance"):
                vec = np.concatenate([np.asarray(pl.angular_velocity, dtype=np.float64),
                                      np.asarray(pl.linear_velocity, dtype=np.float64)])
                rows[env.topic].append((env.stamp_ns, vec))
            else:
                raise CalibrationError(f"topic {env.topic}: {env.msgtype} has no motion signal"
                                       " (expected sensor_msgs/Imu or nav_msgs/Odometry)", topic=env.topic)
    out = []
    for (topic, fld), R, spec in zip(parsed, rots, specs, strict=True):
        data = rows[topic]
        if not data:
            raise CalibrationError(f"topic {topic} has no messages", topic=topic)
        st = np.array([d[0] for d in data], dtype=np.int64)
        m = np.stack([d[1] for d in data])
        out.append(_field(st, m, topic, fld, R=R, name=spec))
    return out


def _field(st: npt.NDArray[np.int64], m: F64, topic: str, fld: str, *, R: npt.ArrayLike | None,
           name: str) -> Signal:
    is_imu = m.shape[1] == 3
    if fld in IMU_FIELDS and not is_imu:
        raise CalibrationError(f"{name}: {fld} needs sensor_msgs/Imu, {topic} is odometry", topic=topic)
    if fld in ODOM_FIELDS and is_imu:
        raise CalibrationError(f"{name}: {fld} needs nav_msgs/Odometry, {topic} is an IMU", topic=topic)
    if is_imu:
        w = m if R is None else m @ np.asarray(R, dtype=np.float64).T
        if fld == "gyro":
            return Signal(st, w, name, "rad/s")
        if fld == "gyro_norm":
            return Signal(st, np.linalg.norm(m, axis=1), name, "rad/s")
        return Signal(st, w[:, "xyz".index(fld[-1])].copy(), name, "rad/s")
    if fld == "speed":
        return Signal(st, np.linalg.norm(m[:, 3:], axis=1), name, "m/s")
    axis = {"twist_yaw": 2, "twist_x": 0, "twist_y": 1, "twist_z": 2}[fld]
    return Signal(st, m[:, axis].copy(), name, "rad/s")


def inject_offset(sig: Signal, offset_ns: int) -> Signal:
    """``sig`` as a sensor whose clock is ``offset_ns`` behind: stamps minus ``offset_ns``, so that the
    estimated offset of the result grows by ``offset_ns`` (for validation by injection)."""
    return sig.shifted(-int(offset_ns))


def rotation_rate_from_rotations(stamps_ns: npt.ArrayLike, R_rel: npt.ArrayLike, *,
                                  name: str = "rotation_rate") -> Signal:
    """Angular rate (rad/s, 3-axis, in the sensor frame) from relative rotations between consecutive
    frames: ``R_rel[i]`` (N-1, 3, 3) rotates frame i+1 coordinates into frame i.  The rate is stamped
    at the midpoint of each interval (a zero-phase estimate); a non-finite rotation gives a NaN row
    (a gap the estimators mask).

    Raises:
        CalibrationError: ``R_rel`` is not (N-1, 3, 3) for N stamps.
    """
    from edgefuse_calibration.temporal._so3 import log_so3

    st = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
    Rr = np.asarray(R_rel, dtype=np.float64)
    if st.size < 2 or Rr.shape != (st.size - 1, 3, 3):
        raise CalibrationError(f"{name}: need N >= 2 stamps and (N-1, 3, 3) relative rotations, got"
                               f" {st.size} stamps and shape {Rr.shape}")
    dt = np.diff(st) / 1e9
    ok = np.all(np.isfinite(Rr), axis=(1, 2))
    rv = np.full((Rr.shape[0], 3), np.nan)
    for i in np.flatnonzero(ok):
        rv[i] = log_so3(Rr[i])
    mid = st[:-1] + np.diff(st) // 2
    return Signal(mid, rv / dt[:, None], name, "rad/s")


def rotation_rate_from_orientations(stamps_ns: npt.ArrayLike, R_ref_from_body: npt.ArrayLike, *,
                                    name: str = "orientation_rate") -> Signal:
    """Body-frame angular rate (rad/s) from an orientation stream, e.g. ground-truth or odometry
    poses: ``R_ref_from_body`` (N, 3, 3) at ``stamps_ns`` (N,).  The rate between samples i and i+1
    is ``log(R_iᵀ R_{i+1}) / dt`` stamped at the interval midpoint, i.e. what a gyro fixed to the
    body measures (minus its bias).  See :func:`rotation_rate_from_rotations` for errors."""
    R = np.asarray(R_ref_from_body, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3):
        raise CalibrationError(f"{name}: orientations must be (N, 3, 3), got shape {R.shape}")
    R_rel = np.einsum("nji,njk->nik", R[:-1], R[1:])
    return rotation_rate_from_rotations(stamps_ns, R_rel, name=name)
