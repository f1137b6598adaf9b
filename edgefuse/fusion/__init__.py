"""edgefuse.fusion: data-, feature- and output-level fusion operators.

Data level so far: :class:`Projector` projects LiDAR/radar points into a camera (z-buffered sparse
depth image, per-point pixel coordinates and colours).
"""

from __future__ import annotations

from edgefuse.fusion._models import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL
from edgefuse.fusion.projection import CameraParamError, ProjectionResult, Projector, project_to_depth

__all__ = [
    "EQUIDISTANT",
    "PINHOLE",
    "PLUMB_BOB",
    "RATIONAL",
    "CameraParamError",
    "ProjectionResult",
    "Projector",
    "project_to_depth",
]
