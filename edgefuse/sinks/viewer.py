"""What a viewer (Foxglove, RViz) needs beside a pipeline's outputs to show them: frames, cameras, pixels.

:class:`ViewerExtras` decides which extra messages a recording sink writes next to the outputs:

- ``/tf_static`` (``tf2_msgs/TFMessage``, recorded with the latched QoS): every transform of the rig's
  frame graph, ``T_parent_from_child``, stamped with the first output's stamp and written just before it
  (an output of a held input, e.g. the first radar scan's points, can carry an older stamp and so come
  earlier in record-time order; viewers take latched transforms as valid at all times);
- a ``sensor_msgs/CameraInfo`` for every rig camera, at the same time, on
  ``<camera topic namespace>/camera_info``: the namespace of the rig sensor's image topic for that camera
  (its transport suffix such as ``/compressed`` and then its last name removed: ``/zed_left/image_raw/
  compressed`` → ``/zed_left/camera_info``), or ``/<camera name>/camera_info`` for a camera without a
  topic (see :func:`camera_info_topic`);
- for an image output in a camera's frame and of that camera's size, a CameraInfo beside it
  (``/edgefuse/zed_left/depth`` → ``/edgefuse/zed_left/camera_info``), written once, before its first
  image, with that image's stamp — where RViz's camera display and Foxglove's image panel look for it;
- for an image output whose encoding viewers do not show (anything but :data:`VIEWABLE_ENCODINGS`, e.g.
  a ``32FC3`` bird's-eye view or a ``64FC1`` image), a viewable companion on ``<topic>/viewable`` with the
  same stamp after each such image (see :func:`viewable_image` for the normalisation).  ``32FC1`` depth
  is viewable as is and gets none.

CameraInfo topics are recorded with the latched QoS too (each is written once).  An extra topic never
replaces an output: a name already used is skipped and counted in :attr:`ViewerExtras.skipped`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.msgs.image import encoding_layout
from edgefuse.msgs.types import CameraInfoData, ImageData, TransformData
from edgefuse.rig import Rig

TF_STATIC = "/tf_static"
MSG_TF = "tf2_msgs/msg/TFMessage"
MSG_CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
MSG_IMAGE = "sensor_msgs/msg/Image"
VIEWABLE_SUFFIX = "/viewable"

#: Encodings Foxglove and RViz both display as they are.
VIEWABLE_ENCODINGS = frozenset({"rgb8", "rgba8", "bgr8", "bgra8", "mono8", "mono16", "8UC1", "16UC1", "32FC1"})

_TRANSPORT_SUFFIXES = ("/compressed", "/compressedDepth", "/theora", "/zstd", "/ffmpeg", "/h264")


@dataclass(frozen=True, slots=True)
class Extra:
    """One extra message: topic, ROS message type, payload, and the QoS preset of its topic (or None)."""

    topic: str
    msgtype: str
    payload: Any
    qos: str | None = None


def namespace(topic: str) -> str:
    """``/a/b/c`` → ``/a/b``; ``/a`` → ``""``."""
    return topic.rstrip("/").rsplit("/", 1)[0]


def camera_info_topic(rig: Rig, camera: str) -> str:
    """Where the CameraInfo of rig camera ``camera`` goes (see the module documentation)."""
    cam = rig.cameras[camera]
    for sensor in (rig.sensors.get(camera), *rig.sensors.values()):
        if sensor is None or sensor.kind != "camera" or not sensor.topic:
            continue
        if sensor.name != camera and sensor.frame_id != cam.frame_id:
            continue
        image_topic = sensor.topic.rstrip("/")
        for suffix in _TRANSPORT_SUFFIXES:
            if image_topic.endswith(suffix):
                image_topic = image_topic[: -len(suffix)]
                break
        return f"{namespace(image_topic)}/camera_info"
    return f"/{camera.strip('/')}/camera_info"


def rig_transforms(rig: Rig, stamp_ns: int) -> list[TransformData]:
    """Every edge of the rig's frame graph (``T_parent_from_child``) as :class:`TransformData`."""
    out = []
    for edge in rig.frames:
        T = edge.T_parent_from_child
        out.append(TransformData(stamp_ns=int(stamp_ns), parent_frame=edge.parent, child_frame=edge.child,
                                 translation=np.array(T.t, dtype=np.float64),
                                 rotation_xyzw=np.array(T.to_quat_xyzw(), dtype=np.float64)))
    return out


def is_viewable(encoding: str) -> bool:
    """Whether Foxglove and RViz display an image of this encoding as it is."""
    return encoding in VIEWABLE_ENCODINGS


def viewable_image(image: ImageData) -> ImageData:
    """A viewable version of ``image``: ``mono8`` for one channel, ``rgb8`` for two or more.

    Normalisation, per message and per channel: channel ``c`` (0, 1, 2 → red, green, blue; a third
    channel of zeros for two-channel images; channels after the third are left out) is mapped linearly from
    ``[min, max]`` of its finite values in this image to ``[0, 255]`` (rounded); non-finite values and a
    constant channel map to 0.  So values are comparable within one image, not between images.
    """
    _, channels = encoding_layout(image.encoding)
    data = np.asarray(image.data)
    h, w = data.shape[0], data.shape[1]
    planes = data.reshape(h, w, channels)
    keep = min(channels, 3)
    out = np.zeros((h, w, 1 if channels == 1 else 3), dtype=np.uint8)
    for c in range(keep):
        out[:, :, c] = _scale_to_u8(planes[:, :, c])
    encoding = "mono8" if channels == 1 else "rgb8"
    return ImageData(image.stamp_ns, image.frame_id, encoding, out[:, :, 0] if channels == 1 else out)


def _scale_to_u8(plane: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    values = plane.astype(np.float64)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.uint8)
    if not finite.any():
        return out
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi > lo:
        scaled = np.rint((values[finite] - lo) * (255.0 / (hi - lo)))
        out[finite] = np.clip(scaled, 0, 255).astype(np.uint8)
    return out


@dataclass
class ViewerExtras:
    """Decides the extra messages for one recording (see the module documentation).

    Args:
        outputs: the sink's output topics → edge type.
        rig: the pipeline's rig (None: no ``/tf_static`` and no CameraInfo).
    """

    outputs: Mapping[str, str]
    rig: Rig | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    _started: bool = False
    _image_topics_seen: set[str] = field(default_factory=set)
    _used_topics: set[str] = field(default_factory=set)
    _companions: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._used_topics = set(self.outputs)

    def _claim(self, topic: str, why: str) -> bool:
        if topic in self._used_topics:
            self.skipped.setdefault(topic, f"{why}: topic already used")
            return False
        self._used_topics.add(topic)
        return True

    def before(self, topic: str, stamp_ns: int, payload: Any) -> list[Extra]:
        """Extra messages to write before the output ``payload`` on ``topic``."""
        extras: list[Extra] = []
        if not self._started:
            self._started = True
            extras += self._static(stamp_ns)
        if isinstance(payload, ImageData) and topic not in self._image_topics_seen:
            self._image_topics_seen.add(topic)
            info = self._beside_image(topic, payload, stamp_ns)
            if info is not None:
                extras.append(info)
        return extras

    def after(self, topic: str, stamp_ns: int, payload: Any) -> list[Extra]:
        """Extra messages to write after the output ``payload`` on ``topic`` (its viewable companion)."""
        if not isinstance(payload, ImageData) or is_viewable(payload.encoding):
            return []
        companion = topic.rstrip("/") + VIEWABLE_SUFFIX
        ok = self._companions.get(companion)
        if ok is None:
            ok = self._companions[companion] = self._claim(companion, f"viewable companion of {topic}")
        if not ok:
            return []
        try:
            image = viewable_image(payload)
        except (ValueError, TypeError) as exc:  # an image whose data does not fit its encoding
            self.skipped[companion] = f"cannot make a viewable image: {exc}"
            return []
        image.stamp_ns = int(stamp_ns)
        return [Extra(companion, MSG_IMAGE, image)]

    def _static(self, stamp_ns: int) -> list[Extra]:
        rig = self.rig
        if rig is None:
            return []
        extras: list[Extra] = []
        transforms = rig_transforms(rig, stamp_ns)
        if transforms and self._claim(TF_STATIC, "rig transforms"):
            extras.append(Extra(TF_STATIC, MSG_TF, transforms, "latched"))
        for name, cam in rig.cameras.items():
            topic = camera_info_topic(rig, name)
            if self._claim(topic, f"camera {name}"):
                extras.append(Extra(topic, MSG_CAMERA_INFO, cam.to_camera_info(stamp_ns), "latched"))
        return extras

    def _beside_image(self, topic: str, image: ImageData, stamp_ns: int) -> Extra | None:
        rig = self.rig
        if rig is None:
            return None
        shape = np.shape(image.data)
        for cam in rig.cameras.values():
            if cam.frame_id != image.frame_id:
                continue
            info_topic = f"{namespace(topic)}/camera_info"
            if (int(cam.width), int(cam.height)) != (shape[1], shape[0]):
                self.skipped.setdefault(info_topic, f"{topic} is {shape[1]}x{shape[0]}, camera {cam.name} "
                                                    f"{cam.width}x{cam.height}")
                return None
            if not self._claim(info_topic, f"camera {cam.name} beside {topic}"):
                return None
            info: CameraInfoData = cam.to_camera_info(stamp_ns)
            return Extra(info_topic, MSG_CAMERA_INFO, info, "latched")
        return None
