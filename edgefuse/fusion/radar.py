"""Scanning-radar (Navtech CTS350-X, as in RADIATE) geometry: polar scan → Cartesian image and → points.

A polar scan is a 2-D array with one axis of range bins and one of azimuths covering 360°.  RADIATE's
``Navtech_Polar/NNNNNN.png`` is (576 range rows, 400 azimuth columns) uint8 at 0.173611 m per bin.

Radar frame (RADIATE's, shared with its LiDAR frame): **x right, y forward, z up**, origin at the
radar.  Conventions, measured by matching RADIATE's own ``Navtech_Cartesian`` images (see
``tests/fusion/test_radar.py``) and checked against the LiDAR through the rig:

- Range bin ``i`` is at range ``i * range_res_m`` (bin 0 at the radar).
- Azimuth column ``j`` looks along ``theta_j = (j + azimuth_offset_bins) * 360° / n_az`` measured
  **clockwise from forward (+y) towards right (+x)**; ``azimuth_offset_bins = 0.5`` (column centres)
  fits RADIATE.  A point at range ``r`` is ``x = r sin(theta)``, ``y = r cos(theta)``, ``z = 0``.
- Cartesian image pixel (row ``v``, column ``u``) is ``x = (u - cx) * out_res_m``,
  ``y = (cy - v) * out_res_m``: forward is up, right is right.  RADIATE's 1152x1152 images put the
  radar at ``(cx, cy) = (W/2 - 1, H/2) = (575, 576)`` — the default here (:func:`radiate_center_px`).

Kernels are in :mod:`edgefuse.fusion._radar_kernels`; these wrappers validate inputs and shape outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError
from edgefuse.fusion import _radar_kernels as _k

__all__ = [
    "NAVTECH_RANGE_RES_M",
    "RADAR_POINT_DTYPE",
    "PolarToCartesian",
    "RadarInputError",
    "RadarPointExtractor",
    "cartesian_pixels",
    "polar_to_cartesian",
    "polar_to_points",
    "radiate_center_px",
]

#: Range resolution of RADIATE's Navtech CTS350-X scans (``config.yaml`` ``radar_calib.range_res``), m/bin.
NAVTECH_RANGE_RES_M = 0.173611
#: Point layout returned by :func:`polar_to_points`: float32 x, y, z (m, radar frame) and intensity.
RADAR_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])

_POLAR_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_OUT_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))

F32 = npt.NDArray[np.float32]


class RadarInputError(MessageError, ValueError):
    """A radar scan or a geometry parameter is invalid; ``field`` names the offending argument."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def radiate_center_px(out_w_px: int, out_h_px: int | None = None) -> tuple[float, float]:
    """Pixel ``(cx, cy)`` of the radar in a RADIATE-style Cartesian image: ``(W/2 - 1, H/2)``."""
    h = out_w_px if out_h_px is None else out_h_px
    return (out_w_px / 2.0 - 1.0, h / 2.0)


def _check_positive(value: float, field: str) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0.0:
        raise RadarInputError(f"must be a finite number > 0, got {value!r}", field=field)
    return v


def _polar_view(polar: Any, azimuth_axis: int) -> npt.NDArray[Any]:
    """``polar`` as a (n_range, n_az) array (a view; transposed when azimuths are rows)."""
    arr = np.asarray(polar)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise RadarInputError(f"expected a 2-D (range, azimuth) array, got shape {arr.shape}", field="polar")
    if arr.dtype not in _POLAR_DTYPES:
        raise RadarInputError(f"dtype must be uint8 or float32, got {arr.dtype}", field="polar")
    if azimuth_axis not in (0, 1):
        raise RadarInputError(f"must be 0 or 1, got {azimuth_axis!r}", field="azimuth_axis")
    return arr.T if azimuth_axis == 0 else arr


def polar_to_cartesian(
    polar: Any,
    *,
    range_res_m: float = NAVTECH_RANGE_RES_M,
    out_size_px: int | tuple[int, int] = 1152,
    out_res_m: float | None = None,
    center_px: tuple[float, float] | None = None,
    azimuth_offset_bins: float = 0.5,
    azimuth_axis: int = 1,
    fill: float = 0.0,
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Resample a polar radar scan into a Cartesian (bird's-eye) image, bilinear in (range, azimuth).

    Args:
        polar: (n_range, n_az) uint8 or float32 (or (n_az, n_range) with ``azimuth_axis=0``).
        range_res_m: metres per range bin.
        out_size_px: output size, ``N`` for N x N or ``(H, W)``; ignored when ``out`` is given.
        out_res_m: metres per output pixel (default ``range_res_m``, as RADIATE).
        center_px: radar position ``(cx, cy)`` in output pixels (default :func:`radiate_center_px`).
        azimuth_offset_bins: column ``j`` looks along ``(j + offset) * 2π / n_az`` clockwise from +y.
        azimuth_axis: which axis of ``polar`` indexes azimuth (1 for RADIATE's PNGs).
        fill: value of pixels beyond the last range bin.
        out: preallocated (H, W) C-contiguous uint8 or float32 output, written in place and returned.

    Returns:
        (H, W) image, dtype of ``out`` or else of ``polar``; row 0 is the far forward edge.  Integer
        outputs are rounded half up.
    """
    p = _polar_view(polar, azimuth_axis)
    rr = _check_positive(range_res_m, "range_res_m")
    orr = rr if out_res_m is None else _check_positive(out_res_m, "out_res_m")
    if out is None:
        if isinstance(out_size_px, tuple):
            h, w = (int(s) for s in out_size_px)
        else:
            h = w = int(out_size_px)
        if h < 1 or w < 1:
            raise RadarInputError(f"must be >= 1, got {out_size_px!r}", field="out_size_px")
        out = np.empty((h, w), dtype=p.dtype)
    else:
        if not isinstance(out, np.ndarray) or out.ndim != 2 or out.dtype not in _OUT_DTYPES:
            raise RadarInputError("must be a 2-D uint8 or float32 array", field="out")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise RadarInputError("must be C-contiguous and writeable", field="out")
        h, w = out.shape
    cx, cy = radiate_center_px(w, h) if center_px is None else (float(center_px[0]), float(center_px[1]))
    if not (np.isfinite(cx) and np.isfinite(cy) and np.isfinite(azimuth_offset_bins) and np.isfinite(fill)):
        raise RadarInputError("center_px, azimuth_offset_bins and fill must be finite", field="center_px")
    rnd = 0.5 if out.dtype == np.uint8 else 0.0
    fill_v = float(np.clip(fill, 0.0, 255.0)) if out.dtype == np.uint8 else float(fill)
    _k._polar_to_cartesian(p, out, rr, orr, cx, cy, float(azimuth_offset_bins), fill_v, rnd)
    return out


class PolarToCartesian:
    """Preallocated polar → Cartesian resampler for scans of one fixed shape (the hot-path variant).

    Same geometry and parameters as :func:`polar_to_cartesian`, but the per-pixel sampling table
    (flat cell index int32 + range/azimuth weights float32: 12 bytes per output pixel) is computed
    once at construction, and :meth:`convert` writes into a buffer owned by the object (returned,
    overwritten by the next call).  Because the weights are stored as float32, an integer output may
    differ from :func:`polar_to_cartesian` by 1 where the float64 value lies within ~1e-5 of a
    rounding boundary.
    """

    def __init__(
        self,
        n_range: int,
        n_azimuth: int,
        *,
        range_res_m: float = NAVTECH_RANGE_RES_M,
        out_size_px: int | tuple[int, int] = 1152,
        out_res_m: float | None = None,
        center_px: tuple[float, float] | None = None,
        azimuth_offset_bins: float = 0.5,
        azimuth_axis: int = 1,
        fill: float = 0.0,
        dtype: npt.DTypeLike = np.uint8,
    ) -> None:
        if int(n_range) < 1 or int(n_azimuth) < 1:
            raise RadarInputError(f"must be >= 1, got {n_range}x{n_azimuth}", field="n_range")
        if azimuth_axis not in (0, 1):
            raise RadarInputError(f"must be 0 or 1, got {azimuth_axis!r}", field="azimuth_axis")
        out_dtype = np.dtype(dtype)
        if out_dtype not in _OUT_DTYPES:
            raise RadarInputError(f"must be uint8 or float32, got {out_dtype}", field="dtype")
        if isinstance(out_size_px, tuple):
            h, w = (int(s) for s in out_size_px)
        else:
            h = w = int(out_size_px)
        if h < 1 or w < 1:
            raise RadarInputError(f"must be >= 1, got {out_size_px!r}", field="out_size_px")
        rr = _check_positive(range_res_m, "range_res_m")
        orr = rr if out_res_m is None else _check_positive(out_res_m, "out_res_m")
        cx, cy = radiate_center_px(w, h) if center_px is None else (float(center_px[0]), float(center_px[1]))
        if not (
            np.isfinite(cx) and np.isfinite(cy) and np.isfinite(azimuth_offset_bins) and np.isfinite(fill)
        ):
            raise RadarInputError("center_px, azimuth_offset_bins and fill must be finite", field="center_px")
        self.n_range = int(n_range)
        self.n_azimuth = int(n_azimuth)
        self.azimuth_axis = int(azimuth_axis)
        self._idx = np.empty((h, w), dtype=np.int32)
        self._wr = np.empty((h, w), dtype=np.float32)
        self._wa = np.empty((h, w), dtype=np.float32)
        _k._cartesian_lut(
            self.n_range,
            self.n_azimuth,
            rr,
            orr,
            cx,
            cy,
            float(azimuth_offset_bins),
            self._idx,
            self._wr,
            self._wa,
        )
        self._rnd = 0.5 if out_dtype == np.uint8 else 0.0
        self._fill = float(np.clip(fill, 0.0, 255.0)) if out_dtype == np.uint8 else float(fill)
        self.out = np.zeros((h, w), dtype=out_dtype)

    def warmup(self) -> None:
        """Compile the kernel for uint8 and float32 scans now (not on the first real scan)."""
        tiny_out = np.zeros((1, 1), dtype=self.out.dtype)
        tiny_idx = np.full((1, 1), -1, dtype=np.int32)
        tiny_w = np.zeros((1, 1), dtype=np.float32)
        for dtype in _POLAR_DTYPES:
            tiny = np.zeros((2, 2), dtype=dtype)
            _k._remap_lut(
                tiny.T if self.azimuth_axis == 0 else tiny,
                tiny_idx,
                tiny_w,
                tiny_w,
                tiny_out,
                self._fill,
                self._rnd,
            )

    def convert(self, polar: Any) -> npt.NDArray[Any]:
        """Cartesian image (H, W) of one scan (the object's buffer, overwritten by the next call)."""
        p = _polar_view(polar, self.azimuth_axis)
        if p.shape != (self.n_range, self.n_azimuth):
            raise RadarInputError(
                f"expected (range, azimuth) = ({self.n_range}, {self.n_azimuth}), got {p.shape}",
                field="polar",
            )
        _k._remap_lut(p, self._idx, self._wr, self._wa, self.out, self._fill, self._rnd)
        return self.out


def cartesian_pixels(
    xy: Any,
    *,
    out_res_m: float = NAVTECH_RANGE_RES_M,
    center_px: tuple[float, float] | None = None,
    out_size_px: int = 1152,
) -> F32:
    """Continuous pixel coordinates (N, 2) float32 ``(u, v)`` of radar-frame points (N, >=2) ``x, y`` in m.

    The inverse of the pixel convention of :func:`polar_to_cartesian` (same defaults).
    """
    a = np.asarray(xy, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 2:
        raise RadarInputError(f"expected (N, 2+) points, got shape {a.shape}", field="xy")
    res = _check_positive(out_res_m, "out_res_m")
    cx, cy = radiate_center_px(out_size_px) if center_px is None else center_px
    uv = np.empty((a.shape[0], 2), dtype=np.float32)
    uv[:, 0] = cx + a[:, 0] / res
    uv[:, 1] = cy - a[:, 1] / res
    return uv


class RadarPointExtractor:
    """Preallocated per-azimuth peak detector: polar scan → radar points (x, y, z=0, intensity).

    Detection (1-D, per azimuth column): a range bin at ``>= min_range_m`` is a peak when its value is
    ``>= threshold`` and a local maximum along range (strictly greater than the nearer bin, ``>=`` the
    farther one, so a plateau gives its nearest bin).  The ``max_peaks_per_azimuth`` strongest peaks of
    each column are kept (ties: nearer first).  Points are ordered by azimuth column, then range; the
    point sits at the bin's range (no sub-bin refinement), on the radar plane (z = 0).

    :meth:`extract` returns a view into a buffer owned by the extractor, overwritten by the next call.
    """

    def __init__(
        self,
        n_range: int,
        n_azimuth: int,
        *,
        range_res_m: float = NAVTECH_RANGE_RES_M,
        threshold: float = 60.0,
        min_range_m: float = 0.0,
        max_peaks_per_azimuth: int = 8,
        azimuth_offset_bins: float = 0.5,
        azimuth_axis: int = 1,
    ) -> None:
        if int(n_range) < 1 or int(n_azimuth) < 1:
            raise RadarInputError(f"must be >= 1, got {n_range}x{n_azimuth}", field="n_range")
        if int(max_peaks_per_azimuth) < 1:
            raise RadarInputError(
                f"must be >= 1, got {max_peaks_per_azimuth!r}", field="max_peaks_per_azimuth"
            )
        if not np.isfinite(threshold):
            raise RadarInputError(f"must be finite, got {threshold!r}", field="threshold")
        if not np.isfinite(min_range_m) or min_range_m < 0.0:
            raise RadarInputError(f"must be finite and >= 0, got {min_range_m!r}", field="min_range_m")
        if not np.isfinite(azimuth_offset_bins):
            raise RadarInputError(f"must be finite, got {azimuth_offset_bins!r}", field="azimuth_offset_bins")
        if azimuth_axis not in (0, 1):
            raise RadarInputError(f"must be 0 or 1, got {azimuth_axis!r}", field="azimuth_axis")
        self.n_range = int(n_range)
        self.n_azimuth = int(n_azimuth)
        self.range_res_m = _check_positive(range_res_m, "range_res_m")
        self.threshold = float(threshold)
        self.min_range_m = float(min_range_m)
        self.max_peaks = int(max_peaks_per_azimuth)
        self.azimuth_offset_bins = float(azimuth_offset_bins)
        self.azimuth_axis = int(azimuth_axis)
        self._i_min = int(np.ceil(self.min_range_m / self.range_res_m - 1e-9))
        self._cand = np.zeros(self.n_range, dtype=np.int64)
        self._keep = np.zeros(self.n_range, dtype=np.bool_)
        self._buf = np.zeros((self.n_azimuth * self.max_peaks, 4), dtype=np.float32)
        self._points = self._buf.view(RADAR_POINT_DTYPE).reshape(-1)

    def warmup(self) -> None:
        """Compile the kernel for uint8 and float32 scans now (not on the first real scan)."""
        for dtype in _POLAR_DTYPES:
            tiny = np.zeros((3, 2), dtype=dtype)
            _k._polar_peaks(
                tiny,
                self.threshold,
                0,
                1,
                self.range_res_m,
                self.azimuth_offset_bins,
                self._cand,
                self._keep,
                self._buf,
            )
            if self.azimuth_axis == 0:
                _k._polar_peaks(
                    tiny.T,
                    self.threshold,
                    0,
                    1,
                    self.range_res_m,
                    self.azimuth_offset_bins,
                    self._cand,
                    self._keep,
                    self._buf,
                )

    def extract(self, polar: Any) -> npt.NDArray[np.void]:
        """Points (N,) :data:`RADAR_POINT_DTYPE` of one scan (a view into the extractor's buffer)."""
        p = _polar_view(polar, self.azimuth_axis)
        if p.shape != (self.n_range, self.n_azimuth):
            raise RadarInputError(
                f"expected (range, azimuth) = ({self.n_range}, {self.n_azimuth}), got {p.shape}",
                field="polar",
            )
        n = _k._polar_peaks(
            p,
            self.threshold,
            self._i_min,
            self.max_peaks,
            self.range_res_m,
            self.azimuth_offset_bins,
            self._cand,
            self._keep,
            self._buf,
        )
        return self._points[:n]


def polar_to_points(
    polar: Any,
    *,
    range_res_m: float = NAVTECH_RANGE_RES_M,
    threshold: float = 60.0,
    min_range_m: float = 0.0,
    max_peaks_per_azimuth: int = 8,
    azimuth_offset_bins: float = 0.5,
    azimuth_axis: int = 1,
) -> npt.NDArray[np.void]:
    """Radar points of a polar scan: (N,) :data:`RADAR_POINT_DTYPE` (x, y, z, intensity), radar frame.

    See :class:`RadarPointExtractor` for the detector; this returns a fresh array (a copy), use the
    class to reuse buffers across scans.
    """
    p = _polar_view(polar, azimuth_axis)
    ext = RadarPointExtractor(
        p.shape[0],
        p.shape[1],
        range_res_m=range_res_m,
        threshold=threshold,
        min_range_m=min_range_m,
        max_peaks_per_azimuth=max_peaks_per_azimuth,
        azimuth_offset_bins=azimuth_offset_bins,
    )
    return ext.extract(p).copy()
