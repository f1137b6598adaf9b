"""CLEAR-MOT / HOTA on real labelled frames (nuScenes keyframe, KITTI frames).

These recordings are single frames, so there is nothing to track over time here (the multi-frame
tracking evaluation is on RADIATE's tracked boxes, test_tracker.py).  What they do give is real labels
to score a real detector against: a LiDAR-only detector (RANSAC ground removal + BEV connected components on
the raw sweep) is scored against the annotated boxes with the same metric code, and the numbers must agree
with a direct count of matches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from edgefuse.fusion import ransac_ground
from edgefuse.objects import clear_mot, distance_similarity, hota, linear_sum_assignment

DATA = Path(__file__).parents[1] / "data" / "nuscenes_demo_sample"


def _cluster_centroids(points: np.ndarray, max_range: float) -> np.ndarray:
    pts = points[np.linalg.norm(points[:, :2], axis=1) < max_range]
    plane = ransac_ground(pts, threshold_m=0.25, seed=3)
    obj = pts[~plane.inliers]
    res = 0.3
    ij = np.floor((obj[:, :2] + max_range) / res).astype(int)
    grid = np.zeros((int(2 * max_range / res) + 1,) * 2, bool)
    grid[ij[:, 0], ij[:, 1]] = True
    labels, n = ndimage.label(grid, structure=np.ones((3, 3)))
    comp = labels[ij[:, 0], ij[:, 1]]
    out = []
    for k in range(1, n + 1):
        member = obj[comp == k]
        extent = member[:, :2].max(axis=0) - member[:, :2].min(axis=0)
        if len(member) >= 5 and extent.max() < 12.0:  # object-sized, not walls / hedges
            out.append(member.mean(axis=0))
    return np.array(out)


def test_lidar_detector_scored_against_nuscenes_labels() -> None:
    info = json.loads((DATA / "calib_and_boxes_from_pkl.json").read_text())
    gt = np.array([inst["bbox_3d"][:3] for inst in info["instances"]])
    seen = np.array([inst["num_lidar_pts"] >= 10 for inst in info["instances"]])  # annotated LiDAR support
    gt = gt[seen & (np.linalg.norm(gt[:, :2], axis=1) < 40.0)]
    (cloud,) = DATA.glob("*LIDAR_TOP*.pcd.bin")
    hyp = _cluster_centroids(np.fromfile(cloud, np.float32).reshape(-1, 5)[:, :3], 40.0)
    assert len(gt) >= 15 and len(hyp) >= len(gt)
    sim = distance_similarity(gt[:, :2], hyp[:, :2], 2.0)
    result = clear_mot([np.arange(len(gt))], [np.arange(len(hyp))], [sim], threshold=0.25)
    # the same match count by hand: optimal assignment on distance, gated at 1.5 m (similarity 0.25)
    d = np.linalg.norm(gt[:, None, :2] - hyp[None, :, :2], axis=2)
    rows, cols = linear_sum_assignment(np.where(d <= 1.5, d, 1e6))
    tp = int((d[rows, cols] <= 1.5).sum())
    assert tp >= 0.6 * len(gt)  # a crude clustering detector still finds most well-observed objects
    assert result.id_switches == 0  # a single frame cannot switch identities
    expected_mota = 1.0 - ((len(gt) - tp) + (len(hyp) - tp)) / len(gt)
    assert abs(result.mota - expected_mota) < 1e-9
    h = hota([np.arange(len(gt))], [np.arange(len(hyp))], [sim])
    assert 0.0 < h.hota < 1.0
