"""Cameras and video files through OpenCV's ``cv2.VideoCapture``.

``open_source("camera:///dev/video0")`` (a V4L2 device, live), ``open_source("camera:///path/clip.avi")`` or
a path ending in ``.avi``/``.mkv``/``.mp4``/``.mov`` (a video file, replayed), ``camera+gst://<pipeline>``
(a GStreamer pipeline ending in ``appsink``; only where this cv2 build has GStreamer, else a
:class:`~edgefuse.errors.DriverError` says so).  Options (query or keyword): ``topic`` (default
``/camera/image``), ``frame_id`` (``camera``), ``passthrough`` (``1``: default), ``width``/``height``/``fps``
(devices), ``start_ns`` (files: the stamp of the first frame, default 0), ``reconnect_attempts``.

**Compressed pass-through.** MJPEG is published as ``sensor_msgs/CompressedImage`` (format ``jpeg``)
with the camera's own JPEG bytes, never decoded and re-encoded: for files the FFmpeg back end is asked
for the demuxed packets (``CAP_PROP_FORMAT = -1``: ``read`` returns the encoded packet, 1×N uint8); for
V4L2 devices the driver is asked for ``MJPG`` and OpenCV's conversion is turned off
(``CAP_PROP_CONVERT_RGB = 0``), so ``read`` returns the buffer as dequeued.  Other codecs (and
``passthrough=0``) give decoded ``sensor_msgs/Image`` ``bgr8``.

**Stamps.** Files: the frame's presentation time (``CAP_PROP_POS_MSEC`` after the read) + ``start_ns``;
``recv_ns`` = stamp.  V4L2: OpenCV reports the driver's buffer timestamp in ``CAP_PROP_POS_MSEC`` — the
kernel's ``v4l2_buffer.timestamp``, taken by most UVC drivers at the start of the frame's transfer
(``V4L2_BUF_FLAG_TSTAMP_SRC_SOE``), on ``CLOCK_MONOTONIC`` — the closest to exposure this API reaches.
It is moved onto the wall clock (``stamp = wall_now − (monotonic_now − buffer_ts)``); when the driver
gives no timestamp (0), the stamp is the host wall-clock time right after ``grab`` returned
(``meta["stamp_source"]`` says which).  GStreamer: the time right after ``grab``.

**Failures.** A read that fails before a file's announced frame count (a truncated or damaged file) ends
the source with :class:`DriverError` naming how many frames came; a device that stops delivering
(unplugged) is reopened up to ``reconnect_attempts`` times, then :class:`DriverError`.  Frames that decode
to nothing are counted (``empty_frames``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from edgefuse.envelope import Envelope
from edgefuse.errors import DriverError, SourceError
from edgefuse.msgs.types import CompressedImageData, ImageData
from edgefuse.sources.base import RecvClock, SourceTopic, StampClock, TimeOffsets

__all__ = ["CameraSource", "open_camera"]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
VIDEO_SUFFIXES = (".avi", ".mkv", ".mp4", ".mov")
_MJPEG = {"MJPG", "mjpg", "MJPEG", "jpeg", "AVRN", "LJPG"}


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python-headless is a core dependency
        raise DriverError("OpenCV is not installed (pip install opencv-python-headless)") from None
    return cv2


def _fourcc(value: float) -> str:
    code = int(value)
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00")


class CameraSource:
    """One ``cv2.VideoCapture`` (see the module documentation)."""

    stamp_clock: StampClock = "header"

    def __init__(self, target: str, kind: str, *, topic: str = "/camera/image", frame_id: str = "camera",
                 passthrough: bool = True, width: int = 0, height: int = 0, fps: float = 0.0, start_ns: int = 0,
                 reconnect_attempts: int = 3, reconnect_delay_s: float = 0.5) -> None:
        if kind not in ("file", "device", "gstreamer"):
            raise SourceError(f"unknown camera kind {kind!r}")
        self.target, self.kind = target, kind
        self.live = kind != "file"
        self.recv_clock: RecvClock = "host_monotonic" if self.live else "recorded"
        self.topic, self.frame_id = topic, frame_id
        self.passthrough = bool(passthrough)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.start_ns = int(start_ns)
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_delay_s = float(reconnect_delay_s)
        self.offsets = TimeOffsets()
        self._cap: Any = None
        self._compressed = False
        self._stop = threading.Event()
        self.frames = 0
        self.empty_frames = 0
        self.reconnects = 0
        self.codec = ""
        self.frame_count: int | None = None
        if kind == "file" and not Path(target).is_file():
            raise FileNotFoundError(f"No such file or directory: '{target}'")

    # -- lifecycle
    def _open_capture(self) -> Any:
        cv2 = _cv2()
        if self.kind == "gstreamer":
            if "GStreamer:                   YES" not in cv2.getBuildInformation():
                raise DriverError("this OpenCV build has no GStreamer support (pipelines need an OpenCV built "
                                  "with GStreamer, e.g. Debian's python3-opencv)", file=self.target)
            cap = cv2.VideoCapture(self.target, cv2.CAP_GSTREAMER)
        elif self.kind == "device":
            cap = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
            if cap.isOpened():
                if self.passthrough:
                    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
                for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                                    (cv2.CAP_PROP_FPS, self.fps)):
                    if value:
                        cap.set(prop, value)
                if self.passthrough and _fourcc(cap.get(cv2.CAP_PROP_FOURCC)) in _MJPEG:
                    cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        else:
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise DriverError("cannot open the camera / video", file=self.target)
        self.codec = _fourcc(cap.get(cv2.CAP_PROP_FOURCC))
        self._compressed = False
        if self.passthrough and self.codec in _MJPEG:
            if self.kind == "file":
                self._compressed = bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
            elif self.kind == "device":
                self._compressed = not cap.get(cv2.CAP_PROP_CONVERT_RGB)
        if self.kind == "file":
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.frame_count = n if n > 0 else None
        return cap

    def open(self) -> CameraSource:
        if self._cap is None:
            self._cap = self._open_capture()
        return self

    def close(self) -> None:
        self._stop.set()
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def stop(self) -> None:
        """End :meth:`envelopes` after the frame being read (any thread)."""
        self._stop.set()

    def __enter__(self) -> CameraSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topics(self) -> Mapping[str, SourceTopic]:
        if self._cap is None:
            self.open()
        return {self.topic: SourceTopic(self.topic, COMPRESSED if self._compressed else IMAGE, self.frame_count)}

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets.set(offsets_ns)

    # -- reading
    def _payload(self, frame: Any, stamp: int) -> CompressedImageData | ImageData | None:
        arr = np.asarray(frame)
        if self._compressed:
            data = np.ascontiguousarray(arr.reshape(-1), dtype=np.uint8)
            if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
                return None
            return CompressedImageData(stamp, self.frame_id, "jpeg", data)
        if arr.ndim == 2:
            return ImageData(stamp, self.frame_id, "mono8", arr)
        if arr.ndim == 3 and arr.shape[2] == 3:
            return ImageData(stamp, self.frame_id, "bgr8", arr)
        return None

    def _stamp(self, cap: Any, cv2: Any) -> tuple[int, int, str]:
        """(stamp_ns, recv_ns, source of the stamp) for the frame just grabbed."""
        mono, wall = time.monotonic_ns(), time.time_ns()
        pos_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        if self.kind == "file":
            stamp = self.start_ns + round(pos_ms * 1e6)
            return stamp, stamp, "presentation_time"
        if self.kind == "device" and pos_ms > 0:
            buf_ns = round(pos_ms * 1e6)
            if 0 <= mono - buf_ns < 10 * 10**9:  # a monotonic buffer stamp from the last seconds
                return wall - (mono - buf_ns), mono, "v4l2_buffer"
        return wall, mono, "host_after_grab"

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        """Frames until the end of a file, :meth:`stop`, or a failure (:class:`DriverError`)."""
        cv2 = _cv2()
        self.open()
        want = topics is None or self.topic in topics
        msgtype = COMPRESSED if self._compressed else IMAGE
        while not self._stop.is_set():
            cap = self._cap
            if cap is None:
                return
            ok = cap.grab()
            if ok:
                stamp, recv, how = self._stamp(cap, cv2)
                ok, frame = cap.retrieve()
            if not ok:
                if self._stop.is_set():
                    return
                if self.kind == "file":
                    if self.frame_count is not None and self.frames < self.frame_count:
                        raise DriverError(f"video ends after {self.frames} of {self.frame_count} frames (truncated "
                                          "or damaged)", file=self.target)
                    return
                self._reopen()
                continue
            payload = self._payload(frame, stamp)
            if payload is None:
                self.empty_frames += 1
                continue
            self.frames += 1
            if want:
                env = Envelope(self.topic, stamp, recv, payload, msgtype, {"stamp_source": how})
                yield self.offsets.apply(env)

    def _reopen(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        for _ in range(self.reconnect_attempts):
            if self._stop.wait(self.reconnect_delay_s):
                return
            try:
                self._cap = self._open_capture()
            except DriverError:
                continue
            self.reconnects += 1
            return
        raise DriverError(f"camera stopped delivering frames and could not be reopened "
                          f"({self.reconnect_attempts} attempt(s))", file=self.target)

    def stats(self) -> dict[str, Any]:
        return {"frames": self.frames, "empty_frames": self.empty_frames, "reconnects": self.reconnects,
                "codec": self.codec, "compressed_passthrough": self._compressed, "frame_count": self.frame_count}


_INT = ("width", "height", "start_ns", "reconnect_attempts")
_FLOAT = ("fps", "reconnect_delay_s")


def open_camera(url: str | Path, **options: Any) -> CameraSource:
    """Opener for ``camera://`` and ``camera+gst://`` URLs and video files."""
    text = str(url)
    if "://" not in text:
        return CameraSource(text, "file", **options)
    parts = urlsplit(text)
    opts: dict[str, Any] = {}
    if parts.scheme.lower() == "camera+gst":
        target = unquote(text.split("://", 1)[1])
        kind = "gstreamer"
    else:
        for key, values in parse_qs(parts.query).items():
            v = values[-1]
            try:
                opts[key] = (int(v) if key in _INT else float(v) if key in _FLOAT
                             else v not in ("0", "false", "no") if key == "passthrough" else v)
            except ValueError:
                raise SourceError(f"option {key}={v!r} is not a number", file=text) from None
        target = unquote(parts.netloc + parts.path)
        kind = "device" if target.startswith("/dev/") else "file"
    opts.update(options)
    try:
        return CameraSource(target, kind, **opts)
    except TypeError as exc:
        raise SourceError(f"bad option: {exc}", file=text) from None


open_camera.schemes = ("camera", "camera+gst")  # type: ignore[attr-defined]
open_camera.suffixes = VIDEO_SUFFIXES  # type: ignore[attr-defined]
