"""Built-in stages.

- ``decode_image``: CompressedImage → Image (OpenCV decode).
- ``lidar_camera_projection``: LiDAR (or radar) points → z-buffered sparse depth image (32FC1, camera frame)
  and a coloured point cloud of the points in view (x, y, z, rgb), through a rig camera.  The hot path is
  the Numba kernel of :class:`edgefuse.fusion.Projector`, compiled in :meth:`start`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import cv2
import numpy as np

from edgefuse.errors import CalibrationError, MessageError, PipelineError
from edgefuse.msgs.types import CompressedImageData, ImageData, PointCloud
from edgefuse.pipeline.stage import Param, Stage, register_stage

COLORED_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


@register_stage("decode_image")
class DecodeImage(Stage):
    """Decode a CompressedImage (PNG/JPEG) into an Image (``bgr8``, ``mono8``, ``mono16`` or ``bgra8``)."""

    inputs: ClassVar[dict[str, str]] = {"image": "CompressedImage"}
    outputs: ClassVar[dict[str, str]] = {"image": "Image"}
    params: ClassVar[dict[str, Param]] = {"grayscale": Param(bool, False, doc="decode to mono8")}

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        comp: CompressedImageData = inputs["image"]
        flag = cv2.IMREAD_GRAYSCALE if self.p["grayscale"] else cv2.IMREAD_UNCHANGED
        img = cv2.imdecode(np.asarray(comp.data, dtype=np.uint8), flag)
        if img is None:
            raise MessageError(f"cannot decode {comp.format!r} image ({comp.data.size} bytes)", stamp_ns=stamp_ns)
        if img.ndim == 2:
            encoding = "mono16" if img.dtype == np.uint16 else "mono8"
        elif img.shape[2] == 4:
            encoding = "bgra8"
        else:
            encoding = "bgr8" if img.dtype == np.uint8 else "16UC3"
        return {"image": ImageData(comp.stamp_ns, comp.frame_id, encoding, img)}


def _lookup_camera(rig: Any, name: str) -> Any:
    try:
        return rig.camera(name)
    except (KeyError, CalibrationError):
        return None


@register_stage("lidar_camera_projection")
class LidarCameraProjection(Stage):
    """Project a point cloud into a rig camera: sparse depth image + coloured cloud.

    Inputs: ``cloud`` (PointCloud with x, y, z in its ``frame_id``), optional ``image`` (Image, bgr8/rgb8/mono8,
    same size as the camera) used to colour the points.  Outputs: ``depth`` (Image 32FC1 in metres, 0 where no
    return, in the camera's frame), ``colored_cloud`` (PointCloud of the points in view, x/y/z in the cloud's
    frame, ``rgb`` packed as a float32 like PCL / RViz expect).

    The output arrays are buffers owned by the stage, overwritten by the next call: sinks serialise them
    before the next set is processed.
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud", "image?": "Image"}
    outputs: ClassVar[dict[str, str]] = {"depth": "Image", "colored_cloud": "PointCloud"}
    params: ClassVar[dict[str, Param]] = {
        "camera": Param(str, required=True, doc="rig camera name"),
        "cloud_frame": Param(str, None, doc="override the cloud's frame_id"),
        "min_depth_m": Param(float, 0.1),
        "max_depth_m": Param(float, 200.0),
        "max_points": Param(int, 200_000),
    }

    @classmethod
    def check_rig(cls, params: Mapping[str, Any], rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time check: the camera exists and a transform links the cloud's frame to it."""
        if rig is None:
            return ["needs a rig (calibration) but the pipeline names none"]
        cam = _lookup_camera(rig, str(params.get("camera")))
        if cam is None:
            return [f"camera '{params.get('camera')}' is not in the rig (cameras: {', '.join(sorted(rig.cameras))})"]
        cloud_frame = params.get("cloud_frame") or frames.get("cloud")
        if cloud_frame is None:
            return []
        try:
            rig.transform(cam.frame_id, cloud_frame)
        except CalibrationError as exc:
            return [f"no calibration from frame '{cloud_frame}' to camera frame '{cam.frame_id}': {exc.message}"]
        return []

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        camera = _lookup_camera(rig, self.p["camera"]) if rig is not None else None
        if camera is None:
            raise PipelineError(f"stage '{name}': camera '{self.p['camera']}' not in the rig")
        self.camera: Any = camera
        self.input_frames: dict[str, str | None] = {}
        self._projectors: dict[str, Any] = {}
        self._colored = np.zeros(self.p["max_points"], dtype=COLORED_POINT_DTYPE)
        self._xyz = np.zeros((self.p["max_points"], 3), dtype=np.float32)

    def _projector(self, frame: str) -> Any:
        proj = self._projectors.get(frame)
        if proj is None:
            from edgefuse.fusion import Projector

            T = self.rig.transform(self.camera.frame_id, frame)
            model_id, K, D = self.camera.kernel_params()
            proj = Projector(
                model_id, K, D, int(self.camera.width), int(self.camera.height), np.asarray(T.matrix),
                min_depth_m=float(self.p["min_depth_m"]), max_depth_m=float(self.p["max_depth_m"]),
                max_points=int(self.p["max_points"]), max_radius=float(self.camera.max_radius),
            )
            proj.warmup()
            self._projectors[frame] = proj
        return proj

    def start(self) -> None:
        frame = self.p["cloud_frame"] or self.input_frames.get("cloud")
        if frame:
            self._projector(frame)  # compiles the kernels now, never on the first message

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        frame = self.p["cloud_frame"] or cloud.frame_id
        proj = self._projector(frame)
        pts = cloud.points
        n = pts.shape[0]
        if n > self._xyz.shape[0]:
            self._xyz = np.zeros((n, 3), dtype=np.float32)
            self._colored = np.zeros(n, dtype=COLORED_POINT_DTYPE)
        xyz = self._xyz[:n]
        xyz[:, 0] = pts["x"]
        xyz[:, 1] = pts["y"]
        xyz[:, 2] = pts["z"]
        res = proj.project(xyz, per_point=True)  # uv/valid computed in the same pass: colours need them
        out_frame = self.camera.frame_id
        depth = ImageData(stamp_ns, out_frame, "32FC1", res.depth)
        image: ImageData | None = inputs.get("image")
        valid = res.valid
        m = int(res.n_valid)
        colored = self._colored[:m]
        sel = np.flatnonzero(valid)
        colored["x"] = xyz[sel, 0]
        colored["y"] = xyz[sel, 1]
        colored["z"] = xyz[sel, 2]
        if image is not None:
            bgr = _as_bgr(image)
            if bgr.shape[0] != self.camera.height or bgr.shape[1] != self.camera.width:
                raise MessageError(
                    f"image is {bgr.shape[1]}x{bgr.shape[0]} but camera '{self.p['camera']}' is "
                    f"{self.camera.width}x{self.camera.height}", stamp_ns=stamp_ns)
            colors = proj.colorize(bgr, res)[sel]  # BGR order
            packed = (colors[:, 2].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) | colors[:, 0]
            colored["rgb"] = packed.view(np.float32)
        else:
            colored["rgb"] = np.float32(0)
        return {
            "depth": depth,
            "colored_cloud": PointCloud(stamp_ns, cloud.frame_id, colored, 1, m, True),
        }


def _as_bgr(image: ImageData) -> np.ndarray[Any, Any]:
    data = image.data
    enc = image.encoding
    if enc in ("bgr8", "8UC3"):
        return np.ascontiguousarray(data)
    if enc == "rgb8":
        return np.ascontiguousarray(data[..., ::-1])
    if enc in ("mono8", "8UC1"):
        return np.ascontiguousarray(np.repeat(data[..., None], 3, axis=2))
    if enc in ("bgra8", "rgba8"):
        bgr = data[..., :3]
        return np.ascontiguousarray(bgr if enc == "bgra8" else bgr[..., ::-1])
    raise MessageError(f"cannot colour points from a {enc} image")
