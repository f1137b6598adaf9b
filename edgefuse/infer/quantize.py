"""Static INT8 quantization of an ONNX model from calibration tensors, with an accuracy gate.

:func:`quantize_model` upgrades the opset where ONNX Runtime's quantizer needs it (per-channel QDQ needs opset 13),
folds constant element-wise chains (:mod:`edgefuse.infer.fold`: ``Div`` by a constant, scale/bias ``Mul``/``Add``
next to a Conv; checked against the original on the held-out sets), runs ONNX Runtime's model pre-processing (shape
inference, graph optimization), quantizes statically (QDQ or QOperator format, per-channel weights by default,
MinMax / entropy / percentile calibration), then compares the INT8 model with the FP32 one on *held-out* tensors:
the task metric (:data:`METRICS`, each scored against the FP32 output, so FP32 scores 1), max and mean absolute
difference of every output, and latency at batch 1 for each thread count, against the faster of the original and the
folded FP32 model (the folds speed FP32 up too: the baseline is the stronger of the two). A model whose metric drops
by more than ``tolerance`` (relative) is refused: nothing is written at ``out``, the report says why. A caller that
knows the ground truth of its held-out sets passes ``task_metric`` (a score of the held-out outputs, e.g. text
detection hmean against annotated boxes): the gate then compares INT8's score with FP32's on the task, and the
agreement metric is still reported.

Mixed precision (``QuantizeOptions.auto_exclude``): when the all-INT8 model misses the tolerance, each block
(a weighted node — Conv, ConvTranspose, Gemm, MatMul — with the element-wise nodes that follow it) is kept in
float one at a time and the loss of agreement with FP32 (``metric``, then the output mean squared error
as tie-break) it removes on calibration sets is its sensitivity; the most sensitive
blocks are then kept in float, 1, 2, 4, ... of them (then bisected to the fewest), until the held-out metric is
within the tolerance or ``auto_max_float`` of the blocks are float (then the model is refused).  Calibration
runs once (ONNX Runtime's calibration cache) for all the trial models.

Needs the ``quantize`` extra (``pip install 'edgefuse[quantize]'``: the ``onnx`` package).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
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

__all__ = ["METRICS", "MIN_CALIBRATION_SETS", "WEIGHTED_OPS", "QuantizeOptions", "QuantizeReport", "blocks",
           "quantize_model"]

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
    ``excluded`` lists the nodes actually kept in float).  ``auto_exclude``: mixed precision, the most
    sensitive blocks kept in float until the metric is within ``tolerance`` (at most ``auto_max_float`` of the
    blocks, a fraction; at least one), sensitivity measured on ``sensitivity_sets`` calibration sets.
    ``extra``: further ONNX Runtime ``extra_options`` as (name, value) pairs, e.g.
    ``(("ActivationSymmetric", True),)`` or ``(("CalibTensorRangeSymmetric", True),)``.  ``fold``: fold constant
    element-wise chains before quantizing (:func:`edgefuse.infer.fold.fold_graph`; ``exclude`` names are matched
    after it, so a folded-away ``Div`` cannot be excluded: pass ``fold=False`` for that).
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
    auto_exclude: bool = False
    auto_max_float: float = 0.25
    sensitivity_sets: int = 8
    extra: tuple[tuple[str, bool | float | int], ...] = ()
    fold: bool = True


#: largest difference of a folded model's outputs from the original's accepted, relative to the outputs' largest
#: magnitude (float rounding of the folded constants; anything larger means a fold was wrong: not used)
FOLD_RTOL = 1e-3


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
    auto: dict[str, Any] = field(default_factory=dict)
    #: largest difference of the folded FP32 model's outputs from the original's, relative to their magnitude
    fold_error: float | None = None

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


def prepare_model(model: Path, workdir: Path, steps: list[str], *, fold: bool = False) -> tuple[Path, Path | None]:
    """Opset upgrade (to :data:`QUANT_OPSET` when older), the constant folds (``fold``) and ONNX Runtime's
    quantization pre-processing: (the pre-processed model, the folded FP32 model or None when nothing folded)."""
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
    folded = None
    if fold:
        from edgefuse.infer.fold import fold_file

        done = fold_file(src, workdir / "folded.onnx")
        if done:
            folded = src = workdir / "folded.onnx"
            steps.append("folded " + ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
    pre = workdir.resolve() / "preprocessed.onnx"
    src = src.resolve()
    # in the work folder: ONNX Runtime's symbolic shape inference, when it gives up, saves its partial model as
    # sym_shape_infer_temp.onnx in the current folder, the user's
    with contextlib.chdir(workdir):
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
            steps.append("quant_pre_process (shape inference, graph optimization)")
        except Exception as exc:  # symbolic shape inference fails on some graphs: retry without it
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            steps.append(f"quant_pre_process without symbolic shape inference ({str(exc).splitlines()[0][:120]})")
    return pre, folded


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


def latency_times(sess: Any, sets: Sequence[Feeds], runs: int) -> list[float]:
    """Times (ms) of ``runs`` runs of an ONNX Runtime session over ``sets`` in turn, after one warm-up run."""
    names = [o.name for o in sess.get_outputs()]
    sess.run(names, sets[0])
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        sess.run(names, sets[i % len(sets)])
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _latency(sess: Any, sets: Sequence[Feeds], runs: int) -> dict[str, float]:
    times = latency_times(sess, sets, runs)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


#: operator types that start a block of the mixed-precision search (the nodes that carry weights)
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def blocks(model: Path, skip: Sequence[str] = ()) -> list[list[str]]:
    """The blocks of ``model`` in graph order: each weighted node (:data:`WEIGHTED_OPS`) with the quantizable
    non-weighted nodes after it up to the next weighted one (activations, hard-swish, residual Add...); nodes
    before the first weighted node form a block of their own.  Nodes named in ``skip`` (already float) and
    nodes ONNX Runtime never quantizes (Constant, Shape...) are left out.  Unnamed nodes are named and
    ``model`` saved again (the quantizer matches nodes by name)."""
    onnx = _need_onnx()
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    quantizable = set(QDQRegistry) | set(QLinearOpsRegistry) | WEIGHTED_OPS | {"Add", "Mul", "Div", "Sub"}
    proto = onnx.load(str(model))
    renamed = False
    out: list[list[str]] = []
    for i, node in enumerate(proto.graph.node):
        if node.op_type not in quantizable or node.name in skip:
            continue
        if not node.name:
            node.name = f"edgefuse_unnamed_{node.op_type}_{i}"
            renamed = True
        if node.op_type in WEIGHTED_OPS or not out:
            out.append([])
        out[-1].append(node.name)
    if renamed:
        onnx.save(proto, str(model))
    return out


def _fold_error(ref: list[Feeds], got: list[Feeds]) -> float:
    """Largest absolute difference of any output over the sets, relative to that output's largest magnitude."""
    worst = 0.0
    for k in ref[0]:
        a = np.concatenate([np.asarray(r[k], np.float64).ravel() for r in ref])
        b = np.concatenate([np.asarray(g[k], np.float64).ravel() for g in got])
        if not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return math.inf
        fin = np.isfinite(a)
        scale = float(np.abs(a[fin]).max(initial=0.0)) or 1.0
        worst = max(worst, float(np.abs(a[fin] - b[fin]).max(initial=0.0)) / scale)
    return worst


def _folds_hold(folded: Path, ref: list[Feeds], heldout: Sequence[Feeds], report: QuantizeReport) -> bool:
    """Whether the folded FP32 model computes what the original did (``ref``) on the held-out sets, within
    :data:`FOLD_RTOL`; records ``fold_error`` and, when not, why the folds are not used."""
    try:
        err = _fold_error(ref, _run_all(_session(folded, 0), heldout))
        why = (f"the folded model differs from the original by {err:.2e} of the outputs' magnitude "
               f"(> {FOLD_RTOL:g})")
    except Exception as exc:  # a fold ONNX Runtime cannot load or run is as wrong as one that differs
        err, why = math.inf, f"ONNX Runtime cannot run the folded model ({str(exc).splitlines()[0][:160]})"
    report.fold_error = err
    if err > FOLD_RTOL:
        report.steps.append(f"folds not used: {why}")
    return err <= FOLD_RTOL


def _output_error(ref: list[Feeds], got: list[Feeds]) -> float:
    """Mean squared difference of all outputs over the sets."""
    return float(np.mean([np.mean((np.asarray(r[k], np.float64) - np.asarray(g[k], np.float64)) ** 2)
                          for r, g in zip(ref, got, strict=True) for k in r]))


class _Quantizer:
    """ONNX Runtime's static quantizer over one pre-processed model, calibrating once for every trial."""

    def __init__(self, model: Path, pre: Path, calibration: Sequence[Feeds], opts: QuantizeOptions,
                 work: Path) -> None:
        from onnxruntime.quantization import CalibrationMethod, quantize_static

        self.model, self.pre, self.opts, self.work = model, pre, opts, work
        self.calibration = calibration
        self.method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}[opts.method]
        self.extra: dict[str, Any] = dict(opts.extra)
        if opts.method == "percentile":
            self.extra.setdefault("CalibPercentile", opts.percentile)
        # calibration cache (ONNX Runtime >= 1.24): the ranges are computed once, then reused by every trial
        self.cache = work / "ranges.json" if "calibration_cache_path" in inspect.signature(
            quantize_static).parameters else None
        self.trials = 0

    def __call__(self, out: Path, excluded: Sequence[str]) -> Path:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        opts = self.opts
        cached = self.cache is not None and self.cache.is_file()
        kwargs: dict[str, Any] = {} if self.cache is None else {"calibration_cache_path": str(self.cache)}
        try:
            quantize_static(
                str(self.pre), str(out), None if cached else _Reader(self.calibration),
                quant_format=QuantFormat.QDQ if opts.fmt == "qdq" else QuantFormat.QOperator,
                per_channel=opts.per_channel, reduce_range=opts.reduce_range,
                activation_type=QuantType.QUInt8 if opts.activations == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=self.method, extra_options=dict(self.extra),
                op_types_to_quantize=list(opts.op_types) if opts.op_types else None,
                nodes_to_exclude=list(excluded) or None, **kwargs,
            )
        except Exception as exc:
            raise ModelError(f"{self.model}: quantization failed: "
                             f"{str(exc).splitlines()[0] if str(exc) else exc}", file=self.model) from None
        self.trials += 1
        return out


def quantize_model(model: str | Path, calibration: Sequence[Feeds], heldout: Sequence[Feeds], out: str | Path, *,
                   options: QuantizeOptions | None = None, report_path: str | Path | None = None,
                   overwrite: bool = False, task_metric: Callable[[list[Feeds]], float] | None = None
                   ) -> QuantizeReport:
    """Quantize ``model`` with ``calibration`` sets, judge it on ``heldout`` sets, write it to ``out`` if it passes.

    ``task_metric`` (optional): the task's score of a list of held-out outputs (one mapping output name →
    array per held-out set, in order; higher is better, e.g. detection hmean against ground truth).  Given,
    the gate is its relative drop from FP32 to INT8, and ``options.metric`` (agreement with FP32) is reported
    beside it as ``metric["agreement"]``.

    Raises :class:`ModelError` for too few calibration sets (naming the count needed), no held-out set, an
    existing ``out`` without ``overwrite``, or a model the quantizer cannot handle.  A metric drop above the
    tolerance is not an exception: the report's ``written`` is False and ``verdict`` says why.
    """
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
    if not 0.0 <= opts.auto_max_float <= 1.0:
        raise ModelError(f"auto_max_float is a fraction of the blocks, in [0, 1]; got {opts.auto_max_float}")
    if out.exists() and not overwrite:
        raise ModelError(f"{out} exists (pass overwrite to replace it)", file=out)
    info = inspect_model(model)
    report = QuantizeReport(str(model), None, False, "", asdict(opts), len(calibration), len(heldout),
                            opset=dict(info.opsets))
    name = "task" if task_metric is not None else opts.metric
    with tempfile.TemporaryDirectory(prefix="edgefuse-quant-") as tmp:
        work = Path(tmp)
        fp32 = _session(model, 0)
        ref = _run_all(fp32, heldout)
        pre, folded = prepare_model(model, work, report.steps, fold=opts.fold)
        if folded is not None and not _folds_hold(folded, ref, heldout, report):
            pre, folded = prepare_model(model, work, [], fold=False)  # quantize the unfolded model
        report.excluded = excluded_nodes(pre, opts.exclude)
        if report.excluded:
            report.steps.append(f"{len(report.excluded)} node(s) kept in float (exclude: {', '.join(opts.exclude)})")
        quantizer = _Quantizer(model, pre, calibration, opts, work)
        fp32_task = task_metric(ref) if task_metric is not None else 1.0

        def judge(path: Path) -> tuple[list[Feeds], float, float, float]:
            """(outputs, agreement, task score, relative drop) of a quantized model on the held-out sets."""
            got = _run_all(_session(path, 0), heldout)
            agreement = METRICS[opts.metric](ref, got, opts.metric_threshold)
            if task_metric is None:
                return got, agreement, agreement, 1.0 - agreement  # FP32 scores 1 against itself
            score = task_metric(got)
            return got, agreement, score, (fp32_task - score) / fp32_task if fp32_task else float(score < fp32_task)

        q_tmp = quantizer(work / "int8.onnx", report.excluded)
        report.steps.append(f"quantize_static ({opts.fmt}, {opts.method}, per_channel={opts.per_channel}, "
                            f"U8S8={opts.activations == 'uint8'}, reduce_range={opts.reduce_range}"
                            + (f", extra={dict(opts.extra)}" if opts.extra else "") + ")")
        got, agreement, score, drop = judge(q_tmp)
        if opts.auto_exclude and drop > opts.tolerance:
            q_tmp, got, agreement, score, drop = _auto_exclude(quantizer, pre, fp32, judge, report=report,
                                                                all_int8=(got, agreement, score, drop))
        for oname in ref[0]:
            diff = np.concatenate([np.abs(np.asarray(r[oname], np.float64) - np.asarray(g[oname], np.float64)).ravel()
                                   for r, g in zip(ref, got, strict=True)])
            report.outputs[oname] = {"max_abs_diff": float(diff.max(initial=0.0)), "mean_abs_diff": float(diff.mean())}
        report.metric = {"name": name, "fp32": fp32_task, "int8": score, "relative_drop": drop,
                         "tolerance": opts.tolerance, "threshold": opts.metric_threshold}
        if task_metric is not None:
            report.metric["agreement"] = {"name": opts.metric, "int8_vs_fp32": agreement}
        for threads in opts.threads:
            f = _latency(_session(model, threads), heldout, opts.latency_runs)["median"]
            q = _latency(_session(q_tmp, threads), heldout, opts.latency_runs)["median"]
            row = {"fp32": f, "int8": q}
            if folded is not None:  # the baseline is the faster FP32
                row["fp32_original"] = f
                row["fp32_folded"] = _latency(_session(folded, threads), heldout, opts.latency_runs)["median"]
                row["fp32"] = min(f, row["fp32_folded"])
            row["speedup"] = row["fp32"] / q
            report.latency_ms[f"threads_{threads}"] = row
        if drop > opts.tolerance:
            floats = len(report.auto.get("float_blocks", []))
            how = f" even with {floats} block(s) in float" if opts.auto_exclude else ""
            report.verdict = (f"refused: {name} dropped by {drop:.4%} on {len(heldout)} held-out sets{how}, more "
                              f"than the tolerance {opts.tolerance:.4%}; nothing written")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(q_tmp), str(out))
            report.out, report.written = str(out), True
            report.verdict = f"written: {name} drop {drop:.4%} <= tolerance {opts.tolerance:.4%}"
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report


Judged = tuple[list[Feeds], float, float, float]


def _auto_exclude(quantizer: _Quantizer, pre: Path, fp32: Any, judge: Callable[[Path], Judged], *,
                  report: QuantizeReport, all_int8: Judged) -> tuple[Path, list[Feeds], float, float, float]:
    """Mixed precision: rank the blocks by sensitivity, keep the fewest most sensitive ones in float that bring
    the held-out drop within the tolerance (or the most allowed).  Returns the chosen model and its judgement;
    fills ``report.auto`` (sensitivities, trials) and ``report.excluded``."""
    opts = quantizer.opts
    t0 = time.perf_counter()
    work = quantizer.work
    user = list(report.excluded)
    units = blocks(pre, user)
    sens_sets = list(quantizer.calibration[: max(1, opts.sensitivity_sets)])
    sens_ref = _run_all(fp32, sens_sets)
    metric = METRICS[opts.metric]

    def errors(path: Path) -> tuple[float, float]:
        got = _run_all(_session(path, 0), sens_sets)
        return 1.0 - metric(sens_ref, got, opts.metric_threshold), _output_error(sens_ref, got)

    base = errors(work / "int8.onnx")
    gains: list[tuple[float, float]] = []
    for unit in units:  # float-one-at-a-time: the agreement loss (then output error) each block's INT8 causes
        e = errors(quantizer(work / "trial.onnx", user + unit))
        gains.append((base[0] - e[0], base[1] - e[1]))
    order = sorted(range(len(units)), key=lambda i: (-gains[i][0], -gains[i][1]))
    limit = max(1, math.ceil(opts.auto_max_float * len(units)))
    trials: dict[int, Judged] = {0: all_int8}
    paths: dict[int, Path] = {0: work / "int8.onnx"}

    def trial(k: int) -> Judged:
        if k not in trials:
            paths[k] = quantizer(work / f"float{k}.onnx", user + [n for i in order[:k] for n in units[i]])
            trials[k] = judge(paths[k])
        return trials[k]

    k, lo = 1, 0  # doubling, then bisection between the last failing and the first passing count
    while trial(min(k, limit))[3] > opts.tolerance and min(k, limit) < limit:
        lo, k = min(k, limit), k * 2
    hi = min(k, limit)
    if trials[hi][3] <= opts.tolerance:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if trial(mid)[3] <= opts.tolerance:
                hi = mid
            else:
                lo = mid
    chosen = hi
    report.excluded = user + [n for i in order[:chosen] for n in units[i]]
    report.auto = {
        "blocks": len(units), "max_float_blocks": limit, "sensitivity_sets": len(sens_sets),
        "all_int8": {f"{opts.metric}_loss": base[0], "output_mse": base[1]},
        "sensitivity": [{"block": units[i][0], "nodes": len(units[i]), f"{opts.metric}_loss_removed": gains[i][0],
                         "mse_removed": gains[i][1]}
                        for i in order],
        "trials": [{"float_blocks": k2, "int8": trials[k2][2], "relative_drop": trials[k2][3]}
                   for k2 in sorted(trials)],
        "float_blocks": [units[i][0] for i in order[:chosen]], "quantizer_runs": quantizer.trials,
        "seconds": time.perf_counter() - t0,
    }
    report.steps.append(f"auto_exclude: {chosen} of {len(units)} block(s) kept in float "
                        f"({len(report.excluded) - len(user)} node(s)), {quantizer.trials} quantizer runs")
    return (paths[chosen], *trials[chosen])
