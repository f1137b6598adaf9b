"""The :class:`Transport` seam: how a node receives and publishes serialized ROS messages.

A transport moves *serialized* messages (bytes in its wire format, :attr:`Transport.fmt`: ``"cdr"`` for
ROS 2 and Zenoh, ``"ros1"`` for ROS 1) between processes.  It knows topics, ROS message type names
(``sensor_msgs/msg/PointCloud2``) and QoS; it never decodes a message.  Decoding into edgefuse's
payloads, queueing, drop policies and the pipeline belong to :mod:`edgefuse.node`.

Threads: a subscription's callback runs on a thread of the transport (zenoh's, rclpy's executor,
rospy's connection threads).  It must return quickly: the node's callback only timestamps the
message and puts it into a bounded queue.  ``Publisher.publish`` may be called from any one thread.

Transports register by name with :func:`register_transport` or through the ``edgefuse.transports``
entry-point group (``name = "module:factory"``); :func:`open_transport` makes one.  Built in:
``zenoh`` (the default; rmw_zenoh wire format), ``ros2`` (rclpy, optional extra) and ``ros1`` (rospy
from Debian's packages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from edgefuse.errors import TransportError

WireFormat = Literal["cdr", "ros1"]


@dataclass(frozen=True)
class QoS:
    """The part of a ROS 2 QoS profile every transport can honour (ROS 1 and Zenoh map what they can).

    ``reliability``: ``"best_effort"`` (a late or lost sample is not resent) or ``"reliable"``;
    ``durability``: ``"volatile"`` or ``"transient_local"`` (late joiners get the last ``depth`` samples);
    ``depth``: history depth (KEEP_LAST).
    """

    reliability: Literal["best_effort", "reliable"] = "reliable"
    durability: Literal["volatile", "transient_local"] = "volatile"
    depth: int = 10


#: rclpy's ``qos_profile_sensor_data``: what the node's input subscriptions use
SENSOR_DATA = QoS("best_effort", "volatile", 5)
#: rclpy's default profile: what the node's output publishers use
RELIABLE = QoS("reliable", "volatile", 10)
#: latched (``/tf_static``-style)
LATCHED = QoS("reliable", "transient_local", 1)


@dataclass(slots=True)
class Received:
    """One serialized message as a subscription delivers it.

    Attributes:
        topic: the topic it arrived on (after remapping: the name on the wire).
        msgtype: its ROS type name, ``pkg/msg/Name``.
        data: the serialized bytes in ``fmt``.
        fmt: ``"cdr"`` or ``"ros1"``.
        recv_ns: host monotonic time (``time.monotonic_ns``) when the transport handed it over.
        source_ns: the publisher's send time (ns since the epoch) where the transport carries one
            (rmw_zenoh's attachment, DDS source timestamp), else None.
        seq: the publisher's sequence number where the transport carries one, else None.
        publisher: an id of the publishing endpoint (gid hex, caller id) where known, else None.
    """

    topic: str
    msgtype: str
    data: bytes | memoryview
    fmt: WireFormat
    recv_ns: int
    source_ns: int | None = None
    seq: int | None = None
    publisher: str | None = None


Callback = Callable[[Received], None]


class Subscription(Protocol):
    topic: str
    msgtype: str

    def close(self) -> None:
        """Stop delivering; idempotent."""
        ...


class Publisher(Protocol):
    topic: str
    msgtype: str

    def publish(self, data: bytes | memoryview, *, stamp_ns: int | None = None) -> None:
        """Send one message serialized in the transport's ``fmt``.  ``stamp_ns`` (ns since the epoch):
        the send time the transport stamps it with where it carries one (default: now)."""
        ...

    def close(self) -> None:
        """Stop publishing (unadvertise); idempotent."""
        ...


@runtime_checkable
class Transport(Protocol):
    """A connection to one middleware (see the module documentation)."""

    name: str
    fmt: WireFormat

    def open(self) -> Transport:
        """Connect (zenoh session, rclpy context, ROS master); returns self (also done by ``with``).

        Raises:
            TransportError: the middleware is not installed or cannot be reached.
        """
        ...

    def close(self) -> None:
        """Close every subscription and publisher and disconnect; idempotent."""
        ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS = SENSOR_DATA) -> Subscription:
        """Deliver every message published on ``topic`` with type ``msgtype`` to ``callback``.

        A message of another type on the same topic is not delivered (ROS 2 and rmw_zenoh match by type;
        ROS 1 refuses the connection); where the transport can see it, it is counted in
        :meth:`stats` under ``type_mismatch``.
        """
        ...

    def advertise(self, topic: str, msgtype: str, qos: QoS = RELIABLE) -> Publisher:
        """A publisher of ``msgtype`` on ``topic``."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters the transport keeps (connections, reconnects, type mismatches, ...), JSON-ready."""
        ...


Factory = Callable[..., Transport]

_FACTORIES: dict[str, Factory] = {}
_PLUGINS_LOADED = False

_BUILTIN = {
    "zenoh": "edgefuse.transport.zenoh:ZenohTransport",
    "ros2": "edgefuse.transport.ros2:Ros2Transport",
    "ros1": "edgefuse.transport.ros1:Ros1Transport",
}


def register_transport(name: str, factory: Factory) -> None:
    """Make :func:`open_transport` build ``name`` with ``factory(**options)``."""
    _FACTORIES[name] = factory


def _load_plugins() -> None:
    global _PLUGINS_LOADED  # noqa: PLW0603
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group="edgefuse.transports"):
        _FACTORIES.setdefault(ep.name, ep.load())


def known_transports() -> list[str]:
    _load_plugins()
    return sorted(set(_BUILTIN) | set(_FACTORIES))


def open_transport(name: str, **options: Any) -> Transport:
    """A :class:`Transport` called ``name`` built with ``options`` (not yet opened; use ``with``).

    Raises:
        TransportError: no such transport, or its packages are not installed (the message says which).
    """
    _load_plugins()
    factory = _FACTORIES.get(name)
    if factory is None:
        target = _BUILTIN.get(name)
        if target is None:
            raise TransportError(f"no transport '{name}' (known: {', '.join(known_transports())})")
        from importlib import import_module

        module_name, attr = target.split(":")
        module = import_module(module_name)  # raises TransportError itself when its middleware is missing
        factory = getattr(module, attr)
    return factory(**options)
