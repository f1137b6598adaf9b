"""The live node's output side: a :class:`~edgefuse.sinks.base.Sink` that publishes on a transport."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from edgefuse.errors import NodeError
from edgefuse.msgs.edges import msgtype_of
from edgefuse.transport.base import RELIABLE, Publisher, QoS, Transport

_FIRST_ERRORS = 5


class TransportSink:
    """Serialises each output once (in the transport's wire format) and publishes it.

    ``remap``: pipeline topic → topic on the wire.  A payload that cannot be serialised, or a publish the
    transport refuses, is counted per topic (:attr:`errors`, first texts in :attr:`first_errors`) and
    left out; the node goes on.
    """

    def __init__(self, transport: Transport, *, remap: Mapping[str, str] | None = None,
                 qos: QoS = RELIABLE) -> None:
        self.transport = transport
        self.remap = dict(remap or {})
        self.qos = qos
        #: the transport's own typestore where it has one (ROS 1 definitions differ from ROS 2's)
        self._typestore = getattr(transport, "typestore", None)
        self._pubs: dict[str, Publisher] = {}
        self._msgtypes: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []

    def open(self, outputs: Mapping[str, str]) -> None:
        for topic, edge in outputs.items():
            msgtype = msgtype_of(edge)
            if msgtype is None:
                raise NodeError(f"output {topic}: edge type {edge} has no ROS message type to publish")
            self._msgtypes[topic] = msgtype
            self._pubs[topic] = self.transport.advertise(self.remap.get(topic, topic), msgtype, self.qos)
            self.counts[topic] = 0
            self.bytes[topic] = 0

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        from edgefuse.msgs import from_payload, serialize

        msgtype = self._msgtypes[topic]
        try:
            ts = self._typestore
            raw = serialize(from_payload(payload, msgtype=msgtype, typestore=ts), msgtype, fmt=self.transport.fmt,
                            typestore=ts)
            self._pubs[topic].publish(raw, stamp_ns=time.time_ns())
        except Exception as exc:  # counted per topic, reported; one bad output does not stop the node
            self.errors[topic] = self.errors.get(topic, 0) + 1
            if len(self.first_errors) < _FIRST_ERRORS:
                self.first_errors.append(f"{topic} (stamp {stamp_ns} ns): {type(exc).__name__}: {exc}")
            return
        self.counts[topic] += 1
        self.bytes[topic] += len(raw)

    def close(self) -> None:
        pubs, self._pubs = self._pubs, {}
        for pub in pubs.values():
            pub.close()

    def report(self) -> dict[str, Any]:
        return {"published": dict(self.counts), "bytes": dict(self.bytes), "errors": dict(self.errors),
                "first_errors": list(self.first_errors)}
