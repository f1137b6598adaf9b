"""WGS84 geodetic → ECEF → ENU against closed-form values (radii of curvature) and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefuse.estimation.navsat import (
    WGS84_A,
    WGS84_B,
    WGS84_E2,
    Datum,
    ecef_from_geodetic,
    enu_from_geodetic,
    geodetic_from_ecef,
)


def test_ecef_known_points() -> None:
    np.testing.assert_allclose(ecef_from_geodetic(0.0, 0.0, 0.0), [WGS84_A, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ecef_from_geodetic(0.0, 90.0, 0.0), [0.0, WGS84_A, 0.0], atol=1e-6)
    np.testing.assert_allclose(ecef_from_geodetic(90.0, 0.0, 0.0), [0.0, 0.0, WGS84_B], atol=1e-6)
    np.testing.assert_allclose(ecef_from_geodetic(0.0, 180.0, 100.0), [-(WGS84_A + 100.0), 0.0, 0.0], atol=1e-6)
    # WGS84 semi-minor axis (published constant)
    assert pytest.approx(6356752.314245, abs=1e-6) == WGS84_B


def test_geodetic_roundtrip() -> None:
    rng = np.random.default_rng(5)
    lat = rng.uniform(-89.9, 89.9, 200)
    lon = rng.uniform(-180, 180, 200)
    alt = rng.uniform(-500, 9000, 200)
    back = geodetic_from_ecef(ecef_from_geodetic(lat, lon, alt))
    np.testing.assert_allclose(back[:, 0], lat, atol=1e-9)
    np.testing.assert_allclose(back[:, 1], lon, atol=1e-9)
    np.testing.assert_allclose(back[:, 2], alt, atol=1e-4)


def test_enu_small_offsets_match_radii_of_curvature() -> None:
    lat0, lon0, alt0 = 42.375812, -71.147394667, 7.3  # the Husky bag's first fix
    phi = math.radians(lat0)
    s2 = math.sin(phi) ** 2
    M = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5  # meridian radius
    N = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)  # prime vertical radius
    d = 1e-5  # degrees
    north = enu_from_geodetic(lat0 + d, lon0, alt0, lat0, lon0, alt0)
    east = enu_from_geodetic(lat0, lon0 + d, alt0, lat0, lon0, alt0)
    up = enu_from_geodetic(lat0, lon0, alt0 + 12.5, lat0, lon0, alt0)
    assert north[1] == pytest.approx((M + alt0) * math.radians(d), rel=1e-8)
    assert abs(north[0]) < 1e-6
    assert east[0] == pytest.approx((N + alt0) * math.cos(phi) * math.radians(d), rel=1e-8)
    np.testing.assert_allclose(up, [0.0, 0.0, 12.5], atol=1e-6)
    # ENU preserves distances (a rotation of ECEF differences)
    rng = np.random.default_rng(1)
    lat = lat0 + rng.uniform(-0.01, 0.01, 50)
    lon = lon0 + rng.uniform(-0.01, 0.01, 50)
    alt = rng.uniform(-20, 20, 50)
    enu = enu_from_geodetic(lat, lon, alt, lat0, lon0, alt0)
    ecef = ecef_from_geodetic(lat, lon, alt) - ecef_from_geodetic(lat0, lon0, alt0)
    np.testing.assert_allclose(np.linalg.norm(enu, axis=1), np.linalg.norm(ecef, axis=1), rtol=1e-12)


def test_datum_enu_is_zero_at_datum() -> None:
    d = Datum(42.0, -71.0, 10.0, 0)
    np.testing.assert_allclose(d.enu(42.0, -71.0, 10.0), [0.0, 0.0, 0.0], atol=1e-9)
