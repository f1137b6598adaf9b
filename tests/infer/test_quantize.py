"""Static INT8 quantization calibrated on the demo recording replayed through a pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.errors import ModelError
from edgefuse.infer import load_card
from edgefuse.infer.card import sha256_of
from edgefuse.infer.quantize import QuantizeOptions, quantize_model
from edgefuse.pipeline.config import check_pipeline
from edgefuse.quantize import collect_model_inputs, quantize_from_bag
from tests.infer.models import DEMO, conv_model, demo_pipeline, write_card

FAST: dict[str, Any] = {"latency_runs": 3, "threads": (1,)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("quant")
    model = conv_model(folder / "tiny.onnx")
    write_card(model)
    pipe = demo_pipeline(folder, model)
    return model, pipe, collect_model_inputs(pipe, DEMO, "net")


def test_calibration_tensors_are_the_models_inputs_for_every_pair(demo: tuple[Path, Path, list[Any]]) -> None:
    _, _, sets = demo
    assert len(sets) >= 25
    assert all(set(s) == {"image"} and s["image"].shape == (1, 3, 64, 96) and s["image"].dtype == np.float32
               for s in sets)
    assert not np.array_equal(sets[0]["image"], sets[-1]["image"])  # copies, not one reused buffer
    # normalized with the card's mean/std: roughly zero-centred, inside the ImageNet-normalized range
    x = np.concatenate([s["image"].ravel() for s in sets])
    assert -2.2 < x.min() < 0 < x.max() < 2.7


def test_quantize_from_bag_writes_model_card_and_report(demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, pipe, sets = demo
    out, report_path = tmp_path / "tiny.int8.onnx", tmp_path / "report.json"
    rep = quantize_from_bag(model, pipe, DEMO, "net", out, heldout_fraction=0.25, report_path=report_path,
                            options=QuantizeOptions(threads=(1, 2), latency_runs=5))
    assert rep.written and out.is_file() and report_path.is_file()
    assert rep.heldout_sets == round(len(sets) * 0.25) and rep.calibration_sets == len(sets) - rep.heldout_sets
    assert rep.metric["name"] == "cosine" and rep.metric["relative_drop"] < 0.01 and rep.metric["int8"] > 0.99
    assert 0 < rep.outputs["prob"]["mean_abs_diff"] <= rep.outputs["prob"]["max_abs_diff"] < 0.1
    assert set(rep.latency_ms) == {"threads_1", "threads_2"}
    assert all(v["fp32"] > 0 and v["int8"] > 0 for v in rep.latency_ms.values())
    import onnx

    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops  # QDQ format
    card = load_card(tmp_path / "tiny.int8.yaml")
    assert card.sha256 == sha256_of(out) and card.extra["quantization"]["per_channel"] is True
    assert card.extra["figures"]["metric"]["relative_drop"] == rep.metric["relative_drop"]
    # the INT8 model with its card runs in the same pipeline
    pipe2 = demo_pipeline(tmp_path, out)
    assert check_pipeline(pipe2)[1] == []


def test_a_metric_drop_above_tolerance_is_refused_and_nothing_written(
        demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    out = tmp_path / "refused.onnx"
    rep = quantize_model(model, sets[:-8], sets[-8:], out, options=QuantizeOptions(tolerance=0.0, **FAST))
    assert not rep.written and not out.exists() and rep.out is None
    assert rep.verdict.startswith("refused: cosine dropped by") and "nothing written" in rep.verdict


def test_calibration_bag_too_short_is_refused_with_the_count_needed(
        demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, pipe, sets = demo
    with pytest.raises(ModelError, match=rf"too short to calibrate: stage 'net' ran on {len(sets)} set\(s\), "
                                         rf".*needs at least 200 calibration sets \(267 sets in the recording\)"):
        quantize_from_bag(model, pipe, DEMO, "net", tmp_path / "x.onnx", options=QuantizeOptions(min_calibration=200))
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_entropy_and_percentile_calibration(demo: tuple[Path, Path, list[Any]], tmp_path: Path, method: str) -> None:
    model, _, sets = demo
    rep = quantize_model(model, sets[:-8], sets[-8:], tmp_path / "q.onnx",
                         options=QuantizeOptions(method=method, **FAST))  # type: ignore[arg-type]
    assert rep.written and rep.metric["relative_drop"] < 0.01 and method in rep.steps[-1]


def test_old_opset_is_upgraded_before_quantizing(demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    _, _, sets = demo
    old = conv_model(tmp_path / "old.onnx", opset=11)
    rep = quantize_model(old, sets[:-8], sets[-8:], tmp_path / "q.onnx", options=QuantizeOptions(**FAST))
    assert rep.written and rep.steps[0] == "opset 11 -> 13 (onnx.version_converter)"
    from edgefuse.infer.runtime import inspect_model

    assert inspect_model(tmp_path / "q.onnx").opsets[""] >= 13


def test_cli_quantize_refuses_a_file_that_is_not_onnx(demo: tuple[Path, Path, list[Any]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from edgefuse.cli import main

    bad = tmp_path / "tiny.onnx"
    bad.write_bytes(b"PK\x03\x04 a zip, not a model")
    write_card(bad)
    pipe = demo_pipeline(tmp_path, bad)
    code = main(["quantize", str(bad), "--pipeline", str(pipe), "--bag", str(DEMO), "--stage", "net",
                 "--out", str(tmp_path / "q.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "is not an ONNX model" in err and "Traceback" not in err
    assert not (tmp_path / "q.onnx").exists()


def _float_convs(path: Path) -> int:
    """Conv nodes of a QDQ model whose weight is a plain float initializer (not dequantized)."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {i.name for i in graph.initializer}
    return sum(1 for n in graph.node if n.op_type == "Conv" and n.input[1] in inits)


def test_excluded_operator_types_stay_float(demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    plain = quantize_model(model, sets[:-8], sets[-8:], tmp_path / "all.onnx", options=QuantizeOptions(**FAST))
    assert plain.written and plain.excluded == [] and _float_convs(tmp_path / "all.onnx") == 0
    rep = quantize_model(model, sets[:-8], sets[-8:], tmp_path / "ex.onnx",
                         options=QuantizeOptions(exclude=("Conv",), **FAST))
    # the tiny model's nodes have no names: they are named so the quantizer can match them
    assert rep.written and len(rep.excluded) == 2 and all(n.startswith("edgefuse_unnamed_Conv_") for n in rep.excluded)
    assert _float_convs(tmp_path / "ex.onnx") == 2 and "2 node(s) kept in float (exclude: Conv)" in rep.steps
    # no quantized conv: the INT8 model computes what FP32 does far more closely
    assert rep.outputs["prob"]["max_abs_diff"] < plain.outputs["prob"]["max_abs_diff"]


def test_exclude_entry_matching_nothing_is_an_error(demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    with pytest.raises(ModelError, match=r"exclude entries match no node or operator type after pre-processing: "
                                         r"NoSuchNode \(operator types present: Conv, Relu, Sigmoid\)"):
        quantize_model(model, sets[:-8], sets[-8:], tmp_path / "q.onnx",
                       options=QuantizeOptions(exclude=("Conv", "NoSuchNode"), **FAST))
    assert not (tmp_path / "q.onnx").exists()


def test_cli_quantize_exclude(demo: tuple[Path, Path, list[Any]], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edgefuse.cli import main

    model, pipe, _ = demo
    out = tmp_path / "q.onnx"
    code = main(["quantize", str(model), "--pipeline", str(pipe), "--bag", str(DEMO), "--stage", "net",
                 "--out", str(out), "--exclude", "Sigmoid, Conv"])
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert code == 0 and out.is_file() and rep["options"]["exclude"] == ["Sigmoid", "Conv"]
    assert len(rep["excluded"]) == 3 and _float_convs(out) == 2


def test_auto_exclude_keeps_the_most_sensitive_blocks_float_until_within_tolerance(
        demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    calib, held = sets[:-8], sets[-8:]
    plain = quantize_model(model, calib, held, tmp_path / "all.onnx", options=QuantizeOptions(**FAST))
    assert plain.written and plain.auto == {}
    tolerance = plain.metric["relative_drop"] / 2  # the all-INT8 model misses it
    strict = QuantizeOptions(tolerance=tolerance, **FAST)
    without = quantize_model(model, calib, held, tmp_path / "no.onnx", options=strict)
    assert not without.written and not (tmp_path / "no.onnx").exists()
    out = tmp_path / "mixed.onnx"
    rep = quantize_model(model, calib, held, out, options=QuantizeOptions(
        tolerance=tolerance, auto_exclude=True, auto_max_float=1.0, **FAST))
    assert rep.written and out.is_file() and rep.metric["relative_drop"] <= tolerance
    auto = rep.auto
    # two blocks (conv3x3 + relu, conv1x1 + sigmoid), each measured, the most sensitive first
    assert auto["blocks"] == 2 and len(auto["sensitivity"]) == 2
    first, second = ((b["cosine_loss_removed"], b["mse_removed"]) for b in auto["sensitivity"])
    assert first >= second and first[1] > 0
    assert auto["trials"][0] == {"float_blocks": 0, "int8": plain.metric["int8"],
                                 "relative_drop": plain.metric["relative_drop"]}
    assert 1 <= len(auto["float_blocks"]) <= 2 and auto["float_blocks"][0] == auto["sensitivity"][0]["block"]
    assert set(auto["float_blocks"]) <= set(rep.excluded) and f"{len(auto['float_blocks'])} of 2 block(s)" in \
        rep.steps[-1]
    assert _float_convs(out) == len(auto["float_blocks"])  # the chosen blocks' convs really stay float
    # calibration ran once: every trial model reused the ranges
    assert auto["quantizer_runs"] == 1 + 2 + (len(auto["trials"]) - 1)


def test_auto_exclude_refuses_when_even_the_allowed_float_blocks_miss_the_tolerance(
        demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    out = tmp_path / "q.onnx"
    rep = quantize_model(model, sets[:-8], sets[-8:], out, options=QuantizeOptions(
        tolerance=0.0, auto_exclude=True, auto_max_float=0.5, **FAST))
    assert not rep.written and not out.exists()
    assert rep.auto["max_float_blocks"] == 1 and [t["float_blocks"] for t in rep.auto["trials"]] == [0, 1]
    assert "even with 1 block(s) in float" in rep.verdict and rep.verdict.startswith("refused: cosine dropped")


def test_task_metric_judges_int8_against_fp32s_own_score(demo: tuple[Path, Path, list[Any]], tmp_path: Path) -> None:
    model, _, sets = demo
    held = sets[-8:]
    truth = [s["image"].mean() > np.median([h["image"].mean() for h in held]) for s in held]

    def accuracy(outputs: list[dict[str, Any]]) -> float:  # a toy task: is the frame brighter than the median
        guess = [o["prob"].mean() > np.median([p["prob"].mean() for p in outputs]) for o in outputs]
        return float(np.mean([g == t for g, t in zip(guess, truth, strict=True)]))

    rep = quantize_model(model, sets[:-8], held, tmp_path / "q.onnx", options=QuantizeOptions(**FAST),
                         task_metric=accuracy)
    m = rep.metric
    assert m["name"] == "task" and 0 < m["fp32"] <= 1 and m["relative_drop"] == pytest.approx(
        (m["fp32"] - m["int8"]) / m["fp32"])
    assert m["agreement"]["name"] == "cosine" and m["agreement"]["int8_vs_fp32"] > 0.99
    assert rep.verdict.startswith("written: task drop")


def test_cli_quantize_auto_exclude(demo: tuple[Path, Path, list[Any]], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edgefuse.cli import main

    model, pipe, _ = demo
    out = tmp_path / "q.onnx"
    code = main(["quantize", str(model), "--pipeline", str(pipe), "--bag", str(DEMO), "--stage", "net",
                 "--out", str(out), "--tolerance", "0", "--auto-exclude", "--auto-max-float", "0.5"])
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert code == 2 and not out.exists() and rep["options"]["auto_exclude"] is True
    assert rep["auto"]["blocks"] == 2 and len(rep["auto"]["trials"]) == 2
    assert "even with 1 block(s) in float" in captured.err and "Traceback" not in captured.err


def _skip_connection_model(path: Path) -> Path:
    """x (1, 3, h, w) -> stride-2 conv c1 -> stride-2 conv -> 2x nearest upsample -> + c1: an FPN-style skip
    whose two branches' symbolic sizes ONNX Runtime's symbolic shape inference cannot prove equal."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((3, 3, 3, 3), 0.1, np.float32), "w")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Conv", ["c1", "w"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Resize", ["c2", "", "scales"], ["r"], mode="nearest"),
             helper.make_node("Add", ["r", "c1"], ["y"])]
    graph = helper.make_graph(nodes, "skip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h2", "w2"])], [w, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_failed_symbolic_shape_inference_leaves_nothing_in_the_users_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime saves its partial model as sym_shape_infer_temp.onnx in the current folder when symbolic shape
    inference gives up; quantize retries without it, and the file must not land in the user's folder."""
    _skip_connection_model(tmp_path / "skip.onnx")
    cwd = tmp_path / "user"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rng = np.random.default_rng(0)
    sets = [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(10)]
    rep = quantize_model(Path("..") / "skip.onnx", sets[:8], sets[8:], "q.onnx", options=QuantizeOptions(**FAST))
    assert rep.written and (cwd / "q.onnx").is_file()  # relative paths still mean the user's folder
    assert any(s.startswith("quant_pre_process without symbolic shape inference") for s in rep.steps)
    assert sorted(p.name for p in cwd.iterdir()) == ["q.onnx"]


def test_cli_quantize_no_fold_reaches_the_options(demo: tuple[Path, Path, list[Any]], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edgefuse.cli import main

    model, pipe, _ = demo
    code = main(["quantize", str(model), "--pipeline", str(pipe), "--bag", str(DEMO), "--stage", "net",
                 "--out", str(tmp_path / "q.onnx"), "--no-fold"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["options"]["fold"] is False and rep["fold_error"] is None
    assert not any(s.startswith("folded") for s in rep["steps"])
