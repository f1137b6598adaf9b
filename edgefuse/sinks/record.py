"""The recording sink.

:class:`RecordSink` serialises each output once (CDR, the ROS 2 wire format), keeps a running SHA-256
digest per topic (stamp + bytes, so two runs can be compared bit for bit) and, when given a path,
writes the messages to a ROS 2 bag (MCAP by default) that Foxglove, ``ros2 bag`` and rosbags open.

Nothing half-written is left where a result is expected: the bag is written under ``<out>.partial``
and moved to ``<out>`` only when the run closes it as complete.  A run that stops early (interrupted,
a corrupt recording, :meth:`RecordSink.mark_incomplete`) still finishes the bag, so it is readable, but
leaves it at ``<out>.partial``; one whose storage fails (disk full, read-only) closes the file as far as
it can and leaves it there too.  A later run replaces such a leftover ``.partial`` bag.

Beside the outputs it writes what a viewer needs to show them (:mod:`edgefuse.sinks.viewer`): the rig's
transforms on ``/tf_static`` and its cameras' CameraInfo (given the ``rig``), and a viewable companion of
each image output whose encoding viewers do not display.  These extra topics get digests and counts of
their own; the outputs' digests do not change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

from edgefuse._cli_common import deferred_signals
from edgefuse.errors import EdgefuseError, ReplayError
from edgefuse.msgs.edges import msgtype_of
from edgefuse.rig import Rig
from edgefuse.sinks.viewer import Extra, ViewerExtras

__all__ = ["PARTIAL_SUFFIX", "RecordSink", "check_writable_output", "partial_path"]

#: suffix of the folder an output bag is written in until it is complete
PARTIAL_SUFFIX = ".partial"
#: refuse to start an output on a file system with less free space than this [bytes]
MIN_FREE_BYTES = 1 << 20
#: at most this many serialisation failures are kept verbatim (all are counted)
_FIRST_ERRORS = 5

_BAG_FILE_SUFFIXES = (".mcap", ".db3", ".tmp", "-journal", "-wal", "-shm")


def partial_path(out: str | Path) -> Path:
    """Where the bag for ``out`` is written until it is complete (``<out>.partial``)."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _bag_files_only(folder: Path) -> bool:
    return all(p.is_file() and not p.is_symlink()
               and (p.name == "metadata.yaml" or p.name.endswith(_BAG_FILE_SUFFIXES)) for p in folder.iterdir())


def _is_bag_folder(path: Path) -> bool:
    """A ROS 2 bag folder (``metadata.yaml``) or an empty folder: something ``--overwrite`` may replace."""
    if path.is_symlink() or not path.is_dir():
        return False
    return (path / "metadata.yaml").is_file() or not any(path.iterdir())


def _is_leftover(partial: Path, name: str) -> bool:
    """Whether ``partial`` is what an earlier run of this sink left: bag files, or a folder ``name`` of them
    (a run killed outright), or nothing."""
    if partial.is_symlink() or not partial.is_dir():
        return False
    for entry in partial.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if entry.name != name or not _bag_files_only(entry):
                return False
        elif entry.is_symlink() or not (entry.name == "metadata.yaml" or entry.name.endswith(_BAG_FILE_SUFFIXES)):
            return False
    return True


def check_writable_output(path: Path, *, overwrite: bool = False) -> None:
    """Fail early, with one clear line, when an output bag cannot be written.

    Refuses an existing ``path`` (unless ``overwrite`` and it is a bag folder), a missing or read-only
    parent folder, a file system with less than :data:`MIN_FREE_BYTES` free, and a ``<path>.partial`` that
    is not a leftover of an earlier run.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path()
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise ReplayError("output already exists; remove it, choose another name or pass --overwrite", file=path)
        if not _is_bag_folder(path):
            raise ReplayError("refusing to overwrite: not a ROS 2 bag folder (no metadata.yaml)", file=path)
    if not parent.exists():
        raise ReplayError(f"cannot write output: folder {parent} does not exist", file=path)
    if not parent.is_dir():
        raise ReplayError(f"cannot write output: {parent} is not a folder", file=path)
    if _read_only(parent):
        raise ReplayError(f"cannot write output: folder {parent} is on a read-only file system", file=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReplayError(f"cannot write output: folder {parent} is not writable", file=path)
    partial = partial_path(path)
    if (partial.exists() or partial.is_symlink()) and not _is_leftover(partial, path.name):
        raise ReplayError(f"cannot write output: {partial} (where the bag is written until it is complete) exists "
                          "and is not a partial bag edgefuse left; remove it or choose another name", file=path)
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise ReplayError(f"cannot write output: no space left on the device of {parent} ({free} bytes free)",
                          file=path)


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (``os.access`` says writable to root)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _flatten(staging: Path, partial: Path) -> None:
    """Move the bag in ``partial/<name>`` up into ``partial`` itself, so ``partial`` is the bag folder."""
    if not staging.is_dir():
        return
    for entry in list(staging.iterdir()):
        os.replace(entry, partial / entry.name)
    staging.rmdir()


class RecordSink:
    """Serialise outputs once; digest them; optionally record them to a ROS 2 bag (see the module doc).

    Args:
        out: the bag folder to write (None: digests and counts only).
        storage: ``"mcap"`` or ``"sqlite3"``.
        overwrite: replace an existing bag at ``out``; the old one is replaced only when the new one is
            complete.
        rig: the pipeline's rig, for ``/tf_static`` and CameraInfo.
        viewer_extras: False writes the outputs only (no transforms, CameraInfo or viewable companions).

    After :meth:`close`, :attr:`path` is where the bag is (``out``, or ``<out>.partial`` when incomplete) and
    :attr:`complete` says which.  Payloads that cannot be serialised are counted per topic in
    :attr:`write_errors` (first few texts in :attr:`first_write_errors`) and left out; a storage failure
    (disk full, read-only) raises :class:`ReplayError` after closing what can be closed.
    """

    def __init__(self, out: str | Path | None = None, *, storage: str = "mcap", overwrite: bool = False,
                 rig: Rig | None = None, viewer_extras: bool = True) -> None:
        self.rig = rig
        self.viewer_extras = viewer_extras
        self._extras: ViewerExtras | None = None
        self.out = None if out is None else Path(out)
        self.storage = storage
        self.overwrite = overwrite
        if self.out is not None:
            check_writable_output(self.out, overwrite=overwrite)
        self._writer: Any = None
        self._partial: Path | None = None
        self._staging: Path | None = None
        self._msgtypes: dict[str, str] = {}
        self._digests: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.input_counts: dict[str, int] = {}
        self._input_types: dict[str, str] = {}
        self.bytes_written = 0
        self.write_errors: dict[str, int] = {}
        self.first_write_errors: list[str] = []
        self.path: Path | None = None
        self.complete: bool | None = None
        self.incomplete_reason: str | None = None
        self.storage_error: str | None = None

    def mark_incomplete(self, reason: str) -> None:
        """The run stopped early: :meth:`close` finishes the bag but leaves it at ``<out>.partial``."""
        if self.incomplete_reason is None:
            self.incomplete_reason = reason

    def open(self, outputs: Mapping[str, str]) -> None:
        """Prepare ``outputs`` (topic → edge type): message types, digests and, with a path, the bag."""
        for topic, edge in outputs.items():
            msgtype = msgtype_of(edge)
            if msgtype is None:
                raise ReplayError(f"output {topic}: edge type {edge} has no ROS message type to publish")
            self._msgtypes[topic] = msgtype
            self._digests[topic] = hashlib.sha256()
            self.counts[topic] = 0
        if self.viewer_extras:
            self._extras = ViewerExtras(dict(outputs), self.rig)
        if self.out is None:
            return
        from edgefuse.bag import BagWriter

        partial = partial_path(self.out)
        with deferred_signals():
            if partial.exists() or partial.is_symlink():
                if not _is_leftover(partial, self.out.name):
                    raise ReplayError(f"cannot write output: {partial} exists and is not a partial bag edgefuse "
                                      "left", file=self.out)
                shutil.rmtree(partial)
            try:
                partial.mkdir()
                self._partial, self.path = partial, partial
                # the bag folder gets its final name now, so its storage file is <out>/<name>.mcap once moved
                self._staging = partial / self.out.name
                self._writer = BagWriter(self._staging, storage=self.storage)  # type: ignore[arg-type]
                self._writer.__enter__()
                for topic, msgtype in self._msgtypes.items():
                    self._writer.add_topic(topic, msgtype)
            except OSError as exc:
                self._fail(exc)

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        extras = self._extras
        if extras is not None:
            for extra in extras.before(topic, stamp_ns, payload):
                self._write_extra(extra, stamp_ns)
        self._write_output(topic, stamp_ns, payload)
        if extras is not None:
            for extra in extras.after(topic, stamp_ns, payload):
                self._write_extra(extra, stamp_ns)

    def _write_extra(self, extra: Extra, stamp_ns: int) -> None:
        """Write one viewer extra (declaring its topic the first time); a failure is noted, not raised."""
        assert self._extras is not None
        try:
            if extra.topic not in self._msgtypes:
                self._msgtypes[extra.topic] = extra.msgtype
                self._digests[extra.topic] = hashlib.sha256()
                self.counts[extra.topic] = 0
                if self._writer is not None:
                    self._writer.add_topic(extra.topic, extra.msgtype, qos=extra.qos)
        except EdgefuseError as exc:
            self._extras.skipped[extra.topic] = f"not written: {exc}"
            return
        self._write_output(extra.topic, stamp_ns, extra.payload)

    def add_input_topic(self, topic: str, msgtype: str) -> None:
        """Declare an input topic recorded beside the outputs (a live node's ``--record``)."""
        if self._writer is not None and topic not in self._input_types:
            try:
                self._writer.add_topic(topic, msgtype)
            except OSError as exc:
                self._fail(exc)
        self._input_types[topic] = msgtype
        self.input_counts.setdefault(topic, 0)

    def write_input_raw(self, topic: str, log_ns: int, data: bytes | memoryview, msgtype: str,
                        *, fmt: Literal["cdr", "ros1"] = "cdr", typestore: Any = None) -> None:
        """Record one received input message as it came (``fmt`` ``"ros1"``, defined by ``typestore``, is
        converted to CDR first); a message that does not convert is counted in :attr:`write_errors`, a
        storage failure raises."""
        if self._writer is None or topic not in self._input_types:
            return
        raw: bytes | memoryview = data
        if fmt != "cdr" or typestore is not None:
            from edgefuse.msgs.transcode import transcode

            try:
                raw = transcode(data, msgtype, src_fmt=fmt, dst_fmt="cdr", src_typestore=typestore)
            except Exception as exc:  # a malformed message: counted, left out
                self.write_errors[topic] = self.write_errors.get(topic, 0) + 1
                if len(self.first_write_errors) < _FIRST_ERRORS:
                    self.first_write_errors.append(f"{topic} (input): {type(exc).__name__}: {exc}")
                return
        with deferred_signals():
            try:
                self._writer.write_raw(topic, log_ns, raw)
            except OSError as exc:
                self._fail(exc)
            self.input_counts[topic] += 1
            self.bytes_written += len(raw)

    @property
    def extras_skipped(self) -> dict[str, str]:
        """Viewer extras not written, topic → why (empty when all were)."""
        return {} if self._extras is None else dict(self._extras.skipped)

    def _write_output(self, topic: str, stamp_ns: int, payload: Any) -> None:
        from edgefuse.msgs import from_payload, serialize

        msgtype = self._msgtypes[topic]
        with deferred_signals():  # one message is written whole or not at all
            try:
                raw = serialize(from_payload(payload, msgtype=msgtype), msgtype)
            except Exception as exc:  # a payload a stage made wrong: counted, left out
                self.write_errors[topic] = self.write_errors.get(topic, 0) + 1
                if len(self.first_write_errors) < _FIRST_ERRORS:
                    self.first_write_errors.append(f"{topic} (stamp {stamp_ns} ns): {type(exc).__name__}: {exc}")
                return
            digest = self._digests[topic]
            digest.update(int(stamp_ns).to_bytes(8, "little", signed=True))
            digest.update(raw)
            self.counts[topic] += 1
            if self._writer is not None:
                try:
                    self._writer.write_raw(topic, stamp_ns, raw)
                except OSError as exc:
                    self._fail(exc)
                self.bytes_written += len(raw)

    def close(self) -> None:
        """Finish the bag: move it to ``out`` when complete, else leave it (readable) at ``<out>.partial``."""
        writer = self._writer
        if writer is None:
            return
        assert self.out is not None
        assert self._partial is not None
        assert self._staging is not None
        with deferred_signals():
            inner = getattr(writer, "_writer", None)
            try:
                writer.__exit__(None, None, None)
            except OSError as exc:
                self._fail(exc, inner)
            self._writer = None
            if self.incomplete_reason is not None:
                self._leave_partial()
                return
            self._move_into_place()

    def _leave_partial(self) -> None:
        assert self._partial is not None
        assert self._staging is not None
        with suppress(OSError):
            _flatten(self._staging, self._partial)
        self.path, self.complete = self._partial, False

    def _move_into_place(self) -> None:
        assert self.out is not None
        assert self._partial is not None
        assert self._staging is not None
        out, partial = self.out, self._partial
        if out.exists() or out.is_symlink():
            if not (self.overwrite and _is_bag_folder(out)):
                self._leave_partial()
                raise ReplayError(f"{out} appeared while the run was writing; the complete output is kept at "
                                  f"{partial}", file=out)
            os.rename(out, partial / (".replaced-" + out.name))
        os.rename(self._staging, out)
        shutil.rmtree(partial, ignore_errors=True)
        self.path, self.complete = out, True

    def _fail(self, exc: OSError, inner: Any = None) -> None:
        """The storage failed (disk full, read-only, …): release the file without finishing it, leave what is
        there at ``<out>.partial`` and raise one clear error.  ``inner``: the rosbags writer, when the
        BagWriter has already let go of it."""
        writer, self._writer = self._writer, None
        if inner is None and writer is not None:
            inner = getattr(writer, "_writer", None)
        with suppress(Exception):
            if inner is not None:
                inner.abort()  # rosbags: close the storage file without writing the index
            elif writer is not None:
                writer.close()
        reason = exc.strerror or str(exc)
        self.storage_error = reason
        self.mark_incomplete(f"cannot write output: {reason}")
        if self._partial is not None and self._staging is not None:
            self._leave_partial()
        raise ReplayError(f"cannot write output: {reason}", file=self.out) from None

    def digests(self) -> dict[str, str]:
        """Per-topic SHA-256 (hex) over every output message's stamp and CDR bytes, in order."""
        return {topic: d.hexdigest() for topic, d in self._digests.items()}

