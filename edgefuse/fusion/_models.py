"""Camera model ids understood by the projection kernels.

The ids are part of the contract with :mod:`edgefuse.rig.camera` (``camera.kernel_params()`` returns one
of them); they are defined here too so the kernels do not depend on the rig module being importable.
A test checks that both definitions agree.

========== == ============================================================================
name       id distortion vector ``D`` (length 8, zero-padded)
========== == ============================================================================
PINHOLE     0 none (all of ``D`` must be zero)
PLUMB_BOB   1 OpenCV ``k1, k2, p1, p2, k3`` (``D[5:]`` must be zero)
RATIONAL    2 OpenCV ``k1, k2, p1, p2, k3, k4, k5, k6``
EQUIDISTANT 3 OpenCV fisheye ``k1, k2, k3, k4`` (``D[4:]`` must be zero)
========== == ============================================================================
"""

from __future__ import annotations

PINHOLE = 0
PLUMB_BOB = 1
RATIONAL = 2
EQUIDISTANT = 3

#: Number of leading entries of ``D`` each model uses; the rest must be zero.
N_COEFFS: dict[int, int] = {PINHOLE: 0, PLUMB_BOB: 5, RATIONAL: 8, EQUIDISTANT: 4}
MODEL_NAMES: dict[int, str] = {
    PINHOLE: "pinhole",
    PLUMB_BOB: "plumb_bob",
    RATIONAL: "rational",
    EQUIDISTANT: "equidistant",
}
