"""The ``deskew`` pipeline stage on real clouds (Luminar bag, Ouster pcap) and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefuse.bag import open_bag
from edgefuse.errors import MessageError, PipelineError
from edgefuse.fusion.deskew import ConstantVelocity, deskew, integrate_imu
from edgefuse.msgs import pointcloud_from_arrays
from edgefuse.msgs.types import OdometryData, PointCloud
from edgefuse.stages import Stage, stage_class

DATA = Path(__file__).resolve().parents[1] / "data"
PCAPS = DATA / "ouster_sdk_pcaps" / "tests" / "pcaps"


def _stage(**params: object) -> Stage:
    cls = stage_class("deskew")
    assert cls is not None
    assert cls.check_params(params) == []
    st = cls("deskew", params, None)
    st.start()
    return st


def _odom(stamp: int, v: tuple[float, float, float], w: tuple[float, float, float]) -> OdometryData:
    return OdometryData(stamp, "odom", "base_link", np.zeros(3), np.array([0, 0, 0, 1.0]), np.zeros((6, 6)),
                        np.array(v, float), np.array(w, float), np.zeros((6, 6)))


@pytest.fixture(scope="module")
def luminar() -> PointCloud:
    with open_bag(DATA / "luminar_pointcloud_bag" / "luminar_1frame.bag") as bag:
        env = next(iter(bag.envelopes(["/luminar_pointcloud"])))
    return env.payload  # type: ignore[no-any-return]


def test_luminar_time_sec_nsec_with_odometry(luminar: PointCloud) -> None:
    st = _stage()
    odom = _odom(luminar.stamp_ns, (20.0, 0.0, 0.0), (0.0, 0.0, 0.1))
    out = st.process({"cloud": luminar, "odom": odom}, luminar.stamp_ns)["cloud"]
    pts = luminar.points
    assert out.points.dtype == pts.dtype and out.stamp_ns == luminar.stamp_ns and out.frame_id == "luminar_lidar"
    for name in ("intensity", "time_sec", "time_nsec", "laser_id"):
        np.testing.assert_array_equal(out.points[name], pts[name])
    t = pts["time_sec"].astype(np.int64) * 1_000_000_000 + pts["time_nsec"]
    # the header stamp is the sweep end for this sensor: the last points do not move
    assert int(t.max()) == luminar.stamp_ns
    xyz = np.column_stack([pts["x"], pts["y"], pts["z"]]).astype(np.float32)
    expect = deskew(xyz, t, ConstantVelocity((20.0, 0, 0), (0, 0, 0.1)), reference_time_ns=luminar.stamp_ns).points
    got = np.column_stack([out.points["x"], out.points["y"], out.points["z"]])
    np.testing.assert_allclose(got, expect, atol=1e-4)
    moved = np.linalg.norm(got - xyz, axis=1)
    assert moved[t == t.max()].max() < 1e-4 and moved.max() > 1.5  # 20 m/s × 88 ms = 1.76 m
    # buffers are reused: no allocation in steady state
    again = st.process({"cloud": luminar, "odom": odom}, luminar.stamp_ns)["cloud"]
    assert np.shares_memory(again.points, out.points)


def test_ouster_cloud_with_imu_and_relative_uint32_t() -> None:
    from edgefuse_drivers.ouster import OusterPcap, xyz_lut

    src = OusterPcap(PCAPS / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", PCAPS / "OS-1-128_v2.3.0_1024x10.json")
    scan = list(src.scans())[1]
    cloud = scan.to_pointcloud(xyz_lut(src.info))
    imu = src.imu_batch()
    st = _stage(reference="start")
    out = st.process({"cloud": cloud, "imu": imu}, cloud.stamp_ns)["cloud"]
    t = cloud.stamp_ns + cloud.points["t"].astype(np.int64)
    motion = integrate_imu(imu.stamps_ns, imu.angular_velocity, int(t.min()), int(t.max()))
    xyz = np.column_stack([cloud.points[k] for k in "xyz"])
    expect = deskew(xyz, t, motion, reference_time_ns="start").points
    np.testing.assert_allclose(np.column_stack([out.points[k] for k in "xyz"]), expect, atol=1e-4)


def test_imu_plus_odometry_velocity() -> None:
    rng = np.random.default_rng(3)
    n = 500
    t_rel = np.sort(rng.integers(0, 100_000_000, n)).astype(np.uint32)
    xyz = rng.normal(size=(n, 3)).astype(np.float32) * 20
    stamp = 10_000_000_000
    cloud = pointcloud_from_arrays(stamp, "lidar", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], t=t_rel)
    from edgefuse.msgs.types import ImuBatch

    stamps = stamp - 5_000_000 + np.arange(12, dtype=np.int64) * 10_000_000
    imu = ImuBatch(stamps, np.tile([0.0, 0.0, 0.7], (12, 1)), np.zeros((12, 3)))
    out = _stage().process({"cloud": cloud, "imu": imu, "odom": _odom(stamp, (8.0, 0, 0), (0, 0, 0))}, stamp)
    expect = deskew(xyz, t_rel, ConstantVelocity((8.0, 0, 0), (0, 0, 0.7)), reference_time_ns=stamp,
                    time_origin_ns=stamp).points
    got = np.column_stack([out["cloud"].points[k] for k in "xyz"])
    np.testing.assert_allclose(got, expect, atol=1e-4)


def test_float_time_field_and_non_contiguous_xyz() -> None:
    """Velodyne-style ``time`` (float32 s since the stamp) and x/y/z not adjacent (intensity between)."""
    rng = np.random.default_rng(4)
    n = 300
    xyz = rng.normal(size=(n, 3)).astype(np.float32) * 10
    tsec = np.sort(rng.uniform(0, 0.1, n)).astype(np.float32)
    stamp = 5_000_000_000
    cloud = pointcloud_from_arrays(stamp, "velodyne", x=xyz[:, 0], intensity=np.ones(n, np.float32),
                                   y=xyz[:, 1], z=xyz[:, 2], time=tsec)
    out = _stage(reference="end").process({"cloud": cloud, "odom": _odom(stamp, (5, 0, 0), (0, 0, 1))}, stamp)
    expect = deskew(xyz, tsec, ConstantVelocity((5, 0, 0), (0, 0, 1)), reference_time_ns="end",
                    time_origin_ns=stamp, time_unit="s").points
    got = np.column_stack([out["cloud"].points[k] for k in "xyz"])
    np.testing.assert_allclose(got, expect, atol=1e-4)
    assert np.all(out["cloud"].points["intensity"] == 1)


def test_bad_input() -> None:
    st = _stage()
    stamp = 1_000
    odom = _odom(stamp, (1, 0, 0), (0, 0, 0))
    no_time = pointcloud_from_arrays(stamp, "l", x=np.zeros(3, np.float32), y=np.zeros(3, np.float32),
                                     z=np.zeros(3, np.float32))
    with pytest.raises(MessageError, match="no per-point time field"):
        st.process({"cloud": no_time, "odom": odom}, stamp)
    cloud = pointcloud_from_arrays(stamp, "l", x=np.zeros(3, np.float32), y=np.zeros(3, np.float32),
                                   z=np.zeros(3, np.float32), t=np.zeros(3, np.uint32))
    with pytest.raises(PipelineError, match="'imu' or an 'odom'"):
        st.process({"cloud": cloud}, stamp)
    with pytest.raises(MessageError, match="no field 'stamp'"):
        _stage(time_field="stamp").process({"cloud": cloud, "odom": odom}, stamp)
    empty = pointcloud_from_arrays(stamp, "l", x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                                   z=np.zeros(0, np.float32), t=np.zeros(0, np.uint32))
    assert len(st.process({"cloud": empty, "odom": odom}, stamp)["cloud"].points) == 0
    cls = stage_class("deskew")
    assert cls is not None
    assert cls.check_params({"reference": 3, "bogus": 1}) != []
    for bad in ({"reference": "later"}, {"time_unit": "days"}, {"outside": "drop"}, {"time_relative": "maybe"}):
        with pytest.raises(PipelineError):
            cls("d", bad, None)
    with pytest.raises(PipelineError, match="no rig"):
        _stage(body_frame="imu").process({"cloud": cloud, "odom": odom}, stamp)
