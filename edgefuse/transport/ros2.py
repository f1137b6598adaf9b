"""ROS 2 transport on rclpy: serialized CDR messages in and out of a ROS 2 (DDS) graph.

Installed by ``pip install 'edgefuse[ros2]'`` (x86_64 Linux, CPython 3.11): the ``ros-rclpy`` wheels of
the current ROS 2 release on PyPI (``rclpy``, ``rcl``, ``rmw_fastrtps_cpp`` with eProsima Fast DDS as the
middleware) and the Python message packages ``ros-std-msgs``, ``ros-sensor-msgs``, ``ros-geometry-msgs``,
``ros-nav-msgs``, ``ros-diagnostic-msgs``, ``ros-rosgraph-msgs``, ``ros-builtin-interfaces``,
``ros-visualization-msgs``.  A system ROS 2 installation (``source /opt/ros/<distro>/setup.bash``) works
as well.  Other message packages (``vision_msgs``, ``radar_msgs``, ...) have no wheels: subscribing to or
advertising one of their types raises :class:`~edgefuse.errors.TransportError` naming the package.

Environment: the wheels keep their shared libraries in ``<prefix>/lib`` and ``site-packages/ros_*.libs``
and rely on ``LD_LIBRARY_PATH``; their ``ros_wheels_bootstrapper.pth`` sets it by re-executing each Python
process of the environment once at start-up.  Where that did not happen (``python -S``, an embedding
program, an environment that skipped it) :func:`import_rclpy` preloads those libraries itself (ctypes,
``RTLD_GLOBAL``) and extends ``LD_LIBRARY_PATH`` for child processes, so no variable has to be set by hand.
``ROS_DOMAIN_ID`` (when ``domain_id`` is None), ``ROS_AUTOMATIC_DISCOVERY_RANGE``/``ROS_LOCALHOST_ONLY``
and ``RMW_IMPLEMENTATION`` are honoured as by any ROS 2 program.

QoS mapping (:class:`~edgefuse.transport.base.QoS` → rclpy ``QoSProfile``, history KEEP_LAST always):
``SENSOR_DATA`` = best effort, volatile, depth 5 (rclpy's ``qos_profile_sensor_data``); ``RELIABLE`` =
reliable, volatile, depth 10 (rclpy's default); ``LATCHED`` = reliable, transient local, depth 1.  The
usual DDS compatibility applies: a best-effort subscription receives from reliable publishers, a
reliable subscription receives nothing from a best-effort publisher (counted as ``qos_incompatible``).

Threads: each :meth:`Ros2Transport.open` makes its own rclpy ``Context`` (so a process can open and close
the transport repeatedly, or hold several on different domains), one node and a
``SingleThreadedExecutor`` spun by one background thread (``edgefuse-ros2-<node>``).  Subscription
callbacks run on that thread; :attr:`Received.recv_ns <edgefuse.transport.base.Received.recv_ns>` is
taken first thing in rclpy's callback (after rclpy took the message from the middleware).  An exception
raised by a callback is counted (``callback_errors``) and the executor keeps running.  ``publish`` may be
called from any thread.

Limits: the publisher's ``stamp_ns`` cannot be passed to DDS (rclpy stamps the send time itself); the
source timestamp, publication sequence number and publisher GID of received messages come from rclpy's
``MessageInfo``.  Fast DDS raises no "incompatible type" event, so ``type_mismatch`` counts the remote
endpoints of another type seen on our topics in the ROS graph (polled once a second), not messages.
Advertising and subscribing to one topic with two different types inside this transport is refused by
Fast DDS (TransportError).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import inspect
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from edgefuse.errors import TransportError
from edgefuse.transport.base import RELIABLE, SENSOR_DATA, Callback, QoS, Received, WireFormat

__all__ = ["Ros2Transport", "import_rclpy", "message_class"]

PIP_HINT = "pip install 'edgefuse[ros2]'"
#: "libfoo.so.1: cannot open shared object file" in a dynamic loader error
_MISSING_LIB = re.compile(r"([^\s:/'\"]+\.so[^\s:'\"]*): cannot open shared object file")
_PRELOADED: dict[str, Any] = {}
_IMPORT_LOCK = threading.Lock()
#: how often the graph is checked for endpoints of another type on our topics
GRAPH_POLL_S = 1.0
_MAX_DOMAIN_ID = 232


def _wheel_library_dirs() -> list[Path]:
    """Where the ``ros-*`` wheels put their shared libraries: ``<prefix>/lib`` and ``site-packages/ros_*.libs``."""
    spec = importlib.util.find_spec("rclpy")
    if spec is None or spec.origin is None:
        return []
    site = Path(spec.origin).resolve().parents[1]
    dirs = [site.parents[1]] if (site.parents[1] / "librcl.so").exists() else []
    return dirs + sorted(p for p in site.glob("ros_*.libs") if p.is_dir())


def _preload_wheel_libraries() -> int:
    """dlopen the libraries of the ROS wheels with RTLD_GLOBAL so that the extension modules, and the libraries
    rcl and rmw open at run time by bare name, resolve without LD_LIBRARY_PATH.  Every ``lib*.so`` of
    ``<prefix>/lib`` is loaded, the third-party ones of ``ros_*.libs`` where one of those needs them.
    Returns how many are loaded."""
    dirs = _wheel_library_dirs()
    if not dirs:
        return 0
    old = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([str(d) for d in dirs if str(d) not in old] + old)
    # wheels hold no symlinks: libfoo.so, libfoo.so.3 and libfoo.so.3.2 are copies, and loading two copies
    # by path runs their static destructors twice at exit (heap corruption); the versioned names resolve by
    # SONAME to the copy loaded as libfoo.so
    pending = [p for p in sorted(dirs[0].glob("lib*.so")) if p.is_file()]
    while pending:
        failed = [path for path in pending if not _load_library(path.name, dirs)]
        if len(failed) == len(pending):
            break  # what is left needs something outside the wheels: the import reports it
        pending = failed
    return len(_PRELOADED)


def _load_library(name: str, dirs: list[Path], depth: int = 0) -> bool:
    """Load ``name`` from ``dirs``, first loading the dependencies the loader reports missing."""
    if name in _PRELOADED:
        return True
    path = next((d / name for d in dirs if (d / name).is_file()), None)
    while path is not None and depth < 32:
        try:
            _PRELOADED[name] = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return True
        except OSError as exc:
            missing = _missing_library(exc)
            if missing is None or missing in _PRELOADED or not _load_library(missing, dirs, depth + 1):
                return False
    return False


def _missing_library(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        match = _MISSING_LIB.search(str(seen))
        if match:
            return match.group(1)
        seen = seen.__cause__ or seen.__context__
    return None


def import_rclpy() -> Any:
    """Import rclpy (preloading the wheels' libraries where the loader cannot find them).

    Raises:
        TransportError: rclpy is not installed or its libraries cannot be loaded (with the install hint).
    """
    with _IMPORT_LOCK:
        try:
            return importlib.import_module("rclpy")
        except ImportError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == "rclpy":
                raise TransportError(f"the ros2 transport needs rclpy: {PIP_HINT}") from None
            if _missing_library(exc) is None or not _preload_wheel_libraries():
                raise TransportError(f"rclpy is installed but cannot be imported ({exc}); {PIP_HINT}") from exc
        try:
            return importlib.import_module("rclpy")
        except ImportError as exc:
            raise TransportError(f"rclpy is installed but cannot be imported ({exc}); {PIP_HINT}") from exc


def normalize_msgtype(msgtype: str) -> str:
    """``pkg/msg/Name`` (``pkg/Name`` is accepted too)."""
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or parts[1] != "msg" or not all(p.isidentifier() for p in parts):
        raise TransportError(f"'{msgtype}' is not a ROS 2 message type name (pkg/msg/Name)")
    return "/".join(parts)


def message_class(msgtype: str) -> Any:
    """The generated Python class of ``pkg/msg/Name``.

    Raises:
        TransportError: the message package has no Python module installed (the message names it and the
            wheel that provides it), or it has no such message.
    """
    pkg, _, name = normalize_msgtype(msgtype).split("/")
    import_rclpy()  # the message modules need the same libraries
    try:
        module = importlib.import_module(f"{pkg}.msg")
    except ModuleNotFoundError as exc:
        if exc.name in (pkg, f"{pkg}.msg"):
            wheel = "ros-" + pkg.replace("_", "-")
            raise TransportError(
                f"no Python message package '{pkg}' for {msgtype}: install it (pip install {wheel}, "
                f"or source a ROS 2 installation that has it)"
            ) from None
        raise TransportError(f"message package '{pkg}' cannot be imported: {exc}") from exc
    except ImportError as exc:
        raise TransportError(f"message package '{pkg}' cannot be imported: {exc}") from exc
    cls = getattr(module, name, None)
    if not inspect.isclass(cls) or not hasattr(cls, "_TYPE_SUPPORT"):
        raise TransportError(f"message package '{pkg}' has no message {name}")
    return cls


def qos_profile(qos: QoS) -> Any:
    """The rclpy ``QoSProfile`` for ``qos`` (see the module documentation)."""
    import_rclpy()
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliability = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
    durability = {"volatile": DurabilityPolicy.VOLATILE, "transient_local": DurabilityPolicy.TRANSIENT_LOCAL}
    if qos.reliability not in reliability or qos.durability not in durability:
        raise TransportError(f"unsupported QoS {qos}")
    if not isinstance(qos.depth, int) or qos.depth < 1:
        raise TransportError(f"QoS depth must be an integer >= 1, got {qos.depth!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=qos.depth,
        reliability=reliability[qos.reliability],
        durability=durability[qos.durability],
    )


def _gid_hex(info: Any) -> str | None:
    gid = info.get("publisher_gid") if isinstance(info, dict) else None
    data = gid.get("data") if isinstance(gid, dict) else None
    return bytes(data).hex() if data else None


class _Counters:
    __slots__ = ("callback_errors", "messages_lost", "published", "qos_incompatible", "received")

    def __init__(self) -> None:
        self.received = 0
        self.published = 0
        self.callback_errors = 0
        self.qos_incompatible = 0
        self.messages_lost = 0

    def add(self, other: _Counters) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Ros2Subscription:
    """A raw rclpy subscription delivering :class:`Received` (made by :meth:`Ros2Transport.subscribe`)."""

    def __init__(self, transport: Ros2Transport, topic: str, msgtype: str, callback: Callback, qos: QoS) -> None:
        self.msgtype = msgtype
        self._transport = transport
        self._callback = callback
        self.counters = _Counters()
        self._closed = False
        from rclpy.event_handler import SubscriptionEventCallbacks

        events = SubscriptionEventCallbacks(
            incompatible_qos=self._on_incompatible_qos, message_lost=self._on_message_lost
        )
        node = transport._require_node()
        try:
            self._sub = node.create_subscription(
                message_class(msgtype), topic, self._on_message, qos_profile(qos), raw=True, event_callbacks=events
            )
        except TransportError:
            raise
        except Exception as exc:  # rclpy raises its own exception types (invalid names, RCLError)
            raise TransportError(f"cannot subscribe to {topic} ({msgtype}): {exc}", topic=topic) from exc
        self.topic: str = self._sub.topic_name

    def _on_message(self, data: bytes, info: Any) -> None:
        recv_ns = time.monotonic_ns()
        if self._closed:
            return
        source_ns = info.get("source_timestamp") if isinstance(info, dict) else None
        seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
        received = Received(
            topic=self.topic,
            msgtype=self.msgtype,
            data=data,
            fmt="cdr",
            recv_ns=recv_ns,
            source_ns=source_ns or None,
            seq=seq,
            publisher=_gid_hex(info),
        )
        self.counters.received += 1
        try:
            self._callback(received)
        except Exception:  # a callback bug must not stop the executor thread
            self.counters.callback_errors += 1

    def _on_incompatible_qos(self, event: Any) -> None:
        self.counters.qos_incompatible += int(getattr(event, "total_count_change", 1) or 1)

    def _on_message_lost(self, event: Any) -> None:
        self.counters.messages_lost += int(getattr(event, "total_count_change", 1) or 1)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport._forget(self)
        node = self._transport._node
        if node is not None:
            with contextlib.suppress(Exception):  # the node may be going away concurrently
                node.destroy_subscription(self._sub)


class Ros2Publisher:
    """A raw rclpy publisher of serialized CDR bytes (made by :meth:`Ros2Transport.advertise`)."""

    def __init__(self, transport: Ros2Transport, topic: str, msgtype: str, qos: QoS) -> None:
        self.msgtype = msgtype
        self._transport = transport
        self.counters = _Counters()
        self._closed = False
        from rclpy.event_handler import PublisherEventCallbacks

        events = PublisherEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        node = transport._require_node()
        try:
            self._pub = node.create_publisher(message_class(msgtype), topic, qos_profile(qos), event_callbacks=events)
        except TransportError:
            raise
        except Exception as exc:  # rclpy raises its own exception types (invalid names, RCLError)
            raise TransportError(f"cannot advertise {topic} ({msgtype}): {exc}", topic=topic) from exc
        self.topic: str = self._pub.topic_name

    def _on_incompatible_qos(self, event: Any) -> None:
        self.counters.qos_incompatible += int(getattr(event, "total_count_change", 1) or 1)

    def publish(self, data: bytes | memoryview, *, stamp_ns: int | None = None) -> None:
        """Send one CDR-serialized message (``stamp_ns`` is not carried: DDS stamps the send time itself).

        Raises:
            TransportError: the publisher or its transport is closed, or rclpy refused the message.
        """
        del stamp_ns
        if self._closed:
            raise TransportError(f"publisher of {self.topic} is closed", topic=self.topic)
        payload = data if isinstance(data, bytes) else bytes(data)
        try:
            self._pub.publish(payload)
        except Exception as exc:  # rclpy: InvalidHandle after close, RCLError from the middleware
            raise TransportError(f"publishing on {self.topic} failed: {exc}", topic=self.topic) from exc
        self.counters.published += 1

    def subscription_count(self) -> int:
        """How many subscriptions are matched with this publisher now."""
        return int(self._pub.get_subscription_count())

    def wait_acknowledged(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every reliable subscription has acknowledged every message sent;
        True when they have (always for a best-effort publisher: nothing is acknowledged), False on timeout or
        when the middleware cannot tell."""
        if self._closed:
            return False
        from rclpy.duration import Duration

        try:
            return bool(self._pub.wait_for_all_acked(Duration(nanoseconds=int(max(0.0, timeout_s) * 1e9))))
        except Exception:  # rclpy raises its own types (RCLError) when the middleware does not support it
            return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport._forget(self)
        node = self._transport._node
        if node is not None:
            with contextlib.suppress(Exception):
                node.destroy_publisher(self._pub)


class Ros2Transport:
    """ROS 2 over rclpy (see the module documentation).

    Args:
        domain_id: the ROS domain (0..232); None: ``ROS_DOMAIN_ID`` or 0.
        node_name: name of the transport's node.
        namespace: namespace of the node (relative topic names are resolved in it).
        ros_args: ROS command-line arguments for the context and node (``["-r", "/a:=/b"]`` remaps), as after
            ``--ros-args``; the process's own ``sys.argv`` is never read.
        enable_rosout: whether the node publishes its log on ``/rosout``.
        spin_timeout_s: how long one executor wait lasts (bounds how quickly :meth:`close` stops the thread).
    """

    name = "ros2"
    fmt: WireFormat = "cdr"

    def __init__(
        self,
        domain_id: int | None = None,
        node_name: str = "edgefuse",
        namespace: str = "",
        *,
        ros_args: list[str] | None = None,
        enable_rosout: bool = False,
        spin_timeout_s: float = 0.1,
    ) -> None:
        if importlib.util.find_spec("rclpy") is None:
            raise TransportError(f"the ros2 transport needs rclpy: {PIP_HINT}")
        if domain_id is None:
            env = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
            if not env.isdigit():
                raise TransportError(f"ROS_DOMAIN_ID={env!r} is not a domain id (0..{_MAX_DOMAIN_ID})")
            domain_id = int(env)
        if not isinstance(domain_id, int) or not 0 <= domain_id <= _MAX_DOMAIN_ID:
            raise TransportError(f"domain_id must be an integer in 0..{_MAX_DOMAIN_ID}, got {domain_id!r}")
        self.domain_id = domain_id
        self.node_name = node_name
        self.namespace = namespace
        self.ros_args = list(ros_args or [])
        self.enable_rosout = enable_rosout
        self.spin_timeout_s = float(spin_timeout_s)
        self._lock = threading.RLock()  # open/close/subscribe/advertise; never taken on the executor thread
        self._items_lock = threading.Lock()  # the endpoint lists and the retired counters
        self._context: Any = None
        self._node: Any = None
        self._executor: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._subs: list[Ros2Subscription] = []
        self._pubs: list[Ros2Publisher] = []
        self._retired = _Counters()  # what closed subscriptions and publishers counted
        self._mismatched: set[tuple[str, str, str]] = set()
        self._executor_errors = 0
        self._last_executor_error: str | None = None
        self._opens = 0
        self._rmw: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def open(self) -> Ros2Transport:
        with self._lock:
            if self._node is not None:
                return self
            rclpy = import_rclpy()
            from rclpy.executors import SingleThreadedExecutor
            from rclpy.signals import SignalHandlerOptions

            context = rclpy.Context()
            try:
                rclpy.init(
                    args=[],  # never sys.argv
                    context=context,
                    domain_id=self.domain_id,
                    signal_handler_options=SignalHandlerOptions.NO,
                )
                node = rclpy.create_node(
                    self.node_name,
                    namespace=self.namespace or None,
                    context=context,
                    cli_args=["--ros-args", *self.ros_args] if self.ros_args else None,
                    use_global_arguments=False,
                    start_parameter_services=False,
                    enable_rosout=self.enable_rosout,
                )
            except Exception as exc:  # rclpy's own exception types: bad names, bad arguments, RCLError
                with contextlib.suppress(Exception):
                    context.try_shutdown()
                raise TransportError(f"cannot start rclpy on domain {self.domain_id}: {exc}") from exc
            from rclpy.utilities import get_rmw_implementation_identifier

            self._rmw = str(get_rmw_implementation_identifier())
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            node.create_timer(GRAPH_POLL_S, self._poll_graph)
            self._context, self._node, self._executor = context, node, executor
            self._stop.clear()
            self._thread = threading.Thread(target=self._spin, name=f"edgefuse-ros2-{self.node_name}", daemon=True)
            self._thread.start()
            self._opens += 1
            return self

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException, ShutdownException

        executor, context = self._executor, self._context
        while not self._stop.is_set() and context.ok():
            try:
                executor.spin_once(timeout_sec=self.spin_timeout_s)
            except (ExternalShutdownException, ShutdownException):
                break
            except Exception as exc:  # keep delivering: count what rclpy or a timer raised
                self._executor_errors += 1
                self._last_executor_error = f"{type(exc).__name__}: {exc}"
                time.sleep(self.spin_timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._node is None:
                return
            with self._items_lock:
                items: list[Ros2Subscription | Ros2Publisher] = [*self._subs, *self._pubs]
            for item in items:
                item.close()
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=max(5.0, 20 * self.spin_timeout_s))
            node, executor, context = self._node, self._executor, self._context
            self._node = self._executor = self._context = self._thread = None
            with contextlib.suppress(Exception):
                executor.shutdown(timeout_sec=1.0)
            with contextlib.suppress(Exception):
                node.destroy_node()
            with contextlib.suppress(Exception):
                context.try_shutdown()

    def __enter__(self) -> Ros2Transport:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_node(self) -> Any:
        if self._node is None:
            raise TransportError("the ros2 transport is not open (call open() or use it in a with block)")
        return self._node

    def _forget(self, item: Ros2Subscription | Ros2Publisher) -> None:
        with self._items_lock:
            group: list[Any] = self._subs if isinstance(item, Ros2Subscription) else self._pubs
            if item in group:
                group.remove(item)
                self._retired.add(item.counters)

    # -- endpoints -------------------------------------------------------------------------------------
    def subscribe(self, topic: str, msgtype: str, callback: Callback, qos: QoS = SENSOR_DATA) -> Ros2Subscription:
        """Deliver each message of ``msgtype`` on ``topic`` as :class:`Received` (raw CDR bytes) to ``callback``.

        Raises:
            TransportError: not open, no Python message class for ``msgtype``, or rclpy refused the topic.
        """
        msgtype = normalize_msgtype(msgtype)
        with self._lock:
            sub = Ros2Subscription(self, topic, msgtype, callback, qos)
            with self._items_lock:
                self._subs.append(sub)
            return sub

    def advertise(self, topic: str, msgtype: str, qos: QoS = RELIABLE) -> Ros2Publisher:
        """A publisher of CDR-serialized ``msgtype`` messages on ``topic``.

        Raises:
            TransportError: not open, no Python message class for ``msgtype``, or rclpy refused the topic.
        """
        msgtype = normalize_msgtype(msgtype)
        with self._lock:
            pub = Ros2Publisher(self, topic, msgtype, qos)
            with self._items_lock:
                self._pubs.append(pub)
            return pub

    # -- graph and counters ----------------------------------------------------------------------------
    def _poll_graph(self) -> None:
        """Remember every remote endpoint of another type on a topic we subscribe to or publish."""
        node = self._node
        if node is None:
            return
        with self._items_lock:
            ours = [(s.topic, s.msgtype, True) for s in self._subs] + [(p.topic, p.msgtype, False) for p in self._pubs]
        for topic, msgtype, subscribed in ours:
            try:
                infos = (
                    node.get_publishers_info_by_topic(topic)
                    if subscribed
                    else node.get_subscriptions_info_by_topic(topic)
                )
            except Exception:  # the node is shutting down
                return
            for info in infos:
                if info.topic_type != msgtype:
                    gid = bytes(info.endpoint_gid).hex()
                    with self._items_lock:
                        self._mismatched.add((topic, info.topic_type, gid))

    def stats(self) -> dict[str, Any]:
        """``type_mismatch`` (remote endpoints of another type seen on our topics), ``qos_incompatible``,
        ``messages_lost``, ``received``, ``published``, ``callback_errors``, ``executor_errors`` and
        per-topic counters; JSON-ready."""
        if self._node is not None:
            self._poll_graph()
        with self._items_lock:
            subs_list, pubs_list = list(self._subs), list(self._pubs)
            total = _Counters()
            total.add(self._retired)
            mismatched = sorted(f"{t} {ty}" for t, ty, _ in self._mismatched)
        for counters in [*(s.counters for s in subs_list), *(p.counters for p in pubs_list)]:
            total.add(counters)
        topics: dict[str, Any] = {}
        for s in subs_list:
            topics[f"sub {s.topic}"] = {
                "msgtype": s.msgtype,
                "received": s.counters.received,
                "callback_errors": s.counters.callback_errors,
                "qos_incompatible": s.counters.qos_incompatible,
                "messages_lost": s.counters.messages_lost,
            }
        for p in pubs_list:
            topics[f"pub {p.topic}"] = {
                "msgtype": p.msgtype,
                "published": p.counters.published,
                "qos_incompatible": p.counters.qos_incompatible,
            }
        return {
            "transport": self.name,
            "open": self._node is not None,
            "opens": self._opens,
            "rmw": self._rmw,
            "domain_id": self.domain_id,
            "subscriptions": len(subs_list),
            "publishers": len(pubs_list),
            "received": total.received,
            "published": total.published,
            "callback_errors": total.callback_errors,
            "qos_incompatible": total.qos_incompatible,
            "messages_lost": total.messages_lost,
            "type_mismatch": len(mismatched),
            "type_mismatch_seen": mismatched,
            "executor_errors": self._executor_errors,
            "last_executor_error": self._last_executor_error,
            "topics": topics,
        }
