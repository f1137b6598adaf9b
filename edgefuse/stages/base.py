"""The Stage base class: small objects with a lifecycle, declared input/output types and typed parameters.

Lifecycle: ``construct`` (validate params, allocate buffers) → :meth:`Stage.start` (open resources, compile
kernels, load models; timed and reported apart from steady state) → :meth:`Stage.process` per
synchronized set (no allocation on the hot path where avoidable) → :meth:`Stage.stop`.

New stage types register with :func:`register_stage`; third-party packages may also expose them through
the ``edgefuse.stages`` entry-point group (loaded lazily by :func:`stage_class`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

from edgefuse.errors import ConfigError, PipelineError
from edgefuse.msgs.edges import compatible, edge_types, normalize_msgtype, payload_class, type_of_msgtype
from edgefuse.stages.params import NoParams, StageParams, param

__all__ = [
    "Stage",
    "StageParams",
    "compatible",
    "edge_types",
    "known_stage_types",
    "normalize_msgtype",
    "param",
    "payload_class",
    "register_stage",
    "stage_class",
    "type_of_msgtype",
]


class Stage:
    """Base class of all pipeline stages.

    Subclasses set ``type_name``, ``inputs`` (port → edge type; a trailing ``?`` marks an optional port),
    ``outputs`` (port → edge type) and ``Params`` (a :class:`~edgefuse.stages.params.StageParams` dataclass
    declaring every parameter with its type, default, unit and range), annotate ``params`` with that
    class, and implement :meth:`process`.  The constructor checks the parameters against the declaration
    and stores the typed result in ``self.params``; ``rig`` is the loaded :class:`edgefuse.rig.Rig` (or
    None when the pipeline has none).
    """

    type_name: ClassVar[str] = ""
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {}
    Params: ClassVar[type[StageParams]] = NoParams
    #: parameters that name files: a relative path is made relative to the pipeline file's folder on load
    path_params: ClassVar[tuple[str, ...]] = ()
    #: whether :meth:`ports` depends on the parameters (the ports are then not listed by the JSON Schema)
    dynamic_ports: ClassVar[bool] = False
    #: the checked, typed parameters (an instance of ``Params``)
    params: StageParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        self.name = name
        self.rig = rig
        self.params = self.parse_params(params, name)
        self.input_frames = {}

    #: port → calibration frame of the pipeline input wired to it (None when the source is a stage output or
    #: the input names no frame); set by the runner before :meth:`start`.
    input_frames: dict[str, str | None]

    @classmethod
    def parse_params(cls, params: Mapping[str, Any] | StageParams | None, name: str = "") -> Any:
        """``params`` as a checked ``cls.Params`` instance; raises :class:`PipelineError` naming every problem."""
        if isinstance(params, StageParams):
            if not isinstance(params, cls.Params):
                raise PipelineError(f"stage '{name}': parameters of type {type(params).__name__}, "
                                    f"expected {cls.Params.__name__}")
            problems = params.check()
            if problems:
                raise PipelineError(f"stage '{name}': " + "; ".join(problems))
            return params
        parsed, problems = cls.Params.parse(params or {}, f"stage type '{cls.type_name}'")
        if parsed is None:
            raise PipelineError(f"stage '{name}': " + "; ".join(problems))
        return parsed

    @classmethod
    def ports(cls, params: Any) -> tuple[dict[str, str], dict[str, str]]:
        """``(inputs, outputs)`` port → edge type of a stage with these (checked) parameters: the class's
        ``inputs``/``outputs``, unless the ports depend on the parameters (``onnx_model``: the model card's
        tensors).  Raises an :class:`~edgefuse.errors.EdgefuseError` when the parameters cannot say."""
        return dict(cls.inputs), dict(cls.outputs)

    def start(self) -> None:
        """Open resources, compile kernels, load models.  Called once before the first :meth:`process`."""

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        """Process one synchronized set; ``inputs`` maps port → payload (optional ports may be absent).

        Returns port → payload for this stage's outputs (an output may be omitted when there is none).
        """
        raise NotImplementedError

    def stop(self) -> None:
        """Release resources."""

    def report(self) -> dict[str, Any] | None:
        """Stage-specific counters for the run report (``stages.<name>.details``); None when there are none."""
        return None

    @classmethod
    def check_rig(cls, params: Any, rig: Any, frames: Mapping[str, str | None]) -> list[str]:
        """Load-time calibration check: problems with what this stage needs from ``rig`` (cameras, frames).

        ``params`` is a checked ``cls.Params`` instance; ``frames`` maps each input port to the calibration
        frame of the pipeline input wired to it.
        """
        return []

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Problems with ``params`` (unknown name, wrong type, out of range, missing required, and the
        declaration's cross-field checks) — all of them."""
        return cls.Params.parse(params, f"stage type '{cls.type_name}'")[1]

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON-able description for ``edgefuse stages``: ports with edge types, and every parameter."""
        doc = (cls.__doc__ or "").strip()
        return {
            "type": cls.type_name,
            "module": cls.__module__,
            "summary": doc.split("\n\n")[0].replace("\n", " ") if doc else "",
            "inputs": [{"port": p.rstrip("?"), "type": t, "optional": p.endswith("?")} for p, t in cls.inputs.items()],
            "outputs": [{"port": p, "type": t} for p, t in cls.outputs.items()],
            "params": cls.Params.describe(),
        }


_REGISTRY: dict[str, type[Stage]] = {}
S = TypeVar("S", bound=type[Stage])


def register_stage(type_name: str) -> Callable[[S], S]:
    """Class decorator: make a Stage subclass available under ``type_name`` in pipeline YAML."""

    def deco(cls: S) -> S:
        if type_name in _REGISTRY and _REGISTRY[type_name] is not cls:
            raise ConfigError(f"stage type '{type_name}' registered twice")
        cls.type_name = type_name
        _REGISTRY[type_name] = cls
        return cls

    return deco


_BUILTINS_LOADED = False


def _load_builtin() -> None:
    """Import every built-in stage module (``edgefuse/stages/*.py`` except ``base``, ``params`` and private
    ones) once."""
    global _BUILTINS_LOADED  # noqa: PLW0603
    if _BUILTINS_LOADED:
        return
    import importlib
    import pkgutil

    import edgefuse.stages as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in ("base", "params") and not info.name.startswith("_"):
            importlib.import_module(f"edgefuse.stages.{info.name}")
    _BUILTINS_LOADED = True


def stage_class(type_name: str) -> type[Stage] | None:
    """The Stage class registered for ``type_name`` (built-ins, then ``edgefuse.stages`` entry points)."""
    _load_builtin()
    if type_name in _REGISTRY:
        return _REGISTRY[type_name]
    for ep in entry_points(group="edgefuse.stages"):
        if ep.name == type_name:
            cls = ep.load()
            if isinstance(cls, type) and issubclass(cls, Stage):
                cls.type_name = type_name
                _REGISTRY[type_name] = cls
                return cls
    return None


def known_stage_types() -> list[str]:
    """Names of every stage type: built-ins and those of the ``edgefuse.stages`` entry points."""
    _load_builtin()
    return sorted(set(_REGISTRY) | {ep.name for ep in entry_points(group="edgefuse.stages")})
