"""Box and estimate fusion: NMS, Soft-NMS, weighted boxes fusion (2-D and yaw-aware 3-D),
covariance intersection, inverse-covariance fusion, late fusion of class scores.

2-D functions take per-model lists like ``ensemble_boxes`` (``boxes_list[t]`` (N_t, 4) x1, y1, x2, y2,
``scores_list[t]`` (N_t,), ``labels_list[t]`` (N_t,)) and give the same results as
``ensemble_boxes.weighted_boxes_fusion`` / ``nms`` / ``soft_nms`` on the same valid inputs, with two
deliberate differences in how bad boxes are treated: non-finite and inverted boxes (x2 < x1 or
y2 < y1) are rejected and counted (ensemble_boxes swaps inverted corners), and zero-size boxes are
rejected and counted (ensemble_boxes drops them with a warning).  ``clip=True`` (default) clips
coordinates to [0, 1] first, as ensemble_boxes does; pass ``clip=False`` for pixel coordinates.
Each function returns a :class:`FusionResult`; ``rejected`` counts dropped boxes by reason.  Zero
models (``boxes_list == []``) is not an error: the result is empty (ensemble_boxes raises a bare
ValueError there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edgefuse.errors import ObjectsError
from edgefuse.objects import _kernels as kern
from edgefuse.objects.types import psd_ok

F64 = npt.NDArray[np.float64]

_CONF_TYPES = {
    "avg": kern.CONF_AVG,
    "max": kern.CONF_MAX,
    "box_and_model_avg": kern.CONF_BOX_AND_MODEL_AVG,
    "absent_model_aware_avg": kern.CONF_ABSENT_MODEL_AWARE_AVG,
}


class FusionError(ObjectsError):
    """Bad arguments to a fusion function (mismatched lengths, unknown option, bad covariance)."""


@dataclass
class FusionResult:
    """Fused boxes (N, 4) or (N, 7), scores (N,), labels (N,) and the count of rejected inputs."""

    boxes: F64
    scores: F64
    labels: F64
    rejected: Counter[str] = field(default_factory=Counter)
    #: Soft-NMS only: the decayed scores of the kept boxes (``scores`` keeps the input scores as
    #: ensemble_boxes returns them)
    decayed_scores: F64 | None = None


def _stack_models(
    boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],
    labels_list: Sequence[npt.ArrayLike], ncols: int,
) -> tuple[F64, F64, F64, npt.NDArray[np.int64]]:
    if not (len(boxes_list) == len(scores_list) == len(labels_list)):
        raise FusionError(
            f"boxes/scores/labels lists differ in length: {len(boxes_list)}, {len(scores_list)}, {len(labels_list)}"
        )
    bs, ss, ls, ms = [], [], [], []
    for t, (b, s, lab) in enumerate(zip(boxes_list, scores_list, labels_list, strict=True)):
        barr = np.asarray(b, dtype=np.float64)
        if barr.size == 0:
            continue
        barr = barr.reshape(-1, ncols) if barr.ndim == 2 and barr.shape[1] == ncols else barr
        if barr.ndim != 2 or barr.shape[1] != ncols:
            raise FusionError(f"model {t}: boxes must have shape (N, {ncols}), got {barr.shape}")
        sarr = np.asarray(s, dtype=np.float64).reshape(-1)
        larr = np.asarray(lab).reshape(-1)
        if not (barr.shape[0] == sarr.shape[0] == larr.shape[0]):
            raise FusionError(
                f"model {t}: {barr.shape[0]} boxes, {sarr.shape[0]} scores, {larr.shape[0]} labels"
            )
        bs.append(barr)
        ss.append(sarr)
        ls.append(larr.astype(np.float64))
        ms.append(np.full(barr.shape[0], t, dtype=np.int64))
    if not bs:
        return np.zeros((0, ncols)), np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(bs), np.concatenate(ss), np.concatenate(ls), np.concatenate(ms)


def _check_2d(b: F64, s: F64, lab: F64, clip: bool, rej: Counter[str]) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Clip (optional) and find valid rows; counts non_finite / inverted / zero_size."""
    finite = np.isfinite(b).all(axis=1) & np.isfinite(s) & np.isfinite(lab)
    inverted = finite & ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))
    if clip:
        b = np.clip(b, 0.0, 1.0)
    zero = finite & ~inverted & ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) == 0.0)
    rej["non_finite"] += int((~finite).sum())
    rej["inverted"] += int(inverted.sum())
    rej["zero_size"] += int(zero.sum())
    return b, finite & ~inverted & ~zero


def _weights(weights: Sequence[float] | None, n_models: int) -> F64:
    if weights is None:
        return np.ones(n_models)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != n_models:
        raise FusionError(f"{w.shape[0]} weights for {n_models} models")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise FusionError(f"weights must be finite and > 0, got {w.tolist()}")
    return w


def _group_by_label(labels: F64, scores: F64) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Permutation grouping rows by label (first-seen order) and, within a label, by descending score
    exactly as ensemble_boxes orders them (numpy argsort of the label's scores, reversed)."""
    keys = labels.astype(np.int64)
    _, first = np.unique(keys, return_index=True)
    order_labels = keys[np.sort(first)]
    perm = []
    starts = [0]
    for lab in order_labels:
        idx = np.nonzero(keys == lab)[0]
        perm.append(idx[scores[idx].argsort()[::-1]])
        starts.append(starts[-1] + idx.shape[0])
    return np.concatenate(perm), np.asarray(starts, dtype=np.int64)


def weighted_boxes_fusion(  # noqa: PLR0917
    boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],
    labels_list: Sequence[npt.ArrayLike], weights: Sequence[float] | None = None,
    iou_thr: float = 0.55, skip_box_thr: float = 0.0, conf_type: str = "avg",
    allows_overflow: bool = False, *, clip: bool = True,
) -> FusionResult:
    """Weighted boxes fusion of several models' 2-D boxes (Solovyev et al.), ensemble_boxes-exact.

    ``conf_type``: ``avg``, ``max``, ``box_and_model_avg``, ``absent_model_aware_avg``.  Boxes with
    score < ``skip_box_thr`` are ignored (not counted as rejected).  Output sorted by descending score.
    Zero models give an empty result.
    """
    if conf_type not in _CONF_TYPES:
        raise FusionError(f"unknown conf_type {conf_type!r} (known: {', '.join(_CONF_TYPES)})")
    w = _weights(weights, len(boxes_list))
    b, s, lab, model = _stack_models(boxes_list, scores_list, labels_list, 4)
    if len(boxes_list) == 0:  # zero models: nothing to fuse
        return FusionResult(np.zeros((0, 4)), np.zeros(0), np.zeros(0), Counter())
    counts = np.zeros(3, dtype=np.int64)
    rows, starts, tie, raw = kern._wbf_2d_prepare(b, s, lab, model, w, bool(clip), float(skip_box_thr), counts)
    rej: Counter[str] = Counter(dict(zip(("non_finite", "inverted", "zero_size"), counts.tolist(), strict=True)))
    if tie:  # equal scores within a label: order them exactly as ensemble_boxes (numpy argsort)
        perm, starts = _group_by_label(raw[:, 0], raw[:, 1])
        rows = np.ascontiguousarray(raw[perm])
    fused = kern._wbf_2d(rows, starts, float(iou_thr), _CONF_TYPES[conf_type], bool(allows_overflow), w,
                      float(w.sum()), float(w.max()))
    fused = fused[fused[:, 1].argsort()[::-1]]
    return FusionResult(fused[:, 4:], fused[:, 1], fused[:, 0], rej)


def nms(boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],
        labels_list: Sequence[npt.ArrayLike], iou_thr: float = 0.5,
        weights: Sequence[float] | None = None, *, clip: bool = True) -> FusionResult:
    """Per-label greedy NMS over all models' boxes (as ``ensemble_boxes.nms``).

    Output grouped by ascending label, each group in descending score.  With ``weights`` the scores are
    first scaled by weight / Σweights.
    """
    return _nms_method(boxes_list, scores_list, labels_list, 3, iou_thr, 0.5, 0.001, weights, clip)


def soft_nms(boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],  # noqa: PLR0917
             labels_list: Sequence[npt.ArrayLike], method: str = "gaussian", iou_thr: float = 0.5,
             sigma: float = 0.5, thresh: float = 0.001, weights: Sequence[float] | None = None,
             *, clip: bool = True) -> FusionResult:
    """Soft-NMS (``method`` ``linear`` or ``gaussian``; Bodla et al.) as ``ensemble_boxes.soft_nms``.

    Boxes whose decayed score stays > ``thresh`` are kept.  ``scores`` are the input scores of the kept
    boxes (what ensemble_boxes returns); ``decayed_scores`` the decayed ones.
    """
    codes = {"linear": 1, "gaussian": 2}
    if method not in codes:
        raise FusionError(f"unknown soft-NMS method {method!r} (linear, gaussian)")
    if not sigma > 0:
        raise FusionError(f"sigma must be > 0, got {sigma}")
    return _nms_method(boxes_list, scores_list, labels_list, codes[method], iou_thr, sigma, thresh,
                       weights, clip)


def _nms_method(boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],  # noqa: PLR0917
                labels_list: Sequence[npt.ArrayLike], method: int, iou_thr: float, sigma: float,
                thresh: float, weights: Sequence[float] | None, clip: bool) -> FusionResult:
    b, s, lab, model = _stack_models(boxes_list, scores_list, labels_list, 4)
    if weights is not None:
        w = _weights(weights, len(boxes_list))
        s = (s * w[model]) / w.sum()
    rej: Counter[str] = Counter()
    b, ok = _check_2d(b, s, lab, clip, rej)
    b, s, lab = b[ok], s[ok], lab[ok]
    out_b, out_s, out_l, out_d = [], [], [], []
    for label in np.unique(lab):
        idx = np.nonzero(lab == label)[0]
        bl = np.ascontiguousarray(b[idx])
        sl = np.ascontiguousarray(s[idx])
        if method == 3:
            keep = kern._nms_sorted(bl, sl.argsort(kind="stable")[::-1].copy(), float(iou_thr))
            dec = sl[keep]
        else:
            keep, dec = kern._soft_nms(bl, sl, float(iou_thr), float(sigma), float(thresh), method)
        out_b.append(bl[keep])
        out_s.append(sl[keep])
        out_l.append(np.full(keep.shape[0], label))
        out_d.append(dec)
    if not out_b:
        return FusionResult(np.zeros((0, 4)), np.zeros(0), np.zeros(0), rej, np.zeros(0))
    return FusionResult(np.concatenate(out_b), np.concatenate(out_s), np.concatenate(out_l), rej,
                        np.concatenate(out_d))


def weighted_boxes_fusion_3d(  # noqa: PLR0917
    boxes_list: Sequence[npt.ArrayLike], scores_list: Sequence[npt.ArrayLike],
    labels_list: Sequence[npt.ArrayLike], weights: Sequence[float] | None = None,
    iou_thr: float = 0.55, skip_box_thr: float = 0.0,
) -> FusionResult:
    """Yaw-aware WBF of (x, y, z, l, w, h, yaw) boxes, clustered by exact rotated BEV IoU.

    Cluster membership as 2-D WBF (descending score, best-IoU existing cluster of the same label,
    IoU > ``iou_thr``).  Fused centre and size: score-weighted means; yaw: score-weighted circular mean
    of the box axis (yaw mod π, boxes look the same turned by π), facing the top member's heading.
    Score: ``avg`` rule of ensemble_boxes.  Bad boxes (non-finite, size ≤ 0) rejected and counted.
    """
    w = _weights(weights, len(boxes_list))
    b, s, lab, model = _stack_models(boxes_list, scores_list, labels_list, 7)
    rej: Counter[str] = Counter()
    finite = np.isfinite(b).all(axis=1) & np.isfinite(s) & np.isfinite(lab)
    inverted = finite & (b[:, 3:6] < 0).any(axis=1)
    zero = finite & ~inverted & (b[:, 3:6] == 0).any(axis=1)
    rej["non_finite"] += int((~finite).sum())
    rej["inverted"] += int(inverted.sum())
    rej["zero_size"] += int(zero.sum())
    ok = finite & ~inverted & ~zero & ~(s < skip_box_thr)
    if not ok.any():
        return FusionResult(np.zeros((0, 7)), np.zeros(0), np.zeros(0), rej)
    b, s, lab, model = b[ok], s[ok], lab[ok], model[ok]
    rows = np.empty((b.shape[0], 11))
    rows[:, 0] = lab.astype(np.int64)
    rows[:, 1] = s * w[model]
    rows[:, 2] = w[model]
    rows[:, 3] = model
    rows[:, 4:] = b
    perm, starts = _group_by_label(rows[:, 0], rows[:, 1])
    fused, _ = kern._wbf_3d(np.ascontiguousarray(rows[perm]), starts, float(iou_thr), len(boxes_list),
                         float(w.sum()))
    fused = fused[fused[:, 1].argsort()[::-1]]
    return FusionResult(fused[:, 4:], fused[:, 1], fused[:, 0], rej)


# ----------------------------------------------------------------------------- estimates


def _check_estimates(means: npt.ArrayLike, covs: npt.ArrayLike) -> tuple[F64, F64]:
    x = np.atleast_2d(np.asarray(means, dtype=np.float64))
    P = np.asarray(covs, dtype=np.float64)
    n, d = x.shape
    if P.shape != (n, d, d):
        raise FusionError(f"covariances must have shape {(n, d, d)}, got {P.shape}")
    if n == 0:
        raise FusionError("no estimates to fuse")
    if not np.all(np.isfinite(x)):
        raise FusionError("estimate mean is not finite")
    for i in range(n):
        if not psd_ok(P[i]) or np.linalg.eigvalsh(P[i])[0] <= 0:
            raise FusionError(f"covariance {i} is not finite, symmetric and positive definite")
    return x, P


def inverse_covariance_fusion(means: npt.ArrayLike, covs: npt.ArrayLike) -> tuple[F64, F64]:
    """Information-form fusion of independent estimates: P = (Σ Pᵢ⁻¹)⁻¹, x = P Σ Pᵢ⁻¹ xᵢ.

    ``means`` (n, d), ``covs`` (n, d, d) positive definite.  Optimal when the errors are independent;
    overconfident when they are correlated (use :func:`covariance_intersection` then).
    """
    x, P = _check_estimates(means, covs)
    info = np.zeros((x.shape[1], x.shape[1]))
    vec = np.zeros(x.shape[1])
    for i in range(x.shape[0]):
        Pi = np.linalg.inv(P[i])
        info += Pi
        vec += Pi @ x[i]
    Pf = np.linalg.inv(info)
    Pf = 0.5 * (Pf + Pf.T)
    return Pf @ vec, Pf


def covariance_intersection(means: npt.ArrayLike, covs: npt.ArrayLike,
                            omegas: npt.ArrayLike | None = None) -> tuple[F64, F64, F64]:
    """Covariance intersection (Julier & Uhlmann) of estimates with unknown cross-correlation.

    P⁻¹ = Σ ωᵢ Pᵢ⁻¹, x = P Σ ωᵢ Pᵢ⁻¹ xᵢ with ωᵢ ≥ 0, Σωᵢ = 1.  Without ``omegas`` the weights minimise
    trace(P) (two estimates: golden-section search on ω; more: the normalised 1/trace(Pᵢ) rule of
    Niehsen's fast CI).  Returns (x, P, ω).  The result is consistent for any correlation.
    """
    x, P = _check_estimates(means, covs)
    n = x.shape[0]
    infos = np.stack([np.linalg.inv(P[i]) for i in range(n)])

    def fuse(om: F64) -> tuple[F64, F64]:
        info = np.einsum("i,ijk->jk", om, infos)
        Pf = np.linalg.inv(info)
        return Pf @ np.einsum("i,ijk,ik->j", om, infos, x), 0.5 * (Pf + Pf.T)

    if omegas is not None:
        om = np.asarray(omegas, dtype=np.float64).reshape(-1)
        if om.shape[0] != n or np.any(om < 0) or not np.isclose(om.sum(), 1.0):
            raise FusionError(f"omegas must be {n} non-negative weights summing to 1, got {om.tolist()}")
    elif n == 1:
        om = np.ones(1)
    elif n == 2:
        lo, hi = 0.0, 1.0
        g = (np.sqrt(5.0) - 1.0) / 2.0

        def tr(a: float) -> float:
            return float(np.trace(np.linalg.inv(a * infos[0] + (1 - a) * infos[1])))

        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        fc, fd = tr(c), tr(d)
        for _ in range(60):
            if fc < fd:
                hi, d, fd = d, c, fc
                c = hi - g * (hi - lo)
                fc = tr(c)
            else:
                lo, c, fc = c, d, fd
                d = lo + g * (hi - lo)
                fd = tr(d)
        a = 0.5 * (lo + hi)
        best = min((tr(0.0), 0.0), (tr(1.0), 1.0), (tr(a), a))[1]
        om = np.array([best, 1.0 - best])
    else:
        inv_tr = 1.0 / np.array([np.trace(P[i]) for i in range(n)])
        om = inv_tr / inv_tr.sum()
    xf, Pf = fuse(om)
    return xf, Pf, om


def fuse_class_scores(score_list: Sequence[npt.ArrayLike], weights: Sequence[float] | None = None,
                      method: str = "mean", eps: float = 1e-12) -> F64:
    """Late fusion of per-sensor class score vectors for the same object(s).

    ``score_list[s]`` is (C,) or (N, C) class probabilities from sensor s.  ``method``:

    - ``mean``: weighted arithmetic mean (weights normalised to sum 1);
    - ``product``: naive Bayes with a uniform prior, p(c) ∝ Πₛ pₛ(c)^wₛ (weights used as exponents, as
      given; all 1 by default): [.7, .2, .1] and [.5, .4, .1] → [.795, .182, .023];
    - ``geometric``: normalised weighted geometric mean, p(c) ∝ Πₛ pₛ(c)^(wₛ/Σw) (the less confident
      "product of experts" average);
    - ``max``: per-class maximum, renormalised.

    For ``product`` and ``geometric`` probabilities are floored at ``eps`` first, so one sensor's 0 is a
    very strong veto but never makes every class impossible.  Non-finite or negative scores raise
    :class:`FusionError`.  Returns (C,) or (N, C) rows summing to 1 (uniform where everything is 0).
    """
    arrs = [np.asarray(a, dtype=np.float64) for a in score_list]
    if not arrs:
        raise FusionError("no class scores to fuse")
    shape = arrs[0].shape
    if any(a.shape != shape for a in arrs):
        raise FusionError(f"class score shapes differ: {[a.shape for a in arrs]}")
    S = np.stack(arrs)
    if not eps > 0:
        raise FusionError(f"eps must be > 0, got {eps}")
    if not np.all(np.isfinite(S)) or np.any(S < 0):
        raise FusionError("class scores must be finite and non-negative")
    w_raw = _weights(weights, len(arrs))
    w = w_raw / w_raw.sum()
    wb = w.reshape((-1,) + (1,) * len(shape))
    if method == "mean":
        out = (wb * S).sum(axis=0)
    elif method in ("product", "geometric"):
        expo = (w_raw if method == "product" else w).reshape((-1,) + (1,) * len(shape))
        logp = (expo * np.log(np.maximum(S, eps))).sum(axis=0)
        out = np.exp(logp - logp.max(axis=-1, keepdims=True))  # scaled so the largest is 1: no underflow
    elif method == "max":
        out = S.max(axis=0)
    else:
        raise FusionError(f"unknown class-score fusion {method!r} (mean, product, geometric, max)")
    total = out.sum(axis=-1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / shape[-1])  # type: ignore[no-any-return]


__all__ = [
    "FusionError",
    "FusionResult",
    "covariance_intersection",
    "fuse_class_scores",
    "inverse_covariance_fusion",
    "nms",
    "soft_nms",
    "weighted_boxes_fusion",
    "weighted_boxes_fusion_3d",
]
