"""Tracking metrics: CLEAR-MOT (MOTA, MOTP, ID switches) and HOTA.

Input per frame: ground-truth ids (G,), hypothesis ids (H,), and a similarity matrix (G, H) in [0, 1]
(e.g. IoU, or ``1 - d / d_max`` for BEV centre distance: :func:`distance_similarity`).

- CLEAR-MOT (Bernardin & Stiefelhagen 2008): a pair is a possible match when similarity ≥
  ``threshold``.  Correspondences of the previous frame are kept while still possible, the rest is
  matched optimally (maximum total similarity).  An ID switch is counted when a ground truth is matched
  to a different hypothesis than the one it was last matched to.
  MOTA = 1 − (FN + FP + IDSW) / GT; MOTP = mean similarity of the matches.
- HOTA (Luiten et al. 2021): for α = 0.05 … 0.95, per-frame matching maximising
  (global alignment score × similarity), matches with similarity ≥ α; DetA = TP / (TP + FN + FP),
  AssA = mean over TPs of |TPA| / (|TPA| + |FNA| + |FPA|), HOTA_α = √(DetA·AssA); HOTA = mean over α.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse.objects.association import linear_sum_assignment

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def distance_similarity(gt_xy: npt.ArrayLike, hyp_xy: npt.ArrayLike, max_dist: float) -> F64:
    """(G, H) similarity max(0, 1 − ‖g − h‖ / max_dist) of BEV centres."""
    g = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    h = np.asarray(hyp_xy, dtype=np.float64).reshape(-1, 2)
    d = np.sqrt(((g[:, None, :] - h[None, :, :]) ** 2).sum(axis=2))
    out: F64 = np.maximum(0.0, 1.0 - d / max_dist)
    return out


@dataclass
class ClearMot:
    mota: float
    motp: float
    num_gt: int
    matches: int
    false_negatives: int
    false_positives: int
    id_switches: int


def clear_mot(gt_ids: Sequence[npt.ArrayLike], hyp_ids: Sequence[npt.ArrayLike],
              similarity: Sequence[npt.ArrayLike], threshold: float = 0.5) -> ClearMot:
    """CLEAR-MOT over a sequence of frames (see module docstring)."""
    last_match: dict[int, int] = {}
    prev: dict[int, int] = {}
    n_gt = tp = fn = fp = sw = 0
    sim_sum = 0.0
    for g_raw, h_raw, s_raw in zip(gt_ids, hyp_ids, similarity, strict=True):
        g = np.asarray(g_raw, dtype=np.int64).reshape(-1)
        h = np.asarray(h_raw, dtype=np.int64).reshape(-1)
        s = np.asarray(s_raw, dtype=np.float64).reshape(g.shape[0], h.shape[0])
        n_gt += g.shape[0]
        matched: dict[int, int] = {}
        g_free = np.ones(g.shape[0], dtype=bool)
        h_free = np.ones(h.shape[0], dtype=bool)
        h_index = {int(v): k for k, v in enumerate(h)}
        for gi, gid in enumerate(g.tolist()):  # keep last frame's correspondences
            if gid in prev and prev[gid] in h_index:
                hi = h_index[prev[gid]]
                if h_free[hi] and s[gi, hi] >= threshold:
                    matched[gi] = hi
                    g_free[gi] = h_free[hi] = False
        gi_idx, hi_idx = np.nonzero(g_free)[0], np.nonzero(h_free)[0]
        if gi_idx.size and hi_idx.size:
            sub = s[np.ix_(gi_idx, hi_idx)]
            cost = np.where(sub >= threshold, 1.0 - sub, 1e6)
            r, c = linear_sum_assignment(cost)
            for a, b in zip(r.tolist(), c.tolist(), strict=True):
                if sub[a, b] >= threshold:
                    matched[int(gi_idx[a])] = int(hi_idx[b])
        prev = {}
        for gi, hi in matched.items():
            gid, hid = int(g[gi]), int(h[hi])
            if gid in last_match and last_match[gid] != hid:
                sw += 1
            last_match[gid] = hid
            prev[gid] = hid
            sim_sum += float(s[gi, hi])
        tp += len(matched)
        fn += g.shape[0] - len(matched)
        fp += h.shape[0] - len(matched)
    mota = 1.0 - (fn + fp + sw) / n_gt if n_gt else float("nan")
    motp = sim_sum / tp if tp else float("nan")
    return ClearMot(mota, motp, n_gt, tp, fn, fp, sw)


@dataclass
class Hota:
    hota: float
    deta: float
    assa: float
    loca: float
    alphas: F64
    hota_alpha: F64


def hota(gt_ids: Sequence[npt.ArrayLike], hyp_ids: Sequence[npt.ArrayLike],
         similarity: Sequence[npt.ArrayLike]) -> Hota:
    """HOTA over a sequence of frames (see module docstring)."""
    alphas = np.arange(0.05, 0.99, 0.05)
    frames = [(np.asarray(g, dtype=np.int64).reshape(-1), np.asarray(h, dtype=np.int64).reshape(-1),
               np.asarray(s, dtype=np.float64)) for g, h, s in zip(gt_ids, hyp_ids, similarity, strict=True)]
    g_all = np.unique(np.concatenate([f[0] for f in frames] + [np.zeros(0, np.int64)]))
    h_all = np.unique(np.concatenate([f[1] for f in frames] + [np.zeros(0, np.int64)]))
    gmap = {int(v): k for k, v in enumerate(g_all)}
    hmap = {int(v): k for k, v in enumerate(h_all)}
    ng, nh = len(gmap), len(hmap)
    pot = np.zeros((ng, nh))
    gcount = np.zeros(ng)
    hcount = np.zeros(nh)
    idx = []
    for g, h, s in frames:
        gi = np.array([gmap[int(v)] for v in g], dtype=np.int64)
        hi = np.array([hmap[int(v)] for v in h], dtype=np.int64)
        sm = s.reshape(gi.shape[0], hi.shape[0])
        idx.append((gi, hi, sm))
        gcount[gi] += 1
        hcount[hi] += 1
        if gi.size and hi.size:
            denom = sm.sum(0)[None, :] + sm.sum(1)[:, None] - sm
            sim_iou = np.zeros_like(sm)
            ok = denom > np.finfo(float).eps
            sim_iou[ok] = sm[ok] / denom[ok]
            pot[gi[:, None], hi[None, :]] += sim_iou
    gas = pot / np.maximum(1e-12, gcount[:, None] + hcount[None, :] - pot)
    na = alphas.shape[0]
    tp = np.zeros(na)
    fn = np.zeros(na)
    fp = np.zeros(na)
    loc = np.zeros(na)
    mc = np.zeros((na, ng, nh))
    for gi, hi, s in idx:
        if gi.size == 0 or hi.size == 0:
            fn += gi.size
            fp += hi.size
            continue
        score = gas[gi[:, None], hi[None, :]] * s
        r, c = linear_sum_assignment(-score)
        ms = s[r, c]
        for a, al in enumerate(alphas):
            ok = ms >= al - np.finfo(float).eps
            k = int(ok.sum())
            tp[a] += k
            fn[a] += gi.size - k
            fp[a] += hi.size - k
            loc[a] += ms[ok].sum()
            mc[a, gi[r[ok]], hi[c[ok]]] += 1
    assa = np.zeros(na)
    for a in range(na):
        ass = mc[a] / np.maximum(1.0, gcount[:, None] + hcount[None, :] - mc[a])
        assa[a] = (mc[a] * ass).sum() / max(1.0, tp[a])
    deta = tp / np.maximum(1.0, tp + fn + fp)
    h_alpha = np.sqrt(deta * assa)
    locas = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    return Hota(float(h_alpha.mean()), float(deta.mean()), float(assa.mean()), float(locas.mean()),
                alphas, h_alpha)


__all__ = ["ClearMot", "Hota", "clear_mot", "distance_similarity", "hota"]
