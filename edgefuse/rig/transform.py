"""Rigid transforms and the static frame graph.

A :class:`Transform` ``T_a_from_b`` is a 4x4 float64 homogeneous matrix that maps points expressed in
frame ``b`` into frame ``a``: ``p_a = T_a_from_b.R @ p_b + T_a_from_b.t``.  Composition follows the
names: ``T_a_from_c = T_a_from_b @ T_b_from_c``.

A :class:`FrameGraph` is a tree of such static transforms (each frame has at most one parent);
:meth:`FrameGraph.lookup` walks it in either direction.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError

F64 = npt.NDArray[np.float64]

#: Largest accepted ``max |R·Rᵀ - I|`` for a rotation matrix.
ORTHONORMAL_TOL = 1e-6
#: Largest accepted ``| ‖q‖ - 1 |`` for a quaternion before it is normalised.
QUATERNION_NORM_TOL = 1e-5


class CalibrationWarning(UserWarning):
    """Emitted when calibration input was repaired (e.g. a rotation re-orthonormalised)."""


def orthonormality_error(R: npt.ArrayLike) -> float:
    """Return ``max |R·Rᵀ - I|`` for a 3x3 matrix (0 for a perfect rotation)."""
    m = np.asarray(R, dtype=np.float64)
    return float(np.max(np.abs(m @ m.T - np.eye(3))))


def check_rotation(R: npt.ArrayLike, *, normalize: bool = False, what: str = "rotation") -> F64:
    """Validate a 3x3 rotation matrix and return it as a float64 copy.

    Raises :class:`CalibrationError` when ``R`` is not 3x3 and finite, when
    ``max |R·Rᵀ - I| > ORTHONORMAL_TOL`` or when ``det R`` is not +1 (a reflection).  With
    ``normalize=True`` a non-orthonormal (but proper, det > 0) matrix is replaced by the nearest
    rotation (SVD: ``U·Vᵀ``) and a :class:`CalibrationWarning` reports how far off it was.
    """
    m = np.array(R, dtype=np.float64)
    if m.shape != (3, 3):
        raise CalibrationError(f"{what} must be 3x3, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise CalibrationError(f"{what} contains NaN or infinite values")
    err = orthonormality_error(m)
    det = float(np.linalg.det(m))
    if det <= 0.0:
        raise CalibrationError(f"{what} has det {det:.6g} <= 0 (a reflection or degenerate), not a rotation")
    if err > ORTHONORMAL_TOL or abs(det - 1.0) > 3 * ORTHONORMAL_TOL:
        if not normalize:
            raise CalibrationError(
                f"{what} is not orthonormal: max|R*R^T - I| = {err:.3g} (tolerance {ORTHONORMAL_TOL:g}),"
                f" det = {det:.9g}"
            )
        u, _, vt = np.linalg.svd(m)
        fixed = u @ vt
        warnings.warn(
            f"{what} re-orthonormalised: max|R*R^T - I| was {err:.3g}, largest entry change"
            f" {float(np.max(np.abs(fixed - m))):.3g}",
            CalibrationWarning,
            stacklevel=3,
        )
        m = fixed
    return m


def rotation_from_quat_xyzw(q: npt.ArrayLike) -> F64:
    """3x3 rotation from a unit quaternion (x, y, z, w); norms off by more than
    ``QUATERNION_NORM_TOL`` raise :class:`CalibrationError`, smaller errors are normalised away."""
    v = np.asarray(q, dtype=np.float64).reshape(-1)
    if v.shape != (4,) or not np.all(np.isfinite(v)):
        raise CalibrationError(f"quaternion must be 4 finite numbers (x, y, z, w), got {v.tolist()}")
    n = float(np.linalg.norm(v))
    if abs(n - 1.0) > QUATERNION_NORM_TOL:
        raise CalibrationError(f"quaternion {v.tolist()} has norm {n:.9g}, not 1"
                               f" (tolerance {QUATERNION_NORM_TOL:g})")
    x, y, z, w = v / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_xyzw_from_rotation(R: npt.ArrayLike) -> F64:
    """Unit quaternion (x, y, z, w) with w >= 0 for a rotation matrix (Shepperd's method)."""
    m = np.asarray(R, dtype=np.float64)
    tr = float(np.trace(m))
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] >= m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q = np.asarray(q / np.linalg.norm(q), dtype=np.float64)
    return -q if q[3] < 0 else q


def rotation_from_rpy(rpy: npt.ArrayLike, *, degrees: bool = False) -> F64:
    """Rotation ``Rz(yaw) · Ry(pitch) · Rx(roll)`` from (roll, pitch, yaw): the ROS/URDF convention
    (rotate about fixed x, then fixed y, then fixed z)."""
    a = np.asarray(rpy, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise CalibrationError(f"roll/pitch/yaw must be 3 finite numbers, got {a.tolist()}")
    if degrees:
        a = np.deg2rad(a)
    cr, sr = np.cos(a[0]), np.sin(a[0])
    cp, sp = np.cos(a[1]), np.sin(a[1])
    cy, sy = np.cos(a[2]), np.sin(a[2])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx  # type: ignore[no-any-return]


class Transform:
    """A rigid transform ``T_a_from_b`` as a 4x4 float64 homogeneous matrix (metres).

    Construct with a 4x4 (or 3x4) matrix, or with :meth:`from_rt`, :meth:`from_quat_xyzw`,
    :meth:`from_euler`.  The rotation is validated (see :func:`check_rotation`); ``normalize=True``
    repairs a slightly non-orthonormal rotation with a warning instead of raising.
    """

    __slots__ = ("_m",)

    def __init__(self, matrix: npt.ArrayLike | None = None, *, normalize: bool = False) -> None:
        if matrix is None:
            self._m = np.eye(4)
            return
        m = np.array(matrix, dtype=np.float64)
        if m.shape == (3, 4):
            m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
        if m.shape != (4, 4):
            raise CalibrationError(f"transform must be 4x4 or 3x4, got shape {m.shape}")
        if not np.all(np.isfinite(m)):
            raise CalibrationError("transform contains NaN or infinite values")
        if np.max(np.abs(m[3] - [0.0, 0.0, 0.0, 1.0])) > 1e-9:
            raise CalibrationError(f"last row of a homogeneous transform must be [0, 0, 0, 1],"
                                   f" got {m[3].tolist()}")
        m[3] = [0.0, 0.0, 0.0, 1.0]
        m[:3, :3] = check_rotation(m[:3, :3], normalize=normalize)
        self._m = m
        self._m.setflags(write=False)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Transform:
        """The identity transform."""
        return cls()

    @classmethod
    def from_rt(cls, R: npt.ArrayLike, t: npt.ArrayLike, *, normalize: bool = False) -> Transform:
        """From a 3x3 rotation and a (3,) translation in metres."""
        tt = np.asarray(t, dtype=np.float64).reshape(-1)
        if tt.shape != (3,):
            raise CalibrationError(f"translation must have 3 elements, got {tt.size}")
        m = np.eye(4)
        m[:3, :3] = np.asarray(R, dtype=np.float64)
        m[:3, 3] = tt
        return cls(m, normalize=normalize)

    @classmethod
    def from_quat_xyzw(cls, t: npt.ArrayLike, q: npt.ArrayLike) -> Transform:
        """From a translation (3,) in metres and a unit quaternion (x, y, z, w) (ROS order)."""
        return cls.from_rt(rotation_from_quat_xyzw(q), t)

    @classmethod
    def from_quat_wxyz(cls, t: npt.ArrayLike, q: npt.ArrayLike) -> Transform:
        """From a translation (3,) and a quaternion in (w, x, y, z) order (nuScenes, Eigen storage)."""
        v = np.asarray(q, dtype=np.float64).reshape(-1)
        if v.shape != (4,):
            raise CalibrationError(f"quaternion must have 4 elements (w, x, y, z), got {v.size}")
        return cls.from_rt(rotation_from_quat_xyzw(np.r_[v[1:], v[0]]), t)

    @classmethod
    def from_euler(cls, t: npt.ArrayLike, rpy: npt.ArrayLike, *, degrees: bool = False) -> Transform:
        """From a translation and (roll, pitch, yaw), ``R = Rz(yaw)·Ry(pitch)·Rx(roll)`` (ROS/URDF rpy)."""
        return cls.from_rt(rotation_from_rpy(rpy, degrees=degrees), t)

    @classmethod
    def from_translation(cls, t: npt.ArrayLike) -> Transform:
        """A pure translation (metres)."""
        return cls.from_rt(np.eye(3), t)

    # -- accessors ----------------------------------------------------------------------------
    @property
    def matrix(self) -> F64:
        """The read-only 4x4 float64 matrix."""
        return self._m

    @property
    def R(self) -> F64:  # noqa: N802  (rotation matrix, math notation)
        """3x3 rotation (read-only view)."""
        return self._m[:3, :3]

    @property
    def t(self) -> F64:
        """(3,) translation in metres (read-only view)."""
        return self._m[:3, 3]

    def to_quat_xyzw(self) -> F64:
        """Rotation as a unit quaternion (x, y, z, w) with w >= 0."""
        return quat_xyzw_from_rotation(self.R)

    def to_euler(self, *, degrees: bool = False) -> F64:
        """(roll, pitch, yaw) such that ``R = Rz(yaw)·Ry(pitch)·Rx(roll)``; pitch in [-π/2, π/2]."""
        r = self.R
        pitch = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
        if abs(r[2, 0]) < 1.0 - 1e-12:
            roll = np.arctan2(r[2, 1], r[2, 2])
            yaw = np.arctan2(r[1, 0], r[0, 0])
        else:  # gimbal lock: put everything into yaw
            roll = 0.0
            yaw = np.arctan2(-r[0, 1], r[1, 1])
        out = np.array([roll, pitch, yaw], dtype=np.float64)
        return np.rad2deg(out) if degrees else out

    # -- algebra ------------------------------------------------------------------------------
    def inverse(self) -> Transform:
        """``T_b_from_a`` for ``T_a_from_b``: ``[R⁻¹, -R⁻¹t]``.

        ``R⁻¹`` is the true matrix inverse, not ``Rᵀ``: calibration files carry rotations that are
        orthonormal only to ~1e-7, and ``inverse().inverse()`` must give the input back to rounding
        (with ``Rᵀ`` a KITTI projection would drift by ~1e-5 px)."""
        m = np.eye(4)
        r_inv = np.linalg.inv(self.R)
        m[:3, :3] = r_inv
        m[:3, 3] = -(r_inv @ self.t)
        return Transform._trusted(m)

    def __matmul__(self, other: Transform) -> Transform:
        if not isinstance(other, Transform):
            return NotImplemented
        return Transform._trusted(self._m @ other._m)

    def apply(self, points: npt.ArrayLike) -> F64:
        """Map points (N, 3) (or one (3,)) from the source frame into the target frame; float64."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape == (3,):
            return self.R @ p + self.t
        if p.ndim != 2 or p.shape[1] != 3:
            raise CalibrationError(f"points must have shape (N, 3), got {p.shape}")
        return p @ self.R.T + self.t

    def allclose(self, other: Transform, atol: float = 1e-9) -> bool:
        """True when both matrices agree elementwise within ``atol``."""
        return bool(np.allclose(self._m, other._m, rtol=0.0, atol=atol))

    @classmethod
    def _trusted(cls, m: F64) -> Transform:
        # Products and inverses of valid transforms: skip re-validation (drift is ~1e-16 per step).
        obj = cls.__new__(cls)
        obj._m = m
        obj._m.setflags(write=False)
        return obj

    def __repr__(self) -> str:
        t = ", ".join(f"{v:.6g}" for v in self.t)
        q = ", ".join(f"{v:.6g}" for v in self.to_quat_xyzw())
        return f"Transform(t=[{t}], q_xyzw=[{q}])"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and bool(np.array_equal(self._m, other._m))

    def __hash__(self) -> int:
        return hash(self._m.tobytes())


@dataclass(frozen=True, slots=True)
class Edge:
    """One static transform of the frame graph: ``T_parent_from_child``."""

    parent: str
    child: str
    T_parent_from_child: Transform


class FrameGraph:
    """A tree of named frames joined by static transforms.

    Each frame has at most one parent; adding a second parent for a frame, an edge from a frame to
    itself, or an edge that would close a cycle raises :class:`CalibrationError`.
    """

    def __init__(self) -> None:
        self._edges: dict[str, Edge] = {}  # child -> edge to its parent
        self._frames: dict[str, None] = {}  # insertion-ordered set of all frames

    def add(self, parent: str, child: str, T_parent_from_child: Transform) -> None:
        """Add the static transform ``T_parent_from_child`` (maps child-frame points into ``parent``)."""
        if not isinstance(T_parent_from_child, Transform):
            raise CalibrationError(f"transform {parent} <- {child} must be a Transform")
        for name in (parent, child):
            if not isinstance(name, str) or not name:
                raise CalibrationError(f"frame names must be non-empty strings, got {name!r}")
        if parent == child:
            raise CalibrationError(f"frame {child!r} cannot be its own parent")
        if child in self._edges:
            raise CalibrationError(
                f"frame {child!r} already has parent {self._edges[child].parent!r};"
                f" cannot add parent {parent!r}"
                " (a frame has exactly one parent)"
            )
        if child in self._ancestors(parent):
            raise CalibrationError(f"adding {parent!r} <- {child!r} would create a cycle: {child!r} is an"
                                   f" ancestor of {parent!r}")
        self._edges[child] = Edge(parent, child, T_parent_from_child)
        self._frames.setdefault(parent)
        self._frames.setdefault(child)

    def add_frame(self, name: str) -> None:
        """Register a frame with no transform yet (e.g. the base frame of a rig with one sensor)."""
        if not isinstance(name, str) or not name:
            raise CalibrationError(f"frame names must be non-empty strings, got {name!r}")
        self._frames.setdefault(name)

    def _ancestors(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def __contains__(self, frame: object) -> bool:
        return frame in self._frames

    def __iter__(self) -> Iterator[Edge]:
        return iter(self._edges.values())

    def __len__(self) -> int:
        return len(self._edges)

    @property
    def frames(self) -> list[str]:
        """All frame names, in insertion order."""
        return list(self._frames)

    def parent(self, frame: str) -> str | None:
        """The parent of ``frame`` (None for a root)."""
        e = self._edges.get(frame)
        return e.parent if e else None

    def root(self, frame: str) -> str:
        """The root of the tree that holds ``frame``."""
        self._require(frame)
        return self._ancestors(frame)[-1]

    def _require(self, *frames: str) -> None:
        missing = [f for f in frames if f not in self._frames]
        if missing:
            known = ", ".join(sorted(self._frames)) or "none"
            names = ", ".join(map(repr, missing))
            raise CalibrationError(f"unknown frame(s) {names} (known frames: {known})")

    def _to_root(self, frame: str) -> tuple[list[str], list[Transform]]:
        """Frames from ``frame`` up to its root and ``T_ancestor_from_frame`` for each of them."""
        chain = [frame]
        Ts = [Transform.identity()]
        while chain[-1] in self._edges:
            e = self._edges[chain[-1]]
            chain.append(e.parent)
            Ts.append(e.T_parent_from_child @ Ts[-1])
        return chain, Ts

    def lookup(self, to_frame: str, from_frame: str) -> Transform:
        """``T_to_from_from``: maps points expressed in ``from_frame`` into ``to_frame``.

        Walks up from both frames to their lowest common ancestor.  Unknown or disconnected frames
        raise :class:`CalibrationError` naming them.
        """
        self._require(to_frame, from_frame)
        chain_to, Ts_to = self._to_root(to_frame)
        chain_from, Ts_from = self._to_root(from_frame)
        index_to = {f: i for i, f in enumerate(chain_to)}
        for j, f in enumerate(chain_from):
            if f in index_to:
                T_anc_from_to = Ts_to[index_to[f]]
                T_anc_from_from = Ts_from[j]
                return T_anc_from_to.inverse() @ T_anc_from_from
        raise CalibrationError(
            f"frames {to_frame!r} and {from_frame!r} are not connected (roots {chain_to[-1]!r} and"
            f" {chain_from[-1]!r})"
        )

    def connected(self, a: str, b: str) -> bool:
        """True when both frames exist and share a root."""
        return a in self._frames and b in self._frames and self.root(a) == self.root(b)

    def copy(self) -> FrameGraph:
        """A shallow copy (transforms are immutable)."""
        g = FrameGraph()
        g._edges = dict(self._edges)
        g._frames = dict(self._frames)
        return g

    def replace(self, parent: str, child: str, T_parent_from_child: Transform) -> None:
        """Set the edge of ``child`` (replacing its current parent edge if any); cycles still raise."""
        old = self._edges.pop(child, None)
        try:
            self.add(parent, child, T_parent_from_child)
        except CalibrationError:
            if old is not None:
                self._edges[child] = old
            raise

    @classmethod
    def from_edges(cls, edges: Sequence[tuple[str, str, Transform]]) -> FrameGraph:
        """Build from ``(parent, child, T_parent_from_child)`` triples."""
        g = cls()
        for parent, child, T in edges:
            g.add(parent, child, T)
        return g
