"""Dataset folder → ROS 2 bag (MCAP or sqlite3), with calibration on /tf_static and a rig YAML.

Output layout: ``out`` is a rosbag2 folder (``metadata.yaml`` + ``out.mcap`` or ``out.db3``);
the converter adds two files to it:

- ``rig.yaml``: the calibration as an edgefuse rig (:func:`edgefuse.rig.save_rig`), including any
  identity alias edges the converter added (see below);
- ``convert_report.json``: the :class:`ConvertReport` (counts, skipped items, notes).

Messages carry their dataset stamps both as header stamp and as bag record time.  /tf_static is
written once, stamped with the first message stamp, holding every edge of the rig's frame graph
(``T_parent_from_child``).  Each image on a calibrated camera is followed by a CameraInfo with the
same stamp.  If a payload frame id is not in the rig but a known alias of it is (RADIATE's rig
calls the LiDAR ``lidar``, the topics use ``velodyne``), an identity edge alias → frame id is added
to the rig and reported.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn

import numpy as np

from edgefuse._cli_common import deferred_signals, interrupt_reason, interrupt_signal, interrupted
from edgefuse.bag import BagWriter, open_bag
from edgefuse.convert.kitti_object import DEFAULT_START_NS, find_object_root, read_kitti_object
from edgefuse.convert.kitti_raw import find_drive, read_kitti_raw
from edgefuse.convert.plan import MSG_CAMERA_INFO, MSG_TF, DatasetPlan, Item
from edgefuse.convert.radiate import find_sequence, read_radiate
from edgefuse.convert.report import ConvertReport, SkippedItem, TopicStats
from edgefuse.errors import ConvertError, EdgefuseError
from edgefuse.msgs.types import CameraInfoData, CompressedImageData, ImageData, TransformData
from edgefuse.rig import Rig, Transform, importers, save_rig

Layout = Literal["auto", "radiate", "kitti_object", "kitti_raw"]
LAYOUTS = ("radiate", "kitti_object", "kitti_raw")
TOPIC_TF_STATIC = "/tf_static"
RIG_FILE = "rig.yaml"
REPORT_FILE = "convert_report.json"

#: payload frame id → frame names a rig importer may use for the same sensor.
FRAME_ALIASES: dict[str, tuple[str, ...]] = {
    "velodyne": ("lidar", "velo", "velo_lidar"),
    "gps_imu": ("gps", "imu", "ins"),
    "imu": ("oxts", "gps_imu"),
    "radar": ("navtech",),
}

def detect_layout(src: Path) -> str:
    """Guess the dataset layout of ``src``: ``radiate``, ``kitti_object`` or ``kitti_raw``.

    Raises:
        ConvertError: the folder is missing or matches none (or several) of the layouts.
    """
    src = Path(src)
    if not src.is_dir():
        raise ConvertError("dataset folder not found", file=src)
    found = []
    for layout, probe in (("radiate", find_sequence), ("kitti_raw", find_drive),
                          ("kitti_object", _probe_kitti_object)):
        try:
            probe(src)
        except ConvertError:
            continue
        found.append(layout)
    if len(found) != 1:
        what = "no known dataset layout" if not found else f"ambiguous layout ({', '.join(found)})"
        raise ConvertError(f"{what}; give --layout radiate|kitti_object|kitti_raw", file=src)
    return found[0]


def _probe_kitti_object(src: Path) -> None:
    find_object_root(src)


def read_dataset(
    src: Path,
    *,
    layout: Layout = "auto",
    compress_images: bool = False,
    start_ns: int = DEFAULT_START_NS,
    streams: Collection[str] | None = None,
    gps_offset_ns: int = 0,
    calibration: Path | None = None,
    camera_jpeg_quality: int | None = None,
    calib_frame: int | None = None,
) -> DatasetPlan:
    """Scan ``src`` with the reader of its layout and return the :class:`DatasetPlan`.

    ``start_ns`` only applies to ``kitti_object``; ``streams``, ``gps_offset_ns`` and
    ``calibration`` only to ``radiate``.

    Raises:
        ConvertError: unknown layout, or any reader error.
    """
    src = Path(src)
    if layout == "auto":
        layout = detect_layout(src)  # type: ignore[assignment]
    if layout == "radiate":
        return read_radiate(src, compress_images=compress_images, streams=streams,
                            gps_offset_ns=gps_offset_ns, calibration=calibration,
                            camera_jpeg_quality=camera_jpeg_quality)
    if layout == "kitti_object":
        return read_kitti_object(src, compress_images=compress_images, start_ns=start_ns,
                                 calib_frame=calib_frame)
    if layout == "kitti_raw":
        return read_kitti_raw(src, compress_images=compress_images)
    raise ConvertError(f"unknown layout {layout!r}; expected auto, {', '.join(LAYOUTS)}")


def overlap_window(plan: DatasetPlan, topics: Iterable[str] | None = None, *,
                   ignore: Collection[str] = ()) -> tuple[int, int]:
    """The time window (ns, inclusive) all of ``topics`` (default: every topic with items) cover.

    ``ignore`` names streams (``gps_imu``, ``velo_lidar`` …) or topics left out of the computation; their
    messages outside the window are then left out of the bag like any other.

    Raises:
        ConvertError: ``ignore`` names no stream or topic of the dataset; or the topics do not overlap:
            the message names the stream(s) off the others' time and by how much, and the ways forward.
    """
    streams_of = _streams_of_topics(plan)
    unknown = [name for name in ignore if name not in plan.topics and
               not any(name in names for names in streams_of.values())]
    if unknown:
        known = sorted({s for names in streams_of.values() for s in names})
        raise ConvertError(f"--overlap-ignore: {', '.join(unknown)} is not a stream or topic being converted "
                           f"(streams: {', '.join(known)})", file=plan.root)
    ignored = {t for t in plan.topics if t in ignore or streams_of.get(t, set()) & set(ignore)}
    chosen = [t for t in (plan.topics if topics is None else topics) if t not in ignored]
    spans = {t: span for t in chosen if (span := plan.span_ns(t)) is not None}
    if not spans:
        raise ConvertError("no messages to compute an overlap window from", file=plan.root)
    start, end = max(s[0] for s in spans.values()), min(s[1] for s in spans.values())
    if start > end:
        raise ConvertError(_no_overlap_message(plan, spans, streams_of), file=plan.root)
    return start, end


def _streams_of_topics(plan: DatasetPlan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in plan.items:
        out.setdefault(item.topic, set()).add(item.stream)
    return out


def _no_overlap_message(plan: DatasetPlan, spans: dict[str, tuple[int, int]],
                        streams_of: dict[str, set[str]]) -> str:
    """Say which stream is off the others' time, by how much, and what to do about it."""
    by_stream: dict[str, tuple[int, int]] = {}
    for topic, (s0, s1) in spans.items():
        for stream in streams_of.get(topic, {topic}):
            b0, b1 = by_stream.get(stream, (s0, s1))
            by_stream[stream] = (min(b0, s0), max(b1, s1))

    def common(names: Iterable[str]) -> tuple[int, int]:
        chosen = [by_stream[n] for n in names]
        return max(c[0] for c in chosen), min(c[1] for c in chosen)

    def sec(ns: int) -> str:
        return f"{ns / 1e9:.3f}"

    culprits = []
    for stream in by_stream:
        others = [n for n in by_stream if n != stream]
        if others and common(others)[0] <= common(others)[1]:
            culprits.append(stream)
    if len(culprits) != 1:
        listed = "; ".join(f"{n} {sec(a)}..{sec(b)} s" for n, (a, b) in sorted(by_stream.items()))
        return (f"the streams do not overlap in time ({listed}); choose the streams to keep with --streams or "
                "a window with --time-window START END")
    off = culprits[0]
    o0, o1 = common(n for n in by_stream if n != off)
    s0, s1 = by_stream[off]
    gap, side = (s0 - o1, "after") if s0 > o1 else (o0 - s1, "before")
    start = f"starts {gap / 1e9:.3f} s after the others end" if side == "after" else \
        f"ends {gap / 1e9:.3f} s before the others start"
    ways = [f"--overlap-ignore {off} (compute the window from the other streams; {off} messages outside it "
            "are left out)"]
    if plan.layout == "radiate":
        ways.append(f"--streams without {off}")
        if off == "gps_imu":
            ways.append(f"--gps-offset-s {'-' if side == 'after' else ''}S if you know its clock offset "
                        f"(at least {gap / 1e9:.3f} s to reach the others)")
    return (f"the streams do not overlap in time: {off} ({sec(s0)}..{sec(s1)} s) {start} "
            f"({sec(o0)}..{sec(o1)} s), so its clock is off by at least that much; use "
            + ", or ".join(ways))


def _check_options(*, camera_jpeg_quality: int | None, compress_images: bool, frames: int | None,
                   window_ns: tuple[int, int] | Literal["overlap"] | None, start_ns: int,
                   calib_frame: int | None, overlap_ignore: Collection[str]) -> None:
    """Range checks of convert()'s options, each a ConvertError naming the option."""
    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if camera_jpeg_quality is not None:
        if not is_int(camera_jpeg_quality) or not 0 <= camera_jpeg_quality <= 100:
            raise ConvertError(f"JPEG quality must be an integer from 0 to 100, got {camera_jpeg_quality!r}")
        if not compress_images:
            raise ConvertError("a JPEG quality needs compressed images (--compress-images)")
    if frames is not None and (not is_int(frames) or frames < 0):
        raise ConvertError(f"max frames must be an integer >= 0, got {frames!r}")
    if calib_frame is not None and (not is_int(calib_frame) or calib_frame < 0):
        raise ConvertError(f"calibration frame must be an integer >= 0, got {calib_frame!r}")
    if not is_int(start_ns) or not 0 <= start_ns <= _MAX_STAMP_NS:
        raise ConvertError(f"start stamp must be from 0 to {_MAX_STAMP_NS} ns, got {start_ns!r}")
    if overlap_ignore and window_ns != "overlap":
        raise ConvertError("streams to ignore for the overlap window (--overlap-ignore) need --overlap")
    if window_ns is not None and window_ns != "overlap":
        try:
            w0, w1 = window_ns
        except (TypeError, ValueError):
            raise ConvertError(f"time window must be (start, end) in ns or 'overlap', got {window_ns!r}") from None
        if not (is_int(w0) and is_int(w1) and 0 <= w0 <= _MAX_STAMP_NS and 0 <= w1 <= _MAX_STAMP_NS):
            raise ConvertError(f"time window bounds must be stamps from 0 to {_MAX_STAMP_NS} ns, got "
                               f"{w0!r}, {w1!r}")
        if w0 > w1:
            raise ConvertError(f"time window start {w0 / 1e9:.9f} s is after its end {w1 / 1e9:.9f} s")


#: the largest stamp a ROS 2 bag holds (signed 64-bit ns)
_MAX_STAMP_NS = 2**63 - 1


def _check_layout_options(layout: str, *, streams: Collection[str] | None, gps_offset_ns: int,
                          camera_jpeg_quality: int | None, calib_frame: int | None,
                          calibration: Path | None) -> None:
    """Options given for a layout they do not apply to are an error, never silently ignored."""
    given = {"a stream selection (--streams)": streams is not None,
             "a GPS offset (--gps-offset-s)": bool(gps_offset_ns),
             "a JPEG quality (--jpeg-quality)": camera_jpeg_quality is not None,
             "a calibration file": calibration is not None}
    if layout != "radiate":
        wrong = [name for name, on in given.items() if on]
        if wrong:
            verb = "apply" if len(wrong) > 1 else "applies"
            raise ConvertError(f"{', '.join(wrong)} only {verb} to RADIATE; this dataset is {layout}")
    if calib_frame is not None and layout != "kitti_object":
        raise ConvertError(f"a calibration frame (--calib-frame) only applies to KITTI object; this dataset is "
                           f"{layout}")


def select_items(plan: DatasetPlan, *, window_ns: tuple[int, int] | None = None,
                 max_frames: int | None = None) -> tuple[list[Item], list[str]]:
    """Items inside ``window_ns`` (inclusive), at most ``max_frames`` per topic; and notes about cuts."""
    notes: list[str] = []
    items = plan.items
    if window_ns is not None:
        start, end = window_ns
        if start > end:
            raise ConvertError(f"time window start {start} ns is after its end {end} ns")
        kept = [it for it in items if start <= it.stamp_ns <= end]
        if len(kept) != len(items):
            notes.append(f"time window {start}..{end} ns: {len(items) - len(kept)} items outside left out")
        items = kept
    if max_frames is not None:
        if max_frames < 0:
            raise ConvertError(f"max_frames must be >= 0, got {max_frames}")
        seen: dict[str, int] = {}
        kept = []
        for it in items:
            n = seen.get(it.topic, 0)
            if n < max_frames:
                kept.append(it)
            seen[it.topic] = n + 1
        if len(kept) != len(items):
            notes.append(f"max {max_frames} messages per topic: {len(items) - len(kept)} items left out")
        items = kept
    return items, notes


def convert(
    src: Path,
    out: Path,
    *,
    layout: Layout = "auto",
    storage: Literal["mcap", "sqlite3"] = "mcap",
    frames: int | None = None,
    compress_images: bool = False,
    start_ns: int = DEFAULT_START_NS,
    window_ns: tuple[int, int] | Literal["overlap"] | None = None,
    streams: Collection[str] | None = None,
    gps_offset_ns: int = 0,
    calibration: Path | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    compress: bool = False,
    camera_jpeg_quality: int | None = None,
    calib_frame: int | None = None,
    overlap_ignore: Collection[str] = (),
) -> ConvertReport:
    """Convert a dataset folder to a ROS 2 bag.

    Args:
        src: the dataset folder.
        out: the bag folder to create (must not exist).
        layout: ``auto`` (detect), ``radiate``, ``kitti_object`` or ``kitti_raw``.
        storage: rosbag2 storage plugin.
        frames: keep at most this many messages per topic (the first ones in time).
        compress_images: write images as CompressedImage with the dataset's PNG bytes.
        start_ns: first synthesized stamp for ``kitti_object`` (frame 0), see
            :mod:`edgefuse.convert.kitti_object`.
        window_ns: keep only items stamped inside ``(start, end)`` ns inclusive (``0 <= start <= end``), or
            ``"overlap"`` for the window every converted topic covers (see :func:`overlap_window`).
        overlap_ignore: with ``window_ns="overlap"``: streams or topics left out of the window's
            computation (e.g. RADIATE's ``gps_imu``, whose clock is a minute off in the sample).
        streams: RADIATE streams to convert (see :data:`edgefuse.convert.radiate.STREAMS`).
        gps_offset_ns: shift of RADIATE GPS/IMU stamps.
        calibration: RADIATE calibration file (default: found next to the data).
        camera_jpeg_quality: RADIATE with ``compress_images``: camera frames as JPEG at this quality (0-100).
        calib_frame: KITTI object: the frame whose calibration becomes the bag's rig (default: the
            first); frames with another calibration are skipped and reported.
        compress: zstd-compress the bag's storage (MCAP chunks), see :class:`edgefuse.bag.BagWriter`.
        on_error: ``raise`` stops at the first unreadable item (ConvertError with file and line);
            ``skip`` reports it in ``ConvertReport.skipped`` and goes on.

    Returns:
        the report, also written as ``out/convert_report.json``.  The bag is built in a temporary folder
        beside ``out`` and renamed to ``out`` when complete, only if nothing is at ``out`` by then (see
        :class:`_Staging`): ``out`` appears whole or not at all, and a conversion that fails removes only
        what it created.  If it is interrupted (SIGINT/SIGTERM, see
        :func:`edgefuse._cli_common.handle_signals`), the bag is closed validly with its report marked
        ``complete: false`` and moved to ``<out>.partial``, and ``KeyboardInterrupt`` is raised again.

    Raises:
        ConvertError: bad input (see the readers), unknown layout, an option out of range or given for a
            layout it does not apply to, output exists (or appeared while converting).
    """
    src, out = Path(src), Path(out)
    if storage not in ("mcap", "sqlite3"):
        raise ConvertError(f"unknown storage {storage!r}; expected mcap or sqlite3")
    if on_error not in ("raise", "skip"):
        raise ConvertError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    overlap_ignore = [overlap_ignore] if isinstance(overlap_ignore, str) else list(overlap_ignore)
    _check_options(camera_jpeg_quality=camera_jpeg_quality, compress_images=compress_images, frames=frames,
                   window_ns=window_ns, start_ns=start_ns, calib_frame=calib_frame, overlap_ignore=overlap_ignore)
    if out.exists() or out.is_symlink():
        raise ConvertError("output exists; remove it or choose another path", file=out)
    plan = read_dataset(src, layout=layout, compress_images=compress_images, start_ns=start_ns,
                        streams=streams, gps_offset_ns=gps_offset_ns, calibration=calibration,
                        camera_jpeg_quality=camera_jpeg_quality, calib_frame=calib_frame)
    _check_layout_options(plan.layout, streams=streams, gps_offset_ns=gps_offset_ns,
                          camera_jpeg_quality=camera_jpeg_quality, calib_frame=calib_frame,
                          calibration=calibration)
    window = overlap_window(plan, ignore=overlap_ignore) if window_ns == "overlap" else window_ns
    items, cut_notes = select_items(plan, window_ns=window, max_frames=frames)
    report = ConvertReport(layout=plan.layout, source=str(plan.root), output=str(out), storage=storage,
                           skipped=list(plan.skipped), notes=[*plan.notes, *cut_notes], window_ns=window)
    rig = _load_rig(plan, report) if plan.calibration is not None else None
    with _Staging(out) as staging:
        writer = BagWriter(staging.bag, storage=storage, compress=compress)
        try:
            writer.open()
            _write_all(writer, plan, items, rig=rig, report=report, on_error=on_error)
            with deferred_signals():
                writer.close()
                if rig is not None:
                    _save_rig(rig, staging.bag / RIG_FILE)
                    report.rig_path = str(out / RIG_FILE)
                report.write_json(staging.bag / REPORT_FILE)
                staging.publish()
        except KeyboardInterrupt as exc:  # SIGINT / SIGTERM: finish what was written, keep it as <out>.partial
            _keep_partial(writer, staging, report, rig, exc)
        except BaseException:
            with suppress(Exception):
                writer.close()
            raise
    return report


class _Staging:
    """Where a conversion writes before its bag is complete, so that ``out`` appears whole or not at all.

    The bag is built as ``<tmp>/<out name>`` in a fresh folder ``<tmp>`` that :func:`tempfile.mkdtemp`
    makes beside ``out`` (same file system); :meth:`publish` renames it to ``out`` only if nothing is
    there (atomically where the OS can, see :func:`rename_noreplace`): a folder or file another process
    created meanwhile is never replaced or removed, the conversion is refused instead.  Leaving the block
    removes only what the conversion created: the temporary folder, and the parent folders of ``out`` it
    made when the bag was not published.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created_parents: list[Path] = []
        self.tmp: Path | None = None
        self.published = False

    @property
    def bag(self) -> Path:
        assert self.tmp is not None
        return self.tmp / self.out.name

    def __enter__(self) -> _Staging:
        missing = []
        parent = self.out.parent
        while not parent.exists() and parent != parent.parent:
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:  # made by someone else meanwhile: theirs, not ours
                continue
            except OSError as err:
                self._cleanup()
                raise ConvertError(f"cannot create the output folder: {err.strerror}", file=folder) from None
            self.created_parents.append(folder)
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".converting",
                                             dir=self.out.parent))
        except OSError as err:
            self._cleanup()
            raise ConvertError(f"cannot write in the output folder: {err.strerror}", file=self.out.parent) from None
        return self

    def publish(self) -> None:
        """Move the finished bag to ``out``, refusing if ``out`` exists by now."""
        try:
            rename_noreplace(self.bag, self.out)
        except FileExistsError:
            raise ConvertError("appeared while converting (created by another process?): it was left as it is "
                               "and this conversion was discarded; remove it or choose another path",
                               file=self.out) from None
        except OSError as err:
            raise ConvertError(f"cannot move the finished bag into place: {err.strerror}", file=self.out) from None
        self.published = True

    def keep_as(self, target: Path) -> None:
        """Move the (closed) bag to ``target``, replacing an earlier partial conversion (a folder with our
        report in it) but nothing else."""
        if target.is_dir() and not target.is_symlink() and (target / REPORT_FILE).is_file():
            shutil.rmtree(target)  # the leftover of an earlier interrupted conversion
        rename_noreplace(self.bag, target)
        self.published = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if not self.published:
            for folder in reversed(self.created_parents):
                with suppress(OSError):
                    folder.rmdir()  # only if still empty: never anything someone else put there


#: Linux's renameat2(2) from the C library, or None where there is none (other OSes, old C libraries).
_RENAMEAT2: Any = None
if sys.platform.startswith("linux"):
    with suppress(OSError, AttributeError):
        _RENAMEAT2 = ctypes.CDLL(None, use_errno=True).renameat2
        _RENAMEAT2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        _RENAMEAT2.restype = ctypes.c_int
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename the folder ``src`` to ``dst`` only if ``dst`` does not exist.

    On Linux this is one atomic ``renameat2(RENAME_NOREPLACE)``.  Elsewhere (or on a file system without
    it) ``dst`` is first claimed with an exclusive ``mkdir`` and ``src`` renamed over that empty folder of
    ours.  A plain ``os.rename`` would silently replace an empty folder someone else created.

    Raises:
        FileExistsError: ``dst`` exists.
        OSError: any other failure of the rename.
    """
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    os.mkdir(dst)  # FileExistsError if it exists
    try:
        os.rename(src, dst)
    except BaseException:
        with suppress(OSError):
            os.rmdir(dst)
        raise


def _keep_partial(writer: BagWriter, staging: _Staging, report: ConvertReport, rig: Rig | None,
                  exc: KeyboardInterrupt) -> NoReturn:
    """After SIGINT/SIGTERM: close the bag validly, write the report marked ``complete: false`` (and the rig)
    into it and move it to ``<out>.partial`` (replacing an earlier one), then raise ``KeyboardInterrupt``
    (:func:`~edgefuse._cli_common.interrupted`) saying where it is.  Further signals wait until this is done."""
    reason = interrupt_reason(exc)
    signum = interrupt_signal(exc)
    out = staging.out
    partial = out.with_name(out.name + ".partial")
    with deferred_signals():
        try:
            writer.close()
            if rig is not None:
                _save_rig(rig, staging.bag / RIG_FILE)
                report.rig_path = str(partial / RIG_FILE)
            report.output = str(partial)
            data = {**report.to_dict(), "complete": False, "error": reason}
            (staging.bag / REPORT_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                                   encoding="utf-8")
            staging.keep_as(partial)
        except (OSError, EdgefuseError) as err:
            raise interrupted(signum, f"convert {reason} after {report.message_count} messages; the partial "
                                      f"bag could not be kept ({err}) and was removed") from None
    raise interrupted(signum, f"convert {reason} after {report.message_count} messages; the partial bag is "
                              f"closed at {partial} ({REPORT_FILE} says complete: false)") from None


# --------------------------------------------------------------------------------------------
# rig


def _import_rig(layout: str, path: Path, camera_size: tuple[int, int] | None = None) -> Rig:
    try:
        if layout == "radiate":
            return importers.from_radiate(path)
        if layout == "kitti_object":
            if camera_size is not None:
                return importers.from_kitti_object(path, image_size=camera_size)
            return importers.from_kitti_object(path)
        return importers.from_kitti_raw(path / "calib_cam_to_cam.txt", path / "calib_velo_to_cam.txt",
                                        path / "calib_imu_to_velo.txt")
    except EdgefuseError as err:
        raise ConvertError(f"cannot import calibration: {err}", file=path) from None


def _load_rig(plan: DatasetPlan, report: ConvertReport) -> Rig:
    assert plan.calibration is not None
    rig = _import_rig(plan.layout, plan.calibration, plan.camera_size)
    _add_frame_aliases(rig, _payload_frames(plan), report)
    _set_sensor_topics(rig, plan)
    return rig


_KIND_MSGTYPES = {
    "camera": ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"),
    "radar": ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "radar_msgs/msg/RadarScan"),
    "lidar": ("sensor_msgs/msg/PointCloud2",),
    "imu": ("sensor_msgs/msg/Imu",),
    "gnss": ("sensor_msgs/msg/NavSatFix",),
}


def _set_sensor_topics(rig: Rig, plan: DatasetPlan) -> None:
    """Give each rig sensor without a topic the converted topic of its frame (or an alias of it)."""
    for name, sensor in list(rig.sensors.items()):
        if sensor.topic is not None:
            continue
        for topic, frame in plan.frame_of_topic.items():
            same = sensor.frame_id == frame or sensor.frame_id in FRAME_ALIASES.get(frame, ())
            if same and plan.topics[topic] in _KIND_MSGTYPES.get(sensor.kind, ()):
                rig.sensors[name] = replace(sensor, topic=topic)
                break


def _payload_frames(plan: DatasetPlan) -> list[str]:
    return sorted(set(plan.frame_of_topic.values()))


def _add_frame_aliases(rig: Rig, frames: Iterable[str], report: ConvertReport) -> None:
    for frame in frames:
        if frame in rig.frames:
            continue
        alias = next((a for a in FRAME_ALIASES.get(frame, ()) if a in rig.frames), None)
        if alias is None:
            report.notes.append(f"frame {frame!r} is not calibrated: it has no /tf_static transform")
            continue
        rig.frames.add(alias, frame, Transform.identity())
        report.notes.append(f"frame {frame!r} is the rig's {alias!r}: identity transform {alias} -> {frame} "
                            "added to /tf_static and rig.yaml")


def _save_rig(rig: Rig, path: Path) -> None:
    save_rig(rig, path)


def static_transforms(rig: Rig, stamp_ns: int) -> list[TransformData]:
    """Every edge of the rig's frame graph as a :class:`TransformData` (parent ← child)."""
    out = []
    for edge in rig.frames:
        T = edge.T_parent_from_child
        out.append(TransformData(stamp_ns=stamp_ns, parent_frame=edge.parent, child_frame=edge.child,
                                 translation=np.asarray(T.t, dtype=np.float64).copy(),
                                 rotation_xyzw=np.asarray(T.to_quat_xyzw(), dtype=np.float64)))
    return out


def _camera_of_frame(rig: Rig, frame_id: str) -> Any:
    for cam in rig.cameras.values():
        if cam.frame_id == frame_id:
            return cam
    return rig.cameras.get(frame_id)


# --------------------------------------------------------------------------------------------
# writing


def _write_all(writer: Any, plan: DatasetPlan, items: Sequence[Item], *, rig: Rig | None,
               report: ConvertReport, on_error: str) -> None:
    topics = {t: m for t, m in plan.topics.items() if any(it.topic == t for it in items)}
    infos: dict[str, str] = {}
    rigs: dict[Path, Rig] = {}
    if rig is not None and items:
        _add_topic(writer, report, TOPIC_TF_STATIC, MSG_TF)  # BagWriter records it as latched
        for image_topic, (frame, info_topic) in plan.camera_topics.items():
            if image_topic in topics and _camera_of_frame(rig, frame) is not None:
                infos[image_topic] = info_topic
            elif image_topic in topics:
                report.notes.append(f"camera {frame!r} is not in the rig: no {info_topic}")
    for topic, msgtype in topics.items():
        _add_topic(writer, report, topic, msgtype)
        if topic in infos:
            _add_topic(writer, report, infos[topic], MSG_CAMERA_INFO)
    if rig is not None and items:
        stamp = items[0].stamp_ns
        _write(writer, report, TOPIC_TF_STATIC, stamp, static_transforms(rig, stamp))
    size_noted: set[str] = set()
    for item in items:
        try:
            payload = item.load()
        except ConvertError as err:
            if on_error == "raise":
                raise
            report.skipped.append(SkippedItem(item.stream, item.key, f"unreadable: {err.message}",
                                              err.file, err.line))
            continue
        _write(writer, report, item.topic, item.stamp_ns, payload)
        if item.topic in infos and rig is not None:
            item_rig = rig
            calib = plan.item_calibration.get(item.key)
            if calib is not None and calib != plan.calibration:
                if calib not in rigs:
                    rigs[calib] = _import_rig(plan.layout, calib)
                item_rig = rigs[calib]
            frame = plan.camera_topics[item.topic][0]
            info = _camera_info(item_rig, frame, item.stamp_ns, payload, report=report,
                                size_noted=size_noted)
            if info is not None:
                _write(writer, report, infos[item.topic], item.stamp_ns, info)


def _add_topic(writer: Any, report: ConvertReport, topic: str, msgtype: str) -> None:
    writer.add_topic(topic, msgtype)
    report.topics[topic] = TopicStats(msgtype)


def _write(writer: Any, report: ConvertReport, topic: str, stamp_ns: int, payload: Any) -> None:
    with deferred_signals():  # a signal never cuts a message in half
        writer.write(topic, stamp_ns, payload)
        report.topics[topic].add(stamp_ns)


def _camera_info(rig: Rig, frame: str, stamp_ns: int, payload: Any, *, report: ConvertReport,
                 size_noted: set[str]) -> CameraInfoData | None:
    cam = _camera_of_frame(rig, frame)
    if cam is None:
        return None
    info: CameraInfoData = cam.to_camera_info(stamp_ns)
    size = image_size(payload)
    if size is not None and (info.width, info.height) != size:
        if frame not in size_noted and (info.width, info.height) != (0, 0):
            report.notes.append(f"camera {frame!r}: calibration says {info.width}x{info.height}, images are "
                                f"{size[0]}x{size[1]}; camera_info uses the image size")
        size_noted.add(frame)
        info.width, info.height = size
    return info


def image_size(payload: Any) -> tuple[int, int] | None:
    """(width, height) of an ImageData, or of a PNG CompressedImageData (from its IHDR chunk)."""
    if isinstance(payload, ImageData):
        return int(payload.data.shape[1]), int(payload.data.shape[0])
    if isinstance(payload, CompressedImageData) and len(payload.data) >= 24:
        raw = payload.data[:24].tobytes()
        if raw[12:16] == b"IHDR":
            width, height = struct.unpack(">II", raw[16:24])
            return int(width), int(height)
    return None


# --------------------------------------------------------------------------------------------
# digests


@dataclass(frozen=True)
class TopicDigest:
    """sha256 over one topic's messages in bag order (each: 8-byte little-endian record time +
    serialized CDR bytes), with the message count."""

    count: int
    sha256: str


def bag_digests(path: Path) -> dict[str, TopicDigest]:
    """Per-topic digests of a bag's serialized messages (see :class:`TopicDigest`).

    Two conversions of the same data give equal digests exactly when they wrote the same messages
    with the same stamps in the same order.
    """
    hashes: dict[str, Any] = {}
    counts: dict[str, int] = {}
    with open_bag(path) as reader:
        for raw in reader.messages():
            h = hashes.setdefault(raw.topic, hashlib.sha256())
            h.update(struct.pack("<q", raw.recv_ns))
            h.update(bytes(raw.rawdata))
            counts[raw.topic] = counts.get(raw.topic, 0) + 1
    return {t: TopicDigest(counts[t], hashes[t].hexdigest()) for t in sorted(hashes)}
