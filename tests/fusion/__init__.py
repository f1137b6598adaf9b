"""Tests of edgefuse.fusion."""
