"""A dataset as a time-ordered list of lazily loaded items, plus shared file parsers.

Readers (:mod:`edgefuse.convert.radiate`, :mod:`~edgefuse.convert.kitti_object`,
:mod:`~edgefuse.convert.kitti_raw`) scan a folder, parse every timestamps file, and return a
:class:`DatasetPlan`: one :class:`Item` per message to write, sorted by stamp, each with a loader
that reads its file only when the message is written.  Items that cannot be converted (a stamp
without a file, a file without a stamp, a duplicate) are recorded as :class:`SkippedItem` instead.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.convert.report import SkippedItem
from edgefuse.errors import ConvertError, InputDataError
from edgefuse.msgs.types import CompressedImageData, ImageData, PointCloud
from edgefuse.time import NS_PER_S, ns_from_seconds

MSG_IMAGE = "sensor_msgs/msg/Image"
MSG_COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
MSG_POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
MSG_IMU = "sensor_msgs/msg/Imu"
MSG_NAVSATFIX = "sensor_msgs/msg/NavSatFix"
MSG_CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
MSG_TF = "tf2_msgs/msg/TFMessage"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]{1,9})?")


@dataclass(frozen=True)
class Item:
    """One message to write.

    Attributes:
        stamp_ns: header stamp (ns).
        topic: output topic.
        stream: dataset stream it comes from (``zed_left``, ``velodyne``, ``oxts`` …).
        key: the item within its stream (frame number or file stem), for reports.
        source: the file the payload is read from.
        load: reads the file and returns the payload (an :mod:`edgefuse.msgs.types` dataclass);
            raises :class:`ConvertError` with file (and line) for unreadable input.
    """

    stamp_ns: int
    topic: str
    stream: str
    key: str
    source: Path
    load: Callable[[], Any] = field(compare=False, repr=False)


@dataclass
class DatasetPlan:
    """A dataset folder scanned and ready to convert.

    Attributes:
        layout: ``radiate``, ``kitti_object`` or ``kitti_raw``.
        root: the dataset folder.
        topics: output topic → ROS message type, in a stable order.
        items: messages to write, sorted by ``(stamp_ns, topic order, key)``.
        skipped: items found in the dataset that will not be converted, with reasons.
        notes: facts worth reporting (clock offsets, synthesized stamps, unconverted streams).
        camera_topics: image topic → (camera frame id, CameraInfo topic) for cameras whose
            calibration the rig provides; the converter writes one CameraInfo per image.
        calibration: file or folder the rig importer reads (None: no calibration found).
        item_calibration: item key → calibration file, for datasets whose calibration changes per
            frame (KITTI object); CameraInfo of that frame's images comes from it.
        camera_size: (width, height) of the calibrated camera's images when the calibration file
            does not say (KITTI object), so the rig's camera matches the images.
    """

    layout: str
    root: Path
    topics: dict[str, str]
    items: list[Item]
    skipped: list[SkippedItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    camera_topics: dict[str, tuple[str, str]] = field(default_factory=dict)
    calibration: Path | None = None
    item_calibration: dict[str, Path] = field(default_factory=dict)
    frame_of_topic: dict[str, str] = field(default_factory=dict)
    camera_size: tuple[int, int] | None = None

    def sort(self) -> None:
        """Sort items by stamp, then by topic order, then by key (deterministic)."""
        order = {topic: i for i, topic in enumerate(self.topics)}
        self.items.sort(key=lambda it: (it.stamp_ns, order.get(it.topic, len(order)), it.key))

    def stream(self) -> Iterator[tuple[str, int, Any]]:
        """Yield ``(topic, stamp_ns, payload)`` in time order, loading each file on demand."""
        for item in self.items:
            yield item.topic, item.stamp_ns, item.load()

    def counts(self) -> dict[str, int]:
        """Items per topic."""
        out = dict.fromkeys(self.topics, 0)
        for item in self.items:
            out[item.topic] += 1
        return out

    def span_ns(self, topic: str) -> tuple[int, int] | None:
        """First and last stamp of ``topic`` (ns), None if it has no item."""
        stamps = [it.stamp_ns for it in self.items if it.topic == topic]
        return (min(stamps), max(stamps)) if stamps else None


# --------------------------------------------------------------------------------------------
# timestamps files


def parse_radiate_timestamps(path: Path) -> dict[int, tuple[int, int]]:
    """Parse a RADIATE timestamps file (lines ``Frame: 000001 Time: 1574859772.427742418``).

    The decimal seconds are converted exactly to integer ns (no float).  Blank lines are ignored.

    Returns:
        frame number → (stamp_ns, 1-based line number); repeated frame numbers keep the first line.

    Raises:
        ConvertError: a line is not ``Frame: <int> Time: <decimal seconds>`` (file and line set).
    """
    out: dict[int, tuple[int, int]] = {}
    for lineno, raw in enumerate(_read_text_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 4 or parts[0] != "Frame:" or parts[2] != "Time:" or not parts[1].isdigit():
            raise ConvertError(f"expected 'Frame: <n> Time: <seconds>', got {line[:60]!r}",
                               file=path, line=lineno)
        if not _DECIMAL.fullmatch(parts[3]):
            raise ConvertError(f"bad time {parts[3][:40]!r}", file=path, line=lineno)
        stamp_ns = ns_from_seconds(parts[3])
        out.setdefault(int(parts[1]), (stamp_ns, lineno))
    return out


def ns_from_kitti_timestamp(text: str) -> int:
    """Parse a KITTI raw stamp ``2011-09-26 13:02:25.964389445`` (UTC) exactly to unix ns.

    Raises:
        ValueError: not ``YYYY-MM-DD HH:MM:SS[.fraction]`` with at most 9 fraction digits.
    """
    text = text.strip()
    whole, dot, frac = text.partition(".")
    if dot and (not frac.isdigit() or len(frac) > 9):
        raise InputDataError(f"bad fractional seconds in {text!r}")
    parsed = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S")  # KITTI stamps are UTC
    seconds = calendar.timegm(parsed.timetuple())
    return seconds * NS_PER_S + int((frac + "000000000")[:9] if frac else "0")


def parse_kitti_timestamps(path: Path) -> list[int]:
    """Parse a KITTI raw ``timestamps.txt`` (one UTC stamp per line, line i ↔ file index i).

    Returns:
        stamps in ns, index = file index.

    Raises:
        ConvertError: a line does not parse, or a blank line occurs before the last stamp.
    """
    lines = _read_text_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    stamps: list[int] = []
    for lineno, raw in enumerate(lines, start=1):
        try:
            stamps.append(ns_from_kitti_timestamp(raw))
        except ValueError:
            raise ConvertError(f"expected 'YYYY-MM-DD HH:MM:SS.fffffffff', got {raw.strip()[:60]!r}",
                               file=path, line=lineno) from None
    return stamps


def _read_text_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ConvertError("file not found", file=path)
    try:
        return path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as err:
        raise ConvertError(f"not an ASCII text file (byte {err.start})", file=path) from None


# --------------------------------------------------------------------------------------------
# payload loaders


def load_image(
    path: Path, stamp_ns: int, frame_id: str, *, compressed: bool, jpeg_quality: int | None = None
) -> ImageData | CompressedImageData:
    """Read a PNG as an :class:`ImageData` or, with ``compressed``, a :class:`CompressedImageData`.

    Decoded images use OpenCV's channel order: 3-channel images are ``bgr8`` (HxWx3 uint8),
    single-channel ones ``mono8`` (HxW uint8), 16-bit ones ``mono16``/``bgr16``.  Compressed
    images keep the file's PNG bytes unchanged (``format`` ``"png"``); they are still decoded once
    to check they are readable.  With ``jpeg_quality`` (1–100), compressed images are re-encoded as
    JPEG at that quality instead (lossy: smaller, and about 8x faster to decode than PNG; the
    format ROS camera drivers publish on ``/compressed`` by default).

    Raises:
        ConvertError: the file is not a PNG or does not decode (file set).
    """
    raw = path.read_bytes()
    if not raw.startswith(_PNG_SIGNATURE):
        raise ConvertError("not a PNG file (bad signature)", file=path, stamp_ns=stamp_ns)
    buf = np.frombuffer(raw, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ConvertError("PNG does not decode", file=path, stamp_ns=stamp_ns)
    if compressed and jpeg_quality is not None:
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ConvertError("JPEG encoding failed", file=path, stamp_ns=stamp_ns)
        return CompressedImageData(stamp_ns=stamp_ns, frame_id=frame_id, format="jpeg",
                                   data=np.ascontiguousarray(jpg.reshape(-1)))
    if compressed:
        return CompressedImageData(stamp_ns=stamp_ns, frame_id=frame_id, format="png", data=buf.copy())
    return ImageData(stamp_ns=stamp_ns, frame_id=frame_id, encoding=image_encoding(img), data=img)


def image_encoding(img: npt.NDArray[Any]) -> str:
    """ROS encoding for an OpenCV-decoded image (``mono8``, ``bgr8``, ``bgra8``, ``mono16`` …)."""
    depth = {np.dtype(np.uint8): "8", np.dtype(np.uint16): "16"}.get(img.dtype)
    if depth is None:
        raise ConvertError(f"unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        return f"mono{depth}"
    channels = img.shape[2]
    if channels == 1:
        return f"mono{depth}"
    if channels == 3:
        return f"bgr{depth}"
    if channels == 4:
        return f"bgra{depth}"
    raise ConvertError(f"unsupported channel count {channels}")


XYZI_DTYPE = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32)])


def load_kitti_bin(path: Path, stamp_ns: int, frame_id: str) -> PointCloud:
    """Read a KITTI Velodyne ``.bin`` (float32 x, y, z, reflectance per point, little endian).

    Returns:
        an unorganized :class:`PointCloud` with fields x, y, z (m, LiDAR frame) and intensity
        (the reflectance, 0..1), all float32.

    Raises:
        ConvertError: the file size is not a multiple of 16 bytes.
    """
    raw = path.read_bytes()
    if len(raw) % 16:
        raise ConvertError(f"size {len(raw)} is not a multiple of 16 bytes (4 float32 per point)",
                           file=path, stamp_ns=stamp_ns)
    points = np.frombuffer(raw, dtype=XYZI_DTYPE.newbyteorder("<")).astype(XYZI_DTYPE)
    return PointCloud(stamp_ns=stamp_ns, frame_id=frame_id, points=points, height=1,
                      width=len(points), is_dense=bool(np.isfinite(points["x"]).all()))
