"""Typed stage parameters: one declaration gives the type, default, unit, valid range and doc of each.

A stage declares its parameters as a frozen, keyword-only dataclass derived from :class:`StageParams`;
each field's annotation is its type and :func:`param` its default and constraints::

    @dataclass(frozen=True, kw_only=True)
    class ProjectionParams(StageParams):
        camera: str = param(doc="rig camera name", min_len=1)            # no default: required
        min_depth_m: float = param(0.1, unit="m", gt=0, le=1e4, doc="nearest depth kept")
        method: Literal["hard", "linear"] = param("hard")                  # a choice
        x_range: tuple[float, float] = param((0.0, 70.4), unit="m")      # a YAML list of 2 numbers
        cloud_frame: str | None = param(None, min_len=1)                  # null allowed

Everything that checks parameters derives from that declaration: :meth:`StageParams.parse` (types,
ranges, choices, lengths, required and unknown names, then the class's own cross-field
:meth:`StageParams.check`), the JSON Schema of :meth:`StageParams.json_schema` and the listing of
``edgefuse stages`` (:meth:`StageParams.describe`).  Supported types: ``bool``, ``int``, ``float`` (an
integer is accepted and converted), ``str``, ``Literal[...]``, ``tuple[T, ...]`` / ``tuple[T, T]``
(YAML lists, stored as tuples), ``dict[str, Any]`` (a free mapping checked by :meth:`StageParams.check`),
``Any``, and ``X | None``.  Floats must be finite unless ``finite=False`` (±inf) or ``nan=True``.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from edgefuse.errors import ParameterError

__all__ = ["Declared", "Kind", "NoParams", "ParamInfo", "StageParams", "param"]

_META = "edgefuse.param"
P = TypeVar("P", bound="StageParams")


@dataclass(frozen=True)
class ParamInfo:
    """Constraints and documentation of one parameter (kept in the dataclass field's metadata)."""

    doc: str = ""
    unit: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_len: int | None = None
    max_len: int | None = None
    finite: bool = True
    nan: bool = False
    unique: bool = False
    schema: Mapping[str, Any] | None = None  # JSON Schema of a free mapping's contents


def param(
    default: Any = MISSING,
    *,
    doc: str = "",
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_len: int | None = None,
    max_len: int | None = None,
    finite: bool = True,
    nan: bool = False,
    unique: bool = False,
    schema: Mapping[str, Any] | None = None,
) -> Any:
    """A parameter field: ``default`` (omitted: required), doc, unit and constraints.

    ``ge``/``gt``/``le``/``lt`` bound numbers (and the numbers inside lists); ``min_len``/``max_len`` bound
    the length of strings, lists and mappings; ``unique`` forbids repeated list items; ``finite=False``
    lets a float be ±infinity (outside the range checks) and ``nan=True`` lets it be NaN.
    """
    info = ParamInfo(doc=doc, unit=unit, ge=ge, gt=gt, le=le, lt=lt, min_len=min_len, max_len=max_len,
                     finite=finite, nan=nan, unique=unique, schema=schema)
    if default is MISSING:
        return field(metadata={_META: info})
    return field(default=default, metadata={_META: info})


@dataclass(frozen=True)
class Kind:
    """The shape of a parameter's value, read from its annotation."""

    base: Literal["bool", "int", "float", "str", "choice", "list", "map", "any"]
    optional: bool = False
    choices: tuple[Any, ...] = ()
    item: Kind | None = None
    length: int | None = None  # fixed list length (``tuple[float, float]``)

    def text(self) -> str:
        """Short human-readable type (``float``, ``list[float] (2)``, ``hard | linear``, ``str | None``)."""
        if self.base == "choice":
            core = " | ".join(_show(c) for c in self.choices)
        elif self.base == "list":
            assert self.item is not None
            core = f"list[{self.item.text()}]" + (f" ({self.length})" if self.length is not None else "")
        elif self.base == "map":
            core = "mapping"
        else:
            core = self.base
        return f"{core} | None" if self.optional else core


@dataclass(frozen=True)
class Declared:
    """One declared parameter."""

    name: str
    kind: Kind
    info: ParamInfo
    default: Any
    required: bool


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _kind(annotation: Any) -> Kind:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(get_args(annotation)) != 2:
            raise ParameterError(f"unsupported parameter type {annotation!r} (only X | None)")
        inner = _kind(args[0])
        return Kind(inner.base, True, inner.choices, inner.item, inner.length)
    if origin is Literal:
        return Kind("choice", choices=tuple(get_args(annotation)))
    if origin is tuple:
        items = get_args(annotation)
        if len(items) == 2 and items[1] is Ellipsis:
            return Kind("list", item=_kind(items[0]))
        if not items or any(a != items[0] for a in items):
            raise ParameterError(f"unsupported parameter type {annotation!r} (tuple[T, ...] or tuple[T, T, ...])")
        return Kind("list", item=_kind(items[0]), length=len(items))
    if origin in (dict, Mapping, typing.Mapping) or annotation in (dict, Mapping):
        return Kind("map")
    if annotation is Any:
        return Kind("any")
    scalars: dict[Any, Kind] = {bool: Kind("bool"), int: Kind("int"), float: Kind("float"), str: Kind("str")}
    if annotation in scalars:
        return scalars[annotation]
    raise ParameterError(f"unsupported parameter type {annotation!r}")


def _range_text(info: ParamInfo, unit: str = "") -> str:
    parts = []
    if info.gt is not None:
        parts.append(f"> {info.gt:g}")
    if info.ge is not None:
        parts.append(f">= {info.ge:g}")
    if info.lt is not None:
        parts.append(f"< {info.lt:g}")
    if info.le is not None:
        parts.append(f"<= {info.le:g}")
    text = " and ".join(parts)
    return f"{text} {unit}".rstrip() if text else ""


def _in_range(value: float, info: ParamInfo) -> bool:
    return not ((info.gt is not None and not value > info.gt) or (info.ge is not None and not value >= info.ge)
                or (info.lt is not None and not value < info.lt) or (info.le is not None and not value <= info.le))


def _number_problem(name: str, value: float, info: ParamInfo, *, is_float: bool) -> str | None:
    if is_float and math.isnan(value):
        return None if info.nan else f"parameter '{name}' must be a number, got {value!r}"
    if is_float and math.isinf(value):
        return None if not info.finite else f"parameter '{name}' must be a finite number, got {value!r}"
    if not _in_range(value, info):
        return f"parameter '{name}' must be {_range_text(info, info.unit)}, got {value!r}"
    return None


def _convert(name: str, kind: Kind, info: ParamInfo, value: Any) -> tuple[Any, list[str]]:  # noqa: PLR0911
    """``(value converted to its declared type, problems)``."""
    if value is None:
        if kind.optional or kind.base == "any":
            return None, []
        return None, [f"parameter '{name}' must be {kind.text()}, got None"]
    base = kind.base
    if base == "any":
        return _plain(value), []
    if base == "bool":
        if not isinstance(value, bool):
            return None, [f"parameter '{name}' must be bool, got {value!r}"]
        return value, []
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, [f"parameter '{name}' must be int, got {value!r}"]
        problem = _number_problem(name, value, info, is_float=False)
        return int(value), [problem] if problem else []
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, [f"parameter '{name}' must be float, got {value!r}"]
        try:
            number = float(value)
        except OverflowError:
            return None, [f"parameter '{name}' must be {_range_text(info, info.unit) or 'a float'}, got {value!r}"]
        problem = _number_problem(name, number, info, is_float=True)
        return number, [problem] if problem else []
    if base == "str":
        if not isinstance(value, str):
            return None, [f"parameter '{name}' must be str, got {value!r}"]
        return value, _length_problems(name, value, info, "character")
    if base == "choice":
        for choice in kind.choices:
            if type(choice) is type(value) and choice == value:
                return value, []
        options = ", ".join(_show(c) for c in kind.choices)
        return None, [f"parameter '{name}' must be one of {options}, got {value!r}"]
    if base == "map":
        if not isinstance(value, Mapping):
            return None, [f"parameter '{name}' must be a mapping, got {value!r}"]
        return _plain(value), _length_problems(name, value, info, "entry")
    assert kind.item is not None
    if not isinstance(value, list | tuple):
        what = f"a list of {kind.length} {kind.item.text()}" if kind.length else f"a list of {kind.item.text()}"
        return None, [f"parameter '{name}' must be {what}, got {value!r}"]
    if kind.length is not None and len(value) != kind.length:
        return None, [f"parameter '{name}' must have {kind.length} elements, got {len(value)}"]
    problems = _length_problems(name, value, info, "element")
    item_info = ParamInfo(unit=info.unit, ge=info.ge, gt=info.gt, le=info.le, lt=info.lt, finite=info.finite,
                          nan=info.nan, min_len=1 if kind.item.base == "str" else None)
    out = []
    for i, item in enumerate(value):
        converted, item_problems = _convert(f"{name}[{i}]", kind.item, item_info, item)
        problems += item_problems
        out.append(converted)
    if info.unique and not problems:
        try:
            repeated = len(set(out)) != len(out)
        except TypeError:
            repeated = False
        if repeated:
            problems.append(f"parameter '{name}' must hold unique elements, got {list(value)!r}")
    return tuple(out), problems


def _length_problems(name: str, value: Any, info: ParamInfo, unit: str) -> list[str]:
    n = len(value)
    if info.min_len is not None and n < info.min_len:
        if info.min_len == 1:
            return [f"parameter '{name}' must not be empty"]
        return [f"parameter '{name}' needs at least {info.min_len} {unit}s, got {n}"]
    if info.max_len is not None and n > info.max_len:
        return [f"parameter '{name}' takes at most {info.max_len} {unit}s, got {n}"]
    return []


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, kw_only=True)
class StageParams:
    """Base of every stage's parameter dataclass (``@dataclass(frozen=True, kw_only=True)`` subclasses)."""

    _declared_cache: ClassVar[dict[type, tuple[Declared, ...]]] = {}

    @classmethod
    def declared(cls) -> tuple[Declared, ...]:
        """The declared parameters, in declaration order."""
        cached = StageParams._declared_cache.get(cls)
        if cached is not None:
            return cached
        hints = get_type_hints(cls)
        out = []
        for f in fields(cls):
            info = f.metadata.get(_META, ParamInfo())
            required = f.default is MISSING
            default = None if required else f.default
            out.append(Declared(f.name, _kind(hints[f.name]), info, default, required))
        result = tuple(out)
        StageParams._declared_cache[cls] = result
        return result

    @classmethod
    def parse(cls: type[P], raw: Mapping[Any, Any] | None, owner: str = "the stage") -> tuple[P | None, list[str]]:
        """Check ``raw`` (parameter name → value, as read from YAML) against the declaration.

        Returns ``(instance, [])`` or ``(None, problems)``: every unknown name, missing required
        parameter, wrong type, value out of range, and (when those pass) the problems of :meth:`check`.
        ``owner`` names the stage type in messages (``stage type 'wbf'``).
        """
        raw = {} if raw is None else raw
        declared = {d.name: d for d in cls.declared()}
        problems = []
        for key in raw:
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                problems.append(f"{owner} has no parameter '{key}' (known: {known})")
        values: dict[str, Any] = {}
        for name, decl in declared.items():
            if name not in raw:
                if decl.required:
                    problems.append(f"{owner} needs parameter '{name}'")
                continue
            value, value_problems = _convert(name, decl.kind, decl.info, raw[name])
            problems += value_problems
            values[name] = value
        if problems:
            return None, problems
        instance = cls(**values)
        problems = instance.check()
        return (None, problems) if problems else (instance, [])

    @classmethod
    def defaults(cls: type[P]) -> P | None:
        """The parameters with every default (None when a parameter is required)."""
        instance, problems = cls.parse({})
        return None if problems else instance

    def check(self) -> list[str]:
        """Problems that involve several parameters (override; called after every value passed)."""
        return []

    def replace(self: P, **changes: Any) -> P:
        """A copy with some values changed (not re-checked)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

    # -- documentation --------------------------------------------------------------------------
    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the ``params:`` mapping."""
        props: dict[str, Any] = {}
        required = []
        for d in cls.declared():
            sub = _kind_schema(d.kind, d.info)
            text = d.info.doc + (f" [{d.info.unit}]" if d.info.unit else "")
            if text:
                sub = {"description": text, **sub}
            if not d.required:
                sub["default"] = _json_default(d.default)
            else:
                required.append(d.name)
            props[d.name] = sub
        schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One JSON-able entry per parameter: name, type, default, required, unit, range, doc."""
        out = []
        for d in cls.declared():
            rng = _range_text(d.info)
            if d.info.min_len == 1 and d.info.max_len is None:
                rng = (rng + "; " if rng else "") + "non-empty"
            elif d.info.min_len is not None or d.info.max_len is not None:
                lo = d.info.min_len if d.info.min_len is not None else 0
                hi = d.info.max_len if d.info.max_len is not None else "any"
                rng = (rng + "; " if rng else "") + f"length {lo}..{hi}"
            out.append({"name": d.name, "type": d.kind.text(), "required": d.required,
                        "default": None if d.required else _json_default(d.default), "unit": d.info.unit,
                        "range": rng, "doc": d.info.doc})
        return out


def _kind_schema(kind: Kind, info: ParamInfo) -> dict[str, Any]:
    schema: dict[str, Any]
    if kind.base == "any":
        return {}
    if kind.base == "bool":
        schema = {"type": "boolean"}
    elif kind.base in ("int", "float"):
        schema = {"type": "integer" if kind.base == "int" else "number"}
        if info.ge is not None:
            schema["minimum"] = info.ge
        if info.gt is not None:
            schema["exclusiveMinimum"] = info.gt
        if info.le is not None:
            schema["maximum"] = info.le
        if info.lt is not None:
            schema["exclusiveMaximum"] = info.lt
    elif kind.base == "str":
        schema = {"type": "string"}
        if info.min_len is not None:
            schema["minLength"] = info.min_len
        if info.max_len is not None:
            schema["maxLength"] = info.max_len
    elif kind.base == "choice":
        schema = {"enum": list(kind.choices)}
    elif kind.base == "map":
        schema = dict(info.schema) if info.schema is not None else {"type": "object"}
        if info.min_len is not None:
            schema["minProperties"] = info.min_len
        if info.max_len is not None:
            schema["maxProperties"] = info.max_len
    else:
        assert kind.item is not None
        item_info = ParamInfo(ge=info.ge, gt=info.gt, le=info.le, lt=info.lt, finite=info.finite,
                              min_len=1 if kind.item.base == "str" else None)
        schema = {"type": "array", "items": _kind_schema(kind.item, item_info)}
        lo = kind.length if kind.length is not None else info.min_len
        hi = kind.length if kind.length is not None else info.max_len
        if lo is not None:
            schema["minItems"] = lo
        if hi is not None:
            schema["maxItems"] = hi
        if info.unique:
            schema["uniqueItems"] = True
    if kind.optional:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


@dataclass(frozen=True, kw_only=True)
class NoParams(StageParams):
    """Parameters of a stage that takes none."""
