from __future__ import annotations

import numpy as np
import pytest

from edgefuse.estimation import Ekf, SensorSpec, Ukf
from edgefuse.msgs.types import NavSatFixData, OdometryData

S = 1_000_000_000


def _odom(t: int) -> OdometryData:
    return OdometryData(t, "odom", "base_link", np.zeros(3), np.array([0, 0, 0, 1.0]), np.eye(6) * 1e-2,
                        np.array([1.0, 0, 0]), np.zeros(3), np.eye(6) * 1e-2)


def _fix(t: int, lat: float, lon: float = -71.0, alt: float = 10.0) -> NavSatFixData:
    return NavSatFixData(t, "base_link", 0, 1, lat, lon, alt, np.eye(3) * 0.5, 2)


@pytest.mark.parametrize("cls", [Ekf, Ukf])
@pytest.mark.parametrize(("lat", "lon", "alt"), [(95.0, -71.0, 10.0), (42.0, 200.0, 10.0), (42.0, -71.0, 1e7)])
def test_fix_outside_wgs84_ranges_is_rejected(cls: type, lat: float, lon: float, alt: float) -> None:
    est = cls([SensorSpec("odom0", "odom", ["vx", "vy", "vz"]), SensorSpec("gnss0", "gnss", ["x", "y"])])
    for k in range(10):
        est.add("odom0", _odom(k * S // 10))
    est.add("gnss0", _fix(S, lat, lon, alt))  # would be the datum if accepted
    assert est.rejected["gnss0"] == {"out_of_range": 1}
    assert est.datum is None
    est.add("gnss0", _fix(S + S // 10, 42.0))
    assert est.datum is not None and est.datum.latitude_deg == 42.0
    est.add("gnss0", _fix(S + 2 * S // 10, lat, lon, alt))  # after the datum too
    assert est.rejected["gnss0"] == {"out_of_range": 2}
    assert np.all(np.abs(est.x[:3]) < 10.0) and est.healthy()
