"""Raw sensor packets recorded in ROS 2 bags by Autoware's nebula drivers (``nebula_msgs/NebulaPackets``,
``pandar_msgs/PandarScan``): the message definitions and an iterator over the packets.

The packet message types are not in rosbags' built-in typestore and the nebula bags do not carry their
definitions; :func:`packet_typestore` returns a private typestore with them registered (field names,
types and order as in the public ``nebula_msgs`` / ``pandar_msgs`` interfaces):

- ``nebula_msgs/msg/NebulaPacket``: ``builtin_interfaces/Time stamp``, ``uint8[] data``;
  ``nebula_msgs/msg/NebulaPackets``: ``std_msgs/Header header``, ``NebulaPacket[] packets``;
- ``pandar_msgs/msg/PandarPacket``: ``builtin_interfaces/Time stamp``, ``uint8[1500] data``,
  ``uint32 size`` (only the first ``size`` bytes are the UDP payload);
  ``pandar_msgs/msg/PandarScan``: ``std_msgs/Header header``, ``PandarPacket[] packets``.

Each packet's ``stamp`` is the host's receive time of that UDP datagram, as the recording driver saw it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefuse.errors import DriverError, SourceError

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = ["PACKET_MSGTYPES", "PACKET_MSG_DEFINITIONS", "Packet", "PacketCounters", "PacketError", "packet_typestore",
           "read_packets"]

PACKET_MSG_DEFINITIONS: dict[str, str] = {
    "nebula_msgs/msg/NebulaPacket": "builtin_interfaces/Time stamp\nuint8[] data\n",
    "nebula_msgs/msg/NebulaPackets": "std_msgs/Header header\nnebula_msgs/NebulaPacket[] packets\n",
    "pandar_msgs/msg/PandarPacket": "builtin_interfaces/Time stamp\nuint8[1500] data\nuint32 size\n",
    "pandar_msgs/msg/PandarScan": "std_msgs/Header header\npandar_msgs/PandarPacket[] packets\n",
}
#: the container types :func:`read_packets` understands
PACKET_MSGTYPES = ("nebula_msgs/msg/NebulaPackets", "pandar_msgs/msg/PandarScan")


@functools.cache
def packet_typestore() -> Typestore:
    """A private typestore: edgefuse's types plus the packet messages above (created once)."""
    from edgefuse.msgs.typestore import new_typestore, register_definitions

    store = new_typestore()
    register_definitions(store, PACKET_MSG_DEFINITIONS)
    return store


@dataclass(frozen=True, slots=True)
class Packet:
    """One recorded UDP payload: ``recv_ns`` host receive stamp of the packet, ``record_ns`` the bag's
    record time of the message that carried it, ``index`` the message's position in the topic and ``pos``
    the packet's position in that message, ``frame_id`` the carrying message's header frame."""

    topic: str
    recv_ns: int
    record_ns: int
    index: int
    pos: int
    data: bytes
    frame_id: str = ""


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def read_packets(path: str | Path, topics: Sequence[str] | None = None) -> Iterator[Packet]:
    """The packets of the packet topics (``nebula_msgs/NebulaPackets``, ``pandar_msgs/PandarScan``) of a
    bag, in record order (``topics``: only these; default: every packet topic).

    Raises:
        SourceError: the bag has no packet topic (or not the ones asked for).
        BagError: the bag does not open or a message does not decode.
    """
    from edgefuse.bag import open_bag

    with open_bag(path, typestore=packet_typestore(), fast_decode=False) as bag:
        available = {t: i.msgtype for t, i in bag.topics.items() if i.msgtype in PACKET_MSGTYPES}
        wanted = list(available) if topics is None else [t for t in topics if t in available]
        if not wanted:
            have = ", ".join(f"{t} ({i.msgtype})" for t, i in bag.topics.items()) or "none"
            asked = "" if topics is None else f" among {list(topics)}"
            raise SourceError(f"no packet topic{asked} in this bag (topics: {have})", file=str(path))
        for raw in bag.messages(wanted):
            msg = bag.decode(raw)
            for pos, pkt in enumerate(msg.packets):
                data = pkt.data
                if hasattr(pkt, "size"):
                    data = data[: int(pkt.size)]
                yield Packet(raw.topic, _stamp_ns(pkt.stamp), int(raw.recv_ns), int(raw.index), pos,
                             bytes(data), str(msg.header.frame_id))


class PacketError(DriverError):
    """One packet does not decode: ``reason`` is a short key to count it by (``"size"``, ``"service_id"``,
    ``"crc"`` …), the message says what was expected."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass
class PacketCounters:
    """What a packet source did with the packets it read: decoded, and rejected by reason (with the first
    few messages verbatim)."""

    packets: int = 0
    decoded: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)

    def reject(self, err: PacketError, where: str) -> None:
        self.rejected[err.reason] = self.rejected.get(err.reason, 0) + 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{where}: {err.message}")

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {"packets": self.packets, "decoded": self.decoded, "rejected": dict(self.rejected),
                "first_errors": list(self.first_errors)}
