"""IMU window: the pure function, the streaming policy, and a real EuRoC camera + IMU recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefuse.errors import SyncError
from edgefuse.sync import ImuWindow, ImuWindowSynchronizer, imu_window, make_synchronizer

EUROC = Path(__file__).parents[1] / "data" / "euroc_v101_micro" / "MicroEurocDataset" / "mav0"


def naive_window(
    stamps: list[int], values: np.ndarray, t0: int, t1: int
) -> tuple[list[int], list[np.ndarray]]:
    """Slow reference: linear interpolation written out per column."""

    def at(t: int) -> np.ndarray:
        for j in range(len(stamps)):
            if stamps[j] == t:
                return np.asarray(values[j], dtype=np.float64)
            if stamps[j] < t < stamps[j + 1]:
                w = (t - stamps[j]) / (stamps[j + 1] - stamps[j])
                return np.array([(1 - w) * a + w * b for a, b in zip(values[j], values[j + 1], strict=True)])
        raise AssertionError("not covered")

    inner = [j for j in range(len(stamps)) if t0 < stamps[j] < t1]
    return [t0, *[stamps[j] for j in inner], t1], [at(t0), *[values[j] for j in inner], at(t1)]


def test_window_interpolates_both_ends() -> None:
    stamps = np.array([0, 10, 20, 30], dtype=np.int64)
    vals = np.array([[0.0, 1.0], [10.0, 1.0], [20.0, 3.0], [30.0, 3.0]])
    t, v = imu_window(stamps, vals, 5, 20)
    assert t.tolist() == [5, 10, 20]
    np.testing.assert_allclose(v, [[5.0, 1.0], [10.0, 1.0], [20.0, 3.0]])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_window_matches_naive_reference(data: st.DataObject) -> None:
    stamps = sorted(data.draw(st.lists(st.integers(0, 1000), min_size=2, max_size=20, unique=True)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    vals = rng.normal(size=(len(stamps), 3))
    t0 = data.draw(st.integers(stamps[0], stamps[-1] - 1))
    t1 = data.draw(st.integers(t0 + 1, stamps[-1]))
    t, v = imu_window(np.array(stamps), vals, t0, t1)
    rt, rv = naive_window(stamps, vals, t0, t1)
    assert t.tolist() == rt
    np.testing.assert_allclose(v, np.array(rv), rtol=1e-12, atol=1e-12)


def test_window_slerps_quaternion_columns() -> None:
    half = np.sqrt(0.5)
    stamps = np.array([0, 100], dtype=np.int64)
    # columns: gyro z, quaternion x y z w (identity -> 90 deg about z)
    vals = np.array([[0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, half, half]])
    _, v = imu_window(stamps, vals, 50, 100, orientation=slice(1, 5))
    angle = np.pi / 4  # half way: 45 degrees about z
    np.testing.assert_allclose(v[0], [0.5, 0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)], atol=1e-12)


def test_window_errors() -> None:
    s = np.array([0, 10], dtype=np.int64)
    v = np.zeros((2, 3))
    with pytest.raises(SyncError, match="do not cover"):
        imu_window(s, v, 5, 15)
    with pytest.raises(SyncError, match="t0_ns must be < t1_ns"):
        imu_window(s, v, 5, 5)
    with pytest.raises(SyncError, match="shape"):
        imu_window(s, np.zeros((3, 3)), 1, 5)
    with pytest.raises(SyncError, match="integer"):
        imu_window(s.astype(float), v, 1, 5)


def test_streaming_waits_for_imu_past_the_frame_then_emits() -> None:
    sync = ImuWindowSynchronizer(timeout_ns=1000)
    for t in range(0, 25, 5):
        sync.push("imu", t, np.array([float(t)]))
    assert sync.push("frame", 2, "f0") == []
    assert sync.push("frame", 22, "f1") == []  # newest IMU is 20 < 22: wait
    out = sync.push("imu", 25, np.array([25.0]))
    assert len(out) == 1
    assert out[0].members["frame"] == "f1"
    assert out[0].stamp_ns == 22
    win = out[0].members["imu"]
    assert isinstance(win, ImuWindow)
    assert (win.t0_ns, win.t1_ns) == (2, 22)
    assert win.stamps_ns.tolist() == [2, 5, 10, 15, 20, 22]
    np.testing.assert_allclose(win.values[:, 0], [2, 5, 10, 15, 20, 22])
    st = sync.stats
    assert st.inputs["imu"].dropped == {}  # imu@0 brackets t0, so it is used
    assert st.balanced()


def test_streaming_timeout_when_imu_stops_and_flush() -> None:
    sync = ImuWindowSynchronizer(("cam", "gyro"), frame="cam", imu="gyro", timeout_ns=50)
    sync.push("gyro", 0, [0.0, 0.0])
    sync.push("gyro", 10, [1.0, 1.0])
    sync.push("cam", 5, "c0")
    assert sync.push("cam", 20, "c1") == []
    assert sync.push("cam", 40, "c2") == []
    out = sync.push("cam", 80, "c3")  # 80 - 20 > 50: c1's window is given up
    assert [(s.stamp_ns, s.missing) for s in out] == [(20, ("gyro",))]
    out = sync.flush()
    assert [(s.stamp_ns, s.missing) for s in out] == [(40, ("gyro",)), (80, ("gyro",))]
    st = sync.stats
    assert st.partial_sets == 3
    assert st.inputs["gyro"].missing == 3
    assert st.balanced()
    assert all(x.queued == 0 for x in st.inputs.values())


def test_streaming_drops_and_bad_payload() -> None:
    sync = make_synchronizer("imu_window", ("frame", "imu"))
    sync.push("imu", 10, np.zeros(6))
    sync.push("imu", 10, np.zeros(6))
    sync.push("imu", 5, np.zeros(6))
    assert sync.stats.inputs["imu"].dropped == {"duplicate": 1, "out_of_order": 1}
    with pytest.raises(SyncError, match="6"):
        sync.push("imu", 20, np.zeros(3))
    with pytest.raises(SyncError, match="timeout_ns"):
        make_synchronizer("imu_window", ("frame", "imu"), timeout_ns=-1)


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    stamps = np.loadtxt(path, delimiter=",", usecols=0, dtype=np.int64, comments="#")
    values = np.loadtxt(path, delimiter=",", comments="#")[:, 1:] if path.name != "data.csv" else np.empty(0)
    return stamps, values


def test_euroc_camera_imu_windows() -> None:
    cam, _ = _load(EUROC / "cam0" / "data.csv")
    imu_t, imu_v = _load(EUROC / "imu0" / "data_first1000.csv")
    assert cam.shape == (95,)
    assert imu_v.shape == (1000, 6)
    sync = ImuWindowSynchronizer()
    # replay in stamp order (frames after IMU samples with the same stamp)
    events = sorted(
        [(int(t), 0, i) for i, t in enumerate(imu_t)] + [(int(t), 1, i) for i, t in enumerate(cam)]
    )
    out = []
    for t, kind, i in events:
        out += sync.push("imu", t, imu_v[i]) if kind == 0 else sync.push("frame", t, int(i))
    out += sync.flush()
    assert len(out) == 94
    assert all(s.complete for s in out)
    for s in out:
        win = s.members["imu"]
        ref_t, ref_v = imu_window(imu_t, imu_v, win.t0_ns, win.t1_ns)
        np.testing.assert_array_equal(win.stamps_ns, ref_t)
        np.testing.assert_allclose(win.values, ref_v)
        # 20 Hz camera, 200 Hz IMU: 9-11 samples strictly inside each 50 ms window, plus both ends
        assert 11 <= win.stamps_ns.shape[0] <= 13
    stats = sync.stats
    assert stats.balanced()
    assert stats.inputs["frame"].used == 95
    # IMU samples after the last frame are left over and reported, not lost
    assert stats.inputs["imu"].used + stats.inputs["imu"].dropped_total == 1000
