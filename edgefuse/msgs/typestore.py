"""The rosbags typestore edgefuse uses, and helpers to extend typestores with more types.

:func:`get_typestore` returns one shared ROS 2 Humble typestore extended with the types edgefuse
needs beyond rosbags' built-in set (``radar_msgs/msg/RadarScan``/``RadarReturn`` and the
``vision_msgs`` detection messages, see :mod:`edgefuse.msgs._defs`).  The shared store must not be
mutated by callers; use :func:`new_typestore` for a private copy to register more types into.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg
from rosbags.typesys import get_typestore as _rosbags_typestore

from edgefuse.errors import MessageError
from edgefuse.msgs._defs import EXTRA_MSG_DEFINITIONS

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.interfaces.typing import Typesdict
    from rosbags.typesys.store import Typestore

__all__ = [
    "BASE_STORE",
    "get_typestore",
    "new_typestore",
    "normalize_msgtype",
    "register_bag_types",
    "register_definitions",
]

#: The rosbags built-in store edgefuse's typestore starts from.
BASE_STORE = Stores.ROS2_HUMBLE

_IDL_SEPARATOR = "=" * 80 + "\n"


def normalize_msgtype(msgtype: str) -> str:
    """Return the ROS 2 style name ``pkg/msg/Type`` for ``pkg/Type`` (ROS 1) or ``pkg/msg/Type``.

    Raises:
        MessageError: the name has neither two nor three non-empty ``/``-separated parts.
    """
    parts = msgtype.strip().split("/")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return "/".join(parts)
    raise MessageError(f"invalid message type name {msgtype!r} (expected pkg/msg/Type or pkg/Type)")


def _parse(definitions: Mapping[str, str], fmt: Literal["msg", "idl"]) -> Typesdict:
    types: Typesdict = {}
    try:
        for name, text in definitions.items():
            if fmt == "msg":
                types.update(get_types_from_msg(text, normalize_msgtype(name)))
            else:
                types.update(get_types_from_idl(text))
    except TypesysError as err:
        raise MessageError(f"cannot parse message definition: {err}") from None
    return types


def register_definitions(
    typestore: Typestore,
    definitions: Mapping[str, str],
    *,
    fmt: Literal["msg", "idl"] = "msg",
) -> list[str]:
    """Register message types given as definition texts, keyed by type name.

    Types the store already has are kept as they are (the store's definition wins); the
    names that were added are returned, sorted.

    Raises:
        MessageError: a definition does not parse or refers to an unknown type.
    """
    return _register_new(typestore, _parse(definitions, fmt))


def _register_new(typestore: Typestore, types: Typesdict) -> list[str]:
    new = {name: value for name, value in types.items() if name not in typestore.fielddefs}
    if not new:
        return []
    try:
        typestore.register(new)
    except TypesysError as err:
        raise MessageError(f"cannot register message types: {err}") from None
    return sorted(new)


def register_bag_types(typestore: Typestore, connections: Iterable[Connection]) -> list[str]:
    """Register the message definitions stored with bag connections (ROS 1 ``.msg`` text, ROS 2
    ``ros2msg`` or ``ros2idl``, as rosbags exposes them in ``Connection.msgdef``).

    Connections without a stored definition are ignored.  Types already in the store are kept.
    Returns the names that were added, sorted.

    Raises:
        MessageError: a stored definition does not parse.
    """
    types: Typesdict = {}
    try:
        for conn in connections:
            data = conn.msgdef.data
            if conn.msgdef.format == MessageDefinitionFormat.MSG:
                types.update(get_types_from_msg(data, normalize_msgtype(conn.msgtype)))
            elif conn.msgdef.format == MessageDefinitionFormat.IDL:
                if data.startswith(_IDL_SEPARATOR + "IDL: "):
                    for chunk in data.split(_IDL_SEPARATOR)[1:]:
                        types.update(get_types_from_idl(chunk.split("\n", 1)[1]))
                else:
                    types.update(get_types_from_idl(data))
    except (TypesysError, IndexError) as err:
        raise MessageError(f"cannot parse a message definition stored in the bag: {err}") from None
    return _register_new(typestore, types)


def new_typestore() -> Typestore:
    """Return a fresh, private ROS 2 Humble typestore with edgefuse's extra types registered."""
    store = _rosbags_typestore(BASE_STORE)
    register_definitions(store, EXTRA_MSG_DEFINITIONS)
    return store


@functools.cache
def get_typestore() -> Typestore:
    """Return edgefuse's shared typestore (ROS 2 Humble + radar_msgs + vision_msgs detections).

    Created once per process; do not register further types into it (use :func:`new_typestore`).
    """
    return new_typestore()
