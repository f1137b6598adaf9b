"""Calibration estimation tools (temporal and spatial) that write edgefuse rig files."""
