"""The Zenoh transport: ROS 2 messages over Zenoh in the wire format of ``rmw_zenoh`` (ROS 2 Jazzy and later).

A ROS 2 system running ``rmw_zenoh_cpp`` sees edgefuse's publishers and subscriptions as ROS 2 endpoints
(``ros2 topic list/echo/info`` work) and edgefuse receives its topics; no ROS installation is needed here.
The format was learnt from rmw_zenoh's ``docs/design.md`` and its ``liveliness_utils.cpp``,
``attachment_helpers.cpp``, ``qos.cpp`` and ``rmw_publisher_data.cpp`` / ``rmw_subscription_data.cpp``.

Wire format
-----------
* **Data key expression**: ``<domain_id>/<fully qualified topic without the leading />/<DDS type>/<type hash>``,
  e.g. ``0/robot1/chatter/std_msgs::msg::dds_::String_/RIHS01_df668c74...1a18``.  The DDS type name is
  ``pkg::msg::dds_::Name_``; the hash is REP-2016's ``RIHS01_<sha256 hex>`` computed by rosbags from the Jazzy
  definition of the type (see :func:`type_hash`).
* **Payload**: the CDR serialization with its 4-byte encapsulation header (what :func:`edgefuse.msgs.serialize`
  writes with ``fmt="cdr"``), unchanged.
* **Attachment** (33 bytes, rmw_zenoh >= 0.2.4): sequence number (int64 little-endian, from 1 per publisher),
  source timestamp (int64 LE, ns since the epoch), one byte 16 (the GID length), the 16-byte publisher GID.
  The GID is rmw_zenoh's: XXH3-128 of the publisher's liveliness key expression, low 64 bits then high 64
  bits, each little-endian.  On receive the older keyed form (rmw_zenoh 0.2.0-0.2.3: the strings
  ``sequence_number`` / ``source_timestamp`` / ``source_gid`` before each value) is accepted too; a missing
  or malformed attachment delivers the message with ``seq``/``source_ns``/``publisher`` None and is counted
  (``no_attachment`` / ``bad_attachment``).
* **Liveliness tokens** (``@ros2_lv`` hermetic admin space), one for the node when the transport opens, one
  per publisher and subscription, undeclared when they close::

      @ros2_lv/<domain>/<zenoh id>/<node id>/<node id>/NN/<enclave>/<namespace>/<node name>
      @ros2_lv/<domain>/<zenoh id>/<node id>/<entity id>/MP|MS/<enclave>/<namespace>/<node name>/
          <topic>/<DDS type>/<type hash>/<qos>

  where ``/`` in enclave, namespace and topic is written ``%`` (``/`` alone is ``%``) and ``<qos>`` is
  rmw_zenoh's compact form ``reliability:durability:history,depth:deadline_s,ns:lifespan_s,ns:liveliness,s,ns``
  with every value equal to rmw_zenoh's default (reliable, volatile, keep-last, depth 42, infinite times,
  automatic liveliness) left empty: ``SENSOR_DATA`` is ``2::,5:,:,:,,``, ``RELIABLE`` ``::,10:,:,:,,`` and
  ``LATCHED`` ``:1:,1:,:,:,,``.  Node id is 0; entity ids count from 1 in the order of creation.

QoS mapping (what rmw_zenoh does)
---------------------------------
* ``best_effort``: Zenoh reliability BEST_EFFORT, congestion control DROP.
* ``reliable``: Zenoh reliability RELIABLE, congestion control DROP too: rmw_zenoh blocks (BLOCK) only for
  reliable KEEP_ALL publishers, and edgefuse's QoS is always KEEP_LAST, so a slow subscriber never stalls the
  pipeline.  Over TCP links (the default) delivery is reliable either way unless the link's queues overflow.
* ``transient_local``: the publisher is a Zenoh *advanced publisher* with a cache of the last ``depth``
  samples and publisher detection; the subscription is an *advanced subscriber* that queries the caches of
  publishers, late ones included (zenoh-python's ``zenoh.ext``, the same mechanism rmw_zenoh uses), so a late
  joiner gets the last ``depth`` samples of each publisher.
* ``depth`` on a subscription is advertised in its token only: queueing is the node's business.

Matching: a subscription listens on ``<domain>/<topic>/*/*`` and delivers only samples whose type and hash
are the subscribed ones; others are counted in ``stats()["type_mismatch"]`` (rmw_zenoh itself would not even
receive them).  Connectivity: ``stats()`` counts transports to routers and peers opened and closed
(``connects``, ``disconnects``, ``reconnects``); in client mode a restarted router is reconnected to by
Zenoh itself and declarations (subscriptions, tokens) are re-sent.

Not supported: services and actions, KEEP_ALL history, deadline/lifespan/liveliness QoS, content filters,
shared memory, SROS enclaves other than the default ``/``, the ROS 2 graph (this transport declares its own
entities but does not track other nodes' tokens), ``~`` private topic names.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from edgefuse.errors import TransportError
from edgefuse.transport.base import RELIABLE, SENSOR_DATA, Callback, QoS, Received, WireFormat

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

__all__ = [
    "ZenohPublisher",
    "ZenohSubscription",
    "ZenohTransport",
    "dds_type_name",
    "decode_attachment",
    "encode_attachment",
    "entity_token",
    "node_token",
    "publisher_gid",
    "qos_token",
    "topic_key_expr",
    "type_hash",
]

_INSTALL_HINT = "pip install 'edgefuse[zenoh]'"
ADMIN_SPACE = "@ros2_lv"
GID_SIZE = 16
_ATTACHMENT = struct.Struct("<qqB16s")
_INT64 = struct.Struct("<q")
_MODES = ("peer", "client", "router")
#: rmw_zenoh's default QoS (qos.cpp): values equal to these are left out of a token's QoS string
_DEFAULT_DEPTH = 42
_BAD_NAME = re.compile(r"[*$?#\s]|//")


def _import_zenoh() -> Any:
    try:
        import zenoh
        import zenoh.ext
    except ImportError:
        raise TransportError(f"the zenoh transport needs eclipse-zenoh: {_INSTALL_HINT}") from None
    return zenoh


def _import_xxhash() -> Any:
    try:
        import xxhash
    except ImportError:
        raise TransportError(f"the zenoh transport needs xxhash (rmw_zenoh's GIDs): {_INSTALL_HINT}") from None
    return xxhash


# --- names, hashes and the wire format (pure functions) ------------------------------------------------------


def dds_type_name(msgtype: str) -> str:
    """``sensor_msgs/msg/PointCloud2`` -> ``sensor_msgs::msg::dds_::PointCloud2_`` (the name rmw_zenoh uses).

    Raises:
        TransportError: not a ``pkg/msg/Name`` type name.
    """
    parts = msgtype.split("/")
    if len(parts) != 3 or not all(parts) or any(_BAD_NAME.search(p) for p in parts):
        raise TransportError(f"invalid message type name {msgtype!r} (expected pkg/msg/Name)")
    return f"{parts[0]}::{parts[1]}::dds_::{parts[2]}_"


def _fields_only(store: Typestore, msgtype: str, seen: set[str] | None = None) -> Any:
    """The type's field layout, nested types expanded, constants left out (they don't change the CDR)."""
    seen = set() if seen is None else seen
    if msgtype in seen:
        return msgtype
    seen.add(msgtype)
    out = []
    for name, desc in store.fielddefs[msgtype][1]:
        out.append((name, _expand(store, desc, seen)))
    return tuple(out)


def _expand(store: Typestore, desc: Any, seen: set[str]) -> Any:
    kind, rest = desc
    name = getattr(kind, "name", str(kind))
    if name == "NAME":
        return ("NAME", _fields_only(store, rest, seen))
    if name in {"ARRAY", "SEQUENCE"}:
        sub, size = rest
        return (name, _expand(store, sub, seen), size)
    return (name, rest)


_HASHES: dict[str, str] = {}
_HASH_LOCK = threading.Lock()


def type_hash(msgtype: str, typestore: Typestore | None = None) -> str:
    """REP-2016 ``RIHS01_<hex>`` hash of ``msgtype`` as a ROS 2 Jazzy system computes it.

    Taken from rosbags' Jazzy typestore where the type is there with the same field layout as in edgefuse's
    typestore (constants may differ: they are not on the wire); otherwise (types Jazzy's store lacks, such
    as ``vision_msgs``, or an older layout) from edgefuse's own definition.

    Raises:
        TransportError: the type is unknown to edgefuse's typestore.
    """
    with _HASH_LOCK:
        cached = _HASHES.get(msgtype) if typestore is None else None
    if cached is not None:
        return cached
    from rosbags.typesys import Stores, get_typestore

    from edgefuse.msgs.typestore import get_typestore as edgefuse_typestore

    store = typestore if typestore is not None else edgefuse_typestore()
    if msgtype not in store.fielddefs:
        raise TransportError(f"unknown message type {msgtype!r} (not in edgefuse's typestore)")
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    use = store
    if msgtype in jazzy.fielddefs:
        try:
            if _fields_only(jazzy, msgtype) == _fields_only(store, msgtype):
                use = jazzy
        except KeyError:  # a nested type missing from one store
            pass
    value = str(use.hash_rihs01(msgtype))
    if typestore is None:
        with _HASH_LOCK:
            _HASHES[msgtype] = value
    return value


def _mangle(name: str) -> str:
    return name.replace("/", "%")


def fully_qualified(topic: str, namespace: str = "/") -> str:
    """The fully qualified name of ``topic`` (relative names go under ``namespace``).

    Raises:
        TransportError: an empty name, ``~`` names, wildcards, ``//``, whitespace or a trailing ``/``.
    """
    if not topic or topic.startswith("~") or _BAD_NAME.search(topic) or (len(topic) > 1 and topic.endswith("/")):
        raise TransportError(f"invalid topic name {topic!r}")
    name = topic if topic.startswith("/") else namespace.rstrip("/") + "/" + topic
    if name == "/":
        raise TransportError(f"invalid topic name {topic!r}")
    return name


def topic_key_expr(domain_id: int, topic: str, msgtype: str, hash_: str) -> str:
    """The Zenoh key expression rmw_zenoh publishes ``topic`` (fully qualified) of ``msgtype`` on."""
    return f"{domain_id}/{topic.strip('/')}/{dds_type_name(msgtype)}/{hash_}"


def qos_token(qos: QoS) -> str:
    """rmw_zenoh's compact QoS string (``qos_to_keyexpr``) for ``qos`` (defaults left empty)."""
    reliability = "2" if qos.reliability == "best_effort" else ""
    durability = "1" if qos.durability == "transient_local" else ""
    depth = "" if qos.depth in (0, _DEFAULT_DEPTH) else str(qos.depth)
    return f"{reliability}:{durability}:,{depth}:,:,:,,"


def node_token(domain_id: int, zid: str, *, node_id: int, namespace: str, node_name: str, enclave: str = "/") -> str:
    """The liveliness key expression of a node."""
    return (f"{ADMIN_SPACE}/{domain_id}/{zid}/{node_id}/{node_id}/NN/{_mangle(enclave)}/{_mangle(namespace)}/"
            f"{node_name}")


def entity_token(
    kind: Literal["MP", "MS"],
    domain_id: int,
    zid: str,
    *,
    node_id: int,
    entity_id: int,
    namespace: str,
    node_name: str,
    topic: str,
    msgtype: str,
    hash_: str,
    qos: QoS,
    enclave: str = "/",
) -> str:
    """The liveliness key expression of a publisher (``MP``) or subscription (``MS``) on ``topic`` (fully
    qualified)."""
    return (f"{ADMIN_SPACE}/{domain_id}/{zid}/{node_id}/{entity_id}/{kind}/{_mangle(enclave)}/{_mangle(namespace)}/"
            f"{node_name}/{_mangle(topic)}/{dds_type_name(msgtype)}/{hash_}/{qos_token(qos)}")


def publisher_gid(token: str) -> bytes:
    """rmw_zenoh's 16-byte GID of the entity whose liveliness key expression is ``token``."""
    digest: int = _import_xxhash().xxh3_128_intdigest(token.encode())
    return digest.to_bytes(GID_SIZE, "little")


def encode_attachment(seq: int, stamp_ns: int, gid: bytes) -> bytes:
    """The 33-byte rmw_zenoh attachment: int64 LE sequence number, int64 LE source time, length 16, GID."""
    return _ATTACHMENT.pack(seq, stamp_ns, GID_SIZE, gid)


class _AttachmentError(TransportError):
    """Internal: an attachment that is not rmw_zenoh's (caught by :func:`decode_attachment`)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _AttachmentError("not an rmw_zenoh attachment")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _decode_keyed(buf: bytes) -> tuple[int, int, bytes]:
    pos = 0
    values: list[Any] = []
    for key in (b"sequence_number", b"source_timestamp", b"source_gid"):
        size, pos = _varint(buf, pos)
        if buf[pos:pos + size] != key:
            raise _AttachmentError("not an rmw_zenoh attachment")
        pos += size
        if key == b"source_gid":
            size, pos = _varint(buf, pos)
            if size != GID_SIZE or pos + size != len(buf):
                raise _AttachmentError("not an rmw_zenoh attachment")
            values.append(buf[pos:pos + size])
        else:
            if pos + 8 > len(buf):
                raise _AttachmentError("not an rmw_zenoh attachment")
            values.append(_INT64.unpack_from(buf, pos)[0])
            pos += 8
    return values[0], values[1], values[2]


def decode_attachment(buf: bytes) -> tuple[int, int, bytes] | None:
    """``(seq, source_ns, gid)`` from an rmw_zenoh attachment (current or keyed 0.2.0-0.2.3 form), or None
    when it is neither."""
    if len(buf) == _ATTACHMENT.size and buf[16] == GID_SIZE:
        seq, stamp, _, gid = _ATTACHMENT.unpack(buf)
        return seq, stamp, gid
    try:
        return _decode_keyed(buf)
    except (_AttachmentError, IndexError):
        return None


# --- the transport -------------------------------------------------------------------------------------------


class _Counters:
    """Thread-safe counters (zenoh calls back on several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


class ZenohPublisher:
    """A publisher made by :meth:`ZenohTransport.advertise`."""

    def __init__(self, transport: ZenohTransport, *, topic: str, msgtype: str, qos: QoS, key: str, token: str,
                 pub: Any, token_handle: Any) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self.qos = qos
        self.key_expr = key
        self.liveliness_token = token
        self.gid = publisher_gid(token)
        self._transport = transport
        self._pub = pub
        self._token = token_handle
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False

    def publish(self, data: bytes | memoryview, *, stamp_ns: int | None = None) -> None:
        """Send one CDR-serialized message with rmw_zenoh's attachment (see the module documentation).

        Raises:
            TransportError: the publisher or its transport is closed, or Zenoh refused the message.
        """
        payload = data if isinstance(data, bytes | bytearray) else bytes(data)
        with self._lock:
            if self._closed:
                raise TransportError(f"publisher on {self.topic} is closed")
            self._seq += 1
            attachment = encode_attachment(self._seq, time.time_ns() if stamp_ns is None else stamp_ns, self.gid)
            try:
                self._pub.put(payload, attachment=attachment)
            except Exception as err:  # zenoh.ZError (session closed, ...)
                self._transport._counters.add("publish_errors")
                raise TransportError(f"zenoh put on {self.key_expr} failed: {err}") from None
        self._transport._counters.add("published")

    def subscription_count(self, timeout_s: float = 1.0) -> int:
        """Subscriptions that receive this publisher's messages now: the rmw_zenoh liveliness tokens of
        subscriptions (``MS``) of this topic and type, from any node, counted only once Zenoh's own matching
        status says a subscriber's declaration has reached this publisher (a token alone can arrive first).

        Raises:
            TransportError: the session refused the liveliness query.
        """
        with self._lock:
            if self._closed:
                return 0
            pub = self._pub
        transport = self._transport
        try:
            status = getattr(pub, "matching_status", None)
            if status is not None and not status.matching:
                return 0
            key = (f"{ADMIN_SPACE}/{transport.domain_id}/*/*/*/MS/*/*/*/{_mangle(self.topic)}/"
                   f"{dds_type_name(self.msgtype)}/*/*")
            replies = transport._require_session().liveliness().get(key, timeout=timeout_s)
            return len({str(r.ok.key_expr) for r in replies if r.ok is not None})
        except TransportError:
            raise
        except Exception as err:  # zenoh.ZError (session closed, ...)
            raise TransportError(f"zenoh liveliness query for subscriptions of {self.topic} failed: {err}") from None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for handle in (self._token, self._pub):
            with contextlib.suppress(Exception):  # the session may already be closed
                handle.undeclare()
        self._transport._forget(self)


class ZenohSubscription:
    """A subscription made by :meth:`ZenohTransport.subscribe`."""

    def __init__(self, transport: ZenohTransport, *, topic: str, msgtype: str, qos: QoS, key: str, token: str,
                 callback: Callback) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self.qos = qos
        self.key_expr = key
        self.liveliness_token = token
        self._transport = transport
        self._callback = callback
        self._sub: Any = None
        self._token: Any = None
        self._closed = False
        self._lock = threading.Lock()
        self._type_chunk = key.rsplit("/", 2)[-2]

    def _on_sample(self, sample: Any) -> None:
        recv_ns = time.monotonic_ns()
        counters = self._transport._counters
        if self._closed:
            return
        key = str(sample.key_expr)
        if key != self.key_expr:
            counters.add("type_mismatch")
            return
        data = sample.payload.to_bytes()  # the one copy out of Zenoh's buffers
        seq = source_ns = publisher = None
        attachment = sample.attachment
        if attachment is None:
            counters.add("no_attachment")
        else:
            decoded = decode_attachment(attachment.to_bytes())
            if decoded is None:
                counters.add("bad_attachment")
            else:
                seq, source_ns, gid = decoded
                publisher = gid.hex()
        counters.add("received")
        try:
            self._callback(Received(self.topic, self.msgtype, data, "cdr", recv_ns, source_ns, seq, publisher))
        except Exception:  # the node's callback must not kill Zenoh's thread
            counters.add("callback_errors")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for handle in (self._token, self._sub):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.undeclare()
        self._transport._forget(self)


class ZenohTransport:
    """ROS 2 messages over Zenoh, interoperable with ``rmw_zenoh`` (see the module documentation).

    Args:
        mode: Zenoh session mode, ``"peer"`` (default, as rmw_zenoh), ``"client"`` (all traffic through a
            router) or ``"router"``.
        connect: endpoints to connect to (default, as rmw_zenoh: ``["tcp/localhost:7447"]``, the router;
            ``[]`` for none).
        listen: endpoints to listen on (default ``["tcp/localhost:0"]`` for a peer, ``["tcp/[::]:7447"]`` for
            a router, none for a client).
        domain_id: ROS domain (default ``$ROS_DOMAIN_ID``, else 0).
        namespace: the node's namespace (``/`` by default); relative topic names resolve under it.
        node_name: the node's name in the ROS graph.
        config: path of a Zenoh JSON5 configuration file; the options given explicitly override it, and
            without it rmw_zenoh's session defaults apply.
        multicast_scouting: UDP multicast discovery (off by default, as rmw_zenoh).
        typestore: the typestore whose definitions give type hashes (default: edgefuse's).
    """

    name = "zenoh"
    fmt: WireFormat = "cdr"

    def __init__(
        self,
        *,
        mode: str = "peer",
        connect: list[str] | None = None,
        listen: list[str] | None = None,
        domain_id: int | None = None,
        namespace: str = "/",
        node_name: str = "edgefuse",
        config: str | os.PathLike[str] | None = None,
        multicast_scouting: bool | None = None,
        typestore: Typestore | None = None,
    ) -> None:
        self._zenoh = _import_zenoh()
        _import_xxhash()
        if mode not in _MODES:
            raise TransportError(f"zenoh mode must be one of {', '.join(_MODES)}, not {mode!r}")
        if domain_id is None:
            env = os.environ.get("ROS_DOMAIN_ID", "").strip()
            try:
                domain_id = int(env) if env else 0
            except ValueError:
                raise TransportError(f"ROS_DOMAIN_ID must be an integer, not {env!r}") from None
        if isinstance(domain_id, bool) or not isinstance(domain_id, int) or not 0 <= domain_id <= 232:
            raise TransportError(f"domain_id must be an integer in 0..232, not {domain_id!r}")
        bad_ns = namespace != "/" and (namespace.endswith("/") or _BAD_NAME.search(namespace) is not None)
        if not namespace.startswith("/") or bad_ns:
            raise TransportError(f"invalid namespace {namespace!r} (absolute, e.g. '/' or '/robot1')")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node_name):
            raise TransportError(f"invalid node name {node_name!r}")
        for what, value in (("connect", connect), ("listen", listen)):
            if value is not None and (isinstance(value, str) or not all(isinstance(e, str) for e in value)):
                raise TransportError(f"{what} must be a list of endpoint strings like 'tcp/127.0.0.1:7447'")
        self.mode = mode
        self.domain_id = domain_id
        self.namespace = namespace
        self.node_name = node_name
        self.enclave = "/"
        self._connect = connect
        self._listen = listen
        self._config_path = config
        self._multicast = multicast_scouting
        self._typestore = typestore
        self._session: Any = None
        self._node_token: Any = None
        self._events: Any = None
        self._lock = threading.Lock()
        self._entities: list[ZenohPublisher | ZenohSubscription] = []
        self._next_id = 1
        self._counters = _Counters()
        self._links: dict[str, str] = {}  # zid -> whatami of open transports
        self._lost: set[str] = set()  # kinds of link lost and not yet back
        self.zid = ""

    # -- session ---------------------------------------------------------------------------------------------

    def _config(self) -> Any:
        zenoh = self._zenoh
        try:
            conf = zenoh.Config.from_file(str(self._config_path)) if self._config_path is not None else zenoh.Config()
        except Exception as err:
            raise TransportError(f"cannot read zenoh config {self._config_path}: {err}") from None
        defaults = self._config_path is None
        connect = self._connect
        listen = self._listen
        if defaults and connect is None:
            connect = [] if self.mode == "router" else ["tcp/localhost:7447"]
        if defaults and listen is None:
            listen = {"peer": ["tcp/localhost:0"], "router": ["tcp/[::]:7447"], "client": []}[self.mode]
        multicast = self._multicast if self._multicast is not None or not defaults else False
        try:
            conf.insert_json5("mode", f'"{self.mode}"')
            if connect is not None:
                conf.insert_json5("connect/endpoints", _json_list(connect))
            if listen is not None:
                conf.insert_json5("listen/endpoints", _json_list(listen))
            if multicast is not None:
                conf.insert_json5("scouting/multicast/enabled", "true" if multicast else "false")
            # transient_local publishers (advanced publishers) need timestamps in every mode, as in
            # rmw_zenoh's default session config (Zenoh enables them for routers only by default)
            conf.insert_json5("timestamping/enabled", "true")
        except Exception as err:
            raise TransportError(f"invalid zenoh option: {err}") from None
        return conf

    def open(self) -> ZenohTransport:
        """Open the Zenoh session and declare the node's liveliness token.

        Raises:
            TransportError: Zenoh is not installed, the configuration is invalid, or (client mode) no router
                can be reached.
        """
        with self._lock:
            if self._session is not None:
                return self
            conf = self._config()
            try:
                session = self._zenoh.open(conf)
            except Exception as err:
                raise TransportError(f"cannot open zenoh session ({self.mode}): {err}") from None
            self._session = session
            self.zid = str(session.info.zid())
            self._counters.add("sessions_opened")
            listener = getattr(session.info, "declare_transport_events_listener", None)
            if listener is not None:
                with contextlib.suppress(Exception):
                    self._events = listener(self._on_transport_event, history=True)
            token = node_token(self.domain_id, self.zid, node_id=0, namespace=self.namespace,
                               node_name=self.node_name, enclave=self.enclave)
            try:
                self._node_token = session.liveliness().declare_token(token)
            except Exception as err:
                session.close()
                self._session = None
                raise TransportError(f"cannot declare the node's liveliness token {token}: {err}") from None
            self.node_token = token
        return self

    def _on_transport_event(self, event: Any) -> None:
        zenoh = self._zenoh
        transport = event.transport
        zid = str(transport.zid)
        kind = str(transport.whatami).lower()
        role = "router" if "router" in kind else "peer" if "peer" in kind else "client"
        if event.kind == zenoh.SampleKind.PUT:
            self._links[zid] = role
            self._counters.add("connects")
            if role in self._lost:  # a link of this kind came back after one was lost
                self._lost.discard(role)
                self._counters.add("reconnects")
        else:
            self._links.pop(zid, None)
            self._lost.add(role)
            self._counters.add("disconnects")

    def close(self) -> None:
        """Close every subscription and publisher, undeclare the node and close the session; idempotent."""
        with self._lock:
            entities = list(self._entities)
        for entity in entities:
            entity.close()
        with self._lock:
            session, self._session = self._session, None
            token, self._node_token = self._node_token, None
            events, self._events = self._events, None
        for handle in (token, events):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.undeclare()
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def __enter__(self) -> ZenohTransport:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_session(self) -> Any:
        if self._session is None:
            raise TransportError("the zenoh transport is not open (call open() or use 'with')")
        return self._session

    def _new_entity_id(self) -> int:
        with self._lock:
            n = self._next_id
            self._next_id += 1
            return n

    def _forget(self, entity: ZenohPublisher | ZenohSubscription) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._entities.remove(entity)

    def _names(self, topic: str, msgtype: str) -> tuple[str, str, str]:
        fq = fully_qualified(topic, self.namespace)
        hash_ = type_hash(msgtype, self._typestore)
        return fq, hash_, topic_key_expr(self.domain_id, fq, msgtype, hash_)

    def _token(self, kind: Literal["MP", "MS"], eid: int, fq: str, msgtype: str, *, hash_: str, qos: QoS) -> str:
        return entity_token(kind, self.domain_id, self.zid, node_id=0, entity_id=eid, namespace=self.namespace,
                            node_name=self.node_name, topic=fq, msgtype=msgtype, hash_=hash_, qos=qos,
                            enclave=self.enclave)

    # -- endpoints -------------------------------------------------------------------------------------------

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS = SENSOR_DATA) -> ZenohSubscription:
        """Deliver each ``msgtype`` message on ``topic`` to ``callback`` (on a Zenoh thread; see the module
        documentation for matching and QoS).

        Raises:
            TransportError: not open, an invalid topic/type name, or Zenoh refused the declaration.
        """
        session = self._require_session()
        fq, hash_, key = self._names(topic, msgtype)
        eid = self._new_entity_id()
        token = self._token("MS", eid, fq, msgtype, hash_=hash_, qos=qos)
        sub = ZenohSubscription(self, topic=fq, msgtype=msgtype, qos=qos, key=key, token=token, callback=callback)
        listen_on = f"{self.domain_id}/{fq.strip('/')}/*/*"
        try:
            if qos.durability == "transient_local" and hasattr(self._zenoh.ext, "declare_advanced_subscriber"):
                ext = self._zenoh.ext
                sub._sub = ext.declare_advanced_subscriber(
                    session, listen_on, sub._on_sample,
                    history=ext.HistoryConfig(detect_late_publishers=True, max_samples=max(qos.depth, 1)),
                    subscriber_detection=True)
            else:
                sub._sub = session.declare_subscriber(listen_on, sub._on_sample)
            sub._token = session.liveliness().declare_token(token)
        except Exception as err:
            sub.close()
            raise TransportError(f"cannot subscribe to {fq} ({msgtype}) over zenoh: {err}") from None
        with self._lock:
            self._entities.append(sub)
        return sub

    def advertise(self, topic: str, msgtype: str, qos: QoS = RELIABLE) -> ZenohPublisher:
        """A publisher of ``msgtype`` on ``topic`` (see the module documentation for QoS).

        Raises:
            TransportError: not open, an invalid topic/type name, or Zenoh refused the declaration.
        """
        session = self._require_session()
        zenoh = self._zenoh
        fq, hash_, key = self._names(topic, msgtype)
        eid = self._new_entity_id()
        token = self._token("MP", eid, fq, msgtype, hash_=hash_, qos=qos)
        reliability = zenoh.Reliability.RELIABLE if qos.reliability == "reliable" else zenoh.Reliability.BEST_EFFORT
        options: dict[str, Any] = {"congestion_control": zenoh.CongestionControl.DROP, "reliability": reliability}
        pub: Any = None
        handle: Any = None
        try:
            if qos.durability == "transient_local" and hasattr(zenoh.ext, "declare_advanced_publisher"):
                ext = zenoh.ext
                pub = ext.declare_advanced_publisher(
                    session, key, cache=ext.CacheConfig(max(qos.depth, 1)), publisher_detection=True, **options)
            else:
                pub = session.declare_publisher(key, **options)
            handle = session.liveliness().declare_token(token)
        except Exception as err:
            for h in (handle, pub):
                if h is not None:
                    with contextlib.suppress(Exception):
                        h.undeclare()
            raise TransportError(f"cannot advertise {fq} ({msgtype}) over zenoh: {err}") from None
        publisher = ZenohPublisher(self, topic=fq, msgtype=msgtype, qos=qos, key=key, token=token, pub=pub,
                                   token_handle=handle)
        with self._lock:
            self._entities.append(publisher)
        return publisher

    def stats(self) -> dict[str, Any]:
        """Counters: ``published``, ``received``, ``type_mismatch``, ``no_attachment``, ``bad_attachment``,
        ``callback_errors``, ``publish_errors``, ``connects``/``disconnects``/``reconnects`` (Zenoh transports
        to routers and peers), and the current ``routers``/``peers`` connected, ``publishers``,
        ``subscriptions``."""
        out: dict[str, Any] = {k: 0 for k in ("published", "received", "type_mismatch", "no_attachment",
                                               "bad_attachment", "callback_errors", "publish_errors", "connects",
                                               "disconnects", "reconnects", "sessions_opened")}
        out.update(self._counters.snapshot())
        links = list(self._links.values())
        out["routers"] = links.count("router")
        out["peers"] = links.count("peer")
        with self._lock:
            out["publishers"] = sum(isinstance(e, ZenohPublisher) for e in self._entities)
            out["subscriptions"] = sum(isinstance(e, ZenohSubscription) for e in self._entities)
        out["open"] = self._session is not None
        out["zid"] = self.zid
        out["domain_id"] = self.domain_id
        return out


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps(list(items))

