"""Numba kernels of the temporal-alignment tools (private; the wrappers in ``dtw.py``, ``xcorr.py``
and ``cca.py`` validate and shape the inputs).  Kernels take arrays and scalars only and never raise.

DTW conventions match dtaidistance (``dtw.distance``): the local cost is the squared difference
``(a_i - b_j)²``, steps are (1,1), (1,0), (0,1) without penalty, and the distance is the square root
of the accumulated cost.  The Sakoe-Chiba window ``w`` lets row ``i`` use columns
``max(0, i - max(0, r-c) - w + 1) <= j < min(c, i + max(0, c-r) + w)`` (so ``w = 1`` with equal lengths
is the diagonal only, and a length difference widens the band on one side, as in dtaidistance).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgefuse._jit import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_INF = np.inf


@njit("float64(float64[::1], float64[::1], int64)", fastmath=False)
def _dtw_cost(a: F64, b: F64, window: int) -> float:
    """Accumulated DTW cost (no sqrt) of ``a`` (r,) vs ``b`` (c,) within ``window`` (>= 1).

    Memory O(c): two rows.  Cells outside the band are +inf.
    """
    r = a.shape[0]
    c = b.shape[0]
    prev = np.full(c + 1, _INF)
    cur = np.full(c + 1, _INF)
    prev[0] = 0.0
    lo_shift = max(0, r - c)
    hi_shift = max(0, c - r)
    for i in range(r):
        js = max(0, i - lo_shift - window + 1)
        je = min(c, i + hi_shift + window)
        cur[js] = _INF
        ai = a[i]
        left = _INF
        for j in range(js, je):
            diff = ai - b[j]
            d = diff * diff
            m = prev[j]
            up = prev[j + 1]
            m = min(m, up)
            m = min(m, left)
            left = d + m
            cur[j + 1] = left
        if je + 1 <= c:
            cur[je + 1] = _INF
        tmp = prev
        prev = cur
        cur = tmp
        if i == 0:
            cur[0] = _INF  # D[i+1][0] = inf for every row after the origin row
    return float(prev[c])


@njit("Tuple((float64, int64[:, ::1]))(float64[::1], float64[::1], int64)", fastmath=False)
def _dtw_path(a: F64, b: F64, window: int) -> tuple[float, I64]:
    """DTW cost (no sqrt) and optimal warping path ((K, 2) index pairs, start to end).

    The accumulated-cost matrix is stored only inside the band: r rows × (band width + 1) cells,
    i.e. O(n·w) memory.
    """
    r = a.shape[0]
    c = b.shape[0]
    lo_shift = max(0, r - c)
    hi_shift = max(0, c - r)
    width = min(c, lo_shift + hi_shift + 2 * window - 1)
    # row i stores columns js(i)-1 .. js(i)+width-1 (index 0 = left guard)
    D = np.full((r, width + 1), _INF)
    js_arr = np.empty(r, np.int64)
    for i in range(r):
        js = max(0, i - lo_shift - window + 1)
        je = min(c, i + hi_shift + window)
        js_arr[i] = js
        ai = a[i]
        left = _INF
        for j in range(js, je):
            diff = ai - b[j]
            d = diff * diff
            if i == 0:
                m = 0.0 if j == 0 else _INF
            else:
                pjs = js_arr[i - 1]
                m = _INF
                k = j - pjs  # column j-1 in previous row storage is index (j-1)-pjs+1
                if 0 <= k <= width:
                    m = D[i - 1, k]
                if 0 <= k + 1 <= width and D[i - 1, k + 1] < m:
                    m = D[i - 1, k + 1]
            m = min(m, left)
            left = d + m
            D[i, j - js + 1] = left
    cost = D[r - 1, c - 1 - js_arr[r - 1] + 1]
    # backtrack
    path = np.empty((r + c, 2), np.int64)
    n = 0
    i = r - 1
    j = c - 1
    while True:
        path[n, 0] = i
        path[n, 1] = j
        n += 1
        if i == 0 and j == 0:
            break
        best = _INF
        bi = i
        bj = j
        if i > 0 and j > 0:
            k = j - 1 - js_arr[i - 1] + 1
            if 0 <= k <= width and D[i - 1, k] < best:
                best = D[i - 1, k]
                bi = i - 1
                bj = j - 1
        if i > 0:
            k = j - js_arr[i - 1] + 1
            if 0 <= k <= width and D[i - 1, k] < best:
                best = D[i - 1, k]
                bi = i - 1
                bj = j
        if j > 0:
            k = j - 1 - js_arr[i] + 1
            if 0 <= k <= width and D[i, k] < best:
                best = D[i, k]
                bi = i
                bj = j - 1
        if bi == i and bj == j:
            break  # unreachable (cannot happen inside a valid band)
        i = bi
        j = bj
    out = np.empty((n, 2), np.int64)
    for k in range(n):
        out[k, 0] = path[n - 1 - k, 0]
        out[k, 1] = path[n - 1 - k, 1]
    return cost, out


@njit("Tuple((float64, int64, int64))(float64[::1], float64[::1])", fastmath=False)
def _dtw_subsequence(q: F64, s: F64) -> tuple[float, int, int]:
    """Best match of the whole query ``q`` (r,) to any contiguous part of ``s`` (c,).

    Free start and end in ``s`` (the first row may start at any column), squared-difference cost.
    Returns (cost, start, end) with ``s[start:end+1]`` the matched part.  O(c) memory: the start
    column is carried along with the accumulated cost.
    """
    r = q.shape[0]
    c = s.shape[0]
    prev = np.zeros(c + 1)
    prev[0] = _INF
    pstart = np.arange(-1, c).astype(np.int64)
    cur = np.empty(c + 1)
    cstart = np.empty(c + 1, np.int64)
    for i in range(r):
        cur[0] = _INF
        qi = q[i]
        for j in range(c):
            diff = qi - s[j]
            d = diff * diff
            if i == 0:
                cur[j + 1] = d
                cstart[j + 1] = j
                continue
            m = prev[j]
            st = pstart[j]
            if prev[j + 1] < m:
                m = prev[j + 1]
                st = pstart[j + 1]
            if cur[j] < m:
                m = cur[j]
                st = cstart[j]
            cur[j + 1] = d + m
            cstart[j + 1] = st
        tmp = prev
        prev = cur
        cur = tmp
        tmp2 = pstart
        pstart = cstart
        cstart = tmp2
    best = _INF
    end = 0
    for j in range(c):
        if prev[j + 1] < best:
            best = prev[j + 1]
            end = j
    return best, pstart[end + 1], end


@njit("Tuple((float64, int64))(float64[::1], float64[::1], float64, float64, int64)", fastmath=False)
def _dtw_line_cost(a: F64, b: F64, slope: float, intercept: float, radius: int) -> tuple[float, int]:
    """DTW cost restricted to ``|j - (slope·i + intercept)| <= radius`` (a warp that is a straight
    line ± ``radius`` samples), open at both ends: the path may start on the first row or column the
    band reaches and end on the last row or column.  Returns (cost, number of rows on the path) of
    the end with the lowest cost per row (inf, 0 when the band misses ``b``)."""
    r = a.shape[0]
    c = b.shape[0]
    prev = np.full(c + 1, _INF)
    cur = np.full(c + 1, _INF)
    prev_rows = np.zeros(c + 1, np.int64)
    cur_rows = np.zeros(c + 1, np.int64)
    # columns written in the buffer now called ``cur`` (to be reset before reuse)
    cur_lo = 0
    cur_hi = 0
    prev_lo = 0
    prev_hi = 0
    best = _INF
    best_rows = 0
    first_row = -1
    for i in range(r):
        center = slope * i + intercept
        js = int(np.floor(center)) - radius
        je = int(np.ceil(center)) + radius + 1
        js = max(js, 0)
        je = min(je, c)
        for k in range(cur_lo, cur_hi):
            cur[k] = _INF
        if js >= je:
            if first_row >= 0:
                break
            continue
        if first_row < 0:
            first_row = i
        for j in range(js, je):
            diff = a[i] - b[j]
            d = diff * diff
            if i == first_row or j == 0:
                m = 0.0  # open begin
                rows = 0
            else:
                m = _INF
                rows = 0
                if prev_lo <= j < prev_hi:
                    m = prev[j]
                    rows = prev_rows[j]
                if prev_lo <= j + 1 < prev_hi and prev[j + 1] < m:
                    m = prev[j + 1]
                    rows = prev_rows[j + 1]
                if j > js and cur[j] < m:
                    m = cur[j]
                    rows = cur_rows[j] - 1
            cur[j + 1] = d + m
            cur_rows[j + 1] = rows + 1
        cur_lo = js + 1
        cur_hi = je + 1
        for j in range(js, je):
            at_end = (i == r - 1 or j == c - 1) and cur[j + 1] < _INF
            if at_end and (best_rows == 0 or cur[j + 1] * best_rows < best * cur_rows[j + 1]):
                best = cur[j + 1]
                best_rows = cur_rows[j + 1]
        tmp = prev
        prev = cur
        cur = tmp
        tmpr = prev_rows
        prev_rows = cur_rows
        cur_rows = tmpr
        lo = prev_lo
        hi = prev_hi
        prev_lo = cur_lo
        prev_hi = cur_hi
        cur_lo = lo
        cur_hi = hi
    return best, best_rows


@njit("int64[:, ::1](bool_[::1])", fastmath=False)
def _valid_runs(v: B) -> I64:
    """Maximal runs of True in ``v`` as (R, 2) half-open index ranges [start, end)."""
    n = v.shape[0]
    out = np.empty((n // 2 + 1, 2), np.int64)
    r = 0
    g = 0
    while g < n:
        if v[g]:
            s = g
            while g < n and v[g]:
                g += 1
            out[r, 0] = s
            out[r, 1] = g
            r += 1
        else:
            g += 1
    return out[:r].copy()


@njit("Tuple((float64[:, ::1], float64[:, :, ::1]))(float64[:, ::1])", fastmath=False)
def _prefix_moments(X: F64) -> tuple[F64, F64]:
    """Prefix sums of X (n, p) and of its outer products: P1 (n+1, p), P2 (n+1, p, p) with
    ``P1[g] = Σ_{i<g} X[i]`` and ``P2[g] = Σ_{i<g} X[i] X[i]ᵀ``."""
    n = X.shape[0]
    p = X.shape[1]
    P1 = np.zeros((n + 1, p))
    P2 = np.zeros((n + 1, p, p))
    for g in range(n):
        for u in range(p):
            xu = X[g, u]
            P1[g + 1, u] = P1[g, u] + xu
            for v in range(p):
                P2[g + 1, u, v] = P2[g, u, v] + xu * X[g, v]
    return P1, P2


@njit("void(float64[:, ::1], bool_[::1], float64[:, ::1], bool_[::1], int64, int64[::1],"
      " float64[:, ::1], float64[:, :, ::1], float64[:, :, :, ::1])", fastmath=False)
def _lagged_moments(X: F64, vx: B, Y: F64, vy: B, lag0: int, block_of: I64,  # noqa: PLR0917
                    count: F64, s1: F64, s2: F64) -> None:
    """Per lag and per block, the sufficient statistics of the pairs (X[g], Y[g - lag]).

    X (n, p) and Y (n, q) share one time grid; vx / vy flag valid grid samples.  Lag index ``k``
    means ``lag = lag0 + k`` grid steps.  ``block_of[g]`` (non-decreasing in g) is the block of grid
    sample g.  Outputs (zeroed by the caller): ``count[k, m]``, ``s1[k, m, :]`` = sum of z,
    ``s2[k, m, :, :]`` = sum of z zᵀ with z = [X[g], Y[g-lag]] (p + q values), over the g of block m
    where both samples are valid.

    The valid pairs of one lag are the intersections of X's valid runs with Y's runs shifted by the
    lag; over each such interval the X-only and Y-only moments are differences of prefix sums, and
    the p·q cross products are contiguous dot products (BLAS ``ddot``).
    """
    n = X.shape[0]
    p = X.shape[1]
    q = Y.shape[1]
    nl = count.shape[0]
    nb = count.shape[1]
    ra = _valid_runs(vx)
    rb = _valid_runs(vy)
    PA1, PA2 = _prefix_moments(X)
    PB1, PB2 = _prefix_moments(Y)
    # first grid index of each block (block_of is non-decreasing)
    bstart = np.full(nb + 1, n, np.int64)
    for g in range(n - 1, -1, -1):
        bstart[block_of[g]] = g
    for m in range(nb - 1, -1, -1):
        bstart[m] = min(bstart[m], bstart[m + 1])
    XT = np.ascontiguousarray(X.T)  # channel-major rows: the cross products are contiguous dots
    YT = np.ascontiguousarray(Y.T)
    for k in range(nl):
        lag = lag0 + k
        i = 0
        j = 0
        while i < ra.shape[0] and j < rb.shape[0]:
            s = max(ra[i, 0], rb[j, 0] + lag)
            e = min(ra[i, 1], rb[j, 1] + lag)
            if s < e:
                m = block_of[s]
                while s < e:
                    e2 = min(e, bstart[m + 1])
                    if e2 > s:
                        count[k, m] += e2 - s
                        for u in range(p):
                            s1[k, m, u] += PA1[e2, u] - PA1[s, u]
                            for v in range(p):
                                s2[k, m, u, v] += PA2[e2, u, v] - PA2[s, u, v]
                        for u in range(q):
                            s1[k, m, p + u] += PB1[e2 - lag, u] - PB1[s - lag, u]
                            for v in range(q):
                                s2[k, m, p + u, p + v] += PB2[e2 - lag, u, v] - PB2[s - lag, u, v]
                        for u in range(p):
                            xs = XT[u, s:e2]
                            for v in range(q):
                                c = np.dot(xs, YT[v, s - lag:e2 - lag])
                                s2[k, m, u, p + v] += c
                                s2[k, m, p + v, u] += c
                        s = e2
                    m += 1
            if ra[i, 1] < rb[j, 1] + lag:
                i += 1
            else:
                j += 1
