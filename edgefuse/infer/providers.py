"""Execution-provider options: TensorRT engine cache and precision, CUDA device and allocator, and the
per-node provider summary of a profiled warm-up.

:func:`provider_options` builds the options ONNX Runtime's ``InferenceSession`` takes for one provider from
:class:`ProviderSettings` (the ``onnx_model`` stage parameters, documented in ``docs/JETSON.md``):

- TensorRT: engines cached (``trt_engine_cache_enable``) in a folder keyed by the model's sha256, the ONNX
  Runtime version, the GPU (name and compute capability, when the CUDA driver can be asked) and the
  precision flags, under the same cache root as the optimized-graph cache; a timing cache beside them;
  FP16 from ``precision``; INT8 when the model is QDQ (TensorRT takes the scales from the Q/DQ nodes, no
  calibration table).
- CUDA: ``device_id``, ``cudnn_conv_algo_search``, ``gpu_mem_limit`` and ``arena_extend_strategy``.

:func:`model_op_types` reads the operator types of a model's graph without the ``onnx`` package (QDQ
detection); :func:`node_providers` reads ONNX Runtime's profile (a JSON trace) into nodes per provider.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgefuse.errors import ModelError
from edgefuse.infer._protobuf import fields

__all__ = [
    "GPU_PROVIDERS",
    "ProviderSettings",
    "gpu_identity",
    "is_qdq",
    "model_op_types",
    "node_providers",
    "provider_options",
    "trt_cache_folder",
    "trt_precision",
]

#: providers that run on the GPU (IO binding, per-node report of what fell to the CPU)
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_CONV_SEARCH = {"exhaustive": "EXHAUSTIVE", "heuristic": "HEURISTIC", "default": "DEFAULT"}
_ARENA = {"next_power_of_two": "kNextPowerOfTwo", "same_as_requested": "kSameAsRequested"}


@dataclass(frozen=True)
class ProviderSettings:
    """What the GPU providers are asked for.

    ``precision``: ``auto`` (FP16 on TensorRT; INT8 too for a QDQ model), ``fp32``, ``fp16``, or ``int8`` (a QDQ
    model only: TensorRT builds INT8 from its Q/DQ scales; a float model has no scales, quantize it first with
    ``edgefuse quantize``).  A QDQ model always has INT8 enabled on TensorRT (its Q/DQ layers need it).
    ``device_id``: the CUDA device.  ``cudnn_conv_algo_search``: how cuDNN picks convolution algorithms
    (``exhaustive`` benchmarks them once, ``heuristic``, ``default``).  ``gpu_mem_limit_mb``: the CUDA arena
    limit (None: no limit).  ``arena_extend_strategy``: how the CUDA arena grows.  ``trt_engine_cache``:
    keep built TensorRT engines (and the timing cache) on disk.  ``trt_workspace_mb``: TensorRT builder
    workspace (None: ONNX Runtime's default).
    """

    precision: Literal["auto", "fp32", "fp16", "int8"] = "auto"
    device_id: int = 0
    cudnn_conv_algo_search: Literal["exhaustive", "heuristic", "default"] = "heuristic"
    gpu_mem_limit_mb: int | None = None
    arena_extend_strategy: Literal["next_power_of_two", "same_as_requested"] = "next_power_of_two"
    trt_engine_cache: bool = True
    trt_workspace_mb: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "fp16", "int8"):
            raise ModelError(f"precision must be auto, fp32, fp16 or int8, got {self.precision!r}")
        if self.cudnn_conv_algo_search not in _CONV_SEARCH:
            raise ModelError(f"cudnn_conv_algo_search must be one of {sorted(_CONV_SEARCH)}, "
                             f"got {self.cudnn_conv_algo_search!r}")
        if self.arena_extend_strategy not in _ARENA:
            raise ModelError(f"arena_extend_strategy must be one of {sorted(_ARENA)}, "
                             f"got {self.arena_extend_strategy!r}")
        if self.device_id < 0:
            raise ModelError(f"device_id must be >= 0, got {self.device_id}")
        for name in ("gpu_mem_limit_mb", "trt_workspace_mb"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ModelError(f"{name} must be > 0, got {value}")


# -- the model's operators (protobuf read directly: no onnx package needed) ----------------------------
def _length_fields(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """The length-delimited fields ``(number, bytes)`` of one protobuf message (other wire types skipped)."""
    try:
        found = fields(data)
    except EOFError:
        raise ModelError("truncated protobuf field") from None
    return ((number, value) for number, wire, value in found if wire == 2)


def model_op_types(model: str | Path | bytes) -> frozenset[str]:
    """The operator types of the model's main graph and of its subgraphs (``If``/``Loop`` bodies)."""
    data = memoryview(Path(model).read_bytes() if isinstance(model, (str, Path)) else model)
    ops: set[str] = set()

    def graph(g: memoryview) -> None:
        for number, node in _length_fields(g):
            if number != 1:  # GraphProto.node
                continue
            for n, value in _length_fields(node):
                if n == 4:  # NodeProto.op_type
                    ops.add(bytes(value).decode("utf-8", "replace"))
                elif n == 5:  # NodeProto.attribute: a subgraph is AttributeProto.g (6) / graphs (11)
                    for an, av in _length_fields(value):
                        if an in (6, 11):
                            graph(av)

    for number, value in _length_fields(data):
        if number == 7:  # ModelProto.graph
            graph(value)
    return frozenset(ops)


def is_qdq(ops: frozenset[str]) -> bool:
    """Whether a graph with these operator types is quantized in QDQ format."""
    return bool(ops & _QDQ_OPS)


# -- the GPU, asked of the CUDA driver (no CUDA toolkit or Python binding needed) ---------------------
@functools.lru_cache(maxsize=8)
def gpu_identity(device_id: int = 0) -> str | None:
    """``"<name>-sm<major><minor>"`` of CUDA device ``device_id`` from the driver (``libcuda``), or None when
    there is no driver or no such device."""
    lib = None
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return None
    try:
        if lib.cuInit(0) != 0:
            return None
        dev = ctypes.c_int()
        if lib.cuDeviceGet(ctypes.byref(dev), device_id) != 0:
            return None
        buf = ctypes.create_string_buffer(256)
        if lib.cuDeviceGetName(buf, 256, dev) != 0:
            return None
        major, minor = ctypes.c_int(), ctypes.c_int()
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76
        if lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev) != 0 or \
                lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev) != 0:
            return None
    except (AttributeError, OSError):
        return None
    return f"{buf.value.decode('utf-8', 'replace')}-sm{major.value}{minor.value}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:60]


def trt_precision(precision: str, qdq: bool) -> tuple[bool, bool]:
    """``(fp16, int8)`` TensorRT flags for ``precision`` on a model that is (not) QDQ."""
    if precision == "int8" and not qdq:
        raise ModelError("precision int8 needs a QDQ-quantized model: TensorRT builds INT8 from the model's Q/DQ "
                         "scales here, and a float model has none (quantize it with `edgefuse quantize`)")
    return precision != "fp32", qdq


def trt_cache_folder(root: Path, sha256: str, fp16: bool, int8: bool, *, device_id: int = 0,
                     ort_version: str | None = None, gpu: str | None = None) -> Path:
    """The TensorRT engine cache folder of one model build: ``root/trt/<sha256[:20]>-ort<version>-<gpu>-<flags>``
    (``gpu`` default: :func:`gpu_identity`, ``unknown-gpu`` when the driver cannot be asked)."""
    if ort_version is None:
        import onnxruntime as ort

        ort_version = str(ort.__version__)
    gpu = gpu if gpu is not None else (gpu_identity(device_id) or "unknown-gpu")
    flags = "fp32" if not (fp16 or int8) else "".join(f for f, on in (("fp16", fp16), ("int8", int8)) if on)
    return root / "trt" / f"{sha256[:20]}-ort{_slug(ort_version)}-{_slug(gpu)}-{flags}"


def provider_options(provider: str, settings: ProviderSettings, *, qdq: bool, sha256: str,
                     cache_root: Path | None) -> dict[str, str]:
    """ONNX Runtime options for ``provider`` (strings, as ONNX Runtime takes them; ``{}`` for the CPU).

    TensorRT's engine and timing caches are on when ``settings.trt_engine_cache`` and ``cache_root`` is given
    (the folder is created here)."""
    opts: dict[str, str] = {}
    if provider == "TensorrtExecutionProvider":
        fp16, int8 = trt_precision(settings.precision, qdq)
        opts["device_id"] = str(settings.device_id)
        opts["trt_fp16_enable"] = str(fp16)
        opts["trt_int8_enable"] = str(int8)
        if int8:
            opts["trt_int8_use_native_calibration_table"] = "False"
        if settings.trt_workspace_mb is not None:
            opts["trt_max_workspace_size"] = str(settings.trt_workspace_mb * 1024 * 1024)
        if settings.trt_engine_cache and cache_root is not None:
            folder = trt_cache_folder(cache_root, sha256, fp16, int8, device_id=settings.device_id)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                return opts
            opts["trt_engine_cache_enable"] = "True"
            opts["trt_engine_cache_path"] = str(folder)
            opts["trt_timing_cache_enable"] = "True"
            opts["trt_timing_cache_path"] = str(folder)
    elif provider == "CUDAExecutionProvider":
        opts["device_id"] = str(settings.device_id)
        opts["cudnn_conv_algo_search"] = _CONV_SEARCH[settings.cudnn_conv_algo_search]
        opts["arena_extend_strategy"] = _ARENA[settings.arena_extend_strategy]
        if settings.gpu_mem_limit_mb is not None:
            opts["gpu_mem_limit"] = str(settings.gpu_mem_limit_mb * 1024 * 1024)
    return opts


def options_digest(opts: dict[str, str]) -> str:
    """A short digest of provider options (part of the graph-cache key: CUDA options change the graph)."""
    return hashlib.sha256(json.dumps(opts, sort_keys=True).encode()).hexdigest()[:8]


# -- which provider ran each node ------------------------------------------------------------------
def node_providers(profile: str | Path) -> dict[str, str]:
    """Node name → the provider that ran it, from an ONNX Runtime profile (``SessionOptions.enable_profiling``;
    the per-node ``*_kernel_time`` events carry ``provider`` in ``args``)."""
    try:
        events = json.loads(Path(profile).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read the ONNX Runtime profile {profile}: {exc}") from None
    out: dict[str, str] = {}
    for e in events if isinstance(events, list) else []:
        if not isinstance(e, dict) or e.get("cat") != "Node":
            continue
        args = e.get("args") or {}
        name = str(e.get("name", ""))
        if "provider" not in args or not name.endswith("_kernel_time"):
            continue
        out[name[: -len("_kernel_time")]] = str(args["provider"])
    return out
