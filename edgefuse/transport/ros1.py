"""The ROS 1 transport: rospy (Debian's ``python3-rospy``) under the :class:`~edgefuse.transport.base.Transport` seam.

Finding rospy.  ``import rospy`` is tried first (a sourced ROS workspace or a ``PYTHONPATH`` that has it).
Otherwise the directories in ``EDGEFUSE_ROS1_PYTHONPATH`` (``os.pathsep``-separated; default Debian's
``/usr/lib/python3/dist-packages``) are searched, but only for the modules rospy needs (rospy, rosgraph,
genpy, rospkg, catkin_pkg, PyYAML ...: :data:`ROS_MODULES`), and only after everything else: a finder
appended to the *end* of ``sys.meta_path`` answers for those names alone, so a package the environment
has (numpy, pyparsing, a pip-installed PyYAML) is always the environment's own and no other Debian
package becomes importable.  rospy is pure Python; Debian 12's is built for Python 3.11 and runs on any
3.11.  Missing: :class:`~edgefuse.errors.TransportError` with the ``apt-get`` line.

One node per process.  rospy allows one ``init_node`` per process and cannot re-initialise after a
shutdown, so every :class:`Ros1Transport` of a process shares one node: the first ``open`` initialises it
(``disable_signals=True``: rospy installs no signal handler, the application keeps its own;
``argv`` without the process's arguments; rospy's log-file set-up is skipped, its loggers propagate to
Python's ``logging``), later ones reuse it, and one naming another master is refused.  ``close``
unregisters the transport's subscribers and publishers; the node itself stays registered until the
process exits (rospy shuts it down at exit).  Before the node is initialised, and before every
``subscribe``/``advertise``, the master is asked for its pid with a bounded timeout (``connect_timeout``),
so an absent master is a ``TransportError``, not rospy's endless "will keep trying" registration loop.
Connections already made keep working while the master is gone (ROS 1 peers talk directly) and
``close`` does not wait for it.

Types.  ``fmt`` is ``"ros1"``: ``Received.data`` is exactly what a ROS 1 publisher sent (ROS 1 layouts:
``std_msgs/Header`` carries ``seq``; ``sensor_msgs/CameraInfo`` has ``D``/``K``/``R``/``P``), and
``publish`` takes the same.  Decode and encode them with :attr:`Ros1Transport.typestore` (rosbags' ROS 1
Noetic store plus ``tf2_msgs/TFMessage`` and edgefuse's extra types), e.g.
``edgefuse.msgs.deserialize(rx.data, rx.msgtype, fmt="ros1", typestore=transport.typestore)`` and
``serialize(from_payload(p, typestore=transport.typestore), fmt="ros1", typestore=transport.typestore)``.
Connection headers carry the type's ROS 1 name, full definition and MD5 from that store
(``generate_msgdef(msgtype, ros_version=1)``), so rospy/roscpp peers with the generated classes match.

Subscriptions use ``rospy.AnyMsg`` (no decoding in the transport): the raw bytes are handed over as
they arrive, with ``recv_ns`` taken first thing and ``publisher`` = the peer's caller id.  A publisher
of another type (ROS 1 lets an ``AnyMsg`` subscriber connect to any) is checked by the type name and
MD5 of its connection header: its messages are dropped and counted in ``stats()["type_mismatch"]``
(the first few offending publishers are listed under ``mismatched``).  Publishers write the given bytes
through a small message class made at run time (no generated Python classes needed); for types whose
first field is ``std_msgs/Header`` the header's ``seq`` is set to the publisher's count (1, 2, ...) as
rospy's own publishers do.  ``stamp_ns`` is not carried (TCPROS has no send time).

Threading.  rospy runs one receive thread per publisher connection; the callback runs on it and must
return quickly.  A callback that raises is counted (``callback_errors``) and logged once per
subscription; the connection goes on.  ``publish`` serialises into rospy's buffer before it returns
(the caller may reuse its buffer) and queues the bytes for each subscriber's send thread.

QoS mapping (TCPROS is always reliable and ordered): ``depth`` → ``queue_size`` of subscribers and
publishers (older messages are dropped when a queue is full); ``transient_local`` → ``latch=True``
(ROS 1 latches the last message only, whatever the depth); ``best_effort`` → ``tcp_nodelay=True``
(low latency instead of resend guarantees, which TCP keeps anyway).

Limits: TCPROS only (no UDPROS), no ROS 1 services or parameters, one master per process, and (as in
rospy) no re-registration with a *restarted* master: restart the process then; types that
ROS 1 Noetic does not define (radar_msgs, vision_msgs detections) use edgefuse's definitions, so peers
must use the same ``.msg`` files for the MD5s to agree.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import struct
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys import get_typestore as rosbags_typestore
from rosbags.typesys.store import Typestore

from edgefuse.errors import MessageError, TransportError
from edgefuse.msgs._defs import EXTRA_MSG_DEFINITIONS
from edgefuse.msgs.typestore import normalize_msgtype, register_definitions
from edgefuse.transport.base import RELIABLE, SENSOR_DATA, Callback, QoS, Received, WireFormat

log = logging.getLogger(__name__)

#: the install line every "rospy is missing" error gives
APT_HINT = "apt-get install python3-rospy  (Debian 12 / Ubuntu packages of ROS 1)"
#: where rospy is looked for when ``import rospy`` fails (``os.pathsep``-separated; overrides the default)
PATH_ENV = "EDGEFUSE_ROS1_PYTHONPATH"
DEFAULT_ROS_PYTHONPATH = "/usr/lib/python3/dist-packages"
DEFAULT_MASTER_URI = "http://127.0.0.1:11311"
#: the top-level modules taken from the ROS path (only when the environment lacks them)
ROS_MODULES = frozenset({
    "rospy", "rosgraph", "roslib", "genpy", "genmsg", "rospkg", "catkin_pkg", "catkin", "roscpp",
    "rosgraph_msgs", "std_msgs", "std_srvs", "rosmaster", "yaml", "_yaml", "pyparsing", "dateutil",
    "docutils", "defusedxml", "distro", "six",
})
#: ROS 1 types rosbags' Noetic store lacks, as ``.msg`` text
_ROS1_EXTRA = {"tf2_msgs/msg/TFMessage": "geometry_msgs/TransformStamped[] transforms\n"}
#: rospy's receive buffer: large enough that a 1-2 MB point cloud arrives in few reads
_BUFF_SIZE = 1 << 22
#: offending publishers listed in stats()
_MAX_LISTED = 16

_U32 = struct.Struct("<I")


# ----------------------------------------------------------------------------- finding rospy


class _RosModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level modules in :data:`ROS_MODULES` in ``paths``; nothing else (see the module doc)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if "." in fullname or fullname not in ROS_MODULES:
            return None  # submodules are found through their package's __path__
        return importlib.machinery.PathFinder.find_spec(fullname, self.paths)


_load_lock = threading.RLock()
_finder: _RosModuleFinder | None = None


def ros_pythonpath() -> list[str]:
    """The directories searched for rospy when ``import rospy`` alone fails."""
    value = os.environ.get(PATH_ENV) or DEFAULT_ROS_PYTHONPATH
    return [p for p in value.split(os.pathsep) if p]


def load_rospy() -> Any:
    """Import rospy (see the module documentation) and return it.

    Raises:
        TransportError: rospy or a module it needs cannot be imported; the message says which and how
            to install it.
    """
    global _finder  # noqa: PLW0603
    with _load_lock:
        with contextlib.suppress(ImportError):
            return importlib.import_module("rospy")
        paths = ros_pythonpath()
        if _finder is None:
            _finder = _RosModuleFinder(paths)
            sys.meta_path.append(_finder)
        else:
            _finder.paths = paths
        importlib.invalidate_caches()
        try:
            return _import_rospy_beside_ros2(paths)
        except ImportError as err:
            missing = getattr(err, "name", None)
            what = "rospy is not installed" if missing in (None, "rospy") else f"rospy needs {missing}: {err}"
            raise TransportError(
                f"ROS 1 transport: {what} (looked in this environment and {os.pathsep.join(paths)}; "
                f"set {PATH_ENV} to the directory holding rospy); install it with: {APT_HINT}"
            ) from None


#: ROS message packages that the ROS 2 wheels (the ``ros2`` extra) install into the environment under the
#: same names as rospy's ROS 1 (genpy) packages
CONTESTED = ("rosgraph_msgs", "std_msgs")


def _is_ros1_package(name: str) -> bool:
    """Whether the environment's ``name`` package (if any) is a ROS 1 genpy message package."""
    spec = importlib.machinery.PathFinder.find_spec(name, [p for p in sys.path if p])
    if spec is None or not spec.submodule_search_locations:
        return True  # absent: the ROS path serves it
    return any(os.path.exists(os.path.join(loc, "msg", f"_{'Log' if name == 'rosgraph_msgs' else 'Header'}.py"))
               for loc in spec.submodule_search_locations)


def _import_rospy_beside_ros2(paths: Sequence[str]) -> Any:
    """Import rospy; where the environment holds ROS 2 packages named like rospy's ROS 1 message packages
    (:data:`CONTESTED`), rospy is given the ROS 1 ones from ``paths`` while it imports (it binds the classes it
    uses then), and the environment's ROS 2 modules are back under their names afterwards, so rclpy in the same
    process keeps working."""
    contested = [n for n in CONTESTED if not _is_ros1_package(n)]
    if not contested:
        return importlib.import_module("rospy")

    def owned(mod: str) -> bool:
        return any(mod == n or mod.startswith(n + ".") for n in contested)

    saved = {k: v for k, v in sys.modules.items() if owned(k)}
    for k in saved:
        del sys.modules[k]
    front = _ContestedFinder(paths, contested)
    sys.meta_path.insert(0, front)
    try:
        rospy = importlib.import_module("rospy")
        # rospy's lazily imported parts that use message classes, bound now while the ROS 1 ones are served
        for extra in ("rospy.impl.rosout", "rospy.impl.registration", "rospy.topics", "rospy.client"):
            with contextlib.suppress(ImportError):
                importlib.import_module(extra)
    finally:
        sys.meta_path.remove(front)
        ros1 = {k: v for k, v in sys.modules.items() if owned(k)}
        for k in ros1:
            del sys.modules[k]
        _ROS1_MODULES.update(ros1)
        sys.modules.update(saved)
    return rospy


#: the ROS 1 message modules rospy was given (kept alive here, out of ``sys.modules``)
_ROS1_MODULES: dict[str, ModuleType] = {}


class _ContestedFinder(importlib.abc.MetaPathFinder):
    """Serves :data:`CONTESTED` packages from the ROS 1 path, ahead of the environment (during rospy's import)."""

    def __init__(self, paths: Sequence[str], names: Sequence[str]) -> None:
        self.paths = list(paths)
        self.names = set(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, self.paths)


# ----------------------------------------------------------------------------- types


def new_ros1_typestore() -> Typestore:
    """A fresh ROS 1 typestore: rosbags' Noetic store + ``tf2_msgs/TFMessage`` + edgefuse's extra types."""
    store = rosbags_typestore(Stores.ROS1_NOETIC)
    for name, text in _ROS1_EXTRA.items():
        if name not in store.fielddefs:
            store.register(get_types_from_msg(text, name))
    register_definitions(store, EXTRA_MSG_DEFINITIONS)
    return store


@functools.cache
def ros1_typestore() -> Typestore:
    """The shared ROS 1 typestore (:func:`new_ros1_typestore`, made once); do not register into it."""
    return new_ros1_typestore()


def _ros1_name(msgtype: str) -> str:
    """``pkg/Name`` (the connection header's spelling) for ``pkg/msg/Name``."""
    pkg, _, name = msgtype.split("/")
    return f"{pkg}/{name}"


# ----------------------------------------------------------------------------- the one node


class _NodeState:
    """The process's rospy node as the transports of this module share it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.master_uri: str | None = None  # the master the node was initialised with (by us or not)
        self.users = 0


_NODE = _NodeState()


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


def check_master(master_uri: str, timeout: float) -> int:
    """The pid of the ROS master at ``master_uri``, asked with a ``timeout`` in seconds.

    Raises:
        TransportError: nothing answers there in time, or it does not answer like a ROS master.
    """
    hint = "start one (roscore, or rosmaster --core) or set ROS_MASTER_URI"
    if not master_uri.startswith(("http://", "https://")):
        raise TransportError(f"ROS master URI {master_uri!r} is not an http:// URI")
    proxy = xmlrpc.client.ServerProxy(master_uri, transport=_TimeoutTransport(timeout))
    try:
        answer: Any = proxy.getPid("/edgefuse_probe")
        code, status, pid = answer
    except (OSError, http.client.HTTPException, xmlrpc.client.Error) as err:
        raise TransportError(f"no ROS master at {master_uri} ({err}); {hint}") from None
    except ValueError as err:  # a malformed answer
        raise TransportError(f"{master_uri} does not answer like a ROS master ({err})") from None
    if code != 1 or not isinstance(pid, int):
        raise TransportError(f"{master_uri} does not answer like a ROS master ({status!r})")
    return pid


class _ClosedSocketNoise(logging.Filter):
    """Drops rospy's traceback for a receive thread that finds its socket closed by our own unregister
    (a race inside rospy: ``sock.setblocking`` on a closed socket raises EBADF); other errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("receive_once" in text and "Bad file descriptor" in text)


def _init_node(rospy: Any, master_uri: str, node_name: str, anonymous: bool, host: str | None) -> None:
    """Initialise this process's rospy node once (caller holds ``_NODE.lock``)."""
    if rospy.core.is_initialized():
        if _NODE.master_uri is None:  # initialised by someone else: it uses the environment's master
            rosgraph = importlib.import_module("rosgraph")  # rospy's own dependency
            _NODE.master_uri = str(rosgraph.get_master_uri())
        if _NODE.master_uri.rstrip("/") != master_uri.rstrip("/"):
            raise TransportError(
                f"this process's rospy node already talks to the ROS master at {_NODE.master_uri}; "
                f"rospy allows one node (one master) per process, so {master_uri} cannot be used"
            )
        return
    # rospy reads the master and the advertised address from the environment (or sys.argv remappings)
    os.environ["ROS_MASTER_URI"] = master_uri
    if host is not None:
        os.environ["ROS_IP"] = host
        os.environ.pop("ROS_HOSTNAME", None)
    rospy_logger = logging.getLogger("rospy")
    if rospy_logger.level == logging.NOTSET:
        rospy_logger.setLevel(logging.WARNING)  # its INFO chatter stays out of the application's log
    logging.getLogger("rospy.internal").addFilter(_ClosedSocketNoise())
    configure_logging = rospy.core.configure_logging
    rospy.core.configure_logging = lambda *args, **kwargs: None  # no ~/.ros/log files, no fileConfig
    try:
        rospy.init_node(
            node_name, argv=[node_name], anonymous=anonymous, disable_signals=True,
            disable_rosout=True, disable_rostime=True,
        )
    except Exception as err:  # rospy raises ROSException, ValueError, socket errors ...
        raise TransportError(f"rospy could not initialise node {node_name!r} at {master_uri}: {err}") from None
    finally:
        rospy.core.configure_logging = configure_logging
    _NODE.master_uri = master_uri


# ----------------------------------------------------------------------------- subscriptions / publishers


class Ros1Subscription:
    """One ``rospy.Subscriber`` on ``AnyMsg`` delivering :class:`Received` (see the module documentation)."""

    def __init__(self, transport: Ros1Transport, topic: str, msgtype: str, md5: str, callback: Callback) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self._transport = transport
        self._type1 = _ros1_name(msgtype)
        self._md5 = md5
        self._callback = callback
        self._closed = False
        self._errors_logged = False
        self._sub: Any = None

    def _on_message(self, msg: Any) -> None:
        recv_ns = time.monotonic_ns()
        if self._closed:
            return
        header = getattr(msg, "_connection_header", None) or {}
        if header.get("md5sum") != self._md5 or header.get("type") != self._type1:
            self._transport._mismatch(self.topic, self._type1, header)
            return
        rx = Received(self.topic, self.msgtype, msg._buff, "ros1", recv_ns, publisher=header.get("callerid"))
        try:
            self._callback(rx)
        except Exception as err:  # the callback's bug must not kill rospy's receive thread silently
            self._transport._count("callback_errors")
            if not self._errors_logged:
                self._errors_logged = True
                log.error("ROS 1 subscription %s: callback raised %s: %s (counted in stats; logged once)",
                          self.topic, type(err).__name__, err)
        else:
            self._transport._count("received")

    def connections(self) -> int:
        return 0 if self._sub is None or self._closed else int(self._sub.get_num_connections())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sub is not None:
            with contextlib.suppress(Exception):  # rospy already shut down at exit
                self._sub.unregister()
        self._transport._forget(self)


def _raw_init(self: Any, data: bytes | memoryview = b"", seq: int | None = None) -> None:
    self.data = data
    self.seq = seq


def _raw_serialize(self: Any, buff: Any) -> None:
    if self.seq is None:
        buff.write(self.data)
    else:  # std_msgs/Header first: its seq, then the rest as given
        buff.write(_U32.pack(self.seq & 0xFFFFFFFF))
        buff.write(memoryview(self.data)[4:])


def _raw_deserialize(self: Any, data: bytes) -> Any:
    self.data = data
    self.seq = None
    return self


@functools.cache
def _raw_class(genpy_message: type, ros1name: str, md5: str, full_text: str) -> type:
    """A ``genpy.Message`` subclass that writes the bytes it holds, advertised as ``ros1name``."""
    return type(
        "Raw_" + ros1name.replace("/", "__"),
        (genpy_message,),
        {
            "__slots__": ("data", "seq"),
            "_type": ros1name,
            "_md5sum": md5,
            "_full_text": full_text,
            "_has_header": False,  # rospy must not touch a .header; the seq is written by _raw_serialize
            "_slot_types": ["uint8[]", "uint32"],
            "__init__": _raw_init,
            "serialize": _raw_serialize,
            "deserialize": _raw_deserialize,
        },
    )


class Ros1Publisher:
    """One ``rospy.Publisher`` of raw ROS 1 bytes (see the module documentation)."""

    def __init__(self, transport: Ros1Transport, topic: str, msgtype: str, cls: type, *, header_first: bool,
                 latch: bool) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self._transport = transport
        self._cls = cls
        self._header_first = header_first
        self._latch = latch
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False
        self._pub: Any = None

    def publish(self, data: bytes | memoryview, *, stamp_ns: int | None = None) -> None:
        """Send ``data`` (ROS 1 bytes of ``msgtype``); ``stamp_ns`` is not carried by TCPROS.

        Raises:
            TransportError: the publisher is closed, the bytes are too short for the type's header, or
                rospy refuses (node shut down).
        """
        if self._closed:
            raise TransportError(f"publisher of {self.topic} is closed")
        if self._latch:
            data = bytes(data)  # rospy keeps the latched message and writes it again for late joiners
        with self._lock:
            seq: int | None = None
            if self._header_first:
                if len(data) < 4:
                    raise TransportError(f"{self.msgtype} on {self.topic}: {len(data)} bytes cannot hold its header")
                self._seq += 1
                seq = self._seq
            try:
                self._pub.publish(self._cls(data, seq))
            except Exception as err:  # rospy.ROSException (shut down), socket errors
                raise TransportError(f"ROS 1 publish on {self.topic} failed: {err}") from None
        self._transport._count("published")

    def connections(self) -> int:
        return 0 if self._pub is None or self._closed else int(self._pub.get_num_connections())

    def subscription_count(self) -> int:
        """Subscribers connected to this publisher now (what ``edgefuse play --wait-subscribers`` waits for)."""
        return self.connections()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pub is not None:
            with contextlib.suppress(Exception):
                self._pub.unregister()
        self._transport._forget(self)


# ----------------------------------------------------------------------------- the transport


class Ros1Transport:
    """ROS 1 through rospy (see the module documentation).

    Args:
        master_uri: the ROS master (default ``ROS_MASTER_URI``, else ``http://127.0.0.1:11311``).
        node_name: the node's base name (with ``anonymous``, ``_<pid>_<ms>`` is appended, as rospy does).
        anonymous: make the node name unique (several edgefuse processes on one master).
        host: the address peers reach this node at (``ROS_IP``); default rospy's (``ROS_IP`` /
            ``ROS_HOSTNAME`` / the host name).
        connect_timeout: seconds to wait for the master when opening.
        typestore: the ROS 1 typestore for names, definitions and MD5s (default :func:`ros1_typestore`).
    """

    name = "ros1"
    fmt: WireFormat = "ros1"

    def __init__(
        self,
        master_uri: str | None = None,
        node_name: str = "edgefuse",
        *,
        anonymous: bool = True,
        host: str | None = None,
        connect_timeout: float = 3.0,
        typestore: Typestore | None = None,
    ) -> None:
        self.master_uri = master_uri or os.environ.get("ROS_MASTER_URI") or DEFAULT_MASTER_URI
        self.node_name = node_name
        self.anonymous = anonymous
        self.host = host
        self.connect_timeout = connect_timeout
        self.typestore = typestore if typestore is not None else ros1_typestore()
        self._rospy: Any = None
        self._genpy_message: type | None = None
        self._open = False
        self._lock = threading.Lock()
        self._subs: list[Ros1Subscription] = []
        self._pubs: list[Ros1Publisher] = []
        self._counts = {"received": 0, "published": 0, "type_mismatch": 0, "callback_errors": 0}
        self._mismatched: dict[tuple[str, str, str], int] = {}
        self._msgdefs: dict[str, tuple[str, str]] = {}

    # -- lifecycle

    def open(self) -> Ros1Transport:
        """Load rospy, check the master and initialise (or join) the process's node; returns self.

        Raises:
            TransportError: rospy is not installed, the master does not answer within
                ``connect_timeout``, or the process's node uses another master.
        """
        if self._open:
            return self
        rospy = load_rospy()
        check_master(self.master_uri, self.connect_timeout)
        genpy = importlib.import_module("genpy")  # found like rospy, which imports it
        with _NODE.lock:
            _init_node(rospy, self.master_uri, self.node_name, self.anonymous, self.host)
            _NODE.users += 1
        self._rospy = rospy
        self._genpy_message = genpy.Message
        self._open = True
        return self

    def close(self) -> None:
        """Unregister every subscriber and publisher of this transport; idempotent (the node stays)."""
        if not self._open:
            return
        endpoints: list[Ros1Subscription | Ros1Publisher] = [*self._subs, *self._pubs]
        for endpoint in endpoints:
            endpoint.close()
        self._open = False
        with _NODE.lock:
            _NODE.users -= 1

    def __enter__(self) -> Ros1Transport:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def node(self) -> str | None:
        """The node's resolved name (``/edgefuse_1234_...``) once open, else None."""
        return str(self._rospy.get_name()) if self._open else None

    # -- endpoints

    def _require_open(self) -> Any:
        if not self._open:
            raise TransportError("ROS 1 transport is not open (call open() or use it in a with block)")
        return self._rospy

    def _msgdef(self, msgtype: str) -> tuple[str, str, str]:
        """(``pkg/msg/Name``, full definition, MD5) of a type of :attr:`typestore`."""
        try:
            name = normalize_msgtype(msgtype)
        except MessageError as err:
            raise TransportError(str(err)) from None
        found = self._msgdefs.get(name)
        if found is None:
            if name not in self.typestore.fielddefs:
                raise TransportError(f"message type {name} is not in the ROS 1 typestore (register it there)")
            try:
                found = self.typestore.generate_msgdef(name, ros_version=1)
            except Exception as err:  # rosbags' TypesysError for a broken definition
                raise TransportError(f"cannot make the ROS 1 definition of {name}: {err}") from None
            self._msgdefs[name] = found
        return name, found[0], found[1]

    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS = SENSOR_DATA) -> Ros1Subscription:
        """See :meth:`edgefuse.transport.base.Transport.subscribe` and the QoS mapping above.

        Raises:
            TransportError: not open, a type the typestore lacks, the master does not answer (within
                ``connect_timeout``), or a topic name rospy refuses.
        """
        rospy = self._require_open()
        name, _definition, md5 = self._msgdef(msgtype)
        check_master(self.master_uri, self.connect_timeout)  # rospy would retry registering forever
        sub = Ros1Subscription(self, topic, name, md5, callback)
        try:
            sub._sub = rospy.Subscriber(
                topic, rospy.AnyMsg, sub._on_message, queue_size=max(1, qos.depth), buff_size=_BUFF_SIZE,
                tcp_nodelay=qos.reliability == "best_effort",
            )
        except Exception as err:  # ValueError / ROSException for a bad name
            raise TransportError(f"cannot subscribe to {topic!r}: {err}") from None
        sub.topic = str(sub._sub.resolved_name)
        with self._lock:
            self._subs.append(sub)
        return sub

    def advertise(self, topic: str, msgtype: str, qos: QoS = RELIABLE) -> Ros1Publisher:
        """See :meth:`edgefuse.transport.base.Transport.advertise` and the QoS mapping above.

        Raises:
            TransportError: not open, a type the typestore lacks, the master does not answer (within
                ``connect_timeout``), or a topic name rospy refuses.
        """
        rospy = self._require_open()
        name, definition, md5 = self._msgdef(msgtype)
        check_master(self.master_uri, self.connect_timeout)  # rospy would retry registering forever
        assert self._genpy_message is not None
        cls = _raw_class(self._genpy_message, _ros1_name(name), md5, definition)
        fields = self.typestore.fielddefs[name][1]
        header_first = bool(fields) and fields[0][1][1] == "std_msgs/msg/Header"
        latch = qos.durability == "transient_local"
        pub = Ros1Publisher(self, topic, name, cls, header_first=header_first, latch=latch)
        try:
            pub._pub = rospy.Publisher(
                topic, cls, queue_size=max(1, qos.depth), latch=latch, tcp_nodelay=qos.reliability == "best_effort"
            )
        except Exception as err:
            raise TransportError(f"cannot advertise {topic!r}: {err}") from None
        pub.topic = str(pub._pub.resolved_name)
        with self._lock:
            self._pubs.append(pub)
        return pub

    # -- bookkeeping (called from rospy's threads)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _mismatch(self, topic: str, expected: str, header: dict[str, str]) -> None:
        key = (topic, str(header.get("callerid", "?")), f"{header.get('type', '?')} ({header.get('md5sum', '?')})")
        with self._lock:
            self._counts["type_mismatch"] += 1
            first = key not in self._mismatched and len(self._mismatched) < _MAX_LISTED
            if first or key in self._mismatched:
                self._mismatched[key] = self._mismatched.get(key, 0) + 1
        if first:
            log.warning("ROS 1 %s: publisher %s sends %s, not %s: its messages are dropped (counted)",
                        topic, key[1], key[2], expected)

    def _forget(self, endpoint: Ros1Subscription | Ros1Publisher) -> None:
        with self._lock:
            if isinstance(endpoint, Ros1Subscription):
                if endpoint in self._subs:
                    self._subs.remove(endpoint)
            elif endpoint in self._pubs:
                self._pubs.remove(endpoint)

    def stats(self) -> dict[str, Any]:
        """Counters: ``received``, ``published``, ``type_mismatch`` (messages dropped), ``callback_errors``;
        ``subscriptions``/``publishers`` open and their ``connections``; ``mismatched`` (topic, publisher,
        type and MD5 it sent, messages) for the first offending publishers; ``node`` and ``master_uri``."""
        with self._lock:
            subs, pubs = list(self._subs), list(self._pubs)
            out: dict[str, Any] = dict(self._counts)
            out["mismatched"] = [
                {"topic": t, "publisher": p, "sent": s, "messages": n} for (t, p, s), n in self._mismatched.items()
            ]
        out.update(
            node=self.node, master_uri=self.master_uri, subscriptions=len(subs), publishers=len(pubs),
            connections=sum(s.connections() for s in subs) + sum(p.connections() for p in pubs),
        )
        return out
