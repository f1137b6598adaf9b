"""(De)serialisation of messages with a typestore, zero-copy for large byte arrays.

rosbags' deserialisers return ``uint8[]`` fields (PointCloud2/Image ``data``) as numpy views of the
buffer they are given, but slicing a ``bytes`` object copies it; :func:`deserialize` therefore
wraps the raw data in a ``memoryview`` first, so a PointCloud2's ``data`` (and the points of the
:class:`PointCloud` made from it) view the caller's buffer directly.  Views of ``bytes`` are
read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from rosbags.serde import SerdeError
from rosbags.typesys import TypesysError

from edgefuse.errors import MessageError
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = ["deserialize", "serialize"]

Format = Literal["cdr", "ros1"]


def deserialize(
    rawdata: bytes | bytearray | memoryview,
    msgtype: str,
    *,
    fmt: Format = "cdr",
    typestore: Typestore | None = None,
) -> Any:
    """Decode one serialised message (CDR with its 4-byte encapsulation header, or ROS 1).

    Raises:
        MessageError: unknown type, or bytes that do not decode as ``msgtype``.
    """
    store = typestore if typestore is not None else get_typestore()
    name = normalize_msgtype(msgtype)
    if name not in store.fielddefs:
        raise MessageError(f"unknown message type {name!r} (not in the typestore)")
    view = rawdata if isinstance(rawdata, memoryview) else memoryview(rawdata)
    try:
        if fmt == "cdr":
            return store.deserialize_cdr(view, name)
        return store.deserialize_ros1(view, name)
    except TypesysError as err:
        raise MessageError(f"unknown message type {name!r}: {err}") from None
    except (SerdeError, ValueError, IndexError, TypeError, UnicodeDecodeError) as err:
        raise MessageError(f"cannot decode {len(view)} bytes as {name} ({fmt}): {err}") from None


def serialize(
    msg: Any, msgtype: str | None = None, *, fmt: Format = "cdr", typestore: Typestore | None = None
) -> memoryview:
    """Encode a message (little-endian CDR with encapsulation header, or ROS 1).

    Raises:
        MessageError: unknown type, or a message whose fields do not match the type.
    """
    store = typestore if typestore is not None else get_typestore()
    name = normalize_msgtype(msgtype if msgtype is not None else str(getattr(msg, "__msgtype__", "")))
    if name not in store.fielddefs:
        raise MessageError(f"unknown message type {name!r} (not in the typestore)")
    try:
        if fmt == "cdr":
            return store.serialize_cdr(msg, name)
        return store.serialize_ros1(msg, name)
    except TypesysError as err:
        raise MessageError(f"unknown message type {name!r}: {err}") from None
    except (SerdeError, ValueError, TypeError, AttributeError, OverflowError) as err:
        raise MessageError(f"cannot encode {name} ({fmt}): {err}") from None
