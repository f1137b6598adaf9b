"""Run a filter over a whole recording: decode once to arrays, build rows, one kernel call.

:func:`load_streams` reads the topics of a bag into per-sensor arrays (with each message's position in
the bag, i.e. arrival order); :func:`build_rows` turns them into measurement rows in arrival order;
:meth:`StateEstimator.run` processes them.  The result equals feeding the messages one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import BagError
from edgefuse.estimation.filter import StateEstimator
from edgefuse.estimation.sensors import FixArrays, ImuArrays, OdomArrays, Rows, imu_heading

Arrays = ImuArrays | OdomArrays | FixArrays


@dataclass
class Stream:
    """One sensor's decoded messages and their arrival positions (bag order)."""

    arrays: Arrays
    seq: npt.NDArray[np.int64]


def load_streams(bag: str | Path, topics: Mapping[str, str]) -> dict[str, Stream]:
    """``topics``: sensor name → topic.  Decodes through :func:`edgefuse.bag.open_bag`, whole topics at
    once (:meth:`~edgefuse.bag.BagReader.columns`: Imu / Odometry / NavSatFix read straight from their
    bytes; ``frame_id`` is the first message's, as in ``*Arrays.from_payloads``)."""
    from edgefuse.bag import open_bag

    with open_bag(bag) as reader:
        missing = [t for t in topics.values() if t not in reader.topics]
        if missing:
            raise BagError(f"topic(s) {missing} not in {bag}", file=bag)
        types = {t: info.msgtype for t, info in reader.topics.items()}
        bad = [t for t in topics.values() if types[t] not in _STREAM_TYPES]
        if bad:
            raise BagError(f"topic(s) {bad} have no IMU, odometry or NavSatFix messages", file=bag)
        cols = reader.columns(sorted(set(topics.values())))
    out: dict[str, Stream] = {}
    for s, topic in topics.items():
        c = cols[topic]
        if c["stamps_ns"].shape[0] == 0:
            raise BagError(f"topic {topic} has no IMU, odometry or NavSatFix messages", file=bag)
        out[s] = Stream(_arrays(types[topic], c), c["order"])
    return out


_STREAM_TYPES = ("sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry", "sensor_msgs/msg/NavSatFix")


def _arrays(msgtype: str, c: Mapping[str, npt.NDArray[Any]]) -> Arrays:
    """Per-sensor arrays from :meth:`BagReader.columns` columns of ``msgtype``."""
    frame = str(c["frame_id"][0])
    if msgtype == "sensor_msgs/msg/Imu":
        return ImuArrays(c["stamps_ns"], frame, c["orientation"], c["orientation_covariance"],
                         c["angular_velocity"], c["angular_velocity_covariance"],
                         c["linear_acceleration"], c["linear_acceleration_covariance"])  # fmt: skip
    if msgtype == "nav_msgs/msg/Odometry":
        return OdomArrays(c["stamps_ns"], frame, str(c["child_frame_id"][0]), c["position"], c["orientation"],
                          c["pose_covariance"], c["linear_velocity"], c["angular_velocity"],
                          c["twist_covariance"])  # fmt: skip
    return FixArrays(c["stamps_ns"], frame, c["status"], c["latitude_deg"], c["longitude_deg"], c["altitude_m"],
                     c["position_covariance"], c["position_covariance_type"])  # fmt: skip


def _seq_of_rows(rows: Rows, stream: Stream) -> npt.NDArray[np.int64]:
    order = np.argsort(stream.arrays.t, kind="stable")
    ts = stream.arrays.t[order]
    pos = np.clip(np.searchsorted(ts, rows.t), 0, max(ts.shape[0] - 1, 0))
    return stream.seq[order][pos]


def build_rows(est: StateEstimator, streams: Mapping[str, Stream]) -> Rows:
    """All rows of ``streams`` (sensor name → :class:`Stream`) in arrival order."""
    parts: list[Rows] = []
    keys: list[npt.NDArray[np.int64]] = []
    heading_track: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
    kinds = {s.name: s.kind for s in est.sensors}
    for name in sorted(streams, key=lambda n: ("imu", "odom", "gnss").index(kinds[n])):
        st = streams[name]
        arr = st.arrays
        if isinstance(arr, ImuArrays):
            rows = est.rows_imu(name, arr)
            spec = est.sensors[[s.name for s in est.sensors].index(name)]
            T = est._lookup(est.base_frame, est._frame(spec, arr.frame_id))
            if T is not None and heading_track is None:
                heading_track = imu_heading(arr, T[:3, :3])
        elif isinstance(arr, OdomArrays):
            rows = est.rows_odometry(name, arr)
        else:
            heading = float("nan")
            good = np.flatnonzero((arr.status >= 0) & np.isfinite(arr.lat) & np.isfinite(arr.lon))
            if heading_track is not None and good.size and heading_track[0].shape[0]:
                t0 = arr.t[good[0]]
                k = int(np.searchsorted(heading_track[0], t0, side="right")) - 1
                heading = float(heading_track[1][max(k, 0)])
            rows = est.rows_navsat(name, arr, heading_rad=heading)
        parts.append(rows)
        keys.append(_seq_of_rows(rows, st))
    rows = Rows.concat(parts)
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    return rows.sorted_by_arrival(np.argsort(key, kind="stable"))


def run_streams(est: StateEstimator, streams: Mapping[str, Stream], *, keep_states: bool = True) -> dict[str, Any]:
    """Reset ``est``, build rows and run them; returns :meth:`StateEstimator.run`'s dict plus ``rows``."""
    est.reset()
    rows = build_rows(est, streams)
    out = est.run(rows, keep_states=keep_states)
    out["rows"] = rows
    return out
