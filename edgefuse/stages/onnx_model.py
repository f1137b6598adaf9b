"""The generic ``onnx_model`` stage: runs an ONNX model whose card names its inputs and outputs.

Ports are the card's tensors: each card input is an input port of its ``edge`` type (``Image``,
``PointCloud`` or ``Tensor``) and each card output an output port.  Pre-processing (resize, channel order,
scale/mean/std, layout; point fields padded to N) is what the card declares, done by the Numba converters
of :mod:`edgefuse.infer.preprocess`; ``Image`` outputs become ``32FC<C>`` images, ``Tensor`` outputs
:class:`~edgefuse.msgs.types.TensorData`.

Checked when the pipeline loads (``edgefuse validate``): the card (every problem, with its line), the model
file (ONNX, not truncated, supported opset, sha256 = the card's), the model's inputs and outputs against the
card (names, ranks, fixed dimensions, dtypes), the edges wired to it (edge types; frames against the card's
``frame``; an image input without ``resize`` against the rig camera's resolution).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import EdgefuseError, PipelineError
from edgefuse.infer.card import ModelCard, card_path_for, load_card
from edgefuse.infer.preprocess import CloudToTensor, ImageToTensor, tensor_to_image
from edgefuse.infer.providers import ProviderSettings
from edgefuse.infer.runtime import ModelRuntime, card_problems, describe_model
from edgefuse.msgs.types import TensorData
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

__all__ = ["OnnxModelParams", "OnnxModelStage"]

#: calls whose pre/post-processing and model times the report summarises (the most recent ones)
TIMING_WINDOW = 4096


@dataclass(frozen=True, kw_only=True)
class OnnxModelParams(StageParams):
    """Parameters of ``onnx_model``."""

    model: str = param(min_len=1, doc="the .onnx file (relative to the pipeline file)")
    card: str | None = param(None, min_len=1, doc="its model card (default: the .onnx path with .yaml)")
    providers: tuple[str, ...] | None = param(None, min_len=1, unique=True,
                                              doc="execution providers in order (tensorrt, cuda, cpu or full "
                                                  "names); default: TensorRT → CUDA → CPU, as installed")
    threads: int | None = param(None, ge=0, le=1024, doc="ONNX Runtime threads (default: runtime.ort_threads)")
    thread_spinning: bool = param(True, doc="idle ONNX Runtime threads spin between runs (ORT's default); off: they "
                                            "sleep, which is faster where the cores are shared with other work")
    io_binding: Literal["auto", "on", "off"] = param("auto", doc="IO binding (auto: on for GPU providers)")
    check_finite: bool = param(True, doc="refuse input tensors with NaN/inf")
    graph_cache: bool = param(True, doc="cache the optimized graph (and TensorRT engines) for a faster second start")
    precision: Literal["auto", "fp32", "fp16", "int8"] = param(
        "auto", doc="TensorRT precision: auto (FP16; INT8 too for a QDQ model), fp32, fp16, int8 (QDQ models only: "
                    "INT8 from the model's Q/DQ scales)")
    device_id: int = param(0, ge=0, le=64, doc="CUDA device of the TensorRT / CUDA providers")
    cudnn_conv_algo_search: Literal["exhaustive", "heuristic", "default"] = param(
        "heuristic", doc="how cuDNN picks convolution algorithms (CUDA provider)")
    gpu_mem_limit_mb: int | None = param(None, ge=1, le=1 << 22, unit="MiB", doc="CUDA arena limit (default: none)")
    arena_extend_strategy: Literal["next_power_of_two", "same_as_requested"] = param(
        "next_power_of_two", doc="how the CUDA arena grows")
    trt_workspace_mb: int | None = param(None, ge=1, le=1 << 22, unit="MiB",
                                         doc="TensorRT builder workspace (default: ORT's)")
    node_report: bool = param(True, doc="profile the warm-up run to report which provider ran each node")


def _card_of(params: OnnxModelParams) -> ModelCard:
    card_path = Path(params.card) if params.card is not None else card_path_for(params.model)
    if not card_path.is_file():
        raise PipelineError(f"model card not found: {card_path} (every model needs its card, see models/CARD.md)")
    card = load_card(card_path)
    if card.model_path.resolve() != Path(params.model).resolve():
        raise PipelineError(f"card {card_path} describes {card.model_path}, not {params.model}")
    return card


@register_stage("onnx_model")
class OnnxModelStage(Stage):
    """Run an ONNX model (ports: the inputs and outputs its model card declares).

    Pre-processing follows the card (Numba, no per-pixel Python); the provider is the first installed of
    TensorRT → CUDA → CPU unless ``providers`` says otherwise (a provider that is not installed or fails to
    initialize is skipped, said once with the reason, and shown in the run report).
    """

    Params = OnnxModelParams
    params: OnnxModelParams
    path_params: ClassVar[tuple[str, ...]] = ("model", "card")
    dynamic_ports: ClassVar[bool] = True

    @classmethod
    def ports(cls, params: Any) -> tuple[dict[str, str], dict[str, str]]:
        card = _card_of(params)
        return {i.name: i.edge for i in card.inputs}, {o.name: o.edge for o in card.outputs}

    @classmethod
    def check_rig(cls, params: Any, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """The frame of each wired input must be the card's ``frame`` (when both are known), and an image input
        without ``resize`` and with fixed H, W must match the resolution of the rig camera of its frame."""
        try:
            card = _card_of(params)
        except EdgefuseError:
            return []  # reported by ports()
        problems = []
        for spec in card.inputs:
            frame = frames.get(spec.name)
            if frame is not None and spec.frame is not None and frame != spec.frame:
                problems.append(f"input '{spec.name}': the model expects frame '{spec.frame}' but the edge wired to "
                                f"it is in frame '{frame}'")
            if rig is None or frame is None or spec.edge != "Image" or spec.preprocess.resize is not None:
                continue
            h, w = spec.shape[spec.layout.index("H")], spec.shape[spec.layout.index("W")]
            for cam_name, cam in getattr(rig, "cameras", {}).items():
                if cam.frame_id == frame and isinstance(h, int) and isinstance(w, int) and (
                        cam.height != h or cam.width != w):
                    problems.append(f"input '{spec.name}': the model takes {w}x{h} images without resize, but camera "
                                    f"'{cam_name}' gives {cam.width}x{cam.height}; add preprocess.resize to the card")
        return problems

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        try:
            self.card = _card_of(p)
            for spec in self.card.inputs:
                if spec.edge in ("Image", "PointCloud") and spec.dtype != "float32":
                    raise PipelineError(f"input '{spec.name}': {spec.edge} inputs are converted to float32, the card "
                                        f"says {spec.dtype}")
            settings = ProviderSettings(precision=p.precision, device_id=p.device_id,
                                        cudnn_conv_algo_search=p.cudnn_conv_algo_search,
                                        gpu_mem_limit_mb=p.gpu_mem_limit_mb,
                                        arena_extend_strategy=p.arena_extend_strategy,
                                        trt_engine_cache=p.graph_cache, trt_workspace_mb=p.trt_workspace_mb)
            self.runtime = ModelRuntime(p.model, self.card, providers=p.providers, threads=p.threads,
                                        spinning=p.thread_spinning, cache=p.graph_cache, io_binding=p.io_binding,
                                        check_finite=p.check_finite,
                                        settings=settings, profile_warmup=p.node_report)
            problems = card_problems(self.card, *describe_model(p.model))
        except EdgefuseError as exc:
            raise PipelineError(f"stage '{name}': {exc}") from None
        if problems:
            raise PipelineError(f"stage '{name}': model {p.model} does not match its card {self.card.path}: "
                                + "; ".join(problems))
        self.converters: dict[str, Callable[[Any], npt.NDArray[np.float32]]] = {}
        for spec in self.card.inputs:
            if spec.edge == "Image":
                self.converters[spec.name] = ImageToTensor(spec)
            elif spec.edge == "PointCloud":
                self.converters[spec.name] = CloudToTensor(spec)
        self._timing = np.zeros((2, TIMING_WINDOW), dtype=np.float64)  # seconds: pre+post, model
        self._n_timed = 0
        #: called with each set's model inputs (name → array, copies) before the model runs
        self.tap: Callable[[dict[str, npt.NDArray[Any]]], None] | None = None

    def _feeds(self, inputs: Mapping[str, Any]) -> tuple[dict[str, npt.NDArray[Any]], str]:
        feeds: dict[str, npt.NDArray[Any]] = {}
        frame = ""
        for spec in self.card.inputs:
            payload = inputs[spec.name]
            frame = frame or str(getattr(payload, "frame_id", ""))
            conv = self.converters.get(spec.name)
            feeds[spec.name] = conv(payload) if conv is not None else payload.data
        return feeds, frame

    def start(self) -> None:
        self.runtime.start()
        # compile the pre-processing kernels for the common source dtypes on a small frame
        for spec in self.card.inputs:
            conv = self.converters.get(spec.name)
            if isinstance(conv, ImageToTensor):
                from edgefuse.msgs.types import ImageData

                if conv.channels == 1:  # 8-bit and float (depth) sources
                    conv(ImageData(0, "", "mono8", np.zeros((8, 8), np.uint8)))
                    conv(ImageData(0, "", "32FC1", np.zeros((8, 8), np.float32)))
                else:
                    conv(ImageData(0, "", "bgr8", np.zeros((8, 8, conv.channels), np.uint8)))

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        feeds, frame = self._feeds(inputs)
        if self.tap is not None:
            self.tap({k: np.array(v, copy=True) for k, v in feeds.items()})
        t1 = time.perf_counter()
        outs = self.runtime.run(feeds)
        t2 = time.perf_counter()
        result: dict[str, Any] = {}
        for spec in self.card.outputs:
            frame_id = spec.frame or frame
            if spec.edge == "Image":
                result[spec.name] = tensor_to_image(spec, outs[spec.name], stamp_ns, frame_id)
            else:
                result[spec.name] = TensorData(stamp_ns, frame_id, outs[spec.name])
        i = self._n_timed % TIMING_WINDOW
        self._timing[0, i] = (t1 - t0) + (time.perf_counter() - t2)
        self._timing[1, i] = t2 - t1
        self._n_timed += 1
        return result

    def timing(self) -> dict[str, float] | None:
        """p50/p99 [ms] of pre+post-processing (card conversions, output images) and of the model run, over the
        last :data:`TIMING_WINDOW` calls, and the ratio of the p50s (None before the first call)."""
        n = min(self._n_timed, TIMING_WINDOW)
        if n == 0:
            return None
        pre, model = self._timing[0, :n] * 1e3, self._timing[1, :n] * 1e3
        out = {"pre_post_p50_ms": float(np.percentile(pre, 50)), "pre_post_p99_ms": float(np.percentile(pre, 99)),
               "model_p50_ms": float(np.percentile(model, 50)), "model_p99_ms": float(np.percentile(model, 99))}
        out["pre_post_over_model_p50"] = out["pre_post_p50_ms"] / max(out["model_p50_ms"], 1e-9)
        return {k: round(v, 4) for k, v in out.items()}

    def report(self) -> dict[str, Any] | None:
        out = self.runtime.report()
        timing = self.timing()
        if timing is not None:
            out["timing"] = timing
        truncated = {n: c.truncated for n, c in self.converters.items() if isinstance(c, CloudToTensor)}
        if truncated:
            out["clouds_truncated"] = truncated
        return out

