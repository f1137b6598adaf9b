"""PointPainting: append per-pixel class scores or features to the points that project into a camera.

After :class:`~edgefuse.fusion.projection.Projector` (or
:class:`~edgefuse.fusion.projection.MultiCameraProjector`) has put every point on a pixel, a
:class:`PointPainter` copies the feature vector of that pixel from any (H, W, C) array (segmentation
scores, logits, an embedding, or an image) to the point, giving an (N, C) float32 array aligned with
the cloud.  This is the "painting" step of Vora et al., *PointPainting: Sequential Fusion for 3D
Object Detection* (CVPR 2020).

Conventions (shared with the projection kernels):

- A point's pixel is ``(row, col) = (floor(v + 0.5), floor(u + 0.5))`` from the projection's float32
  ``uv`` (nearest pixel; no interpolation, so class scores stay a distribution).
- **Fill value.** Points that are not painted (invalid: NaN/inf, behind the camera, out of the depth
  range, beyond the camera model's valid radius where its distortion folds back, outside the image;
  and, with ``visible_only=True``, points that lost their pixel in the z-buffer) get ``fill`` in every
  channel.  The default ``fill=0.0`` matches the PointPainting paper
  (zero scores outside the camera's view); pass ``fill=nan`` to tell "not seen" apart from a score of 0.
- ``visible_only=False`` (default, as in the paper) paints occluded points too, with the score of the
  pixel they fall on; ``True`` paints only the z-buffer winners.
- Features are float32 or uint8 (read as-is and converted to float32 per value, so uint8 255 → 255.0);
  other real dtypes are converted to float32 once (one copy), bool/complex/object are rejected.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import InputDataError, MessageError, ParameterError
from edgefuse.fusion import _kernels
from edgefuse.fusion.projection import ProjectionResult

__all__ = ["FeatureArrayError", "PointPainter", "append_point_fields", "paint_points", "painted_dtype"]

F32 = npt.NDArray[np.float32]


class FeatureArrayError(MessageError):
    """The feature array (scores / image) has the wrong shape or dtype for the projection."""


def _as_features(features: Any, height: int, width: int) -> npt.NDArray[Any]:
    """Check an (H, W) or (H, W, C) feature array; return a C-contiguous (H, W, C) float32/uint8 view or copy."""
    if not isinstance(features, np.ndarray):
        raise FeatureArrayError(f"features must be a numpy array, got {type(features).__name__}")
    if features.ndim == 2:
        features = features[:, :, None]
    if features.ndim != 3:
        raise FeatureArrayError(f"features must have shape (H, W) or (H, W, C), got {features.shape}")
    if features.shape[:2] != (height, width):
        raise FeatureArrayError(
            f"features are {features.shape[1]}x{features.shape[0]} (W x H) but the projection is "
            f"{width}x{height}"
        )
    if features.shape[2] == 0:
        raise FeatureArrayError("features have 0 channels")
    kind = features.dtype.kind
    if features.dtype == np.uint8 or (features.dtype == np.float32 and features.dtype.isnative):
        return np.ascontiguousarray(features)
    if kind in "fiu":
        return np.ascontiguousarray(features, dtype=np.float32)
    raise FeatureArrayError(f"features must be float32 or uint8 (or another real dtype), got {features.dtype}")


def _check_result(result: Any) -> ProjectionResult:
    if not isinstance(result, ProjectionResult):
        raise InputDataError(f"result must be a ProjectionResult, got {type(result).__name__}")
    return result


class PointPainter:
    """Preallocated PointPainting: (N, C) float32 per-point features from a (H, W, C) array.

    Args:
        fill: value given to every channel of points that are not painted (see the module docs).
        visible_only: paint only z-buffer winners (False: every valid point, as in the paper).
        max_points: initial buffer capacity in points (grown once if a larger cloud comes).
        channels: initial buffer width in channels (grown once if needed).
    """

    def __init__(self, *, fill: float = 0.0, visible_only: bool = False, max_points: int = 200_000,
                 channels: int = 4) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 0:
            raise ParameterError(f"max_points must be a non-negative integer, got {max_points!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ParameterError(f"channels must be a positive integer, got {channels!r}")
        self.fill = float(fill)
        self.visible_only = bool(visible_only)
        # One flat buffer: every (n, C) output is a C-contiguous view of its head (one kernel layout).
        self._buf = np.empty(max_points * channels, dtype=np.float32)
        self._capacity = (max_points, channels)
        self.n_painted = 0

    @property
    def capacity(self) -> tuple[int, int]:
        """(points, channels) the buffer holds without growing."""
        return self._capacity

    def warmup(self) -> float:
        """Compile (or load from cache) the kernel for float32 and uint8 features; returns seconds."""
        start = time.perf_counter()
        uv = np.zeros((1, 2), np.float32)
        valid = np.ones(1, np.bool_)
        index = np.zeros((1, 1), np.int32)
        for dtype, writeable in ((np.float32, True), (np.uint8, True), (np.float32, False), (np.uint8, False)):
            features = np.zeros((1, 1, 1), dtype)
            features.setflags(write=writeable)  # score images viewed from message buffers are read-only
            for idx in (index, _readonly(index)):
                for uvv, vv in ((uv, valid), (_readonly(uv), _readonly(valid))):
                    _kernels._paint_points(features, uvv, vv, idx, self.visible_only, self.fill,
                                           self._buf[:1].reshape(1, 1))
        return time.perf_counter() - start

    def paint(self, result: ProjectionResult, features: npt.NDArray[Any], *, copy: bool = False) -> F32:
        """Return (N, C) float32: the features of each point's pixel, ``fill`` where not painted.

        ``result`` comes from a projector whose image is the size of ``features`` ((H, W) or
        (H, W, C)); raises :class:`FeatureArrayError` when it is not.  The returned array is a
        read-only view into this painter's buffer, valid until the next call, unless ``copy=True``.
        ``n_painted`` holds the number of painted points afterwards.
        """
        res = _check_result(result)
        height, width = res.depth.shape
        feats = _as_features(features, height, width)
        n, channels = res.uv.shape[0], feats.shape[2]
        if n > self._capacity[0] or channels > self._capacity[1]:
            self._capacity = (max(n, self._capacity[0]), max(channels, self._capacity[1]))
            self._buf = np.empty(self._capacity[0] * self._capacity[1], dtype=np.float32)
        out = self._buf[: n * channels].reshape(n, channels)
        self.n_painted = int(_kernels._paint_points(feats, res.uv, res.valid, res.index, self.visible_only,
                                                    self.fill, out))
        return out.copy() if copy else _readonly(out)


def paint_points(result: ProjectionResult, features: npt.NDArray[Any], *, fill: float = 0.0,
                 visible_only: bool = False) -> F32:
    """One-shot :meth:`PointPainter.paint`; returns an owned (N, C) float32 array."""
    res = _check_result(result)
    painter = PointPainter(fill=fill, visible_only=visible_only, max_points=res.uv.shape[0], channels=1)
    return painter.paint(res, features, copy=True)


def append_point_fields(points: npt.NDArray[np.void], names: list[str] | tuple[str, ...],
                        values: npt.NDArray[np.float32],
                        out: npt.NDArray[np.void] | None = None) -> npt.NDArray[np.void]:
    """A structured array with the fields of ``points`` followed by one float32 field per name.

    ``values`` is (N, len(names)).  Names already present in ``points`` raise ``ValueError``.  When
    ``out`` has exactly the resulting dtype and at least N rows, its first N rows are written and
    returned (no allocation); otherwise a new array is made.
    """
    if points.dtype.names is None:
        raise InputDataError("points must be a structured array (PointCloud.points)")
    n = points.shape[0]
    if values.ndim != 2 or values.shape != (n, len(names)):
        raise InputDataError(f"values must have shape ({n}, {len(names)}), got {values.shape}")
    clash = sorted(set(names) & set(points.dtype.names))
    if clash or len(set(names)) != len(names):
        raise ParameterError(f"field names must be new and unique, clashing: {clash or list(names)}")
    dtype = painted_dtype(points.dtype, names)
    if out is None or out.dtype != dtype or out.shape[0] < n:
        out = np.empty(n, dtype=dtype)
    result = out[:n]
    for name in points.dtype.names:
        result[name] = points[name]
    for c, name in enumerate(names):
        result[name] = values[:, c]
    return result


def painted_dtype(base: np.dtype[Any], names: list[str] | tuple[str, ...]) -> np.dtype[Any]:
    """Packed dtype: the fields of ``base`` (padding dropped) followed by float32 ``names``."""
    assert base.names is not None
    fields = [(name, base.fields[name][0]) for name in base.names]  # type: ignore[index]
    return np.dtype(fields + [(name, "<f4") for name in names])


def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view
