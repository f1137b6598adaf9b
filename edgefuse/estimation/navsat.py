"""WGS84 geodetic ↔ ECEF ↔ local ENU, and the navsat datum (navsat_transform_node's role).

- :func:`ecef_from_geodetic`: latitude/longitude [deg], ellipsoidal height [m] → Earth-centred,
  Earth-fixed x, y, z [m] (WGS84).
- :func:`enu_from_ecef` / :func:`enu_from_geodetic`: east, north, up [m] in the tangent frame at a datum.
- :func:`geodetic_from_ecef`: the inverse (Bowring's iteration; sub-millimetre on Earth).

All functions are vectorised over leading dimensions.  The filters map ENU into their world frame with
the transform fixed at the first fix (:mod:`edgefuse.estimation._kernels`, ``KIND_GNSS``): the world
position of the antenna at that moment and the rotation ``world yaw − ENU heading``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def ecef_from_geodetic(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike) -> F64:
    """ECEF [m], shape (..., 3)."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_m, dtype=np.float64)
    s = np.sin(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * s * s)
    return np.stack(
        [(n + h) * np.cos(lat) * np.cos(lon), (n + h) * np.cos(lat) * np.sin(lon), (n * (1.0 - WGS84_E2) + h) * s],
        axis=-1,
    )


def enu_rotation(lat_deg: float, lon_deg: float) -> F64:
    """3×3 rotation taking ECEF vectors into ENU at (lat, lon): rows are east, north, up."""
    lat = np.radians(lat_deg)
    lon = np.radians(lon_deg)
    sl, cl = np.sin(lat), np.cos(lat)
    so, co = np.sin(lon), np.cos(lon)
    return np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])


def enu_from_ecef(ecef: npt.ArrayLike, lat0_deg: float, lon0_deg: float, alt0_m: float) -> F64:
    """ENU [m] of ECEF points relative to the datum (lat0, lon0, alt0); shape (..., 3)."""
    origin = ecef_from_geodetic(lat0_deg, lon0_deg, alt0_m)
    d = np.asarray(ecef, dtype=np.float64) - origin
    out: F64 = d @ enu_rotation(lat0_deg, lon0_deg).T
    return out


def enu_from_geodetic(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike,  # noqa: PLR0917
                      lat0_deg: float, lon0_deg: float, alt0_m: float) -> F64:
    """ENU [m] of geodetic points relative to a geodetic datum; shape (..., 3)."""
    return enu_from_ecef(ecef_from_geodetic(lat_deg, lon_deg, alt_m), lat0_deg, lon0_deg, alt0_m)


def geodetic_from_ecef(ecef: npt.ArrayLike) -> F64:
    """(lat [deg], lon [deg], alt [m]) from ECEF [m]; shape (..., 3)."""
    p = np.asarray(ecef, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    lon = np.arctan2(y, x)
    r = np.hypot(x, y)
    ep2 = (WGS84_A**2 - WGS84_B**2) / WGS84_B**2
    beta = np.arctan2(WGS84_A * z, WGS84_B * r)
    lat = np.arctan2(z + ep2 * WGS84_B * np.sin(beta) ** 3, r - WGS84_E2 * WGS84_A * np.cos(beta) ** 3)
    for _ in range(3):
        beta = np.arctan2((1.0 - WGS84_F) * np.sin(lat), np.cos(lat))
        lat = np.arctan2(z + ep2 * WGS84_B * np.sin(beta) ** 3, r - WGS84_E2 * WGS84_A * np.cos(beta) ** 3)
    s = np.sin(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * s * s)
    c = np.cos(lat)
    alt = np.where(np.abs(c) > 1e-10, r / np.where(np.abs(c) > 1e-10, c, 1.0) - n,
                   np.abs(z) - WGS84_B)
    return np.stack([np.degrees(lat), np.degrees(lon), alt], axis=-1)


@dataclass(frozen=True)
class Datum:
    """The navsat datum: the first valid fix (geodetic) and the stamp it was taken at."""

    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    stamp_ns: int

    def enu(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike) -> F64:
        """ENU [m] of fixes relative to this datum."""
        return enu_from_geodetic(lat_deg, lon_deg, alt_m, self.latitude_deg, self.longitude_deg, self.altitude_m)
