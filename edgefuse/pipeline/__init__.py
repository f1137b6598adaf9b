"""Pipeline graph (YAML, load-time checks), stages with a lifecycle, and the timed executor."""

from __future__ import annotations

from edgefuse.pipeline.budget import Budget, parse_budget
from edgefuse.pipeline.config import PipelineConfig, check_pipeline, load_pipeline
from edgefuse.pipeline.latency import LatencyRecorder, LatencySummary
from edgefuse.pipeline.runner import PipelineRunner, Sink
from edgefuse.pipeline.stage import Param, Stage, known_stage_types, register_stage, stage_class

__all__ = [
    "Budget",
    "LatencyRecorder",
    "LatencySummary",
    "Param",
    "PipelineConfig",
    "PipelineRunner",
    "Sink",
    "Stage",
    "check_pipeline",
    "known_stage_types",
    "load_pipeline",
    "parse_budget",
    "register_stage",
    "stage_class",
]
