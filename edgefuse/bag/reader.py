"""Reading ROS 1 bags and ROS 2 bags (sqlite3 / MCAP) through ``rosbags.highlevel.AnyReader``.

Message types: AnyReader builds its typestore from the definitions stored in the bag (every ROS 1
bag, ROS 2 bags written with definitions).  Types a bag uses but does not define (e.g. rosbag2
metadata version ≤ 7 sqlite3 bags) are then taken from edgefuse's typestore (or the ``typestore``
you pass); types found in neither are listed in :attr:`BagReader.undefined_types` and decoding
them raises :class:`BagError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
from rosbags.highlevel import AnyReader
from rosbags.interfaces import MessageDefinitionFormat

from edgefuse.bag._errors import bag_errors
from edgefuse.envelope import Envelope
from edgefuse.errors import BagError, MessageError
from edgefuse.msgs import fastpath
from edgefuse.msgs.convert import can_convert, stamp_of, to_payload
from edgefuse.msgs.serde import deserialize
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

__all__ = ["BagReader", "RawMessage", "TopicInfo", "open_bag", "resolve_bag_paths"]

OnError = Literal["raise", "skip"]
PathsArg = Path | str | Sequence[Path | str]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One serialised message as stored in the bag.

    Attributes:
        topic: topic name.
        msgtype: normalised type name (``pkg/msg/Type``).
        recv_ns: bag record time in ns.
        rawdata: the serialised bytes (CDR for ROS 2 bags, ROS 1 serialisation for ``.bag``).
        index: 0-based position of the message among this iteration's messages on ``topic``.
    """

    topic: str
    msgtype: str
    recv_ns: int
    rawdata: bytes | memoryview
    index: int = 0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What the bag holds on one topic.

    Attributes:
        msgtype: normalised type name.
        count: number of messages.
        definition: where the type definition comes from: ``"bag"`` (stored in the bag),
            ``"typestore"`` (edgefuse's or the given typestore) or ``"none"`` (cannot be decoded).
        convertible: whether :func:`edgefuse.msgs.to_payload` converts this type.
        connections: number of bag connections carrying the topic.
    """

    msgtype: str
    count: int
    definition: str
    convertible: bool
    connections: int = 1


def resolve_bag_paths(paths: PathsArg) -> list[Path]:
    """Normalise what :func:`open_bag` accepts into the path list AnyReader wants.

    * ROS 1: one or more ``.bag`` files;
    * ROS 2: one bag folder (with ``metadata.yaml``), or a bare ``.mcap``/``.db3`` file — opened
      through its folder when that folder's ``metadata.yaml`` lists it — or a folder without
      ``metadata.yaml`` holding exactly one ``.mcap``/``.db3`` file.

    Raises:
        FileNotFoundError: a path does not exist.
        BagError: not a bag, or a mix rosbags cannot read together.
    """
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise BagError("no bag path given")
    for item in items:
        if not item.exists():
            raise FileNotFoundError(f"bag not found: {item}")
    if all(p.suffix == ".bag" and p.is_file() for p in items):
        return items
    if len(items) > 1:
        raise BagError(
            "several paths are only supported for ROS 1 .bag files; a ROS 2 bag is one folder", file=items[0]
        )
    path = items[0]
    if path.is_dir():
        if (path / "metadata.yaml").exists():
            return [path]
        storage = sorted([*path.glob("*.mcap"), *path.glob("*.db3")])
        if len(storage) == 1:
            return storage
        raise BagError(
            "not a rosbag2 folder (no metadata.yaml and not exactly one .mcap/.db3 file)", file=path
        )
    if path.suffix in {".mcap", ".db3"}:
        meta = path.parent / "metadata.yaml"
        if meta.exists() and path.name in meta.read_text(errors="replace"):
            return [path.parent]
        return [path]
    raise BagError(
        f"not a bag: unknown file type {path.suffix!r} (expected .bag, .mcap, .db3 or a folder)", file=path
    )


def _type_closure(store: Typestore, name: str, have: set[str]) -> dict[str, Any]:
    """``name`` and every type it uses from ``store``, except those in ``have``."""
    out: dict[str, Any] = {}
    todo = [name]
    while todo:
        typ = todo.pop()
        if typ in have or typ in out or typ not in store.fielddefs:
            continue
        out[typ] = store.fielddefs[typ]
        for _, (node, spec) in store.fielddefs[typ][1]:
            if int(node) == 2:
                todo.append(cast("str", spec))
            elif int(node) in {3, 4} and int(spec[0][0]) == 2:
                todo.append(cast("str", spec[0][1]))
    return out


class BagReader:
    """A ROS 1 / ROS 2 bag opened for reading (use :func:`open_bag`; a context manager).

    ``on_error`` decides what :meth:`envelopes` and :meth:`columns` do with a message that fails to
    decode or convert: ``"raise"`` (BagError naming topic and index) or ``"skip"`` (count it in
    :attr:`skipped`, per topic in :attr:`skipped_by_topic`).

    ``fast_decode`` (default on): Imu, Odometry and NavSatFix messages whose definition has the
    standard layout are decoded straight from their bytes by :mod:`edgefuse.msgs.fastpath` (same
    payloads, several times faster); bytes the fast path finds inconsistent go through the normal
    path, which decides (payload or error).
    """

    def __init__(
        self,
        paths: PathsArg,
        *,
        typestore: Typestore | None = None,
        on_error: OnError = "raise",
        fast_decode: bool = True,
    ):
        if on_error not in {"raise", "skip"}:
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.paths = resolve_bag_paths(paths)
        self.on_error: OnError = on_error
        self.skipped = 0
        self.skipped_by_topic: dict[str, int] = {}
        self.undefined_types: set[str] = set()
        self._default = typestore if typestore is not None else get_typestore()
        self._reader: AnyReader | None = None
        self._definition: dict[str, str] = {}
        self.fast_decode = fast_decode
        self._fast: dict[str, bool] = {}

    @property
    def file(self) -> Path:
        """The (first) bag path, for messages."""
        return self.paths[0]

    # -- lifecycle
    def open(self) -> BagReader:
        """Open the bag and complete its typestore.

        Raises:
            BagError: corrupt/truncated bag, not a bag, or definitions that do not parse.
        """
        if self._reader is not None:
            return self
        for path in self.paths:
            if path.is_file() and path.suffix == ".bag":
                with path.open("rb") as f:
                    magic = f.read(13)
                if magic != b"#ROSBAG V2.0\n":
                    raise BagError("not a ROS 1 bag (no '#ROSBAG V2.0' header)", file=path)
        with bag_errors(self.file, "cannot open bag"):
            reader = AnyReader(self.paths, default_typestore=self._default)
            reader.open()
        self._reader = reader
        try:
            self._complete_types(reader)
        except BaseException:
            self.close()
            raise
        return self

    def _complete_types(self, reader: AnyReader) -> None:
        """Register types the bag uses but does not define from the default typestore."""
        store = reader.typestore
        defined = {
            normalize_msgtype(c.msgtype)
            for c in reader.connections
            if c.msgdef.format != MessageDefinitionFormat.NONE
        }
        for conn in reader.connections:
            name = normalize_msgtype(conn.msgtype)
            if name in store.fielddefs:
                self._definition[name] = "bag" if name in defined else "typestore"
                continue
            missing = _type_closure(self._default, name, set(store.fielddefs))
            if name in missing:
                with bag_errors(self.file, f"cannot register type {name}"):
                    store.register(missing)
                self._definition[name] = "typestore"
            else:
                self._definition[name] = "none"
                self.undefined_types.add(name)

    def close(self) -> None:
        """Close the bag (idempotent)."""
        reader, self._reader = self._reader, None
        self._fast.clear()
        if reader is not None:
            reader.close()

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def reader(self) -> AnyReader:
        """The underlying open rosbags AnyReader."""
        if self._reader is None:
            raise BagError("bag is not open (use open_bag(...) as a context manager)", file=self.file)
        return self._reader

    # -- metadata
    @property
    def is_ros1(self) -> bool:
        """True for ROS 1 ``.bag`` files (ROS 1 serialisation), False for ROS 2 (CDR)."""
        return not self.reader.is2

    @property
    def typestore(self) -> Typestore:
        """The typestore messages are decoded with (bag definitions + completed types)."""
        return self.reader.typestore

    @property
    def connections(self) -> list[Connection]:
        """rosbags connections of the bag."""
        return list(self.reader.connections)

    @property
    def start_ns(self) -> int:
        """Earliest record time in ns."""
        return int(self.reader.start_time)

    @property
    def end_ns(self) -> int:
        """Latest record time in ns (rosbags reports one past the last message)."""
        return int(self.reader.end_time)

    @property
    def message_count(self) -> int:
        """Number of messages in the bag."""
        return int(self.reader.message_count)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name → :class:`TopicInfo`, sorted by name."""
        out: dict[str, TopicInfo] = {}
        for name, info in sorted(self.reader.topics.items()):
            msgtype = normalize_msgtype(info.msgtype or info.connections[0].msgtype)
            out[name] = TopicInfo(
                msgtype=msgtype,
                count=int(info.msgcount),
                definition=self._definition.get(msgtype, "none"),
                convertible=can_convert(msgtype),
                connections=len(info.connections),
            )
        return out

    # -- messages
    def messages(
        self,
        topics: Sequence[str] | str | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> Iterator[RawMessage]:
        """Serialised messages in record-time order, optionally only ``topics`` and only
        ``start_ns <= recv_ns < stop_ns``.

        Raises:
            BagError: an unknown topic name, or the bag turns out corrupt while reading.
        """
        reader = self.reader
        conns = self._connections_for(topics)
        counters: dict[str, int] = {}
        names: dict[str, str] = {}
        total = 0
        iterator = reader.messages(connections=conns, start=start_ns, stop=stop_ns)
        while True:
            try:
                item = next(iterator, None)
            except BaseException:
                with bag_errors(self.file, f"corrupt bag after {total} messages"):
                    raise
            if item is None:
                return
            conn, recv_ns, rawdata = item
            topic = conn.topic
            index = counters.get(topic, 0)
            counters[topic] = index + 1
            total += 1
            msgtype = names.get(conn.msgtype)
            if msgtype is None:
                msgtype = names[conn.msgtype] = normalize_msgtype(conn.msgtype)
            yield RawMessage(topic, msgtype, int(recv_ns), rawdata, index)

    def _connections_for(self, topics: Sequence[str] | str | None) -> list[Connection]:
        if topics is None:
            return []
        wanted = {topics} if isinstance(topics, str) else set(topics)
        conns = [c for c in self.reader.connections if c.topic in wanted]
        unknown = wanted - {c.topic for c in conns}
        if unknown:
            raise BagError(
                f"no topic(s) {sorted(unknown)} in bag; it has {sorted(self.reader.topics)}", file=self.file
            )
        if not conns:
            raise BagError("no topics selected", file=self.file)
        return conns

    def decode(self, raw: RawMessage) -> Any:
        """Deserialise a :class:`RawMessage` into a rosbags message object (zero-copy ``uint8[]``).

        Raises:
            BagError: the type has no definition, or the bytes do not decode.
        """
        if raw.msgtype in self.undefined_types:
            raise BagError(
                f"message type {raw.msgtype} is neither defined in the bag nor in the typestore; "
                "register it (edgefuse.msgs.register_definitions on new_typestore()) and pass typestore=",
                file=self.file,
                topic=raw.topic,
            )
        try:
            return deserialize(
                raw.rawdata, raw.msgtype, fmt="ros1" if self.is_ros1 else "cdr", typestore=self.typestore
            )
        except MessageError as err:
            raise BagError(
                f"message {raw.index} does not decode: {err.message}",
                file=self.file,
                topic=raw.topic,
                stamp_ns=raw.recv_ns,
            ) from None

    @property
    def _fmt(self) -> Literal["ros1", "cdr"]:
        return "ros1" if self.is_ros1 else "cdr"

    def _use_fast(self, msgtype: str) -> bool:
        """Whether ``msgtype`` is decoded by the fast path in this bag (cached per type)."""
        use = self._fast.get(msgtype)
        if use is None:
            use = (
                self.fast_decode
                and msgtype not in self.undefined_types
                and fastpath.supports(msgtype, fmt=self._fmt, typestore=self.typestore)
            )
            self._fast[msgtype] = use
        return use

    def _convert(self, raw: RawMessage) -> tuple[Any, int | None, bool]:
        """``(payload, header stamp or None, converted)`` of one message.

        Raises:
            BagError: the message does not decode or convert.
        """
        if self._use_fast(raw.msgtype):
            try:
                payload = fastpath.decode(raw.rawdata, raw.msgtype, self._fmt)
            except MessageError:
                pass  # the normal path below gives the verdict
            else:
                return payload, payload.stamp_ns, True
        msg = self.decode(raw)
        if not can_convert(raw.msgtype):
            return msg, stamp_of(msg), False
        try:
            payload = to_payload(msg, raw.msgtype)
        except MessageError as err:
            raise BagError(
                f"message {raw.index} does not convert: {err.message}",
                file=self.file,
                topic=raw.topic,
                stamp_ns=raw.recv_ns,
            ) from None
        return payload, stamp_of(msg), True

    def _skip(self, topic: str) -> None:
        self.skipped += 1
        self.skipped_by_topic[topic] = self.skipped_by_topic.get(topic, 0) + 1

    def envelopes(
        self,
        topics: Sequence[str] | str | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> Iterator[Envelope]:
        """Decoded, converted messages as :class:`Envelope`.

        ``stamp_ns`` is the header stamp when the message has one, else the record time;
        ``recv_ns`` is the record time; ``meta['index']`` is :attr:`RawMessage.index`.  Messages of
        types edgefuse does not convert carry the decoded rosbags message as payload and
        ``meta['unconverted'] = True``.  Failures follow ``on_error`` (see class doc).
        """
        for raw in self.messages(topics, start_ns, stop_ns):
            try:
                payload, stamp, converted = self._convert(raw)
            except BagError:
                if self.on_error == "raise":
                    raise
                self._skip(raw.topic)
                continue
            meta: dict[str, Any] = {"index": raw.index}
            if not converted:
                meta["unconverted"] = True
            yield Envelope(
                topic=raw.topic,
                stamp_ns=stamp if stamp is not None else raw.recv_ns,
                recv_ns=raw.recv_ns,
                payload=payload,
                msgtype=raw.msgtype,
                meta=meta,
            )

    def columns(
        self,
        topics: Sequence[str] | str,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> dict[str, dict[str, npt.NDArray[Any]]]:
        """Whole topics of Imu, Odometry or NavSatFix messages as columns, for offline use.

        Returns topic → the columns of :func:`edgefuse.msgs.fastpath.decode_columns` (one row per
        message, in record-time order) plus ``recv_ns`` (N,) int64 record times, ``index`` (N,)
        int64 (:attr:`RawMessage.index`) and ``order`` (N,) int64: each message's position among
        all messages read on ``topics`` (their interleaving in the bag).  A topic with no message in
        the range gets empty columns.  Failures follow ``on_error``; a skipped message leaves no row
        (``order`` then has gaps).

        Raises:
            BagError: an unknown topic, a type other than the three, or (``on_error="raise"``) a
                message that does not decode.
        """
        wanted = [topics] if isinstance(topics, str) else list(topics)
        conns = self._connections_for(wanted)
        types = {c.topic: normalize_msgtype(c.msgtype) for c in conns}
        for topic, msgtype in types.items():
            if msgtype not in fastpath.FAST_MSGTYPES:
                raise BagError(
                    f"columns() reads {sorted(fastpath.FAST_MSGTYPES)}, not {msgtype}", file=self.file, topic=topic
                )
        raws: dict[str, list[RawMessage]] = {t: [] for t in types}
        orders: dict[str, list[int]] = {t: [] for t in types}
        for i, raw in enumerate(self.messages(wanted, start_ns, stop_ns)):
            raws[raw.topic].append(raw)
            orders[raw.topic].append(i)
        out: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for topic, items in raws.items():
            msgtype = types[topic]
            keep = np.ones(len(items), np.bool_)
            cols: dict[str, npt.NDArray[Any]] | None = None
            if self._use_fast(msgtype):
                try:
                    cols = fastpath.decode_columns([r.rawdata for r in items], msgtype, self._fmt)
                except MessageError:
                    cols = None  # one message at a time below, with on_error
            if cols is None:
                payloads = []
                for k, raw in enumerate(items):
                    try:
                        payloads.append(self._convert(raw)[0])
                    except BagError:
                        if self.on_error == "raise":
                            raise
                        self._skip(topic)
                        keep[k] = False
                cols = fastpath.stack_payloads(payloads, msgtype)
            cols["recv_ns"] = np.array([r.recv_ns for r in items], np.int64)[keep]
            cols["index"] = np.array([r.index for r in items], np.int64)[keep]
            cols["order"] = np.array(orders[topic], np.int64)[keep]
            out[topic] = cols
        return out


def open_bag(
    paths: PathsArg, *, typestore: Typestore | None = None, on_error: OnError = "raise", fast_decode: bool = True
) -> BagReader:
    """Open a ROS 1 bag (one or more ``.bag`` files) or a ROS 2 bag (folder, ``.mcap`` or ``.db3``).

    Use as a context manager: ``with open_bag(p) as bag: for env in bag.envelopes(): ...``.
    ``typestore`` supplies types the bag does not define (default: edgefuse's typestore).
    ``on_error`` and ``fast_decode``: see :class:`BagReader`.

    Raises:
        FileNotFoundError: a path does not exist.
        BagError: not a bag, truncated or corrupt (raised when opened, i.e. on ``with``).
    """
    return BagReader(paths, typestore=typestore, on_error=on_error, fast_decode=fast_decode)
