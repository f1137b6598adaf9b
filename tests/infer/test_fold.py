"""Constant folds of exported graphs: equal outputs, fewer nodes, and the cases that must not fold."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.infer.fold import fold_graph
from edgefuse.infer.quantize import QuantizeOptions, quantize_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _const(name: str, value: Any) -> Any:
    """A Constant node (as paddle2onnx writes them), not an initializer."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32)))


def hardswish_net(*, last_pad: int = 0, extra_use: bool = False, div_by: float = 6.0) -> Any:
    """A PP-LCNet-like block: conv3x3 -> Mul(scale, constant FIRST) -> Add(bias) -> hard-swish written as
    Add/Clip/Mul/Div -> Mul(scale) -> Add(bias) -> 1x1 conv (``last_pad`` > 0: a padded 3x3 conv) -> output.
    ``extra_use``: the first conv's output is also a graph output (so it must not fold)."""
    rng = np.random.default_rng(3)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    k = 3 if last_pad else 1
    w2 = (rng.standard_normal((4, 8, k, k)) * 0.3).astype(np.float32)
    b2 = (rng.standard_normal(4) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        _const("s1", [1.7]), helper.make_node("Mul", ["s1", "c1"], ["m1"]),
        _const("t1", [0.3]), helper.make_node("Add", ["m1", "t1"], ["a1"]),
        _const("three", 3.0), helper.make_node("Add", ["a1", "three"], ["a3"]),
        _const("zero", 0.0), _const("six", 6.0), helper.make_node("Clip", ["a3", "zero", "six"], ["cl"]),
        helper.make_node("Mul", ["a1", "cl"], ["hm"]),
        _const("d", div_by), helper.make_node("Div", ["hm", "d"], ["hs"]),
        _const("s2", [0.6]), helper.make_node("Mul", ["s2", "hs"], ["m2"]),
        _const("t2", [-0.2]), helper.make_node("Add", ["m2", "t2"], ["a2"]),
        helper.make_node("Conv", ["a2", "w2", "b2"], ["y"], pads=[last_pad] * 4),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 24, 32])]
    if extra_use:
        outputs.append(helper.make_tensor_value_info("c1", TensorProto.FLOAT, [1, 8, 24, 32]))
    graph = helper.make_graph(nodes, "lab_hardswish",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 32])], outputs,
                              [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"),
                                                                          (b2, "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in sess.run(None, {"x": x})]


def _ops(model: Any) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node if n.op_type != "Constant")


X = np.random.default_rng(0).standard_normal((1, 3, 24, 32)).astype(np.float32) * 2


def test_the_whole_chain_folds_and_computes_the_same() -> None:
    model = hardswish_net()
    ref = _run(model, X)
    done = fold_graph(model)
    onnx.checker.check_model(model)
    # Div -> Mul(1/6), merged with Mul(0.6); Conv absorbs Mul(1.7)+Add(0.3); the unpadded 1x1 conv absorbs
    # Add(-0.2) and Mul(0.1): what is left is the hard-swish core, Add(3) -> Clip -> Mul
    assert done == Counter({"div_to_mul": 1, "mul_mul": 1, "conv_mul": 1, "conv_add": 1, "add_conv": 1,
                            "mul_conv": 1})
    assert _ops(model) == Counter({"Conv": 2, "Add": 1, "Clip": 1, "Mul": 1})
    got = _run(model, X)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5 * float(np.abs(ref[0]).max()))
    # nothing unused is left behind
    used = {i for n in model.graph.node for i in n.input}
    assert all(i.name in used for i in model.graph.initializer)


def test_a_padded_conv_keeps_the_bias_add_in_front_of_it() -> None:
    """Folding Add(c) into a zero-padded conv would add c*w at the border too: not the same model."""
    model = hardswish_net(last_pad=1)
    ref = _run(model, X)
    done = fold_graph(model)
    assert "add_conv" not in done and "mul_conv" not in done
    assert _ops(model)["Add"] == 2 and _ops(model)["Mul"] == 2  # Add(3), bias Add; hard-swish Mul, scale Mul
    np.testing.assert_allclose(_run(model, X)[0], ref[0], rtol=1e-5, atol=1e-5 * float(np.abs(ref[0]).max()))


def test_a_tensor_read_elsewhere_is_not_folded_away() -> None:
    model = hardswish_net(extra_use=True)
    ref = _run(model, X)
    done = fold_graph(model)
    assert "conv_mul" not in done and "conv_add" not in done  # c1 is a graph output
    got = _run(model, X)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5 * float(np.abs(ref[0]).max()))


def test_division_by_zero_is_left_as_it_is() -> None:
    model = hardswish_net(div_by=0.0)
    done = fold_graph(model)
    assert "div_to_mul" not in done and _ops(model)["Div"] == 1


def test_quantize_folds_checks_and_measures_against_the_faster_fp32(tmp_path: Path) -> None:
    src = tmp_path / "net.onnx"
    onnx.save(hardswish_net(), str(src))
    rng = np.random.default_rng(1)
    sets = [{"x": (rng.standard_normal((1, 3, 24, 32)) * 2).astype(np.float32)} for _ in range(12)]
    fast: dict[str, Any] = {"latency_runs": 3, "threads": (1,), "tolerance": 1.0}
    rep = quantize_model(src, sets[:8], sets[8:], tmp_path / "q.onnx", options=QuantizeOptions(**fast))
    assert rep.written and any(s.startswith("folded ") and "1 div_to_mul" in s for s in rep.steps)
    assert rep.fold_error is not None and rep.fold_error < 1e-5
    row = rep.latency_ms["threads_1"]
    assert row["fp32"] == min(row["fp32_original"], row["fp32_folded"])
    assert row["speedup"] == pytest.approx(row["fp32"] / row["int8"])
    q_ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node)
    assert q_ops["Div"] == 0 and q_ops["Mul"] == 1  # every Mul/Add left is quantized (QDQ around it)
    # without folding, the Div stays and runs in float between a DequantizeLinear and a QuantizeLinear
    plain = quantize_model(src, sets[:8], sets[8:], tmp_path / "p.onnx", options=QuantizeOptions(fold=False, **fast))
    assert plain.fold_error is None and not any(s.startswith("folded") for s in plain.steps)
    assert "fp32_folded" not in plain.latency_ms["threads_1"]
    assert Counter(n.op_type for n in onnx.load(str(tmp_path / "p.onnx")).graph.node)["Div"] == 1


def _conv_mul(*, read_in_if_body: bool) -> Any:
    """x -> Conv -> c1 -> Mul(2.5) -> y (a graph output).  ``read_in_if_body``: y is Mul(c1, 2.5) / 2 instead,
    and an If node's branches compute c1 * k2 from the outer graph (c1 and the initializer k2 are not listed as
    the If's inputs) and output it as ``z``."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((2, 3, 1, 1))).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"]), _const("k", 2.5),
             helper.make_node("Mul", ["c1", "k"], ["y0" if read_in_if_body else "y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 24, 32])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 32])]
    if read_in_if_body:
        def branch(name: str) -> Any:
            return helper.make_graph([helper.make_node("Mul", ["c1", "k2"], [f"{name}_out"])], name, [],
                                     [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 2, 24, 32])])
        nodes += [_const("two", 2.0), helper.make_node("Div", ["y0", "two"], ["y"]),
                  helper.make_node("If", ["cond"], ["z"], then_branch=branch("then"), else_branch=branch("else"))]
        inits.append(numpy_helper.from_array(np.array(3.0, np.float32), "k2"))
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 24, 32]))
    graph = helper.make_graph(nodes, "conv_mul", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_a_fold_into_the_producer_keeps_the_graph_outputs_name() -> None:
    model = _conv_mul(read_in_if_body=False)
    ref = _run(model, X)
    assert fold_graph(model) == Counter({"conv_mul": 1})
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Conv"] and model.graph.node[0].output[0] == "y"
    np.testing.assert_allclose(_run(model, X)[0], ref[0], rtol=1e-6, atol=1e-6)


def test_a_tensor_read_inside_an_if_body_is_not_folded_away() -> None:
    model = _conv_mul(read_in_if_body=True)
    # the Div and the Mul merge (y0 is read by the Div only), but the Conv keeps its output c1 (the If body reads
    # it) and the initializer k2 (read by the body only) survives the pruning
    assert fold_graph(model) == Counter({"div_to_mul": 1, "mul_mul": 1})
    assert "k2" in {i.name for i in model.graph.initializer}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, z = sess.run(None, {"x": X, "cond": np.array(True)})
    np.testing.assert_allclose(y, 1.25 * z / 3.0, rtol=1e-6)


def _quantize_hardswish(tmp_path: Path) -> Any:
    """quantize_model on :func:`hardswish_net` (8 calibration, 4 held-out sets; every result written)."""
    src = tmp_path / "net.onnx"
    onnx.save(hardswish_net(), str(src))
    rng = np.random.default_rng(1)
    sets = [{"x": (rng.standard_normal((1, 3, 24, 32)) * 2).astype(np.float32)} for _ in range(12)]
    return quantize_model(src, sets[:8], sets[8:], tmp_path / "q.onnx",
                          options=QuantizeOptions(latency_runs=2, threads=(1,), tolerance=1.0))


def test_a_fold_that_changes_the_outputs_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: quantize_model compares the folded FP32 model with the original on the held-out sets and
    quantizes the unfolded model when they differ (here a deliberately wrong fold doubling a weight)."""
    import edgefuse.infer.fold as fold_module

    def wrong_fold(model: Any) -> Counter[str]:
        init = next(i for i in model.graph.initializer if i.name == "w1")
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 2, "w1"))
        return Counter({"conv_mul": 1})

    monkeypatch.setattr(fold_module, "fold_graph", wrong_fold)
    rep = _quantize_hardswish(tmp_path)
    assert rep.fold_error is not None and rep.fold_error > 0.1
    assert any(s.startswith("folds not used: the folded model differs") for s in rep.steps)
    assert "fp32_folded" not in rep.latency_ms["threads_1"]
    assert rep.written and rep.metric["int8"] > 0.99  # the unfolded model was quantized: it still agrees
    q_ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node)
    assert q_ops["Div"] == 1


def _tiny(nodes: list[Any], inputs: list[Any], outputs: list[str], inits: dict[str, Any],
          out_type: int = TensorProto.FLOAT) -> Any:
    graph = helper.make_graph(nodes, "tiny", inputs, [helper.make_tensor_value_info(o, out_type, None)
                                                      for o in outputs],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("my.custom", 1)])
    model.ir_version = 8
    return model


def _feeds_equal(model: Any, feeds: dict[str, np.ndarray]) -> Counter[str]:
    """Fold ``model``; assert the folded model computes what it did; return the folds."""
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    done = fold_graph(model)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    return done


def test_shared_constants_get_distinct_new_names() -> None:
    """Two chains that share a constant (and a conv weight) fold into constants named apart, not one shared."""
    f32 = np.float32
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])
    model = _tiny([helper.make_node("Mul", ["x", "a"], ["m1"]), helper.make_node("Mul", ["m1", "b1"], ["y1"]),
                   helper.make_node("Mul", ["x", "a"], ["m2"]), helper.make_node("Mul", ["m2", "b2"], ["y2"]),
                   helper.make_node("Conv", ["x", "w"], ["c1"]), helper.make_node("Mul", ["c1", "s1"], ["y3"]),
                   helper.make_node("Conv", ["x", "w"], ["c2"]), helper.make_node("Mul", ["c2", "s2"], ["y4"])],
                  [x], ["y1", "y2", "y3", "y4"],
                  {"a": f32(2), "b1": f32(3), "b2": f32(10), "s1": f32(0.5), "s2": f32(4),
                   "w": np.random.default_rng(0).standard_normal((2, 3, 1, 1)).astype(f32)})
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 5, 5)).astype(f32)}
    assert _feeds_equal(model, feeds) == Counter({"mul_mul": 2, "conv_mul": 2})
    names = [i.name for i in model.graph.initializer]
    assert len(names) == len(set(names))


def test_constants_that_do_not_fit_the_type_are_not_folded() -> None:
    """1/1e-5 overflows float16; 1e-4 * 1e-4 underflows it: the Div and the Mul pair stay."""
    h = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3])
    model = _tiny([helper.make_node("Div", ["x", "d"], ["y"]), helper.make_node("Mul", ["x", "a"], ["m"]),
                   helper.make_node("Mul", ["m", "b"], ["z"])], [h], ["y", "z"],
                  {"d": np.array(1e-5, np.float16), "a": np.array(1e-4, np.float16), "b": np.array(1e-4, np.float16)},
                  TensorProto.FLOAT16)
    assert not _feeds_equal(model, {"x": np.array([[1e-3, 0.5, 6e4]], np.float16)})


def test_rank_raising_constant_in_front_of_a_conv_is_not_folded() -> None:
    """Mul(x [3,6,6], s [1,1,1,1]) feeds a 2-D Conv only because the constant adds the batch axis."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6, 6])
    model = _tiny([helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Conv", ["m", "w"], ["y"])],
                  [x], ["y"], {"s": np.full((1, 1, 1, 1), 2.0, np.float32),
                               "w": np.ones((4, 3, 3, 3), np.float32)})
    assert not _feeds_equal(model, {"x": np.ones((3, 6, 6), np.float32)})


def test_initializers_that_are_inputs_and_custom_domains_are_left_alone() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    opt = helper.make_tensor_value_info("opt", TensorProto.FLOAT, [2])
    model = _tiny([helper.make_node("Div", ["x", "d"], ["y"]), helper.make_node("Identity", ["x"], ["y2"]),
                   helper.make_node("Div", ["x", "d"], ["y3"], domain="my.custom")],
                  [x, opt], ["y", "y2"], {"d": np.float32(4), "opt": np.zeros(2, np.float32)})
    done = fold_graph(model)
    assert done == Counter({"div_to_mul": 1})  # the standard Div only
    assert [n.op_type for n in model.graph.node if n.domain == "my.custom"] == ["Div"]
    assert "opt" in {i.name for i in model.graph.initializer}  # unused, but an input's default: kept


def test_a_folded_model_that_does_not_load_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgefuse.infer.fold as fold_module

    def broken_fold(model: Any) -> Counter[str]:
        model.graph.node[0].input[1] = "no_such_tensor"
        return Counter({"conv_mul": 1})

    monkeypatch.setattr(fold_module, "fold_graph", broken_fold)
    rep = _quantize_hardswish(tmp_path)
    assert rep.written and rep.fold_error == float("inf")
    assert any(s.startswith("folds not used: ONNX Runtime cannot run the folded model") for s in rep.steps)
