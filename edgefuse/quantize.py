"""``edgefuse quantize``: INT8 from a real recording replayed through the pipeline up to the model's inputs.

The pipeline runs as in ``edgefuse replay --max-speed`` (same sources, synchronizer and stages, no sinks);
the ``onnx_model`` stage named by ``--stage`` hands each set's model inputs — after the pre-processing its
card declares — to the collector.  Calibration uses the first part of the recording and the accuracy report
the held-out rest (``heldout_fraction``), or a second recording (``heldout_bag``) used whole.  The INT8 model
gets its own card (``MODEL.int8.yaml``: same tensors, new sha256, the quantization and its figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from edgefuse.errors import ConfigError, ModelError
from edgefuse.infer.card import card_path_for, sha256_of
from edgefuse.infer.quantize import QuantizeOptions, QuantizeReport, quantize_model
from edgefuse.pipeline.config import load_pipeline
from edgefuse.pipeline.runner import PipelineRunner
from edgefuse.sources import open_source

__all__ = ["collect_model_inputs", "quantize_from_bag", "write_int8_card"]

Feeds = dict[str, npt.NDArray[Any]]


def collect_model_inputs(pipeline: str | Path, bag: str | Path, stage: str, *, rig: str | Path | None = None,
                         model: str | Path | None = None) -> list[Feeds]:
    """Replay ``bag`` through ``pipeline`` and return the model inputs of the ``onnx_model`` stage ``stage``,
    one mapping (input name → array copy) per set it ran on, in recording order.  ``model`` (optional) must be
    the stage's model file (a different file is refused: its inputs may differ)."""
    from edgefuse.stages.onnx_model import OnnxModelStage

    config = load_pipeline(pipeline, rig_override=rig)
    names = [s.name for s in config.stages]
    if stage not in names:
        raise ConfigError(f"pipeline has no stage '{stage}' (stages: {', '.join(names)})", file=pipeline)
    runner = PipelineRunner(config, [])
    target = runner.stages[names.index(stage)]
    if not isinstance(target, OnnxModelStage):
        raise ConfigError(f"stage '{stage}' is a {target.type_name} stage, not onnx_model", file=pipeline)
    if model is not None and Path(model).resolve() != Path(target.params.model).resolve():
        raise ConfigError(f"stage '{stage}' runs {target.params.model}, not {model}", file=pipeline)
    captured: list[Feeds] = []
    target.tap = captured.append
    topics = [spec.topic for spec in config.inputs.values()]
    source = open_source(bag, on_error="skip")
    source.set_time_offsets(config.time_offsets_ns())
    with source:
        runner.start()
        for env in source.envelopes(topics):
            runner.feed(env)
        runner.finish()
    return captured


def write_int8_card(fp32_card: Path, int8_model: Path, report: QuantizeReport) -> Path:
    """The INT8 model's card: the FP32 card's content with the new model name and sha256, the quantization
    settings and the FP32/INT8 figures of ``report``."""
    from edgefuse._yaml import load_yaml, plain

    data, problems = load_yaml(fp32_card)
    if problems or not isinstance(data, dict):
        raise ModelError(f"cannot read card {fp32_card}", file=fp32_card)
    card = plain(data)
    card["name"] = f"{card.get('name', int8_model.stem)}.int8"
    card["model"] = int8_model.name
    card["sha256"] = sha256_of(int8_model)
    card["quantization"] = {k: report.options[k] for k in ("method", "fmt", "per_channel", "reduce_range",
                                                           "activations")}
    card["quantization"].update(calibration_sets=report.calibration_sets, heldout_sets=report.heldout_sets,
                                steps=report.steps, source_model=Path(report.model).name)
    card["figures"] = {"metric": report.metric, "outputs": report.outputs, "latency_ms": report.latency_ms}
    from ruamel.yaml import YAML

    path = card_path_for(int8_model)
    yaml = YAML()
    yaml.default_flow_style = None
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(card, f)
    return path


def quantize_from_bag(model: str | Path, pipeline: str | Path, bag: str | Path, stage: str, out: str | Path, *,
                      heldout_bag: str | Path | None = None, heldout_fraction: float = 0.25,
                      options: QuantizeOptions | None = None, report_path: str | Path | None = None,
                      rig: str | Path | None = None, overwrite: bool = False) -> QuantizeReport:
    """Collect calibration and held-out model inputs from recordings, quantize, write model + card if accepted.

    Held-out sets: the last ``heldout_fraction`` of ``bag``'s sets (calibration: the sets before them), or
    every set of ``heldout_bag`` when given (calibration: every set of ``bag``).
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise ConfigError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    sets = collect_model_inputs(pipeline, bag, stage, rig=rig, model=model)
    calibration: Sequence[Feeds]
    if heldout_bag is not None:
        calibration, heldout = sets, collect_model_inputs(pipeline, heldout_bag, stage, rig=rig, model=model)
    else:
        cut = len(sets) - max(1, round(len(sets) * heldout_fraction))
        calibration, heldout = sets[:cut], sets[cut:]
    opts = options or QuantizeOptions()
    if len(calibration) < opts.min_calibration:
        need = opts.min_calibration
        if heldout_bag is None:
            need = int(opts.min_calibration / (1 - heldout_fraction)) + 1
        raise ModelError(f"{bag} is too short to calibrate: stage '{stage}' ran on {len(sets)} set(s), "
                         f"{len(calibration)} left for calibration; it needs at least {opts.min_calibration} "
                         f"calibration sets ({need} sets in the recording)", file=bag)
    report = quantize_model(model, calibration, heldout, out, options=opts, report_path=None, overwrite=overwrite)
    card = card_path_for(model)
    if report.written and card.is_file():
        write_int8_card(card, Path(out), report)
    if report_path is not None:
        import json

        Path(report_path).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report
