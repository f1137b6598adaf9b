"""Radar stages.

- ``radar_polar_points``: a decoded polar scanning-radar image (mono8, (range, azimuth) as RADIATE's
  ``Navtech_Polar`` PNGs) → radar points (x, y, z, intensity; radar frame x right / y forward / z up)
  and a Cartesian bird's-eye image (mono8).  Geometry and detector: :mod:`edgefuse.fusion.radar`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion.radar import NAVTECH_RANGE_RES_M, PolarToCartesian, RadarInputError, RadarPointExtractor
from edgefuse.msgs.types import ImageData, PointCloud
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param


@dataclass(frozen=True, kw_only=True)
class RadarPolarPointsParams(StageParams):
    """Parameters of ``radar_polar_points``."""

    range_res_m: float = param(NAVTECH_RANGE_RES_M, unit="m", gt=0.0, le=100.0, doc="metres per range bin")
    # at least 3 x 3: RadarPointExtractor.warmup runs on a 3 x 2 scan with the stage's own buffers
    n_range: int = param(576, ge=3, le=16_384, doc="range bins per azimuth")
    n_azimuth: int = param(400, ge=3, le=16_384, doc="azimuths per 360° scan")
    azimuth_axis: Literal[0, 1] = param(1, doc="axis of the image that indexes azimuth")
    azimuth_offset_bins: float = param(0.5, unit="bins", ge=-16_384.0, le=16_384.0,
                                       doc="column j looks along (j + offset) * 360°/n_az")
    threshold: float = param(80.0, ge=-1e9, le=1e9, doc="minimum peak intensity")
    min_range_m: float = param(2.0, unit="m", ge=0.0, le=1e6, doc="ignore peaks nearer than this")
    max_peaks_per_azimuth: int = param(4, ge=1, le=1024, doc="most peaks kept per azimuth")
    cartesian: bool = param(True, doc="also produce the Cartesian image")
    cartesian_size_px: int = param(1152, unit="px", ge=1, le=8192, doc="side of the square Cartesian image")
    cartesian_res_m: float = param(NAVTECH_RANGE_RES_M, unit="m", gt=0.0, le=100.0, doc="metres per Cartesian pixel")


@register_stage("radar_polar_points")
class RadarPolarPoints(Stage):
    """Polar radar scan → points (per-azimuth threshold + local-maximum peaks) and a Cartesian image.

    Input ``scan``: Image ``mono8``/``8UC1`` (or ``32FC1``) of shape (``n_range``, ``n_azimuth``)
    (transposed with ``azimuth_axis: 0``).  Outputs: ``points`` (PointCloud, fields x, y, z,
    intensity float32, in the scan's frame), ``cartesian`` (Image ``mono8``, ``cartesian_size_px``
    square, radar at RADIATE's pixel (W/2 - 1, H/2), forward up).  Both arrays are buffers owned by
    the stage, overwritten by the next call.
    """

    inputs: ClassVar[dict[str, str]] = {"scan": "Image"}
    outputs: ClassVar[dict[str, str]] = {"points": "PointCloud", "cartesian": "Image"}
    Params = RadarPolarPointsParams
    params: RadarPolarPointsParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        try:
            self._extractor = RadarPointExtractor(
                p.n_range,
                p.n_azimuth,
                range_res_m=p.range_res_m,
                threshold=p.threshold,
                min_range_m=p.min_range_m,
                max_peaks_per_azimuth=p.max_peaks_per_azimuth,
                azimuth_offset_bins=p.azimuth_offset_bins,
                azimuth_axis=p.azimuth_axis,
            )
            self._cart: PolarToCartesian | None = None
            if p.cartesian:
                self._cart = PolarToCartesian(
                    p.n_range,
                    p.n_azimuth,
                    range_res_m=p.range_res_m,
                    out_size_px=p.cartesian_size_px,
                    out_res_m=p.cartesian_res_m,
                    azimuth_offset_bins=p.azimuth_offset_bins,
                    azimuth_axis=p.azimuth_axis,
                )
        except RadarInputError as exc:
            raise PipelineError(f"stage '{name}': parameter {exc.message}") from None

    def start(self) -> None:
        """Compile the kernels (never on the first scan)."""
        self._extractor.warmup()
        if self._cart is not None:
            self._cart.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        scan: ImageData = inputs["scan"]
        data = scan.data
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        if scan.encoding not in ("mono8", "8UC1", "32FC1") or data.ndim != 2:
            raise MessageError(
                f"radar scan must be a mono8/8UC1/32FC1 image, got {scan.encoding} {data.shape}",
                stamp_ns=stamp_ns,
            )
        try:
            pts = self._extractor.extract(data)
            out: dict[str, Any] = {
                "points": PointCloud(stamp_ns, scan.frame_id, pts, 1, int(pts.shape[0]), True),
            }
            if self._cart is not None:
                img = self._cart.convert(data)
                out["cartesian"] = ImageData(stamp_ns, scan.frame_id, "mono8", img)
        except RadarInputError as exc:
            raise MessageError(f"stage '{self.name}': {exc.message}", stamp_ns=stamp_ns) from None
        return out


__all__ = ["RadarPolarPoints", "RadarPolarPointsParams"]
