"""Shared pieces of the spatial calibration tools: the result/verdict record, SO(3) helpers,
pose-error metrics and the rig write-back rule (write only when the verdict is ``ok``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError
from edgefuse.rig import FrameGraph, Rig, Sensor, Transform, merge_rig_file, save_rig

F64 = npt.NDArray[np.float64]

#: Verdicts every spatial tool returns.  Only ``ok`` results are ever written to a rig file.
OK = "ok"
REFUSED = "refused"              # the data cannot tell (too few edges/views, degenerate geometry)
NO_IMPROVEMENT = "no_improvement"  # refinement did not beat the initial guess: the guess is kept
VERDICTS = (OK, REFUSED, NO_IMPROVEMENT)


@dataclass
class SpatialResult:
    """Outcome of one spatial calibration.

    ``T`` is the estimated ``T_<to>_from_<from>`` (``to_frame`` ← ``from_frame``) or None when refused;
    for ``no_improvement`` it is the initial guess, unchanged.  ``metrics`` holds JSON-serialisable
    numbers (costs, residuals, uncertainties), ``reasons`` why a verdict other than ``ok`` was given.
    """

    tool: str
    verdict: str
    to_frame: str
    from_frame: str
    T: Transform | None = None
    initial: Transform | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report: verdict, reasons, frames, the transform (4x4, rpy in degrees) and metrics."""
        def pose(T: Transform | None) -> dict[str, Any] | None:
            if T is None:
                return None
            return {"matrix": T.matrix.tolist(), "translation_m": T.t.tolist(),
                    "rpy_deg": T.to_euler(degrees=True).tolist()}
        return {"tool": self.tool, "verdict": self.verdict, "reasons": list(self.reasons),
                "transform": f"T_{self.to_frame}_from_{self.from_frame}",
                "result": pose(self.T), "initial": pose(self.initial), "metrics": _jsonable(self.metrics)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def write_report(report: dict[str, Any], path: str | Path) -> None:
    """Write a JSON report (NaN/inf become null)."""
    Path(path).write_text(json.dumps(_jsonable(report), indent=2) + "\n", encoding="utf-8")


# -- SO(3) ------------------------------------------------------------------------------------------
def skew(w: npt.ArrayLike) -> F64:
    x, y, z = np.asarray(w, dtype=np.float64)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def exp_so3(w: npt.ArrayLike) -> F64:
    """Rotation matrix of the rotation vector ``w`` (rad), Rodrigues' formula."""
    w = np.asarray(w, dtype=np.float64)
    th = float(np.linalg.norm(w))
    W = skew(w)
    if th < 1e-12:
        return np.eye(3) + W
    R: F64 = np.eye(3) + np.sin(th) / th * W + (1 - np.cos(th)) / th**2 * (W @ W)
    return R


def log_so3(R: npt.ArrayLike) -> F64:
    """Rotation vector (rad) of a rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    c = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    th = float(np.arccos(c))
    v = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if th < 1e-9:
        return v / 2
    if np.pi - th < 1e-6:  # near pi: axis from the symmetric part
        B = (R + np.eye(3)) / 2
        ax = np.sqrt(np.clip(np.diag(B), 0, None))
        i = int(np.argmax(ax))
        ax = B[i] / ax[i]
        near_pi: F64 = ax / np.linalg.norm(ax) * th
        return near_pi
    rotvec: F64 = v * th / (2 * np.sin(th))
    return rotvec


def perturb(T: Transform, rot_vec_rad: npt.ArrayLike, trans_m: npt.ArrayLike) -> Transform:
    """``T`` with a rotation (rotation vector, rad) and translation applied on the left (in the
    ``to`` frame): ``T' = ΔT · T``."""
    D = Transform.from_rt(exp_so3(rot_vec_rad), np.asarray(trans_m, dtype=np.float64))
    return D @ T


def random_perturbation(rng: np.random.Generator, max_rot_deg: float, max_trans_m: float) -> tuple[F64, F64]:
    """A random rotation vector of angle exactly ``max_rot_deg`` (rad vector) and a random translation
    of length exactly ``max_trans_m`` — the worst case of "up to" a given perturbation."""
    a = rng.normal(size=3)
    b = rng.normal(size=3)
    return (a / np.linalg.norm(a) * np.deg2rad(max_rot_deg), b / np.linalg.norm(b) * max_trans_m)


def pose_error(T_est: Transform, T_ref: Transform) -> tuple[float, float]:
    """(rotation error in degrees, translation error in metres) of ``T_est`` against ``T_ref``
    (both ``T_a_from_b``): the angle of ``R_est·R_refᵀ`` and ``|t_est − t_ref|``."""
    dR = T_est.R @ T_ref.R.T
    ang = float(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0))))
    return ang, float(np.linalg.norm(T_est.t - T_ref.t))


def orthonormalize(R: npt.ArrayLike) -> F64:
    U, _, Vt = np.linalg.svd(np.asarray(R, dtype=np.float64))
    M = U @ Vt
    if np.linalg.det(M) < 0:
        U[:, -1] *= -1
        M = U @ Vt
    out: F64 = M
    return out


def kabsch(a: npt.ArrayLike, b: npt.ArrayLike, w: npt.ArrayLike | None = None) -> F64:
    """Rotation R minimising ``Σ w·|b_i − R·a_i|²`` for direction sets a, b of shape (N, 3)."""
    A = np.asarray(a, dtype=np.float64)
    B = np.asarray(b, dtype=np.float64)
    ww = np.ones(len(A)) if w is None else np.asarray(w, dtype=np.float64)
    H = (A * ww[:, None]).T @ B
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R: F64 = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    return R


# -- rig write-back ---------------------------------------------------------------------------------
def partial_rig_for(result: SpatialResult, rig: Rig) -> Rig:
    """A partial rig holding the one edge ``result`` estimates, expressed as the edge the existing
    ``rig`` already has between the two frames' (the child keeps its parent): if ``from_frame`` is a
    child of ``to_frame`` the edge is ``T_to_from_from``, if ``to_frame`` is the child of
    ``from_frame`` it is the inverse.  Other layouts are refused (the tool cannot tell which edge of a
    longer chain to change)."""
    if result.T is None:
        raise CalibrationError(f"{result.tool}: no transform to write (verdict {result.verdict})")
    a, b = result.to_frame, result.from_frame
    g = FrameGraph()
    if rig.frames.parent(b) == a:
        g.add(a, b, result.T)
    elif rig.frames.parent(a) == b:
        g.add(b, a, result.T.inverse())
    else:
        parent = rig.frames.parent(b)
        if parent is None:
            raise CalibrationError(f"{result.tool}: frames {a!r} and {b!r} are not parent and child in the"
                                   " rig; cannot tell which edge to update")
        # b hangs off another frame: update b's own edge so that lookup(a, b) equals the result
        f: str | None = a
        while f is not None:
            if f == b:
                raise CalibrationError(f"{result.tool}: {a!r} lies below {b!r} in the rig but is not its child;"
                                       " cannot tell which edge to update")
            f = rig.frames.parent(f)
        T_parent_from_a = rig.transform(parent, a)
        g.add(parent, b, T_parent_from_a @ result.T)
    sensors: dict[str, Sensor] = {}
    return Rig(base_frame=rig.base_frame, frames=g, cameras={}, sensors=sensors)


def write_result_to_rig(result: SpatialResult, rig_path: str | Path, *, create_base: Rig | None = None) -> bool:
    """Merge an ``ok`` result into the rig file at ``rig_path`` (created from ``create_base`` when the
    file does not exist).  Returns True when written; a result that is not ``ok`` is never written."""
    if not result.ok:
        return False
    p = Path(rig_path)
    if p.exists():
        from edgefuse.rig import load_rig

        merge_rig_file(p, partial_rig_for(result, load_rig(p)))
    else:
        if create_base is None:
            raise CalibrationError(f"rig file {p} does not exist", file=p)
        save_rig(create_base.merged(partial_rig_for(result, create_base)), p)
    return True
