"""Static INT8 quantization of an ONNX model from calibration tensors, with an accuracy gate.

:func:`quantize_model` upgrades the opset where ONNX Runtime's quantizer needs it (per-channel QDQ needs
opset 13), runs ONNX Runtime's model pre-processing (shape inference, graph optimization), quantizes
statically (QDQ or QOperator format, per-channel weights by default, MinMax / entropy / percentile
calibration), then compares the INT8 model with the FP32 one on *held-out* tensors: the task metric
(:data:`METRICS`, each scored against the FP32 output, so FP32 scores 1), max and mean absolute difference
of every output, and latency at batch 1 for each thread count.  A model whose metric drops by more than
``tolerance`` (relative) is refused: nothing is written at ``out``, the report says why.

Needs the ``quantize`` extra (``pip install 'edgefuse[quantize]'``: the ``onnx`` package).
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ModelError
from edgefuse.infer.runtime import inspect_model

__all__ = ["METRICS", "MIN_CALIBRATION_SETS", "QuantizeOptions", "QuantizeReport", "quantize_model"]

Feeds = dict[str, npt.NDArray[Any]]
#: fewest calibration sets accepted (fewer give ranges that do not generalize)
MIN_CALIBRATION_SETS = 8
#: the opset the quantizer is run at when a model is older (per-channel QDQ needs 13)
QUANT_OPSET = 13


def _cosine(ref: list[Feeds], test: list[Feeds], _: float) -> float:
    """Mean cosine similarity of the flattened outputs (all outputs concatenated per frame)."""
    scores = []
    for r, t in zip(ref, test, strict=True):
        a = np.concatenate([np.asarray(v, np.float64).ravel() for v in r.values()])
        b = np.concatenate([np.asarray(t[k], np.float64).ravel() for k in r])
        den = float(np.linalg.norm(a) * np.linalg.norm(b))
        scores.append(1.0 if den == 0.0 and not a.any() and not b.any() else (float(a @ b) / den if den else 0.0))
    return float(np.mean(scores))


def _argmax(ref: list[Feeds], test: list[Feeds], _: float) -> float:
    """Fraction of positions whose argmax over axis 1 (classes) agrees with FP32's (first output)."""
    name = next(iter(ref[0]))
    agree = [float(np.mean(np.argmax(r[name], axis=1) == np.argmax(t[name], axis=1)))
             for r, t in zip(ref, test, strict=True)]
    return float(np.mean(agree))


def _mask_f1(ref: list[Feeds], test: list[Feeds], threshold: float) -> float:
    """F1 of the INT8 mask ``output > threshold`` against FP32's (first output; 1 when both are empty)."""
    name = next(iter(ref[0]))
    tp = fp = fn = 0
    for r, t in zip(ref, test, strict=True):
        a, b = r[name] > threshold, t[name] > threshold
        tp += int(np.sum(a & b))
        fp += int(np.sum(~a & b))
        fn += int(np.sum(a & ~b))
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


#: task metrics, each scoring the INT8 outputs against the FP32 outputs (FP32 scores 1.0)
METRICS: dict[str, Callable[[list[Feeds], list[Feeds], float], float]] = {
    "cosine": _cosine, "argmax_agreement": _argmax, "mask_f1": _mask_f1,
}


@dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize and what to accept.

    ``method``: calibration (``minmax``, ``entropy``, ``percentile``); ``fmt``: ``qdq`` or ``qoperator``;
    ``per_channel`` weights; ``reduce_range`` (7-bit weights, for CPUs without VNNI); ``activations``:
    ``uint8`` (U8S8, the fast path on x86) or ``int8``; ``metric`` of :data:`METRICS` with its
    ``metric_threshold`` (mask_f1); ``tolerance``: largest relative drop of the metric accepted;
    ``threads``: thread counts the latency is measured at; ``latency_runs`` per model and thread count;
    ``op_types``: quantize only these operator types (None: every type ONNX Runtime can), e.g. ``("Conv",)``
    to keep a sensitive head (ConvTranspose, Sigmoid) in float; ``exclude``: node names or operator types kept
    in float (ONNX Runtime's ``nodes_to_exclude``), matched against the pre-processed model: an entry that
    matches no node there is an error, not a silent no-op (pre-processing may fuse or rename nodes; the report's
    ``excluded`` lists the nodes actually kept in float).
    """

    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    fmt: Literal["qdq", "qoperator"] = "qdq"
    per_channel: bool = True
    reduce_range: bool = False
    activations: Literal["uint8", "int8"] = "uint8"
    metric: str = "cosine"
    metric_threshold: float = 0.5
    tolerance: float = 0.01
    threads: tuple[int, ...] = (1, 2)
    latency_runs: int = 20
    percentile: float = 99.999
    min_calibration: int = MIN_CALIBRATION_SETS
    op_types: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class QuantizeReport:
    """What :func:`quantize_model` did and measured (``as_dict`` for JSON)."""

    model: str
    out: str | None
    written: bool
    verdict: str
    options: dict[str, Any]
    calibration_sets: int
    heldout_sets: int
    opset: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    metric: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def _need_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelError("quantization needs the onnx package: pip install 'edgefuse[quantize]'") from None
    return onnx


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, sets: Sequence[Feeds]) -> None:
        self._it = iter(sets)

    def get_next(self) -> Feeds | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - called by some ORT versions only
        return None


def prepare_model(model: Path, workdir: Path, steps: list[str]) -> Path:
    """Opset upgrade (to :data:`QUANT_OPSET` when older) and ONNX Runtime's quantization pre-processing."""
    onnx = _need_onnx()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    info = inspect_model(model)
    src = model
    opset = info.opsets.get("", QUANT_OPSET)
    if opset < QUANT_OPSET:
        from onnx import version_converter

        try:
            upgraded = version_converter.convert_version(onnx.load(str(model)), QUANT_OPSET)
        except Exception as exc:
            raise ModelError(f"{model}: cannot upgrade opset {opset} to {QUANT_OPSET} for quantization: {exc}",
                             file=model) from None
        src = workdir / "upgraded.onnx"
        onnx.save(upgraded, str(src))
        steps.append(f"opset {opset} -> {QUANT_OPSET} (onnx.version_converter)")
    pre = workdir / "preprocessed.onnx"
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        steps.append("quant_pre_process (shape inference, graph optimization)")
    except Exception as exc:  # symbolic shape inference fails on some graphs: retry without it
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        steps.append(f"quant_pre_process without symbolic shape inference ({str(exc).splitlines()[0][:120]})")
    return pre


def excluded_nodes(model: Path, exclude: Sequence[str]) -> list[str]:
    """Names of the nodes of ``model`` that ``exclude`` (node names or operator types) selects, in graph order.

    Selected nodes without a name are named (``edgefuse_unnamed_<op>_<index>``) and ``model`` is saved again,
    since ONNX Runtime's quantizer matches nodes by name.  Raises :class:`ModelError` naming the entries that
    match no node (and the operator types present).
    """
    if not exclude:
        return []
    onnx = _need_onnx()
    proto = onnx.load(str(model))
    graph = proto.graph
    renamed = False
    wanted = set(exclude)
    hit: set[str] = set()
    names = []
    for i, node in enumerate(graph.node):
        match = wanted & {node.name, node.op_type}
        if match:
            if not node.name:
                node.name = f"edgefuse_unnamed_{node.op_type}_{i}"
                renamed = True
            names.append(node.name)
            hit |= match
    missing = sorted(wanted - hit)
    if missing:
        ops = sorted({n.op_type for n in graph.node})
        raise ModelError(f"{model.name}: exclude entries match no node or operator type after pre-processing: "
                         f"{', '.join(missing)} (operator types present: {', '.join(ops)})", file=model)
    if renamed:
        onnx.save(proto, str(model))
    return names


def _session(model: Path | bytes, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                                providers=["CPUExecutionProvider"])


def _run_all(sess: Any, sets: Sequence[Feeds]) -> list[Feeds]:
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(names, s), strict=True)) for s in sets]


def _latency(sess: Any, sets: Sequence[Feeds], runs: int) -> dict[str, float]:
    names = [o.name for o in sess.get_outputs()]
    sess.run(names, sets[0])
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        sess.run(names, sets[i % len(sets)])
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def quantize_model(model: str | Path, calibration: Sequence[Feeds], heldout: Sequence[Feeds], out: str | Path, *,
                   options: QuantizeOptions | None = None, report_path: str | Path | None = None,
                   overwrite: bool = False) -> QuantizeReport:
    """Quantize ``model`` with ``calibration`` sets, judge it on ``heldout`` sets, write it to ``out`` if it passes.

    Raises :class:`ModelError` for too few calibration sets (naming the count needed), no held-out set, an
    existing ``out`` without ``overwrite``, or a model the quantizer cannot handle.  A metric drop above the
    tolerance is not an exception: the report's ``written`` is False and ``verdict`` says why.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    opts = options or QuantizeOptions()
    model, out = Path(model), Path(out)
    if opts.metric not in METRICS:
        raise ModelError(f"unknown metric {opts.metric!r} (known: {', '.join(METRICS)})")
    if len(calibration) < opts.min_calibration:
        raise ModelError(f"calibration needs at least {opts.min_calibration} sets of model inputs; got "
                         f"{len(calibration)} (use a longer recording or a longer part of it)")
    if not heldout:
        raise ModelError("no held-out sets to judge the INT8 model on (take them from another part of the "
                         "recording or another recording)")
    if out.exists() and not overwrite:
        raise ModelError(f"{out} exists (pass overwrite to replace it)", file=out)
    info = inspect_model(model)
    report = QuantizeReport(str(model), None, False, "", asdict(opts), len(calibration), len(heldout),
                            opset=dict(info.opsets))
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[opts.method]
    extra: dict[str, Any] = {}
    if opts.method == "percentile":
        extra["CalibPercentile"] = opts.percentile
    with tempfile.TemporaryDirectory(prefix="edgefuse-quant-") as tmp:
        work = Path(tmp)
        pre = prepare_model(model, work, report.steps)
        report.excluded = excluded_nodes(pre, opts.exclude)
        if report.excluded:
            report.steps.append(f"{len(report.excluded)} node(s) kept in float (exclude: {', '.join(opts.exclude)})")
        q_tmp = work / "int8.onnx"
        try:
            quantize_static(
                str(pre), str(q_tmp), _Reader(calibration),
                quant_format=QuantFormat.QDQ if opts.fmt == "qdq" else QuantFormat.QOperator,
                per_channel=opts.per_channel, reduce_range=opts.reduce_range,
                activation_type=QuantType.QUInt8 if opts.activations == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=method, extra_options=extra,
                op_types_to_quantize=list(opts.op_types) if opts.op_types else None,
                nodes_to_exclude=report.excluded or None,
            )
        except Exception as exc:
            raise ModelError(f"{model}: quantization failed: {str(exc).splitlines()[0] if str(exc) else exc}",
                             file=model) from None
        report.steps.append(f"quantize_static ({opts.fmt}, {opts.method}, per_channel={opts.per_channel}, "
                            f"U8S8={opts.activations == 'uint8'}, reduce_range={opts.reduce_range})")
        fp32, int8 = _session(model, 0), _session(q_tmp, 0)
        ref, got = _run_all(fp32, heldout), _run_all(int8, heldout)
        for name in ref[0]:
            diff = np.concatenate([np.abs(np.asarray(r[name], np.float64) - np.asarray(g[name], np.float64)).ravel()
                                   for r, g in zip(ref, got, strict=True)])
            report.outputs[name] = {"max_abs_diff": float(diff.max(initial=0.0)), "mean_abs_diff": float(diff.mean())}
        score = METRICS[opts.metric](ref, got, opts.metric_threshold)
        drop = 1.0 - score  # FP32 scores 1 against itself
        report.metric = {"name": opts.metric, "fp32": 1.0, "int8": score, "relative_drop": drop,
                         "tolerance": opts.tolerance, "threshold": opts.metric_threshold}
        for threads in opts.threads:
            f = _latency(_session(model, threads), heldout, opts.latency_runs)
            q = _latency(_session(q_tmp, threads), heldout, opts.latency_runs)
            report.latency_ms[f"threads_{threads}"] = {"fp32": f["median"], "int8": q["median"],
                                                       "speedup": f["median"] / q["median"]}
        if drop > opts.tolerance:
            report.verdict = (f"refused: {opts.metric} dropped by {drop:.4%} on {len(heldout)} held-out sets, more "
                              f"than the tolerance {opts.tolerance:.4%}; nothing written")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(q_tmp), str(out))
            report.out, report.written = str(out), True
            report.verdict = f"written: {opts.metric} drop {drop:.4%} <= tolerance {opts.tolerance:.4%}"
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report
