"""Re-serialise a message between wire formats and typestores (ROS 1 bag → CDR transport, CDR → ROS 1 …).

ROS 1 and ROS 2 definitions of the same type differ (``std_msgs/Header`` has ``seq`` in ROS 1 only;
CameraInfo's ``D/K/R/P`` are ``d/k/r/p``), so bytes are not converted field-blind: the message is decoded
with the source typestore, turned into edgefuse's payload and rebuilt in the destination typestore
(:func:`~edgefuse.msgs.convert.from_payload`).  Types edgefuse has no payload for fall back to rosbags'
own ``ros1_to_cdr``/``cdr_to_ros1`` on the source typestore, which is right when the definitions agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefuse.msgs.serde import Format

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore


def transcode(data: bytes | memoryview, msgtype: str, *, src_fmt: Format, dst_fmt: Format,
              src_typestore: Typestore | None = None, dst_typestore: Typestore | None = None) -> bytes | memoryview:
    """``data`` (``msgtype`` in ``src_fmt`` per ``src_typestore``) in ``dst_fmt`` per ``dst_typestore``
    (None: edgefuse's typestore).  Same format and typestore: ``data`` unchanged.

    Raises:
        MessageError: the bytes do not decode, or the type cannot be rebuilt in the destination.
    """
    from edgefuse.msgs.convert import can_convert, from_payload, to_payload
    from edgefuse.msgs.serde import deserialize, serialize
    from edgefuse.msgs.typestore import get_typestore

    src_ts = src_typestore if src_typestore is not None else get_typestore()
    dst_ts = dst_typestore if dst_typestore is not None else get_typestore()
    if src_fmt == dst_fmt and src_ts is dst_ts:
        return data
    raw = bytes(data)
    if can_convert(msgtype):
        payload = to_payload(deserialize(raw, msgtype, fmt=src_fmt, typestore=src_ts), msgtype)
        return serialize(from_payload(payload, msgtype=msgtype, typestore=dst_ts), msgtype, fmt=dst_fmt,
                         typestore=dst_ts)
    if src_fmt == dst_fmt:
        return serialize(deserialize(raw, msgtype, fmt=src_fmt, typestore=src_ts), msgtype, fmt=dst_fmt,
                         typestore=src_ts)
    from edgefuse.errors import MessageError

    try:
        return bytes(src_ts.ros1_to_cdr(raw, msgtype) if dst_fmt == "cdr" else src_ts.cdr_to_ros1(raw, msgtype))
    except Exception as exc:  # rosbags raises its own errors for bytes that do not parse
        raise MessageError(f"{msgtype}: cannot convert {src_fmt} to {dst_fmt}: {exc}") from None
