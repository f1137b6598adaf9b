"""Numba kernels for scanning-radar (Navtech) geometry: polar → Cartesian image, polar → points.

Kernels take arrays and scalars only, trust their inputs (checked by :mod:`edgefuse.fusion.radar`),
never raise and never index outside their arrays.  The conventions (also in the test reference):

- ``polar`` is indexed ``polar[i, j]`` with ``i`` the range bin (range ``i * range_res_m``) and ``j`` the
  azimuth column; column ``j`` looks along ``theta_j = (j + az_offset_bins) * 2*pi / n_az``, measured
  **clockwise from +y (forward)** towards +x (right): ``x = r sin(theta)``, ``y = r cos(theta)``.
- Cartesian image pixel ``(v, u)`` (row, column) is the point ``x = (u - cx) * out_res_m``,
  ``y = (cy - v) * out_res_m`` (image up = forward, image right = right).
- Bilinear interpolation in (range bin, azimuth bin), azimuth wrapping around; pixels farther than
  the last range bin (``rho > n_range - 1``) get ``fill``.  For integer outputs the interpolated value
  is rounded half up (``floor(value + 0.5)``); ``rnd`` is 0.5 for integer outputs and 0.0 for float.
"""

from __future__ import annotations

import math

import numpy as np

from edgefuse._jit import njit

_TWO_PI = 2.0 * math.pi


@njit()
def _polar_to_cartesian(  # noqa: PLR0917 (flat kernel; scalar arguments by design)
    polar: np.ndarray,
    out: np.ndarray,
    range_res_m: float,
    out_res_m: float,
    cx: float,
    cy: float,
    az_offset_bins: float,
    fill: float,
    rnd: float,
) -> None:
    """Resample ``polar`` (n_range, n_az) into ``out`` (H, W) in place (see module docstring)."""
    n_r = polar.shape[0]
    n_a = polar.shape[1]
    h = out.shape[0]
    w = out.shape[1]
    scale = out_res_m / range_res_m
    bins_per_rad = n_a / _TWO_PI
    rmax = float(n_r - 1)
    for v in range(h):
        yb = (cy - v) * scale
        for u in range(w):
            xb = (u - cx) * scale
            rho = math.sqrt(xb * xb + yb * yb)
            if rho > rmax:
                out[v, u] = fill + rnd
                continue
            th = math.atan2(xb, yb)
            if th < 0.0:
                th += _TWO_PI
            a = th * bins_per_rad - az_offset_bins
            a_floor = math.floor(a)
            wa = a - a_floor
            j0 = int(a_floor) % n_a
            j1 = (j0 + 1) % n_a
            i0 = int(rho)
            wr = rho - i0
            i1 = i0 + 1 if i0 < n_r - 1 else i0
            near = (1.0 - wa) * polar[i0, j0] + wa * polar[i0, j1]
            far = (1.0 - wa) * polar[i1, j0] + wa * polar[i1, j1]
            out[v, u] = (1.0 - wr) * near + wr * far + rnd


@njit()
def _polar_peaks(  # noqa: PLR0917 (one flat kernel)
    polar: np.ndarray,
    threshold: float,
    i_min: int,
    max_peaks: int,
    range_res_m: float,
    az_offset_bins: float,
    cand: np.ndarray,
    keep: np.ndarray,
    out: np.ndarray,
) -> int:
    """Per-azimuth peak detection; writes rows ``(x, y, 0, intensity)`` to ``out`` and returns their count.

    A range bin ``i >= i_min`` of column ``j`` is a peak when ``polar[i, j] >= threshold``,
    ``polar[i, j] > polar[i - 1, j]`` (when ``i > 0``) and ``polar[i, j] >= polar[i + 1, j]`` (when
    ``i < n_range - 1``): a plateau yields its nearest bin.  Of the peaks of one column the
    ``max_peaks`` strongest are kept (ties: nearer first) and written in increasing range.  Columns
    are emitted in order ``j = 0 .. n_az - 1``.  ``cand`` (int64, >= n_range) and ``keep`` (bool,
    >= n_range) are scratch; ``out`` (float32, (n_az * max_peaks, 4)) receives the points.
    """
    n_r = polar.shape[0]
    n_a = polar.shape[1]
    dth = _TWO_PI / n_a
    n = 0
    start = i_min if i_min > 0 else 0
    for j in range(n_a):
        k = 0
        for i in range(start, n_r):
            val = polar[i, j]
            if val < threshold:
                continue
            if i > 0 and not val > polar[i - 1, j]:
                continue
            if i < n_r - 1 and not val >= polar[i + 1, j]:
                continue
            cand[k] = i
            keep[k] = True
            k += 1
        if k == 0:
            continue
        if k > max_peaks:
            for m in range(k):
                keep[m] = False
            for _ in range(max_peaks):
                best = -1
                for m in range(k):
                    if not keep[m] and (best < 0 or polar[cand[m], j] > polar[cand[best], j]):
                        best = m
                keep[best] = True
        th = (j + az_offset_bins) * dth
        s = math.sin(th)
        c = math.cos(th)
        for m in range(k):
            if keep[m]:
                r = cand[m] * range_res_m
                out[n, 0] = r * s
                out[n, 1] = r * c
                out[n, 2] = 0.0
                out[n, 3] = polar[cand[m], j]
                n += 1
    return n


@njit()
def _cartesian_lut(  # noqa: PLR0917
    n_r: int,
    n_a: int,
    range_res_m: float,
    out_res_m: float,
    cx: float,
    cy: float,
    az_offset_bins: float,
    idx: np.ndarray,
    wr_out: np.ndarray,
    wa_out: np.ndarray,
) -> None:
    """Sampling table of :func:`_polar_to_cartesian` for an (H, W) output, flattened row-major.

    ``idx[p] = i0 * n_a + j0`` (flat index of the nearer/left polar cell), or -1 beyond the last range
    bin; ``wr_out``/``wa_out`` (float32) are the range/azimuth weights.  Same arithmetic as the direct
    kernel (float64), the weights then rounded to float32.
    """
    h = idx.shape[0]
    w = idx.shape[1]
    scale = out_res_m / range_res_m
    bins_per_rad = n_a / _TWO_PI
    rmax = float(n_r - 1)
    for v in range(h):
        yb = (cy - v) * scale
        for u in range(w):
            xb = (u - cx) * scale
            rho = math.sqrt(xb * xb + yb * yb)
            if rho > rmax:
                idx[v, u] = -1
                wr_out[v, u] = 0.0
                wa_out[v, u] = 0.0
                continue
            th = math.atan2(xb, yb)
            if th < 0.0:
                th += _TWO_PI
            a = th * bins_per_rad - az_offset_bins
            a_floor = math.floor(a)
            j0 = int(a_floor) % n_a
            i0 = int(rho)
            idx[v, u] = i0 * n_a + j0
            wr_out[v, u] = rho - i0
            wa_out[v, u] = a - a_floor


@njit()
def _remap_lut(  # noqa: PLR0917
    polar: np.ndarray,
    idx: np.ndarray,
    wr_in: np.ndarray,
    wa_in: np.ndarray,
    out: np.ndarray,
    fill: float,
    rnd: float,
) -> None:
    """Apply a :func:`_cartesian_lut` table to ``polar`` (n_range, n_az), writing ``out`` (H, W)."""
    n_r = polar.shape[0]
    n_a = polar.shape[1]
    h = out.shape[0]
    w = out.shape[1]
    for v in range(h):
        for u in range(w):
            k = idx[v, u]
            if k < 0:
                out[v, u] = fill + rnd
                continue
            i0 = k // n_a
            j0 = k - i0 * n_a
            j1 = j0 + 1 if j0 < n_a - 1 else 0
            i1 = i0 + 1 if i0 < n_r - 1 else i0
            wa = np.float64(wa_in[v, u])
            wr = np.float64(wr_in[v, u])
            near = (1.0 - wa) * polar[i0, j0] + wa * polar[i0, j1]
            far = (1.0 - wa) * polar[i1, j0] + wa * polar[i1, j1]
            out[v, u] = (1.0 - wr) * near + wr * far + rnd
