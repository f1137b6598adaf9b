"""Sensor drivers (camera, LiDAR packets, radar, IMU/GNSS serial) as edgefuse Sources."""
