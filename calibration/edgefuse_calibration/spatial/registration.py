"""Cloud-to-cloud extrinsics (LiDAR-LiDAR, radar-LiDAR) by ICP, with verdict rules that refuse when the
data cannot tell.

``register_clouds(source, target, T_target_from_source_guess)`` refines ``T_target_from_source``.
``source``/``target`` are one cloud each ((N, 3) arrays, source frame / target frame) or equal-length
sequences of clouds (scan pairs nearest in time, registered jointly: one transform, all pairs' residuals).

Engines:

- 3-D (``planar=False``): Open3D multi-scale ICP (``point_to_plane``, ``gicp`` or ``point_to_point``);
  one scan pair only.  Open3D is imported lazily (the ``calib`` extra).
- planar (``planar=True``, for 2-D scanning radars whose z, roll and pitch are unobservable): the update
  is x, y, yaw in the target frame, ``T = D(x, y, yaw) · T_guess``, estimated by a numpy Gauss-Newton ICP
  on the xy coordinates of the source points mapped by the guess against the xy of the target points
  (point-to-line with a small point-to-point term; ``point_to_point`` for pure point distances).  Select
  the target points the radar can see (e.g. a height band above the ground) before calling.

Verdict (all checks run, every failed one is a reason; see :class:`RegistrationChecks`):

1. enough finite points, fitness (fraction of source points with a target neighbour within the finest
   ``max_corr_m``) >= ``min_fitness`` and enough correspondences;
2. geometry: the eigenvalues of the point-to-plane information matrix (each rotation scaled by its RMS
   lever arm, so all directions are in metres) — a flat plane, a line or a corridor leaves a direction with
   (almost) no information: refused, naming that direction;
3. several starts (the guess + seeded perturbations of the expected guess error) must converge to the
   same pose, and no distinct pose may reach an equally good cost;
4. contrast: the truncated cost at the result must be clearly below the cost at poses displaced from it
   by ``null_rot_deg`` / ``null_trans_m`` in random directions (the background level of a wrong pose);
5. the result must beat the guess by its own (truncated nearest-neighbour) cost, else ``no_improvement``
   and the guess is kept.

The cost is ``mean(min(d, τ)²) / τ²`` over source points, ``d`` the nearest-neighbour distance (2-D in
planar mode), ``τ`` the finest ``max_corr_m``: 0 is perfect, 1 is "no source point near the target".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from edgefuse.errors import CalibrationError
from edgefuse.rig import Transform
from edgefuse_calibration.spatial._common import (
    F64,
    NO_IMPROVEMENT,
    OK,
    REFUSED,
    SpatialResult,
    exp_so3,
    pose_error,
    random_perturbation,
)

_METHODS = ("point_to_plane", "gicp", "point_to_point")
_DIR_3D = ("rotation about x", "rotation about y", "rotation about z", "translation along x",
           "translation along y", "translation along z")
_DIR_2D = ("translation along x", "translation along y", "yaw")


@dataclass(frozen=True)
class RegistrationChecks:
    """Thresholds of the registration verdict (defaults suit guesses within a few degrees / decimetres).

    - ``n_starts``: ICP runs: the guess plus ``n_starts - 1`` seeded perturbations of exactly
      ``start_rot_deg`` and ``start_trans_m`` (yaw and xy only in planar mode).  At least
      ``min_agree_frac`` of them must end within ``agree_rot_deg`` / ``agree_trans_m`` of the best, and
      no start may reach a cost within ``cost_tie`` (relative) of the best at a pose outside that tolerance.
    - ``n_null`` poses displaced from the result by exactly ``null_rot_deg`` and ``null_trans_m``:
      ``contrast = 1 - cost(result) / median(cost(null))`` must be >= ``min_contrast``; and along each
      axis alone (± ``null_trans_m`` per translation axis, ± ``null_rot_deg`` per rotation axis; x, y,
      yaw in planar mode) ``1 - cost(result) / min(cost(+), cost(-))`` must be >= ``min_axis_contrast``
      (a valley along one direction, e.g. a road seen by a sparse radar, is refused).
    - the result may differ from the guess by at most ``max_change_factor`` times the start
      perturbation (``start_rot_deg``, ``start_trans_m``): set those to the expected guess error.
    - ``min_correspondences``: source points with a target neighbour within the finest distance.
    - ``min_eig``: smallest eigenvalue of the normalised information matrix ``JᵀJ / N`` (1/N of the
      point-to-plane Jacobian, each rotation in metres at its RMS lever arm); below it the direction is
      unconstrained.  For a balanced 3-D scene the eigenvalues are ~0.1-0.5, a flat plane gives ~0.
    - ``improve_min``: the result's cost must be below ``cost(guess) - improve_min``.
    - with 4 or more scan pairs, the even-numbered and the odd-numbered pairs are registered alone
      (from the result): each must end within ``subset_rot_deg`` / ``subset_trans_m`` of the result
      (a cross-validation over time; a result one subset does not reproduce is refused).
    """

    n_starts: int = 5
    start_rot_deg: float = 2.0
    start_trans_m: float = 0.2
    agree_rot_deg: float = 0.3
    agree_trans_m: float = 0.05
    min_agree_frac: float = 0.5
    cost_tie: float = 0.02
    n_null: int = 16
    null_rot_deg: float = 5.0
    null_trans_m: float = 0.5
    min_contrast: float = 0.2
    min_axis_contrast: float = 0.1
    max_change_factor: float = 3.0
    min_correspondences: int = 50
    min_eig: float = 0.01
    improve_min: float = 1e-6
    subset_rot_deg: float = 1.0
    subset_trans_m: float = 0.15
    seed: int = 0


# -- input -------------------------------------------------------------------------------------------
def _finite(p: npt.ArrayLike, what: str) -> F64:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise CalibrationError(f"{what} must have shape (N, 3), got {a.shape}")
    return a[np.isfinite(a).all(axis=1)]


def _as_pairs(source: Any, target: Any) -> list[tuple[F64, F64]]:
    def many(x: Any) -> bool:
        return isinstance(x, (list, tuple)) and len(x) > 0 and np.asarray(x[0]).ndim == 2
    if many(source) != many(target):
        raise CalibrationError("give one source and one target cloud, or equal-length sequences of clouds")
    if not many(source):
        return [(_finite(source, "source cloud"), _finite(target, "target cloud"))]
    if len(source) != len(target):
        raise CalibrationError(f"{len(source)} source clouds but {len(target)} target clouds")
    return [(_finite(s, f"source cloud {i}"), _finite(t, f"target cloud {i}"))
            for i, (s, t) in enumerate(zip(source, target, strict=True))]


def _voxel(p: F64, v: float) -> F64:
    """Centroid of the points in each cubic (or square, for 2-D points) voxel of size ``v``."""
    if v <= 0 or len(p) == 0:
        return p
    _, inv, cnt = np.unique(np.floor(p / v).astype(np.int64), axis=0, return_inverse=True, return_counts=True)
    out = np.zeros((len(cnt), p.shape[1]))
    np.add.at(out, inv.ravel(), p)
    return out / cnt[:, None]


def _normals(pts: F64, tree: cKDTree, k: int = 10) -> F64:
    """Unit normals (smallest-variance direction of the ``k`` nearest neighbours), 2-D or 3-D."""
    k = min(k, len(pts))
    _, idx = tree.query(pts, k=k)
    nb = pts[idx] - pts[idx].mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", nb, nb)
    _, vec = np.linalg.eigh(cov)
    return np.asarray(vec[:, :, 0], dtype=np.float64)


@dataclass
class _Target:
    pts: F64
    tree: cKDTree
    normals: F64


def _target(pts: F64) -> _Target:
    tree = cKDTree(pts)
    return _Target(pts, tree, _normals(pts, tree))


# -- poses -------------------------------------------------------------------------------------------
def _planar_delta(x: float, y: float, yaw: float) -> F64:
    D = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    D[:2, :2] = [[c, -s], [s, c]]
    D[:2, 3] = [x, y]
    return D


def _perturbation(rng: np.random.Generator, rot_deg: float, trans_m: float, planar: bool,
                  free: F64 | None = None) -> F64:
    """A left perturbation of exactly ``rot_deg`` and ``trans_m`` in random directions (planar: yaw sign
    and xy direction; components with ``free`` 0 are zeroed)."""
    if planar:
        ang = rng.uniform(0, 2 * np.pi)
        v = np.array([trans_m * np.cos(ang), trans_m * np.sin(ang), np.deg2rad(rot_deg) * rng.choice([-1.0, 1.0])])
        if free is not None:
            v = v * free
        return _planar_delta(float(v[0]), float(v[1]), float(v[2]))
    w, t = random_perturbation(rng, rot_deg, trans_m)
    D = np.eye(4)
    D[:3, :3] = exp_so3(w)
    D[:3, 3] = t
    return D


def _pose_diff(A: F64, B: F64) -> tuple[float, float]:
    return pose_error(Transform(A, normalize=True), Transform(B, normalize=True))


# -- cost and information ----------------------------------------------------------------------------
class _Problem:
    """Source clouds and target structures of all pairs, in the dimension the matching uses."""

    def __init__(self, pairs: list[tuple[F64, F64]], T0: F64, planar: bool, voxel_m: float, tau: float):
        self.planar = planar
        self.T0 = T0
        self.tau = tau
        self.dim = 2 if planar else 3
        self.src: list[F64] = []   # planar: xy of T0·source (target frame); 3-D: source frame
        self.tgt: list[_Target] = []
        for s, t in pairs:
            if planar:
                s2 = _voxel((s @ T0[:3, :3].T + T0[:3, 3])[:, :2], voxel_m)
                t2 = _voxel(t[:, :2], voxel_m)
            else:
                s2, t2 = _voxel(s, voxel_m), _voxel(t, voxel_m)
            self.src.append(s2)
            self.tgt.append(_target(t2))

    def mapped(self, T: F64, i: int) -> F64:
        """Source points of pair ``i`` under ``T`` (target frame; xy in planar mode)."""
        if self.planar:
            D = T @ np.linalg.inv(self.T0)
            return np.asarray(self.src[i] @ D[:2, :2].T + D[:2, 3], dtype=np.float64)
        return np.asarray(self.src[i] @ T[:3, :3].T + T[:3, 3], dtype=np.float64)

    def evaluate(self, T: F64, tau: float | None = None) -> tuple[float, float, float, int]:
        """(truncated cost, fitness, inlier RMSE m, inlier count) of ``T`` over all pairs."""
        tau = self.tau if tau is None else tau
        d = np.concatenate([self.tgt[i].tree.query(self.mapped(T, i))[0] for i in range(len(self.src))])
        inl = d < tau
        cost = float(np.mean(np.minimum(d, tau) ** 2) / tau**2) if len(d) else 1.0
        rmse = float(np.sqrt(np.mean(d[inl] ** 2))) if inl.any() else float("nan")
        return cost, float(inl.mean()) if len(d) else 0.0, rmse, int(inl.sum())

    def jacobian(self, T: F64, tau: float) -> tuple[F64, F64, F64]:
        """Point-to-plane Jacobian rows (parameters: planar ``x, y, yaw·L``; 3-D ``rot·L (3), t (3)``,
        perturbation on the left in the target frame), residuals, and the lever arms ``L`` (m; one for
        yaw in planar mode, one per rotation axis in 3-D: the RMS distance of the points from it)."""
        P, N, R = [], [], []
        for i in range(len(self.src)):
            p = self.mapped(T, i)
            d, j = self.tgt[i].tree.query(p, distance_upper_bound=tau)
            m = np.isfinite(d)
            q = self.tgt[i].pts[j[m]]
            n = self.tgt[i].normals[j[m]]
            P.append(p[m])
            N.append(n)
            R.append(np.sum(n * (p[m] - q), axis=1))
        p = np.concatenate(P) if P else np.zeros((0, self.dim))
        n = np.concatenate(N) if N else np.zeros((0, self.dim))
        r = np.concatenate(R) if R else np.zeros(0)
        sq = p**2
        if self.planar:
            L = np.sqrt(np.mean(np.sum(sq, axis=1), keepdims=True)) if len(p) else np.ones(1)
            L = np.maximum(L, 1e-3)
            J = np.c_[n[:, 0], n[:, 1], (n[:, 1] * p[:, 0] - n[:, 0] * p[:, 1]) / L[0]]
        else:  # lever arm of each rotation axis: RMS distance of the points from that axis
            L = np.sqrt(np.mean(np.sum(sq, axis=1, keepdims=True) - sq, axis=0)) if len(p) else np.ones(3)
            L = np.maximum(L, 1e-3)
            J = np.c_[np.cross(p, n) / L, n]
        return J, r, np.asarray(L, dtype=np.float64)


# -- engines ------------------------------------------------------------------------------------------
def _icp_planar(prob: _Problem, D_start: F64, schedule: Sequence[float], *, iters: int, p2p_weight: float,
                free: F64) -> F64:
    """2-D Gauss-Newton ICP on the parameters (x, y, yaw) of ``D = [R(yaw) | (x, y)]`` (only the
    components with ``free`` 1 move, the others keep their start value): returns the 4x4 ``T = D · T0``."""
    fi = np.flatnonzero(free)
    prm = np.array([D_start[0, 3], D_start[1, 3], np.arctan2(D_start[1, 0], D_start[0, 0])])
    D = _planar_delta(*prm)
    for tau in schedule:
        for _ in range(iters):
            A = np.zeros((3, 3))
            b = np.zeros(3)
            for i in range(len(prob.src)):
                p = prob.src[i] @ D[:2, :2].T + D[:2, 3]
                d, j = prob.tgt[i].tree.query(p, distance_upper_bound=tau)
                m = np.isfinite(d)
                if not m.any():
                    continue
                p, q, n = p[m], prob.tgt[i].pts[j[m]], prob.tgt[i].normals[j[m]]
                e = p - q
                # rows: normal direction (weight 1) and tangent direction (weight p2p_weight)
                tg = np.c_[-n[:, 1], n[:, 0]]
                for dirs, w in ((n, 1.0), (tg, p2p_weight)):
                    if w <= 0:
                        continue
                    pc = p - prm[:2]  # d(R(yaw)·s + t)/dyaw = perp(p - t)
                    J = np.c_[dirs[:, 0], dirs[:, 1], dirs[:, 1] * pc[:, 0] - dirs[:, 0] * pc[:, 1]]
                    r = np.sum(dirs * e, axis=1)
                    A += w * J.T @ J
                    b += w * J.T @ r
            if not np.any(A):
                break
            step = np.zeros(3)
            step[fi] = -np.linalg.solve(A[np.ix_(fi, fi)] + 1e-9 * np.eye(len(fi)), b[fi])
            prm = prm + step
            D = _planar_delta(*prm)
            if abs(step[2]) < 1e-6 and np.hypot(step[0], step[1]) < 1e-5:
                break
    return np.asarray(D @ prob.T0, dtype=np.float64)


class _O3dEngine:
    def __init__(self, s: F64, t: F64, method: str, voxel_m: float, iters: int) -> None:
        try:
            import open3d as o3d
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise CalibrationError(f"registration needs open3d (pip install 'edgefuse[calib]'): {exc}") from None
        self.o3d = o3d
        self.method = method
        self.src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(s))
        self.tgt = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(t))
        for pc in (self.src, self.tgt):
            pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max(3 * voxel_m, 0.3), max_nn=30))
        self.crit = o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=iters)

    def run(self, T: F64, schedule: Sequence[float]) -> F64:
        reg = self.o3d.pipelines.registration
        for mc in schedule:
            if self.method == "gicp":
                r = reg.registration_generalized_icp(self.src, self.tgt, mc, T,
                                                     reg.TransformationEstimationForGeneralizedICP(), self.crit)
            else:
                est = (reg.TransformationEstimationPointToPlane() if self.method == "point_to_plane"
                       else reg.TransformationEstimationPointToPoint())
                r = reg.registration_icp(self.src, self.tgt, mc, T, est, self.crit)
            T = np.asarray(r.transformation, dtype=np.float64)
        return T


# -- the tool -----------------------------------------------------------------------------------------
def register_clouds(  # noqa: PLR0912, PLR0915 (one pass through the documented checks, in order)
    source: npt.ArrayLike | Sequence[npt.ArrayLike], target: npt.ArrayLike | Sequence[npt.ArrayLike],
    T_target_from_source_guess: Transform, *,
    method: str = "point_to_plane", max_corr_m: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25),
    voxel_m: float = 0.1, min_points: int = 100, min_fitness: float = 0.3, planar: bool = False,
    source_frame: str = "source", target_frame: str = "target", max_iterations: int = 50,
    checks: RegistrationChecks | None = None, lock: Sequence[str] = (),
) -> SpatialResult:
    """Refine ``T_target_from_source`` by multi-start ICP and judge it (module docstring).

    ``metrics``: cost/fitness/RMSE at the guess and the result (finest scale), the change from the guess,
    point and correspondence counts, per-start poses and costs, the null costs and contrast, the
    information eigenvalues and the 1-sigma uncertainty (``sigma_*``) from the point-to-plane fit.
    ``T`` is the result when ``ok``, the guess when ``no_improvement``, None when ``refused``.

    ``lock`` (planar only): components among ``x``, ``y``, ``yaw`` held at the guess (e.g. ``y`` for a
    radar on a vehicle driving straight, where a forward offset cannot be told from a time offset);
    the verdict then judges the free components only, and the reasons say which were kept.
    """
    ck = checks or RegistrationChecks()
    res = SpatialResult(f"register_{method}" + ("_planar" if planar else ""), REFUSED, target_frame, source_frame,
                        initial=T_target_from_source_guess)
    if method not in _METHODS:
        raise CalibrationError(f"unknown registration method {method!r} (one of {', '.join(_METHODS)})")
    if planar and method == "gicp":
        raise CalibrationError("method 'gicp' is 3-D only; use point_to_plane or point_to_point with planar=True")
    if not max_corr_m or min(max_corr_m) <= 0:
        raise CalibrationError(f"max_corr_m must be positive distances, got {max_corr_m!r}")
    lock = tuple(lock)
    if lock and not planar:
        raise CalibrationError("lock is supported with planar=True only")
    bad = [a for a in lock if a not in ("x", "y", "yaw")]
    if bad or len(set(lock)) >= 3:
        raise CalibrationError(f"lock must name some (not all) of 'x', 'y', 'yaw', got {lock!r}")
    free: F64 = np.array([a not in lock for a in ("x", "y", "yaw")], dtype=np.float64)
    pairs = _as_pairs(source, target)
    if not planar and len(pairs) > 1:
        raise CalibrationError("several scan pairs are supported with planar=True only")
    ns, nt = sum(len(s) for s, _ in pairs), sum(len(t) for _, t in pairs)
    res.metrics.update(n_pairs=len(pairs), n_source=ns, n_target=nt)
    small = [i for i, (s, t) in enumerate(pairs) if len(s) < min_points or len(t) < min_points]
    if small:
        s0, t0 = pairs[small[0]]
        res.reasons.append(f"too few finite points (source {len(s0)}, target {len(t0)}"
                           + (f" in pair {small[0]}" if len(pairs) > 1 else "") + f"; need {min_points})")
        return res

    T0 = T_target_from_source_guess.matrix
    fine = float(max_corr_m[-1])
    prob = _Problem(pairs, T0, planar, voxel_m, fine)
    if planar:
        p2p = 1.0 if method == "point_to_point" else 0.1

        def refine(T_start: F64) -> F64:
            return _icp_planar(prob, T_start @ np.linalg.inv(T0), max_corr_m, iters=max_iterations,
                               p2p_weight=p2p, free=free)
    else:
        eng = _O3dEngine(prob.src[0], prob.tgt[0].pts, method, voxel_m, max_iterations)

        def refine(T_start: F64) -> F64:
            return eng.run(T_start, max_corr_m)

    # 1. multi-start ICP
    rng = np.random.default_rng(ck.seed)
    starts = [T0] + [_perturbation(rng, ck.start_rot_deg, ck.start_trans_m, planar, free) @ T0
                     for _ in range(max(ck.n_starts, 1) - 1)]
    ends = [refine(S) for S in starts]
    costs = [prob.evaluate(T)[0] for T in ends]
    ib = int(np.argmin(costs))
    T = ends[ib]
    c0, f0, e0, _ = prob.evaluate(T0)
    c1, f1, e1, n_in = prob.evaluate(T)
    diffs = [_pose_diff(E, T) for E in ends]
    agree = [dr <= ck.agree_rot_deg and dt <= ck.agree_trans_m for dr, dt in diffs]
    rivals = [k for k, (c, a) in enumerate(zip(costs, agree, strict=True))
              if not a and c <= c1 * (1 + ck.cost_tie) + 1e-9]
    T_est = Transform(T, normalize=True)
    dr, dt = pose_error(T_est, T_target_from_source_guess)
    res.metrics.update(cost_initial=c0, cost=c1, fitness_initial=f0, rmse_initial_m=e0, fitness=f1, rmse_m=e1,
                       n_correspondences=n_in, change_rot_deg=dr, change_trans_m=dt, max_corr_m=fine,
                       start_costs=costs, start_spread=[list(x) for x in diffs], n_agreeing_starts=sum(agree))

    # 2. null distribution: poses displaced from the result
    null = [prob.evaluate(_perturbation(rng, ck.null_rot_deg, ck.null_trans_m, planar, free) @ T)[0]
            for _ in range(ck.n_null)]
    med_null = float(np.median(null)) if null else float("nan")
    contrast = 1.0 - c1 / med_null if null and med_null > 0 else 0.0
    names: tuple[str, ...] = _DIR_2D if planar else _DIR_3D
    axis_contrast: dict[str, float] = {}
    for k, name in enumerate(names):
        if planar and not free[k]:
            continue
        rot = name.startswith(("rotation", "yaw"))
        mag = np.deg2rad(ck.null_rot_deg) if rot else ck.null_trans_m
        cs = []
        for sgn in (1.0, -1.0):
            D = np.eye(4)
            if planar:
                D = _planar_delta(*(sgn * mag * np.eye(3)[k]))
            elif rot:
                D[:3, :3] = exp_so3(sgn * mag * np.eye(3)[k])
            else:
                D[:3, 3] = sgn * mag * np.eye(3)[k - 3]
            cs.append(prob.evaluate(D @ T)[0])
        axis_contrast[name] = 1.0 - c1 / min(cs) if min(cs) > 0 else 0.0
    res.metrics.update(null_cost_median=med_null, null_cost_min=float(np.min(null)) if null else None,
                       contrast=contrast, axis_contrast=axis_contrast)

    # 3. information (degeneracy) and uncertainty at the result
    J, r, L = prob.jacobian(T, fine)
    eig_rel: F64 = np.zeros(len(names))
    weak: list[str] = []
    if planar:
        J = J[:, np.flatnonzero(free)]
        names = tuple(n for n, f in zip(names, free, strict=True) if f)
    if len(J) >= J.shape[1]:
        H = J.T @ J
        w, V = np.linalg.eigh(H / len(J))
        eig_rel = w
        for lam, v in zip(w, V.T, strict=True):
            if lam < ck.min_eig:
                comps = [f"{names[i]} {abs(v[i]):.2f}" for i in np.argsort(-np.abs(v))[:2] if abs(v[i]) > 0.3]
                weak.append(f"{lam:.4f} along ({', '.join(comps)})")
        sigma2 = float(np.mean(r**2)) * len(J) / max(len(J) - J.shape[1], 1)
        cov = sigma2 * np.linalg.pinv(H)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        if planar:
            sig = dict(zip(names, sd, strict=True))
            res.metrics.update(sigma_trans_m=[sig.get("translation along x", 0.0), sig.get("translation along y", 0.0)],
                               sigma_rot_deg=[float(np.degrees(sig.get("yaw", 0.0) / L[0]))])
        else:
            res.metrics.update(sigma_rot_deg=np.degrees(sd[:3] / L).tolist(), sigma_trans_m=sd[3:].tolist())
    res.metrics.update(information_eigenvalues=eig_rel, lever_arm_m=L.tolist())

    # verdict
    if f1 < min_fitness:
        res.reasons.append(f"fitness {f1:.3f} < {min_fitness}: too few source points have a target neighbour"
                           f" within {fine} m (wrong guess, or the clouds do not overlap)")
    if n_in < ck.min_correspondences:
        res.reasons.append(f"too few correspondences: {n_in} < {ck.min_correspondences} within {fine} m")
    if weak:
        res.reasons.append("degenerate geometry: the point-to-plane information is (almost) zero in "
                           + "; ".join(weak) + f" (min_eig {ck.min_eig}): those components are unconstrained")
    need = int(np.ceil(ck.min_agree_frac * len(ends)))
    if sum(agree) < need:
        res.reasons.append(f"starts do not converge: only {sum(agree)} of {len(ends)} starts end within"
                           f" {ck.agree_rot_deg} deg / {ck.agree_trans_m} m of the best (need {need})")
    if rivals:
        worst = max(diffs[k] for k in rivals)
        res.reasons.append(f"competing optima: {len(rivals)} start(s) reach a cost within {ck.cost_tie:.0%} of the"
                           f" best at a pose {worst[0]:.2f} deg / {worst[1]:.3f} m away")
    if contrast < ck.min_contrast:
        res.reasons.append(f"no contrast: cost {c1:.3f} vs {med_null:.3f} median at poses {ck.null_rot_deg} deg /"
                           f" {ck.null_trans_m} m away (contrast {contrast:.2f} < {ck.min_contrast}): the"
                           " alignment is not clearly better than a wrong pose")
    # 5. cross-validation over scan pairs (planar, several pairs)
    if planar and len(pairs) >= 4:
        sub_diffs = []
        for half in (pairs[0::2], pairs[1::2]):
            sp = _Problem(half, T0, planar, voxel_m, fine)
            Ts = _icp_planar(sp, T @ np.linalg.inv(T0), max_corr_m[-1:], iters=max_iterations, p2p_weight=p2p,
                             free=free)
            sub_diffs.append(_pose_diff(Ts, T))
        res.metrics["subset_spread"] = [list(x) for x in sub_diffs]
        far = [x for x in sub_diffs if x[0] > ck.subset_rot_deg or x[1] > ck.subset_trans_m]
        if far:
            res.reasons.append("not reproduced over time: the even / odd scan pairs alone end "
                               + " and ".join(f"{a:.2f} deg / {b:.3f} m" for a, b in sub_diffs)
                               + f" from the joint result (tolerance {ck.subset_rot_deg} deg / {ck.subset_trans_m} m)")
    flat = {k: v for k, v in axis_contrast.items() if v < ck.min_axis_contrast}
    if flat:
        res.reasons.append("flat cost along " + ", ".join(f"{k} (contrast {v:.2f})" for k, v in flat.items())
                           + f" < {ck.min_axis_contrast} at ±{ck.null_trans_m} m / ±{ck.null_rot_deg} deg: the data"
                           " do not pin those components")
    lim_r, lim_t = ck.max_change_factor * ck.start_rot_deg, ck.max_change_factor * ck.start_trans_m
    if dr > lim_r or dt > lim_t:
        res.reasons.append(f"the result moved {dr:.2f} deg / {dt:.3f} m from the guess, beyond the expected guess"
                           f" error ({lim_r:.2f} deg / {lim_t:.3f} m = {ck.max_change_factor} x the start"
                           " perturbation): an implausible jump to another optimum")
    if res.reasons:
        return res
    if not c1 < c0 - ck.improve_min:
        res.verdict = NO_IMPROVEMENT
        res.T = T_target_from_source_guess
        res.reasons.append(f"ICP did not improve the guess (cost {c0:.4f} -> {c1:.4f}, fitness {f0:.3f} -> {f1:.3f},"
                           f" RMSE {e0:.3f} -> {e1:.3f} m); keeping the guess")
        return res
    res.verdict = OK
    res.T = T_est
    if lock:
        res.reasons.append(f"kept at the guess (locked): {', '.join(lock)}")
    res.metrics["locked"] = list(lock)
    return res
