"""Depth densification: sparse LiDAR depth image → dense depth image, classical CPU morphology.

:class:`DepthCompleter` follows the pipeline published by Ku, Harakeh and Waslander, *In Defense of
Classical Image Processing: Fast Depth Completion on the CPU* (CRV 2018, "IP-Basic"), written here
from the paper's description with OpenCV morphology and small Numba kernels:

1. **Invert** valid depths ``d`` (``min_depth_m <= d <= max_depth_m``) to ``offset - d`` with
   ``offset = max_depth_m + 1`` (so every valid pixel is ≥ 1 and 0 marks "empty").  Max filters on
   inverted depth prefer the *nearer* point, which keeps foreground edges sharp.
2. **Dilate** with a custom kernel (default a 5×5 diamond, the paper's best).
3. **Close** small holes (morphological closing, 5×5 full kernel).
4. **Fill small holes**: empty pixels take the value of a 7×7 full dilation.
5. Optionally **extend to the top**: in every column, pixels above the top-most value take it (LiDAR
   sees nothing above its highest beam; off by default).
6. **Fill large holes**: empty pixels take the value of a 31×31 full dilation.
7. **Median blur** (5×5) then **Gaussian blur** (5×5), each applied to filled pixels only.
8. **Re-invert** to metres.

One departure from the paper's description: the blurs ignore empty pixels.  A median that lands on
an empty neighbour keeps the pixel's own value, and the Gaussian is a normalised convolution
(``blur(values) / blur(valid mask)``), so a blur never pulls a depth at the edge of the filled region
towards "empty" (far): every output depth is a weighted mean of input-supported values.  Inside
fully filled regions both equal the plain blurs.

Output conventions: float32 metres, 0 where still empty (after step 6 this is only where no input
pixel lies within the large-hole kernel, or ``extend_to_top`` is off and above the LiDAR).  A pixel
whose blurred value would lie beyond ``max_depth_m`` is left empty.  Input pixels that had a depth
keep it up to the blur steps (set ``median_blur=False, gaussian_blur=False`` to keep them to within
float32 rounding of the inversion, about 1e-5 m).  Input depths outside
``[min_depth_m, max_depth_m]``, NaN and inf are treated as empty.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from edgefuse.errors import MessageError, ParameterError
from edgefuse.fusion import _densify_kernels as _k

__all__ = ["DepthCompleter", "DepthImageError", "densify_depth", "make_kernel"]

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
KernelShape = Literal["full", "cross", "diamond"]

#: Inverted values at or below this count as empty (valid ones are ≥ 1 by construction).
_EPS = 0.1


class DepthImageError(MessageError):
    """The depth image has the wrong shape or dtype for the completer."""


def make_kernel(shape: KernelShape, size: int) -> U8:
    """A (size, size) uint8 structuring element: ``full`` (all ones), ``cross`` (centre row and
    column) or ``diamond`` (``|dr| + |dc| <= size // 2``).  ``size`` must be odd and ≥ 1."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ParameterError(f"kernel size must be an odd positive integer, got {size!r}")
    half = size // 2
    dr, dc = np.abs(np.mgrid[-half:half + 1, -half:half + 1])
    if shape == "full":
        mask = np.ones((size, size), dtype=bool)
    elif shape == "cross":
        mask = (dr == 0) | (dc == 0)
    elif shape == "diamond":
        mask = (dr + dc) <= half
    else:
        raise ParameterError(f"kernel shape must be 'full', 'cross' or 'diamond', got {shape!r}")
    return mask.astype(np.uint8)


class DepthCompleter:
    """Preallocated IP-Basic-style depth completion for one image size (see the module docs).

    Args:
        height, width: image size in pixels.
        min_depth_m, max_depth_m: input depths outside this range are ignored; the output never
            exceeds ``max_depth_m``.
        dilation: structuring element of step 2 as ``(shape, size)``.
        close_size, small_hole_size, large_hole_size: full-kernel sizes of steps 3, 4 and 6 (odd;
            ``large_hole_size=0`` skips step 6).
        extend_to_top: run step 5.
        median_blur, gaussian_blur: run the blurs of step 7.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        min_depth_m: float = 0.1,
        max_depth_m: float = 100.0,
        dilation: tuple[KernelShape, int] = ("diamond", 5),
        close_size: int = 5,
        small_hole_size: int = 7,
        large_hole_size: int = 31,
        extend_to_top: bool = False,
        median_blur: bool = True,
        gaussian_blur: bool = True,
    ) -> None:
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) <= 0:
                raise ParameterError(f"{name} must be a positive integer, got {value!r}")
        if not (np.isfinite(min_depth_m) and np.isfinite(max_depth_m) and 0 < min_depth_m < max_depth_m):
            raise ParameterError(f"depth range must satisfy 0 < min_depth_m < max_depth_m (finite), "
                             f"got {min_depth_m!r}, {max_depth_m!r}")
        self.height, self.width = int(height), int(width)
        self.min_depth_m, self.max_depth_m = float(min_depth_m), float(max_depth_m)
        self._offset = self.max_depth_m + 1.0
        self._dilate_kernel = make_kernel(dilation[0], dilation[1])
        self._close_kernel = make_kernel("full", close_size)
        self._small_kernel = make_kernel("full", small_hole_size)
        self._large_kernel = None if large_hole_size == 0 else make_kernel("full", large_hole_size)
        self.extend_to_top = bool(extend_to_top)
        self.median_blur = bool(median_blur)
        self.gaussian_blur = bool(gaussian_blur)
        shape = (self.height, self.width)
        self._inv = np.zeros(shape, dtype=np.float32)
        self._tmp = np.zeros(shape, dtype=np.float32)
        self._tmp2 = np.zeros(shape, dtype=np.float32)
        self._weight = np.zeros(shape, dtype=np.float32)
        self._out = np.zeros(shape, dtype=np.float32)
        self.n_input = 0
        self.n_filled = 0

    def warmup(self) -> float:
        """Compile (or load from cache) the kernels and run once; returns seconds."""
        start = time.perf_counter()
        image = np.zeros((self.height, self.width), np.float32)
        self.complete(image)
        image.setflags(write=False)  # depth images viewed from message buffers are read-only
        self.complete(image)
        return time.perf_counter() - start

    def _check(self, depth: Any) -> F32:
        if not isinstance(depth, np.ndarray):
            raise DepthImageError(f"depth must be a numpy array, got {type(depth).__name__}")
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[:, :, 0]
        if depth.shape != (self.height, self.width):
            raise DepthImageError(f"depth must have shape ({self.height}, {self.width}), got {depth.shape}")
        if depth.dtype.kind != "f":
            raise DepthImageError(f"depth must be a float image in metres (32FC1), got {depth.dtype}")
        if depth.dtype != np.float32 or not depth.dtype.isnative:
            return np.ascontiguousarray(depth, dtype=np.float32)  # one conversion
        return np.ascontiguousarray(depth)

    def complete(self, depth: npt.NDArray[np.floating[Any]], *, copy: bool = False) -> F32:
        """Densify an (H, W) float depth image in metres (0 = no return); returns (H, W) float32.

        float64 or non-contiguous input is converted once; other dtypes or shapes raise
        :class:`DepthImageError`.  The result is a read-only view into a buffer owned by the
        completer (overwritten by the next call) unless ``copy=True``.  Afterwards ``n_input``
        holds the number of valid input pixels and ``n_filled`` the number of non-zero outputs.
        """
        src = self._check(depth)
        inv, tmp, tmp2 = self._inv, self._tmp, self._tmp2
        self.n_input = int(_k._invert_depth(src, self.min_depth_m, self.max_depth_m, self._offset, inv))
        cv2.dilate(inv, self._dilate_kernel, dst=tmp)
        cv2.morphologyEx(tmp, cv2.MORPH_CLOSE, self._close_kernel, dst=inv)
        cv2.dilate(inv, self._small_kernel, dst=tmp)
        _k._fill_empty(inv, tmp, _EPS)
        if self.extend_to_top:
            _k._extend_to_top(inv, _EPS)
        if self._large_kernel is not None:
            cv2.dilate(inv, self._large_kernel, dst=tmp)
            _k._fill_empty(inv, tmp, _EPS)
        if self.median_blur:
            cv2.medianBlur(inv, 5, dst=tmp2)
            _k._take_where_valid(inv, tmp2, _EPS)
        if self.gaussian_blur:
            _k._valid_mask(inv, _EPS, tmp)
            cv2.GaussianBlur(tmp, (5, 5), 0, dst=self._weight)
            cv2.GaussianBlur(inv, (5, 5), 0, dst=tmp2)
            _k._take_normalized(inv, tmp2, self._weight, _EPS)
        self.n_filled = int(_k._reinvert_depth(inv, self._offset, _EPS, self.max_depth_m, self._out))
        if copy:
            return self._out.copy()
        view = self._out.view()
        view.flags.writeable = False
        return view


def densify_depth(depth: npt.NDArray[np.floating[Any]], **kwargs: Any) -> F32:
    """One-shot :meth:`DepthCompleter.complete` (builds a completer for the image size); owned result."""
    if not isinstance(depth, np.ndarray) or depth.ndim not in (2, 3):
        raise DepthImageError(f"depth must be an (H, W) numpy array, got {getattr(depth, 'shape', type(depth))}")
    completer = DepthCompleter(int(depth.shape[0]), int(depth.shape[1]), **kwargs)
    return completer.complete(depth, copy=True)
