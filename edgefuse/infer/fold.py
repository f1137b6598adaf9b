"""Exact constant folds of an ONNX graph that leave fewer element-wise nodes for ONNX Runtime and its quantizer.

Exporters (paddle2onnx, torch.onnx) leave chains such as ``Conv -> Mul(scale) -> Add(bias)`` (learnable affine
blocks, folded batch norms written out) and ``x / 6`` (hard-swish).  ONNX Runtime's own Conv+Mul/Add fusions
do not fire on every form (a constant as the *first* input of the Mul, for one), and its quantizer cannot
quantize ``Div`` at all: every ``Div`` in a QDQ model becomes DequantizeLinear -> float Div -> QuantizeLinear,
three passes over the tensor of which the two conversions run on one thread.  :func:`fold_graph` rewrites
such chains into equivalent graphs (equal up to float rounding, checked by the caller):

- ``Div(x, c)`` with a constant ``c`` -> ``Mul(x, 1/c)``;
- ``Mul(Mul(x, a), b)`` with constants -> ``Mul(x, a*b)`` (likewise ``Add``);
- ``Conv -> Mul(c)`` / ``Conv -> Add(c)`` with ``c`` per output channel (or a scalar) -> the Conv's weights and
  bias (``c`` on either input of the Mul/Add);
- ``Mul(c) -> Conv`` / ``Add(c) -> Conv`` with ``c`` a scalar, into a Conv without padding (a padded Conv
  would see ``c`` in its zero border: not equal, so not folded).

Each fold needs the intermediate tensor to have one consumer and not to be a graph output.  Nothing here
changes what the model computes beyond rounding; :func:`edgefuse.infer.quantize.quantize_model` checks the
folded model against the original on the held-out sets before using it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fold_file", "fold_graph"]


class _Graph:
    """Indexes over one ONNX graph: constants (initializers and Constant nodes), producers, consumers."""

    def __init__(self, graph: Any, taken: set[str], arrays: dict[str, np.ndarray]) -> None:
        from onnx import numpy_helper

        self.g = graph
        self.taken = taken  # every tensor name in the model, kept across folds: new names never collide
        # ``arrays``: the constants converted so far, by name, kept across folds (a name is never reused and a
        # constant's value never changes, so each is converted once per fold_graph)
        self.arrays = arrays
        inputs = {i.name for i in graph.input}
        self.consts: dict[str, np.ndarray] = {}
        for i in graph.initializer:
            if i.name not in inputs:  # an initializer that is also an input can be overridden: not a constant
                if i.name not in arrays:
                    arrays[i.name] = numpy_helper.to_array(i)
                self.consts[i.name] = arrays[i.name]
        for n in graph.node:
            if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
                if n.output[0] not in arrays:
                    arrays[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
                self.consts[n.output[0]] = arrays[n.output[0]]
        self.outputs = {o.name for o in graph.output}
        self.consumers: Counter[str] = Counter(i for n in graph.node for i in n.input)
        self.consumers.update(_subgraph_reads(graph.node))  # an If/Loop body reading a tensor is a consumer
        self.producer = {o: n for n in graph.node for o in n.output}

    def const(self, name: str) -> np.ndarray | None:
        value = self.consts.get(name)
        return value if value is not None and value.dtype in (np.float32, np.float64, np.float16) else None

    def add_const(self, like: str, value: np.ndarray) -> str:
        """A new initializer named after ``like``, under a name no tensor of the model has."""
        from onnx import numpy_helper

        n = 1
        while f"{like}_edgefuse_fold{n}" in self.taken:
            n += 1
        name = f"{like}_edgefuse_fold{n}"
        self.taken.add(name)
        self.g.initializer.append(numpy_helper.from_array(value, name))
        self.consts[name] = self.arrays[name] = value
        return name

    def single_use(self, name: str) -> bool:
        return self.consumers[name] == 1 and name not in self.outputs

    def const_operand(self, node: Any) -> tuple[int, np.ndarray] | None:
        """(index of the non-constant input, the constant) of a binary node with exactly one constant input."""
        if len(node.input) != 2:
            return None
        a, b = self.const(node.input[0]), self.const(node.input[1])
        if (a is None) == (b is None):
            return None
        return (1, a) if a is not None else (0, b)  # type: ignore[return-value]

    def only_consumer(self, name: str) -> Any | None:
        if not self.single_use(name):
            return None
        for n in self.g.node:
            if name in n.input:
                return n
        return None  # pragma: no cover - counted but not found


def _subgraph_reads(nodes: Any) -> list[str]:
    """Every tensor name read by the nodes of the subgraphs (If/Loop/Scan bodies) of ``nodes``, recursively:
    a body may read an outer tensor without listing it as its node's input."""
    out: list[str] = []
    for n in nodes:
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out += [i for m in g.node for i in m.input] + [o.name for o in g.output]
                out += _subgraph_reads(g.node)
    return out


def _cast(value: np.ndarray, dtype: Any) -> np.ndarray | None:
    """``value`` (float64) in ``dtype`` when that keeps it: finite, and within 1e-3 relative of every element
    (no overflow to inf, no underflow to zero or to a subnormal's few bits); None otherwise (no fold)."""
    with np.errstate(over="ignore", under="ignore"):
        out = np.asarray(value).astype(dtype)
    back = out.astype(np.float64)
    if not np.all(np.isfinite(back)) or not np.all(np.abs(back - value) <= 1e-3 * np.abs(value)):
        return None
    return out


def _standard(node: Any) -> bool:
    """An operator of the default ONNX domain (a custom domain's ``Div`` or ``Conv`` is something else)."""
    return node.domain in ("", "ai.onnx")


def _per_channel(value: np.ndarray, channels: int, spatial: int) -> np.ndarray | None:
    """``value`` as a (channels,) vector when it broadcasts over an NC<spatial> tensor per channel only."""
    target = (1, channels) + (1,) * spatial
    try:
        if value.ndim > len(target) or np.broadcast_shapes(value.shape, target) != target:
            return None
    except ValueError:
        return None
    return np.broadcast_to(value.astype(np.float64), target).reshape(channels).copy()


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _conv_params(gr: _Graph, conv: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(weights, bias) of a Conv whose weights (and bias, if any) are constants, as float64."""
    if conv.op_type != "Conv" or not _standard(conv) or len(conv.input) < 2:
        return None
    w = gr.const(conv.input[1])
    if w is None:
        return None
    bias = gr.const(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0])
    if bias is None:
        return None
    return w.astype(np.float64), bias.astype(np.float64)


def _set_conv(gr: _Graph, conv: Any, w: np.ndarray, bias: np.ndarray, dtype: Any) -> bool:
    """New weights and bias for ``conv`` (False, nothing changed, when they do not fit ``dtype``)."""
    w_cast, b_cast = _cast(w, dtype), _cast(bias, dtype)
    if w_cast is None or b_cast is None:
        return False
    conv.input[1] = gr.add_const(conv.input[1], w_cast)
    name = gr.add_const(conv.input[2] if len(conv.input) > 2 and conv.input[2] else f"{conv.input[1]}_bias", b_cast)
    if len(conv.input) > 2:
        conv.input[2] = name
    else:
        conv.input.append(name)
    return True


def _absorb(gr: _Graph, prev: Any, node: Any) -> None:
    """Remove ``node``, whose input was ``prev``'s output and that output's one use: ``prev`` now writes
    ``node``'s output (its name kept, so a graph output stays one)."""
    prev.output[0] = node.output[0]
    gr.g.node.remove(node)


def _bypass(gr: _Graph, node: Any, keep_input: str) -> None:
    """Remove ``node`` (its output read by nodes only, not a graph output): they read ``keep_input`` instead."""
    out = node.output[0]
    for n in gr.g.node:
        for k, i in enumerate(n.input):
            if i == out:
                n.input[k] = keep_input
    gr.g.node.remove(node)


def _fold_once(gr: _Graph) -> str | None:
    for node in gr.g.node:
        op = node.op_type
        if not _standard(node):
            continue
        if op == "Div" and len(node.input) == 2 and gr.const(node.input[1]) is not None \
                and gr.const(node.input[0]) is None:
            c = gr.const(node.input[1])
            assert c is not None
            inv = _cast(1.0 / c.astype(np.float64), c.dtype) if np.all(c != 0) and np.all(np.isfinite(c)) else None
            if inv is not None:
                node.op_type = "Mul"
                node.input[1] = gr.add_const(node.input[1], inv)
                return "div_to_mul"
        if op in ("Mul", "Add"):
            co = gr.const_operand(node)
            if co is None:
                continue
            k, c = co
            src = node.input[k]
            prev = gr.producer.get(src) if gr.single_use(src) else None
            # Mul(Mul(x, a), b) -> Mul(x, a*b); Add likewise
            pco = gr.const_operand(prev) if prev is not None and prev.op_type == op else None
            if prev is not None and pco is not None and np.asarray(pco[1]).size == 1 and c.size == 1:
                pk, pc = pco
                merged = pc.astype(np.float64) * c if op == "Mul" else pc.astype(np.float64) + c
                shape = pc.shape if pc.ndim >= c.ndim else c.shape  # the higher rank: broadcasting keeps it
                fits = _cast(merged, pc.dtype)
                if fits is not None and (op == "Add" or np.all(fits != 0)):
                    prev.input[1 - pk] = gr.add_const(prev.input[1 - pk], fits.reshape(shape))
                    _absorb(gr, prev, node)
                    return f"{op.lower()}_{op.lower()}"
            # Conv -> Mul/Add(per-channel constant) into the Conv
            params = _conv_params(gr, prev) if prev is not None else None
            if prev is not None and params is not None:
                w, bias = params
                vec = _per_channel(c, w.shape[0], w.ndim - 2)
                if vec is not None:
                    if op == "Mul":
                        w = w * vec.reshape((-1,) + (1,) * (w.ndim - 1))
                        bias = bias * vec
                    else:
                        bias = bias + vec
                    if _set_conv(gr, prev, w, bias, gr.const(prev.input[1]).dtype):  # type: ignore[union-attr]
                        _absorb(gr, prev, node)
                        return f"conv_{op.lower()}"
            # Mul/Add(scalar) -> unpadded Conv into the Conv.  The constant has at most one dimension: then x has
            # the Conv input's rank (>= 3) already, and the Conv may read x directly
            nxt = gr.only_consumer(node.output[0])
            nparams = _conv_params(gr, nxt) if nxt is not None and nxt.input[0] == node.output[0] else None
            if nparams is not None and c.size == 1 and c.ndim <= 1 and not any(_attr(nxt, "pads", [])) \
                    and _attr(nxt, "auto_pad", b"NOTSET") in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
                w, bias = nparams
                s = float(c.reshape(()))
                if op == "Mul":
                    w = w * s
                else:
                    bias = bias + s * w.reshape(w.shape[0], -1).sum(axis=1)
                if _set_conv(gr, nxt, w, bias, gr.const(nxt.input[1]).dtype):  # type: ignore[union-attr]
                    _bypass(gr, node, src)
                    return f"{op.lower()}_conv"
    return None


def _names(graph: Any) -> set[str]:
    """Every tensor name of ``graph`` and of its subgraphs."""
    out = {i.name for i in graph.initializer} | {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    for n in graph.node:
        out |= set(n.input) | set(n.output)
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out |= _names(g)
    return out


def _used(graph: Any) -> set[str]:
    return ({i for n in graph.node for i in n.input} | {o.name for o in graph.output}
            | set(_subgraph_reads(graph.node)))


def _prune(graph: Any, unused_before: set[str]) -> None:
    """Drop the initializers, Constant nodes and value_info that the folds left unread: not those nothing read
    before (not ours to remove), nor an initializer that is also a graph input (the input would become required)."""
    used = _used(graph)
    inputs = {i.name for i in graph.input}
    keep = [i for i in graph.initializer if i.name in used or i.name in inputs or i.name in unused_before]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    for n in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used
              and n.output[0] not in unused_before]:
        graph.node.remove(n)
    live = used | {o for n in graph.node for o in n.output} | inputs
    keep_vi = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(keep_vi)


def fold_graph(model: Any) -> Counter[str]:
    """Fold ``model`` (an ``onnx.ModelProto``, changed in place; main graph only); returns the folds applied
    by kind (``div_to_mul``, ``mul_mul``, ``add_add``, ``conv_mul``, ``conv_add``, ``mul_conv``, ``add_conv``)."""
    from onnx import helper

    graph = model.graph
    done: Counter[str] = Counter()
    used = _used(graph)
    unused_before = ({i.name for i in graph.initializer}
                     | {n.output[0] for n in graph.node if n.op_type == "Constant"}) - used
    taken = _names(graph)
    arrays: dict[str, np.ndarray] = {}
    while True:
        gr = _Graph(graph, taken, arrays)  # indexes rebuilt after each fold; the constants' arrays are reused
        kind = _fold_once(gr)
        if kind is None:
            break
        done[kind] += 1
    if done:
        _prune(graph, unused_before)
        if model.ir_version < 4:  # before IR 4 every initializer must also be a graph input
            inputs = {i.name for i in graph.input}
            graph.input.extend(helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
                               for i in graph.initializer if i.name not in inputs)
    return done


def fold_file(src: Path, out: Path, *, write_unchanged: bool = False) -> Counter[str]:
    """Load the ONNX model ``src``, fold it (:func:`fold_graph`) and save it at ``out``; returns the folds.  With
    nothing to fold, ``out`` is written only when ``write_unchanged``."""
    import onnx

    model = onnx.load(str(src))
    done = fold_graph(model)
    if done or write_unchanged:
        onnx.save(model, str(out))
    return done
