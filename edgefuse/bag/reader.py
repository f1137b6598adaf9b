"""Reading ROS 1 bags and ROS 2 bags (sqlite3 / MCAP) through ``rosbags.highlevel.AnyReader``.

Integrity: on open, the container is checked independently of rosbags (ROS 1: record structure and
index cross-checks; MCAP: footer and summary CRC), and after a complete pass over the messages the
counts read are compared with those the bag lists.  Problems are listed in
:attr:`BagReader.problems` and emitted as :class:`~edgefuse.bag.integrity.BagIntegrityWarning`, or
raised as :class:`~edgefuse.bag.BagIntegrityError` with ``strict=True``.  A truncated MCAP (or one
whose index fails its CRC) is read from its intact chunks, with a warning saying how much was
recovered.  See :mod:`edgefuse.bag.integrity`.

Message types: AnyReader builds its typestore from the definitions stored in the bag (every ROS 1
bag, ROS 2 bags written with definitions).  Types a bag uses but does not define (e.g. rosbag2
metadata version ≤ 7 sqlite3 bags) are then taken from edgefuse's typestore (or the ``typestore``
you pass); types found in neither are listed in :attr:`BagReader.undefined_types` and decoding
them raises :class:`BagError`.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
from rosbags.highlevel import AnyReader
from rosbags.interfaces import MessageDefinitionFormat

from edgefuse.bag import _mcap, _ros1
from edgefuse.bag._errors import BagIntegrityError, bag_errors
from edgefuse.bag.integrity import BagIntegrityWarning, IntegrityProblem, summarize
from edgefuse.envelope import Envelope
from edgefuse.errors import BagError, MessageError, ParameterError
from edgefuse.msgs import fastpath
from edgefuse.msgs.convert import can_convert, decode_to_payload
from edgefuse.msgs.serde import deserialize
from edgefuse.msgs.typestore import get_typestore, normalize_msgtype

if TYPE_CHECKING:
    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

__all__ = ["BagReader", "RawMessage", "TopicInfo", "open_bag", "resolve_bag_paths"]

OnError = Literal["raise", "skip"]
Verify = Literal["index", "full"]
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

    ``verify``: ``"index"`` (default) checks the container's structure and index on open (cheap: no
    chunk is decompressed) and the counts read after a complete pass; ``"full"`` also decompresses
    every chunk on open to check its records against the index (ROS 1) or its CRC and the
    data-section CRC (MCAP).  ``strict``: an integrity problem raises :class:`BagIntegrityError`
    (on open, or at the end of a complete pass for count mismatches) instead of a
    :class:`BagIntegrityWarning`.  Either way every problem is kept in :attr:`problems`.

    Attributes:
        problems: the :class:`~edgefuse.bag.integrity.IntegrityProblem` entries found so far.
        recovery: for a truncated/damaged MCAP read from its intact chunks, the scan that recovered
            them (``stop_offset``, ``stop_reason``, ``message_count``, ``chunks`` …), else None.
        crc: MCAP only: ``"verified"`` (every CRC present and matching as far as checked),
            ``"absent"`` (the file has no CRCs: corruption cannot be detected), ``"partial"``; None for
            other storages.
    """

    def __init__(
        self,
        paths: PathsArg,
        *,
        typestore: Typestore | None = None,
        on_error: OnError = "raise",
        fast_decode: bool = True,
        strict: bool = False,
        verify: Verify = "index",
    ):
        if on_error not in {"raise", "skip"}:
            raise ParameterError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        if verify not in {"index", "full"}:
            raise ParameterError(f"verify must be 'index' or 'full', not {verify!r}")
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
        self.strict = strict
        self.verify: Verify = verify
        self.problems: list[IntegrityProblem] = []
        self.recovery: _mcap.ScanResult | None = None
        self.crc: str | None = None
        self._announced = 0
        self._tmpdir: Path | None = None
        self._layouts: list[_ros1.Ros1Layout] = []
        self._mcap_scans: dict[Path, _mcap.ScanResult] = {}
        self._listed: dict[str, int] = {}
        self._indexed: dict[str, int] | None = None
        self._count_reported: set[str] = set()

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
        try:
            paths = self._check_containers()
            with bag_errors(self.file, "cannot open bag"):
                reader = AnyReader(paths, default_typestore=self._default)
                reader.open()
            self._reader = reader
            for conn in reader.connections:
                if not isinstance(conn.topic, str) or not isinstance(conn.msgtype, str) or not conn.msgtype:
                    raise BagError(f"corrupt bag: connection {conn.id} has no topic name or type "
                                   f"({conn.topic!r}, {conn.msgtype!r})", file=self.file)
            self._complete_types(reader)
            self._compare_with_reader(reader)
            self._announce()
        except BaseException:
            self.close()
            raise
        return self

    # -- integrity
    def _add(self, problems: Sequence[IntegrityProblem]) -> None:
        known = {(p.kind, p.topic, p.message) for p in self.problems}
        self.problems.extend(p for p in problems if (p.kind, p.topic, p.message) not in known)

    def _announce(self) -> None:
        """Warn about the problems found since the last call; with ``strict``, raise instead."""
        new = self.problems[self._announced :]
        self._announced = len(self.problems)
        if not new:
            return
        if self.strict:
            raise BagIntegrityError(summarize(new), file=new[0].file, problems=self.problems)
        for problem in new:
            warnings.warn(str(problem), BagIntegrityWarning, stacklevel=4)

    def _mcap_files(self) -> list[Path]:
        out: list[Path] = []
        for path in self.paths:
            if path.is_file() and path.suffix == ".mcap":
                out.append(path)
            elif path.is_dir():
                out.extend(sorted(path.glob("*.mcap")))
        return out

    def _check_containers(self) -> list[Path]:
        """Check each storage file on its own (see the module doc); the paths AnyReader should open
        (a recovered copy replaces a truncated/damaged MCAP)."""
        paths = list(self.paths)
        for path in self.paths:
            if path.is_file() and path.suffix == ".bag":
                with bag_errors(path, "cannot read the bag's structure"):
                    layout = _ros1.walk(path, deep=self.verify == "full")
                self._layouts.append(layout)
                self._add(_ros1.check(layout, str(path)))
        files = self._mcap_files()
        crcs: set[str] = set()
        for mcap in files:
            with bag_errors(mcap, "cannot read the MCAP footer"):
                tail = _mcap.check_tail(mcap)
            if tail.complete and tail.summary_ok is not False:
                crcs.add("verified" if tail.summary_crc else "absent")
                if self.verify == "full":
                    crcs.add(self._full_mcap_check(mcap))
                continue
            if len(files) > 1:
                raise BagIntegrityError(
                    f"{mcap.name} is truncated or damaged ({tail.problem}); repair it with `edgefuse repair` "
                    "before reading this multi-file bag", file=mcap)
            paths = [self._recover(mcap, tail)]
            crcs.add("partial")
        if files:
            self.crc = crcs.pop() if len(crcs) == 1 else "partial"
        return paths

    def _full_mcap_check(self, mcap: Path) -> str:
        """Decompress every chunk and verify every CRC; the CRC status of the file."""
        with bag_errors(mcap, "cannot scan the MCAP file"):
            res = _mcap.scan(mcap)
        self._mcap_scans[mcap] = res
        name = str(mcap)
        self._add(_chunk_problems(res, name))
        if res.stop_reason is not None:
            self._add([IntegrityProblem("damaged", f"data section damaged at byte {res.stop_offset} of {res.size}: "
                                                   f"{res.stop_reason}", name, offset=res.stop_offset)])
        if res.data_crc_ok is False:
            self._add([IntegrityProblem("data_crc", "the data section fails its CRC check (bytes outside the "
                                                    "chunks, e.g. schema, channel or metadata records, were altered)",
                                        name)])
        if not res.chunks or any(c.status == "no_crc" for c in res.chunks) or not res.data_crc_stored:
            return "absent" if all(c.status == "no_crc" for c in res.chunks) else "partial"
        return "verified"

    def _recover(self, mcap: Path, tail: _mcap.TailInfo) -> Path:
        """Copy what is intact in ``mcap`` (a truncated file, or one whose index fails its CRC) into a
        temporary indexed MCAP, and report what was recovered."""
        self._tmpdir = Path(tempfile.mkdtemp(prefix="edgefuse-recovered-"))
        out = self._tmpdir / "recovered.mcap"
        with bag_errors(mcap, "cannot recover the damaged MCAP file"):
            res = _mcap.recover(mcap, out, compression="")
        self.recovery = res
        name = str(mcap)
        if not res.profile:
            raise BagError(f"not a readable MCAP file: {res.stop_reason}", file=mcap)
        self._add([_recovery_problem(res, tail, name)])
        self._add(_chunk_problems(res, name))
        return out

    def _compare_with_reader(self, reader: AnyReader) -> None:
        """Messages per topic the bag lists (``_listed``: rosbags' topic counts, from chunk-info records,
        MCAP statistics or rosbag2 metadata; ROS 1 also ``_indexed``: its index-data records, walked
        independently) against what rosbags will read."""
        will_read: dict[str, int] = {}
        for conn in reader.connections:
            will_read[conn.topic] = will_read.get(conn.topic, 0) + int(conn.msgcount)
        self._listed = {name: int(info.msgcount) for name, info in reader.topics.items()}
        if self._layouts:
            self._check_definitions(reader)
        if self._layouts and not any(layout.damage for layout in self._layouts):
            indexed: dict[str, int] = {}
            for layout in self._layouts:
                for conn_id, n in layout.indexed_counts().items():
                    if conn_id in layout.connections:  # index data of unknown connections: reported by the walk
                        indexed[layout.topic(conn_id)] = indexed.get(layout.topic(conn_id), 0) + n
            self._indexed = indexed
            for topic in sorted(set(indexed) | set(will_read) | set(self._listed)):
                listed, idx, got = self._listed.get(topic, 0), indexed.get(topic, 0), will_read.get(topic, 0)
                if not listed == idx == got:
                    self._count_reported.add(topic)
                    self._add([IntegrityProblem(
                        "count", f"topic {topic}: its chunk-info records list {listed} messages, its index data {idx}; "
                                 f"{got} can be read", str(self.file), topic=topic, expected=max(listed, idx),
                        read=got)])
        for mcap, res in self._mcap_scans.items():
            found: dict[str, int] = {}
            for channel, n in res.counts.items():
                found[res.topic(channel)] = found.get(res.topic(channel), 0) + n
            for topic in sorted(set(found) | set(self._listed)):
                exp, got = self._listed.get(topic, 0), found.get(topic, 0)
                if exp != got and not res.bad_chunks:
                    self._count_reported.add(topic)
                    self._add([IntegrityProblem(
                        "count", f"topic {topic}: the summary lists {exp} messages, the chunks hold {got}",
                        str(mcap), topic=topic, expected=exp, read=got)])

    def _check_definitions(self, reader: AnyReader) -> None:
        """ROS 1: each connection's md5sum against the md5 of its message definition, and connections of
        one type against each other (a changed type name or definition would otherwise decode the
        bytes as something else)."""
        by_type: dict[str, list[Connection]] = {}
        for conn in reader.connections:
            by_type.setdefault(conn.msgtype, []).append(conn)
        for msgtype, conns in by_type.items():
            if len({(c.msgdef.data, c.digest) for c in conns}) > 1:
                topics = ", ".join(sorted({c.topic for c in conns}))
                self._add([IntegrityProblem(
                    "definition", f"the connections of {msgtype} ({topics}) carry different message definitions or "
                                  "md5sums (a connection record was altered)", str(self.file))])
        for conn in reader.connections:
            if reader.is2 or not conn.digest:
                continue
            try:
                md5 = reader.typestore.generate_msgdef(conn.msgtype, ros_version=1)[1]
            except Exception:  # a type rosbags cannot describe is reported elsewhere
                continue
            if md5 != conn.digest:
                self._add([IntegrityProblem(
                    "definition", f"topic {conn.topic}: the md5sum stored for {conn.msgtype} does not match its "
                                  "message definition (the connection record was altered)", str(self.file),
                    topic=conn.topic)])

    def _check_counts(self, counters: dict[str, int], selected: Sequence[str] | None) -> None:
        """After a complete pass: messages read per topic against those the bag lists."""
        topics = set(counters) | (set(selected) if selected is not None else set(self._listed))
        problems = []
        for topic in sorted(topics - self._count_reported):
            listed, got = self._listed.get(topic, 0), counters.get(topic, 0)
            indexed = None if self._indexed is None else self._indexed.get(topic, 0)
            if got != listed or (indexed is not None and got != indexed):
                also = "" if indexed is None or indexed == listed else f" (its index data: {indexed})"
                self._count_reported.add(topic)
                problems.append(IntegrityProblem(
                    "count", f"topic {topic}: read {got} messages, the bag lists {listed}{also}", str(self.file),
                    topic=topic, expected=listed, read=got))
        self._add(problems)
        self._announce()

    def _locate_damage(self) -> IntegrityProblem | None:
        """After rosbags failed mid-file on an MCAP: which chunk is bad (named with its topics)."""
        for mcap in self._mcap_files():
            try:
                res = _mcap.scan(mcap)
            except OSError:
                return None
            bad = _chunk_problems(res, str(mcap))
            if bad:
                return bad[0]
        return None

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
        """Close the bag (idempotent); removes the temporary copy of a recovered MCAP."""
        reader, self._reader = self._reader, None
        self._fast.clear()
        try:
            if reader is not None:
                reader.close()
        finally:
            tmp, self._tmpdir = self._tmpdir, None
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

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
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as err:
                located = None if isinstance(err, OSError) and err.errno else self._locate_damage()
                if located is not None:
                    self._add([located])
                    raise BagIntegrityError(f"corrupt bag after {total} messages: {located.message}",
                                            file=located.file, problems=self.problems) from None
                with bag_errors(self.file, f"corrupt bag after {total} messages"):
                    raise
            if item is None:
                if start_ns is None and stop_ns is None:
                    self._check_counts(counters, None if topics is None else [c.topic for c in conns])
                return
            conn, recv_ns, rawdata = item
            if not isinstance(rawdata, (bytes, bytearray, memoryview)) or not isinstance(recv_ns, int):
                # sqlite3 hands out whatever a damaged row holds (text, NULL, a float)
                raise BagError(f"corrupt bag after {total} messages: a message's data or time is not stored as "
                               f"bytes/integer ({type(rawdata).__name__}, {type(recv_ns).__name__})",
                               file=self.file, topic=conn.topic if isinstance(conn.topic, str) else None)
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
        try:
            return decode_to_payload(
                raw.rawdata, raw.msgtype, self._fmt, fast=self._use_fast(raw.msgtype), decode=lambda: self.decode(raw)
            )
        except MessageError as err:
            raise BagError(
                f"message {raw.index} does not convert: {err.message}",
                file=self.file,
                topic=raw.topic,
                stamp_ns=raw.recv_ns,
            ) from None

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
    paths: PathsArg,
    *,
    typestore: Typestore | None = None,
    on_error: OnError = "raise",
    fast_decode: bool = True,
    strict: bool = False,
    verify: Verify = "index",
) -> BagReader:
    """Open a ROS 1 bag (one or more ``.bag`` files) or a ROS 2 bag (folder, ``.mcap`` or ``.db3``).

    Use as a context manager: ``with open_bag(p) as bag: for env in bag.envelopes(): ...``.
    ``typestore`` supplies types the bag does not define (default: edgefuse's typestore).
    ``on_error``, ``fast_decode``, ``strict`` and ``verify``: see :class:`BagReader`.

    Raises:
        FileNotFoundError: a path does not exist.
        BagError: not a bag, or corrupt (raised when opened, i.e. on ``with``, or while reading);
            :class:`BagIntegrityError` for a CRC mismatch, or any integrity problem with ``strict``.
    """
    return BagReader(paths, typestore=typestore, on_error=on_error, fast_decode=fast_decode, strict=strict,
                     verify=verify)


def _chunk_problems(res: _mcap.ScanResult, file: str) -> list[IntegrityProblem]:
    """One problem per MCAP chunk that fails its CRC or does not decompress/parse."""
    out = []
    for chunk in res.bad_chunks:
        kind = "crc_mismatch" if chunk.status == "crc_mismatch" else "chunk"
        lost = sum(chunk.index_counts.values())
        tail = f"; it holds {lost} messages" if lost else ""
        out.append(IntegrityProblem(kind, f"{_mcap.describe_chunk(res, chunk)} {chunk.problem}{tail}", file,
                                    offset=chunk.offset))
    return out


def _recovery_problem(res: _mcap.ScanResult, tail: _mcap.TailInfo, file: str) -> IntegrityProblem:
    """The one-line report of what was recovered from a truncated or damaged MCAP."""
    per_topic: dict[str, int] = {}
    for channel, n in res.counts.items():
        per_topic[res.topic(channel)] = per_topic.get(res.topic(channel), 0) + n
    topics = ", ".join(f"{t} ({n})" for t, n in sorted(per_topic.items())) or "no topic"
    good = sum(1 for c in res.chunks if c.usable)
    got = f"recovered {res.message_count} messages ({topics}) from {good} intact chunk(s)"
    if not tail.complete and res.stop_reason is not None:
        lost = res.size - res.stop_offset
        return IntegrityProblem(
            "truncated", f"truncated MCAP: {got}; reading stopped at byte {res.stop_offset} of {res.size} "
                         f"({res.stop_reason}), the last {lost} bytes are lost; `edgefuse repair` writes a fixed copy",
            file, offset=res.stop_offset)
    crc = {True: "verifies", False: "FAILS its CRC check", None: "has no CRC"}[res.data_crc_ok]
    stop = "" if res.stop_reason is None else f"; reading stopped at byte {res.stop_offset} ({res.stop_reason})"
    return IntegrityProblem(
        "truncated" if not tail.complete else "summary_crc",
        f"MCAP index damaged ({tail.problem}): {got} by reading the data section, which {crc}{stop}; "
        "`edgefuse repair` writes a fixed copy", file, offset=res.stop_offset)
