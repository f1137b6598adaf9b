"""Weighted boxes fusion: edgefuse vs ensemble_boxes, 500 images x 3 models x 100 boxes, same process.

Checks that every image's output is identical (boxes, scores, labels bit-for-bit), then reports per-image
median / p99 / max for both and the ratio of total times.  JIT compile time is reported apart.
Usage: python bench/bench_wbf.py [--images 500] [--boxes 100] [--models 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np


def make_inputs(rng: np.random.Generator, n_img: int, n_models: int, n_boxes: int, n_labels: int = 10) -> list:
    images = []
    for _ in range(n_img):
        base = rng.random((n_boxes, 2)) * 0.85
        wh = rng.random((n_boxes, 2)) * 0.15 + 0.01
        labels = rng.integers(0, n_labels, n_boxes)
        bl, sl, ll = [], [], []
        for _ in range(n_models):
            c = base + rng.normal(0, 0.005, (n_boxes, 2))
            bl.append(np.hstack([c, c + wh]))
            sl.append(rng.random(n_boxes))
            ll.append(labels.copy())
        images.append((bl, sl, ll))
    return images


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from ensemble_boxes import weighted_boxes_fusion as eb_wbf

    from edgefuse.objects import weighted_boxes_fusion

    images = make_inputs(np.random.default_rng(0), args.images, args.models, args.boxes)
    t0 = time.perf_counter()
    weighted_boxes_fusion(*images[0])
    jit_s = time.perf_counter() - t0

    def run(fn, quiet: bool) -> tuple[list, np.ndarray]:  # type: ignore[no-untyped-def]
        outs, times = [], np.empty(len(images))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, (bl, sl, ll) in enumerate(images):
                t = time.perf_counter()
                outs.append(fn(bl, sl, ll))
                times[i] = time.perf_counter() - t
        return outs, times

    best_ref = best_ours = None
    identical = True
    for _ in range(args.repeats):  # alternate, keep each side's fastest total
        ref, t_ref = run(eb_wbf, True)
        ours, t_ours = run(weighted_boxes_fusion, True)
        if best_ref is None or t_ref.sum() < best_ref.sum():
            best_ref = t_ref
        if best_ours is None or t_ours.sum() < best_ours.sum():
            best_ours = t_ours
        for (rb, rs, rl), r in zip(ref, ours, strict=True):
            identical &= bool(np.array_equal(rb, r.boxes) and np.array_equal(rs, r.scores)
                              and np.array_equal(rl, r.labels))
    assert best_ref is not None
    assert best_ours is not None

    def stats(t: np.ndarray) -> dict[str, float]:
        return {"total_s": float(t.sum()), "median_ms": float(np.median(t) * 1e3),
                "p99_ms": float(np.percentile(t, 99) * 1e3), "max_ms": float(t.max() * 1e3)}

    import ensemble_boxes
    import numba

    result = {
        "bench": "wbf", "images": args.images, "models": args.models, "boxes_per_model": args.boxes,
        "repeats": args.repeats, "identical_output": identical,
        "ensemble_boxes": stats(best_ref), "edgefuse": stats(best_ours),
        "speedup_total": float(best_ref.sum() / best_ours.sum()),
        "jit_first_call_s": jit_s,
        "env": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "numpy": np.__version__, "numba": numba.__version__,
                "ensemble_boxes": getattr(ensemble_boxes, "__version__", "?"), "python": platform.python_version()},
    }
    out = Path(__file__).parent / "results" / "wbf.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
