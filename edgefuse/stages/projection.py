"""Projection-family stages: LiDAR/radar → camera projection, PointPainting, depth densification,
multi-camera projection.

- ``lidar_camera_projection``: LiDAR (or radar) points → z-buffered sparse depth image (32FC1, camera frame)
  and a coloured point cloud of the points in view (x, y, z, rgb), through a rig camera.  The hot path is
  the Numba kernel of :class:`edgefuse.fusion.Projector`, compiled in :meth:`start`.
- ``point_painting``: cloud (PointCloud) + per-pixel scores (Image ``32FC<C>``, ``mono8``, ``bgr8`` …,
  the size of a rig camera) → the cloud with ``C`` float32 fields appended (each point gets the
  scores of its pixel; points the camera does not see get ``fill``).  :mod:`edgefuse.fusion.painting`.
- ``depth_densify``: sparse depth image (Image ``32FC1``, metres, 0 = none) → dense depth image
  (``32FC1``), IP-Basic-style morphology.  :mod:`edgefuse.fusion.densify`.
- ``multi_camera_projection``: cloud → the cloud's x, y, z plus the camera each point is assigned to
  (``camera`` int32, -1 = none, lowest camera index in ``cameras`` that sees it) and its pixel
  (``u``, ``v`` float32, NaN where none).  :class:`edgefuse.fusion.projection.MultiCameraProjector`.

Every stage validates its parameters at construction, allocates its buffers there (or, for a size
only known from the first message, once on that message), and compiles its kernels in ``start``.
Output arrays are buffers owned by the stage and overwritten by the next call: sinks serialise
them before the next set is processed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion.densify import DepthCompleter, DepthImageError
from edgefuse.fusion.painting import FeatureArrayError, PointPainter, append_point_fields, painted_dtype
from edgefuse.fusion.projection import MultiCameraProjector, Projector
from edgefuse.msgs.types import ImageData, PointCloud
from edgefuse.stages._device import StageDevice
from edgefuse.stages._rig import check_camera_link, lookup_camera
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = [
    "DepthDensify",
    "DepthDensifyParams",
    "LidarCameraProjection",
    "MultiCameraProjection",
    "MultiCameraProjectionParams",
    "PointPainting",
    "PointPaintingParams",
    "ProjectionParams",
]

#: largest initial point buffer (points; grown once beyond it when a larger cloud comes)
MAX_POINTS = 10_000_000
#: largest image side [px] of a depth image sized from parameters
MAX_IMAGE_SIDE = 16_384
#: largest image [px] a depth completer is built for from parameters (5 float32 buffers of this size)
MAX_IMAGE_PIXELS = 1 << 25
#: largest morphology kernel side [px]
MAX_KERNEL = 255


def _depth_range_problems(min_depth_m: float, max_depth_m: float) -> list[str]:
    if not min_depth_m < max_depth_m:
        return [f"min_depth_m ({min_depth_m:g}) must be < max_depth_m ({max_depth_m:g})"]
    return []


@dataclass(frozen=True, kw_only=True)
class ProjectionParams(StageParams):
    """Parameters of ``lidar_camera_projection``."""

    camera: str = param(doc="rig camera name", min_len=1)
    cloud_frame: str | None = param(None, doc="override the cloud's frame_id", min_len=1)
    min_depth_m: float = param(0.1, unit="m", gt=0.0, le=1e4, doc="points nearer than this are dropped")
    max_depth_m: float = param(200.0, unit="m", gt=0.0, le=1e6, doc="points farther than this are dropped")
    max_points: int = param(200_000, ge=1, le=MAX_POINTS, doc="initial buffer size (grown once if a cloud is larger)")
    device: Literal["auto", "cpu", "cuda"] = param(
        "auto", doc="where the projection runs: auto (CUDA when usable), cpu, cuda")

    def check(self) -> list[str]:
        """min_depth_m < max_depth_m."""
        return _depth_range_problems(self.min_depth_m, self.max_depth_m)


@dataclass(frozen=True, kw_only=True)
class PointPaintingParams(ProjectionParams):
    """Parameters of ``point_painting``."""

    camera: str = param(doc="rig camera the scores belong to", min_len=1)
    field_names: tuple[str, ...] | None = param(None, min_len=1, max_len=256, unique=True,
                                                doc="names of the appended fields (one per score channel)")
    field_prefix: str = param("score_", min_len=1, doc="field name prefix when field_names is not given")
    fill: float = param(0.0, ge=-3.4e38, le=3.4e38, finite=False, nan=True,
                        doc="value for points that are not painted (.nan and .inf allowed)")
    visible_only: bool = param(False, doc="paint only the z-buffer winner of each pixel")


@dataclass(frozen=True, kw_only=True)
class DepthDensifyParams(StageParams):
    """Parameters of ``depth_densify``."""

    camera: str | None = param(None, min_len=1, doc="rig camera giving the image size")
    width: int | None = param(None, unit="px", ge=1, le=MAX_IMAGE_SIDE, doc="image width (with height)")
    height: int | None = param(None, unit="px", ge=1, le=MAX_IMAGE_SIDE, doc="image height (with width)")
    min_depth_m: float = param(0.1, unit="m", gt=0.0, le=1e4, doc="input depths below this are ignored")
    max_depth_m: float = param(100.0, unit="m", gt=0.0, le=1e6, doc="input depths above this are ignored")
    dilation_shape: Literal["full", "cross", "diamond"] = param("diamond", doc="dilation kernel shape")
    dilation_size: int = param(5, unit="px", ge=1, le=MAX_KERNEL, doc="dilation kernel side (odd)")
    large_hole_size: int = param(31, unit="px", ge=0, le=MAX_KERNEL,
                                 doc="large-hole fill kernel side (odd; 0 disables the large-hole fill)")
    extend_to_top: bool = param(False, doc="extend the top pixel of each column to the image top")
    median_blur: bool = param(True, doc="5x5 median blur of the result")
    gaussian_blur: bool = param(True, doc="Gaussian blur of the result")

    def check(self) -> list[str]:
        """Odd kernels, both width and height (or neither), a bounded image, min_depth_m < max_depth_m."""
        problems = _depth_range_problems(self.min_depth_m, self.max_depth_m)
        if self.dilation_size % 2 == 0:
            problems.append(f"dilation_size must be odd, got {self.dilation_size}")
        if self.large_hole_size != 0 and self.large_hole_size % 2 == 0:
            problems.append(f"large_hole_size must be odd (or 0), got {self.large_hole_size}")
        if (self.width is None) != (self.height is None):
            problems.append("give both width and height (or neither)")
        elif self.width is not None and self.height is not None and self.width * self.height > MAX_IMAGE_PIXELS:
            problems.append(f"width x height must be at most {MAX_IMAGE_PIXELS} pixels, "
                            f"got {self.width}x{self.height}")
        return problems


@dataclass(frozen=True, kw_only=True)
class MultiCameraProjectionParams(StageParams):
    """Parameters of ``multi_camera_projection``."""

    cameras: tuple[str, ...] = param(min_len=1, max_len=64, unique=True,
                                     doc="rig camera names, in camera-index order")
    cloud_frame: str | None = param(None, min_len=1, doc="override the cloud's frame_id")
    min_depth_m: float = param(0.1, unit="m", gt=0.0, le=1e4, doc="points nearer than this are dropped")
    max_depth_m: float = param(200.0, unit="m", gt=0.0, le=1e6, doc="points farther than this are dropped")
    max_points: int = param(200_000, ge=1, le=MAX_POINTS, doc="initial buffer size (grown once if a cloud is larger)")

    def check(self) -> list[str]:
        """min_depth_m < max_depth_m."""
        return _depth_range_problems(self.min_depth_m, self.max_depth_m)

ASSIGNED_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("camera", "<i4"),
                                 ("u", "<f4"), ("v", "<f4")])
COLORED_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


def _xyz_into(cloud: PointCloud, buffer: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32],
                                                                             npt.NDArray[np.float32]]:
    """Copy the cloud's x, y, z into ``buffer`` (grown once if too small); return (view, buffer)."""
    pts = cloud.points
    names = pts.dtype.names or ()
    if not all(f in names for f in ("x", "y", "z")):
        raise MessageError(f"point cloud has no x/y/z fields (fields: {', '.join(names)})",
                           stamp_ns=cloud.stamp_ns)
    n = pts.shape[0]
    if n > buffer.shape[0]:
        buffer = np.zeros((n, 3), dtype=np.float32)
    xyz = buffer[:n]
    xyz[:, 0] = pts["x"]
    xyz[:, 1] = pts["y"]
    xyz[:, 2] = pts["z"]
    return xyz, buffer


class _CameraStage(Stage):
    """Shared parts of the single-camera stages: one Projector per cloud frame, built lazily."""

    params: ProjectionParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self.camera: Any = lookup_camera(rig, self.params.camera) if rig is not None else None
        if self.camera is None:
            raise PipelineError(f"stage '{name}': camera '{self.params.camera}' not in the rig")
        self.input_frames: dict[str, str | None] = {}
        self._projectors: dict[str, Projector] = {}
        self._xyz = np.zeros((self.params.max_points, 3), dtype=np.float32)
        self.device = StageDevice(name, self.params.device)

    def report(self) -> dict[str, Any] | None:
        return {"device": self.device.report()}

    @classmethod
    def check_rig(cls, params: ProjectionParams, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time check: the camera exists and a transform links the cloud's frame to it."""
        return check_camera_link(rig, params.camera, params.cloud_frame or frames.get("cloud"))

    def _projector(self, frame: str) -> Projector:
        projector = self._projectors.get(frame)
        if projector is None:
            T = np.asarray(self.rig.transform(self.camera.frame_id, frame).matrix)

            def build() -> Projector:
                made = self.device.pick(Projector, "CudaProjector").from_camera(
                    self.camera, T, min_depth_m=self.params.min_depth_m, max_depth_m=self.params.max_depth_m,
                    max_points=self.params.max_points, max_radius=float(self.camera.max_radius),
                )
                made.warmup()
                return made

            projector = self.device.run(build, self._projectors.clear)
            self._projectors[frame] = projector
        return projector

    def _start_projector(self) -> None:
        frame = self.params.cloud_frame or self.input_frames.get("cloud")
        if frame:
            self._projector(frame)


@register_stage("point_painting")
class PointPainting(_CameraStage):
    """PointPainting: append the per-pixel scores of a rig camera's image to every point.

    Inputs: ``cloud`` (PointCloud with x, y, z), ``scores`` (Image of the camera's size: ``32FC<C>``
    class scores / features, or ``mono8``/``bgr8``/``8UC<C>``/``16UC<C>`` values, read as float32).
    Output ``painted``: the cloud with its fields (padding dropped) followed by ``C`` float32 fields
    named by ``field_names`` or ``<field_prefix><i>``; points outside the view (and, with
    ``visible_only``, occluded points) get ``fill``.
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud", "scores": "Image"}
    outputs: ClassVar[dict[str, str]] = {"painted": "PointCloud"}
    Params = PointPaintingParams
    params: PointPaintingParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        names = self.params.field_names
        channels = len(names) if names is not None else 4
        self._painter = PointPainter(fill=self.params.fill, visible_only=self.params.visible_only,
                                     max_points=self.params.max_points, channels=channels)
        self._out: npt.NDArray[np.void] | None = None

    def start(self) -> None:
        """Build the projector for the wired cloud frame and compile every kernel."""
        self._start_projector()
        self._painter.warmup()

    def _names(self, channels: int, stamp_ns: int) -> list[str]:
        names = self.params.field_names
        if names is None:
            return [f"{self.params.field_prefix}{i}" for i in range(channels)]
        if len(names) != channels:
            raise MessageError(f"stage '{self.name}': scores have {channels} channel(s) but field_names "
                               f"names {len(names)}", stamp_ns=stamp_ns)
        return list(names)

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        scores: ImageData = inputs["scores"]
        frame = self.params.cloud_frame or cloud.frame_id
        xyz, self._xyz = _xyz_into(cloud, self._xyz)
        result = self.device.run(lambda: self._projector(frame).project(xyz), self._projectors.clear)
        self.device.record(self._projector(frame))
        try:
            values = self._painter.paint(result, scores.data)
        except FeatureArrayError as exc:
            raise MessageError(f"stage '{self.name}': scores ({scores.encoding}): {exc}", stamp_ns=stamp_ns) from None
        names = self._names(values.shape[1], stamp_ns)
        try:
            dtype = painted_dtype(cloud.points.dtype, names)
        except TypeError:
            raise MessageError(f"stage '{self.name}': point cloud without fields", stamp_ns=stamp_ns) from None
        n = cloud.points.shape[0]
        if self._out is None or self._out.dtype != dtype or self._out.shape[0] < n:
            self._out = np.zeros(max(n, self.params.max_points), dtype=dtype)
        try:
            painted = append_point_fields(cloud.points, names, values, out=self._out)
        except ValueError as exc:
            raise MessageError(f"stage '{self.name}': {exc}", stamp_ns=stamp_ns) from None
        return {"painted": PointCloud(stamp_ns, cloud.frame_id, painted, 1, n, cloud.is_dense)}


@register_stage("depth_densify")
class DepthDensify(Stage):
    """Sparse depth image (``32FC1`` metres, 0 = no return) → dense depth image (``32FC1``).

    The image size comes from ``camera`` (a rig camera), or ``width``/``height``; with neither it is
    taken from the first image (the only allocation after construction).
    """

    inputs: ClassVar[dict[str, str]] = {"depth": "Image"}
    outputs: ClassVar[dict[str, str]] = {"depth": "Image"}
    Params = DepthDensifyParams
    params: DepthDensifyParams

    @classmethod
    def check_rig(cls, params: DepthDensifyParams, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time check: a named camera must be in the rig."""
        name = params.camera
        if name is None:
            return []
        if rig is None:
            return ["parameter 'camera' needs a rig (calibration) but the pipeline names none"]
        if lookup_camera(rig, str(name)) is None:
            return [f"camera '{name}' is not in the rig (cameras: {', '.join(sorted(rig.cameras))})"]
        return []

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        size: tuple[int, int] | None = None
        if p.camera is not None:
            cam = lookup_camera(rig, p.camera) if rig is not None else None
            if cam is None:
                raise PipelineError(f"stage '{name}': camera '{p.camera}' not in the rig")
            size = (int(cam.height), int(cam.width))
        elif p.width is not None and p.height is not None:
            size = (p.height, p.width)
        self._completer: DepthCompleter | None = None
        if size is not None:
            self._completer = self._make(*size)
        else:
            self._make(8, 8)  # validate the parameters now

    def _make(self, height: int, width: int) -> DepthCompleter:
        p = self.params
        try:
            return DepthCompleter(
                height, width, min_depth_m=p.min_depth_m, max_depth_m=p.max_depth_m,
                dilation=(p.dilation_shape, p.dilation_size), large_hole_size=p.large_hole_size,
                extend_to_top=p.extend_to_top, median_blur=p.median_blur, gaussian_blur=p.gaussian_blur,
            )
        except ValueError as exc:
            raise PipelineError(f"stage '{self.name}': {exc}") from None

    def start(self) -> None:
        """Compile the kernels (on a small image when the size is not known yet)."""
        (self._completer or self._make(8, 8)).warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        image: ImageData = inputs["depth"]
        if image.encoding != "32FC1":
            raise MessageError(f"stage '{self.name}': depth must be a 32FC1 image, got {image.encoding}",
                               stamp_ns=stamp_ns)
        data = image.data
        if self._completer is None and data.ndim >= 2:
            self._completer = self._make(int(data.shape[0]), int(data.shape[1]))
        assert self._completer is not None
        try:
            dense = self._completer.complete(data)
        except DepthImageError as exc:
            raise MessageError(f"stage '{self.name}': {exc}", stamp_ns=stamp_ns) from None
        return {"depth": ImageData(image.stamp_ns, image.frame_id, "32FC1", dense)}


@register_stage("multi_camera_projection")
class MultiCameraProjection(Stage):
    """One cloud into several rig cameras: per-point camera assignment and pixel.

    Output ``assigned``: PointCloud with x, y, z (cloud frame), ``camera`` (int32 index into
    ``cameras``, -1 when no camera sees the point; the lowest index wins where views overlap) and
    ``u``, ``v`` (float32 pixel in that camera, NaN when none).
    """

    inputs: ClassVar[dict[str, str]] = {"cloud": "PointCloud"}
    outputs: ClassVar[dict[str, str]] = {"assigned": "PointCloud"}
    Params = MultiCameraProjectionParams
    params: MultiCameraProjectionParams

    @classmethod
    def check_rig(cls, params: MultiCameraProjectionParams, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time check: every camera exists and is linked to the cloud's frame."""
        problems: list[str] = []
        for cam in params.cameras:
            problems += check_camera_link(rig, cam, params.cloud_frame or frames.get("cloud"))
            if rig is None:
                break
        return problems

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        cameras = self.params.cameras
        if rig is None or any(lookup_camera(rig, c) is None for c in cameras):
            raise PipelineError(f"stage '{name}': cameras {list(cameras)!r} not all in the rig")
        self.input_frames: dict[str, str | None] = {}
        self._multi: dict[str, MultiCameraProjector] = {}
        self._xyz = np.zeros((self.params.max_points, 3), dtype=np.float32)
        self._out = np.zeros(self.params.max_points, dtype=ASSIGNED_POINT_DTYPE)

    def _projector(self, frame: str) -> MultiCameraProjector:
        multi = self._multi.get(frame)
        if multi is None:
            p = self.params
            multi = MultiCameraProjector.from_rig(
                self.rig, list(p.cameras), frame, min_depth_m=p.min_depth_m, max_depth_m=p.max_depth_m,
                max_points=p.max_points)
            multi.warmup()
            self._multi[frame] = multi
        return multi

    def start(self) -> None:
        """Build the projectors for the wired cloud frame and compile the kernels."""
        frame = self.params.cloud_frame or self.input_frames.get("cloud")
        if frame:
            self._projector(frame)

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        multi = self._projector(self.params.cloud_frame or cloud.frame_id)
        xyz, self._xyz = _xyz_into(cloud, self._xyz)
        result = multi.project(xyz)
        n = xyz.shape[0]
        if n > self._out.shape[0]:
            self._out = np.zeros(n, dtype=ASSIGNED_POINT_DTYPE)
        out = self._out[:n]
        out["x"] = xyz[:, 0]
        out["y"] = xyz[:, 1]
        out["z"] = xyz[:, 2]
        out["camera"] = result.camera
        out["u"] = result.uv[:, 0]
        out["v"] = result.uv[:, 1]
        return {"assigned": PointCloud(stamp_ns, cloud.frame_id, out, 1, n, False)}


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
    Params = ProjectionParams
    params: ProjectionParams

    @classmethod
    def check_rig(cls, params: ProjectionParams, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time check: the camera exists and a transform links the cloud's frame to it."""
        return check_camera_link(rig, params.camera, params.cloud_frame or frames.get("cloud"))

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        camera = lookup_camera(rig, self.params.camera) if rig is not None else None
        if camera is None:
            raise PipelineError(f"stage '{name}': camera '{self.params.camera}' not in the rig")
        self.camera: Any = camera
        self.input_frames: dict[str, str | None] = {}
        self._projectors: dict[str, Any] = {}
        self._colored = np.zeros(self.params.max_points, dtype=COLORED_POINT_DTYPE)
        self._xyz = np.zeros((self.params.max_points, 3), dtype=np.float32)
        self.device = StageDevice(name, self.params.device)

    def report(self) -> dict[str, Any] | None:
        return {"device": self.device.report()}

    def _projector(self, frame: str) -> Any:
        proj = self._projectors.get(frame)
        if proj is None:
            T = self.rig.transform(self.camera.frame_id, frame)
            model_id, K, D = self.camera.kernel_params()

            def build() -> Projector:
                made = self.device.pick(Projector, "CudaProjector")(
                    model_id, K, D, int(self.camera.width), int(self.camera.height), np.asarray(T.matrix),
                    min_depth_m=self.params.min_depth_m, max_depth_m=self.params.max_depth_m,
                    max_points=self.params.max_points, max_radius=float(self.camera.max_radius),
                )
                made.warmup()
                return made

            proj = self.device.run(build, self._projectors.clear)
            self._projectors[frame] = proj
        return proj

    def start(self) -> None:
        frame = self.params.cloud_frame or self.input_frames.get("cloud")
        if frame:
            self._projector(frame)  # compiles the kernels now, never on the first message

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        cloud: PointCloud = inputs["cloud"]
        frame = self.params.cloud_frame or cloud.frame_id
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
        # uv/valid computed in the same pass: colours need them; a CUDA failure reruns on the CPU
        res = self.device.run(lambda: self._projector(frame).project(xyz, per_point=True), self._projectors.clear)
        proj = self._projector(frame)
        self.device.record(proj)
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
                    f"image is {bgr.shape[1]}x{bgr.shape[0]} but camera '{self.params.camera}' is "
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
