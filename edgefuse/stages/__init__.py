"""Stages: the :class:`Stage` base class and the built-in stages, one module per family.

Built-in families (each module registers its stage types with :func:`register_stage` and is found
automatically): ``decode`` (image decoding), ``projection`` (LiDAR/radar → camera, painting, depth
densification, multi-camera), ``deskew``, ``voxel`` (BEV grids, crops, ground removal), ``radar``,
``objects`` (NMS, WBF, tracking) and ``estimation`` (EKF/UKF localization).  Other packages add stage
types through the ``edgefuse.stages`` entry-point group (e.g. ``edgefuse_calibration``'s
``online_time_offset``).  Stages wrap the operators of :mod:`edgefuse.fusion`, :mod:`edgefuse.objects`
and :mod:`edgefuse.estimation`; they never import the pipeline.
"""

from __future__ import annotations

from edgefuse.stages.base import Param, Stage, known_stage_types, register_stage, stage_class

__all__ = ["Param", "Stage", "known_stage_types", "register_stage", "stage_class"]
