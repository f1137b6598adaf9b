"""Benchmark scanning-radar geometry (``edgefuse.fusion.radar``) against OpenCV / numpy baselines.

Public API only.  Input: RADIATE tiny_foggy Navtech polar scan 000010 (576 x 400 uint8, from
``tests/data/radiate_tiny_foggy``).  Timed (JIT warm, same process, one thread each):

- ``polar_to_cartesian`` (maps computed per call) vs numpy maps + ``cv2.remap`` per call;
- ``PolarToCartesian.convert`` (table built once) vs ``cv2.remap`` with maps built once;
- ``polar_to_points`` and ``RadarPointExtractor.extract`` vs a vectorised numpy detector with the
  same semantics except the per-azimuth cap (numpy keeps all peaks; counts reported).

Also reports JIT/first-call time and the agreement with RADIATE's own Cartesian image, and writes the
radar/LiDAR overlay figure ``bench/results/radar_lidar_overlay.png`` (LiDAR 000040 in green, radar
peaks in red, on our Cartesian image, central 104 m x 104 m, 600 x 600 px).

    python bench/bench_radar.py [--reps 50]

Prints JSON and writes ``bench/results/radar.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np
import numpy.typing as npt

import edgefuse
from edgefuse.fusion.radar import (
    NAVTECH_RANGE_RES_M,
    PolarToCartesian,
    RadarPointExtractor,
    cartesian_pixels,
    polar_to_cartesian,
    polar_to_points,
    radiate_center_px,
)
from edgefuse.rig import from_radiate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "radiate_tiny_foggy"
SEQ = DATA / "data" / "radiate" / "tiny_foggy"
RESULTS = ROOT / "bench" / "results"
SIZE = 1152
THRESHOLD, MIN_RANGE_M, MAX_PEAKS = 80.0, 5.0, 4


def _times(fn: Callable[[], Any], reps: int) -> dict[str, float]:
    fn()
    t = np.empty(reps)
    for k in range(reps):
        t0 = time.perf_counter()
        fn()
        t[k] = time.perf_counter() - t0
    return {
        "median_ms": float(np.median(t) * 1e3),
        "p99_ms": float(np.percentile(t, 99) * 1e3),
        "max_ms": float(t.max() * 1e3),
    }


def _cv_maps(n_a: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """cv2.remap maps with the same geometry (column axis padded by one for the azimuth wrap)."""
    cx, cy = radiate_center_px(SIZE)
    u = np.arange(SIZE, dtype=np.float64)
    x = u[None, :] - cx
    y = cy - u[:, None]
    rho = np.hypot(x, y)
    th = np.mod(np.arctan2(x, y), 2 * np.pi)
    a = th * (n_a / (2 * np.pi)) - 0.5
    a = np.where(a < 0, a + n_a, a)
    return a.astype(np.float32), rho.astype(np.float32)


def _cv_cartesian(polar: npt.NDArray[Any], maps: tuple[Any, Any] | None = None) -> npt.NDArray[Any]:
    mx, my = _cv_maps(polar.shape[1]) if maps is None else maps
    padded = np.concatenate([polar, polar[:, :1]], axis=1)
    return cv2.remap(padded, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _np_points(polar: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    p = polar.astype(np.int16)
    n_a = p.shape[1]
    prev = np.vstack([np.full((1, n_a), -1, np.int16), p[:-1]])
    nxt = np.vstack([p[1:], np.full((1, n_a), -1, np.int16)])
    i_min = int(np.ceil(MIN_RANGE_M / NAVTECH_RANGE_RES_M - 1e-9))
    mask = (p >= THRESHOLD) & (p > prev) & (p >= nxt)
    mask[:i_min] = False
    i, j = np.nonzero(mask.T)[::-1]
    th = (j + 0.5) * (2 * np.pi / n_a)
    r = i * NAVTECH_RANGE_RES_M
    return np.stack([r * np.sin(th), r * np.cos(th), np.zeros_like(r), p[i, j]], axis=1).astype(np.float32)


def _overlay(polar: npt.NDArray[Any], path: Path) -> dict[str, Any]:
    rig = from_radiate(DATA / "config" / "default-calib.yaml")
    lidar = np.loadtxt(SEQ / "velo_lidar" / "000040.csv", delimiter=",")
    xyz = rig.transform("radar", "lidar").apply(lidar[:, :3])
    dim = (polar_to_cartesian(polar) // 16) * 8  # dimmed, quantised background keeps the PNG small
    img = cv2.cvtColor(dim, cv2.COLOR_GRAY2BGR)
    for u, v in np.floor(cartesian_pixels(xyz) + 0.5).astype(int):
        if 0 <= u < SIZE and 0 <= v < SIZE:
            img[v, u] = (0, 255, 0)
    pts = polar_to_points(
        polar, threshold=THRESHOLD, min_range_m=MIN_RANGE_M, max_peaks_per_azimuth=MAX_PEAKS
    )
    for u, v in np.floor(cartesian_pixels(np.stack([pts["x"], pts["y"]], 1)) + 0.5).astype(int):
        cv2.circle(img, (int(u), int(v)), 2, (0, 0, 255), -1)
    cx, cy = (int(c) for c in radiate_center_px(SIZE))
    crop = img[cy - 300 : cy + 300, cx - 300 : cx + 300]
    cv2.putText(
        crop,
        "radar 000010 peaks (red), LiDAR 000040 via rig (green)",
        (8, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (255, 255, 255),
        1,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return {
        "figure": str(path.relative_to(ROOT)),
        "lidar_points": int(xyz.shape[0]),
        "radar_points": int(pts.shape[0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    numba.set_num_threads(1)
    cv2.setNumThreads(1)
    polar = cv2.imread(str(SEQ / "Navtech_Polar" / "000010.png"), cv2.IMREAD_UNCHANGED)
    truth = cv2.imread(str(SEQ / "Navtech_Cartesian" / "000010.png"), cv2.IMREAD_UNCHANGED)
    if polar is None or truth is None:
        sys.exit("test data missing: tests/data/radiate_tiny_foggy")

    t0 = time.perf_counter()
    first = polar_to_cartesian(polar)
    jit_cart_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    conv = PolarToCartesian(*polar.shape)
    conv.warmup()
    lut_build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ext = RadarPointExtractor(
        *polar.shape, threshold=THRESHOLD, min_range_m=MIN_RANGE_M, max_peaks_per_azimuth=MAX_PEAKS
    )
    ext.warmup()
    jit_points_s = time.perf_counter() - t0
    maps = _cv_maps(polar.shape[1])

    a, b = first.astype(np.float64).ravel(), truth.astype(np.float64).ravel()
    cv_img = _cv_cartesian(polar, maps)
    res: dict[str, Any] = {
        "input": "RADIATE tiny_foggy Navtech_Polar/000010.png (576 range x 400 azimuth, uint8) -> 1152x1152",
        "vs_radiate_cartesian": {
            "corr": float(np.corrcoef(a, b)[0, 1]),
            "mean_abs_diff": float(np.abs(a - b).mean()),
        },
        "vs_cv2_remap_same_geometry": {
            "max_abs_diff": int(np.abs(first.astype(int) - cv_img).max()),
            "mean_abs_diff": float(np.abs(first.astype(float) - cv_img).mean()),
        },
        "jit_s": {
            "polar_to_cartesian_first_call": jit_cart_s,
            "PolarToCartesian_build_and_warmup": lut_build_s,
            "RadarPointExtractor_warmup": jit_points_s,
        },
        "cartesian_per_call_maps": {
            "edgefuse_polar_to_cartesian": _times(lambda: polar_to_cartesian(polar), args.reps),
            "numpy_maps_plus_cv2_remap": _times(lambda: _cv_cartesian(polar), args.reps),
        },
        "cartesian_cached_maps": {
            "edgefuse_PolarToCartesian_convert": _times(lambda: conv.convert(polar), args.reps),
            "cv2_remap_cached_maps": _times(lambda: _cv_cartesian(polar, maps), args.reps),
        },
        "points": {
            "edgefuse_polar_to_points": _times(
                lambda: polar_to_points(
                    polar, threshold=THRESHOLD, min_range_m=MIN_RANGE_M, max_peaks_per_azimuth=MAX_PEAKS
                ),
                args.reps,
            ),
            "edgefuse_RadarPointExtractor_extract": _times(lambda: ext.extract(polar), args.reps),
            "numpy_vectorised_no_cap": _times(lambda: _np_points(polar), args.reps),
            "n_points_edgefuse": int(ext.extract(polar).shape[0]),
            "n_points_numpy_no_cap": int(_np_points(polar).shape[0]),
        },
    }
    for key, (mine, base) in {
        "cartesian_per_call_maps": ("edgefuse_polar_to_cartesian", "numpy_maps_plus_cv2_remap"),
        "cartesian_cached_maps": ("edgefuse_PolarToCartesian_convert", "cv2_remap_cached_maps"),
        "points": ("edgefuse_RadarPointExtractor_extract", "numpy_vectorised_no_cap"),
    }.items():
        res[key]["speedup_vs_baseline"] = res[key][base]["median_ms"] / res[key][mine]["median_ms"]
    res["overlay"] = _overlay(polar, RESULTS / "radar_lidar_overlay.png")
    res["env"] = {
        "edgefuse": getattr(edgefuse, "__version__", "?"),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": 1,
        "reps": args.reps,
    }
    text = json.dumps(res, indent=2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "radar.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
