"""The edgefuse rig YAML file: load (with full validation), save, merge.

Format (``edgefuse_rig: 1``; full description in ``edgefuse/rig/FORMAT.md``)::

    edgefuse_rig: 1
    base_frame: base_link
    frames:                          # static transforms, parent <- child (T_parent_from_child)
      - parent: base_link
        child: velodyne
        translation: [0.8, 0.0, 1.7]           # metres, child origin in the parent frame
        rotation: {quaternion_xyzw: [0, 0, 0, 1]}   # or {rpy_deg: [r, p, y]} or {matrix: [[..],[..],[..]]}
    cameras:
      cam_left:
        frame_id: cam_left
        model: plumb_bob             # pinhole | plumb_bob | rational_polynomial | equidistant
        width: 672
        height: 376
        K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]   # or intrinsics: [fx, fy, cx, cy]
        D: [k1, k2, p1, p2, k3]
    sensors:
      lidar: {frame_id: velodyne, topic: /velodyne_points, kind: lidar, time_offset_ns: 0}

:func:`load_rig` validates everything and reports every problem at once, each with file and line,
in one :class:`edgefuse.errors.ValidationError` (``kind="calibration"``).  Problems are collected with the
:class:`edgefuse._yaml.Collector` that pipeline and synchronizer YAML use too, and the file is read by
:func:`edgefuse._yaml.load_yaml` (regular UTF-8 files up to a size limit, aliases bounded).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from edgefuse._yaml import Collector, line_of, loads_yaml, read_text
from edgefuse.errors import CalibrationError, Problem, ValidationError
from edgefuse.rig.camera import D_LENGTH, CameraModel, camera_problems
from edgefuse.rig.rig import SENSOR_KINDS, Rig, Sensor
from edgefuse.rig.transform import FrameGraph, Transform, rotation_from_quat_xyzw, rotation_from_rpy

FORMAT_VERSION = 1
_TOP_KEYS = ("edgefuse_rig", "base_frame", "frames", "cameras", "sensors")
_FRAME_KEYS = ("parent", "child", "translation", "rotation")
_ROTATION_KEYS = ("quaternion_xyzw", "rpy_deg", "matrix")
_CAMERA_KEYS = ("frame_id", "model", "width", "height", "K", "intrinsics", "D")
_SENSOR_KEYS = ("frame_id", "topic", "kind", "time_offset_ns")
#: largest |translation component| [m] (keeps every composed transform finite)
MAX_TRANSLATION_M = 1e9
#: largest camera side [px] and image [px] (the depth image of a projection is allocated at this size)
MAX_IMAGE_SIDE = 32_768
MAX_IMAGE_PIXELS = 1 << 27
#: largest |time offset| [ns] (one day)
MAX_TIME_OFFSET_NS = 86_400 * 1_000_000_000


_Ctx = Collector  # the rig checks record problems with explicit lines (Collector.at)
_line = line_of


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _numbers(ctx: _Ctx, v: Any, n: int, what: str, line: int | None) -> list[float] | None:
    if not isinstance(v, list):
        ctx.at(f"{what} must be a list of {n} numbers, got {type(v).__name__}", line)
        return None
    if len(v) != n:
        ctx.at(f"{what} must have {n} elements, got {len(v)}", line)
        return None
    bad = [x for x in v if not _is_num(x)]
    if bad:
        ctx.at(f"{what} must contain only finite numbers, got {bad[0]!r}", line)
        return None
    return [float(x) for x in v]


def _bounded(ctx: _Ctx, values: list[float] | None, limit: float, what: str, line: int | None) -> list[float] | None:
    if values is not None and any(abs(x) > limit for x in values):
        ctx.at(f"{what} must be within ±{limit:g}, got {values}", line)
        return None
    return values


def _matrix(  # noqa: PLR0917
    ctx: _Ctx, v: Any, rows: int, cols: int, what: str, line: int | None
) -> np.ndarray | None:
    if not isinstance(v, list) or len(v) != rows:
        n = len(v) if isinstance(v, list) else type(v).__name__
        ctx.at(f"{what} must be a list of {rows} rows, got {n}", line)
        return None
    out = []
    for i, row in enumerate(v):
        r = _numbers(ctx, row, cols, f"{what} row {i}", _line(v, i) if isinstance(v, CommentedSeq) else line)
        if r is None:
            return None
        out.append(r)
    return np.array(out, dtype=np.float64)


def _check_keys(ctx: _Ctx, m: CommentedMap, allowed: tuple[str, ...], where: str) -> None:
    for k in m:
        if k not in allowed:
            ctx.at(f"unknown key {k!r} in {where} (allowed: {', '.join(allowed)})", _line(m, k))


def _require(ctx: _Ctx, m: CommentedMap, key: str, where: str) -> bool:
    if key not in m:
        ctx.at(f"{where}: missing required key {key!r}", _line(m))
        return False
    return True


def _str(ctx: _Ctx, m: CommentedMap, key: str, where: str) -> str | None:
    v = m.get(key)
    if not isinstance(v, str) or not v:
        ctx.at(f"{where}: {key} must be a non-empty string, got {v!r}", _line(m, key))
        return None
    return v


def _parse_rotation(ctx: _Ctx, v: Any, line: int | None, where: str, normalize: bool) -> np.ndarray | None:
    if not isinstance(v, CommentedMap) or len(v) != 1:
        ctx.at(f"{where}: rotation must be a mapping with exactly one of {', '.join(_ROTATION_KEYS)}", line)
        return None
    (kind, val), = v.items()
    kline = _line(v, kind)
    try:
        if kind == "quaternion_xyzw":
            q = _bounded(ctx, _numbers(ctx, val, 4, f"{where}: quaternion_xyzw", kline), 1e6,
                         f"{where}: quaternion_xyzw", kline)
            return None if q is None else rotation_from_quat_xyzw(q)
        if kind == "rpy_deg":
            a = _numbers(ctx, val, 3, f"{where}: rpy_deg", kline)
            return None if a is None else rotation_from_rpy(a, degrees=True)
        if kind == "matrix":
            m = _matrix(ctx, val, 3, 3, f"{where}: rotation matrix", kline)
            if m is not None and float(np.abs(m).max()) > 2.0:
                ctx.at(f"{where}: rotation matrix entries must be within [-1, 1], got {m.tolist()}", kline)
                return None
            return m
    except CalibrationError as exc:
        ctx.at(f"{where}: {exc.message}", kline)
        return None
    ctx.at(f"{where}: unknown rotation form {kind!r} (expected one of: {', '.join(_ROTATION_KEYS)})", kline)
    return None


def _parse_frames(ctx: _Ctx, node: Any, graph: FrameGraph, normalize: bool) -> dict[str, int | None]:
    """Fill ``graph``; return child frame → line of its entry."""
    lines: dict[str, int | None] = {}
    if node is None:
        return lines
    if not isinstance(node, CommentedSeq):
        ctx.at("frames must be a list of {parent, child, translation, rotation} entries", _line(node))
        return lines
    for i, e in enumerate(node):
        eline = _line(node, i)
        if not isinstance(e, CommentedMap):
            ctx.at(f"frames[{i}] must be a mapping, got {type(e).__name__}", eline)
            continue
        where = f"frames[{i}]"
        _check_keys(ctx, e, _FRAME_KEYS, where)
        if not all([_require(ctx, e, k, where) for k in _FRAME_KEYS]):
            continue
        parent, child = _str(ctx, e, "parent", where), _str(ctx, e, "child", where)
        tline = _line(e, "translation")
        t = _bounded(ctx, _numbers(ctx, e["translation"], 3, f"{where} ({child}): translation", tline),
                     MAX_TRANSLATION_M, f"{where} ({child}): translation [m]", tline)
        R = _parse_rotation(ctx, e["rotation"], _line(e, "rotation"), f"{where} ({child})", normalize)
        if parent is None or child is None:
            continue
        T = Transform.identity()  # placeholder keeps the tree checks going when the values are bad
        if t is not None and R is not None:
            try:
                T = Transform.from_rt(R, t, normalize=normalize)
            except CalibrationError as exc:
                ctx.at(f"{where} ({parent} <- {child}): {exc.message}", _line(e, "rotation"))
        try:
            graph.add(parent, child, T)
        except CalibrationError as exc:
            ctx.at(f"{where}: {exc.message}", eline)
            continue
        lines.setdefault(parent, eline)
        lines[child] = eline
    return lines


def _parse_camera(ctx: _Ctx, name: str, c: Any, line: int | None) -> CameraModel | None:
    where = f"camera {name!r}"
    if not isinstance(c, CommentedMap):
        ctx.at(f"{where} must be a mapping, got {type(c).__name__}", line)
        return None
    _check_keys(ctx, c, _CAMERA_KEYS, where)
    ok = all([_require(ctx, c, k, where) for k in ("frame_id", "model", "width", "height")])
    frame = _str(ctx, c, "frame_id", where) if "frame_id" in c else None
    model = c.get("model")
    if model is not None and not isinstance(model, str):
        ctx.at(f"{where}: model must be a model name, got {model!r}", _line(c, "model"))
        return None
    for side in ("width", "height"):
        v = c.get(side)
        if isinstance(v, int) and not isinstance(v, bool) and v > MAX_IMAGE_SIDE:
            ctx.at(f"{where}: {side} must be at most {MAX_IMAGE_SIDE} px, got {v}", _line(c, side))
            return None
    w, h = c.get("width"), c.get("height")
    if (isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool) and not isinstance(h, bool)
            and w > 0 and h > 0 and w * h > MAX_IMAGE_PIXELS):
        ctx.at(f"{where}: width x height must be at most {MAX_IMAGE_PIXELS} px, got {w}x{h}", _line(c, "width"))
        return None
    K: np.ndarray | None = None
    if "K" in c and "intrinsics" in c:
        ctx.at(f"{where}: give either K or intrinsics, not both", _line(c, "intrinsics"))
        ok = False
    elif "K" in c:
        K = _matrix(ctx, c["K"], 3, 3, f"{where}: K", _line(c, "K"))
    elif "intrinsics" in c:
        v = _numbers(ctx, c["intrinsics"], 4, f"{where}: intrinsics [fx, fy, cx, cy]", _line(c, "intrinsics"))
        if v is not None:
            K = np.array([[v[0], 0.0, v[2]], [0.0, v[1], v[3]], [0.0, 0.0, 1.0]])
    else:
        ctx.at(f"{where}: missing K (or intrinsics: [fx, fy, cx, cy])", line)
        ok = False
    D: list[float] | None = []
    if "D" in c:
        given = len(c["D"]) if isinstance(c["D"], list) else 0
        n = D_LENGTH.get(model, given) if isinstance(model, str) else given
        D = _numbers(ctx, c["D"], n, f"{where}: D for model {model}", _line(c, "D"))
    elif isinstance(model, str) and D_LENGTH.get(model, 0) > 0:
        ctx.at(f"{where}: model {model} needs D with {D_LENGTH[model]} coefficients", line)
        ok = False
    probs = camera_problems(model, K if K is not None else np.eye(3), D if D is not None else
                            np.zeros(D_LENGTH.get(model, 0) if isinstance(model, str) else 0),
                            c.get("width", 1), c.get("height", 1))
    for fld, msg in probs:
        if (fld == "K" and K is None) or (fld == "D" and D is None):
            continue
        if fld == "model" and "model" not in c:
            continue
        key = "intrinsics" if fld == "K" and "intrinsics" in c else fld
        ctx.at(f"{where}: {msg}", _line(c, key))
    if probs or not ok or frame is None or K is None or D is None:
        return None
    return CameraModel(name=name, frame_id=frame, width=int(c["width"]), height=int(c["height"]),
                       K=K, D=np.asarray(D, dtype=np.float64), model=str(model))


def _parse_sensor(ctx: _Ctx, name: str, s: Any, line: int | None) -> Sensor | None:
    where = f"sensor {name!r}"
    if not isinstance(s, CommentedMap):
        ctx.at(f"{where} must be a mapping, got {type(s).__name__}", line)
        return None
    _check_keys(ctx, s, _SENSOR_KEYS, where)
    if not all([_require(ctx, s, k, where) for k in ("frame_id", "kind")]):
        return None
    frame, kind = _str(ctx, s, "frame_id", where), _str(ctx, s, "kind", where)
    topic = _str(ctx, s, "topic", where) if "topic" in s else None
    off = s.get("time_offset_ns", 0)
    bad = False
    if kind is not None and kind not in SENSOR_KINDS:
        ctx.at(f"{where}: unknown kind {kind!r} (expected one of: {', '.join(SENSOR_KINDS)})",
                _line(s, "kind"))
        bad = True
    if isinstance(off, bool) or not isinstance(off, int):
        ctx.at(f"{where}: time_offset_ns must be an integer number of nanoseconds, got {off!r}",
                _line(s, "time_offset_ns"))
        bad = True
    elif abs(off) > MAX_TIME_OFFSET_NS:
        ctx.at(f"{where}: time_offset_ns must be within ±{MAX_TIME_OFFSET_NS} ns (one day), got {off}",
                _line(s, "time_offset_ns"))
        bad = True
    if bad or frame is None or kind is None or ("topic" in s and topic is None):
        return None
    return Sensor(name=name, frame_id=frame, kind=kind, topic=topic, time_offset_ns=int(off))


def _parse(
    text: str, file: str, *, normalize: bool = False
) -> tuple[Rig | None, list[Problem]]:
    ctx = _Ctx(file)
    doc, problems = loads_yaml(text, file)
    if problems:
        return None, problems
    if not isinstance(doc, CommentedMap):
        ctx.at("a rig file must be a YAML mapping (edgefuse_rig, base_frame, frames, cameras, sensors)", 1)
        return None, ctx.problems
    _check_keys(ctx, doc, _TOP_KEYS, "the rig file")
    version = doc.get("edgefuse_rig")
    if "edgefuse_rig" not in doc:
        ctx.at("missing 'edgefuse_rig: 1' (format version)", 1)
    elif version != FORMAT_VERSION or isinstance(version, bool):
        ctx.at(f"unsupported edgefuse_rig version {version!r} (this edgefuse reads {FORMAT_VERSION})",
                _line(doc, "edgefuse_rig"))
    has_base = _require(ctx, doc, "base_frame", "the rig file")
    base = _str(ctx, doc, "base_frame", "the rig file") if has_base else None

    graph = FrameGraph()
    frame_lines = _parse_frames(ctx, doc.get("frames"), graph, normalize)
    if base is not None:
        graph.add_frame(base)
        for f in graph.frames:
            if not graph.connected(f, base):
                ctx.at(f"frame {f!r} is not connected to base_frame {base!r}",
                        frame_lines.get(f, _line(doc, "frames")))

    cameras: dict[str, CameraModel] = {}
    cams = doc.get("cameras")
    if cams is not None and not isinstance(cams, CommentedMap):
        ctx.at("cameras must be a mapping of camera name -> camera", _line(doc, "cameras"))
    elif cams is not None:
        for name, c in cams.items():
            cam = _parse_camera(ctx, str(name), c, _line(cams, name))
            fid = c.get("frame_id") if isinstance(c, CommentedMap) else None
            if isinstance(fid, str) and fid and fid not in graph:
                ctx.at(f"camera {name!r}: frame_id {fid!r} is not in the frame graph", _line(c, "frame_id"))
                continue
            if cam is None:
                continue
            cameras[str(name)] = cam

    sensors: dict[str, Sensor] = {}
    sens = doc.get("sensors")
    topics: dict[str, str] = {}
    if sens is not None and not isinstance(sens, CommentedMap):
        ctx.at("sensors must be a mapping of sensor name -> {frame_id, kind, topic, time_offset_ns}",
                _line(doc, "sensors"))
    elif sens is not None:
        for name, s in sens.items():
            sensor = _parse_sensor(ctx, str(name), s, _line(sens, name))
            fid = s.get("frame_id") if isinstance(s, CommentedMap) else None
            if isinstance(fid, str) and fid and fid not in graph:
                ctx.at(f"sensor {name!r}: frame_id {fid!r} is not in the frame graph", _line(s, "frame_id"))
                continue
            if sensor is None:
                continue
            if sensor.topic is not None and sensor.topic in topics:
                ctx.at(f"sensor {name!r}: topic {sensor.topic!r} is already used by sensor"
                        f" {topics[sensor.topic]!r}", _line(s, "topic"))
                continue
            if sensor.topic is not None:
                topics[sensor.topic] = sensor.name
            sensors[sensor.name] = sensor

    if ctx.problems or base is None:
        return None, ctx.problems
    return Rig(base_frame=base, frames=graph, cameras=cameras, sensors=sensors), []


def validate_rig_text(text: str, file: str = "<string>") -> list[Problem]:
    """Every problem in rig YAML ``text`` (empty list when valid)."""
    return _parse(text, file)[1]


def check_rig_file(path: str | Path, *, normalize: bool = False) -> tuple[Rig | None, list[Problem]]:
    """``(rig, [])`` or ``(None, every problem)`` for the rig file at ``path``.  Only regular UTF-8 files
    are read (:func:`edgefuse._yaml.read_text`); OS errors (missing file, permissions) propagate unchanged."""
    text, problems = read_text(path)
    if text is None:
        return None, problems
    return _parse(text, str(path), normalize=normalize)


def validate_rig_file(path: str | Path) -> list[Problem]:
    """Every problem in the rig file at ``path`` (empty list when valid); for ``edgefuse validate``.
    OS errors (missing file, permissions) propagate unchanged."""
    return check_rig_file(path)[1]


def loads_rig(text: str, file: str = "<string>", *, normalize: bool = False) -> Rig:
    """Parse rig YAML text; raise :class:`ValidationError` (kind ``calibration``) with every problem."""
    rig, problems = _parse(text, file, normalize=normalize)
    if rig is None:
        raise ValidationError(problems=problems, kind="calibration")
    return rig


def load_rig(path: str | Path, *, normalize: bool = False) -> Rig:
    """Load and fully validate a rig file.

    ``normalize=True`` re-orthonormalises slightly non-orthonormal rotation matrices (with a
    :class:`~edgefuse.rig.transform.CalibrationWarning`) instead of reporting them as problems.
    Raises :class:`ValidationError` (``kind="calibration"``) listing every problem with file and line.
    """
    rig, problems = check_rig_file(path, normalize=normalize)
    if rig is None:
        raise ValidationError(problems=problems, kind="calibration")
    return rig


# -- writing ------------------------------------------------------------------------------------
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_/.\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _s(v: str) -> str:
    return v if _PLAIN.match(v) and v.lower() not in _RESERVED else json.dumps(v)


def _f(v: float) -> str:
    s = repr(float(v))
    if "e" in s and "." not in s.split("e")[0]:
        mant, exp = s.split("e")
        s = f"{mant}.0e{exp}"
    return s


def _vec(v: Any, fmt: Callable[[float], str] = _f) -> str:
    return "[" + ", ".join(fmt(x) for x in np.asarray(v).reshape(-1)) + "]"


def _rotation_text(T: Transform) -> str:
    q = T.to_quat_xyzw()
    if np.max(np.abs(rotation_from_quat_xyzw(q) - T.R)) <= 1e-12:
        return "{quaternion_xyzw: " + _vec(q) + "}"
    return "{matrix: [" + ", ".join(_vec(r) for r in T.R) + "]}"


def dump_rig(rig: Rig) -> str:
    """The rig as YAML text in the edgefuse rig format (rotations as quaternions when that is exact to
    1e-12, else as matrices, so saving never changes a calibration by more than rounding)."""
    out = [f"edgefuse_rig: {FORMAT_VERSION}", f"base_frame: {_s(rig.base_frame)}"]
    edges = list(rig.frames)
    out.append("frames:" + ("" if edges else " []"))
    for e in edges:
        out += [
            f"  - parent: {_s(e.parent)}",
            f"    child: {_s(e.child)}",
            f"    translation: {_vec(e.T_parent_from_child.t)}",
            f"    rotation: {_rotation_text(e.T_parent_from_child)}",
        ]
    out.append("cameras:" + ("" if rig.cameras else " {}"))
    for name, c in rig.cameras.items():
        out += [
            f"  {_s(name)}:",
            f"    frame_id: {_s(c.frame_id)}",
            f"    model: {c.model}",
            f"    width: {c.width}",
            f"    height: {c.height}",
            "    K: [" + ", ".join(_vec(r) for r in c.K) + "]",
            f"    D: {_vec(c.D)}",
        ]
    out.append("sensors:" + ("" if rig.sensors else " {}"))
    for name, s in rig.sensors.items():
        fields = [f"frame_id: {_s(s.frame_id)}", f"kind: {s.kind}"]
        if s.topic is not None:
            fields.append(f"topic: {_s(s.topic)}")
        fields.append(f"time_offset_ns: {int(s.time_offset_ns)}")
        out.append(f"  {_s(name)}: {{{', '.join(fields)}}}")
    return "\n".join(out) + "\n"


def save_rig(rig: Rig, path: str | Path) -> None:
    """Write ``rig`` to ``path`` in the rig format (checked first: an inconsistent rig is not written)."""
    rig.check()
    Path(path).write_text(dump_rig(rig), encoding="utf-8")


def merge_rig_file(path: str | Path, partial: Rig) -> Rig:
    """Load the rig at ``path``, update it with ``partial`` (:meth:`Rig.merged`), write it back and
    return it.  Calibration tools use this to store results into an existing rig file."""
    merged = load_rig(path).merged(partial)
    save_rig(merged, path)
    return merged


# -- JSON Schema ----------------------------------------------------------------------------------
def rig_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the rig file, from this module's keys and bounds and the camera models.

    Editors use it for completion and early errors; :func:`load_rig` checks more than a schema can say
    (orthonormal rotations, a connected frame tree, frames that exist).
    """
    from edgefuse.rig.camera import MODEL_IDS

    number = {"type": "number"}
    vec = {"type": "array", "items": number}
    rotation = {
        "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
        "properties": {
            "quaternion_xyzw": {**vec, "minItems": 4, "maxItems": 4, "description": "unit quaternion x, y, z, w"},
            "rpy_deg": {**vec, "minItems": 3, "maxItems": 3,
                        "description": "roll, pitch, yaw [deg] (fixed axes x, y, z)"},
            "matrix": {"type": "array", "minItems": 3, "maxItems": 3, "items": {**vec, "minItems": 3, "maxItems": 3},
                       "description": "3x3 rotation matrix, rows"},
        },
    }
    frame = {
        "type": "object", "additionalProperties": False, "required": list(_FRAME_KEYS),
        "description": "T_parent_from_child: the child frame's pose in the parent frame",
        "properties": {
            "parent": {"type": "string", "minLength": 1},
            "child": {"type": "string", "minLength": 1},
            "translation": {"type": "array", "minItems": 3, "maxItems": 3,
                            "items": {"type": "number", "minimum": -MAX_TRANSLATION_M, "maximum": MAX_TRANSLATION_M},
                            "description": "child origin in the parent frame [m]"},
            "rotation": rotation,
        },
    }
    side = {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE}
    models = list(MODEL_IDS)
    camera: dict[str, Any] = {
        "type": "object", "additionalProperties": False, "required": ["frame_id", "model", "width", "height"],
        "properties": {
            "frame_id": {"type": "string", "minLength": 1},
            "model": {"enum": models},
            "width": {**side, "description": "[px]"},
            "height": {**side, "description": "[px]"},
            "K": {"type": "array", "minItems": 3, "maxItems": 3, "items": {**vec, "minItems": 3, "maxItems": 3},
                  "description": "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] [px]"},
            "intrinsics": {**vec, "minItems": 4, "maxItems": 4, "description": "[fx, fy, cx, cy] [px]"},
            "D": {**vec, "description": "distortion coefficients (count by model)"},
        },
        "oneOf": [{"required": ["K"]}, {"required": ["intrinsics"]}],
        "allOf": [
            {"if": {"properties": {"model": {"const": m}}, "required": ["model"]},
             "then": {"properties": {"D": {"minItems": D_LENGTH[m], "maxItems": D_LENGTH[m]}},
                      **({"required": ["D"]} if D_LENGTH[m] else {})}}
            for m in models
        ],
    }
    sensor = {
        "type": "object", "additionalProperties": False, "required": ["frame_id", "kind"],
        "properties": {
            "frame_id": {"type": "string", "minLength": 1},
            "topic": {"type": "string", "minLength": 1},
            "kind": {"enum": list(SENSOR_KINDS)},
            "time_offset_ns": {"type": "integer", "minimum": -MAX_TIME_OFFSET_NS, "maximum": MAX_TIME_OFFSET_NS,
                               "description": "t_reference = t_sensor + offset [ns]"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://edgefuse.invalid/schemas/rig.schema.json",
        "title": "edgefuse rig file",
        "description": "Frames, cameras and sensors of a robot (edgefuse/rig/FORMAT.md). Generated by "
                       "python -m edgefuse.pipeline.schema; do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["edgefuse_rig", "base_frame"],
        "properties": {
            "edgefuse_rig": {"const": FORMAT_VERSION, "description": "format version"},
            "base_frame": {"type": "string", "minLength": 1},
            "frames": {"type": "array", "items": frame},
            "cameras": {"type": "object", "additionalProperties": camera},
            "sensors": {"type": "object", "additionalProperties": sensor},
        },
    }
