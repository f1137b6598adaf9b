"""Decoding stages: ``decode_image`` (CompressedImage → Image, OpenCV decode)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from edgefuse.errors import MessageError
from edgefuse.msgs.types import CompressedImageData, ImageData
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
