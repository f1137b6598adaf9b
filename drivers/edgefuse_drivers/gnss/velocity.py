"""The GNSS velocity payload: ``geometry_msgs/msg/TwistStamped`` in a local east-north-up frame.

NMEA gives speed and course over ground (RMC, VTG), no vertical speed: the twist's ``linear`` is
(east, north, 0) m/s (``x`` = speed·sin(course), ``y`` = speed·cos(course), course clockwise from true
north), ``angular`` is zero, and ``frame_id`` names the ENU frame (``<frame_id>_enu`` by default).  The
core has no twist payload, so this module registers one with :func:`edgefuse.msgs.convert.register_conversion`
(at import) and as the ``TwistStamped`` edge type (entry point ``edgefuse.edge_types``), which lets
``edgefuse record`` and the sinks write it like the built-in payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefuse.msgs._common import header_stamp_ns, make_header, make_msg, xyz_of
from edgefuse.msgs.convert import register_conversion
from edgefuse.msgs.types import F64

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = ["TWIST_STAMPED", "TwistStampedData", "register_edge_types"]

TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"


@dataclass(slots=True)
class TwistStampedData:
    """A velocity: ``linear`` (3,) m/s and ``angular`` (3,) rad/s in ``frame_id``."""

    stamp_ns: int
    frame_id: str
    linear: F64
    angular: F64


def _to_payload(msg: Any) -> TwistStampedData:
    return TwistStampedData(header_stamp_ns(msg), str(msg.header.frame_id), xyz_of(msg.twist.linear),
                            xyz_of(msg.twist.angular))


def _vec(ts: Typestore, v: Any) -> Any:
    x, y, z = (float(c) for c in np.asarray(v, dtype=np.float64).reshape(3))
    return make_msg(ts, "geometry_msgs/msg/Vector3", x=x, y=y, z=z)


def _from_payload(ts: Typestore, p: TwistStampedData) -> Any:
    twist = make_msg(ts, "geometry_msgs/msg/Twist", linear=_vec(ts, p.linear), angular=_vec(ts, p.angular))
    return make_msg(ts, TWIST_STAMPED, header=make_header(ts, p.stamp_ns, p.frame_id), twist=twist)


def register_edge_types() -> None:
    """Entry point ``edgefuse.edge_types``: the ``TwistStamped`` edge type (and its conversion)."""
    from edgefuse.msgs.edges import register_edge_type

    register_conversion(TWIST_STAMPED, TwistStampedData, _to_payload, _from_payload)
    register_edge_type("TwistStamped", TwistStampedData, TWIST_STAMPED)


register_conversion(TWIST_STAMPED, TwistStampedData, _to_payload, _from_payload)
