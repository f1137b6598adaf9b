"""The inference runtime: an ONNX model with its card on the best execution provider installed.

:class:`ModelRuntime` loads a model (checked against its card when it has one), picks the execution
provider — TensorRT → CUDA → CPU from what ONNX Runtime reports installed, or the caller's own order —
and logs why (a provider that is not installed or fails to initialize is skipped, said once, and the next
one tried), sets the thread count from :mod:`edgefuse.config`, caches the optimized graph so the second
start is faster (keyed by model sha256, ONNX Runtime version and provider), warms up in :meth:`start`, uses
IO binding on GPU providers (outputs kept in preallocated buffers), and checks every input at the
boundary (names, shapes, dtypes, NaN/inf) before running.

GPU providers get their options from :mod:`edgefuse.infer.providers` (TensorRT engine + timing cache keyed by
model, ONNX Runtime version, GPU and precision; FP16/INT8 flags; CUDA device and allocator).  A provider that
fails when its session is created or at its first run (an engine build failure, a CUDA driver/runtime
mismatch) is skipped with one log line and a report entry, and the next one is tried.  The warm-up runs with
ONNX Runtime's profiler on, so the report says which provider ran each node; profiling is then ended and
its file removed (steady-state runs are not profiled).

File problems are told apart before ONNX Runtime sees the file (:func:`inspect_model`): not an ONNX model,
a truncated file, an opset ONNX Runtime does not support.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse import config as runtime_config
from edgefuse.errors import InputDataError, ModelError
from edgefuse.infer._kernels import _count_nonfinite
from edgefuse.infer._protobuf import NotProtobufError
from edgefuse.infer._protobuf import fields as read_fields
from edgefuse.infer.card import DTYPES, ModelCard, check_sha256, sha256_of
from edgefuse.infer.providers import (
    GPU_PROVIDERS,
    ProviderSettings,
    is_qdq,
    model_op_types,
    node_providers,
    options_digest,
    provider_options,
    trt_precision,
)

__all__ = [
    "DEFAULT_PROVIDERS",
    "MIN_OPSET",
    "PROVIDER_ALIASES",
    "ModelInfo",
    "ModelRuntime",
    "TensorSpec",
    "cache_dir",
    "card_problems",
    "describe_model",
    "inspect_model",
    "resolve_providers",
]

log = logging.getLogger("edgefuse.infer")

PROVIDER_ALIASES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "cpu": "CPUExecutionProvider"}
#: the default preference order (the first installed one that initializes is used)
DEFAULT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
#: the oldest ai.onnx opset ONNX Runtime supports
MIN_OPSET = 7
_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
              "tensor(int8)": np.int8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
              "tensor(bool)": np.bool_, "tensor(double)": np.float64}
_CARD_DTYPE = {v: k for k, v in DTYPES.items()}


@dataclass(frozen=True)
class ModelInfo:
    """What the file itself says: IR version and opset per domain (``""`` is ai.onnx)."""

    ir_version: int
    opsets: dict[str, int]
    size: int


def inspect_model(path: str | Path, data: bytes | None = None) -> ModelInfo:
    """Read a model file's header fields without ONNX Runtime.

    Raises :class:`ModelError` for a file that is not an ONNX model (a serialized ``ModelProto`` starts
    with its IR version, field 1), is truncated (ends inside a field, or before its graph), or has an
    ai.onnx opset older than :data:`MIN_OPSET`.
    """
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    if len(data) < 2 or data[0] != 0x08:
        raise ModelError(f"{path} is not an ONNX model (an ONNX file starts with its IR version; this one starts "
                         f"with {data[:8]!r})", file=path)
    try:
        fields = read_fields(data)
    except EOFError:
        raise ModelError(f"{path} is truncated ({len(data)} bytes; the file ends inside a field); re-export or "
                         "re-download it", file=path) from None
    except NotProtobufError:
        raise ModelError(f"{path} is not an ONNX model (its bytes are not a protobuf ModelProto)", file=path) from None
    numbers = {n for n, _, _ in fields}
    if 7 not in numbers:
        raise ModelError(f"{path} is truncated or not an ONNX model: it has no graph ({len(data)} bytes)", file=path)
    ir_version = next(v for n, w, v in fields if n == 1 and w == 0)
    opsets: dict[str, int] = {}
    for n, w, v in fields:
        if n == 8 and w == 2:
            try:
                sub = read_fields(v)
            except (EOFError, NotProtobufError):
                raise ModelError(f"{path}: malformed opset_import entry", file=path) from None
            domain = next((bytes(x).decode("utf-8", "replace") for m, ww, x in sub if m == 1 and ww == 2), "")
            version = next((int(x) for m, ww, x in sub if m == 2 and ww == 0), 0)
            opsets["" if domain == "ai.onnx" else domain] = version
    onnx_opset = opsets.get("")
    if onnx_opset is not None and onnx_opset < MIN_OPSET:
        raise ModelError(f"{path} uses ai.onnx opset {onnx_opset}; ONNX Runtime supports opset {MIN_OPSET} and "
                         "later (upgrade it: python -m onnx.version_converter, or `edgefuse quantize`, which "
                         "upgrades before quantizing)", file=path)
    return ModelInfo(int(ir_version), opsets, len(data))


def resolve_providers(requested: list[str] | tuple[str, ...] | None = None,
                      available: list[str] | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """``(providers to try in order, skipped)``: ``requested`` (aliases ``tensorrt``/``cuda``/``cpu`` or full
    names; default :data:`DEFAULT_PROVIDERS`) minus those ONNX Runtime does not have, each skipped one with
    its reason.  CPU is always the last resort."""
    import onnxruntime as ort

    have = list(ort.get_available_providers()) if available is None else list(available)
    wanted = [PROVIDER_ALIASES.get(p.lower(), p) for p in (requested or DEFAULT_PROVIDERS)]
    chain: list[str] = []
    skipped: list[dict[str, str]] = []
    for p in wanted:
        if p in chain:
            continue
        if p in have:
            chain.append(p)
        elif requested:  # the default order's absent GPU providers are no news
            skipped.append({"provider": p, "reason": f"not installed in this ONNX Runtime build "
                                                     f"(available: {', '.join(have)})"})
    if "CPUExecutionProvider" not in chain:
        chain.append("CPUExecutionProvider")
    return chain, skipped


def cache_dir() -> Path | None:
    """Where optimized graphs are cached: ``$EDGEFUSE_ORT_CACHE_DIR``, else ``ort`` beside the Numba cache
    (None when neither is writable: caching off)."""
    env = os.environ.get("EDGEFUSE_ORT_CACHE_DIR")
    if env:
        return Path(env)
    numba_dir = runtime_config.CONFIG.numba_cache_dir
    return None if numba_dir is None else numba_dir.parent / "ort"


@dataclass(frozen=True)
class TensorSpec:
    """One model input/output as ONNX Runtime reports it: name, shape (int or symbolic name; None: unnamed
    dynamic), element type (``float32`` … or ONNX Runtime's own name when the card format has none)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    @property
    def np_dtype(self) -> Any:
        """The numpy dtype."""
        return _NP_DTYPES.get(DTYPES.get(self.dtype, self.dtype), np.float32)


@dataclass
class _Stats:
    runs: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first_rejections: list[str] = field(default_factory=list)

    def reject(self, kind: str, text: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        if len(self.first_rejections) < 5:
            self.first_rejections.append(text)


class ModelRuntime:
    """An ONNX model ready to run.  Construction reads and checks the file (cheap); :meth:`start` creates the
    session (cached optimized graph when there is one) and warms it up.

    Args:
        model: the ``.onnx`` path.
        card: its card (inputs/outputs checked against the model; its sha256 against the file), or None.
        providers: provider preference (aliases ``tensorrt``/``cuda``/``cpu``); None: TensorRT → CUDA → CPU.
        threads: ONNX Runtime intra-op threads; None: the runtime config's ``ort_threads`` (0: ORT's default).
        spinning: whether idle intra-op threads spin (ORT's default) or sleep between runs.  Spinning saves
            a wake-up per run on cores the model has to itself; where the cores are shared (a robot's other
            nodes, a loaded machine) the spinning threads take time from the work they wait for — off there.
        cache: cache the optimized graph (in :func:`cache_dir`, or ``cache_folder``).
        io_binding: ``"auto"`` (on for GPU providers), ``"on"`` or ``"off"``.
        check_finite: refuse inputs with NaN/inf (float inputs).
        settings: GPU provider options (:class:`~edgefuse.infer.providers.ProviderSettings`; None: defaults).
        profile_warmup: profile the warm-up run to report which provider ran each node.
    """

    def __init__(self, model: str | Path, card: ModelCard | None = None, *,
                 providers: list[str] | tuple[str, ...] | None = None, threads: int | None = None,
                 spinning: bool = True, cache: bool = True, cache_folder: str | Path | None = None,
                 io_binding: str = "auto",
                 check_finite: bool = True, settings: ProviderSettings | None = None,
                 profile_warmup: bool = True) -> None:
        self.path = Path(model)
        self.card = card
        data = self.path.read_bytes() if self.path.is_file() else None
        self.info = inspect_model(self.path, data)
        self.settings = settings or ProviderSettings()
        try:
            self.qdq = is_qdq(model_op_types(data if data is not None else self.path))
        except ModelError:
            self.qdq = False  # a graph this reader cannot walk: ONNX Runtime will say what is wrong
        trt_precision(self.settings.precision, self.qdq)  # int8 on a float model: refused here
        self.profile_warmup = profile_warmup
        self.sha256 = check_sha256(card) if card is not None else sha256_of(self.path)
        self.requested = list(providers) if providers else None
        self.threads = threads
        self.spinning = spinning
        self.cache = cache
        self.cache_folder = Path(cache_folder) if cache_folder is not None else None
        if io_binding not in ("auto", "on", "off"):
            raise ModelError(f"io_binding must be auto, on or off, got {io_binding!r}")
        self.io_binding_mode = io_binding
        self.check_finite = check_finite
        self.session: Any = None
        self.provider: str | None = None
        self.provider_reason = ""
        self.skipped: list[dict[str, str]] = []
        self.options: dict[str, str] = {}
        self.nodes: dict[str, str] = {}
        self._chain: list[str] = []
        self._proven = False
        self.cache_file: Path | None = None
        self.cache_hit = False
        self.load_ms = 0.0
        self.warmup_ms = 0.0
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        self.io_binding = False
        self._binding: Any = None
        self._stats = _Stats()

    # -- start -----------------------------------------------------------------------------------
    def _options(self, optimized_to: Path | None, from_cache: bool, profile_dir: str | None = None) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ort_profile")
        so.log_severity_level = 3  # ORT's own warnings are turned into our messages
        threads = self.threads if self.threads is not None else runtime_config.CONFIG.ort_threads
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if from_cache:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        else:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if optimized_to is not None:
                so.optimized_model_filepath = str(optimized_to)
        return so

    def _cache_root(self) -> Path | None:
        if not self.cache:
            return None
        return self.cache_folder or cache_dir()

    def _cache_path(self, provider: str, options: dict[str, str]) -> Path | None:
        import onnxruntime as ort

        folder = self._cache_root()
        # TensorRT compiles the graph into engines (cached by the provider itself); ONNX Runtime cannot
        # serialize a graph with compiled nodes
        if folder is None or provider == "TensorrtExecutionProvider":
            return None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        threads = self.threads if self.threads is not None else runtime_config.CONFIG.ort_threads
        short = provider.replace("ExecutionProvider", "").lower()
        if options:
            short += f"-{options_digest(options)}"
        return folder / f"{self.sha256[:20]}.ort{ort.__version__}.{short}.t{threads}.onnx"

    def _session(self, provider: str, profile_dir: str | None) -> Any:
        import onnxruntime as ort

        options = provider_options(provider, self.settings, qdq=self.qdq, sha256=self.sha256,
                                   cache_root=self._cache_root())
        first: Any = (provider, options) if options else provider
        providers = [first] if provider == "CPUExecutionProvider" else [first, "CPUExecutionProvider"]
        self.options = options
        self.cache_hit, self.cache_file = False, None
        cached = self._cache_path(provider, options)
        if cached is not None and cached.is_file():
            try:
                sess = ort.InferenceSession(str(cached), self._options(None, True, profile_dir), providers=providers)
                self.cache_hit, self.cache_file = True, cached
                return sess
            except Exception as exc:  # a stale or damaged cache file: rebuilt below
                log.warning("graph cache %s unusable (%s); rebuilding it", cached, str(exc).splitlines()[0])
                cached.unlink(missing_ok=True)
        tmp = None if cached is None else cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        sess = ort.InferenceSession(str(self.path), self._options(tmp, False, profile_dir), providers=providers)
        if tmp is not None and cached is not None and tmp.is_file():
            os.replace(tmp, cached)
            self.cache_file = cached
        return sess

    def start(self, warmup_feeds: dict[str, npt.NDArray[Any]] | None = None) -> None:
        """Create the session on the first provider that initializes and runs, then warm it up once
        (``warmup_feeds``, or zeros of the inputs' shapes with symbolic dimensions set to the card's fixed value or
        1 — a failure of that guess is logged, not raised).  A GPU provider that fails to create its session, or
        fails its warm-up run on exact shapes, is skipped (one log line, a ``skipped_providers`` entry) for the
        next one."""
        if self.session is not None:
            return
        self._chain, self.skipped = resolve_providers(self.requested)
        for s in self.skipped:
            log.warning("%s: %s skipped: %s", self.path.name, s["provider"], s["reason"])
        self._open(0, warmup_feeds)

    def _skip(self, provider: str, when: str, error: str) -> None:
        self.skipped.append({"provider": provider, "reason": f"failed {when}: {error}", "error": error})
        log.warning("%s: %s failed %s (%s); falling back to the next provider", self.path.name, provider, when,
                    error)

    def _open(self, first: int, warmup_feeds: dict[str, npt.NDArray[Any]] | None) -> None:
        """Open the session on ``self._chain[first:]``'s first provider that works, and warm it up."""
        t0 = time.perf_counter()
        last_error = ""
        self.session = None
        for provider in self._chain[first:]:
            profile_dir = tempfile.mkdtemp(prefix="edgefuse-ort-profile-") if self.profile_warmup else None
            try:
                try:
                    sess = self._session(provider, profile_dir)
                except Exception as exc:
                    last_error = _ort_message(exc)
                    if "opset" in str(exc).lower():
                        raise ModelError(f"{self.path}: unsupported opset {self.info.opsets} for ONNX Runtime: "
                                         f"{last_error}", file=self.path) from None
                    if provider == "CPUExecutionProvider":
                        raise ModelError(f"{self.path}: ONNX Runtime cannot load the model: {last_error}",
                                         file=self.path) from None
                    self._skip(provider, "to initialize", last_error)
                    continue
                actual = sess.get_providers()[0]
                if actual != provider:
                    reason = f"failed to initialize (ONNX Runtime fell back to {actual})"
                    self.skipped.append({"provider": provider, "reason": reason, "error": reason})
                    log.warning("%s: %s %s", self.path.name, provider, reason)
                    continue
                self.session, self.provider, self._proven = sess, provider, False
                self.load_ms = (time.perf_counter() - t0) * 1e3
                self._describe()
                if self._warmup(warmup_feeds, profile_dir):
                    break
                last_error = self.skipped[-1]["error"]
                self.session = None
            finally:
                if profile_dir is not None:
                    shutil.rmtree(profile_dir, ignore_errors=True)
        if self.session is None:
            raise ModelError(f"{self.path}: no execution provider could run the model ({last_error})", file=self.path)
        if self.requested:
            self.provider_reason = f"first of the requested {self.requested} that initialized"
        else:
            self.provider_reason = "best installed of TensorRT → CUDA → CPU"
        if self.skipped:
            self.provider_reason += " (skipped: " + "; ".join(f"{s['provider']}: {s['reason']}"
                                                            for s in self.skipped) + ")"
        log.info("%s runs on %s: %s", self.path.name, self.provider, self.provider_reason)
        off = sorted(n for n, p in self.nodes.items() if p != self.provider)
        if off and self.provider in GPU_PROVIDERS:
            log.info("%s: %d of %d nodes run outside %s: %s", self.path.name, len(off), len(self.nodes),
                     self.provider, ", ".join(off[:10]) + (" …" if len(off) > 10 else ""))

    def _describe(self) -> None:
        self.inputs = [TensorSpec(i.name, tuple(i.shape), _CARD_DTYPE.get(i.type, i.type))
                       for i in self.session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(o.shape), _CARD_DTYPE.get(o.type, o.type))
                        for o in self.session.get_outputs()]
        if self.card is not None:
            problems = card_problems(self.card, self.inputs, self.outputs)
            if problems:
                self.session = None
                raise ModelError(f"{self.path} does not match its card {self.card.path}: " + "; ".join(problems),
                                 file=self.card.path)
        self.io_binding = self.io_binding_mode == "on" or (
            self.io_binding_mode == "auto" and self.provider != "CPUExecutionProvider")
        self._binding = self.session.io_binding() if self.io_binding else None

    def _warmup(self, warmup_feeds: dict[str, npt.NDArray[Any]] | None, profile_dir: str | None) -> bool:
        """Run once (profiled when ``profile_dir``); False when a GPU provider failed on exact shapes (then
        skipped and reported)."""
        feeds = warmup_feeds if warmup_feeds is not None else self._zeros()
        exact = warmup_feeds is not None or all(isinstance(d, int) for i in self.inputs for d in i.shape)
        t1 = time.perf_counter()
        ok = True
        try:
            self._run(feeds)
            self._proven = True
        except Exception as exc:
            if self.provider != "CPUExecutionProvider" and exact:
                self._skip(str(self.provider), "at its first run", _ort_message(exc))
                ok = False
            elif warmup_feeds is not None:
                raise
            else:
                log.warning("%s: warm-up with guessed shapes failed (%s); the first frame pays for it",
                            self.path.name, _ort_message(exc))
        self.warmup_ms = (time.perf_counter() - t1) * 1e3
        if profile_dir is not None:
            try:
                profile = self.session.end_profiling()
                self.nodes = node_providers(profile) if profile else {}
            except Exception as exc:  # the summary is information, never a reason to stop
                log.warning("%s: no per-node provider summary (%s)", self.path.name, _ort_message(exc))
                self.nodes = {}
        return ok

    def _zeros(self) -> dict[str, npt.NDArray[Any]]:
        """Zeros of each input's shape: a symbolic dimension takes the card's fixed value, else 1."""
        card_dims = {c.name: c.shape for c in self.card.inputs} if self.card is not None else {}

        def dim(name: str, k: int, d: Any) -> int:
            if isinstance(d, int):
                return d
            fixed = card_dims.get(name, ())
            want = fixed[k] if k < len(fixed) else 1
            return want if isinstance(want, int) else 1

        return {i.name: np.zeros(tuple(dim(i.name, k, d) for k, d in enumerate(i.shape)), dtype=i.np_dtype)
                for i in self.inputs}

    # -- run -------------------------------------------------------------------------------------
    def check_inputs(self, feeds: dict[str, npt.NDArray[Any]]) -> None:
        """Raise :class:`InputDataError` for a missing/unknown input name, a wrong dtype or shape, or (floats,
        with ``check_finite``) NaN/inf; each refusal is counted for :meth:`report`."""
        names = {i.name for i in self.inputs}
        if set(feeds) != names:
            text = f"model inputs are {sorted(names)}, got {sorted(feeds)}"
            self._stats.reject("names", text)
            raise InputDataError(text)
        symbols: dict[str, int] = {}
        for spec in self.inputs:
            x = feeds[spec.name]
            if not isinstance(x, np.ndarray) or x.dtype != np.dtype(spec.np_dtype):
                got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
                text = f"input '{spec.name}' must be {spec.dtype}, got {got}"
                self._stats.reject("dtype", text)
                raise InputDataError(text)
            ok = x.ndim == len(spec.shape)
            for d, n in zip(spec.shape, x.shape, strict=False):
                if (isinstance(d, int) and d != n) or (isinstance(d, str) and symbols.setdefault(d, n) != n):
                    ok = False
            if not ok:
                text = f"input '{spec.name}' must have shape {list(spec.shape)}, got {list(x.shape)}"
                self._stats.reject("shape", text)
                raise InputDataError(text)
            if self.check_finite and x.dtype.kind == "f":
                bad = int(_count_nonfinite(np.ascontiguousarray(x).reshape(-1)))
                if bad:
                    text = f"input '{spec.name}' has {bad} NaN/inf value(s) of {x.size}"
                    self._stats.reject("nonfinite", text)
                    raise InputDataError(text)

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Check ``feeds`` (input name → array) and run; output name → array (owned by the caller)."""
        if self.session is None:
            self.start()
        self.check_inputs(feeds)
        if self._proven or self.provider == "CPUExecutionProvider":
            return self._run(feeds)
        # a GPU provider whose warm-up could not tell (guessed shapes): its first run decides
        try:
            out = self._run(feeds)
        except Exception as exc:
            failed = str(self.provider)
            self._skip(failed, "at its first run", _ort_message(exc))
            self._open(self._chain.index(failed) + 1, feeds)
            return self._run(feeds)
        self._proven = True
        return out

    def _run(self, feeds: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        names = [o.name for o in self.outputs]
        if not self.io_binding:
            out = dict(zip(names, self.session.run(names, feeds), strict=True))
            self._stats.runs += 1
            return out
        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        for name, x in feeds.items():
            b.bind_cpu_input(name, np.ascontiguousarray(x))
        device = "cuda" if self.provider in GPU_PROVIDERS else "cpu"
        for name in names:
            b.bind_output(name, device)
        self.session.run_with_iobinding(b)
        out = dict(zip(names, b.copy_outputs_to_cpu(), strict=True))
        self._stats.runs += 1
        return out

    def node_summary(self) -> dict[str, Any]:
        """Which provider ran each node of the profiled warm-up: ``profiled`` (node count), ``by_provider``
        (counts) and ``outside_provider`` (names of the nodes not on the chosen provider, at most 50)."""
        by: dict[str, int] = {}
        for p in self.nodes.values():
            by[p] = by.get(p, 0) + 1
        off = sorted(n for n, p in self.nodes.items() if p != self.provider)
        return {"profiled": len(self.nodes), "by_provider": by, "outside_provider": off[:50]}

    def report(self) -> dict[str, Any]:
        """Provider and why, skipped providers with reasons, provider options and precision, nodes per
        provider, threads, cache, load/warm-up times, counters."""
        fp16, int8 = trt_precision(self.settings.precision, self.qdq)
        return {
            "model": str(self.path), "sha256": self.sha256, "provider": self.provider,
            "provider_reason": self.provider_reason, "skipped_providers": list(self.skipped),
            "threads": self.threads if self.threads is not None else runtime_config.CONFIG.ort_threads,
            "thread_spinning": self.spinning,
            "graph_cache": None if self.cache_file is None else str(self.cache_file), "cache_hit": self.cache_hit,
            "load_ms": round(self.load_ms, 3), "warmup_ms": round(self.warmup_ms, 3), "io_binding": self.io_binding,
            "runs": self._stats.runs, "rejected_inputs": dict(self._stats.rejected),
            "first_rejections": list(self._stats.first_rejections),
            "precision": self.settings.precision, "qdq": self.qdq,
            "trt_flags": {"fp16": fp16, "int8": int8}, "provider_options": dict(self.options),
            "trt_engine_cache": self.options.get("trt_engine_cache_path"),
            "nodes": self.node_summary() if self.profile_warmup else None,
        }


def describe_model(model: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The model's inputs and outputs as ONNX Runtime reads them (a CPU session without graph optimization:
    cheap enough for ``edgefuse validate``); :class:`ModelError` for a file it cannot load."""
    import onnxruntime as ort

    model = Path(model)
    info = inspect_model(model)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        what = f"unsupported opset {info.opsets}: " if "opset" in str(exc).lower() else ""
        raise ModelError(f"ONNX Runtime cannot load {model}: {what}{_ort_message(exc)}", file=model) from None
    ins = [TensorSpec(i.name, tuple(i.shape), _CARD_DTYPE.get(i.type, i.type)) for i in sess.get_inputs()]
    outs = [TensorSpec(o.name, tuple(o.shape), _CARD_DTYPE.get(o.type, o.type)) for o in sess.get_outputs()]
    return ins, outs


def _ort_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:400] if text else type(exc).__name__


def card_problems(card: ModelCard, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> list[str]:
    """Differences between a card and the model: names, ranks, fixed dimensions, dtypes.

    A card may fix a dimension the model leaves symbolic (the card states what the pipeline feeds); it may not
    contradict a fixed one.
    """
    problems = []
    for kind, declared, actual in (("input", card.inputs, inputs), ("output", card.outputs, outputs)):
        by_name = {t.name: t for t in actual}
        names = [d.name for d in declared]
        for d in declared:
            t = by_name.get(d.name)
            if t is None:
                problems.append(f"card {kind} '{d.name}' is not a model {kind} (model {kind}s: "
                                f"{', '.join(by_name)})")
                continue
            if d.dtype != t.dtype:
                problems.append(f"{kind} '{d.name}': card says {d.dtype}, model has {t.dtype}")
            if len(d.shape) != len(t.shape) or any(isinstance(c, int) and isinstance(m, int) and c != m
                                                   for c, m in zip(d.shape, t.shape, strict=False)):
                problems.append(f"{kind} '{d.name}': card shape {list(d.shape)}, model shape {list(t.shape)}")
        missing = [t.name for t in actual if t.name not in names]
        if missing and kind == "input":
            problems.append(f"model input(s) {missing} are not in the card")
    return problems
