"""Camera models: pinhole + distortion, with symmetric ``project`` / ``unproject``.

Camera frame: x right, y down, z forward (optical frame, metres).  Pixel coordinates (u, v) put the
centre of the top-left pixel at (0, 0) (the OpenCV / ROS convention).

Models (``model`` string → id for kernels):

=====================  ====  ======================================================  ==========
model                  id    distortion (OpenCV names)                               len(D)
=====================  ====  ======================================================  ==========
``pinhole``            0     none                                                    0
``plumb_bob``          1     k1, k2, p1, p2, k3 (OpenCV 5-parameter radial-tangential) 5
``rational_polynomial`` 2    k1, k2, p1, p2, k3, k4, k5, k6 (OpenCV 8-parameter)     8
``equidistant``        3     k1, k2, k3, k4 (OpenCV fisheye / Kalibr equidistant)     4
=====================  ====  ======================================================  ==========

:meth:`CameraModel.kernel_params` returns ``(model_id, K (3,3) f64, D (8,) f64)`` with D padded with
zeros in the order of the table (so for ``equidistant`` D[0:4] = k1..k4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.polynomial import Polynomial

from edgefuse.errors import CalibrationError
from edgefuse.msgs.types import CameraInfoData

F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

PINHOLE = 0
PLUMB_BOB = 1
RATIONAL = 2
EQUIDISTANT = 3

MODEL_IDS: dict[str, int] = {
    "pinhole": PINHOLE,
    "plumb_bob": PLUMB_BOB,
    "rational_polynomial": RATIONAL,
    "equidistant": EQUIDISTANT,
}
#: Number of distortion coefficients each model takes.
D_LENGTH: dict[str, int] = {"pinhole": 0, "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}

# Points closer than this to the z = 0 plane (camera frame) are not projected.
_MIN_Z = 1e-9


def _first_bad(bad: Callable[[F64], BOOL], candidates: F64, upper: float) -> tuple[float, float]:
    """Bracket the first ``x`` in ``(0, upper]`` where ``bad(x)`` holds (it must not hold at 0).

    ``bad`` is evaluated on a geometric grid up to ``upper`` joined with ``candidates`` (the real roots
    of the polynomials behind ``bad``) and a relative 1e-9 on either side of each, so an interval where
    ``bad`` holds cannot fall between two grid points unnoticed; the first bad grid point is then
    bisected against the last good one down to adjacent float64 values.  Returns
    ``(last_good, first_bad)``, or ``(upper, inf)`` when ``bad`` holds nowhere on the grid.
    """
    cands = candidates[(candidates > 0) & (candidates <= upper)]
    grid = np.unique(np.concatenate([np.geomspace(1e-12, upper, 4097), cands, cands * (1 - 1e-9),
                                     cands * (1 + 1e-9), [upper]]))
    grid = grid[(grid > 0) & (grid <= upper)]
    with np.errstate(all="ignore"):
        hits = np.flatnonzero(bad(grid))
    if hits.size == 0:
        return upper, np.inf
    j = int(hits[0])
    lo, hi = (float(grid[j - 1]) if j > 0 else 0.0), float(grid[j])
    with np.errstate(all="ignore"):
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
            if bool(bad(np.array([mid]))[0]):
                hi = mid
            else:
                lo = mid
    return lo, hi


def _real_roots(poly: Polynomial) -> F64:
    """Real parts of the roots of ``poly`` that are real up to a relative 1e-6 (near-double roots of
    a polynomial come out of the eigenvalue solver as a complex pair with a tiny imaginary part)."""
    coef = np.trim_zeros(poly.coef, "b")
    if coef.size < 2:
        return np.zeros(0)
    roots = Polynomial(coef).roots()
    real: F64 = roots.real[np.abs(roots.imag) <= 1e-6 * np.maximum(1.0, np.abs(roots))]
    return real


def _model_id(model: str | int) -> int:
    if isinstance(model, str):
        if model not in MODEL_IDS:
            raise CalibrationError(f"unknown camera model {model!r} (expected one of: {', '.join(MODEL_IDS)})")
        return MODEL_IDS[model]
    if int(model) not in MODEL_IDS.values():
        raise CalibrationError(f"unknown camera model id {model!r}")
    return int(model)


def _coeffs8(D: npt.ArrayLike) -> F64:
    d = np.asarray(D if D is not None else (), dtype=np.float64).reshape(-1)
    if d.size > 8 or not np.all(np.isfinite(d)):
        raise CalibrationError(f"D must hold at most 8 finite coefficients, got {d.tolist()}")
    d8 = np.zeros(8)
    d8[: d.size] = d
    return d8


def _radtan_polys(d8: F64, model: int) -> tuple[Polynomial, Polynomial]:
    """Numerator ``N(s)`` and denominator ``M(s)`` of the radial factor in ``s = r^2``."""
    k1, k2, _, _, k3, k4, k5, k6 = d8
    if model == PINHOLE:
        return Polynomial([1.0]), Polynomial([1.0])
    den = [1.0, k4, k5, k6] if model == RATIONAL else [1.0]
    return Polynomial([1.0, k1, k2, k3]), Polynomial(den)


def _monotonic_limit(model: int, d8: F64) -> float:
    """The fold point of the radial distortion: the largest ``s = r^2`` (``t = theta^2`` for
    equidistant) such that the radial map is strictly increasing up to it; inf (pi^2/4 for
    equidistant) when it never folds."""
    if model == EQUIDISTANT:
        k1, k2, k3, k4 = d8[:4]
        dtheta = Polynomial([1.0, 3 * k1, 5 * k2, 7 * k3, 9 * k4])  # d theta_d / d theta, in t = theta^2
        upper = (np.pi / 2) ** 2
        lo, hi = _first_bad(lambda t: ~(dtheta(t) > 0), _real_roots(dtheta), upper)
        return upper if hi == np.inf else lo
    num, den = _radtan_polys(d8, model)
    s = Polynomial([0.0, 1.0])
    # r_d = r N(s) / M(s); d r_d / d r = [N M + 2 s (N' M - N M')] / M^2
    slope = num * den + 2 * s * (num.deriv() * den - num * den.deriv())
    roots = np.concatenate([_real_roots(slope), _real_roots(den)])
    upper = max(1e8, 4.0 * float(roots.max(initial=0.0)))  # r up to 1e4: 89.994 degrees off axis
    lo, hi = _first_bad(lambda x: ~((slope(x) > 0) & (den(x) > 0)), roots, upper)
    return np.inf if hi == np.inf else lo


def monotonic_radius(model: str | int, D: npt.ArrayLike) -> float:
    """Largest undistorted normalised radius ``r = sqrt((x/z)^2 + (y/z)^2)`` (the tangent of the angle
    off the optical axis) up to which the model's radial distortion is strictly increasing.

    ``model`` is a name or id of the module table, ``D`` its coefficients (up to 8, zero-padded).  The
    radial map is ``r_d = r (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6)`` for
    plumb_bob / rational_polynomial (tangential terms are not part of it) and ``theta_d = theta (1 +
    k1 theta^2 + ... + k4 theta^8)``, ``theta = atan(r)``, for equidistant.  The result is the first
    positive root of ``d r_d / d r`` (or of the rational denominator, a pole), found from the
    polynomial's roots and bisected to adjacent float64 values: ``f' > 0`` at every radius up to it
    (rounded down, so ``r * r`` never exceeds the last radius where it was checked).  Beyond it the
    model folds back and far off-axis points would land inside the image.  ``inf``: it never folds
    (pinhole; equidistant up to 90 degrees).
    """
    mid = _model_id(model)
    if mid == PINHOLE:
        return np.inf
    limit = _monotonic_limit(mid, _coeffs8(D))
    if limit == np.inf:
        return np.inf
    if mid == EQUIDISTANT:
        if limit >= (np.pi / 2) ** 2:
            return np.inf
        return float(np.nextafter(np.tan(np.sqrt(limit)), 0.0))
    r = float(np.sqrt(limit))
    while r * r > limit:
        r = float(np.nextafter(r, 0.0))
    return r


def _corner_radius(K: npt.ArrayLike, width: int, height: int) -> float:
    """Largest distorted normalised radius of the image rectangle grown by half a pixel on each side
    (``-1 <= u <= width``, same for ``v``): a point whose distorted radius exceeds it is outside the
    image.  ``K`` may have skew ``K[0, 1]`` (applied as ``u = fx xd + skew yd + cx``)."""
    k = np.asarray(K, dtype=np.float64).reshape(3, 3)
    u = np.array([-1.0, float(width), -1.0, float(width)])
    v = np.array([-1.0, -1.0, float(height), float(height)])
    yd = (v - k[1, 2]) / k[1, 1]
    xd = (u - k[0, 2] - k[0, 1] * yd) / k[0, 0]
    return float(np.max(np.hypot(xd, yd)))


def fov_radius(model: str | int, K: npt.ArrayLike, D: npt.ArrayLike, width: int, height: int) -> float:
    """Undistorted normalised radius beyond which no direction in the image's field of view lies.

    The field of view is the set of directions, connected to the optical axis, that the model maps
    into the image.  Let ``rho`` be the image's farthest corner in distorted normalised coordinates,
    the image grown by half a pixel per side (:func:`_corner_radius`), and ``L(r)`` a lower bound of
    the distorted radius at undistorted radius ``r``: ``r_d(r) - 3 sqrt(p1^2 + p2^2) r^2`` for
    plumb_bob / rational_polynomial (the tangential terms move a point by at most
    ``3 sqrt(p1^2 + p2^2) r^2``), ``theta_d(atan r)`` for equidistant, ``r`` for pinhole.  The result
    is the first radius, within the monotonic region, where ``L`` exceeds ``rho`` (rounded up): the
    whole circle just beyond it lands outside the image, so the field of view lies inside it; points
    beyond it reach the image only by folding back.  For models without tangential terms ``L`` is the
    radial map itself, increasing in the monotonic region, so every point of that region beyond this
    radius lands outside the image anyway (dropping it changes nothing).  ``inf`` when ``L`` stays
    below ``rho`` throughout the monotonic region.
    """
    mid = _model_id(model)
    d8 = _coeffs8(D)
    rho = _corner_radius(K, width, height)
    if mid == EQUIDISTANT:
        t_mono = _monotonic_limit(mid, d8)
        k1, k2, k3, k4 = d8[:4]
        gap = Polynomial([-rho, 1.0, 0.0, k1, 0.0, k2, 0.0, k3, 0.0, k4])  # theta_d(theta) - rho
        _, hi = _first_bad(lambda th: gap(th) > 0, _real_roots(gap), float(np.sqrt(t_mono)))
        if hi == np.inf or hi >= np.pi / 2:
            return np.inf
        return float(np.nextafter(np.tan(hi), np.inf))
    num, den = _radtan_polys(d8, mid)
    c = 3.0 * float(np.hypot(d8[2], d8[3])) if mid != PINHOLE else 0.0
    s_mono = _monotonic_limit(mid, d8) if mid != PINHOLE else np.inf
    r = Polynomial([0.0, 1.0])
    num_r, den_r = num(r * r), den(r * r)
    gap = r * num_r - c * r * r * den_r - rho * den_r  # (L(r) - rho) M(r^2), M > 0 in the region
    roots = _real_roots(gap)
    upper = float(np.sqrt(s_mono)) if s_mono < np.inf else max(1e4, 4.0 * float(roots.max(initial=0.0)))
    _, hi = _first_bad(lambda x: x * num_r(x) / den_r(x) - c * x * x > rho, roots, upper)
    if hi == np.inf:
        return np.inf
    out = float(hi)
    while out * out < hi * hi:
        out = float(np.nextafter(out, np.inf))
    return out


def valid_radius(model: str | int, K: npt.ArrayLike, D: npt.ArrayLike, width: int, height: int) -> float:
    """``min(monotonic_radius, fov_radius)``: the largest undistorted normalised radius a point may
    have and still be projected (see both); ``inf`` when neither limits it."""
    return min(monotonic_radius(model, D), fov_radius(model, K, D, width, height))


def _radial_limit(model: str, r: float) -> float:
    """The monotonic radius ``r`` (:func:`monotonic_radius`) in the model's own variable: ``r`` for
    plumb_bob / rational_polynomial / pinhole, the angle ``theta = atan(r)`` for equidistant (pi/2 when
    it never folds).  Beyond it the model folds back; :meth:`CameraModel.project` marks such points
    invalid."""
    if model == "equidistant":
        return float(np.arctan(r)) if r < np.inf else np.pi / 2
    return r


@dataclass(slots=True)
class CameraModel:
    """An intrinsic camera calibration.

    ``K`` is the 3x3 float64 camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (pixels; skew must
    be 0), ``D`` the distortion coefficients of ``model`` (see the module table), ``width``/``height``
    the image size in pixels, ``frame_id`` the optical frame in the rig's frame graph.
    """

    name: str
    frame_id: str
    width: int
    height: int
    K: F64
    D: F64
    model: str = "pinhole"
    _r_max: float = field(default=np.inf, init=False, repr=False, compare=False)
    _r_mono: float = field(default=np.inf, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = camera_problems(self.model, self.K, self.D, self.width, self.height)
        if problems:
            raise CalibrationError(f"camera {self.name!r}: " + "; ".join(msg for _, msg in problems))
        self.K = np.array(self.K, dtype=np.float64).reshape(3, 3)
        self.D = np.array(self.D, dtype=np.float64).reshape(-1)
        self.width = int(self.width)
        self.height = int(self.height)
        self._r_mono = monotonic_radius(self.model, self.D)
        self._r_max = _radial_limit(self.model, self._r_mono)

    # -- parameters ---------------------------------------------------------------------------
    @property
    def max_radius(self) -> float:
        """Largest undistorted normalised radius ``sqrt((x/z)^2 + (y/z)^2)`` the model is valid for.

        Beyond it the distortion polynomial stops being monotonic and far off-axis points would fold
        back into the image; projection kernels treat such points as invalid (``inf``: no limit).
        See :func:`monotonic_radius`.
        """
        return float(self._r_mono)

    @property
    def fov_radius(self) -> float:
        """Undistorted normalised radius beyond which no direction of the image's field of view lies
        (:func:`fov_radius`)."""
        return fov_radius(self.model, self.K, self.D, self.width, self.height)

    @property
    def valid_radius(self) -> float:
        """``min(max_radius, fov_radius)``: what :class:`edgefuse.fusion.Projector` projects at most."""
        return min(self.max_radius, self.fov_radius)

    @property
    def model_id(self) -> int:
        """Integer model id (:data:`PINHOLE`, :data:`PLUMB_BOB`, :data:`RATIONAL`, :data:`EQUIDISTANT`)."""
        return MODEL_IDS[self.model]

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def kernel_params(self) -> tuple[int, F64, F64]:
        """``(model_id, K (3,3) float64 C-contiguous copy, D (8,) float64 zero-padded copy)`` for kernels."""
        d8 = np.zeros(8, dtype=np.float64)
        d8[: self.D.size] = self.D
        return self.model_id, np.ascontiguousarray(self.K, dtype=np.float64).copy(), d8

    def in_image(self, uv: npt.ArrayLike) -> BOOL:
        """(N,) bool: pixel coordinates inside ``[-0.5, width-0.5) x [-0.5, height-0.5)``."""
        p = np.asarray(uv, dtype=np.float64)
        return (
            (p[:, 0] >= -0.5) & (p[:, 0] < self.width - 0.5)
            & (p[:, 1] >= -0.5) & (p[:, 1] < self.height - 0.5)
        )

    # -- projection ---------------------------------------------------------------------------
    def _distort(self, x: F64, y: F64) -> tuple[F64, F64, BOOL]:
        """Normalized (x, y) = (X/Z, Y/Z) → distorted normalized coordinates and the monotonic mask."""
        d = self.D
        if self.model == "pinhole":
            return x, y, np.ones(x.shape, dtype=bool)
        r2 = x * x + y * y
        if self.model == "equidistant":
            r = np.sqrt(r2)
            theta = np.arctan(r)
            t2 = theta * theta
            theta_d = theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
            scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
            return x * scale, y * scale, theta <= self._r_max
        k1, k2, p1, p2, k3 = d[:5]
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        if self.model == "rational_polynomial":
            radial = radial / (1 + r2 * (d[5] + r2 * (d[6] + r2 * d[7])))
        xy = x * y
        xd = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
        return xd, yd, np.sqrt(r2) <= self._r_max

    def project(self, points_cam: npt.ArrayLike) -> tuple[F64, BOOL]:
        """Project points (N, 3) in the camera optical frame (metres) to pixels.

        Returns ``uv`` (N, 2) float64 and ``valid`` (N,) bool.  ``valid`` is False for points with
        z <= 1e-9 (behind or on the camera plane), non-finite input, or beyond the radius where the
        distortion model stops being monotonic; their ``uv`` is NaN.  Image bounds are not checked
        (use :meth:`in_image`).  For valid points the result equals ``cv2.projectPoints`` /
        ``cv2.fisheye.projectPoints`` with zero rvec/tvec.
        """
        p = np.asarray(points_cam, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise CalibrationError(f"points_cam must have shape (N, 3), got {p.shape}")
        z = p[:, 2]
        front = np.isfinite(p).all(axis=1) & (z > _MIN_Z)
        zs = np.where(front, z, 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            xd, yd, mono = self._distort(p[:, 0] / zs, p[:, 1] / zs)
        valid = front & mono & np.isfinite(xd) & np.isfinite(yd)
        uv = np.empty((p.shape[0], 2), dtype=np.float64)
        uv[:, 0] = self.K[0, 0] * xd + self.K[0, 2]
        uv[:, 1] = self.K[1, 1] * yd + self.K[1, 2]
        uv[~valid] = np.nan
        return uv, valid

    def unproject(self, uv: npt.ArrayLike, *, iterations: int = 20) -> tuple[F64, BOOL]:
        """Inverse of :meth:`project`: pixels (N, 2) → points on the z = 1 plane (N, 3) ``[x, y, 1]``
        (multiply by depth to get metres; normalise for unit rays).

        Distortion is inverted with Newton's method (2-D for radial-tangential, 1-D in θ for
        equidistant).  ``valid`` is False where it did not converge to 1e-12 (normalized units) or the
        pixel lies outside the model's monotonic region; those rows are NaN.
        """
        q = np.asarray(uv, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != 2:
            raise CalibrationError(f"uv must have shape (N, 2), got {q.shape}")
        xd = (q[:, 0] - self.K[0, 2]) / self.K[0, 0]
        yd = (q[:, 1] - self.K[1, 2]) / self.K[1, 1]
        out = np.ones((q.shape[0], 3), dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if self.model == "pinhole":
                x, y = xd, yd
                ok = np.isfinite(x) & np.isfinite(y)
            elif self.model == "equidistant":
                x, y, ok = self._undistort_equidistant(xd, yd, iterations)
            else:
                x, y, ok = self._undistort_radtan(xd, yd, iterations)
        out[:, 0] = x
        out[:, 1] = y
        out[~ok] = np.nan
        return out, ok

    def _undistort_equidistant(self, xd: F64, yd: F64, iterations: int) -> tuple[F64, F64, BOOL]:
        k1, k2, k3, k4 = self.D
        theta_d = np.sqrt(xd * xd + yd * yd)
        theta = theta_d.copy()
        for _ in range(iterations):
            t2 = theta * theta
            f = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d
            df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
            theta = theta - f / df
        t2 = theta * theta
        resid = np.abs(theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d)
        theta_max = min(self._r_max, np.pi / 2 - 1e-9)
        ok = np.isfinite(theta) & (resid < 1e-12) & (theta >= 0) & (theta <= theta_max)
        scale = np.where(theta_d > 1e-12, np.tan(theta) / np.where(theta_d > 1e-12, theta_d, 1.0), 1.0)
        return xd * scale, yd * scale, ok

    def _undistort_radtan(self, xd: F64, yd: F64, iterations: int) -> tuple[F64, F64, BOOL]:
        d = self.D
        k1, k2, p1, p2, k3 = d[:5]
        k4, k5, k6 = d[5:8] if self.model == "rational_polynomial" else (0.0, 0.0, 0.0)
        x, y = xd.copy(), yd.copy()
        fx_ = fy_ = x
        for _ in range(iterations):
            r2 = x * x + y * y
            num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
            dnum = k1 + r2 * (2 * k2 + r2 * 3 * k3)  # d num / d r2
            dden = k4 + r2 * (2 * k5 + r2 * 3 * k6)
            rad = num / den
            drad = (dnum * den - num * dden) / (den * den)  # d rad / d r2
            fx_ = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
            fy_ = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
            # Jacobian of the distortion wrt (x, y); d r2/dx = 2x.
            j11 = rad + x * drad * 2 * x + 2 * p1 * y + 6 * p2 * x
            j12 = x * drad * 2 * y + 2 * p1 * x + 2 * p2 * y
            j21 = y * drad * 2 * x + 2 * p1 * x + 2 * p2 * y
            j22 = rad + y * drad * 2 * y + 6 * p1 * y + 2 * p2 * x
            det = j11 * j22 - j12 * j21
            x = x - (j22 * fx_ - j12 * fy_) / det
            y = y - (-j21 * fx_ + j11 * fy_) / det
        xr, yr, mono = self._distort(x, y)
        resid = np.maximum(np.abs(xr - xd), np.abs(yr - yd))
        ok = np.isfinite(x) & np.isfinite(y) & (resid < 1e-12) & mono
        return x, y, ok

    # -- ROS CameraInfo -------------------------------------------------------------------------
    @classmethod
    def from_camera_info(cls, info: CameraInfoData, name: str | None = None) -> CameraModel:
        """Build from a ``sensor_msgs/CameraInfo`` payload.

        ``plumb_bob`` with an empty (or all-zero) D becomes ``pinhole``; ``plumb_bob`` with fewer than
        5 coefficients (k1, k2, p1, p2) is zero-padded; ``rational_polynomial`` with more than 8
        (OpenCV's 12/14-coefficient variants) is accepted only when the extra terms are zero.
        """
        model = info.distortion_model.strip().lower() or "plumb_bob"
        d = np.asarray(info.d, dtype=np.float64).reshape(-1)
        if model == "plumb_bob":
            if d.size == 0 or not np.any(d):
                model, d = "pinhole", np.zeros(0)
            elif d.size < 5:
                d = np.r_[d, np.zeros(5 - d.size)]
        elif model == "rational_polynomial" and d.size > 8:
            if np.any(d[8:]):
                raise CalibrationError(f"rational_polynomial with {d.size} nonzero-tail coefficients is not"
                                       " supported (only k1..k6, p1, p2)")
            d = d[:8]
        elif model == "pinhole":
            d = np.zeros(0)
        if model not in MODEL_IDS:
            raise CalibrationError(f"unsupported distortion_model {info.distortion_model!r}"
                                   f" (supported: {', '.join(MODEL_IDS)})")
        k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        frame = info.frame_id or (name or "camera")
        return cls(name=name or frame, frame_id=frame, width=int(info.width), height=int(info.height),
                   K=k, D=d, model=model)

    def to_camera_info(self, stamp_ns: int) -> CameraInfoData:
        """A ``CameraInfo`` payload: R = I, P = [K | 0]; ``pinhole`` is written as ``plumb_bob`` with
        5 zero coefficients (ROS has no distortion-free model name)."""
        model = "plumb_bob" if self.model == "pinhole" else self.model
        d = np.zeros(5) if self.model == "pinhole" else self.D.copy()
        p = np.zeros((3, 4))
        p[:, :3] = self.K
        return CameraInfoData(stamp_ns=int(stamp_ns), frame_id=self.frame_id, width=self.width,
                              height=self.height, distortion_model=model, d=d, k=self.K.copy(),
                              r=np.eye(3), p=p)


def camera_problems(
    model: object, K: object, D: object, width: object, height: object
) -> list[tuple[str, str]]:
    """Every problem with these camera parameters as ``(field, message)`` pairs, field one of
    ``model``, ``width``, ``height``, ``K``, ``D`` (empty list when valid)."""
    problems: list[tuple[str, str]] = []
    if model not in MODEL_IDS:
        problems.append(("model", f"unknown model {model!r} (expected one of: {', '.join(MODEL_IDS)})"))
    for label, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) <= 0:
            problems.append((label, f"{label} must be a positive integer, got {v!r}"))
    try:
        k = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        problems.append(("K", "K must be a 3x3 matrix of numbers"))
        k = None
    if k is not None:
        if k.shape != (3, 3):
            problems.append(("K", f"K must be 3x3, got shape {k.shape}"))
        elif not np.all(np.isfinite(k)):
            problems.append(("K", "K contains NaN or infinite values"))
        else:
            if k[0, 0] <= 0 or k[1, 1] <= 0:
                problems.append(("K", f"focal lengths must be positive, got fx={k[0, 0]:g}, fy={k[1, 1]:g}"))
            if k[0, 1] != 0:
                problems.append(("K", f"K skew K[0][1] must be 0, got {k[0, 1]:g}"))
            if k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
                problems.append(("K", f"K must be [[fx,0,cx],[0,fy,cy],[0,0,1]], got {k.tolist()}"))
    try:
        d = np.asarray(D, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        problems.append(("D", "D must be a list of numbers"))
        d = None
    if d is not None and model in D_LENGTH:
        want = D_LENGTH[str(model)]
        if d.size != want:
            problems.append(("D", f"D for model {model} must have {want} coefficients, got {d.size}"))
        elif not np.all(np.isfinite(d)):
            problems.append(("D", "D contains NaN or infinite values"))
    return problems
