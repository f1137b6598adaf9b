"""edgefuse.fusion: data-, feature- and output-level fusion operators.

Data level so far: :class:`Projector` projects LiDAR/radar points into a camera (z-buffered sparse
depth image, per-point pixel coordinates and colours); :mod:`edgefuse.fusion.radar` turns Navtech
polar scans into Cartesian images and radar points.
"""

from __future__ import annotations

from edgefuse.fusion._models import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL
from edgefuse.fusion.projection import CameraParamError, ProjectionResult, Projector, project_to_depth
from edgefuse.fusion.radar import (
    NAVTECH_RANGE_RES_M,
    RADAR_POINT_DTYPE,
    PolarToCartesian,
    RadarInputError,
    RadarPointExtractor,
    cartesian_pixels,
    polar_to_cartesian,
    polar_to_points,
    radiate_center_px,
)

__all__ = [
    "EQUIDISTANT",
    "NAVTECH_RANGE_RES_M",
    "PINHOLE",
    "PLUMB_BOB",
    "RADAR_POINT_DTYPE",
    "RATIONAL",
    "CameraParamError",
    "PolarToCartesian",
    "ProjectionResult",
    "Projector",
    "RadarInputError",
    "RadarPointExtractor",
    "cartesian_pixels",
    "polar_to_cartesian",
    "polar_to_points",
    "project_to_depth",
    "radiate_center_px",
]
