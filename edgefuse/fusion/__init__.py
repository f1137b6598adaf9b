"""edgefuse.fusion: data-level and feature-preparation fusion operators (Numba kernels behind
validating wrappers).

- :mod:`~edgefuse.fusion.projection`: points → camera pixels, z-buffered depth, colours (all rig camera models),
  one or many cameras; :mod:`~edgefuse.fusion.painting` (PointPainting); :mod:`~edgefuse.fusion.densify`
  (IP-Basic-style depth completion).
- :mod:`~edgefuse.fusion.deskew`: motion compensation of sweeps (constant velocity or IMU-integrated).
- :mod:`~edgefuse.fusion.radar`: Navtech polar scans → Cartesian images and radar points.
- :mod:`~edgefuse.fusion.voxel`, :mod:`~edgefuse.fusion.bev`: hard (SECOND semantics) / dynamic voxels, pillars,
  BEV grids.
- :mod:`~edgefuse.fusion.pointcloud_ops`: transforms, crops, RANSAC ground, range images.

Names are loaded lazily so that importing one operator does not compile or import the others.
"""

from __future__ import annotations

from edgefuse._lazy import lazy_exports

_WHERE: dict[str, str] = {}
for _module, _names in {
    "_models": ("EQUIDISTANT", "PINHOLE", "PLUMB_BOB", "RATIONAL"),
    "projection": ("CameraParamError", "MultiCameraProjector", "MultiProjectionResult", "ProjectionResult",
                   "Projector", "project_to_depth"),
    "painting": ("FeatureArrayError", "PointPainter", "append_point_fields", "paint_points", "painted_dtype"),
    "densify": ("DepthCompleter", "DepthImageError", "densify_depth", "make_kernel"),
    "deskew": ("ConstantVelocity", "DeskewError", "DeskewResult", "Deskewer", "Motion", "deskew", "integrate_imu",
               "so3_exp"),
    "radar": ("NAVTECH_RANGE_RES_M", "RADAR_POINT_DTYPE", "PolarToCartesian", "RadarInputError",
              "RadarPointExtractor", "cartesian_pixels", "polar_to_cartesian", "polar_to_points",
              "radiate_center_px"),
    "voxel": ("DynamicVoxelizer", "DynamicVoxels", "HardVoxels", "PillarVoxelizer", "Pillars", "VoxelGeometry",
              "VoxelParamError", "Voxelizer", "dynamic_voxelize", "voxelize"),
    "bev": ("BEV_CHANNELS", "BevGrid", "bev_grid"),
    "pointcloud_ops": ("HDL32E_ELEVATIONS_DEG", "HDL64E_ELEVATIONS_DEG", "GroundPlane", "PointTransformer",
                       "RangeImage", "RangeImageBuilder", "crop_box", "crop_fov", "crop_oriented_box", "crop_range",
                       "ransac_ground", "ring_edges", "ring_from_elevation", "transform_points",
                       "uniform_ring_edges"),
}.items():
    for _name in _names:
        _WHERE[_name] = _module

__all__ = sorted(_WHERE)  # noqa: PLE0605


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
