"""Radar stages.

- ``radar_polar_points``: a decoded polar scanning-radar image (mono8, (range, azimuth) as RADIATE's
  ``Navtech_Polar`` PNGs) → radar points (x, y, z, intensity; radar frame x right / y forward / z up)
  and a Cartesian bird's-eye image (mono8).  Geometry and detector: :mod:`edgefuse.fusion.radar`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion.radar import NAVTECH_RANGE_RES_M, PolarToCartesian, RadarInputError, RadarPointExtractor
from edgefuse.msgs.types import ImageData, PointCloud
from edgefuse.stages.base import Param, Stage, register_stage


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
    params: ClassVar[dict[str, Param]] = {
        "range_res_m": Param(float, NAVTECH_RANGE_RES_M, doc="metres per range bin"),
        "n_range": Param(int, 576, doc="range bins per azimuth"),
        "n_azimuth": Param(int, 400, doc="azimuths per 360° scan"),
        "azimuth_axis": Param(int, 1, doc="axis of the image that indexes azimuth"),
        "azimuth_offset_bins": Param(float, 0.5, doc="column j looks along (j + offset) * 360°/n_az"),
        "threshold": Param(float, 80.0, doc="minimum peak intensity"),
        "min_range_m": Param(float, 2.0, doc="ignore peaks nearer than this"),
        "max_peaks_per_azimuth": Param(int, 4),
        "cartesian": Param(bool, True, doc="also produce the Cartesian image"),
        "cartesian_size_px": Param(int, 1152),
        "cartesian_res_m": Param(float, NAVTECH_RANGE_RES_M, doc="metres per Cartesian pixel"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        try:
            self._extractor = RadarPointExtractor(
                p["n_range"],
                p["n_azimuth"],
                range_res_m=p["range_res_m"],
                threshold=p["threshold"],
                min_range_m=p["min_range_m"],
                max_peaks_per_azimuth=p["max_peaks_per_azimuth"],
                azimuth_offset_bins=p["azimuth_offset_bins"],
                azimuth_axis=p["azimuth_axis"],
            )
            self._cart: PolarToCartesian | None = None
            if p["cartesian"]:
                self._cart = PolarToCartesian(
                    p["n_range"],
                    p["n_azimuth"],
                    range_res_m=p["range_res_m"],
                    out_size_px=p["cartesian_size_px"],
                    out_res_m=p["cartesian_res_m"],
                    azimuth_offset_bins=p["azimuth_offset_bins"],
                    azimuth_axis=p["azimuth_axis"],
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


__all__ = ["RadarPolarPoints"]
