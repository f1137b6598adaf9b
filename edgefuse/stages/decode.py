"""Image stages: ``decode_image`` (CompressedImage → Image, OpenCV decode) and ``resize_image`` (Image →
Image of a rig camera's or a given size, Numba)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError, PipelineError
from edgefuse.infer._kernels import _image_to_tensor
from edgefuse.msgs.types import CompressedImageData, ImageData
from edgefuse.stages._rig import lookup_camera
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param


@dataclass(frozen=True, kw_only=True)
class DecodeImageParams(StageParams):
    """Parameters of ``decode_image``."""

    grayscale: bool = param(False, doc="decode to mono8")


@register_stage("decode_image")
class DecodeImage(Stage):
    """Decode a CompressedImage (PNG/JPEG) into an Image (``bgr8``, ``mono8``, ``mono16`` or ``bgra8``)."""

    inputs: ClassVar[dict[str, str]] = {"image": "CompressedImage"}
    outputs: ClassVar[dict[str, str]] = {"image": "Image"}
    Params = DecodeImageParams
    params: DecodeImageParams

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        comp: CompressedImageData = inputs["image"]
        flag = cv2.IMREAD_GRAYSCALE if self.params.grayscale else cv2.IMREAD_UNCHANGED
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


@dataclass(frozen=True, kw_only=True)
class ResizeImageParams(StageParams):
    """Parameters of ``resize_image``."""

    camera: str | None = param(None, min_len=1, doc="rig camera whose resolution is the output size")
    width: int | None = param(None, unit="px", ge=1, le=16_384, doc="output width (with height, without camera)")
    height: int | None = param(None, unit="px", ge=1, le=16_384, doc="output height (with width, without camera)")
    scale: float = param(1.0, gt=0.0, le=64.0, doc="without camera or width/height: the input's size times this")
    interpolation: Literal["nearest", "bilinear"] = param(
        "nearest", doc="nearest (depth: no mixed depths at edges) or bilinear (OpenCV INTER_LINEAR geometry)")

    def check(self) -> list[str]:
        """Both width and height or neither; not with camera."""
        if (self.width is None) != (self.height is None):
            return ["give both width and height (or neither)"]
        if self.camera is not None and self.width is not None:
            return ["give camera or width and height, not both"]
        return []


@register_stage("resize_image")
class ResizeImage(Stage):
    """Resize an Image to a rig camera's resolution (or ``width`` x ``height``, or its own size times ``scale``),
    keeping its encoding and frame.

    One Numba pass (:func:`edgefuse.infer._kernels._image_to_tensor`).  Float images (``32FC<C>``, e.g. a model's
    depth output) stay float32; 8-bit / 16-bit images are rounded back to their type.  The output buffer is
    owned by the stage and overwritten by its next call.
    """

    inputs: ClassVar[dict[str, str]] = {"image": "Image"}
    outputs: ClassVar[dict[str, str]] = {"image": "Image"}
    Params = ResizeImageParams
    params: ResizeImageParams

    @classmethod
    def check_rig(cls, params: Any, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """The camera, when named, is in the rig."""
        if params.camera is None:
            return []
        if rig is None:
            return ["needs a rig (calibration) for 'camera' but the pipeline names none"]
        if lookup_camera(rig, str(params.camera)) is None:
            return [f"camera '{params.camera}' is not in the rig (cameras: {', '.join(sorted(rig.cameras))})"]
        return []

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        if p.camera is not None:
            cam = lookup_camera(rig, p.camera) if rig is not None else None
            if cam is None:
                raise PipelineError(f"stage '{name}': camera '{p.camera}' not in the rig")
            self.size: tuple[int, int] | None = (int(cam.height), int(cam.width))
        elif p.height is not None and p.width is not None:
            self.size = (p.height, p.width)
        else:
            self.size = None  # the input's size times scale
        self._buf = np.zeros((1, 1, 1), dtype=np.float32)
        self._cast: dict[str, npt.NDArray[Any]] = {}

    def start(self) -> None:
        """Compile the kernel for float and 8-bit sources."""
        for data in (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8)):
            self._resize(data[:, :, None])

    def _resize(self, data: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        c = int(data.shape[2])
        size = self.size
        if size is None:
            s = self.params.scale
            size = (max(1, round(data.shape[0] * s)), max(1, round(data.shape[1] * s)))
        if self._buf.shape != (*size, c):
            self._buf = np.zeros((*size, c), dtype=np.float32)
        _image_to_tensor(data, self._buf, np.arange(c, dtype=np.int64), 1.0, np.zeros(c), np.ones(c), False,
                         self.params.interpolation == "bilinear")
        return self._buf

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        img: ImageData = inputs["image"]
        data = np.asarray(img.data)
        if data.ndim not in (2, 3) or data.shape[0] < 1 or data.shape[1] < 1 or data.dtype.kind not in "uif":
            raise MessageError(f"stage '{self.name}': cannot resize an image of shape {list(data.shape)} and dtype "
                               f"{data.dtype}", stamp_ns=stamp_ns)
        out: npt.NDArray[Any] = self._resize(data if data.ndim == 3 else data[:, :, None])
        if data.dtype != np.float32:
            info = np.iinfo(data.dtype) if data.dtype.kind in "ui" else None
            key = data.dtype.str
            if key not in self._cast or self._cast[key].shape != out.shape:
                self._cast[key] = np.zeros(out.shape, dtype=data.dtype)
            src = np.rint(out) if info is not None else out
            if info is not None:
                src = np.clip(src, info.min, info.max)
            self._cast[key][...] = src
            out = self._cast[key]
        if data.ndim == 2:
            out = out[:, :, 0]
        return {"image": ImageData(img.stamp_ns, img.frame_id, img.encoding, out)}
