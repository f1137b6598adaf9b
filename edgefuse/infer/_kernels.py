"""Numba kernels of the inference pre-processing: image → normalized tensor (resize fused), finiteness.

Kernels trust their inputs (checked by :mod:`edgefuse.infer.preprocess`), never raise and never index
outside their arrays.  They are compiled lazily per source dtype; the ``onnx_model`` stage compiles them in
``start`` by running its warm-up frame through them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse._jit import njit


@njit()
def _image_to_tensor(src: Any, out: Any, perm: Any, scale: float, mean: Any, inv_std: Any, chw: bool,  # noqa: PLR0917
                     bilinear: bool) -> None:  # pragma: no cover - compiled
    """``src`` (H, W, C) any real dtype → ``out`` float32 (C, H2, W2) if ``chw`` else (H2, W2, C).

    Output channel ``k`` reads source channel ``perm[k]``; value ``(v * scale - mean[k]) * inv_std[k]``.
    Bilinear sampling uses pixel centres (OpenCV's ``INTER_LINEAR`` geometry, clamped at the border);
    nearest takes ``floor(x * W / W2)`` (OpenCV's ``INTER_NEAREST``).
    """
    h, w = src.shape[0], src.shape[1]
    nc = perm.shape[0]
    if chw:
        h2, w2 = out.shape[1], out.shape[2]
    else:
        h2, w2 = out.shape[0], out.shape[1]
    sy = h / h2
    sx = w / w2
    for y in range(h2):
        if bilinear:
            fy = (y + 0.5) * sy - 0.5
            fy = min(max(fy, 0.0), h - 1.0)
            y0 = int(fy)  # fy >= 0: truncation is floor
            y1 = min(y0 + 1, h - 1)
            ay = fy - y0
        else:
            y0 = min(int(y * sy), h - 1)
            y1 = y0
            ay = 0.0
        for x in range(w2):
            if bilinear:
                fx = (x + 0.5) * sx - 0.5
                fx = min(max(fx, 0.0), w - 1.0)
                x0 = int(fx)
                x1 = min(x0 + 1, w - 1)
                ax = fx - x0
            else:
                x0 = min(int(x * sx), w - 1)
                x1 = x0
                ax = 0.0
            for k in range(nc):
                c = perm[k]
                if bilinear:
                    top = src[y0, x0, c] * (1.0 - ax) + src[y0, x1, c] * ax
                    bot = src[y1, x0, c] * (1.0 - ax) + src[y1, x1, c] * ax
                    v = top * (1.0 - ay) + bot * ay
                else:
                    v = float(src[y0, x0, c])
                v = (v * scale - mean[k]) * inv_std[k]
                if chw:
                    out[k, y, x] = v
                else:
                    out[y, x, k] = v


@njit()
def _sparse_min_to_tensor(src: Any, out: Any, perm: Any, scale: float, mean: Any, inv_std: Any,  # noqa: PLR0917
                          chw: bool) -> None:  # pragma: no cover - compiled
    """Resize a sparse image (0 = no value, e.g. a projected LiDAR depth image) like ``_image_to_tensor``.

    Output pixel ``(y, x)`` covers source rows ``floor(y * H / H2)`` up to (not including)
    ``floor((y + 1) * H / H2)`` (at least one row), likewise columns; it takes the smallest finite value
    ``> 0`` there (for depth: the nearest return wins, as in a z-buffer), 0 where there is none, then
    ``(v * scale - mean[k]) * inv_std[k]``.  Upscaling repeats pixels (nearest).
    """
    h, w = src.shape[0], src.shape[1]
    nc = perm.shape[0]
    if chw:
        h2, w2 = out.shape[1], out.shape[2]
    else:
        h2, w2 = out.shape[0], out.shape[1]
    for y in range(h2):
        ya = min(y * h // h2, h - 1)
        yb = min(max((y + 1) * h // h2, ya + 1), h)
        for x in range(w2):
            xa = min(x * w // w2, w - 1)
            xb = min(max((x + 1) * w // w2, xa + 1), w)
            for k in range(nc):
                c = perm[k]
                best = np.inf
                for yy in range(ya, yb):
                    for xx in range(xa, xb):
                        v = float(src[yy, xx, c])
                        if v > 0.0 and v < best:
                            best = v
                v = best if best < np.inf else 0.0
                v = (v * scale - mean[k]) * inv_std[k]
                if chw:
                    out[k, y, x] = v
                else:
                    out[y, x, k] = v


@njit()
def _count_nonfinite(flat: Any) -> int:  # pragma: no cover - compiled
    """How many elements of a 1-D float array are NaN or ±inf."""
    n = 0
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            n += 1
    return n
