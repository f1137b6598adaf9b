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

import hashlib
import json
import shutil
import struct
from collections.abc import Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
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


def overlap_window(plan: DatasetPlan, topics: Iterable[str] | None = None) -> tuple[int, int]:
    """The time window (ns, inclusive) all of ``topics`` (default: every topic with items) cover.

    Raises:
        ConvertError: the topics do not overlap.
    """
    spans = [plan.span_ns(t) for t in (plan.topics if topics is None else topics)]
    valid = [s for s in spans if s is not None]
    if not valid:
        raise ConvertError("no messages to compute an overlap window from", file=plan.root)
    start, end = max(s[0] for s in valid), min(s[1] for s in valid)
    if start > end:
        raise ConvertError("the streams do not overlap in time", file=plan.root)
    return start, end


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
        window_ns: keep only items stamped inside ``(start, end)`` ns inclusive, or ``"overlap"``
            for the window every converted topic covers.
        streams: RADIATE streams to convert (see :data:`edgefuse.convert.radiate.STREAMS`).
        gps_offset_ns: shift of RADIATE GPS/IMU stamps.
        calibration: RADIATE calibration file (default: found next to the data).
        camera_jpeg_quality: RADIATE with ``compress_images``: camera frames as JPEG at this quality.
        calib_frame: KITTI object: the frame whose calibration becomes the bag's rig (default: the
            first); frames with another calibration are skipped and reported.
        compress: zstd-compress the bag's storage (MCAP chunks), see :class:`edgefuse.bag.BagWriter`.
        on_error: ``raise`` stops at the first unreadable item (ConvertError with file and line);
            ``skip`` reports it in ``ConvertReport.skipped`` and goes on.

    Returns:
        the report, also written as ``out/convert_report.json``.  If the conversion fails, the
        partly written ``out`` is removed.  If it is interrupted (SIGINT/SIGTERM, see
        :func:`edgefuse._cli_common.handle_signals`), the bag is closed validly with its report marked
        ``complete: false`` and moved to ``<out>.partial``, and ``KeyboardInterrupt`` is raised again.

    Raises:
        ConvertError: bad input (see the readers), unknown layout, output exists.
    """
    src, out = Path(src), Path(out)
    if storage not in ("mcap", "sqlite3"):
        raise ConvertError(f"unknown storage {storage!r}; expected mcap or sqlite3")
    if on_error not in ("raise", "skip"):
        raise ConvertError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if out.exists():
        raise ConvertError("output exists; remove it or choose another path", file=out)
    plan = read_dataset(src, layout=layout, compress_images=compress_images, start_ns=start_ns,
                        streams=streams, gps_offset_ns=gps_offset_ns, calibration=calibration,
                        camera_jpeg_quality=camera_jpeg_quality, calib_frame=calib_frame)
    window = overlap_window(plan) if window_ns == "overlap" else window_ns
    items, cut_notes = select_items(plan, window_ns=window, max_frames=frames)
    report = ConvertReport(layout=plan.layout, source=str(plan.root), output=str(out), storage=storage,
                           skipped=list(plan.skipped), notes=[*plan.notes, *cut_notes], window_ns=window)
    rig = _load_rig(plan, report) if plan.calibration is not None else None
    writer = BagWriter(out, storage=storage, compress=compress)
    try:
        writer.open()
        _write_all(writer, plan, items, rig=rig, report=report, on_error=on_error)
        with deferred_signals():
            writer.close()
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM: finish what was written, keep it as <out>.partial
        _keep_partial(writer, out, report, rig, exc)
    except BaseException:
        with suppress(Exception):
            writer.close()
        shutil.rmtree(out, ignore_errors=True)  # no half-written bag left behind
        raise
    if rig is not None:
        _save_rig(rig, out / RIG_FILE)
        report.rig_path = str(out / RIG_FILE)
    report.write_json(out / REPORT_FILE)
    return report


def _keep_partial(writer: BagWriter, out: Path, report: ConvertReport, rig: Rig | None,
                  exc: KeyboardInterrupt) -> NoReturn:
    """After SIGINT/SIGTERM: close the bag validly, write the report marked ``complete: false`` (and the rig)
    into it and move it to ``<out>.partial`` (replacing an earlier one), then raise ``KeyboardInterrupt``
    (:func:`~edgefuse._cli_common.interrupted`) saying where it is.  Further signals wait until this is done."""
    reason = interrupt_reason(exc)
    signum = interrupt_signal(exc)
    with deferred_signals():
        try:
            writer.close()
            if rig is not None:
                _save_rig(rig, out / RIG_FILE)
                report.rig_path = str(out / RIG_FILE)
            data = {**report.to_dict(), "complete": False, "error": reason}
            (out / REPORT_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            partial = out.with_name(out.name + ".partial")
            if partial.is_dir() and not partial.is_symlink() and (partial / REPORT_FILE).is_file():
                shutil.rmtree(partial)  # the leftover of an earlier interrupted conversion
            out.rename(partial)
        except (OSError, EdgefuseError) as err:
            shutil.rmtree(out, ignore_errors=True)
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
