"""Issue 5 fix 1: track covariances reach vision_msgs (finite estimated block, 1e9 for unknown axes)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefuse.msgs import deserialize, serialize
from edgefuse.objects import Detections3D, MultiObjectTracker, TrackerConfig, Tracks, detections_2d, detections_3d
from edgefuse.objects.msgs import (
    UNKNOWN_VARIANCE,
    from_detection2d_array,
    from_detection3d_array,
    to_detection2d_array,
    to_detection3d_array,
)

MSGTYPE = "vision_msgs/msg/Detection3DArray"


def _tracks(motion: str, filt: str) -> Tracks:
    trk = MultiObjectTracker(TrackerConfig(motion=motion, filter=filt, min_hits=1))
    out = None
    for k in range(4):
        out = trk.update(detections_3d(k * 100_000_000, "map", [[1.0 + k, 2.0, 0.5, 4, 2, 1.5, 0.0]]))
    assert out is not None and len(out) == 1
    return out


def _cov6(tr: Tracks | Detections3D) -> np.ndarray:
    msg = deserialize(serialize(to_detection3d_array(tr), MSGTYPE), MSGTYPE)
    return np.asarray(msg.detections[0].results[0].pose.covariance, dtype=np.float64).reshape(6, 6)


@pytest.mark.parametrize(("motion", "filt"), [("cv", "kf"), ("ctrv", "ekf"), ("ctrv", "ukf")])
def test_track_covariance_survives_cdr_roundtrip(motion: str, filt: str) -> None:
    tr = _tracks(motion, filt)
    cov = tr.tracks["cov"][0]
    assert np.all(np.isfinite(cov[:2, :2])) and cov[0, 0] > 0
    assert np.isnan(cov[2, 2])  # z is never estimated by the tracker
    c6 = _cov6(tr)
    # x / y block equal to the track's (was all zeros before the fix)
    np.testing.assert_array_equal(c6[:2, :2], cov[:2, :2])
    # unknown axes: large variance, zero cross terms, never 0 variance
    unknown = [2, 3, 4] + ([5] if motion == "cv" else [])
    for k in unknown:
        assert c6[k, k] == UNKNOWN_VARIANCE
        off = np.delete(c6[k], k)
        assert np.all(off == 0.0)
    if motion == "ctrv":
        assert c6[5, 5] == cov[3, 3] > 0
        np.testing.assert_array_equal(c6[:2, 5], cov[:2, 3])
    assert np.all(np.diag(c6) > 0)
    np.testing.assert_array_equal(c6, c6.T)
    assert np.linalg.eigvalsh(c6)[0] > 0
    # reading back as detections: the same x / y block, a usable (finite, PSD) covariance
    back = from_detection3d_array(deserialize(serialize(to_detection3d_array(tr), MSGTYPE), MSGTYPE))
    np.testing.assert_array_equal(back.boxes["cov"][0][:2, :2], cov[:2, :2])
    assert np.all(np.isfinite(back.boxes["cov"][0]))


def test_partial_and_missing_covariances() -> None:
    # a 3-D detection whose cov has a NaN cross term and a NaN yaw variance
    cov = np.diag([0.1, 0.2, 0.3, np.nan])
    cov[0, 1] = cov[1, 0] = np.nan
    d = detections_3d(5, "lidar", [[1, 2, 3, 4, 2, 1.5, 0.3]], cov=cov[None])
    c6 = _cov6(d)
    np.testing.assert_array_equal(np.diag(c6), [0.1, 0.2, 0.3, UNKNOWN_VARIANCE, UNKNOWN_VARIANCE,
                                                UNKNOWN_VARIANCE])
    assert c6[0, 1] == c6[1, 0] == 0.0
    # no covariance at all: every axis unknown on the wire, all-NaN ("not given") when read back
    d2 = detections_2d(1, "cam", [[0, 0, 4, 4]])
    msg = to_detection2d_array(d2)
    c = np.asarray(msg.detections[0].results[0].pose.covariance).reshape(6, 6)
    np.testing.assert_array_equal(c, np.diag(np.full(6, UNKNOWN_VARIANCE)))
    assert np.all(np.isnan(from_detection2d_array(msg).boxes["cov"][0]))
