"""Payload → model tensor as a card declares it, and model tensor → payload.

- :class:`ImageToTensor`: an :class:`~edgefuse.msgs.types.ImageData` (any channel order the card's encoding
  can be reached from: ``bgr8`` ↔ ``rgb8``, ``bgra8``/``rgba8`` drop alpha) → resized, scaled and normalized
  ``float32`` tensor in the card's layout, in one Numba pass (:func:`edgefuse.infer._kernels._image_to_tensor`;
  ``sparse_min`` resizing of sparse depth images: :func:`edgefuse.infer._kernels._sparse_min_to_tensor`)
  into a buffer owned by the converter.
- :class:`CloudToTensor`: a :class:`~edgefuse.msgs.types.PointCloud` → ``(N, F)`` (or ``(1, N, F)``) float32
  of the card's fields, padded with zeros / truncated to N (whole-column copies, no per-point Python).
- :func:`tensor_to_image`: a ``(1, C, H, W)`` / ``(C, H, W)`` / ``(H, W)`` / ``(1, H, W, C)`` output →
  an ``ImageData`` of encoding ``32FC<C>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import InputDataError
from edgefuse.infer._kernels import _image_to_tensor, _sparse_min_to_tensor
from edgefuse.infer.card import ENCODINGS, CardInput, CardOutput
from edgefuse.msgs.image import encoding_layout
from edgefuse.msgs.types import ImageData, PointCloud

__all__ = ["CloudToTensor", "ImageToTensor", "tensor_to_image"]

#: channel order of each 3/4-channel source encoding
_ORDER = {"rgb8": "rgb", "bgr8": "bgr", "rgba8": "rgb", "bgra8": "bgr", "rgb16": "rgb", "bgr16": "bgr",
          "32FC3": "rgb"}


def _perm(src_encoding: str, want: str, channels: int) -> npt.NDArray[np.int64] | None:
    """Source channel for each output channel, or None when the source cannot give the card's encoding."""
    want_c = ENCODINGS[want]
    if want_c == 1:
        return np.zeros(1, dtype=np.int64) if channels == 1 else None
    if channels < 3:
        return None
    src_order = _ORDER.get(src_encoding, "rgb" if channels in (3, 4) else "")
    want_order = "bgr" if want == "bgr8" else "rgb"
    if not src_order:
        return None
    return np.array([src_order.index(ch) for ch in want_order], dtype=np.int64)


class ImageToTensor:
    """Converts images for one card input (an ``Image`` edge); owns its output buffer (overwritten per call)."""

    def __init__(self, spec: CardInput) -> None:
        self.spec = spec
        layout = spec.layout
        self.chw = layout in ("NCHW", "CHW")
        self.batched = layout.startswith("N")
        assert spec.encoding is not None  # the card checks it for Image inputs
        self.channels = ENCODINGS[spec.encoding]
        pre = spec.preprocess
        self.bilinear = pre.interpolation == "bilinear"
        self.sparse_min = pre.interpolation == "sparse_min"
        self.scale = float(pre.scale)
        self.mean = np.zeros(self.channels, dtype=np.float64)
        self.inv_std = np.ones(self.channels, dtype=np.float64)
        if pre.mean:
            self.mean[:] = pre.mean
        if pre.std:
            self.inv_std[:] = 1.0 / np.asarray(pre.std, dtype=np.float64)
        self.size = self._fixed_size()
        self._buf: npt.NDArray[np.float32] | None = None
        self._perm_cache: dict[tuple[str, int], npt.NDArray[np.int64] | None] = {}

    def _fixed_size(self) -> tuple[int, int] | None:
        if self.spec.preprocess.resize is not None:
            return self.spec.preprocess.resize
        lay, shape = self.spec.layout, self.spec.shape
        h, w = shape[lay.index("H")], shape[lay.index("W")]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    def __call__(self, image: ImageData) -> npt.NDArray[np.float32]:
        """The tensor of ``image`` (a view of the converter's buffer)."""
        _, channels = encoding_layout(image.encoding)
        data = image.data
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim != 3 or data.shape[0] < 1 or data.shape[1] < 1:
            raise InputDataError(f"image of shape {list(image.data.shape)} is no H×W[×C] image",
                                 stamp_ns=image.stamp_ns)
        key = (image.encoding, channels)
        if key not in self._perm_cache:
            self._perm_cache[key] = _perm(image.encoding, str(self.spec.encoding), channels)
        perm = self._perm_cache[key]
        if perm is None:
            raise InputDataError(f"input '{self.spec.name}': image encoding {image.encoding} cannot be turned into "
                                 f"the model's {self.spec.encoding}", stamp_ns=image.stamp_ns)
        h, w = self.size if self.size is not None else (int(data.shape[0]), int(data.shape[1]))
        shape = (self.channels, h, w) if self.chw else (h, w, self.channels)
        if self.spec.layout == "HW":
            shape = (h, w, 1)
        if self._buf is None or self._buf.shape != shape:
            self._buf = np.empty(shape, dtype=np.float32)
        if self.sparse_min:
            _sparse_min_to_tensor(data, self._buf, perm, self.scale, self.mean, self.inv_std, self.chw)
        else:
            _image_to_tensor(data, self._buf, perm, self.scale, self.mean, self.inv_std, self.chw, self.bilinear)
        out = self._buf[:, :, 0] if self.spec.layout == "HW" else self._buf
        return out[None] if self.batched else out


class CloudToTensor:
    """Converts point clouds for one card input (a ``PointCloud`` edge, layout ``NPF`` or ``PF``)."""

    def __init__(self, spec: CardInput) -> None:
        self.spec = spec
        self.fields = spec.fields
        n = spec.shape[-2]
        self.max_points = n if isinstance(n, int) else None
        self.batched = spec.layout == "NPF"
        self._buf = np.zeros((self.max_points or 0, len(self.fields)), dtype=np.float32)
        self.truncated = 0

    def __call__(self, cloud: PointCloud) -> npt.NDArray[np.float32]:
        """``(N, F)`` float32 (``(1, N, F)`` for ``NPF``); a fixed N pads with zeros or keeps the first N."""
        names = cloud.points.dtype.names or ()
        missing = [f for f in self.fields if f not in names]
        if missing:
            raise InputDataError(f"input '{self.spec.name}': point cloud has no field(s) {missing} "
                                 f"(fields: {list(names)})", stamp_ns=cloud.stamp_ns)
        n = int(cloud.points.shape[0])
        rows = n if self.max_points is None else min(n, self.max_points)
        if self.max_points is None and self._buf.shape[0] != n:
            self._buf = np.zeros((n, len(self.fields)), dtype=np.float32)
        elif self.max_points is not None:
            self._buf[rows:] = 0.0
            self.truncated += n > self.max_points
        for j, name in enumerate(self.fields):
            col = cloud.points[name]
            if col.ndim != 1:
                raise InputDataError(f"point field {name!r} has count > 1", stamp_ns=cloud.stamp_ns)
            self._buf[:rows, j] = col[:rows]
        return self._buf[None] if self.batched else self._buf


def tensor_to_image(spec: CardOutput, tensor: npt.NDArray[Any], stamp_ns: int, frame_id: str) -> ImageData:
    """A model output declared as an ``Image`` edge → ``ImageData`` (``32FC<C>``; float32, C-contiguous)."""
    x = tensor
    layout = spec.layout
    if layout.startswith("N"):
        if x.shape[0] != 1:
            raise InputDataError(f"output '{spec.name}': batch of {x.shape[0]} cannot be one image")
        x, layout = x[0], layout[1:]
    if layout == "CHW":
        x = x.transpose(1, 2, 0)
    elif layout == "HW":
        x = x[:, :, None]
    img = np.ascontiguousarray(x, dtype=np.float32)
    return ImageData(stamp_ns, frame_id, f"32FC{img.shape[2]}", img[:, :, 0] if img.shape[2] == 1 else img)
