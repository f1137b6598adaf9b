"""Regenerate ``tests/data/nebula_radar_lidar_packets/hesai_xt32_excerpt/excerpt.npz`` from the full nebula
XT32 recording in ``../shared/data`` (run from the repository root):

    .venv/bin/python tests/drivers/hesai/make_excerpt.py

The excerpt: 20 packets around the start of the reference sweep (packets 1496–1515 of the bag) and the last
20 (1980–1999, with the cut that completes it), their receive/record stamps, and the rows of nebula's
reference PCD those packets produce: the first ``n_head`` and the last ``n_tail`` points of the sweep (the
split found with the full decode, which equals the whole PCD bit for bit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgefuse_drivers.hesai.xt32 import Xt32Decoder
from edgefuse_drivers.packet_bag import read_packets

ROOT = Path(__file__).resolve().parents[3]
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared") if p.is_dir()), ROOT.parent / "shared")
SRC = SHARED / "data" / "nebula_radar_lidar_packets" / "hesai_xt32"
OUT = ROOT / "tests" / "data" / "nebula_radar_lidar_packets" / "hesai_xt32_excerpt" / "excerpt.npz"
HEAD = range(1496, 1516)
TAIL = range(1980, 2000)


def read_pcd_xyz(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    start = raw.index(b"DATA binary\n") + len(b"DATA binary\n")
    return np.frombuffer(raw[start:], dtype=np.float32).reshape(-1, 3)


def main() -> None:
    packets = list(read_packets(SRC / "1673400677802009732"))
    ref = read_pcd_xyz(SRC / "1673400678101968885.pcd")
    dec = Xt32Decoder()
    counts: list[int] = []
    for p in packets:  # points each packet adds to the reference sweep (serial 3)
        pend = dec._pending.get(3)
        before = sum(len(c) for c in pend.chunks) if pend is not None else 0
        done = next((s for s in dec.add([p.data]) if s.serial == 3), None)
        pend = dec._pending.get(3)
        now = len(done.points) if done is not None else (sum(len(c) for c in pend.chunks) if pend else 0)
        counts.append(now - before)
        if done is not None:
            assert np.array_equal(np.stack([done.points[k] for k in "xyz"], 1), ref), "full decode != PCD"
            break
    n_head = sum(counts[HEAD.start:HEAD.stop])
    n_tail = sum(counts[TAIL.start:TAIL.stop])
    assert sum(counts) == len(ref) and sum(counts[:HEAD.start]) == 0
    idx = list(HEAD) + list(TAIL)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        packets=np.stack([np.frombuffer(packets[i].data, dtype=np.uint8) for i in idx]),
        packet_index=np.array(idx, dtype=np.int64),
        recv_ns=np.array([packets[i].recv_ns for i in idx], dtype=np.int64),
        record_ns=np.array([packets[i].record_ns for i in idx], dtype=np.int64),
        ref_head=ref[:n_head].copy(), ref_tail=ref[len(ref) - n_tail:].copy(),
        ref_count=np.int64(len(ref)),
    )
    print(f"{OUT}: {OUT.stat().st_size} bytes, head {n_head} + tail {n_tail} of {len(ref)} reference points")


if __name__ == "__main__":
    main()
