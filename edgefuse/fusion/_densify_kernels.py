"""Numba kernels for depth densification (:mod:`edgefuse.fusion.densify`).

All images are 2-D C-contiguous float32 of the same shape (checked by the wrapper).  Kernels never
raise and never index outside their arrays.  "Empty" means a value ``<= eps`` (``eps`` > 0).
"""

from __future__ import annotations

import numpy as np

from edgefuse._jit import njit


@njit()
def _invert_depth(depth: np.ndarray, min_depth: float, max_depth: float, offset: float,
                  out: np.ndarray) -> int:
    """``out = offset - depth`` where ``min_depth <= depth <= max_depth``, else 0 (also for NaN).

    With ``offset > max_depth`` every valid pixel maps to a strictly positive value, so 0 marks an
    empty pixel after inversion; nearer points get larger values (a max filter prefers them).
    Returns the number of valid input pixels.
    """
    count = 0
    rows = min(depth.shape[0], out.shape[0])
    cols = min(depth.shape[1], out.shape[1])
    for r in range(rows):
        for c in range(cols):
            d = depth[r, c]
            if d >= min_depth and d <= max_depth:
                out[r, c] = np.float32(offset - d)
                count += 1
            else:
                out[r, c] = np.float32(0.0)
    return count


@njit()
def _fill_empty(image: np.ndarray, source: np.ndarray, eps: float) -> None:
    """Where ``image`` is empty (``<= eps``) take the value of ``source``."""
    rows = min(image.shape[0], source.shape[0])
    cols = min(image.shape[1], source.shape[1])
    for r in range(rows):
        for c in range(cols):
            if image[r, c] <= eps:
                image[r, c] = source[r, c]


@njit()
def _take_where_valid(image: np.ndarray, source: np.ndarray, eps: float) -> None:
    """Where both ``image`` and ``source`` (a filtered copy of it) are valid (``> eps``), take ``source``.

    Used after the median filter: a median that lands on an empty neighbour keeps the pixel's value."""
    rows = min(image.shape[0], source.shape[0])
    cols = min(image.shape[1], source.shape[1])
    for r in range(rows):
        for c in range(cols):
            if image[r, c] > eps and source[r, c] > eps:
                image[r, c] = source[r, c]


@njit()
def _valid_mask(image: np.ndarray, eps: float, out: np.ndarray) -> None:
    """``out = 1`` where ``image > eps``, else 0 (float32)."""
    rows = min(image.shape[0], out.shape[0])
    cols = min(image.shape[1], out.shape[1])
    for r in range(rows):
        for c in range(cols):
            out[r, c] = np.float32(1.0) if image[r, c] > eps else np.float32(0.0)


@njit()
def _take_normalized(image: np.ndarray, blurred: np.ndarray, weight: np.ndarray, eps: float) -> None:
    """Normalised convolution: where ``image`` is valid, ``image = blurred / weight``.

    ``blurred`` is the filter applied to ``image`` (empty pixels are 0) and ``weight`` the same
    filter applied to the valid mask, so the result is a weighted mean of valid neighbours only."""
    rows = min(image.shape[0], blurred.shape[0], weight.shape[0])
    cols = min(image.shape[1], blurred.shape[1], weight.shape[1])
    for r in range(rows):
        for c in range(cols):
            w = weight[r, c]
            if image[r, c] > eps and w > 0.0:
                image[r, c] = np.float32(blurred[r, c] / w)


@njit()
def _extend_to_top(image: np.ndarray, eps: float) -> None:
    """In each column, give the empty pixels above its top-most valid pixel that pixel's value."""
    rows = image.shape[0]
    for c in range(image.shape[1]):
        top = -1
        for r in range(rows):
            if image[r, c] > eps:
                top = r
                break
        if top > 0:
            value = image[top, c]
            for r in range(top):
                image[r, c] = value


@njit()
def _reinvert_depth(image: np.ndarray, offset: float, eps: float, max_depth: float, out: np.ndarray) -> int:
    """``out = offset - image`` where ``image > eps`` and the result is ``<= max_depth``, else 0.

    (Blurring next to empty pixels can pull an inverted value towards 0, i.e. past ``max_depth``;
    such pixels are left empty rather than given a depth no input supports.)  Returns the number of
    filled pixels."""
    count = 0
    rows = min(image.shape[0], out.shape[0])
    cols = min(image.shape[1], out.shape[1])
    for r in range(rows):
        for c in range(cols):
            v = image[r, c]
            d = offset - v
            if v > eps and d <= max_depth:
                out[r, c] = np.float32(d)
                count += 1
            else:
                out[r, c] = np.float32(0.0)
    return count
