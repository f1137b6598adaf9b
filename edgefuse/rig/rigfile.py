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

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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
    """Update the rig file at ``path`` with ``partial`` (:meth:`Rig.merged`) and return the rig it now holds.

    Calibration tools store their results this way.  The file is edited in place, not rewritten: only
    the values that change are replaced (a sensor's ``time_offset_ns``, a camera's intrinsics, an
    edge's translation and rotation), each number where and as the user wrote it otherwise (flow or
    block style, comments, key order, quoting); a rotation keeps its form (``rpy_deg`` stays
    ``rpy_deg``, a quaternion keeps its sign convention) unless that form cannot hold the new value
    exactly (then that rotation becomes a ``matrix``).  Entries ``partial`` adds are appended to their
    section (the section is added at the end when the file has none).  The edited text is read back and
    must give the merged rig before it replaces the file (atomically, in the same folder).

    Raises:
        ValidationError: the file is not a valid rig.
        CalibrationError: the merge is inconsistent (:meth:`Rig.merged`), or the file cannot be edited
            to hold it (e.g. a YAML alias shares the value with another entry); the file is unchanged.
    """
    p = Path(path)
    with p.open(encoding="utf-8", newline="") as f:
        text = f.read()
    current = loads_rig(text, str(p))
    merged = current.merged(partial)
    editor = _RigTextEditor(text)
    for edge in partial.frames:
        editor.set_edge(edge.parent, edge.child, edge.T_parent_from_child, current)
    for cam in partial.cameras.values():
        editor.set_camera(cam, current.cameras.get(cam.name))
    for sensor in partial.sensors.values():
        editor.set_sensor(sensor, current.sensors.get(sensor.name))
    new_text = editor.result()
    if new_text == text:
        return current
    try:
        written = loads_rig(new_text, str(p))
    except ValidationError as exc:
        raise CalibrationError(f"cannot edit the rig file in place ({exc}); it is unchanged", file=p) from None
    difference = _rig_difference(written, merged)
    if difference:
        raise CalibrationError(f"cannot edit the rig file in place: {difference} (a YAML alias?); "
                               "it is unchanged", file=p)
    _replace_text(p, new_text)
    return written


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and move it over ``path`` (its mode kept)."""
    target = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _rig_difference(a: Rig, b: Rig) -> str | None:
    """What differs between two rigs beyond float rounding of rotations (1e-12), or None."""
    if a.base_frame != b.base_frame:
        return f"base frame {a.base_frame!r} != {b.base_frame!r}"
    ea = {e.child: e for e in a.frames}
    eb = {e.child: e for e in b.frames}
    if set(ea) != set(eb):
        return f"frames {sorted(ea)} != {sorted(eb)}"
    for child, e in ea.items():
        if e.parent != eb[child].parent or not e.T_parent_from_child.allclose(eb[child].T_parent_from_child, 1e-12):
            return f"edge {e.parent} <- {child} differs"
    if set(a.cameras) != set(b.cameras):
        return f"cameras {sorted(a.cameras)} != {sorted(b.cameras)}"
    for name, c in a.cameras.items():
        d = b.cameras[name]
        if (c.frame_id, c.model, c.width, c.height) != (d.frame_id, d.model, d.width, d.height) or not (
                np.array_equal(c.K, d.K) and np.array_equal(c.D, d.D)):
            return f"camera {name!r} differs"
    if a.sensors != b.sensors:
        return "sensors differ"
    return None


def _number_text(v: float | int) -> str:
    return str(int(v)) if isinstance(v, (int, np.integer)) else _f(float(v))


def _flow(v: Any) -> str:
    """A small value as flow YAML in the rig file's style."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_s(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, str):
        return _s(v)
    return _number_text(v)


def _scalar_float(node: Node) -> float | None:
    try:
        return float(str(node.value).replace("_", ""))
    except ValueError:
        return None


class _RigTextEditor:
    """Replaces spans of a rig file's text, located through ruamel's composed node tree (each node
    carries its start and end offsets), so that everything not replaced stays byte for byte."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nl = "\r\n" if "\r\n" in text else "\n"
        root = YAML(typ="rt").compose(text)
        assert isinstance(root, MappingNode)  # the file was validated as a rig
        self.root = root
        self.edits: list[tuple[int, int, str]] = []

    # -- text --------------------------------------------------------------------------------
    def result(self) -> str:
        out = self.text
        last = len(out) + 1
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            if end > last:
                raise CalibrationError("overlapping edits of the rig file")  # a bug, never the user's input
            out = out[:start] + new + out[end:]
            last = start
        return out

    def _replace(self, node: Node, new: str) -> None:
        self.edits.append((node.start_mark.index, self._end(node), new))

    def _end(self, node: Node) -> int:
        """End offset of ``node``'s own text (a block collection's end mark lies after trailing lines)."""
        if isinstance(node, (SequenceNode, MappingNode)) and not node.flow_style and node.value:
            last = node.value[-1]
            return self._end(last[1] if isinstance(last, tuple) else last)
        return int(node.end_mark.index)

    def _line_end(self, offset: int) -> int:
        """Offset just after the line holding ``offset`` (after its comment and newline)."""
        i = self.text.find("\n", offset)
        return len(self.text) if i < 0 else i + 1

    def _insert_lines(self, after: Node, lines: list[str]) -> None:
        pos = self._line_end(self._end(after))
        lead = "" if pos == 0 or self.text[pos - 1] == "\n" else self.nl
        self.edits.append((pos, pos, lead + "".join(line + self.nl for line in lines)))

    # -- node look-up ----------------------------------------------------------------------------
    @staticmethod
    def _get(mapping: Node, key: str) -> tuple[Node, Node] | None:
        if isinstance(mapping, MappingNode):
            for k, v in mapping.value:
                if isinstance(k, ScalarNode) and k.value == key:
                    return k, v
        return None

    def _section(self, key: str) -> Node | None:
        kv = self._get(self.root, key)
        return None if kv is None else kv[1]

    # -- values ----------------------------------------------------------------------------------
    def _set_numbers(self, node: Node, values: Any) -> bool:
        """Replace the numbers of a (nested) list node by ``values`` where they differ; False when the
        shapes differ (nothing done)."""
        if isinstance(node, ScalarNode):
            if isinstance(values, (list, tuple, np.ndarray)):
                return False
            old = _scalar_float(node)
            if old is None or old != float(values):
                self._replace(node, _number_text(values))
            return True
        if not isinstance(node, SequenceNode) or len(node.value) != len(values):
            return False
        shapes = [self._shape_ok(n, v) for n, v in zip(node.value, values, strict=True)]
        if not all(shapes):
            return False
        for n, v in zip(node.value, values, strict=True):
            self._set_numbers(n, v)
        return True

    def _shape_ok(self, node: Node, values: Any) -> bool:
        if isinstance(node, ScalarNode):
            return not isinstance(values, (list, tuple, np.ndarray))
        return (isinstance(node, SequenceNode) and isinstance(values, (list, tuple, np.ndarray))
                and len(node.value) == len(values)
                and all(self._shape_ok(n, v) for n, v in zip(node.value, values, strict=True)))

    def _set_value(self, node: Node, value: Any) -> None:
        """Numbers in place where the shape allows, else the whole value as flow YAML."""
        if isinstance(value, str):
            if not (isinstance(node, ScalarNode) and node.value == value):
                self._replace(node, _s(value))
            return
        if not self._set_numbers(node, value):
            self._replace(node, _flow(value))

    def _set_key(self, mapping: Node, key: str, value: Any) -> None:
        kv = self._get(mapping, key)
        if kv is not None:
            self._set_value(kv[1], value)
            return
        self._add_key(mapping, key, value)

    def _add_key(self, mapping: Node, key: str, value: Any) -> None:
        assert isinstance(mapping, MappingNode)
        if mapping.flow_style or not mapping.value:
            close = int(mapping.end_mark.index) - 1  # the closing brace
            sep = ", " if mapping.value else ""
            self.edits.append((close, close, f"{sep}{_s(key)}: {_flow(value)}"))
            return
        col = mapping.value[0][0].start_mark.column
        self._insert_lines(mapping, [" " * col + f"{_s(key)}: {_flow(value)}"])

    def _remove_key(self, mapping: Node, key: str) -> None:
        kv = self._get(mapping, key)
        if kv is None:
            return
        k, v = kv
        start, end = int(k.start_mark.index), self._end(v)
        if isinstance(mapping, MappingNode) and mapping.flow_style:
            rest = self.text[end:]
            stripped = rest.lstrip(" ")
            if stripped.startswith(","):  # "key: v, " -> ""
                end += len(rest) - len(stripped) + 1 + (len(stripped[1:]) - len(stripped[1:].lstrip(" ")))
            else:  # last item: remove the ", " before it
                before = self.text[:start].rstrip(" ")
                if before.endswith(","):
                    start = len(before) - 1
            self.edits.append((start, end, ""))
        else:
            line_start = self.text.rfind("\n", 0, start) + 1
            self.edits.append((line_start, self._line_end(end), ""))

    # -- entries ----------------------------------------------------------------------------------
    def set_sensor(self, sensor: Sensor, old: Sensor | None) -> None:
        fields: dict[str, Any] = {"frame_id": sensor.frame_id, "kind": sensor.kind}
        if sensor.topic is not None:
            fields["topic"] = sensor.topic
        fields["time_offset_ns"] = int(sensor.time_offset_ns)
        node = self._entry("sensors", sensor.name)
        if node is None or old is None:
            self._add_entry("sensors", sensor.name, fields, block=False)
            return
        for key in ("frame_id", "kind", "topic"):
            if getattr(old, key) != getattr(sensor, key):
                if key in fields:
                    self._set_key(node, key, fields[key])
                else:
                    self._remove_key(node, key)
        if old.time_offset_ns != sensor.time_offset_ns:
            self._set_key(node, "time_offset_ns", int(sensor.time_offset_ns))

    def set_camera(self, cam: CameraModel, old: CameraModel | None) -> None:
        K = [[float(x) for x in row] for row in cam.K]
        D = [float(x) for x in cam.D]
        node = self._entry("cameras", cam.name)
        if node is None or old is None:
            self._add_entry("cameras", cam.name, {"frame_id": cam.frame_id, "model": cam.model, "width": cam.width,
                                                  "height": cam.height, "K": K, "D": D}, block=True)
            return
        for key in ("frame_id", "model", "width", "height"):
            if getattr(old, key) != getattr(cam, key):
                self._set_key(node, key, getattr(cam, key))
        if not np.array_equal(old.K, cam.K):
            if self._get(node, "intrinsics") is not None:
                self._set_key(node, "intrinsics", [K[0][0], K[1][1], K[0][2], K[1][2]])
            else:
                self._set_key(node, "K", K)
        if not np.array_equal(old.D, cam.D):
            self._set_key(node, "D", D)

    def set_edge(self, parent: str, child: str, T: Transform, rig: Rig) -> None:
        entry = None
        frames = self._section("frames")
        if isinstance(frames, SequenceNode):
            for item in frames.value:
                kv = self._get(item, "child")
                if kv is not None and kv[1].value == child:
                    entry = item
        if entry is None or child not in rig.frames or rig.frames.parent(child) is None:
            fields = {"parent": parent, "child": child, "translation": [float(x) for x in T.t]}
            self._add_edge(fields, T)
            return
        old_parent = rig.frames.parent(child)
        old_T = rig.frames.lookup(old_parent, child) if old_parent is not None else Transform.identity()
        if old_parent != parent:
            self._set_key(entry, "parent", parent)
        if not np.array_equal(old_T.t, T.t):
            self._set_key(entry, "translation", [float(x) for x in T.t])
        if not np.array_equal(old_T.R, T.R):
            rot = self._get(entry, "rotation")
            assert rot is not None
            assert isinstance(rot[1], MappingNode)
            self._set_rotation(rot[1], T)

    def _set_rotation(self, node: MappingNode, T: Transform) -> None:
        (key_node, value_node), = node.value
        kind = key_node.value
        R = T.R
        if kind == "quaternion_xyzw":
            q = T.to_quat_xyzw()
            old = [_scalar_float(n) for n in getattr(value_node, "value", [])]
            if len(old) == 4 and None not in old and float(np.dot(np.asarray(old, dtype=np.float64), q)) < 0:
                q = -q
            if np.max(np.abs(rotation_from_quat_xyzw(q) - R)) <= 1e-12:
                self._set_value(value_node, [float(x) for x in q])
                return
        elif kind == "rpy_deg":
            old = [_scalar_float(n) for n in getattr(value_node, "value", [])]
            rpy = _rpy_near(T, old)
            if np.max(np.abs(rotation_from_rpy(rpy, degrees=True) - R)) <= 1e-12:
                self._set_value(value_node, [float(x) for x in rpy])
                return
        elif kind == "matrix":
            self._set_value(value_node, [[float(x) for x in row] for row in R])
            return
        # the user's form cannot hold this rotation to 1e-12 (a matrix orthonormal only to ~1e-7)
        self._replace(key_node, "matrix")
        self.edits.append((value_node.start_mark.index, self._end(value_node),
                           _flow([[float(x) for x in row] for row in R])))

    # -- adding ------------------------------------------------------------------------------------
    def _entry(self, section: str, name: str) -> Node | None:
        node = self._section(section)
        kv = self._get(node, name) if node is not None else None
        return None if kv is None else kv[1]

    def _root_col(self) -> int:
        return int(self.root.value[0][0].start_mark.column)

    def _add_entry(self, section: str, name: str, fields: dict[str, Any], *, block: bool) -> None:
        kv = self._get(self.root, section)
        if kv is None:  # no such section: add it at the end
            col = self._root_col()
            self._insert_lines(self.root, [" " * col + f"{section}:", *self._entry_lines(name, fields, col + 2, block)])
        elif isinstance(kv[1], MappingNode) and kv[1].flow_style:
            self._add_key(kv[1], name, fields)
        elif isinstance(kv[1], MappingNode) and kv[1].value:
            col = kv[1].value[0][0].start_mark.column
            self._insert_lines(kv[1], self._entry_lines(name, fields, col, block))
        else:  # "section:" with no value
            col = int(kv[0].start_mark.column) + 2
            self._insert_lines(kv[0], self._entry_lines(name, fields, col, block))

    @staticmethod
    def _entry_lines(name: str, fields: dict[str, Any], col: int, block: bool) -> list[str]:
        if not block:
            return [" " * col + f"{_s(name)}: {_flow(fields)}"]
        return [" " * col + f"{_s(name)}:"] + [" " * (col + 2) + f"{k}: {_flow(v)}" for k, v in fields.items()]

    def _add_edge(self, fields: dict[str, Any], T: Transform) -> None:
        rotation = _rotation_text(T)
        kv = self._get(self.root, "frames")
        frames = None if kv is None else kv[1]
        if isinstance(frames, SequenceNode) and frames.flow_style:
            close = int(frames.end_mark.index) - 1
            sep = ", " if frames.value else ""
            item = "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in fields.items()) + f", rotation: {rotation}}}"
            self.edits.append((close, close, sep + item))
            return
        if isinstance(frames, SequenceNode) and frames.value:
            dash = int(frames.start_mark.column)
            first = frames.value[0]
            keycol = (int(first.value[0][0].start_mark.column) if isinstance(first, MappingNode) and first.value
                      else dash + 2)
            after: Node = frames
        elif kv is not None:  # "frames:" with no value
            dash = int(kv[0].start_mark.column) + 2
            keycol = dash + 2
            after = kv[0]
        else:
            dash, keycol, after = self._root_col() + 2, self._root_col() + 4, self.root
        lines = [" " * dash + "-" + " " * (keycol - dash - 1) + f"parent: {_flow(fields['parent'])}"]
        lines += [" " * keycol + f"{k}: {_flow(v)}" for k, v in fields.items() if k != "parent"]
        lines.append(" " * keycol + f"rotation: {rotation}")
        if kv is None:
            lines.insert(0, " " * self._root_col() + "frames:")
        self._insert_lines(after, lines)


def _rpy_near(T: Transform, old: list[float | None]) -> list[float]:
    """Roll, pitch, yaw (degrees) of ``T``: of the two equivalent triples, the one nearest ``old``, each
    angle shifted by whole turns towards the old value (so an unchanged angle keeps its spelling)."""
    r, p, y = (float(v) for v in T.to_euler(degrees=True))
    candidates = [[r, p, y], [r + 180.0, 180.0 - p, y + 180.0]]
    if len(old) != 3 or any(v is None for v in old):
        return candidates[0]
    ref = [float(v) for v in old if v is not None]

    def near(a: float, b: float) -> float:
        return a + 360.0 * round((b - a) / 360.0)

    shifted = [[near(a, b) for a, b in zip(c, ref, strict=True)] for c in candidates]
    best = min(shifted, key=lambda c: sum(abs(a - b) for a, b in zip(c, ref, strict=True)))
    return [b if abs(a - b) <= 1e-12 * max(1.0, abs(b)) else a for a, b in zip(best, ref, strict=True)]


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
