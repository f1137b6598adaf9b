"""After Projector.warmup() the first real message compiles nothing, including read-only inputs
(arrays viewed zero-copy from a message buffer are read-only and get their own Numba specialisation)."""

from __future__ import annotations

import numpy as np

from edgefuse.fusion import Projector, _kernels


def _all_signatures() -> int:
    return sum(len(getattr(obj, "signatures", ())) for obj in vars(_kernels).values())


def test_no_compilation_after_warmup_for_readonly_inputs() -> None:
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    proj = Projector(1, K, np.array([0.01, 0, 0, 0, 0, 0, 0, 0.0]), 64, 48, np.eye(4))
    proj.warmup()
    before = _all_signatures()
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    image.setflags(write=False)
    for dtype in (np.float32, np.float64):
        pts = rng.uniform(-1, 1, (500, 3)).astype(dtype)
        pts[:, 2] = pts[:, 2] + 5
        pts.setflags(write=False)
        res = proj.project(pts)
        assert res.n_valid > 0
        colors = proj.colorize(image, res)
        assert colors.shape == (500, 3)
    assert _all_signatures() == before
