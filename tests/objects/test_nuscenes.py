"""Real nuScenes labels (one keyframe, 69 annotated 3-D boxes): the box convention agrees with the
annotation's own per-box LiDAR point counts, and noisy detections associate back to their labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgefuse.fusion import crop_oriented_box
from edgefuse.objects import bev_iou, linear_sum_assignment

DATA = Path(__file__).parents[1] / "data" / "nuscenes_demo_sample"


def _labels_and_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    info = json.loads((DATA / "calib_and_boxes_from_pkl.json").read_text())
    boxes = np.array([inst["bbox_3d"] for inst in info["instances"]], dtype=np.float64)  # x y z l w h yaw (LiDAR)
    counts = np.array([inst["num_lidar_pts"] for inst in info["instances"]])
    (cloud,) = DATA.glob("*LIDAR_TOP*.pcd.bin")
    points = np.fromfile(cloud, dtype=np.float32).reshape(-1, 5)[:, :3]
    return boxes, counts, points


def test_points_in_boxes_match_the_annotated_counts() -> None:
    boxes, counts, points = _labels_and_points()
    assert len(boxes) == 69
    ours = np.array([int(crop_oriented_box(points, b[:3], b[3:6], yaw_rad=b[6]).sum()) for b in boxes])
    # nuScenes counted points of this very sweep inside each box; boundary rounding aside they agree
    assert (ours == counts).mean() > 0.85
    assert abs(int(ours.sum()) - int(counts.sum())) / counts.sum() < 0.03
    # a wrong yaw convention would not: the same check with -yaw - pi/2 (a common mix-up) fails clearly
    wrong = np.array([int(crop_oriented_box(points, b[:3], b[3:6], yaw_rad=-b[6] - np.pi / 2).sum()) for b in boxes])
    assert (wrong == counts).mean() < 0.6


def test_noisy_detections_associate_back_to_their_labels() -> None:
    boxes, _, _ = _labels_and_points()
    rng = np.random.default_rng(7)
    order = rng.permutation(len(boxes))
    dets = boxes[order].copy()
    dets[:, :2] += rng.normal(0.0, 0.1, (len(dets), 2))  # 10 cm centre noise
    dets[:, 6] += rng.normal(0.0, np.deg2rad(3), len(dets))  # 3 deg yaw noise
    def bev(b: np.ndarray) -> np.ndarray:
        return b[:, [0, 1, 3, 4, 6]]  # x, y, l, w, yaw

    iou = bev_iou(bev(boxes), bev(dets))
    rows, cols = linear_sum_assignment(-iou)
    matched = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0.1}
    big = np.flatnonzero(boxes[:, 3] * boxes[:, 4] > 1.0)  # boxes larger than 1 m² (cars, trucks …)
    assert len(big) > 20
    for r in big:
        assert int(r) in matched and order[matched[int(r)]] == r
