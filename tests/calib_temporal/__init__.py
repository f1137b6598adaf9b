"""Temporal calibration tests (edgefuse_calibration.temporal)."""
