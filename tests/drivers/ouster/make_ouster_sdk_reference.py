"""Regenerate tests/data/ouster_sdk_pcaps/ouster_sdk_1.0.1_reference.json with the official ouster-sdk.

Not a test (and not run by CI): ouster-sdk pins rosbags==0.9.23, which conflicts with edgefuse's
rosbags, so it is installed apart and only used to write reference values once::

    pip install --no-deps --target /tmp/ouster_ref ouster-sdk==1.0.1 more-itertools psutil prettytable
    PYTHONPATH=/tmp/ouster_ref python tests/drivers/make_ouster_sdk_reference.py

For each complete frame it records the frame id, the number of returns (range > 0), four column
timestamps, the sum of the returns' XYZ (sensor frame, metres, ``XYZLut(use_extrinsics=False)``) and
every 1999th return as (column, row, xyz, range_mm).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ouster.sdk import core, pcap

PCAPS = Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_pcaps" / "tests" / "pcaps"
OUT = PCAPS.parents[1] / "ouster_sdk_1.0.1_reference.json"
CAPTURES = {
    "OS-1-128_v2.3.0_1024x10_lb_n3.pcap": "OS-1-128_v2.3.0_1024x10.json",
    "OS-0-32-U1_v2.2.0_1024x10.pcap": "OS-0-32-U1_v2.2.0_1024x10.json",
    "OS-2-32-U0_v2.0.0_1024x10.pcap": "OS-2-32-U0_v2.0.0_1024x10.json",
}


def main() -> None:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, meta in CAPTURES.items():
        info = core.SensorInfo((PCAPS / meta).read_text())
        source = pcap.PcapScanSource(str(PCAPS / name), sensor_info=[info])
        lut = core.XYZLut(info, use_extrinsics=False)
        frames = []
        for item in source:
            scan = item[0]
            if scan is None:
                continue
            xyz = lut(scan)  # (H, W, 3) staggered, sensor frame, metres
            rng = scan.field(core.ChanField.RANGE)
            ok = rng > 0
            rows, cols = np.nonzero(ok)
            samples = [[int(v), int(u), [round(float(c), 9) for c in xyz[u, v]], int(rng[u, v])]
                       for u, v in list(zip(rows, cols, strict=True))[::1999]]
            frames.append({
                "frame_id": int(scan.frame_id), "n": int(ok.sum()),
                "ts": [int(x) for x in scan.timestamp[[0, 1, 511, 1023]]],
                "sum_xyz": [float(v) for v in xyz[ok].sum(0)], "abs_sum": float(np.abs(xyz[ok]).sum()),
                "samples": samples,
            })
        out[name] = frames
        print(name, [(f["frame_id"], f["n"]) for f in frames])
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
