"""Continental object lists → ``radar_msgs/RadarTracks`` (:class:`~edgefuse.msgs.types.RadarTracksData`).

Mapping, per object (ARS548 :data:`~edgefuse_drivers.continental.ars548.OBJECT_DTYPE`, SRR520
:data:`~edgefuse_drivers.continental.srr520.OBJECT_DTYPE`):

- ``uuid``: the object id as a 128-bit big-endian integer (bytes 0..11 zero, the id in the last 4 bytes), so
  that the UUID's hex form ends in the id; ids are the sensor's and are reused after an object is dropped;
- ``position``: ARS548 ``position_x/y/z`` — the point of the box given by ``position_reference`` (0..7,
  as the sensor reports it; not moved to the box centre); SRR520 ``dist_x/y``, z = 0.  Both in the frame the
  sensor is configured to report in (vehicle frame unless configured otherwise);
- ``velocity``/``acceleration``: the absolute (over-ground) values, x and y; z = 0 (the sensors track in 2-D);
- ``size``: (length, width, 0) — ARS548 ``shape_length_edge_mean``/``shape_width_edge_mean``; SRR520
  ``box_length``/``box_width`` when ``box_valid``, else 0; the sensors report no height;
- ``classification``: ARS548: the class with the highest probability (ties: the first in the order car,
  truck, motorcycle, bicycle, pedestrian, animal, hazard, unknown) as a vendor-specific code
  (:data:`CLASS_CODES`: Autoware's ``radar_tracks_msgs_converter`` codes where it has the class — 32000
  unknown, 32001 car, 32002 truck, 32005 motorcycle, 32006 bicycle, 32007 pedestrian — and 32100 animal,
  32101 hazard); when every probability is 0, ``status_movement`` (0 moving → ``DYNAMIC``, 1 stationary →
  ``STATIC``, else ``NO_CLASSIFICATION``).  SRR520 objects carry no class: ``NO_CLASSIFICATION``;
- covariances (upper triangle xx, xy, xz, yy, yz, zz) from the standard deviations (squared) and the sent
  xy covariances (ARS548 position, velocity and acceleration; SRR520 sends none: xy = 0); z terms 0 except
  the ARS548 position's ``position_z_std``²; size: length std², width std² (SRR520: 0).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgefuse.msgs.types import (
    RADAR_TRACK_DTYPE,
    RADAR_TRACK_DYNAMIC,
    RADAR_TRACK_NO_CLASSIFICATION,
    RADAR_TRACK_STATIC,
)

__all__ = ["ARS548_CLASSES", "CLASS_CODES", "ars548_tracks", "srr520_tracks", "uuid_of"]

#: ARS548 class-probability fields, in tie-break order
ARS548_CLASSES = ("car", "truck", "motorcycle", "bicycle", "pedestrian", "animal", "hazard", "unknown")
#: vendor-specific ``RadarTrack.classification`` code of each class (≥ 32000, as radar_msgs permits)
CLASS_CODES = {"unknown": 32000, "car": 32001, "truck": 32002, "motorcycle": 32005, "bicycle": 32006,
               "pedestrian": 32007, "animal": 32100, "hazard": 32101}


def uuid_of(ids: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """(N, 16) UUID bytes of object ids (big-endian, the id in the last 4 bytes)."""
    ids = np.asarray(ids, np.uint64).reshape(-1)
    out = np.zeros((len(ids), 16), np.uint8)
    out[:, 12:] = ids.astype(">u4").view(np.uint8).reshape(-1, 4)
    return out


def _upper(xx: npt.ArrayLike, xy: npt.ArrayLike, yy: npt.ArrayLike, zz: npt.ArrayLike = 0.0) -> npt.NDArray[np.float32]:
    xx_a = np.asarray(xx, np.float64)
    zero = np.zeros_like(xx_a)
    xy_a, yy_a, zz_a = (zero + np.asarray(v, np.float64) for v in (xy, yy, zz))
    return np.stack([xx_a, xy_a, zero, yy_a, zero, zz_a], axis=-1).astype(np.float32)


def ars548_tracks(objects: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """The ARS548 ``objects`` as :data:`~edgefuse.msgs.types.RADAR_TRACK_DTYPE` rows (see the module)."""
    o = objects
    out = np.zeros(len(o), dtype=RADAR_TRACK_DTYPE)
    out["uuid"] = uuid_of(o["object_id"])
    out["position"] = np.stack([o["position_x"], o["position_y"], o["position_z"]], axis=-1)
    zero = np.zeros(len(o))
    out["velocity"] = np.stack([o["absolute_velocity_x"], o["absolute_velocity_y"], zero], axis=-1)
    out["acceleration"] = np.stack([o["absolute_acceleration_x"], o["absolute_acceleration_y"], zero], axis=-1)
    out["size"] = np.stack([o["shape_length_edge_mean"], o["shape_width_edge_mean"], zero], axis=-1)
    probs = np.stack([o[f"raw_classification_{c}"] for c in ARS548_CLASSES], axis=-1).astype(np.int64)
    codes = np.array([CLASS_CODES[c] for c in ARS548_CLASSES], np.uint16)
    best = codes[np.argmax(probs, axis=-1)] if len(o) else np.zeros(0, np.uint16)
    movement = np.where(o["status_movement"] == 0, RADAR_TRACK_DYNAMIC,
                        np.where(o["status_movement"] == 1, RADAR_TRACK_STATIC, RADAR_TRACK_NO_CLASSIFICATION))
    out["classification"] = np.where(probs.max(axis=-1, initial=0) > 0, best, movement)
    f = np.float64
    out["position_covariance"] = _upper(o["position_x_std"].astype(f) ** 2, o["position_covariance_xy"],
                                        o["position_y_std"].astype(f) ** 2, o["position_z_std"].astype(f) ** 2)
    out["velocity_covariance"] = _upper(o["absolute_velocity_x_std"].astype(f) ** 2,
                                        o["absolute_velocity_covariance_xy"],
                                        o["absolute_velocity_y_std"].astype(f) ** 2)
    out["acceleration_covariance"] = _upper(o["absolute_acceleration_x_std"].astype(f) ** 2,
                                            o["absolute_acceleration_covariance_xy"],
                                            o["absolute_acceleration_y_std"].astype(f) ** 2)
    out["size_covariance"] = _upper(o["shape_length_edge_std"].astype(f) ** 2, 0.0,
                                    o["shape_width_edge_std"].astype(f) ** 2)
    return out


def srr520_tracks(objects: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """The SRR520 ``objects`` as :data:`~edgefuse.msgs.types.RADAR_TRACK_DTYPE` rows (see the module)."""
    o = objects
    out = np.zeros(len(o), dtype=RADAR_TRACK_DTYPE)
    out["uuid"] = uuid_of(o["object_id"])
    zero = np.zeros(len(o))
    out["position"] = np.stack([o["dist_x"], o["dist_y"], zero], axis=-1)
    out["velocity"] = np.stack([o["v_abs_x"], o["v_abs_y"], zero], axis=-1)
    out["acceleration"] = np.stack([o["a_abs_x"], o["a_abs_y"], zero], axis=-1)
    valid = o["box_valid"] != 0
    out["size"] = np.stack([np.where(valid, o["box_length"], 0.0), np.where(valid, o["box_width"], 0.0), zero],
                           axis=-1)
    out["classification"] = RADAR_TRACK_NO_CLASSIFICATION
    f = np.float64
    out["position_covariance"] = _upper(o["dist_x_std"].astype(f) ** 2, 0.0, o["dist_y_std"].astype(f) ** 2)
    out["velocity_covariance"] = _upper(o["v_abs_x_std"].astype(f) ** 2, 0.0, o["v_abs_y_std"].astype(f) ** 2)
    out["acceleration_covariance"] = _upper(o["a_abs_x_std"].astype(f) ** 2, 0.0, o["a_abs_y_std"].astype(f) ** 2)
    return out
