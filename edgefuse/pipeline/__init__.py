"""The pipeline: graph (YAML, load-time checks), the timed runner, budgets and latency.

Stages live in :mod:`edgefuse.stages`, sources in :mod:`edgefuse.sources`, sinks in :mod:`edgefuse.sinks`.
"""

from __future__ import annotations

from edgefuse.pipeline.budget import Budget, parse_budget
from edgefuse.pipeline.config import PipelineConfig, check_pipeline, load_pipeline
from edgefuse.pipeline.latency import LatencyRecorder, LatencySummary
from edgefuse.pipeline.runner import PipelineRunner

__all__ = [
    "Budget",
    "LatencyRecorder",
    "LatencySummary",
    "PipelineConfig",
    "PipelineRunner",
    "check_pipeline",
    "load_pipeline",
    "parse_budget",
]
