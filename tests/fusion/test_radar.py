"""Radar geometry (edgefuse.fusion.radar): kernels vs slow references, RADIATE ground truth, LiDAR check."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial import cKDTree

from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion.radar import (
    NAVTECH_RANGE_RES_M,
    RADAR_POINT_DTYPE,
    PolarToCartesian,
    RadarInputError,
    RadarPointExtractor,
    cartesian_pixels,
    polar_to_cartesian,
    polar_to_points,
    radiate_center_px,
)
from edgefuse.msgs.types import ImageData
from edgefuse.rig import from_radiate
from edgefuse.stages.radar import RadarPolarPoints

DATA = Path(__file__).resolve().parents[1] / "data" / "radiate_tiny_foggy"
SEQ = DATA / "data" / "radiate" / "tiny_foggy"
# LiDAR frame 40 (t = 1574859773.903) and the nearest radar scan, frame 10 (t = 1574859773.933).
RADAR_FRAME = "000010"
LIDAR_FRAME = "000040"


# -- slow references (python loops, float64, same formulas as documented) -------------------------------
def ref_polar_to_cartesian(  # noqa: PLR0917 (mirrors the kernel's flat signature)
    polar: npt.NDArray[Any],
    h: int,
    w: int,
    range_res_m: float,
    out_res_m: float,
    cx: float,
    cy: float,
    az_off: float,
    out_dtype: Any,
    *,
    f32_weights: bool = False,
) -> npt.NDArray[Any]:
    n_r, n_a = polar.shape
    out = np.zeros((h, w), dtype=out_dtype)
    scale = out_res_m / range_res_m
    p = polar.astype(np.float64)
    for v in range(h):
        for u in range(w):
            xb = (u - cx) * scale
            yb = (cy - v) * scale
            rho = math.sqrt(xb * xb + yb * yb)
            if rho > n_r - 1:
                continue
            th = math.atan2(xb, yb)  # clockwise from +y
            if th < 0:
                th += 2 * math.pi
            a = th * (n_a / (2 * math.pi)) - az_off
            wa = a - math.floor(a)
            j0 = math.floor(a) % n_a
            j1 = (j0 + 1) % n_a
            i0 = int(rho)
            wr = rho - i0
            if f32_weights:
                wa, wr = float(np.float32(wa)), float(np.float32(wr))
            i1 = min(i0 + 1, n_r - 1)
            val = (1 - wr) * ((1 - wa) * p[i0, j0] + wa * p[i0, j1]) + wr * (
                (1 - wa) * p[i1, j0] + wa * p[i1, j1]
            )
            out[v, u] = math.floor(val + 0.5) if out_dtype == np.uint8 else val
    return out


def ref_polar_to_points(  # noqa: PLR0917
    polar: npt.NDArray[Any],
    range_res_m: float,
    threshold: float,
    min_range_m: float,
    max_peaks: int,
    az_off: float = 0.5,
) -> list[tuple[float, float, float, float]]:
    n_r, n_a = polar.shape
    i_min = math.ceil(min_range_m / range_res_m - 1e-9)
    rows = []
    for j in range(n_a):
        col = [float(x) for x in polar[:, j]]
        peaks = [
            i
            for i in range(max(i_min, 0), n_r)
            if col[i] >= threshold
            and (i == 0 or col[i] > col[i - 1])
            and (i == n_r - 1 or col[i] >= col[i + 1])
        ]
        strongest = sorted(peaks, key=lambda i: (-col[i], i))[:max_peaks]
        th = (j + az_off) * (2 * math.pi / n_a)
        for i in sorted(strongest):
            r = i * range_res_m
            rows.append((r * math.sin(th), r * math.cos(th), 0.0, col[i]))
    return rows


def _as_rows(pts: npt.NDArray[np.void]) -> npt.NDArray[np.float32]:
    return np.stack([pts[f] for f in ("x", "y", "z", "intensity")], axis=1)


def _polar() -> npt.NDArray[Any]:
    img = cv2.imread(str(SEQ / "Navtech_Polar" / f"{RADAR_FRAME}.png"), cv2.IMREAD_UNCHANGED)
    assert img is not None
    return img


# -- polar → Cartesian -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_cartesian_matches_slow_reference(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    polar = rng.integers(0, 256, size=(23, 17)).astype(dtype)
    # 48x40 px at 0.3 m/px over a 23-bin (0.25 m) scan: covers the centre, the azimuth wrap and the edge.
    got = polar_to_cartesian(
        polar, range_res_m=0.25, out_size_px=(48, 40), out_res_m=0.3, center_px=(19.3, 24.0)
    )
    want = ref_polar_to_cartesian(polar, 48, 40, 0.25, 0.3, 19.3, 24.0, 0.5, dtype)
    assert got.dtype == dtype
    assert np.array_equal(got, want)
    assert (got == 0).any()
    assert (got > 0).sum() > 1000


def test_cartesian_lut_variant_matches_reference_and_direct() -> None:
    rng = np.random.default_rng(2)
    polar = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    conv = PolarToCartesian(30, 40, range_res_m=0.2, out_size_px=(50, 60), out_res_m=0.21)
    conv.warmup()
    got = conv.convert(polar)
    want = ref_polar_to_cartesian(polar, 50, 60, 0.2, 0.21, 29.0, 25.0, 0.5, np.uint8, f32_weights=True)
    assert np.array_equal(got, want)
    direct = polar_to_cartesian(polar, range_res_m=0.2, out_size_px=(50, 60), out_res_m=0.21)
    assert np.abs(got.astype(int) - direct).max() <= 1
    # Azimuth rows instead of columns: same image from the transposed scan.
    conv_t = PolarToCartesian(30, 40, range_res_m=0.2, out_size_px=(50, 60), out_res_m=0.21, azimuth_axis=0)
    assert np.array_equal(conv_t.convert(np.ascontiguousarray(polar.T)), want)


def test_cartesian_preallocated_output_is_written_in_place() -> None:
    rng = np.random.default_rng(3)
    polar = rng.random((20, 36), dtype=np.float32)
    out = np.full((16, 16), -1.0, dtype=np.float32)
    res = polar_to_cartesian(polar, range_res_m=1.0, out_res_m=1.0, center_px=(8.0, 8.0), out=out)
    assert res is out
    assert np.isclose(out[8, 8], polar[0].mean(), atol=1.0)  # the radar pixel is bin 0 (any azimuth)
    assert out.min() >= 0.0


def test_cartesian_geometry_on_synthetic_target() -> None:
    """A bright cell at bin 40, column 100 of 400 (90.45° clockwise from forward) lands right of the radar."""
    polar = np.zeros((100, 400), dtype=np.uint8)
    polar[40, 100] = 255
    img = polar_to_cartesian(polar, range_res_m=0.5, out_size_px=200, out_res_m=0.5)
    v, u = np.unravel_index(int(np.argmax(img)), img.shape)
    cx, cy = radiate_center_px(200)
    th = math.radians(100.5 * 0.9)
    assert abs(u - (cx + 40 * math.sin(th))) <= 1
    assert abs(v - (cy - 40 * math.cos(th))) <= 1
    pts = polar_to_points(polar, range_res_m=0.5, threshold=100)
    assert pts.shape == (1,)
    assert np.isclose(pts["x"][0], 20 * math.sin(th), atol=1e-5)
    assert np.isclose(pts["y"][0], 20 * math.cos(th), atol=1e-5)
    uv = cartesian_pixels(np.array([[pts["x"][0], pts["y"][0]]]), out_res_m=0.5, out_size_px=200)
    assert np.allclose(uv[0], (u, v), atol=1.0)


def test_cartesian_matches_radiate_sdk_image() -> None:
    """Against RADIATE's own Navtech_Cartesian PNG of the same scan (their converter, not ours)."""
    polar = _polar()
    assert polar.shape == (576, 400)  # rows = 576 range bins, columns = 400 azimuths
    truth = cv2.imread(str(SEQ / "Navtech_Cartesian" / f"{RADAR_FRAME}.png"), cv2.IMREAD_UNCHANGED)
    assert truth is not None
    mine = polar_to_cartesian(polar, range_res_m=NAVTECH_RANGE_RES_M, out_size_px=1152)
    a, b = mine.astype(np.float64).ravel(), truth.astype(np.float64).ravel()
    corr = float(np.corrcoef(a, b)[0, 1])
    mae = float(np.abs(a - b).mean())
    assert corr > 0.97, corr  # measured: 0.9745
    assert mae < 3.0, mae  # measured: 2.68 grey levels
    # The conventions are what makes it match: wrong direction / origin / centre are far worse.
    for kwargs in (
        {"azimuth_offset_bins": 0.5 + 100},
        {"azimuth_offset_bins": -0.5},
        {"center_px": (576.0, 576.0)},
    ):
        alt = polar_to_cartesian(polar, **kwargs).astype(np.float64).ravel()
        assert float(np.corrcoef(alt, b)[0, 1]) < corr - 0.005
    mirrored = mine[:, ::-1].astype(np.float64).ravel()
    assert float(np.corrcoef(mirrored, b)[0, 1]) < 0.6


# -- polar → points ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_points_match_slow_reference(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    polar = rng.integers(0, 40, size=(60, 24)).astype(dtype)
    polar[rng.integers(0, 60, 80), rng.integers(0, 24, 80)] = 200  # peaks, some adjacent (plateaus)
    polar[5:8, 3] = 150  # an explicit plateau
    got = polar_to_points(polar, range_res_m=0.3, threshold=30.0, min_range_m=0.9, max_peaks_per_azimuth=3)
    want = np.array(ref_polar_to_points(polar, 0.3, 30.0, 0.9, 3), dtype=np.float64)
    assert got.dtype == RADAR_POINT_DTYPE
    assert got.shape[0] == want.shape[0] > 24
    assert np.array_equal(_as_rows(got), want.astype(np.float32))


def test_points_real_scan_matches_reference_and_extractor_reuses_buffer() -> None:
    polar = _polar()
    ext = RadarPointExtractor(576, 400, threshold=80, min_range_m=5.0, max_peaks_per_azimuth=4)
    ext.warmup()
    got = ext.extract(polar)
    want = np.array(ref_polar_to_points(polar, NAVTECH_RANGE_RES_M, 80, 5.0, 4), dtype=np.float32)
    assert np.array_equal(_as_rows(got), want)
    assert got.base is not None
    assert ext.extract(polar).shape == got.shape


def test_radar_points_lie_on_lidar() -> None:
    """LiDAR 40 mapped into the radar frame by the rig: radar peaks at 5-20 m sit on it, others do not."""
    rig = from_radiate(DATA / "config" / "default-calib.yaml")
    lidar = np.loadtxt(SEQ / "velo_lidar" / f"{LIDAR_FRAME}.csv", delimiter=",")
    xyz = rig.transform("radar", "lidar").apply(lidar[:, :3])
    above_ground = (xyz[:, 2] > -1.4) & (xyz[:, 2] < 3.0)  # the fog limits the LiDAR to ~25 m
    tree = cKDTree(xyz[above_ground, :2])
    pts = polar_to_points(_polar(), threshold=80, min_range_m=5.0, max_peaks_per_azimuth=4)
    xy = np.stack([pts["x"], pts["y"]], axis=1).astype(np.float64)
    xy = xy[np.hypot(xy[:, 0], xy[:, 1]) < 20.0]
    assert xy.shape[0] > 150

    def median_nn(q: npt.NDArray[np.float64]) -> float:
        return float(np.median(tree.query(q)[0]))

    def rotated(deg: float) -> npt.NDArray[np.float64]:
        a = math.radians(deg)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        return np.asarray(xy @ rot.T, dtype=np.float64)

    good = median_nn(xy)
    assert good < 0.5, good  # measured 0.374 m (radar scan 0.03 s after the LiDAR, car at ~10 m/s)
    for wrong in (rotated(10), rotated(-10), xy * [-1.0, 1.0], xy * [1.0, -1.0]):
        assert median_nn(wrong) > 2.5 * good


# -- validation --------------------------------------------------------------------------------------
def test_bad_inputs_raise_structured_errors() -> None:
    with pytest.raises(RadarInputError) as ei:
        polar_to_cartesian(np.zeros((4, 4, 3), dtype=np.uint8))
    assert ei.value.field == "polar"
    assert isinstance(ei.value, MessageError)
    with pytest.raises(RadarInputError, match="dtype"):
        polar_to_points(np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(RadarInputError) as ei:
        polar_to_cartesian(np.zeros((4, 4), dtype=np.uint8), range_res_m=0.0)
    assert ei.value.field == "range_res_m"
    with pytest.raises(RadarInputError) as ei:
        polar_to_cartesian(np.zeros((4, 4), dtype=np.uint8), out=np.zeros((4, 4), dtype=np.float64))
    assert ei.value.field == "out"
    with pytest.raises(ValueError, match="max_peaks_per_azimuth"):
        RadarPointExtractor(4, 4, max_peaks_per_azimuth=0)
    with pytest.raises(RadarInputError, match=r"\(576, 400\)"):
        RadarPointExtractor(576, 400).extract(np.zeros((400, 576), dtype=np.uint8))


# -- pipeline stage ----------------------------------------------------------------------------------
def test_stage_on_real_scan() -> None:
    stage = RadarPolarPoints("radar", {"threshold": 80.0, "min_range_m": 5.0, "max_peaks_per_azimuth": 4})
    stage.start()
    polar = _polar()
    out = stage.process({"scan": ImageData(7, "radar", "mono8", polar)}, 7)
    cloud, cart = out["points"], out["cartesian"]
    assert cloud.frame_id == "radar"
    assert cloud.stamp_ns == 7
    assert cloud.width == cloud.points.shape[0] > 500
    assert np.array_equal(
        _as_rows(cloud.points),
        _as_rows(polar_to_points(polar, threshold=80, min_range_m=5.0, max_peaks_per_azimuth=4)),
    )
    assert cart.encoding == "mono8"
    assert cart.data.shape == (1152, 1152)
    assert np.abs(cart.data.astype(int) - polar_to_cartesian(polar)).max() <= 1
    with pytest.raises(MessageError):
        stage.process({"scan": ImageData(8, "radar", "bgr8", np.zeros((576, 400, 3), np.uint8))}, 8)
    with pytest.raises(MessageError):
        stage.process({"scan": ImageData(9, "radar", "mono8", np.zeros((400, 576), np.uint8))}, 9)
    with pytest.raises(PipelineError):
        RadarPolarPoints("bad", {"range_res_m": -1.0})
    assert RadarPolarPoints.check_params({"threshold": "high"})
