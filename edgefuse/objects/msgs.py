"""vision_msgs Detection2DArray / Detection3DArray ↔ :class:`Detections2D` / :class:`Detections3D` /
:class:`Tracks`.

Mapping: one ``Detection*`` per row; its first ``results`` entry carries ``class_id`` (``str(label)``,
or ``class_names[label]`` when names are given) and ``score``; the pose covariance (6×6, x y z roll
pitch yaw) carries ``cov`` (2-D: rows/cols x, y; 3-D: x, y, z, yaw); pose dimensions that are not
estimated (not in ``cov``, or NaN there, e.g. z and yaw of a constant-velocity track) are written with
variance :data:`UNKNOWN_VARIANCE` = 1e9 (m², rad²) and zero cross terms, never 0; reading back, a block
that is all zeros or entirely unknown gives an all-NaN ``cov``.  ``Detection*.id`` is the row's
``id`` (tracks: the track id) as a decimal string, empty for -1.  2-D boxes use ``bbox.center`` (x, y,
theta = 0) and ``size_x``/``size_y``; 3-D boxes the centre pose with a yaw-only quaternion and
``size`` = (l, w, h).  A detection without results gets score 0 and label -1.

Reading: the best hypothesis is the one with the highest score (NaN scores rank last); ``yaw`` is
the heading of the box quaternion, which need not be normalised (``atan2(2(wz + xy), w² + x² − y² −
z²)`` after dividing by the largest component is scale-free; an all-zero quaternion, the message
default, reads as yaw 0).  Values are kept as given, NaN included
(:func:`edgefuse.objects.types.sanitize_3d` and friends drop and count bad rows).  ``class_id`` and
``id`` are read as ASCII decimals (surrounding blanks and a sign allowed): a ``class_id`` that is
neither in ``class_names`` nor a decimal fitting ``label`` (int32), and an ``id`` that is a decimal
not fitting ``id`` (int64), raise :class:`~edgefuse.errors.MessageError`; any other ``id`` reads as
-1 (no id).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefuse.errors import MessageError
from edgefuse.msgs._common import header_stamp_ns, make_header, make_msg
from edgefuse.msgs.typestore import get_typestore
from edgefuse.objects.types import DET2D_DTYPE, DET3D_DTYPE, Detections2D, Detections3D, Tracks

_IDX2 = (0, 1)
_IDX3 = (0, 1, 2, 5)


_INT32 = np.iinfo(np.int32)
_INT64 = np.iinfo(np.int64)
_DECIMAL = re.compile(r"\s*([-+]?)0*([0-9]+)\s*", re.ASCII)


def _decimal(text: str, bounds: np.iinfo[Any]) -> int | None:
    """The integer ``text`` spells in ASCII decimal (surrounding blanks allowed); None when it spells none.

    Raises:
        MessageError: a decimal outside ``bounds`` (never parses more than 20 digits).
    """
    m = _DECIMAL.fullmatch(text)
    if m is None:
        return None
    value = int(m[1] + m[2]) if len(m[2]) <= 20 else None
    if value is None or not bounds.min <= value <= bounds.max:
        raise MessageError(f"{text[:40]!r} does not fit an {bounds.dtype}")
    return value


def _label_of(class_id: str, class_names: Sequence[str] | None) -> int:
    if class_names is not None and class_id in class_names:
        return list(class_names).index(class_id)
    try:
        label = _decimal(class_id, _INT32)
    except MessageError as err:
        raise MessageError(f"class_id {err.message}") from None
    if label is None:
        raise MessageError(f"class_id {class_id[:40]!r} is neither an int32 label nor in class_names")
    return label


def _id_of(text: str) -> int:
    """The detection id: a decimal (an int64), else -1 (no id)."""
    try:
        value = _decimal(text, _INT64)
    except MessageError as err:
        raise MessageError(f"detection id {err.message}") from None
    return -1 if value is None else value


def _score_key(hyp: Any) -> float:
    score = float(hyp.hypothesis.score)
    return -math.inf if math.isnan(score) else score  # NaN ranks last


def _class_id(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


#: variance (m² or rad²) written for a pose dimension that is not estimated ("unknown"); its cross terms are 0
UNKNOWN_VARIANCE = 1e9


def _cov_from_pose(cov36: Any, idx: tuple[int, ...]) -> np.ndarray:
    """The ``idx`` block of a 6×6 pose covariance; all-NaN ("not given") when it is all zeros or when every
    one of its variances is :data:`UNKNOWN_VARIANCE` or larger.  Partly unknown blocks are returned as they
    are (large variances stay large, so the block remains a valid covariance)."""
    c = np.asarray(cov36, dtype=np.float64).reshape(6, 6)
    sub = c[np.ix_(idx, idx)]
    with np.errstate(invalid="ignore"):  # signalling NaNs from a corrupt message compare quietly
        unknown = not np.any(sub != 0.0) or bool(np.all(np.diagonal(sub) >= UNKNOWN_VARIANCE))
    if unknown:
        return np.full((len(idx), len(idx)), np.nan)
    return sub


def _pose_cov(cov: np.ndarray, idx: tuple[int, ...]) -> np.ndarray:
    """Row-major 6×6 pose covariance (x y z roll pitch yaw) from ``cov`` over the pose axes ``idx``.

    A dimension is estimated when its variance in ``cov`` is finite; its finite cross terms with other
    estimated dimensions are copied (non-finite ones written as 0).  Every other pose dimension (not in
    ``idx``, or with a non-finite variance: NaN = not estimated, e.g. z and yaw of a constant-velocity
    track) gets variance :data:`UNKNOWN_VARIANCE` and zero cross terms, never 0 (which would mean "exactly
    known").
    """
    out = np.diag(np.full(6, UNKNOWN_VARIANCE))
    c = np.asarray(cov, dtype=np.float64)
    known = [k for k in range(len(idx)) if np.isfinite(c[k, k])]
    for a in known:
        for b in known:
            v = c[a, b]
            out[idx[a], idx[b]] = v if np.isfinite(v) else 0.0
    return out.ravel()


def _hyp(ts: Any, label: int, score: float, cov: np.ndarray, idx: tuple[int, ...], pos: tuple[float, ...],  # noqa: PLR0917
         class_names: Sequence[str] | None) -> Any:
    pose = make_msg(ts, "geometry_msgs/msg/Pose",
                    position=make_msg(ts, "geometry_msgs/msg/Point", x=pos[0], y=pos[1], z=pos[2]),
                    orientation=make_msg(ts, "geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))
    return make_msg(
        ts, "vision_msgs/msg/ObjectHypothesisWithPose",
        hypothesis=make_msg(ts, "vision_msgs/msg/ObjectHypothesis", class_id=_class_id(label, class_names),
                            score=float(score)),
        pose=make_msg(ts, "geometry_msgs/msg/PoseWithCovariance", pose=pose, covariance=_pose_cov(cov, idx)),
    )


def to_detection2d_array(d: Detections2D, class_names: Sequence[str] | None = None, typestore: Any = None) -> Any:
    """:class:`Detections2D` → ``vision_msgs/msg/Detection2DArray``."""
    ts = typestore or get_typestore()
    header = make_header(ts, d.stamp_ns, d.frame_id)
    dets = []
    for r in d.boxes:
        cx, cy = 0.5 * (r["x1"] + r["x2"]), 0.5 * (r["y1"] + r["y2"])
        bbox = make_msg(ts, "vision_msgs/msg/BoundingBox2D",
                        center=make_msg(ts, "vision_msgs/msg/Pose2D",
                                        position=make_msg(ts, "vision_msgs/msg/Point2D", x=float(cx), y=float(cy)),
                                        theta=0.0),
                        size_x=float(r["x2"] - r["x1"]), size_y=float(r["y2"] - r["y1"]))
        hyp = _hyp(ts, int(r["label"]), float(r["score"]), r["cov"], _IDX2, (float(cx), float(cy), 0.0), class_names)
        dets.append(make_msg(ts, "vision_msgs/msg/Detection2D", header=header, results=[hyp], bbox=bbox,
                             id="" if r["id"] < 0 else str(int(r["id"]))))
    return make_msg(ts, "vision_msgs/msg/Detection2DArray", header=header, detections=dets)


def from_detection2d_array(msg: Any, class_names: Sequence[str] | None = None) -> Detections2D:
    """``vision_msgs/msg/Detection2DArray`` → :class:`Detections2D`."""
    out = np.zeros(len(msg.detections), DET2D_DTYPE)
    for k, det in enumerate(msg.detections):
        b = det.bbox
        cx, cy = float(b.center.position.x), float(b.center.position.y)
        out[k]["x1"], out[k]["x2"] = cx - 0.5 * b.size_x, cx + 0.5 * b.size_x
        out[k]["y1"], out[k]["y2"] = cy - 0.5 * b.size_y, cy + 0.5 * b.size_y
        _fill_result(out, k, det, class_names, _IDX2)
    return Detections2D(header_stamp_ns(msg), str(msg.header.frame_id), out)


def _fill_result(out: np.ndarray, k: int, det: Any, class_names: Sequence[str] | None, idx: tuple[int, ...]) -> None:
    if det.results:
        best = max(det.results, key=_score_key)
        out["label"][k] = _label_of(str(best.hypothesis.class_id), class_names)
        out["score"][k] = float(best.hypothesis.score)
        out["cov"][k] = _cov_from_pose(best.pose.covariance, idx)
    else:
        out["label"][k] = -1
        out["cov"][k] = np.nan
    out["id"][k] = _id_of(str(det.id))


def _yaw_of(x: float, y: float, z: float, w: float) -> float:
    """Heading of the rotation quaternion (x, y, z, w) stands for, at any scale (rescaled by its largest
    component first, so neither 1e200 nor 1e-200 over- or underflows); 0 for the zero quaternion."""
    scale = max(abs(x), abs(y), abs(z), abs(w))
    if scale > 0.0 and math.isfinite(scale):
        x, y, z, w = x / scale, y / scale, z / scale, w / scale
    return math.atan2(2.0 * (w * z + x * y), w * w + x * x - y * y - z * z)


def _yaw_quat(ts: Any, yaw: float) -> Any:
    return make_msg(ts, "geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(0.5 * yaw), w=math.cos(0.5 * yaw))


def to_detection3d_array(d: Detections3D | Tracks, class_names: Sequence[str] | None = None,
                         typestore: Any = None) -> Any:
    """:class:`Detections3D` or :class:`Tracks` → ``vision_msgs/msg/Detection3DArray``."""
    ts = typestore or get_typestore()
    header = make_header(ts, d.stamp_ns, d.frame_id)
    rows = d.tracks if isinstance(d, Tracks) else d.boxes
    dets = []
    for r in rows:
        pos = (float(r["x"]), float(r["y"]), float(r["z"]))
        bbox = make_msg(ts, "vision_msgs/msg/BoundingBox3D",
                        center=make_msg(ts, "geometry_msgs/msg/Pose",
                                        position=make_msg(ts, "geometry_msgs/msg/Point", x=pos[0], y=pos[1], z=pos[2]),
                                        orientation=_yaw_quat(ts, float(r["yaw"]))),
                        size=make_msg(ts, "geometry_msgs/msg/Vector3", x=float(r["l"]), y=float(r["w"]),
                                      z=float(r["h"])))
        hyp = _hyp(ts, int(r["label"]), float(r["score"]), r["cov"], _IDX3, pos, class_names)
        dets.append(make_msg(ts, "vision_msgs/msg/Detection3D", header=header, results=[hyp], bbox=bbox,
                             id="" if r["id"] < 0 else str(int(r["id"]))))
    return make_msg(ts, "vision_msgs/msg/Detection3DArray", header=header, detections=dets)


def from_detection3d_array(msg: Any, class_names: Sequence[str] | None = None) -> Detections3D:
    """``vision_msgs/msg/Detection3DArray`` → :class:`Detections3D` (yaw from the box quaternion)."""
    out = np.zeros(len(msg.detections), DET3D_DTYPE)
    for k, det in enumerate(msg.detections):
        c = det.bbox.center
        q = c.orientation
        out[k]["x"], out[k]["y"], out[k]["z"] = c.position.x, c.position.y, c.position.z
        out[k]["l"], out[k]["w"], out[k]["h"] = det.bbox.size.x, det.bbox.size.y, det.bbox.size.z
        out[k]["yaw"] = _yaw_of(float(q.x), float(q.y), float(q.z), float(q.w))
        _fill_result(out, k, det, class_names, _IDX3)
    return Detections3D(header_stamp_ns(msg), str(msg.header.frame_id), out)


__all__ = ["UNKNOWN_VARIANCE", "from_detection2d_array", "from_detection3d_array", "to_detection2d_array",
           "to_detection3d_array"]


def _register() -> None:
    """Make bags, sinks and transports convert detections like any built-in payload."""
    from edgefuse.msgs.convert import register_conversion

    register_conversion("vision_msgs/msg/Detection2DArray", Detections2D, from_detection2d_array,
                        lambda ts, p: to_detection2d_array(p, typestore=ts))
    register_conversion("vision_msgs/msg/Detection3DArray", Detections3D, from_detection3d_array,
                        lambda ts, p: to_detection3d_array(p, typestore=ts))
    # Tracks are published as Detection3DArray (id = track id); they read back as Detections3D.
    register_conversion("vision_msgs/msg/Detection3DArray", Tracks, from_detection3d_array,
                        lambda ts, p: to_detection3d_array(p, typestore=ts))


_register()


def register_edge_types() -> None:
    """Entry point ``edgefuse.edge_types``: the detection edge types of pipeline YAML."""
    from edgefuse.msgs.edges import register_edge_type

    register_edge_type("Detections2D", Detections2D, "vision_msgs/msg/Detection2DArray")
    register_edge_type("Detections3D", Detections3D, "vision_msgs/msg/Detection3DArray")
    # Tracks are published as Detection3DArray (id = track id); that message type reads back as Detections3D.
    register_edge_type("Tracks", Tracks, "vision_msgs/msg/Detection3DArray", reads_from=())
