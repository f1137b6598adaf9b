"""bag_info: per-topic stats on real and synthetic bags, header fast path vs full decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefuse.bag import BagWriter, bag_info, format_info, open_bag
from edgefuse.msgs.types import ImuData, TransformData

HUSKY = Path(__file__).resolve().parent.parent / "data" / "husky_imu_gps_odom_bag" / "test1.bag"


def _imu(stamp_ns: int) -> ImuData:
    z3 = np.zeros(3)
    return ImuData(
        stamp_ns,
        "imu",
        np.array([0, 0, 0, 1.0]),
        np.zeros((3, 3)),
        z3,
        np.zeros((3, 3)),
        z3,
        np.zeros((3, 3)),
    )


def test_husky_info() -> None:
    info = bag_info(HUSKY)
    assert info.storage == "rosbag1"
    assert info.message_count == 16806
    assert info.duration_ns / 1e9 == pytest.approx(395.3, abs=0.1)
    imu = info.topics["/imu/data"]
    assert (imu.count, imu.stamp_source) == (11865, "header")
    assert imu.mean_rate_hz == pytest.approx(30.0, abs=0.05)
    assert info.topics["/husky_velocity_controller/odom"].mean_rate_hz == pytest.approx(10.0, abs=0.05)
    assert info.topics["/fix"].mean_rate_hz == pytest.approx(2.5, abs=0.01)
    # the fast header path agrees with full decoding
    with open_bag(HUSKY) as bag:
        stamps = [e.stamp_ns for e in bag.envelopes(topics="/fix")]
    assert (info.topics["/fix"].first_ns, info.topics["/fix"].last_ns) == (min(stamps), max(stamps))
    table = format_info(info)
    assert "/imu/data" in table
    assert "11865" in table
    assert len(table.splitlines()) == 3 + 3 + 1  # header lines, topics, integrity verdict
    assert table.splitlines()[-1] == "integrity: ok (index and chunks agree)"
    assert info.problems == []


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_out_of_order_and_duplicates(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "bag"
    header_ms = [0, 10, 10, 5, 20, 40, 40]
    tf = [TransformData(0, "a", "b", np.zeros(3), np.array([0, 0, 0, 1.0]))]
    with BagWriter(path, storage=storage) as w:  # type: ignore[arg-type]
        for i, ms in enumerate(header_ms):
            w.write("/imu", 1_000_000_000 + i * 1_000_000, _imu(ms * 1_000_000))
        for i in range(3):
            w.write("/tf", 2_000_000_000 + i * 500_000_000, tf)
    info = bag_info(path)
    imu = info.topics["/imu"]
    assert imu.stamp_source == "header"
    assert (imu.count, imu.out_of_order, imu.duplicates) == (7, 1, 2)
    assert (imu.first_ns, imu.last_ns) == (0, 40_000_000)
    assert imu.max_gap_ns == 20_000_000
    assert imu.mean_rate_hz == pytest.approx(6 / 0.040)
    tfs = info.topics["/tf"]
    assert tfs.stamp_source == "record"
    assert tfs.mean_rate_hz == pytest.approx(2.0)
    assert tfs.max_gap_ns == 500_000_000
    assert info.storage == storage
    assert "record" in format_info(info)


def test_empty_topic(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "b") as w:
        w.add_topic("/imu", "sensor_msgs/msg/Imu")
    info = bag_info(tmp_path / "b")
    assert info.message_count == 0
    assert info.topics["/imu"].first_ns is None
    assert "-" in format_info(info)
