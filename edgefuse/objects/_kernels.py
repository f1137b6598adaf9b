"""Numba kernels for association and box fusion.  Arrays and scalars in, never raise.

Public wrappers (validation, shaping): :mod:`edgefuse.objects.association`,
:mod:`edgefuse.objects.boxfusion`.  Slow references live in ``tests/objects``.
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit

# ----------------------------------------------------------------------------- IoU


@njit()
def _iou_matrix_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) IoU of xyxy boxes; 0 where the union is 0."""
    na, nb = a.shape[0], b.shape[0]
    out = np.zeros((na, nb))
    for i in range(na):
        aa = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1])
        for j in range(nb):
            w = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
            h = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
            if w <= 0.0 or h <= 0.0:
                continue
            inter = w * h
            union = aa + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            if union > 0.0:
                out[i, j] = inter / union
    return out


@njit()
def _box_corners_bev(x: float, y: float, l: float, w: float, yaw: float, out: np.ndarray) -> None:  # noqa: E741, PLR0917
    """Counter-clockwise BEV corners of a rotated rectangle into ``out`` (4, 2)."""
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = 0.5 * l, 0.5 * w
    dx = (hl, -hl, -hl, hl)
    dy = (hw, hw, -hw, -hw)
    for k in range(4):
        out[k, 0] = x + c * dx[k] - s * dy[k]
        out[k, 1] = y + s * dx[k] + c * dy[k]


@njit()
def _polygon_area(p: np.ndarray, n: int) -> float:
    a = 0.0
    for k in range(n):
        k2 = (k + 1) % n
        a += p[k, 0] * p[k2, 1] - p[k2, 0] * p[k, 1]
    return 0.5 * a


@njit()
def _clip_convex(subj: np.ndarray, ns: int, clip: np.ndarray, nc: int, buf: np.ndarray) -> int:
    """Sutherland–Hodgman: clip polygon ``subj`` (ns vertices, CCW) by convex CCW ``clip``.

    Result written into ``subj`` (capacity ≥ 16); ``buf`` is scratch of the same size.  Returns the
    vertex count of the intersection.
    """
    n = ns
    for e in range(nc):
        if n == 0:
            return 0
        ax, ay = clip[e, 0], clip[e, 1]
        bx, by = clip[(e + 1) % nc, 0], clip[(e + 1) % nc, 1]
        ex, ey = bx - ax, by - ay
        m = 0
        for k in range(n):
            px, py = subj[k, 0], subj[k, 1]
            qx, qy = subj[(k + 1) % n, 0], subj[(k + 1) % n, 1]
            sp = ex * (py - ay) - ey * (px - ax)
            sq = ex * (qy - ay) - ey * (qx - ax)
            if sp >= 0.0:
                buf[m, 0] = px
                buf[m, 1] = py
                m += 1
                if sq < 0.0:
                    t = sp / (sp - sq)
                    buf[m, 0] = px + t * (qx - px)
                    buf[m, 1] = py + t * (qy - py)
                    m += 1
            elif sq >= 0.0:
                t = sp / (sp - sq)
                buf[m, 0] = px + t * (qx - px)
                buf[m, 1] = py + t * (qy - py)
                m += 1
        for k in range(m):
            subj[k, 0] = buf[k, 0]
            subj[k, 1] = buf[k, 1]
        n = m
    return n


@njit()
def _bev_inter_area(a: np.ndarray, b: np.ndarray, ca: np.ndarray, cb: np.ndarray,  # noqa: PLR0917
                    poly: np.ndarray, buf: np.ndarray) -> float:
    """Exact intersection area of two rotated BEV rectangles (x, y, l, w, yaw)."""
    _box_corners_bev(a[0], a[1], a[2], a[3], a[4], ca)
    _box_corners_bev(b[0], b[1], b[2], b[3], b[4], cb)
    for k in range(4):
        poly[k, 0] = ca[k, 0]
        poly[k, 1] = ca[k, 1]
    n = _clip_convex(poly, 4, cb, 4, buf)
    if n < 3:
        return 0.0
    return abs(_polygon_area(poly, n))


@njit()
def _bev_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) rotated BEV IoU of rows (x, y, l, w, yaw)."""
    na, nb = a.shape[0], b.shape[0]
    out = np.zeros((na, nb))
    ca = np.empty((4, 2))
    cb = np.empty((4, 2))
    poly = np.empty((16, 2))
    buf = np.empty((16, 2))
    for i in range(na):
        ra = 0.5 * math.hypot(a[i, 2], a[i, 3])
        area_a = a[i, 2] * a[i, 3]
        for j in range(nb):
            rb = 0.5 * math.hypot(b[j, 2], b[j, 3])
            if math.hypot(a[i, 0] - b[j, 0], a[i, 1] - b[j, 1]) > ra + rb:
                continue
            inter = _bev_inter_area(a[i], b[j], ca, cb, poly, buf)
            union = area_a + b[j, 2] * b[j, 3] - inter
            if union > 0.0 and inter > 0.0:
                out[i, j] = min(1.0, inter / union)
    return out


# ----------------------------------------------------------------------------- gating


@njit()
def _mahalanobis_matrix(pred: np.ndarray, s_inv: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance d²[i, j] = (z_j - ẑ_i)ᵀ S_i⁻¹ (z_j - ẑ_i)."""
    n, m, d = pred.shape[0], meas.shape[0], pred.shape[1]
    out = np.empty((n, m))
    r = np.empty(d)
    for i in range(n):
        for j in range(m):
            for k in range(d):
                r[k] = meas[j, k] - pred[i, k]
            acc = 0.0
            for k in range(d):
                row = 0.0
                for q in range(d):
                    row += s_inv[i, k, q] * r[q]
                acc += r[k] * row
            out[i, j] = acc
    return out


@njit()
def _center_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for k in range(d):
                t = a[i, k] - b[j, k]
                acc += t * t
            out[i, j] = math.sqrt(acc)
    return out


# ----------------------------------------------------------------------------- assignment


@njit()
def _lsa_wide(cost: np.ndarray, row_to_col: np.ndarray) -> bool:
    """Shortest-augmenting-path (Jonker–Volgenant style) assignment for n ≤ m.

    Every row gets a column; ``inf`` entries are forbidden.  Writes ``row_to_col`` and returns
    False when no complete assignment avoiding forbidden entries exists.
    """
    n, m = cost.shape
    inf = np.inf
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row (1-based) on column j; 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    minv = np.empty(m + 1)
    used = np.zeros(m + 1, dtype=np.bool_)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv[:] = inf
        used[:] = False
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = -1
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            if j1 < 0 or delta == inf:
                return False
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    for j in range(1, m + 1):
        if p[j] != 0:
            row_to_col[p[j] - 1] = j - 1
    return True


# ----------------------------------------------------------------------------- NMS


@njit()
def _nms_sorted(boxes: np.ndarray, order: np.ndarray, thr: float) -> np.ndarray:
    """Greedy NMS over ``order`` (descending score): keep a box unless IoU > thr with a kept one."""
    n = order.shape[0]
    suppressed = np.zeros(n, dtype=np.bool_)
    keep = np.empty(n, dtype=np.int64)
    nk = 0
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for a in range(n):
        if suppressed[a]:
            continue
        i = order[a]
        keep[nk] = i
        nk += 1
        for b in range(a + 1, n):
            if suppressed[b]:
                continue
            j = order[b]
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            ovr = inter / (areas[i] + areas[j] - inter)
            if not ovr <= thr:
                suppressed[b] = True
    return keep[:nk]


@njit()
def _soft_nms(boxes: np.ndarray, scores: np.ndarray, nt: float, sigma: float, thresh: float,  # noqa: PLR0917
              method: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (1 linear, 2 gaussian, 3 hard) with the swap-to-front order of the classic code.

    Returns (original indices in processing order whose decayed score > thresh, decayed scores).
    """
    n = boxes.shape[0]
    d = boxes.copy()
    s = scores.copy()
    idx = np.arange(n)
    areas = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    for i in range(n):
        if i != n - 1:
            mpos = i + 1
            mval = s[i + 1]
            for k in range(i + 2, n):
                if s[k] > mval:
                    mval = s[k]
                    mpos = k
            if s[i] < mval:
                for c in range(4):
                    t = d[i, c]
                    d[i, c] = d[mpos, c]
                    d[mpos, c] = t
                t = s[i]
                s[i] = s[mpos]
                s[mpos] = t
                t = areas[i]
                areas[i] = areas[mpos]
                areas[mpos] = t
                ti = idx[i]
                idx[i] = idx[mpos]
                idx[mpos] = ti
        for k in range(i + 1, n):
            xx1 = max(d[i, 1], d[k, 1])
            yy1 = max(d[i, 0], d[k, 0])
            xx2 = min(d[i, 3], d[k, 3])
            yy2 = min(d[i, 2], d[k, 2])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            ovr = inter / (areas[i] + areas[k] - inter)
            if method == 1:
                wgt = 1.0 - ovr if ovr > nt else 1.0
            elif method == 2:
                wgt = math.exp(-(ovr * ovr) / sigma)
            else:
                wgt = 0.0 if ovr > nt else 1.0
            s[k] = wgt * s[k]
    cnt = 0
    for i in range(n):
        if s[i] > thresh:
            cnt += 1
    keep = np.empty(cnt, dtype=np.int64)
    out_s = np.empty(cnt)
    c = 0
    for i in range(n):
        if s[i] > thresh:
            keep[c] = idx[i]
            out_s[c] = s[i]
            c += 1
    return keep, out_s


# ----------------------------------------------------------------------------- WBF (2-D)

CONF_AVG, CONF_MAX, CONF_BOX_AND_MODEL_AVG, CONF_ABSENT_MODEL_AWARE_AVG = 0, 1, 2, 3


@njit()
def _wbf_2d(rows: np.ndarray, starts: np.ndarray, iou_thr: float, conf_type: int,  # noqa: PLR0915, PLR0917
            allows_overflow: bool, weights: np.ndarray, weights_sum: float,
            weights_max: float) -> np.ndarray:
    """Weighted boxes fusion with the arithmetic of ensemble_boxes (float32 accumulators included).

    ``rows`` (N, 8): label, score·weight, weight, model, x1, y1, x2, y2, grouped by label, each group
    sorted by descending score; group g is rows[starts[g]:starts[g+1]].  Returns (M, 8) fused rows
    (label, score, weight, -1, x1, y1, x2, y2) in group order, not yet sorted by score.
    """
    n = rows.shape[0]
    n_models = weights.shape[0]
    out = np.empty((n, 8))
    acc = np.zeros((n, 4), dtype=np.float32)
    conf = np.zeros(n)
    wsum = np.zeros(n)
    cmax = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    models = np.zeros((n, n_models), dtype=np.bool_)
    n_out = 0
    for g in range(starts.shape[0] - 1):
        c0 = n_out
        for r in range(starts[g], starts[g + 1]):
            best = -1
            best_iou = -np.inf
            bx1, by1, bx2, by2 = rows[r, 4], rows[r, 5], rows[r, 6], rows[r, 7]
            area_b = (bx2 - bx1) * (by2 - by1)
            for c in range(c0, n_out):
                xa = max(out[c, 4], bx1)
                ya = max(out[c, 5], by1)
                xb = min(out[c, 6], bx2)
                yb = min(out[c, 7], by2)
                inter = max(xb - xa, 0.0) * max(yb - ya, 0.0)
                area_a = (out[c, 6] - out[c, 4]) * (out[c, 7] - out[c, 5])
                iou = inter / (area_a + area_b - inter)
                if iou > best_iou:
                    best_iou = iou
                    best = c
            sc = rows[r, 1]
            if best >= 0 and best_iou > iou_thr:
                c = best
                for k in range(4):
                    acc[c, k] = np.float32(np.float64(acc[c, k]) + sc * rows[r, 4 + k])
                conf[c] += sc
                wsum[c] += rows[r, 2]
                cmax[c] = max(cmax[c], sc)
                count[c] += 1
                models[c, int(rows[r, 3])] = True
                out[c, 0] = np.float32(rows[r, 0])
                if conf_type == CONF_MAX:
                    out[c, 1] = np.float32(cmax[c])
                else:
                    out[c, 1] = np.float32(conf[c] / count[c])
                out[c, 2] = np.float32(wsum[c])
                out[c, 3] = -1.0
                for k in range(4):
                    out[c, 4 + k] = np.float32(np.float64(acc[c, k]) / conf[c])
            else:
                c = n_out
                n_out += 1
                for k in range(8):
                    out[c, k] = rows[r, k]
                for k in range(4):
                    acc[c, k] = np.float32(np.float64(np.float32(0.0)) + sc * rows[r, 4 + k])
                conf[c] = sc
                wsum[c] = rows[r, 2]
                cmax[c] = sc
                count[c] = 1
                models[c, int(rows[r, 3])] = True
        for c in range(c0, n_out):
            k = count[c]
            if conf_type == CONF_BOX_AND_MODEL_AVG:
                out[c, 1] = out[c, 1] * k / out[c, 2]
                msum = 0.0
                for t in range(n_models):
                    if models[c, t]:
                        msum += weights[t]
                out[c, 1] = out[c, 1] * msum / weights_sum
            elif conf_type == CONF_ABSENT_MODEL_AWARE_AVG:
                absent = 0.0
                for t in range(n_models):
                    if not models[c, t]:
                        absent += weights[t]
                out[c, 1] = out[c, 1] * k / (out[c, 2] + absent)
            elif conf_type == CONF_MAX:
                out[c, 1] = out[c, 1] / weights_max
            elif not allows_overflow:
                out[c, 1] = out[c, 1] * min(n_models, k) / weights_sum
            else:
                out[c, 1] = out[c, 1] * k / weights_sum
    return out[:n_out]


# ----------------------------------------------------------------------------- WBF (3-D, yaw-aware)


@njit()
def _wbf_3d(rows: np.ndarray, starts: np.ndarray, iou_thr: float, n_models: int,
            weights_sum: float) -> tuple[np.ndarray, np.ndarray]:
    """Yaw-aware 3-D WBF.  ``rows`` (N, 11): label, score·w, w, model, x, y, z, l, w, h, yaw, grouped
    by label and sorted by descending score within a group.

    A box joins the fused cluster of the same label with the highest BEV IoU (> iou_thr).  The fused
    box is the score-weighted mean of x, y, z, l, w, h; the yaw is the score-weighted circular mean of
    the axis direction modulo π (boxes are symmetric under yaw + π: averaged as angles of 2·yaw), turned
    to the half-plane of the highest-scoring member's heading.  Score as the ensemble_boxes ``avg``
    rule: mean member score × min(n_models, members) / Σweights.  Returns (fused (M, 11), cluster
    index per input row).
    """
    n = rows.shape[0]
    out = np.empty((n, 11))
    sx = np.zeros((n, 6))
    sc_sum = np.zeros(n)
    cs = np.zeros(n)
    sn = np.zeros(n)
    head = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    member = np.empty(n, dtype=np.int64)
    ca = np.empty((4, 2))
    cb = np.empty((4, 2))
    poly = np.empty((16, 2))
    buf = np.empty((16, 2))
    a5 = np.empty(5)
    b5 = np.empty(5)
    n_out = 0
    for g in range(starts.shape[0] - 1):
        c0 = n_out
        for r in range(starts[g], starts[g + 1]):
            b5[0], b5[1], b5[2], b5[3], b5[4] = rows[r, 4], rows[r, 5], rows[r, 7], rows[r, 8], rows[r, 10]
            best = -1
            best_iou = iou_thr
            rb = 0.5 * math.hypot(b5[2], b5[3])
            for c in range(c0, n_out):
                a5[0], a5[1], a5[2], a5[3], a5[4] = out[c, 4], out[c, 5], out[c, 7], out[c, 8], out[c, 10]
                ra = 0.5 * math.hypot(a5[2], a5[3])
                if math.hypot(a5[0] - b5[0], a5[1] - b5[1]) > ra + rb:
                    continue
                inter = _bev_inter_area(a5, b5, ca, cb, poly, buf)
                iou = inter / (a5[2] * a5[3] + b5[2] * b5[3] - inter)
                if iou > best_iou:
                    best_iou = iou
                    best = c
            sc = rows[r, 1]
            c = best
            if c < 0:
                c = n_out
                n_out += 1
                out[c, 0] = rows[r, 0]
                head[c] = rows[r, 10]
            member[r] = c
            for k in range(6):
                sx[c, k] += sc * rows[r, 4 + k]
            sc_sum[c] += sc
            cs[c] += sc * math.cos(2.0 * rows[r, 10])
            sn[c] += sc * math.sin(2.0 * rows[r, 10])
            count[c] += 1
            for k in range(6):
                out[c, 4 + k] = sx[c, k] / sc_sum[c]
            yaw = 0.5 * math.atan2(sn[c], cs[c])
            # choose yaw or yaw + π, whichever is closer to the leading member's heading
            dlt = math.atan2(math.sin(yaw - head[c]), math.cos(yaw - head[c]))
            if abs(dlt) > 0.5 * math.pi:
                yaw += math.pi
            out[c, 10] = math.atan2(math.sin(yaw), math.cos(yaw))
            out[c, 1] = sc_sum[c] / count[c]
            out[c, 2] = 0.0
            out[c, 3] = -1.0
        for c in range(c0, n_out):
            out[c, 1] = out[c, 1] * min(n_models, count[c]) / weights_sum
    return out[:n_out], member


@njit()
def _wbf_2d_prepare(b: np.ndarray, s: np.ndarray, lab: np.ndarray, model: np.ndarray, w: np.ndarray,  # noqa: PLR0917
                    clip: bool, skip_thr: float, rej: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray]:
    """Validate, clip and order the stacked boxes of all models for :func:`_wbf_2d`.

    Counts into ``rej``: [non_finite, inverted, zero_size].  Rows are grouped by label in first-seen
    order and sorted by descending score·weight within a group.  The third result is True when two
    rows of a group have equal scores (then the caller orders them with numpy, as ensemble_boxes).
    """
    n = b.shape[0]
    rows = np.empty((n, 8))
    m = 0
    for i in range(n):
        x1, y1, x2, y2 = b[i, 0], b[i, 1], b[i, 2], b[i, 3]
        if not (np.isfinite(x1) and np.isfinite(y1) and np.isfinite(x2) and np.isfinite(y2)
                and np.isfinite(s[i]) and np.isfinite(lab[i])):
            rej[0] += 1
            continue
        if x2 < x1 or y2 < y1:
            rej[1] += 1
            continue
        if clip:
            x1 = min(max(x1, 0.0), 1.0)
            y1 = min(max(y1, 0.0), 1.0)
            x2 = min(max(x2, 0.0), 1.0)
            y2 = min(max(y2, 0.0), 1.0)
        if (x2 - x1) * (y2 - y1) == 0.0:
            rej[2] += 1
            continue
        if s[i] < skip_thr:
            continue
        t = model[i]
        rows[m, 0] = float(np.int64(lab[i]))
        rows[m, 1] = s[i] * w[t]
        rows[m, 2] = w[t]
        rows[m, 3] = t
        rows[m, 4] = x1
        rows[m, 5] = y1
        rows[m, 6] = x2
        rows[m, 7] = y2
        m += 1
    rows = rows[:m]
    rank = np.empty(m, dtype=np.int64)
    n_groups = 0
    if m > 0:
        keys = rows[:, 0].copy()
        ko = np.argsort(keys, kind="mergesort")
        # first-seen index of each distinct label, then rank labels by it
        firsts = np.empty(m, dtype=np.int64)
        gid = np.empty(m, dtype=np.int64)
        for q in range(m):
            i = ko[q]
            if q == 0 or keys[i] != keys[ko[q - 1]]:
                firsts[n_groups] = i
                n_groups += 1
            gid[i] = n_groups - 1
        grank = np.empty(n_groups, dtype=np.int64)
        fo = np.argsort(firsts[:n_groups], kind="mergesort")
        for r in range(n_groups):
            grank[fo[r]] = r
        for i in range(m):
            rank[i] = grank[gid[i]]
    by_score = np.argsort(-rows[:, 1], kind="mergesort")
    by_rank = np.argsort(rank[by_score], kind="mergesort")
    perm = by_score[by_rank]
    out = rows[perm]
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(m):
        starts[rank[i] + 1] += 1
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    tie = False
    for i in range(1, m):
        if out[i, 0] == out[i - 1, 0] and out[i, 1] == out[i - 1, 1]:
            tie = True
    return out, starts, tie, rows
