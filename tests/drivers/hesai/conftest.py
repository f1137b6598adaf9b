"""The XT32 excerpt (tests/data) and, when present, the full nebula recording (../shared/data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
EXCERPT = ROOT / "tests" / "data" / "nebula_radar_lidar_packets" / "hesai_xt32_excerpt" / "excerpt.npz"
FULL = next((p / "data" / "nebula_radar_lidar_packets" / "hesai_xt32"
             for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared")
             if (p / "data" / "nebula_radar_lidar_packets" / "hesai_xt32").is_dir()), None)


def load_excerpt() -> dict[str, Any]:
    with np.load(EXCERPT) as z:
        return {k: z[k] for k in z.files}


def excerpt_packets() -> list[bytes]:
    return [bytes(p) for p in load_excerpt()["packets"]]
