"""The envelope every source produces and every synchronizer and stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Envelope:
    """One timestamped message on its way through a pipeline.

    Attributes:
        topic: the topic (or pipeline input name) it arrived on.
        stamp_ns: acquisition stamp in ns: the sensor header stamp, corrected by the rig's time offset
            for that sensor.  Never the send time.
        recv_ns: when the host received it (bag record time on replay, host monotonic clock live).
        payload: the numpy-backed payload (see :mod:`edgefuse.msgs.types`).
        msgtype: the ROS message type name, e.g. ``sensor_msgs/msg/PointCloud2``.
        meta: free-form extra data (e.g. original header stamp before offset correction).
    """

    topic: str
    stamp_ns: int
    recv_ns: int
    payload: Any
    msgtype: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
