"""Projection keeps only points the camera can see: the valid-radius rule against independent references.

Strong radial distortion folds back (KITTI's plumb_bob: ``r_d = r (1 - 0.37 r^2 + 0.20 r^4 - 0.068 r^6)``
peaks at ``r = 1.21``), so OpenCV's ``projectPoints`` puts points far outside the field of view into
the image ("ghost" points).  The references here are independent of :mod:`edgefuse.rig.camera`:

- the monotonic region is bracketed by sampling the radial map densely (the first grid step where it
  stops increasing) instead of from polynomial roots;
- a kept point must be the point its pixel undistorts to (``cv2.undistortPoints`` round trip), and a
  dropped point that OpenCV puts in the image must not be;
- pixels and validity come from ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``.

Points in the bracket's width around the fold (where the two radii disagree by construction) are
left out of the clouds; there are few or none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edgefuse.fusion import EQUIDISTANT, PINHOLE, PLUMB_BOB, RATIONAL, Projector
from edgefuse.fusion.painting import PointPainter
from edgefuse.fusion.projection import MultiCameraProjector

from .projection_reference import load_kitti, opencv_project, reference_projection

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
BOOL = npt.NDArray[np.bool_]

#: KITTI raw 2011_09_26 ``calib_cam_to_cam.txt``, ``D_02`` (k1, k2, p1, p2, k3), the distortion of the
#: camera whose rectified images KITTI object frames are; ../shared/data/kitti_raw_2011_09_26_calib_only.
KITTI_D02 = np.array([-3.691481e-01, 1.968681e-01, 1.353473e-03, 5.677587e-04, -6.770705e-02, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class Camera:
    model: int
    K: F64
    D: F64  # (8,)
    width: int
    height: int


def _k(fx: float, fy: float, cx: float, cy: float, skew: float = 0.0) -> F64:
    return np.array([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _d(*coeffs: float) -> F64:
    d = np.zeros(8)
    d[: len(coeffs)] = coeffs
    return d


#: KITTI object frame 000000's camera (P2), checked against the file in the test.
KITTI_K = _k(707.0493, 707.0493, 604.0814, 180.5066)
CAMERAS: dict[str, Camera] = {
    "pinhole": Camera(PINHOLE, _k(500.0, 510.0, 319.5, 240.2), _d(), 640, 480),
    "kitti_plumb_bob": Camera(PLUMB_BOB, KITTI_K, KITTI_D02, 1224, 370),
    # r (1 - 0.4 r^2): folds at r = 0.913, r_d = 0.609 there; the image corners are at r_d = 0.84
    "strong_plumb_bob": Camera(PLUMB_BOB, _k(480.0, 478.5, 322.1, 236.9), _d(-0.4), 640, 480),
    # the bundled demo's camera (RADIATE zed_left): its radial map never folds
    "demo_plumb_bob": Camera(PLUMB_BOB, _k(337.9191448899105, 338.6957068549526, 341.7366010946575,
                                          200.7359735313929), _d(-0.183879883467351, 0.0308609205858947), 672, 376),
    # tangential terms only: the radial map never folds, but 0.005 r^2 wins over r far off axis
    "tangential_plumb_bob": Camera(PLUMB_BOB, _k(480.0, 478.5, 322.1, 236.9), _d(0.0, 0.0, 0.004, -0.003), 640, 480),
    "rational": Camera(RATIONAL, _k(610.0, 605.0, 318.0, 242.0), _d(0.45, -0.12, 0.001, 0.002, 0.01, 0.8, -0.05, 0.02),
                       640, 480),
    "folding_rational": Camera(RATIONAL, _k(400.0, 400.0, 320.0, 240.0), _d(-0.3, 0.0, 0.0, 0.0, 0.0, 0.2), 640, 480),
    "rational_pole": Camera(RATIONAL, _k(300.0, 300.0, 320.0, 240.0), _d(0.0, 0.0, 0.0, 0.0, 0.0, -1.0), 640, 480),
    "equidistant": Camera(EQUIDISTANT, _k(300.0, 301.0, 320.4, 239.7, skew=0.9), _d(0.02, -0.01, 0.003, -0.001),
                          640, 480),
    # theta (1 - 0.3 theta^2): folds at 60 degrees, theta_d = 0.70 there; the corners are at 1.33
    "folding_equidistant": Camera(EQUIDISTANT, _k(300.0, 300.0, 320.0, 240.0), _d(-0.3), 640, 480),
}


def radial_map(camera: Camera, r: F64) -> F64:
    """Distorted normalised radius of the radial part at undistorted radius ``r`` (tangential terms left
    out; ``-inf`` at and beyond a pole of the rational denominator)."""
    k1, k2, p1, p2, k3, k4, k5, k6 = camera.D
    if camera.model == EQUIDISTANT:  # D = (k1, k2, k3, k4) in the slots k1, k2, p1, p2
        theta = np.arctan(r)
        t2 = theta * theta
        return np.asarray(theta * (1 + k1 * t2 + k2 * t2**2 + p1 * t2**3 + p2 * t2**4))
    if camera.model == PINHOLE:
        return r
    s = r * r
    den = 1 + k4 * s + k5 * s**2 + k6 * s**3 if camera.model == RATIONAL else np.ones_like(s)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, r * (1 + k1 * s + k2 * s**2 + k3 * s**3) / den, -np.inf))


def _first_drop(camera: Camera, grid: F64) -> int | None:
    """Index of the first grid step over which the radial map does not increase."""
    with np.errstate(invalid="ignore"):  # -inf - -inf beyond a pole: NaN, not an increase
        bad = np.flatnonzero(~(np.diff(radial_map(camera, grid)) > 0))
    return int(bad[0]) if bad.size else None


@functools.cache
def fold_bracket_of(name: str) -> tuple[float, float]:
    """:func:`fold_bracket` of ``CAMERAS[name]``."""
    return fold_bracket(CAMERAS[name])


def fold_bracket(camera: Camera) -> tuple[float, float]:
    """``(lo, hi)``: the radial map increases up to ``lo`` and has stopped increasing (or hit a pole)
    before ``hi``.  Sampled every 1e-3 up to r = 20 (87 degrees; for equidistant, in the angle, up to 90
    degrees), then every 1e-7 over the two steps around the first drop; ``(inf, inf)`` when it never
    drops."""
    if camera.model == EQUIDISTANT:
        coarse = np.linspace(0.0, np.pi / 2 - 1e-9, 1571)
        j = _first_drop(camera, np.tan(coarse))
        if j is None:
            return np.inf, np.inf
        fine = np.tan(np.linspace(coarse[max(j - 1, 0)], coarse[j + 1], 20_001))
    else:
        coarse = np.linspace(0.0, 20.0, 20_001)
        j = _first_drop(camera, coarse)
        if j is None:
            return np.inf, np.inf
        fine = np.linspace(coarse[max(j - 1, 0)], coarse[j + 1], 20_001)
    k = _first_drop(camera, fine)
    assert k is not None
    return float(fine[max(k - 1, 0)]), float(fine[k + 1])


def _camera_frame(xyz: npt.NDArray[Any], T: F64) -> F64:
    return np.asarray(np.asarray(xyz, np.float64) @ T[:3, :3].T + T[:3, 3])


def _radius(cam: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.hypot(cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]))


def undistort(camera: Camera, uv: F32) -> F64:
    """Normalised undistorted ``(x, y)`` of pixels, iterated to convergence (OpenCV)."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 2000, 1e-15)
    pts = np.ascontiguousarray(uv, dtype=np.float64).reshape(-1, 1, 2)
    if camera.model == EQUIDISTANT:
        assert camera.K[0, 1] == 0.0
        out = cv2.fisheye.undistortPoints(pts, camera.K, camera.D[:4].copy(), criteria=criteria)
    else:
        out = cv2.undistortPoints(pts, camera.K, camera.D.copy() if camera.model != PINHOLE else np.zeros(5),
                                  None, None, None, criteria)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def opencv_in_image(camera: Camera, cam: F64) -> tuple[F32, BOOL]:
    """float32 pixels of camera-frame points from OpenCV and whether they lie in the image."""
    with np.errstate(over="ignore", invalid="ignore"):
        uv = opencv_project(cam, camera.model, camera.K, camera.D).astype(np.float32)
    u, v = uv[:, 0].astype(np.float64), uv[:, 1].astype(np.float64)
    inside = (u >= -0.5) & (u < camera.width - 0.5) & (v >= -0.5) & (v < camera.height - 0.5)
    return uv, inside


def wide_cloud(rng: np.random.Generator, n: int, T: F64) -> F32:
    """Points in every direction of the front half-space, in the LiDAR frame of ``T``: half uniform in
    the angle off axis (0-89.5 degrees), half log-uniform in its tangent (1 to 3000, i.e. from 45 to
    89.98 degrees: far off axis, where tangential terms fold back), any azimuth; a tenth behind."""
    tan_off_axis = np.tan(rng.uniform(0.0, np.radians(89.5), n))
    tan_off_axis[n // 2:] = 10.0 ** rng.uniform(0.0, 3.5, n - n // 2)
    azimuth = rng.uniform(-np.pi, np.pi, n)
    z = rng.uniform(0.5, 60.0, n)
    z[: n // 10] *= -1
    r = tan_off_axis * np.abs(z)
    cam = np.stack([r * np.cos(azimuth), r * np.sin(azimuth), z], axis=1)
    lidar = (cam - T[:3, 3]) @ T[:3, :3]
    return np.ascontiguousarray(lidar.astype(np.float32))


def _drop_fold_band(xyz: F32, T: F64, lo: float, hi: float) -> F32:
    """``xyz`` without the points whose radius falls in the reference's bracket ``[lo, hi]``."""
    radius = _radius(_camera_frame(xyz, T))
    keep = ~((radius >= lo * (1 - 1e-9)) & (radius <= hi * (1 + 1e-9)))
    return np.ascontiguousarray(xyz[keep])


def _kitti_scene() -> tuple[F32, F64, int, int]:
    """The issue's case: 120k points uniform in a KITTI-like volume around the car (as
    bench/bench_projection.py's synthetic scene), KITTI object frame 000000's camera and transform."""
    _, _, T, image = load_kitti("000000")
    height, width = image.shape[:2]
    rng = np.random.default_rng(0)
    xyz = rng.uniform([-80.0, -80.0, -3.0], [80.0, 80.0, 3.0], size=(120_000, 3)).astype(np.float32)
    return xyz, T, width, height


# -- the case --------------------------------------------------------------------------------


def test_kitti_distortion_ghost_points_are_dropped() -> None:
    xyz, T, width, height = _kitti_scene()
    camera = CAMERAS["kitti_plumb_bob"]
    K = camera.K
    np.testing.assert_allclose(load_kitti("000000")[1], K, rtol=0.0, atol=1e-9)
    assert (width, height) == (camera.width, camera.height)
    lo, hi = fold_bracket_of("kitti_plumb_bob")
    assert 1.2103 < lo < hi < 1.2105
    xyz = _drop_fold_band(xyz, T, lo, hi)
    cam = _camera_frame(xyz, T)
    radius = _radius(cam)
    in_range = (cam[:, 2] >= 0.1) & (cam[:, 2] <= 200.0)
    uv_cv, inside_cv = opencv_in_image(camera, cam)
    inside_cv &= in_range
    ghosts = inside_cv & (radius > hi)
    assert ghosts.sum() > 5000  # OpenCV puts thousands of points from beyond the fold in the image

    result = Projector(PLUMB_BOB, K, KITTI_D02, width, height, T).project(xyz)

    # No pixel gets its depth from beyond the fold (before the fix: 6,000+ such pixels).
    winners = result.index[result.index >= 0]
    assert int(np.count_nonzero(radius[winners] > hi)) == 0
    # Exactly the points OpenCV puts in the image from inside the monotonic region are kept ...
    np.testing.assert_array_equal(result.valid, inside_cv & (radius < lo))
    np.testing.assert_allclose(result.uv[result.valid], uv_cv[result.valid], rtol=0.0, atol=1e-4)
    # ... with the z-buffer of the reference restricted to that region.
    ref = reference_projection(xyz, PLUMB_BOB, K, KITTI_D02, width, height, T, max_radius=0.5 * (lo + hi))
    np.testing.assert_array_equal(result.valid, ref.valid)
    np.testing.assert_array_equal(result.index, ref.index)
    np.testing.assert_array_equal(result.depth, ref.depth)

    # Inverse check: a kept point is the point its pixel undistorts to (away from the fold, where
    # the float32 pixel pins the direction down to 1e-6) ...
    xy = cam[:, :2] / cam[:, 2:3]
    kept = np.flatnonzero(result.valid & (radius < 0.97 * lo))
    back = undistort(camera, result.uv[kept])
    assert np.max(np.hypot(*(back - xy[kept]).T)) < 2e-6
    # ... and a dropped point OpenCV puts in the image is not.  Where its pixel has a preimage (the
    # undistorted direction projects back onto the pixel), that preimage lies inside the monotonic region
    # and far from the point's own direction, except right at the fold where the two sides meet; the
    # other pixels lie beyond the largest radius the monotonic region reaches.
    ghost = np.flatnonzero(ghosts)
    back = undistort(camera, uv_cv[ghost])
    again = opencv_project(np.c_[back, np.ones(ghost.size)], PLUMB_BOB, K, KITTI_D02)
    has_preimage = np.hypot(*(again - uv_cv[ghost]).T) < 1e-3
    assert 0.5 * ghost.size < np.count_nonzero(has_preimage) < ghost.size
    at_fold = radius[ghost] < 1.01 * hi
    assert np.count_nonzero(at_fold) < 0.05 * ghost.size
    inside = np.hypot(back[:, 0], back[:, 1]) < hi
    off = np.hypot(*(back - xy[ghost]).T)
    assert np.all(~has_preimage | at_fold | (inside & (off > 1e-3)))


# -- every model, random clouds over the whole front half-space ----------------------------------------


def _check_random_cloud(name: str, seed: int, n: int) -> None:
    camera = CAMERAS[name]
    rng = np.random.default_rng(seed)
    R, _ = cv2.Rodrigues(rng.normal(size=3) * 0.3)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.uniform(-1.0, 1.0, 3)
    lo, hi = fold_bracket_of(name)
    xyz = _drop_fold_band(wide_cloud(rng, n, T), T, lo, hi)
    cam = _camera_frame(xyz, T)
    radius = _radius(cam)
    in_range = (cam[:, 2] >= 0.5) & (cam[:, 2] <= 80.0)
    uv_cv, inside_cv = opencv_in_image(camera, cam)
    expected = inside_cv & in_range & (radius < lo)
    tangential = bool(np.any(camera.D[2:4])) and camera.model != EQUIDISTANT
    if tangential:
        # With tangential terms the map can fold back in two dimensions even where the radial map does
        # not: a point truly seen is the one its pixel undistorts to.  (Those folds are far off axis:
        # a legitimate point near the radial fold is off by 1e-3 at most.)
        candidates = np.flatnonzero(expected)
        back = undistort(camera, uv_cv[candidates])
        off = np.hypot(*(back - cam[candidates, :2] / cam[candidates, 2:3]).T)
        expected[candidates[~(off < 0.1)]] = False

    projector = Projector(camera.model, camera.K, camera.D, camera.width, camera.height, T,
                          min_depth_m=0.5, max_depth_m=80.0)
    result = projector.project(xyz)
    assert result.n_valid > 50  # the cloud reaches the image
    np.testing.assert_array_equal(result.valid, expected)
    np.testing.assert_allclose(result.uv[result.valid], uv_cv[result.valid], rtol=0.0, atol=2e-4)
    # The z-buffer follows (ties and occlusion as in the plain reference).
    ref = reference_projection(xyz, camera.model, camera.K, camera.D, camera.width, camera.height, T,
                               min_depth_m=0.5, max_depth_m=80.0, max_radius=0.5 * (lo + hi))
    if not tangential:
        np.testing.assert_array_equal(result.index, ref.index)
        np.testing.assert_array_equal(result.depth, ref.depth)
    # Folding models really produce ghosts, and the rule removes them.
    ghosts = inside_cv & in_range & ~expected
    if name.startswith(("kitti", "strong", "folding", "rational_pole")):  # tangential: see the next test
        assert ghosts.sum() > 0
    assert not np.any(result.valid & ghosts)


@pytest.mark.parametrize("name", list(CAMERAS))
def test_random_cloud_keeps_exactly_the_points_in_view(name: str) -> None:
    _check_random_cloud(name, 1000 + list(CAMERAS).index(name), 6000)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CAMERAS))
def test_random_cloud_keeps_exactly_the_points_in_view_large(name: str) -> None:
    _check_random_cloud(name, 2000 + list(CAMERAS).index(name), 200_000)


def test_tangential_fold_far_off_axis_is_dropped() -> None:
    """Tangential terms alone: the radial map never folds, yet directions 89 degrees off axis land in the
    image (``0.005 r^2`` catches up with ``r`` at r = 66); the field-of-view radius drops them."""
    from edgefuse.rig.camera import fov_radius, monotonic_radius

    camera = CAMERAS["tangential_plumb_bob"]
    assert monotonic_radius(camera.model, camera.D) == np.inf
    assert fov_radius(camera.model, camera.K, camera.D, camera.width, camera.height) < 2.0
    # Directions between r = 10 and 1000 (84-89.9 degrees) on a polar grid: the ones OpenCV puts in the image.
    phi, r = np.meshgrid(np.linspace(-np.pi, np.pi, 721), np.geomspace(10.0, 1000.0, 801))
    rays = np.stack([r.ravel() * np.cos(phi.ravel()), r.ravel() * np.sin(phi.ravel()), np.ones(r.size)], axis=1)
    rng = np.random.default_rng(8)
    rays *= rng.uniform(1.0, 50.0, (rays.shape[0], 1))  # at 1-50 m depth
    near = np.c_[rng.uniform(-0.6, 0.6, 500), rng.uniform(-0.45, 0.45, 500), np.ones(500)]
    near *= rng.uniform(1.0, 50.0, (500, 1))
    xyz = np.concatenate([rays, near])
    uv_cv, inside_cv = opencv_in_image(camera, xyz)
    xyz, uv_cv = xyz[inside_cv], uv_cv[inside_cv]
    n_far = int(np.count_nonzero(inside_cv[: rays.shape[0]]))
    assert n_far >= 10 and xyz.shape[0] == n_far + 500
    result = Projector(camera.model, camera.K, camera.D, camera.width, camera.height, np.eye(4)).project(xyz)
    assert result.valid.tolist() == [False] * n_far + [True] * 500
    # Inverse: the far points' pixels undistort to directions near the axis, not to the far points; the
    # kept ones to themselves.
    back = undistort(camera, uv_cv)
    again = opencv_project(np.c_[back, np.ones(back.shape[0])], camera.model, camera.K, camera.D)
    assert np.all(np.hypot(*(again - uv_cv).T) < 1e-3)  # converged
    xy = xyz[:, :2] / xyz[:, 2:3]
    off = np.hypot(*(back - xy).T)
    assert np.all(np.hypot(back[:n_far, 0], back[:n_far, 1]) < 1.5)
    assert np.all(off[:n_far] > 1.0)
    assert np.all(off[n_far:] < 2e-6)


def test_all_kernels_apply_the_rule() -> None:
    """One- and two-pass, parallel (forced) and the vectorised zero-distortion path agree."""
    from edgefuse.fusion import _kernels

    xyz, T, width, height = _kitti_scene()
    camera = CAMERAS["kitti_plumb_bob"]
    projector = Projector(PLUMB_BOB, camera.K, camera.D, width, height, T, threads=2)
    expected = projector.project(xyz, copy=True)
    n = xyz.shape[0]
    runs = []
    for variant in ("one", "two", "parallel"):
        bufs = (np.empty((n, 2), np.float32), np.empty(n, np.int32), np.empty(n, np.float64), np.empty(n, np.bool_))
        args = (xyz, projector._Rt, PLUMB_BOB, projector._intr_t, projector._D_t, width, height, 0.1, 200.0,
                projector._max_r2, *bufs)
        if variant == "one":
            _kernels._project_points(*args)
        elif variant == "two":
            _kernels._project_points_2pass(*args, np.empty(n, np.int32))
        else:
            _kernels._project_points_parallel(*args, 4096)
        runs.append(bufs)
        np.testing.assert_array_equal(bufs[3], expected.valid)
    for a, b in zip(runs[0], runs[2], strict=True):
        np.testing.assert_array_equal(a, b)
    # A zero-distortion plumb_bob takes the vectorised pinhole kernels: same rule (the field of view).
    pinhole = CAMERAS["pinhole"]
    rng = np.random.default_rng(5)
    cloud = wide_cloud(rng, 20_000, np.eye(4))
    for model in (PINHOLE, PLUMB_BOB):
        for dtype in (np.float32, np.float64):
            p = Projector(model, pinhole.K, None, pinhole.width, pinhole.height, np.eye(4))
            got = p.project(cloud.astype(dtype))
            ref = reference_projection(cloud.astype(dtype), PINHOLE, pinhole.K, np.zeros(8), pinhole.width,
                                       pinhole.height, np.eye(4))
            np.testing.assert_array_equal(got.valid, ref.valid)
            np.testing.assert_array_equal(got.index, ref.index)
            assert p.max_radius < 1.0  # the field of view of this pinhole camera


# -- the same rule downstream ---------------------------------------------------------------------------


def test_multi_camera_and_painting_see_no_ghosts() -> None:
    xyz, T, width, height = _kitti_scene()
    kitti = CAMERAS["kitti_plumb_bob"]
    lo, hi = fold_bracket_of("kitti_plumb_bob")
    xyz = _drop_fold_band(xyz, T, lo, hi)
    radius = _radius(_camera_frame(xyz, T))
    flipped = T.copy()
    flipped[:3, :3] = np.diag([-1.0, 1.0, -1.0]) @ T[:3, :3]  # the same camera looking backwards
    flipped[:3, 3] = np.diag([-1.0, 1.0, -1.0]) @ T[:3, 3]
    multi = MultiCameraProjector([Projector(PLUMB_BOB, kitti.K, kitti.D, width, height, Tc)
                                  for Tc in (T, flipped)], ["front", "back"])
    result = multi.project(xyz)
    front = result["front"]
    assert not np.any(front.valid & (radius > hi))
    assert np.array_equal(result.camera == 0, front.valid)
    _, inside_cv = opencv_in_image(kitti, _camera_frame(xyz, T))
    assert np.any(inside_cv & (radius > hi) & (result.camera == -1))  # ghosts of the front camera: unassigned
    back_radius = _radius(_camera_frame(xyz, flipped))
    assert not np.any(result["back"].valid & (back_radius > hi))

    painter = PointPainter(fill=-1.0, max_points=xyz.shape[0], channels=1)
    scores = np.arange(width * height, dtype=np.float32).reshape(height, width)
    painted = painter.paint(front, scores)
    assert np.all(painted[radius > hi, 0] == -1.0)
    assert painter.n_painted == front.n_valid


# -- the radii themselves ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CAMERAS))
def test_monotonic_radius_is_within_the_sampled_bracket(name: str) -> None:
    from edgefuse.rig.camera import monotonic_radius, valid_radius

    camera = CAMERAS[name]
    lo, hi = fold_bracket_of(name)
    r = monotonic_radius(camera.model, camera.D)
    if lo == np.inf:
        assert r == np.inf or r > 20.0
    else:
        assert lo <= r <= hi
    projector = Projector(camera.model, camera.K, camera.D, camera.width, camera.height, np.eye(4))
    assert projector.valid_radius == valid_radius(camera.model, camera.K, camera.D, camera.width, camera.height)
    assert projector.max_radius == min(projector.valid_radius, r)


def _check_random_coefficients(seed: int, count: int) -> None:
    from edgefuse.rig.camera import monotonic_radius

    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 1.0, 0.01, 0.01, 1.0, 1.0, 1.0, 1.0])
    for _ in range(count):
        model = int(rng.choice([PLUMB_BOB, RATIONAL, EQUIDISTANT]))
        used = {PLUMB_BOB: 5, RATIONAL: 8, EQUIDISTANT: 4}[model]
        D = np.zeros(8)
        size = 0.5 if model == EQUIDISTANT else scale[:used]
        D[:used] = rng.uniform(-1.0, 1.0, used) * rng.integers(0, 2, used) * size  # some coefficients zero
        camera = Camera(model, _k(500.0, 500.0, 320.0, 240.0), D, 640, 480)
        lo, hi = fold_bracket(camera)
        r = monotonic_radius(model, D)
        if lo == np.inf:
            assert r == np.inf or r > 20.0, (model, D, r)
        else:
            assert lo <= r <= hi, (model, D, r, lo, hi)


def test_monotonic_radius_matches_sampling_on_random_coefficients() -> None:
    _check_random_coefficients(31, 40)


@pytest.mark.slow
def test_monotonic_radius_matches_sampling_on_random_coefficients_large() -> None:
    _check_random_coefficients(32, 2000)


def test_camera_model_uses_the_same_radius() -> None:
    from edgefuse.rig import CameraModel
    from edgefuse.rig.camera import fov_radius, monotonic_radius

    camera = CAMERAS["kitti_plumb_bob"]
    model = CameraModel("cam2", "cam2", camera.width, camera.height, camera.K, camera.D[:5], "plumb_bob")
    assert model.max_radius == monotonic_radius("plumb_bob", camera.D[:5])
    assert model.fov_radius == fov_radius("plumb_bob", camera.K, camera.D[:5], camera.width, camera.height)
    assert model.valid_radius == Projector.from_camera(model, np.eye(4)).max_radius
    # The rig's own projection marks the folded side invalid with the same radius.
    pts = np.array([[1.2103, 0.0, 1.0], [1.2105, 0.0, 1.0]])
    assert model.project(pts)[1].tolist() == [True, False]
