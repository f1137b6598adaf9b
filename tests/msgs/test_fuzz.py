"""Fuzz suite: every message type edgefuse decodes, from mutated bytes and from adversarial field values.

Two generators per message type, both driven by a seeded numpy RNG (one seed per test):

- **adversarial messages**: structurally valid messages (they serialise) whose fields take adversarial
  values — sizes that disagree with their buffers, ``uint32`` extremes, unknown encodings and
  datatypes, duplicate or missing point fields, NaN / inf / ±1e308 / subnormal floats, empty, long and
  non-ASCII strings, non-unit quaternions, class ids that overflow;
- **mutated bytes**: valid serialised messages (CDR little- and big-endian, and ROS 1 for the types
  with a fast path) with bits flipped, bytes and 32-bit words overwritten by boundary values, and
  slices truncated, inserted, deleted or duplicated.

Each input goes through every decoder edgefuse has for its type: ``deserialize`` + ``to_payload``,
``fastpath.decode``, ``fastpath.decode_payload`` and (in batches) ``fastpath.decode_columns``.  The
verdict:

- no exception other than edgefuse's own (:class:`~edgefuse.errors.EdgefuseError` subclasses);
- no silently wrong output: an accepted message's payload equals an independent, slow decode of the
  same message (point and pixel bytes read with ``struct`` at the offsets the header gives, fields
  compared value by value), the message's acceptance agrees with an independent statement of the
  documented validity rules (so an inconsistent header is never accepted, and a valid message never
  refused), and the fast path agrees with the normal path on every input, accepted or not.

The default run covers a few thousand inputs in a few seconds; the ``slow`` tests cover 10^5 inputs of
each kind per message type (opt in with ``-m slow``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dc_fields
from typing import Any, Literal

import numpy as np
import pytest
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore as rosbags_typestore

import edgefuse.objects.msgs  # noqa: F401  (registers the vision_msgs conversions)
from edgefuse.errors import EdgefuseError, MessageError
from edgefuse.msgs import deserialize, from_payload, get_typestore, to_payload
from edgefuse.msgs._common import make_msg
from edgefuse.msgs.fastpath import FAST_MSGTYPES, decode, decode_columns, decode_payload
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

# a warning (overflow, invalid value …) on bad input is noise a user would see: it counts as a finding
pytestmark = pytest.mark.filterwarnings("error")

Fmt = Literal["cdr", "ros1"]
TS = get_typestore()
ROS1 = rosbags_typestore(Stores.ROS1_NOETIC)

IMAGE, COMPRESSED, CLOUD = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/PointCloud2"
IMU, FIX, INFO = "sensor_msgs/msg/Imu", "sensor_msgs/msg/NavSatFix", "sensor_msgs/msg/CameraInfo"
ODOM = "nav_msgs/msg/Odometry"
RADAR, TFS, TFM = "radar_msgs/msg/RadarScan", "geometry_msgs/msg/TransformStamped", "tf2_msgs/msg/TFMessage"
DET2, DET3 = "vision_msgs/msg/Detection2DArray", "vision_msgs/msg/Detection3DArray"
MSGTYPES = [IMAGE, COMPRESSED, CLOUD, IMU, FIX, INFO, ODOM, RADAR, TFS, TFM, DET2, DET3]

DEFAULT_INPUTS = 120  # per message type and generator: ~3,000 inputs in all
SLOW_INPUTS = 100_000

U32 = [0, 1, 2, 3, 4, 7, 8, 12, 16, 255, 256, 4095, 65535, 2**31 - 1, 2**31, 2**32 - 1]
F64 = [0.0, -0.0, 1.0, -1.0, 0.5, math.pi, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1e-300,
       2.0**53, 1e154, -1e200]
F32 = [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, 1e-38]
STRINGS = ["", "a", "x", "base_link", "lidar", " ", "é", "日本", "a" * 300, "\x01", "frame/with/slashes"]


def _opt_in_slow(request: pytest.FixtureRequest) -> None:
    """Slow tests run only when asked for (``-m slow``); nothing in the suite deselects them otherwise."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("10^5-input fuzz run: opt in with -m slow")


# ----------------------------------------------------------------------------- independent oracles

_SIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 8: 8}


def _cloud_valid(msg: Any) -> bool:
    """The documented PointCloud2 rules (edgefuse.msgs.pointcloud), restated independently."""
    h, w, ps, rs, n = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step), len(msg.data)
    fields = [(str(f.name), int(f.offset), int(f.datatype), max(int(f.count), 1)) for f in msg.fields]
    if not fields and n == 0 and h * w == 0:
        return True
    if not 0 < ps < 2**31 or rs < w * ps or n != rs * h or (h * w == 0 and n) or (h == 1 and rs != w * ps):
        return False
    names = [f[0] for f in fields]
    if "" in names or len(set(names)) != len(names) or any(dt not in _SIZE for _, _, dt, _ in fields):
        return False
    spans = sorted((o, o + _SIZE[dt] * c) for _, o, dt, c in fields)
    if any(end > ps for _, end in spans) or any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
        return False
    counts = {name: c for name, _, _, c in fields}
    return all(counts.get(axis) == 1 for axis in "xyz")


def _check_cloud(msg: Any, cloud: Any, rng: np.random.Generator) -> None:
    h, w, ps, rs = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    raw = np.asarray(msg.data, dtype=np.uint8).tobytes()
    pts = cloud.points
    assert (cloud.height, cloud.width, pts.shape) == (h, w, (h * w,)), "organisation differs from the header"
    names = tuple(str(f.name) for f in msg.fields) or ("x", "y", "z")
    assert pts.dtype.names == names, "fields differ from the message's"
    if msg.fields:
        assert pts.dtype.itemsize == ps
    assert cloud.is_dense == bool(msg.is_dense)
    _check_header(msg, cloud)
    if h * w == 0:
        return
    if rs == w * ps:
        assert np.shares_memory(pts, msg.data), "an unpadded cloud must be a view of the message buffer"
    order: Literal["<", ">"] = ">" if msg.is_bigendian else "<"
    picks = {0, h * w - 1, *rng.integers(0, h * w, 6).tolist()}
    for k in picks:
        row, col = divmod(k, w)
        base = row * rs + col * ps
        for f in msg.fields:
            size = _SIZE[int(f.datatype)] * max(int(f.count), 1)
            want = raw[base + int(f.offset) : base + int(f.offset) + size]
            got = np.asarray(pts[k][str(f.name)])
            got_bytes = got.astype(got.dtype.newbyteorder(order)).tobytes()
            assert got_bytes == want, f"point {k} field {f.name!r}: bytes differ from the buffer"


_ENC = {"mono8": (1, 1), "mono16": (2, 1), "bgr8": (1, 3), "rgb8": (1, 3), "bgra8": (1, 4), "rgba8": (1, 4),
        "bgr16": (2, 3), "rgb16": (2, 3), "bgra16": (2, 4), "rgba16": (2, 4), "bayer_rggb8": (1, 1),
        "bayer_grbg16": (2, 1)}  # fmt: skip


def _encoding(enc: str) -> tuple[int, int] | None:
    if enc in _ENC:
        return _ENC[enc]
    m = re.fullmatch(r"(8|16|32|64)([USF])C([1-9][0-9]*)", enc)
    if m is None or (m[2] == "F" and m[1] in ("8", "16")):
        return None
    return int(m[1]) // 8, int(m[3])


def _image_valid(msg: Any) -> bool:
    layout = _encoding(str(msg.encoding))
    if layout is None:
        return False
    h, w, step, n = int(msg.height), int(msg.width), int(msg.step), len(msg.data)
    return step >= w * layout[0] * layout[1] and n == step * h and not (h * w == 0 and n)


def _check_image(msg: Any, img: Any, rng: np.random.Generator) -> None:
    size, ch = _encoding(str(msg.encoding)) or (0, 0)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    assert img.data.shape == ((h, w, ch) if ch > 1 else (h, w)), "image shape differs from the header"
    assert img.data.dtype.itemsize == size and img.data.dtype.isnative
    assert img.encoding == msg.encoding
    _check_header(msg, img)
    if h * w == 0:
        return
    raw = np.asarray(msg.data, dtype=np.uint8).tobytes()
    order: Literal["<", ">"] = ">" if msg.is_bigendian else "<"
    for _ in range(6):
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
        px = np.asarray(img.data[r, c])
        want = raw[r * step + c * size * ch : r * step + (c + 1) * size * ch]
        assert px.astype(px.dtype.newbyteorder(order)).tobytes() == want, f"pixel ({r}, {c}) differs"


def _check_header(msg: Any, payload: Any) -> None:
    stamp = msg.header.stamp
    assert payload.stamp_ns == int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    assert payload.frame_id == msg.header.frame_id


def _same(a: Any, b: Any, what: str) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), f"{what} differs"


def _vec(v: Any, names: str = "xyz") -> list[float]:
    return [float(getattr(v, n)) for n in names]


def _check_imu(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    _same(p.orientation, _vec(msg.orientation, "xyzw"), "orientation")
    _same(p.angular_velocity, _vec(msg.angular_velocity), "angular_velocity")
    _same(p.linear_acceleration, _vec(msg.linear_acceleration), "linear_acceleration")
    for name in ("orientation_covariance", "angular_velocity_covariance", "linear_acceleration_covariance"):
        _same(np.asarray(getattr(p, name)).ravel(), getattr(msg, name), name)


def _check_fix(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    assert (p.status, p.service, p.position_covariance_type) == (
        int(msg.status.status), int(msg.status.service), int(msg.position_covariance_type))
    _same([p.latitude_deg, p.longitude_deg, p.altitude_m], [msg.latitude, msg.longitude, msg.altitude], "lla")
    _same(np.asarray(p.position_covariance).ravel(), msg.position_covariance, "position_covariance")


def _check_odom(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    assert p.child_frame_id == msg.child_frame_id
    _same(p.position, _vec(msg.pose.pose.position), "position")
    _same(p.orientation, _vec(msg.pose.pose.orientation, "xyzw"), "orientation")
    _same(p.linear_velocity, _vec(msg.twist.twist.linear), "linear velocity")
    _same(p.angular_velocity, _vec(msg.twist.twist.angular), "angular velocity")
    _same(np.asarray(p.pose_covariance).ravel(), msg.pose.covariance, "pose covariance")
    _same(np.asarray(p.twist_covariance).ravel(), msg.twist.covariance, "twist covariance")


def _check_info(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    assert (p.width, p.height, p.binning_x, p.binning_y) == (msg.width, msg.height, msg.binning_x, msg.binning_y)
    assert p.distortion_model == msg.distortion_model
    _same(p.d, msg.d, "d")
    _same(np.asarray(p.k).ravel(), msg.k, "k")
    _same(np.asarray(p.r).ravel(), msg.r, "r")
    _same(np.asarray(p.p).ravel(), msg.p, "p")


def _check_radar(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    names = ("range", "azimuth", "elevation", "doppler_velocity", "amplitude")
    assert p.returns.shape == (len(msg.returns),)
    want = np.array([[getattr(r, n) for n in names] for r in msg.returns], dtype=np.float32).reshape(-1, 5)
    got = np.stack([p.returns[n] for n in names], axis=1) if len(p.returns) else want
    assert got.tobytes() == want.tobytes(), "radar returns differ"


def _transform_valid(t: Any) -> bool:
    v = np.array([*_vec(t.transform.translation), *_vec(t.transform.rotation, "xyzw")])
    parent, child = t.header.frame_id, t.child_frame_id
    if not parent or not child or parent == child or not np.isfinite(v).all():
        return False
    return bool(abs(sum(c * c for c in v[3:].tolist()) - 1.0) <= 0.01)


def _check_transform(t: Any, p: Any) -> None:
    stamp = t.header.stamp
    assert p.stamp_ns == int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    assert (p.parent_frame, p.child_frame) == (t.header.frame_id, t.child_frame_id)
    _same(p.translation, _vec(t.transform.translation), "translation")
    _same(p.rotation_xyzw, _vec(t.transform.rotation, "xyzw"), "rotation")


def _check_tfs(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_transform(msg, p)


def _check_tfm(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    assert isinstance(p, list) and len(p) == len(msg.transforms)
    for t, q in zip(msg.transforms, p, strict=True):
        _check_transform(t, q)


def _int_or_none(text: str, lo: int, hi: int) -> int | Literal["overflow"] | None:
    """Independent reading of a decimal string: None when not decimal, 'overflow' outside [lo, hi]."""
    s = text.strip(" \t\n\r\x0b\x0c")
    body = s[1:] if s[:1] in ("-", "+") else s
    if not body or not all("0" <= ch <= "9" for ch in body):
        return None
    if len(body.lstrip("0")) > 19:
        return "overflow"
    value = int(s)
    return value if lo <= value <= hi else "overflow"


def _det_expectation(det: Any) -> tuple[bool, int, float, int]:
    """(valid, label, score, id) of one detection by the documented rules (no class names)."""
    ident = _int_or_none(str(det.id), -(2**63), 2**63 - 1)
    if ident == "overflow":
        return False, 0, 0.0, 0
    if not det.results:
        return True, -1, 0.0, -1 if ident is None else ident
    scores = [float(r.hypothesis.score) for r in det.results]
    keyed = [-math.inf if math.isnan(s) else s for s in scores]
    best = det.results[keyed.index(max(keyed))]
    label = _int_or_none(str(best.hypothesis.class_id), -(2**31), 2**31 - 1)
    if label is None or label == "overflow":
        return False, 0, 0.0, 0
    return True, label, float(best.hypothesis.score), -1 if ident is None else ident


def _dets_valid(msg: Any) -> bool:
    return all(_det_expectation(d)[0] for d in msg.detections)


def _yaw_reference(q: Any) -> float:
    """Yaw of the rotation a (possibly unnormalised) quaternion stands for, via the rotation matrix; NaN
    where there is none to compare (non-finite input, or a vertical x axis)."""
    v = np.array(_vec(q, "xyzw"))
    scale = np.abs(v).max()
    if not np.isfinite(v).all():
        return math.nan
    if scale == 0:
        return 0.0
    x, y, z, w = v / scale
    n = x * x + y * y + z * z + w * w
    r00 = 1 - 2 * (y * y + z * z) / n
    r10 = 2 * (x * y + w * z) / n
    if math.hypot(r00, r10) < 1e-9:  # the box's x axis is vertical: no heading, any yaw will do
        return math.nan
    return math.atan2(r10, r00)


def _check_dets(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    rows = p.boxes
    assert rows.shape == (len(msg.detections),)
    three_d = "x" in (rows.dtype.names or ())
    for k, det in enumerate(msg.detections):
        _, label, score, ident = _det_expectation(det)
        assert (int(rows["label"][k]), int(rows["id"][k])) == (label, ident), f"detection {k} label/id"
        _same(rows["score"][k], score, f"detection {k} score")
        b = det.bbox
        if three_d:
            c = b.center
            _same([rows[n][k] for n in ("x", "y", "z")], _vec(c.position), f"detection {k} centre")
            _same([rows[n][k] for n in ("l", "w", "h")], _vec(b.size), f"detection {k} size")
            yaw, ref = float(rows["yaw"][k]), _yaw_reference(c.orientation)
            if math.isfinite(ref):
                d = (yaw - ref + math.pi) % (2 * math.pi) - math.pi
                assert abs(d) < 1e-9, f"detection {k} yaw {yaw} != {ref}"
        else:
            cx, cy = float(b.center.position.x), float(b.center.position.y)
            want = [cx - 0.5 * b.size_x, cy - 0.5 * b.size_y, cx + 0.5 * b.size_x, cy + 0.5 * b.size_y]
            _same([rows[n][k] for n in ("x1", "y1", "x2", "y2")], want, f"detection {k} box")


def _compressed_valid(msg: Any) -> bool:
    return len(msg.data) > 0


def _check_compressed(msg: Any, p: Any, _rng: np.random.Generator) -> None:
    _check_header(msg, p)
    assert p.format == msg.format
    assert np.asarray(p.data).tobytes() == np.asarray(msg.data, np.uint8).tobytes()


Check = Callable[[Any, Any, np.random.Generator], None]
ORACLES: dict[str, tuple[Callable[[Any], bool] | None, Check]] = {
    IMAGE: (_image_valid, _check_image),
    COMPRESSED: (_compressed_valid, _check_compressed),
    CLOUD: (_cloud_valid, _check_cloud),
    IMU: (None, _check_imu),
    FIX: (None, _check_fix),
    INFO: (None, _check_info),
    ODOM: (None, _check_odom),
    RADAR: (None, _check_radar),
    TFS: (_transform_valid, _check_tfs),
    TFM: (lambda m: all(_transform_valid(t) for t in m.transforms), _check_tfm),
    DET2: (_dets_valid, _check_dets),
    DET3: (_dets_valid, _check_dets),
}


# ----------------------------------------------------------------------------- running one input


@dataclass
class Tally:
    """Outcome counts of a fuzz run; ``failures`` holds a description of each violated expectation."""

    accepted: int = 0
    rejected: int = 0
    failures: list[str] = field(default_factory=list)
    fast_accepted: dict[str, list[bytes]] = field(default_factory=lambda: {"cdr": [], "ros1": []})
    fast_rejected: dict[str, list[bytes]] = field(default_factory=lambda: {"cdr": [], "ros1": []})


def _store(fmt: Fmt) -> Any:
    return ROS1 if fmt == "ros1" else TS


def _exercise(msgtype: str, raw: bytes, fmt: Fmt, rng: np.random.Generator, tally: Tally) -> None:
    """Every decoder on ``raw``; expectations violated are recorded in ``tally.failures``."""
    try:
        _exercise_or_raise(msgtype, raw, fmt, rng, tally)
    except EdgefuseError as err:  # an edgefuse error escaping where a verdict was expected
        tally.failures.append(f"{msgtype} ({fmt}) {raw[:48].hex()}…: unexpected {type(err).__name__}: {err}")
    except AssertionError as err:
        tally.failures.append(f"{msgtype} ({fmt}) {raw[:48].hex()}…: {err}")
    except Exception as err:
        tally.failures.append(f"{msgtype} ({fmt}) {raw[:48].hex()}…: {type(err).__name__}: {err}")


def _exercise_or_raise(msgtype: str, raw: bytes, fmt: Fmt, rng: np.random.Generator, tally: Tally) -> None:
    store = _store(fmt)
    try:
        msg = deserialize(raw, msgtype, fmt=fmt, typestore=store)
    except MessageError:
        msg = None
    payload = None
    if msg is not None:
        valid, check = ORACLES[msgtype]
        refusal = ""
        try:
            payload = to_payload(msg, msgtype)
        except MessageError as err:
            refusal = err.message
        if payload is None:
            assert valid is not None and not valid(msg), f"a valid message was refused: {refusal}"
        else:
            assert valid is None or valid(msg), "an invalid message was accepted"
            check(msg, payload, rng)
    if payload is None:
        tally.rejected += 1
    else:
        tally.accepted += 1
    if msgtype in FAST_MSGTYPES:
        try:
            fast = decode(raw, msgtype, fmt)
        except MessageError:
            fast = None
            if len(tally.fast_rejected[fmt]) < 200:
                tally.fast_rejected[fmt].append(raw)
        else:
            assert payload is not None, "the fast path accepts bytes the normal path refuses"
            _same_payload(fast, payload)
            if len(tally.fast_accepted[fmt]) < 500:
                tally.fast_accepted[fmt].append(raw)
    try:
        via = decode_payload(raw, msgtype, fmt=fmt, typestore=store)
    except MessageError:
        assert payload is None, "decode_payload refuses what deserialize + to_payload accept"
    else:
        assert payload is not None, "decode_payload accepts what deserialize + to_payload refuse"
        _same_payload(via, payload)


def _same_payload(a: Any, b: Any) -> None:
    """Two payloads of the same message from two decoders: same class, same values bit for bit."""
    assert type(a) is type(b)
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same_payload(x, y)
        return
    for f in dc_fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(vb, np.ndarray):
            assert isinstance(va, np.ndarray) and va.shape == vb.shape and va.dtype == vb.dtype, f.name
            for name in va.dtype.names or (None,):  # field by field: padding bytes between fields are unspecified
                sa, sb = (va, vb) if name is None else (va[name], vb[name])
                assert sa.tobytes() == sb.tobytes(), f"decoders differ in {f.name} {name or ''}"
        else:
            same = va == vb or (isinstance(va, float) and math.isnan(va) and math.isnan(vb))
            assert type(va) is type(vb) and same, f"decoders differ in {f.name}"


def _check_columns(msgtype: str, fmt: Literal["cdr", "ros1"], tally: Tally) -> None:
    """decode_columns equals decode row by row, and refuses a batch holding one refused message."""
    if msgtype not in FAST_MSGTYPES:
        return
    good = tally.fast_accepted[fmt]
    if good:
        cols = decode_columns(good, msgtype, fmt)
        for i, raw in enumerate(good[:100]):
            one = decode(raw, msgtype, fmt)
            for key, col in cols.items():
                name = "stamp_ns" if key == "stamps_ns" else key
                want = getattr(one, name)
                if col.dtype == object:
                    assert col[i] == want, f"columns row {i} {key}"
                else:
                    assert np.array_equal(col[i], want, equal_nan=True), f"columns row {i} {key}"
    anchor = good[:1]
    for raw in tally.fast_rejected[fmt][:50]:
        try:
            decode_columns([*anchor, raw], msgtype, fmt)
        except MessageError:
            continue
        tally.failures.append(f"{msgtype} ({fmt}): decode_columns accepted a batch with {raw[:48].hex()}…")


# ----------------------------------------------------------------------------- adversarial messages


def _pick(rng: np.random.Generator, values: list[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


_F64_ARR = np.array(F64)
_F32_ARR = np.array(F32, dtype=np.float32)


def _f64(rng: np.random.Generator, n: int, weird: float = 0.3) -> list[float]:
    out = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4, n)
    mask = rng.random(n) < weird
    out[mask] = _F64_ARR[rng.integers(0, len(F64), n)][mask]
    return [float(v) for v in out]


def _f32(rng: np.random.Generator, n: int, weird: float = 0.3) -> list[float]:
    out = (rng.normal(size=n) * 10.0).astype(np.float32)
    mask = rng.random(n) < weird
    out[mask] = _F32_ARR[rng.integers(0, len(F32), n)][mask]
    return [float(v) for v in out]


def _u32(rng: np.random.Generator, typical: int) -> int:
    r = rng.random()
    if r < 0.6:
        return typical
    if r < 0.8:
        return max(0, min(2**32 - 1, typical + int(rng.integers(-2, 3))))
    return int(_pick(rng, U32))


def _string(rng: np.random.Generator, typical: str = "base_link") -> str:
    return typical if rng.random() < 0.6 else str(_pick(rng, STRINGS))


def _header(rng: np.random.Generator, frame: str = "sensor") -> Any:
    sec = int(rng.integers(-(2**31), 2**31)) if rng.random() < 0.3 else int(rng.integers(0, 2**31))
    nanosec = int(rng.integers(0, 2**32)) if rng.random() < 0.1 else int(rng.integers(0, 1_000_000_000))
    stamp = make_msg(TS, "builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
    return make_msg(TS, "std_msgs/msg/Header", stamp=stamp, frame_id=_string(rng, frame))


def _byte_data(rng: np.random.Generator, want: int) -> np.ndarray:
    r = rng.random()
    n = want if r < 0.7 else (max(0, want + int(rng.integers(-3, 4))) if r < 0.9 else int(rng.integers(0, 64)))
    if n > 1 << 16:  # inconsistent headers may ask for gigabytes; a small buffer is just as wrong
        n = int(rng.integers(0, 256))
    return rng.integers(0, 256, n, dtype=np.uint8)


_FIELD_NAMES = ["x", "y", "z", "intensity", "ring", "t", "normal", "", "x"]


def _gen_cloud(rng: np.random.Generator) -> Any:
    fields: list[tuple[str, int, int, int]] = []
    if rng.random() < 0.7:  # a plausible layout: x, y, z then extras, perhaps with gaps
        dt = int(_pick(rng, [7, 7, 7, 8, 3, 5]))
        offset = 0
        for name in ("x", "y", "z"):
            fields.append((name, offset, dt, 1))
            offset += _SIZE[dt]
        for i in range(int(rng.integers(0, 4))):
            dt = int(rng.integers(1, 9))
            count = int(_pick(rng, [1, 1, 1, 0, 2, 3]))
            offset += int(rng.integers(0, 4))
            fields.append((f"f{i}" if rng.random() < 0.8 else "normal", offset, dt, count))
            offset += _SIZE[dt] * max(count, 1)
        end = offset
    else:  # anything
        for _ in range(int(rng.integers(0, 6))):
            fields.append((_pick(rng, _FIELD_NAMES), int(rng.integers(0, 40)) if rng.random() < 0.9 else
                           int(_pick(rng, U32)), int(rng.integers(0, 10)), int(_pick(rng, [0, 1, 1, 2, 3, 2**32 - 1]))))
        end = max([o + _SIZE.get(d, 1) * max(c, 1) for _, o, d, c in fields], default=0)
    if rng.random() < 0.05:
        fields.reverse()
    ps = _u32(rng, min(end + int(rng.integers(0, 5)), 2**32 - 1))
    h = int(_pick(rng, [1, 1, 1, 1, 0, 2, 3, 4])) if rng.random() < 0.9 else _u32(rng, 1)
    w = int(rng.integers(0, 40)) if rng.random() < 0.9 else _u32(rng, 5)
    row = w * ps
    pad = int(rng.integers(1, 2 * ps + 2)) if rng.random() < 0.25 else 0
    rs = min(_u32(rng, row + pad) if row + pad < 2**32 else int(_pick(rng, U32)), 2**32 - 1)
    data = _byte_data(rng, rs * h)
    if rng.random() < 0.03:  # a default-constructed message
        fields, ps, rs, h, w, data = [], 0, 0, 0, 0, np.zeros(0, np.uint8)
    return make_msg(
        TS, CLOUD, header=_header(rng, "lidar"), height=h, width=w,
        fields=[make_msg(TS, "sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=c)
                for n, o, d, c in fields],
        is_bigendian=bool(rng.random() < 0.3), point_step=ps, row_step=rs, data=data,
        is_dense=bool(rng.random() < 0.5),
    )  # fmt: skip


_ENCODINGS = [*_ENC, "8UC1", "8UC3", "16UC1", "16SC1", "32FC1", "32FC3", "64FC1", "8SC4", "32SC2", "8UC10",
              "", "yuv422", "8UC0", "8FC1", "16FC3", "32UC", "8uc1", "bgr8 "]  # fmt: skip


def _gen_image(rng: np.random.Generator) -> Any:
    enc = str(_pick(rng, _ENCODINGS))
    size, ch = _encoding(enc) or (1, 1)
    h = int(rng.integers(0, 9)) if rng.random() < 0.9 else _u32(rng, 2)
    w = int(rng.integers(0, 9)) if rng.random() < 0.9 else _u32(rng, 2)
    row = w * size * ch
    step = min(_u32(rng, row + (int(rng.integers(0, 9)) if rng.random() < 0.3 else 0)), 2**32 - 1)
    return make_msg(TS, IMAGE, header=_header(rng, "cam"), height=h, width=w, encoding=enc,
                    is_bigendian=int(rng.random() < 0.3), step=step, data=_byte_data(rng, step * h))


def _gen_compressed(rng: np.random.Generator) -> Any:
    n = int(rng.integers(0, 40)) if rng.random() < 0.8 else 0
    return make_msg(TS, COMPRESSED, header=_header(rng, "cam"), format=_string(rng, "jpeg"),
                    data=rng.integers(0, 256, n, dtype=np.uint8))


def _fast_payload(rng: np.random.Generator, msgtype: str) -> Any:
    """An Imu / Odometry / NavSatFix payload with adversarial values (serialised through from_payload)."""
    stamp = int(rng.integers(-(2**31), 2**31)) * 1_000_000_000 + int(rng.integers(0, 1_000_000_000))
    f = np.array(_f64(rng, 90))
    frame = _string(rng, "imu")
    if msgtype == IMU:
        return ImuData(stamp, frame, f[0:4], f[4:13].reshape(3, 3), f[13:16], f[16:25].reshape(3, 3),
                       f[25:28], f[28:37].reshape(3, 3))  # fmt: skip
    if msgtype == ODOM:
        return OdometryData(stamp, frame, _string(rng, "base_link"), f[0:3], f[3:7], f[7:43].reshape(6, 6),
                            f[43:46], f[46:49], f[49:85].reshape(6, 6))  # fmt: skip
    return NavSatFixData(stamp, frame, int(rng.integers(-128, 128)), int(rng.integers(0, 65536)), float(f[0]),
                         float(f[1]), float(f[2]), f[3:12].reshape(3, 3), int(rng.integers(0, 256)))  # fmt: skip


def _gen_info(rng: np.random.Generator) -> Any:
    roi = make_msg(TS, "sensor_msgs/msg/RegionOfInterest", x_offset=_u32(rng, 0), y_offset=_u32(rng, 0),
                   height=_u32(rng, 0), width=_u32(rng, 0), do_rectify=bool(rng.random() < 0.5))
    return make_msg(
        TS, INFO, header=_header(rng, "cam"), height=_u32(rng, 480), width=_u32(rng, 640),
        distortion_model=_pick(rng, ["plumb_bob", "rational_polynomial", "equidistant", "", "weird"]),
        d=np.array(_f64(rng, int(rng.integers(0, 16)))), k=np.array(_f64(rng, 9)), r=np.array(_f64(rng, 9)),
        p=np.array(_f64(rng, 12)), binning_x=_u32(rng, 0), binning_y=_u32(rng, 0), roi=roi,
    )  # fmt: skip


def _gen_radar(rng: np.random.Generator) -> Any:
    cls = TS.types["radar_msgs/msg/RadarReturn"]
    values = _f32(rng, 5 * int(rng.integers(0, 30)))
    returns = [cls(*values[i : i + 5]) for i in range(0, len(values), 5)]
    return make_msg(TS, RADAR, header=_header(rng, "radar"), returns=returns)


def _quaternion(rng: np.random.Generator) -> list[float]:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    r = rng.random()
    if r < 0.5:
        return [float(v) for v in q]
    if r < 0.7:  # near the tolerance on the squared norm (0.01)
        return [float(v) * math.sqrt(1.0 + float(rng.uniform(-0.02, 0.02))) for v in q]
    if r < 0.8:
        return [0.0, 0.0, 0.0, 0.0]
    return _f64(rng, 4, weird=0.5)


def _gen_transform(rng: np.random.Generator) -> Any:
    x, y, z, w = _quaternion(rng)
    t = _f64(rng, 3, weird=0.1)
    header = _header(rng, "map")
    if rng.random() < 0.3:
        header.frame_id = _pick(rng, ["", "odom", "map"])
    tf = make_msg(TS, "geometry_msgs/msg/Transform",
                  translation=make_msg(TS, "geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                  rotation=make_msg(TS, "geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w))
    child = _pick(rng, ["odom", "base", "", "map"]) if rng.random() < 0.4 else "base"
    return make_msg(TS, TFS, header=header, child_frame_id=child, transform=tf)


def _gen_tfm(rng: np.random.Generator) -> Any:
    return make_msg(TS, TFM, transforms=[_gen_transform(rng) for _ in range(int(rng.integers(0, 5)))])


_IDS = ["", "3", " 7 ", "-1", "+2", "0", "99999999999", "9" * 30, "²", "1_000", "x", "--5", "٣", "car",
        "-2147483648", "2147483648", "9223372036854775807", "9223372036854775808", "4" * 41]


def _gen_dets(rng: np.random.Generator, three_d: bool) -> Any:
    dets = []
    for _ in range(int(rng.integers(0, 5))):
        results = []
        for _ in range(int(rng.integers(0, 4))):
            cov = np.zeros(36) if rng.random() < 0.3 else np.array(_f64(rng, 36, weird=0.1))
            if rng.random() < 0.2:
                cov = np.diag(np.full(6, 1e9)).ravel()
            pose = make_msg(TS, "geometry_msgs/msg/PoseWithCovariance", covariance=cov)
            class_id = str(rng.integers(0, 10)) if rng.random() < 0.6 else _pick(rng, _IDS)
            hyp = make_msg(TS, "vision_msgs/msg/ObjectHypothesis", class_id=class_id,
                           score=float(rng.random()) if rng.random() < 0.7 else _pick(rng, F64))
            results.append(make_msg(TS, "vision_msgs/msg/ObjectHypothesisWithPose", hypothesis=hyp, pose=pose))
        v = _f64(rng, 6, weird=0.15)
        if three_d:
            x, y, z, w = _quaternion(rng)
            if rng.random() < 0.2:
                scale = _pick(rng, [1e-200, 1e-160, 1e150, 1e200, 2.0, 0.5])
                x, y, z, w = (c * scale for c in (x, y, z, w))
            center = make_msg(TS, "geometry_msgs/msg/Pose",
                              position=make_msg(TS, "geometry_msgs/msg/Point", x=v[0], y=v[1], z=v[2]),
                              orientation=make_msg(TS, "geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w))
            bbox = make_msg(TS, "vision_msgs/msg/BoundingBox3D", center=center,
                            size=make_msg(TS, "geometry_msgs/msg/Vector3", x=v[3], y=v[4], z=v[5]))
        else:
            center = make_msg(TS, "vision_msgs/msg/Pose2D", theta=v[2],
                              position=make_msg(TS, "vision_msgs/msg/Point2D", x=v[0], y=v[1]))
            bbox = make_msg(TS, "vision_msgs/msg/BoundingBox2D", center=center, size_x=v[3], size_y=v[4])
        ident = str(rng.integers(-1, 100)) if rng.random() < 0.5 else _pick(rng, _IDS)
        dets.append(make_msg(TS, "vision_msgs/msg/Detection3D" if three_d else "vision_msgs/msg/Detection2D",
                             header=_header(rng, "cam"), results=results, bbox=bbox, id=ident))
    return make_msg(TS, DET3 if three_d else DET2, header=_header(rng, "cam"), detections=dets)


GENERATORS: dict[str, Callable[[np.random.Generator], Any]] = {
    IMAGE: _gen_image,
    COMPRESSED: _gen_compressed,
    CLOUD: _gen_cloud,
    IMU: lambda rng: from_payload(_fast_payload(rng, IMU)),
    FIX: lambda rng: from_payload(_fast_payload(rng, FIX)),
    ODOM: lambda rng: from_payload(_fast_payload(rng, ODOM)),
    INFO: _gen_info,
    RADAR: _gen_radar,
    TFS: _gen_transform,
    TFM: _gen_tfm,
    DET2: lambda rng: _gen_dets(rng, False),
    DET3: lambda rng: _gen_dets(rng, True),
}


def _serialize(msg: Any, msgtype: str, fmt: Fmt, *, little: bool = True) -> bytes:
    if fmt == "ros1":
        payload = to_payload(msg, msgtype)  # the fast types round-trip through their payload
        return bytes(ROS1.serialize_ros1(from_payload(payload, typestore=ROS1), msgtype))
    return bytes(TS.serialize_cdr(msg, msgtype, little_endian=little))


def _formats(msgtype: str) -> list[tuple[Fmt, bool]]:
    return [("cdr", True), ("cdr", False), ("ros1", True)] if msgtype in FAST_MSGTYPES else [("cdr", True),
                                                                                           ("cdr", False)]


def run_adversarial(msgtype: str, n: int, seed: int) -> Tally:
    """``n`` adversarial messages of ``msgtype``, each serialised and decoded by every decoder."""
    rng = np.random.default_rng(seed)
    formats = _formats(msgtype)
    tally = Tally()
    for i in range(n):
        msg = GENERATORS[msgtype](rng)
        fmt, little = formats[i % len(formats)]
        _exercise(msgtype, _serialize(msg, msgtype, fmt, little=little), fmt, rng, tally)
    for fmt in ("cdr", "ros1"):
        _check_columns(msgtype, fmt, tally)
    return tally


# ----------------------------------------------------------------------------- mutated bytes


def _mutate(rng: np.random.Generator, data: bytes, *, keep_encapsulation: bool) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        op = int(rng.integers(0, 9))
        lo = 4 if keep_encapsulation and len(b) > 4 and rng.random() < 0.9 else 0
        if not b or op == 8:
            b += rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
            continue
        pos = int(rng.integers(lo, len(b))) if len(b) > lo else 0
        if op == 0:  # flip a bit
            b[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # a random byte
            b[pos] = int(rng.integers(0, 256))
        elif op in (2, 3):  # a 32-bit word (aligned, as lengths and sizes are) set to a boundary value
            pos = lo + ((pos - lo) & ~3)
            old = int.from_bytes(b[pos : pos + 4].ljust(4, b"\0"), "little")
            value = _pick(rng, [*U32, len(b), len(b) - pos, old + 1, max(old - 1, 0), old * 2 % 2**32])
            order: Literal["little", "big"] = "little" if rng.random() < 0.8 else "big"
            b[pos : pos + 4] = int(value % 2**32).to_bytes(4, order)
        elif op == 4:  # truncate
            del b[pos:]
        elif op == 5:  # insert bytes
            b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        elif op == 6:  # delete a slice
            del b[pos : pos + int(rng.integers(1, 9))]
        else:  # duplicate a slice
            b[pos:pos] = b[pos : pos + int(rng.integers(1, 17))]
    return bytes(b)


def _seeds(msgtype: str, rng: np.random.Generator) -> list[tuple[bytes, Fmt]]:
    """Valid serialised messages of ``msgtype`` to mutate: accepted adversarial messages."""
    out: list[tuple[bytes, Fmt]] = []
    formats = _formats(msgtype)
    for _ in range(5000):
        msg = GENERATORS[msgtype](rng)
        try:
            to_payload(msg, msgtype)
        except MessageError:
            continue
        fmt, little = formats[len(out) % len(formats)]
        raw = _serialize(msg, msgtype, fmt, little=little)
        if len(raw) <= 4096:
            out.append((raw, fmt))
        if len(out) >= 12:
            break
    assert out, f"no valid seed message for {msgtype}"
    return out


def run_mutations(msgtype: str, n: int, seed: int) -> Tally:
    """``n`` mutations of valid serialised ``msgtype`` messages, decoded by every decoder."""
    rng = np.random.default_rng(seed)
    seeds = _seeds(msgtype, rng)
    tally = Tally()
    for i in range(n):
        raw, fmt = seeds[i % len(seeds)]
        _exercise(msgtype, _mutate(rng, raw, keep_encapsulation=fmt == "cdr"), fmt, rng, tally)
    for fmt in ("cdr", "ros1"):
        _check_columns(msgtype, fmt, tally)
    return tally


# ----------------------------------------------------------------------------- the tests


def _verdict(tally: Tally, n: int, *, rejects: bool) -> None:
    """No failure; and a run that exercises both verdicts (adversarial messages of the fixed-layout types
    are all well-formed: NaN is data there, so only their mutated bytes get rejected)."""
    assert not tally.failures, f"{len(tally.failures)} of {n} inputs failed; first:\n" + "\n".join(tally.failures[:5])
    assert tally.accepted + tally.rejected == n
    assert tally.accepted, "a fuzz run that accepts nothing tests nothing"
    assert tally.rejected or not rejects, "a fuzz run that rejects nothing"


#: types whose adversarial messages include invalid ones (the others have no invalid well-formed message)
REJECTING = {IMAGE, COMPRESSED, CLOUD, TFS, TFM, DET2, DET3}


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_adversarial_messages(msgtype: str) -> None:
    tally = run_adversarial(msgtype, DEFAULT_INPUTS, seed=MSGTYPES.index(msgtype))
    _verdict(tally, DEFAULT_INPUTS, rejects=msgtype in REJECTING)


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_mutated_bytes(msgtype: str) -> None:
    tally = run_mutations(msgtype, DEFAULT_INPUTS, seed=100 + MSGTYPES.index(msgtype))
    _verdict(tally, DEFAULT_INPUTS, rejects=True)


@pytest.mark.slow
@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_adversarial_messages_slow(msgtype: str, request: pytest.FixtureRequest) -> None:
    _opt_in_slow(request)
    tally = run_adversarial(msgtype, SLOW_INPUTS, seed=1000 + MSGTYPES.index(msgtype))
    _verdict(tally, SLOW_INPUTS, rejects=msgtype in REJECTING)


@pytest.mark.slow
@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_mutated_bytes_slow(msgtype: str, request: pytest.FixtureRequest) -> None:
    _opt_in_slow(request)
    tally = run_mutations(msgtype, SLOW_INPUTS, seed=2000 + MSGTYPES.index(msgtype))
    _verdict(tally, SLOW_INPUTS, rejects=True)
