"""Quantization-aware fine-tuning (QAT) by distillation of the PP-OCRv4 text detector, for ``bench_int8.py``.

The float weights of ``ch_PP-OCRv4_det_infer.onnx`` are fine-tuned under simulated INT8 so that ONNX Runtime's
own static QDQ quantization of the result (the bench's ``qdq`` path, unchanged) loses less text-detection hmean.

How.  ONNX Runtime quantizes the model once with the bench's calibration frames (``quantize_model``'s
pre-processing and ``quantize_static``: per-channel S8 weights, U8 activations, MinMax).  That QDQ graph is
executed by a small PyTorch interpreter (:func:`build_interpreter`, the ops this detector has): every activation
``QuantizeLinear``/``DequantizeLinear`` pair becomes a fake quantization with ORT's scale and zero point (the
straight-through estimator passes gradients inside the range, so a Clip that ORT folded into the quantizer's
saturation still clips), and every Conv/ConvTranspose weight ``DequantizeLinear`` becomes a per-channel symmetric
int8 fake quantization of a trainable float weight (scale max|w| / 127 along ORT's axis, recomputed every step as
ORT will on re-quantization).  Conv biases are trainable floats; the other constants stay as ORT quantized them.
Every ``--recalibrate-every`` steps the activation ranges are redone as ORT's MinMax would for the current weights
(the float graph with the student's weights on the same calibration inputs), so the simulation keeps matching the
model ORT will produce from the fine-tuned weights.  ``--check`` compares the interpreter with ORT: the float graph
matches FP32 to ~1e-5; the simulated INT8 map differs from ORT's INT8 map by 3e-4 on average (INT8 vs FP32: 1e-3).

Teacher: the original FP32 model (ONNX Runtime); student: the simulated INT8 model.  Loss: per-pixel KL divergence
of the student's probability map from the teacher's (unweighted by default: weighting toward text pixels made the
student grow text regions, more and larger boxes, and lowered the hmean).  Adam, learning rate relative to each
weight tensor's mean magnitude (the fused weights span 5 orders of magnitude), cosine decay.  Data: CALIBRATION
side only: the bench's calibration frames (RADIATE ZED-left, every 9th EuRoC frame, the 3 calibration text photos)
with freshly rendered calibration strings (``render_text(..., "calibration")``: the calibration word list and
plate alphabet), mirrored half the time, zoomed 0.7-1.5x, contrast/brightness/channel-order jittered, blurred
(``augment``).  The weights kept (``--keep average``, the default) are the mean of the weights over the second half
of the steps; ``--keep best`` keeps those with the best hmean on 40 calibration-side validation renders
(calibration frames, other calibration strings, their ground truth), a choice that small sample makes noisily (two
trainings kept that way, on the unfolded and on the folded graph, differed by 1.6 points of held-out hmean; see
the README).  No held-out frame or string
is ever used.

The graph fine-tuned is the original with ``quantize_model``'s constant folds applied (:func:`fold_source`,
:mod:`edgefuse.infer.fold`: the same model up to float rounding, what the ``qdq`` path quantizes), and the trained
weights are written back into that FP32 file (:func:`write_back`: same graph, only the values of the weight
constants change; the two convolutions that ORT's pre-processing fuses with a BatchNormalization are un-fused into
the conv weight and the BN shift).  ``bench_int8.py --variants qat`` then quantizes that file with the same
``quantize_model`` call as ``qdq`` and scores it against the ORIGINAL FP32 model.

    pip install -e '.[train,int8bench]'
    .venv/bin/python bench/qat_ppocr.py [--steps 1000] [--keep average|best] [--no-fold]
        [--out bench/results/ppocr_det.qat.fp32.onnx]
    .venv/bin/python bench/bench_int8.py --variants qdq,qat --runs 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.errors import ModelError

sys.path.insert(0, str(Path(__file__).resolve().parent))

QAT_MODEL = Path(__file__).resolve().parent / "results" / "ppocr_det.qat.fp32.onnx"


# ----------------------------------------------------------------------------------------------- ONNX helpers

def constants(model: Any) -> dict[str, np.ndarray]:
    """Every constant tensor of an ONNX model: initializers and ``Constant`` nodes' values, by name."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def write_back(original: Path, weights: dict[str, np.ndarray], out: Path) -> list[str]:
    """Copy ``original`` (ONNX) to ``out`` with new values for the weights named in ``weights`` (names of the
    pre-processed graph ORT quantizes).  A weight that exists in the original (as an initializer or a Constant
    node) is replaced in place, same name, shape and dtype.  ``ConvBnFusion_W_<w>`` / ``ConvBnFusion_BN_B_<b>``
    (a conv that ORT fused with its BatchNormalization) are un-fused: the conv weight ``<w>`` becomes
    W_fused * sqrt(var + eps) / gamma, the BN shift ``<b>`` becomes B_fused + mean * gamma / sqrt(var + eps), so
    that the original graph computes the fused one.  Returns the names written; nothing but values changes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(original))
    consts = constants(model)
    bn_of: dict[str, Any] = {}  # conv weight name -> its BatchNormalization node
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and node.input[0] in producer:
            conv = producer[node.input[0]]
            if conv.op_type == "Conv":
                bn_of[conv.input[1]] = node
    new: dict[str, np.ndarray] = {}
    for name, value in weights.items():
        if name.startswith("ConvBnFusion_W_"):
            w = name[len("ConvBnFusion_W_"):]
            bn = bn_of[w]
            eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
            gamma, var = consts[bn.input[1]].astype(np.float64), consts[bn.input[4]].astype(np.float64)
            k = gamma / np.sqrt(var + eps)
            new[w] = (value.astype(np.float64) / k.reshape(-1, *[1] * (value.ndim - 1))).astype(consts[w].dtype)
        elif name.startswith("ConvBnFusion_BN_B_"):
            b = name[len("ConvBnFusion_BN_B_"):]
            bn = next(n for n in bn_of.values() if n.input[2] == b)
            eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
            gamma, mean, var = (consts[bn.input[i]].astype(np.float64) for i in (1, 3, 4))
            new[b] = (value.astype(np.float64) + mean * gamma / np.sqrt(var + eps)).astype(consts[b].dtype)
        elif name in consts:
            new[name] = value.astype(consts[name].dtype)
        else:
            raise ModelError(f"no constant named {name}", file=original)
    for name, value in new.items():
        if value.shape != consts[name].shape:
            raise ModelError(f"{name}: shape {value.shape} != {consts[name].shape}", file=original)
    for init in model.graph.initializer:
        if init.name in new:
            init.CopyFrom(numpy_helper.from_array(new[init.name], init.name))
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] in new:
            for a in node.attribute:
                if a.name == "value":
                    a.t.CopyFrom(numpy_helper.from_array(new[node.output[0]], a.t.name))
    onnx.save(model, str(out))
    return sorted(new)


# ------------------------------------------------------------------------------------------ torch interpreter

def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _apply(op: str, a: dict[str, Any], ins: list[Any]) -> Any:
    """One float ONNX operator of the detector, in torch."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if op == "Conv":
        p = a.get("pads", [0, 0, 0, 0])
        y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]),
                     (p[0], p[1]), a.get("dilations", [1, 1]), a.get("group", 1))
    elif op == "ConvTranspose":
        p = a.get("pads", [0, 0, 0, 0])
        y = F.conv_transpose2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]),
                               (p[0], p[1]), 0, a.get("group", 1), a.get("dilations", [1, 1]))
    elif op == "Add":
        y = ins[0] + ins[1]
    elif op == "Mul":
        y = ins[0] * ins[1]
    elif op == "Div":
        y = ins[0] / ins[1]
    elif op == "Clip":
        y = torch.clamp(ins[0], float(ins[1]), float(ins[2]))
    elif op == "Relu":
        y = torch.relu(ins[0])
    elif op == "Sigmoid":
        y = torch.sigmoid(ins[0])
    elif op == "HardSigmoid":
        y = torch.clamp(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0.0, 1.0)
    elif op == "GlobalAveragePool":
        y = ins[0].mean(dim=(2, 3), keepdim=True)
    elif op == "Concat":
        y = torch.cat([t for t in ins if t is not None], dim=a["axis"])
    elif op == "Resize":
        scales = [float(v) for v in ins[2].tolist()] if len(ins) > 2 and ins[2] is not None and \
            ins[2].numel() else None
        if scales is None:
            size = [int(v) for v in ins[3].tolist()][2:]
            y = F.interpolate(ins[0], size=size, mode="nearest")
        else:
            y = F.interpolate(ins[0], scale_factor=scales[2:], mode="nearest")
    elif op == "BatchNormalization":
        y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a.get("epsilon", 1e-5))
    else:
        raise ModelError(f"operator {op} is not supported by the QAT interpreter")
    return y


def build_interpreter(graph_path: Path, float_weights: dict[str, np.ndarray] | None = None) -> Any:
    """A torch module executing the ONNX graph at ``graph_path`` (the pre-processed FP32 graph or ORT's QDQ
    graph).  In a QDQ graph, activation Q/DQ pairs become fake quantization with ORT's scale/zero point and the
    int8 Conv/ConvTranspose weights become trainable float weights (from ``float_weights``: the pre-processed
    graph's values) under per-channel symmetric int8 fake quantization."""
    import onnx
    import torch
    from torch import nn

    model = onnx.load(str(graph_path))
    consts = constants(model)
    fw = float_weights or {}

    class Interpreter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.params = nn.ParameterDict()
            self.pnames: dict[str, str] = {}  # onnx name -> parameter key
            self.wq: dict[str, tuple[str, int]] = {}  # DQ output -> (weight name, axis) fake-quantized weights
            self.buffers_: dict[str, torch.Tensor] = {}
            self.nodes = [n for n in model.graph.node if n.op_type != "Constant"]
            self.quant = True
            self.ranges: dict[str, list[float]] | None = None  # set: forward records each tensor's min/max
            consumers: dict[str, list[Any]] = {}
            for n in self.nodes:
                for i in n.input:
                    consumers.setdefault(i, []).append(n)
            for n in self.nodes:
                if n.op_type == "DequantizeLinear" and n.input[0] in consts:
                    q = consts[n.input[0]]
                    name = n.input[0][:-len("_quantized")] if n.input[0].endswith("_quantized") else n.input[0]
                    users = consumers.get(n.output[0], [])
                    weight_of = [u for u in users if u.op_type in ("Conv", "ConvTranspose")
                                 and u.input[1] == n.output[0]]
                    bias_of = [u for u in users if u.op_type == "Conv" and len(u.input) > 2
                               and u.input[2] == n.output[0]]
                    if q.dtype == np.int8 and weight_of and name in fw:
                        self._param(name, fw[name])
                        self.wq[n.output[0]] = (name, int(_attrs(n).get("axis", 1)))
                        continue
                    if bias_of and name in fw:
                        self._param(name, fw[name])
                        self.pnames[n.output[0]] = self.pnames[name]
                        continue
            for n in self.nodes:  # float graph: conv weights/biases are the trainable parameters
                if n.op_type in ("Conv", "ConvTranspose"):
                    for i in n.input[1:]:
                        if i in consts and i not in self.pnames:
                            self._param(i, consts[i])

        def _param(self, name: str, value: np.ndarray) -> None:
            key = name.replace(".", "__")
            self.params[key] = nn.Parameter(torch.from_numpy(np.array(value, np.float32)))
            self.pnames[name] = key

        def set_activation_ranges(self, ranges: dict[str, list[float]]) -> int:
            """New activation quantization parameters from calibrated (min, max) of the float graph's tensors,
            computed as ONNX Runtime's MinMax U8 does: range widened to hold 0, scale (max - min) / 255, zero
            point round(-min / scale).  Returns how many quantizers changed."""
            done = 0
            for n in self.nodes:
                if n.op_type != "QuantizeLinear" or not n.input[1].endswith("_scale"):
                    continue
                r = ranges.get(n.input[1][:-len("_scale")])
                if r is None:
                    continue
                lo, hi = min(r[0], 0.0), max(r[1], 0.0)
                scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
                zp = np.uint8(np.clip(np.round(-lo / ((hi - lo) / 255.0 if hi > lo else 1.0)), 0, 255))
                self.buffers_[n.input[1]] = torch.tensor(scale)
                self.buffers_[n.input[2]] = torch.tensor(zp)
                done += 1
            return done

        def weights(self) -> dict[str, np.ndarray]:
            """The trainable weights by their ONNX names (the pre-processed graph's)."""
            return {n: self.params[k].detach().numpy().copy() for n, k in self.pnames.items()
                    if n == k.replace("__", ".")}

        def _const(self, name: str) -> torch.Tensor:
            if name not in self.buffers_:
                self.buffers_[name] = torch.from_numpy(np.array(consts[name]))
            return self.buffers_[name]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            env: dict[str, torch.Tensor] = {model.graph.input[0].name: x}
            if self.ranges is not None:
                r = self.ranges.setdefault(model.graph.input[0].name, [float("inf"), float("-inf")])
                r[0], r[1] = min(r[0], float(x.min())), max(r[1], float(x.max()))

            def get(name: str) -> torch.Tensor:
                if name in env:
                    return env[name]
                if name in self.pnames:
                    param: torch.Tensor = self.params[self.pnames[name]]
                    return param
                return self._const(name)

            for n in self.nodes:
                op, a = n.op_type, _attrs(n)
                if op == "QuantizeLinear":
                    env[n.output[0]] = get(n.input[0])  # paired with its DequantizeLinear below
                    env[n.output[0] + "#q"] = torch.stack([self._const(n.input[1]).float().reshape(()),
                                                          self._const(n.input[2]).float().reshape(())])
                    continue
                if op == "DequantizeLinear":
                    if n.output[0] in self.wq:
                        w_name, axis = self.wq[n.output[0]]
                        w = self.params[self.pnames[w_name]]
                        if not self.quant:
                            env[n.output[0]] = w
                            continue
                        dims = [d for d in range(w.dim()) if d != axis]
                        scale = (w.detach().abs().amax(dim=dims) / 127.0).clamp_min(1e-12)
                        env[n.output[0]] = torch.fake_quantize_per_channel_affine(
                            w, scale, torch.zeros_like(scale, dtype=torch.int32), axis, -127, 127)
                        continue
                    if n.output[0] in self.pnames:
                        continue
                    if n.input[0] in env:  # activation: fake quantization with ORT's range
                        sz = env[n.input[0] + "#q"]
                        v = env[n.input[0]]
                        if self.quant:
                            v = torch.fake_quantize_per_tensor_affine(v, float(sz[0]), int(sz[1]), 0, 255)
                        env[n.output[0]] = v
                        continue
                    q = self._const(n.input[0]).float()
                    s, z = self._const(n.input[1]).float(), self._const(n.input[2]).float()
                    axis = int(a.get("axis", 1))
                    if s.dim() == 1 and s.numel() > 1:
                        shape = [1] * q.dim()
                        shape[axis] = -1
                        s, z = s.reshape(shape), z.reshape(shape)
                    env[n.output[0]] = (q - z) * s
                    continue
                ins = [get(i) if i else None for i in n.input]
                env[n.output[0]] = _apply(op, a, ins)
                if self.ranges is not None:
                    v = env[n.output[0]].detach()
                    r = self.ranges.setdefault(n.output[0], [float("inf"), float("-inf")])
                    r[0], r[1] = min(r[0], float(v.min())), max(r[1], float(v.max()))
            return env[model.graph.output[0].name]

    return Interpreter()


# ------------------------------------------------------------------------------------------------- training

def calibration_sampler(seed: int, flip: bool = True, augmented: bool = False) -> Any:
    """Endless calibration-side training images: a calibration frame (bench_int8's CALIBRATION_FRAMES or one of
    its calibration text photos) with freshly rendered calibration strings (or, 1 in 8, as is)."""
    import bench_int8 as b

    frames = [b._image(p) for pattern, (limit, step, start) in b.CALIBRATION_FRAMES.items()
              for p in b._frames([pattern], limit, step, start)]
    photos = [b._image(b.TEXT / n) for n in b.REAL_CALIBRATION]
    rng = np.random.default_rng(seed)
    while True:
        if rng.random() < 0.15:
            img = photos[int(rng.integers(len(photos)))]
        else:
            img = frames[int(rng.integers(len(frames)))]
            if rng.random() < 0.875:
                img, _ = b.render_text(img, "calibration", rng, int(rng.integers(4, 10)))
        if flip and rng.random() < 0.5:
            img = img[:, ::-1]  # mirrored frame (the strings become unreadable glyph rows: still text-like)
        yield augment(np.ascontiguousarray(img), rng) if augmented else np.ascontiguousarray(img)


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric and scale variety for the few calibration frames (the teacher labels whatever it is shown):
    zoom 0.7-1.5x back to the frame size, contrast/brightness, channel order, blur."""
    import cv2

    h, w = img.shape[:2]
    if rng.random() < 0.5:
        s = float(rng.uniform(0.7, 1.5))
        big = cv2.resize(img, (max(w, round(w * s)), max(h, round(h * s))), interpolation=cv2.INTER_LINEAR)
        if s < 1.0:  # zoom out: the smaller frame pasted on its own border replication
            small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            y, x = int(rng.integers(0, h - small.shape[0] + 1)), int(rng.integers(0, w - small.shape[1] + 1))
            big = cv2.copyMakeBorder(small, y, h - small.shape[0] - y, x, w - small.shape[1] - x,
                                     cv2.BORDER_REFLECT)
        y, x = int(rng.integers(0, big.shape[0] - h + 1)), int(rng.integers(0, big.shape[1] - w + 1))
        img = big[y:y + h, x:x + w]
    if rng.random() < 0.5:
        img = np.clip(img.astype(np.float32) * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = img[:, :, rng.permutation(3)]
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.ascontiguousarray(img)


def validation_set(seed: int, n: int = 40) -> list[Any]:
    """Calibration-side validation frames with ground truth: calibration frames, new calibration strings."""
    import bench_int8 as b

    frames = [b._image(p) for pattern, (limit, step, start) in b.CALIBRATION_FRAMES.items()
              for p in b._frames([pattern], limit, step, start)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, gt = b.render_text(frames[i % len(frames)], "calibration", rng, 9)
        out.append(b.Frame(f"val{i}", img, gt))
    return out


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[y:y + size, x:x + size]


def fold_source(model: Path, out: Path) -> Path:
    """``model`` with edgefuse's constant folds applied (what ``quantize_model`` quantizes; the same function),
    saved at ``out``: the FP32 graph that is fine-tuned and written back to."""
    from edgefuse.infer.fold import fold_file

    fold_file(model, out, write_unchanged=True)
    return out


def quantized_graph(model: Path, work: Path, *, fold: bool = True) -> tuple[Path, Path]:
    """(pre-processed FP32, ORT QDQ) graphs of ``model``, quantized exactly as bench_int8's ``qdq`` variant
    (``fold=False``: as it was before the folds, ``QuantizeOptions(fold=False)``)."""
    import bench_int8 as b

    from edgefuse.infer.quantize import QuantizeOptions, _Quantizer, prepare_model

    calib, _ = b.datasets()
    pre, folded = prepare_model(model, work, [], fold=fold)
    if folded is not None:  # the weights of a folded graph have no counterpart in ``model`` to write back to
        raise ModelError(f"{model} is not folded: quantize_model would fold it first (see fold_source)", file=model)
    q = _Quantizer(model, pre, [b._tensor(f.image) for f in calib], QuantizeOptions(fold=fold), work)
    return pre, q(work / "qdq.onnx", [])


def recalibrate(student: Any, float_model: Any, calibration: list[np.ndarray]) -> int:
    """ONNX Runtime's MinMax calibration redone for the student's current weights: the float graph (the
    pre-processed one ORT calibrates on) gets the student's weights, runs the calibration inputs, and its tensors'
    ranges become the student's activation quantizers.  Returns how many quantizers were set."""
    import torch

    with torch.no_grad():
        for name, key in float_model.pnames.items():
            if name in student.pnames:
                float_model.params[key].copy_(student.params[student.pnames[name]])
        float_model.ranges = {}
        for x in calibration:
            float_model(torch.from_numpy(x))
        ranges, float_model.ranges = float_model.ranges, None
    return int(student.set_activation_ranges(ranges))


def _check(teacher: Any, pre: Path, qdq: Path, student: Any, x: np.ndarray) -> dict[str, float]:
    """The interpreter against ONNX Runtime on one frame: float graph vs FP32, simulated vs ORT's INT8."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        t_fp = teacher.run(None, {"x": x})[0]
        t_q = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        s_fp = build_interpreter(pre)(torch.from_numpy(x)).numpy()
        s_q = student(torch.from_numpy(x)).numpy()
    return {"float_vs_ort_fp32_max_abs": float(np.abs(s_fp - t_fp).max()),
            "sim_int8_vs_ort_int8_max_abs": float(np.abs(s_q - t_q).max()),
            "sim_int8_vs_ort_int8_mean_abs": float(np.abs(s_q - t_q).mean()),
            "ort_int8_vs_fp32_mean_abs": float(np.abs(t_q - t_fp).mean()),
            "sim_int8_mask_agreement_with_ort_int8": float(np.mean((s_q > 0.3) == (t_q > 0.3)))}


def distill_loss(pred: Any, target: Any, text_weight: float) -> Any:
    """Mean KL divergence of the student's per-pixel Bernoulli map from the teacher's (BCE minus the teacher's
    entropy: 0 when equal), weighted 1 + ``text_weight`` x teacher probability toward text."""
    p, t = pred.clamp(1e-6, 1 - 1e-6), target.clamp(1e-6, 1 - 1e-6)
    kl = t * (t.log() - p.log()) + (1 - t) * ((1 - t).log() - (1 - p).log())
    return (kl * (1.0 + text_weight * target)).mean()


def train(args: argparse.Namespace, teacher: Any, student: Any, float_model: Any,
          calibration: list[np.ndarray]) -> dict[str, Any]:
    """Distillation under simulated INT8; the student ends with the weights that scored best on the
    calibration-side validation renders (hmean against their ground truth), or ``--keep last``, or ``--keep
    average``: the mean of the weights over the second half of the steps (stochastic weight averaging: no
    choice made on the small, noisy validation set).  Returns the training record."""
    import bench_int8 as b
    import torch

    val = validation_set(args.seed + 100, args.val_frames)
    t_probs = [teacher.run(None, b._tensor(f.image))[0] for f in val]
    t_counts = b.detection_counts(val, t_probs)

    def validate() -> dict[str, float]:
        """Student's hmean on calibration-side validation renders (GT known) vs the FP32 teacher's, and the
        distillation loss there."""
        with torch.no_grad():
            probs = [student(torch.from_numpy(b._tensor(f.image)["x"])) for f in val]
            kl = float(np.mean([float(distill_loss(p, torch.from_numpy(t), args.text_weight))
                                for p, t in zip(probs, t_probs, strict=True)]))
        hs, ht = b.prh(b.detection_counts(val, [p.numpy() for p in probs]))["hmean"], b.prh(t_counts)["hmean"]
        return {"student": round(hs, 4), "teacher": round(ht, 4), "rel": round((hs - ht) / ht, 4),
                "loss": round(kl, 5)}

    history: list[dict[str, Any]] = [{"step": 0, **validate()}]
    print(f"  calibration-side validation: {history[-1]}", flush=True)
    best = (history[-1]["student"], {k: v.detach().clone() for k, v in student.params.items()})
    # one learning rate relative to each tensor's magnitude: the weights span 5 orders of magnitude (a conv
    # whose fused BatchNorm scale is tiny has |w| ~ 2e-5, where one Adam step of 1e-5 would wreck it)
    groups = [{"params": [p], "scale": float(p.detach().abs().mean()) or 1.0} for p in student.parameters()]
    opt = torch.optim.Adam(groups, lr=args.lr)
    sampler = calibration_sampler(args.seed, not args.no_flip, args.augment)
    rng = np.random.default_rng(args.seed + 1)
    t0 = time.perf_counter()
    log: list[float] = []
    average: dict[str, Any] = {}
    averaged = 0
    for step in range(args.steps):
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr * g["scale"]
        xs = np.concatenate([b._tensor(_crop(next(sampler), args.crop, rng) if args.crop else next(sampler))["x"]
                             for _ in range(args.batch)])
        target = torch.from_numpy(teacher.run(None, {"x": xs})[0])
        pred = student(torch.from_numpy(xs))
        loss = distill_loss(pred, target, args.text_weight)
        if not torch.isfinite(loss):
            bad = [k for k, v in student.params.items() if not torch.isfinite(v).all()]
            print(f"step {step}: non-finite loss (non-finite weights: {bad[:5]}; prediction finite: "
                  f"{bool(torch.isfinite(pred).all())}, target finite: {bool(torch.isfinite(target).all())}); "
                  "step skipped", flush=True)
            continue
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append(float(loss.detach()))
        if args.keep == "average" and step >= args.steps // 2:
            averaged += 1
            with torch.no_grad():
                for k, v in student.params.items():
                    w = v.detach()
                    average[k] = w.clone() if averaged == 1 else average[k] + (w - average[k]) / averaged
        if args.recalibrate_every and (step + 1) % args.recalibrate_every == 0:
            recalibrate(student, float_model, calibration)  # the ranges ORT will calibrate for these weights
        if step % 20 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {np.mean(log[-20:]):.5f} lr {lr:.2e} {time.perf_counter() - t0:.0f} s",
                  flush=True)
        stop = time.perf_counter() - t0 > args.minutes * 60
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1 or stop:
            history.append({"step": step + 1, **validate()})
            print(f"  calibration-side validation: {history[-1]}", flush=True)
            if history[-1]["student"] > best[0] or args.keep == "last":
                best = (history[-1]["student"], {k: v.detach().clone() for k, v in student.params.items()})
        if stop:
            print(f"time limit: stopped after {step + 1} steps", flush=True)
            break
    with torch.no_grad():
        for k, v in student.params.items():
            v.copy_(average[k] if average else best[1][k])
    if average:
        recalibrate(student, float_model, calibration)
        history.append({"step": "average", **validate()})
        print(f"  calibration-side validation of the average of the last {averaged} steps: {history[-1]}", flush=True)
    return {"keep": args.keep, "averaged_steps": averaged, "steps": len(log), "batch": args.batch,
            "crop": args.crop, "lr_relative": args.lr,
            "text_weight": args.text_weight, "seed": args.seed, "augment": args.augment,
            "recalibrate_every": args.recalibrate_every, "seconds": time.perf_counter() - t0,
            "validation": history, "kept_step": "average" if average else next(
                h["step"] for h in history[::-1] if h["student"] == best[0]),
            "loss_first20": float(np.mean(log[:20])), "loss_last20": float(np.mean(log[-20:])),
            "torch": torch.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--crop", type=int, default=0, help="random square crops of this side (0: whole frames)")
    ap.add_argument("--no-flip", action="store_true", help="no mirrored frames")
    ap.add_argument("--no-augment", dest="augment", action="store_false",
                    help="no zoom, contrast/brightness, channel order or blur on the training frames")
    ap.add_argument("--lr", type=float, default=1.5e-4, help="Adam learning rate relative to each weight tensor's "
                                                          "mean magnitude")
    ap.add_argument("--text-weight", type=float, default=0.0, help="loss weight 1 + this x teacher probability "
                    "(> 0 biases the student toward larger text regions: more, larger boxes, lower precision)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=17.0, help="stop training after this long")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--recalibrate-every", type=int, default=50, help="redo ORT's MinMax activation ranges for "
                                                                     "the current weights every N steps (0: never)")
    ap.add_argument("--val-frames", type=int, default=40, help="calibration-side validation renders")
    ap.add_argument("--keep", choices=("best", "last", "average"), default="average",
                    help="the weights written: best on the calibration-side validation, the last, or the average "
                         "over the second half of the steps")
    ap.add_argument("--check", action="store_true", help="only check the interpreter against ONNX Runtime")
    ap.add_argument("--no-fold", dest="fold", action="store_false",
                    help="fine-tune the original graph as ORT quantizes it WITHOUT edgefuse's folds (the recipe of "
                         "the model trained before the folds existed) and write back into the original")
    ap.add_argument("--out", default=str(QAT_MODEL))
    args = ap.parse_args()
    import logging

    import bench_int8 as b
    import onnx
    import onnxruntime as ort
    import torch

    logging.getLogger().setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = b.detector_path()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = args.threads
    teacher = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    calibration = [b._tensor(f.image)["x"] for f in b.datasets()[0]]  # what ORT calibrates on
    with tempfile.TemporaryDirectory(prefix="qat-") as tmp:
        source = fold_source(model, Path(tmp) / "folded.onnx") if args.fold else model
        pre, qdq = quantized_graph(source, Path(tmp), fold=args.fold)
        student = build_interpreter(qdq, constants(onnx.load(str(pre))))
        float_model = build_interpreter(pre)
        check = _check(teacher, pre, qdq, student, calibration[3])
        print(json.dumps(check), flush=True)
        if args.check:
            return 0
        info = train(args, teacher, student, float_model, calibration)
        written = write_back(source, student.weights(), Path(args.out))
    info.update(check=check, weights_written=len(written), folded_graph=args.fold)
    Path(args.out).with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(written)} weights, step {info['kept_step']}) after {info['seconds']:.0f} s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
