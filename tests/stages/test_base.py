"""The Stage base class: optional hooks are declared (not found by ``hasattr``), built-ins are discovered from
``edgefuse/stages/``, plugins through the ``edgefuse.stages`` entry points."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgefuse.pipeline import PipelineRunner, load_pipeline
from edgefuse.stages import Stage, StageParams, known_stage_types, param, stage_class

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class _PlainParams(StageParams):
    k: int = param(3, ge=0, le=10)


def test_hooks_have_defaults_on_the_base_class() -> None:
    class Plain(Stage):
        outputs: ClassVar[dict[str, str]] = {}
        Params = _PlainParams
        params: _PlainParams

        def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
            return {}

    stage = Plain("plain", {}, None)
    assert stage.report() is None
    assert Plain.check_rig(stage.params, None, {}) == []
    assert stage.input_frames == {}
    assert stage.params == _PlainParams(k=3)
    assert stage.params.k == 3


def test_every_builtin_module_is_discovered() -> None:
    names = known_stage_types()
    for expected in ("decode_image", "lidar_camera_projection", "multi_camera_projection", "deskew", "bev_grid",
                     "radar_polar_points", "wbf", "track", "ekf_localization", "online_time_offset"):
        assert expected in names
    for name in names:
        cls = stage_class(name)
        assert cls is not None and issubclass(cls, Stage) and cls.type_name == name
        assert inspect.getmodule(cls).__name__.startswith(("edgefuse.stages.", "edgefuse_calibration."))  # type: ignore[union-attr]


def test_runner_sets_input_frames_on_every_stage() -> None:
    config = load_pipeline(ROOT / "edgefuse" / "data" / "pipelines" / "radiate_demo.yaml")
    runner = PipelineRunner(config)
    frames = {s.name: s.input_frames for s in runner.stages}
    assert frames["project"]["cloud"] == "lidar"
    assert frames["decode"] == {"image": "zed_left"}
