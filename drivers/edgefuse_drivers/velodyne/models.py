"""Velodyne sensor models: laser angles, offsets and firing timing, from the manufacturer's user manuals.

Sources (Velodyne LiDAR, public user manuals; values typed from their tables, degrees and mm):

- **VLP-16** — *VLP-16 User Manual* 63-9243 Rev. E, "Laser ID, vertical angle and vertical correction"
  table and the "Firing timing" section: 16 lasers at -15°…+15° in 2° steps (interleaved), vertical
  offsets 11.2 … -11.2 mm, one firing of all 16 lasers every 55.296 µs, lasers 2.304 µs apart, two firing
  sequences per data block (block duration 110.592 µs), distance unit 2 mm.
- **VLP-32C** — *VLP-32C User Manual* 63-9325 Rev. B, "Laser ID, vertical angle and azimuth offset"
  table and timing section: 32 lasers, azimuth offsets ±1.4° / ±4.2°, one firing sequence per block
  (55.296 µs), lasers fired two at a time 2.304 µs apart, distance unit 4 mm.
- **HDL-32E** — *HDL-32E User's Manual* 63-9113, vertical angle table (-30.67° … +10.67° interleaved) and
  timing: one firing sequence of 32 lasers per block, 46.080 µs per sequence, lasers 1.152 µs apart,
  distance unit 2 mm.

Return-mode byte (offset 1204): 0x37 strongest, 0x38 last, 0x39 dual (pairs of blocks: even = last return,
odd = strongest, or second-strongest when the last return is the strongest).  Product byte (offset 1205):
0x21 HDL-32E, 0x22 VLP-16, 0x28 VLP-32C (some VLP-16 firmware writes 0x21).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edgefuse.errors import DriverError

__all__ = [
    "MODELS",
    "PRODUCT_IDS",
    "RETURN_DUAL",
    "RETURN_LAST",
    "RETURN_STRONGEST",
    "ModelName",
    "VelodyneModel",
    "model",
]

ModelName = Literal["VLP16", "VLP32C", "HDL32E"]
RETURN_STRONGEST = 0x37
RETURN_LAST = 0x38
RETURN_DUAL = 0x39


@dataclass(frozen=True)
class VelodyneModel:
    """One sensor model's geometry and timing (everything the decoder needs)."""

    name: ModelName
    #: vertical angle of each laser id [deg]
    vertical_deg: tuple[float, ...]
    #: azimuth offset of each laser id [deg] (added to the block azimuth)
    azimuth_offset_deg: tuple[float, ...]
    #: vertical offset of each laser's origin [m] (added to z)
    vertical_offset_m: tuple[float, ...]
    distance_unit_m: float
    #: firing sequences per data block (VLP-16: 2) and lasers per sequence
    sequences_per_block: int
    #: time between firing sequences [µs] and between consecutive firings in a sequence [µs]
    sequence_us: float
    firing_us: float
    #: lasers fired together (VLP-32C: 2) — consecutive laser ids share a firing time
    fired_together: int
    #: product-id bytes this model writes
    product_ids: tuple[int, ...]

    @property
    def lasers(self) -> int:
        return len(self.vertical_deg)

    @property
    def block_us(self) -> float:
        """Time between the azimuths of two consecutive (single-return) blocks [µs]."""
        return self.sequence_us * self.sequences_per_block

    @property
    def packet_us(self) -> float:
        """Time one single-return packet covers [µs] (12 blocks)."""
        return 12 * self.block_us

    def ring(self) -> npt.NDArray[np.uint16]:
        """Ring of each laser id: 0 = lowest vertical angle."""
        order = np.argsort(np.asarray(self.vertical_deg), kind="stable")
        ring = np.empty(self.lasers, np.uint16)
        ring[order] = np.arange(self.lasers, dtype=np.uint16)
        return ring

    def slot_time_us(self) -> npt.NDArray[np.float64]:
        """Firing time of each of a block's 32 data slots after the block's first firing [µs]."""
        slot = np.arange(32)
        per_seq = 32 // self.sequences_per_block
        seq, laser = slot // per_seq, slot % per_seq
        return np.asarray(seq * self.sequence_us + (laser // self.fired_together) * self.firing_us, np.float64)

    def slot_laser(self) -> npt.NDArray[np.int64]:
        """Laser id of each of a block's 32 data slots."""
        return np.arange(32, dtype=np.int64) % self.lasers


_VLP16_VERT = (-15.0, 1.0, -13.0, 3.0, -11.0, 5.0, -9.0, 7.0, -7.0, 9.0, -5.0, 11.0, -3.0, 13.0, -1.0, 15.0)
_VLP16_VOFF_MM = (11.2, -0.7, 9.7, -2.2, 8.1, -3.7, 6.6, -5.1, 5.1, -6.6, 3.7, -8.1, 2.2, -9.7, 0.7, -11.2)
_VLP32C_VERT = (
    -25.0, -1.0, -1.667, -15.639, -11.31, 0.0, -0.667, -8.843, -7.254, 0.333, -0.333, -6.148, -5.333, 1.333,
    0.667, -4.0, -4.667, 1.667, 1.0, -3.667, -3.333, 3.333, 2.333, -2.667, -3.0, 7.0, 4.667, -2.333, -2.0,
    15.0, 10.333, -1.333,
)
_VLP32C_AZOFF = (
    1.4, -4.2, 1.4, -1.4, 1.4, -1.4, 4.2, -1.4, 1.4, -4.2, 1.4, -1.4, 4.2, -1.4, 4.2, -1.4, 1.4, -4.2, 1.4,
    -4.2, 4.2, -1.4, 1.4, -1.4, 1.4, -1.4, 1.4, -4.2, 4.2, -1.4, 1.4, -1.4,
)
_HDL32E_VERT = (
    -30.67, -9.33, -29.33, -8.0, -28.0, -6.67, -26.67, -5.33, -25.33, -4.0, -24.0, -2.67, -22.67, -1.33,
    -21.33, 0.0, -20.0, 1.33, -18.67, 2.67, -17.33, 4.0, -16.0, 5.33, -14.67, 6.67, -13.33, 8.0, -12.0, 9.33,
    -10.67, 10.67,
)

MODELS: dict[str, VelodyneModel] = {
    "VLP16": VelodyneModel("VLP16", _VLP16_VERT, (0.0,) * 16, tuple(v / 1000 for v in _VLP16_VOFF_MM), 0.002,
                           2, 55.296, 2.304, 1, (0x22, 0x21)),
    "VLP32C": VelodyneModel("VLP32C", _VLP32C_VERT, _VLP32C_AZOFF, (0.0,) * 32, 0.004, 1, 55.296, 2.304, 2,
                            (0x28,)),
    "HDL32E": VelodyneModel("HDL32E", _HDL32E_VERT, (0.0,) * 32, (0.0,) * 32, 0.002, 1, 46.080, 1.152, 1,
                            (0x21, 0x00)),
}
#: product-id byte → model name (0x21 is ambiguous: HDL-32E, or old VLP-16 firmware; see detect_model)
PRODUCT_IDS = {0x22: "VLP16", 0x28: "VLP32C", 0x21: "HDL32E"}
_ALIASES = {"VLP16": "VLP16", "VLP-16": "VLP16", "PUCK": "VLP16", "VLP32C": "VLP32C", "VLP-32C": "VLP32C",
            "VLP32": "VLP32C", "HDL32E": "HDL32E", "HDL-32E": "HDL32E", "HDL32": "HDL32E"}


def model(name: str | VelodyneModel) -> VelodyneModel:
    """The :class:`VelodyneModel` called ``name`` (``VLP16``, ``VLP32C``, ``HDL32E``; dashes and case ignored).

    Raises:
        DriverError: unknown model.
    """
    if isinstance(name, VelodyneModel):
        return name
    key = _ALIASES.get(str(name).upper().replace("_", "-")) or _ALIASES.get(str(name).upper().replace("-", ""))
    if key is None:
        raise DriverError(f"unknown Velodyne model {name!r} (known: VLP16, VLP32C, HDL32E)")
    return MODELS[key]
