"""Velodyne LiDAR driver (VLP-16, VLP-32C, HDL-32E): packets → points → sweeps, captures and live UDP."""
