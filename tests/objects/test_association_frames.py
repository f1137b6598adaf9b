"""Camera ↔ LiDAR object association through the rig, on a real KITTI frame.

Camera side: the frame's 3-D labels, given in KITTI's rectified camera (cam0) coordinates.  LiDAR side:
object detections made from the raw Velodyne sweep alone (ground removed by RANSAC, BEV connected
components, centroids) — nothing from the labels or the calibration goes into them.  Association has
to go through the rig's velodyne → cam0 transform; without it nothing matches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from edgefuse.fusion import ransac_ground
from edgefuse.objects import AssociationError, associate_frames
from edgefuse.rig import from_kitti_object

KITTI = Path(__file__).parents[1] / "data" / "kitti_object_3frames" / "training"


def _labels(frame: str) -> tuple[list[str], np.ndarray]:
    names, centers = [], []
    for line in (KITTI / "label_2" / f"{frame}.txt").read_text().splitlines():
        f = line.split()
        if f[0] == "DontCare":
            continue
        h = float(f[8])
        x, y, z = (float(v) for v in f[11:14])  # bottom centre, cam0 rectified (x right, y down, z forward)
        names.append(f[0])
        centers.append((x, y - h / 2, z))
    return names, np.array(centers)


def _lidar_objects(frame: str) -> tuple[np.ndarray, np.ndarray]:
    pts = np.fromfile(KITTI / "velodyne" / f"{frame}.bin", np.float32).reshape(-1, 4)[:, :3]
    pts = pts[(np.abs(pts[:, 1]) < 40) & (pts[:, 0] > 0) & (pts[:, 0] < 80)]
    plane = ransac_ground(pts, threshold_m=0.2, seed=1)
    obj = pts[~plane.inliers]
    obj = obj[obj[:, 2] < 1.0]  # below ~2.7 m above ground: vehicles, people, not trees/buildings tops
    res = 0.25
    ij = np.floor((obj[:, :2] - [0.0, -40.0]) / res).astype(int)
    grid = np.zeros((int(80 / res) + 1, int(80 / res) + 1), bool)
    grid[ij[:, 0], ij[:, 1]] = True
    labels, n = ndimage.label(grid, structure=np.ones((3, 3)))
    comp = labels[ij[:, 0], ij[:, 1]]
    centroids = [obj[comp == k].mean(axis=0) for k in range(1, n + 1) if (comp == k).sum() >= 8]
    return np.array(centroids), obj


@pytest.mark.parametrize("frame", ["000000", "000001"])
def test_labels_match_lidar_clusters_through_the_rig(frame: str) -> None:
    rig = from_kitti_object(KITTI / "calib" / f"{frame}.txt")
    names, cam_centers = _labels(frame)
    lidar, obstacle_points = _lidar_objects(frame)
    assert len(lidar) > 10  # the sweep holds many more objects than the labelled ones
    rows, _, dist = associate_frames(cam_centers, "cam0", lidar, "velodyne", rig, max_distance_m=2.5)
    matched = dict(zip(rows.tolist(), dist.tolist(), strict=True))
    # Which labelled objects the LiDAR really saw: non-ground returns within 1.5 m of the label centre.
    T = rig.transform("velodyne", "cam0").matrix
    in_velo = cam_centers @ T[:3, :3].T + T[:3, 3]
    returns = [(np.linalg.norm(obstacle_points - c, axis=1) < 1.5).sum() for c in in_velo]
    seen = [k for k, n in enumerate(returns) if n >= 10]
    assert seen, (names, returns)  # frame 000000: the pedestrian; 000001: the cyclist (car and truck are far/occluded)
    for k in seen:
        assert k in matched and matched[k] < 1.0, (names[k], returns[k], matched)
    # without the calibration (clusters taken as if already in cam0) none of them lines up
    rows0, _, _ = associate_frames(cam_centers, "cam0", lidar, "cam0", rig, max_distance_m=2.5)
    assert not set(rows0.tolist()) & set(seen)


def test_bad_arguments() -> None:
    rig = from_kitti_object(KITTI / "calib" / "000001.txt")
    with pytest.raises(AssociationError):
        associate_frames(np.zeros((2, 2)), "cam0", np.zeros((1, 3)), "velodyne", rig)
    with pytest.raises(AssociationError):
        associate_frames(np.zeros((2, 3)), "cam0", np.zeros((1, 3)), "velodyne", rig, max_distance_m=0)
    rows, cols, dist = associate_frames(np.zeros((0, 3)), "cam0", np.zeros((4, 3)), "velodyne", rig)
    assert rows.size == cols.size == dist.size == 0
