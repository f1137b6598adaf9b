"""Stages: the :class:`Stage` base class and the built-in stages, one module per family.

Built-in families (each module registers its stage types with :func:`register_stage` and is found
automatically): ``decode`` (image decoding), ``projection`` (LiDAR/radar → camera, painting, depth
densification, multi-camera), ``deskew``, ``voxel`` (BEV grids, crops, ground removal), ``radar``,
``objects`` (NMS, WBF, tracking) and ``estimation`` (EKF/UKF localization).  Other packages add stage
types through the ``edgefuse.stages`` entry-point group (e.g. ``edgefuse_calibration``'s
``online_time_offset``).  Stages wrap the operators of :mod:`edgefuse.fusion`, :mod:`edgefuse.objects`
and :mod:`edgefuse.estimation`; they never import the pipeline.  Each declares its parameters as a typed
dataclass (:mod:`edgefuse.stages.params`): type, default, unit, range and doc in one place, from which
validation, the JSON Schema and ``edgefuse stages`` are derived.
"""

from __future__ import annotations

from edgefuse.stages.base import Stage, known_stage_types, register_stage, stage_class
from edgefuse.stages.params import NoParams, StageParams, param

__all__ = ["NoParams", "Stage", "StageParams", "known_stage_types", "param", "register_stage", "stage_class"]
