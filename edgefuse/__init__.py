"""edgefuse: an embedded sensor-fusion runtime (replay, synchronize, calibrate, fuse, time)."""

from __future__ import annotations

# Import config first: it sets Numba's cache directory before numba is imported anywhere.
from edgefuse import config as config
from edgefuse.envelope import Envelope
from edgefuse.errors import EdgefuseError

__version__ = "0.1.0"
__all__ = ["EdgefuseError", "Envelope", "__version__", "config"]
