"""Cameras and video files through OpenCV (V4L2 devices, GStreamer pipelines, files), MJPEG passed through."""

from edgefuse_drivers.camera.opencv import CameraSource, open_camera

__all__ = ["CameraSource", "open_camera"]
