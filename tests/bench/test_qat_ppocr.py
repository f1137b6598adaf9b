"""bench/qat_ppocr.py's weight write-back: fine-tuned weights of the graph ONNX Runtime quantizes (pre-processed,
Conv+BatchNorm fused) go back into a copy of the ORIGINAL model with nothing but constant values changed, and that
copy computes what the fine-tuned fused graph computes.  Needs onnx (the ``quantize`` extra), not torch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from qat_ppocr import constants, write_back  # noqa: E402

from edgefuse.infer.quantize import prepare_model  # noqa: E402


def _const(name: str, value: np.ndarray) -> Any:
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value.astype(np.float32), name))


def _model(path: Path) -> None:
    """x -> Conv (no bias, weights as Constant nodes, like the PaddlePaddle export) -> BatchNorm -> Relu ->
    Conv (bias) -> y."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes = [
        _const("w0", rng.normal(0, 0.5, (4, 3, 3, 3))), _const("g", rng.uniform(0.01, 2, 4)),
        _const("beta", rng.normal(0, 1, 4)), _const("mean", rng.normal(0, 1, 4)), _const("var", rng.uniform(0.5, 3, 4)),
        _const("w1", rng.normal(0, 0.5, (2, 4, 1, 1))), _const("b1", rng.normal(0, 1, 2)),
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c0", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Conv", ["r", "w1", "b1"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"x": x})[0])


def test_write_back_changes_only_values_and_unfuses_conv_bn(tmp_path: Path) -> None:
    original = tmp_path / "original.onnx"
    _model(original)
    pre, folded = prepare_model(original, tmp_path, [], fold=True)  # what ORT quantizes: Conv and BatchNorm fused
    assert folded is None  # nothing for edgefuse's folds in this graph
    pre_model = onnx.load(str(pre))
    fused = {k: v for k, v in constants(pre_model).items() if v.dtype == np.float32 and v.ndim >= 1}
    assert any(k.startswith("ConvBnFusion_W_") for k in fused) and any(k.startswith("ConvBnFusion_BN_B_")
                                                                      for k in fused)
    rng = np.random.default_rng(1)
    tuned = {k: (v * rng.uniform(0.8, 1.2, v.shape)).astype(np.float32) for k, v in fused.items()}
    for init in pre_model.graph.initializer:  # the "fine-tuned" fused graph
        if init.name in tuned:
            init.CopyFrom(onnx.numpy_helper.from_array(tuned[init.name], init.name))
    tuned_pre = tmp_path / "tuned_pre.onnx"
    onnx.save(pre_model, str(tuned_pre))

    out = tmp_path / "written.onnx"
    written = write_back(original, tuned, out)
    assert set(written) == {"w0", "beta", "w1", "b1"}  # the BN scale, mean and variance stay as they were
    a, b = onnx.load(str(original)), onnx.load(str(out))
    for m in (a, b):  # the same graph once constant values are blanked
        for n in m.graph.node:
            for attr in n.attribute:
                if attr.name == "value":
                    attr.t.ClearField("raw_data")
                    attr.t.ClearField("float_data")
    assert a.SerializeToString() == b.SerializeToString()
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    assert np.abs(_run(out, x) - _run(tuned_pre, x)).max() < 1e-4
    assert np.abs(_run(out, x) - _run(original, x)).max() > 1e-2  # the weights did change
