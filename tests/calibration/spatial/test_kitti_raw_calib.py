"""The rig importer on the OFFICIAL KITTI raw calibration files of 2011_09_26 (tests/data/kitti_raw_2011_09_26_calib):
the LiDAR-camera extrinsic a calibration would be compared with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefuse.rig import from_kitti_raw

D = Path(__file__).resolve().parents[2] / "data" / "kitti_raw_2011_09_26_calib"


def test_official_kitti_raw_files_import_with_the_published_extrinsic() -> None:
    rig = from_kitti_raw(D / "calib_cam_to_cam.txt", D / "calib_velo_to_cam.txt", D / "calib_imu_to_velo.txt")
    T = rig.transform("cam0_unrect", "velodyne")  # p_cam00 = R p_velo + T, as in calib_velo_to_cam.txt
    assert np.allclose(T.t, [-4.069766e-03, -7.631618e-02, -2.717806e-01], atol=1e-9)
    R = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, 1.480249e-02, 7.280733e-04, -9.998902e-01,
                  9.998621e-01, 7.523790e-03, 1.480755e-02]).reshape(3, 3)
    assert np.allclose(T.R, R, atol=1e-5)  # the file's R, made orthonormal
    # LiDAR forward (x) is the camera's optical axis (z); the rectified colour camera sits ~6 cm to its side
    assert T.R[2, 0] > 0.999
    cam2 = rig.camera("cam2")
    assert (cam2.width, cam2.height) == (1242, 375)
    p = np.array([[10.0, 0.0, -1.0]])  # 10 m ahead of the LiDAR, 1 m below it
    uv, ok = cam2.project(rig.transform("cam2", "velodyne").apply(p))
    assert ok.all() and 0 < uv[0, 0] < 1242 and 0 < uv[0, 1] < 375
    assert rig.transform("velodyne", "imu").t[0] < 0  # the IMU is behind the LiDAR
