"""Re-timed copies of a recording: the test and benchmark sets for fleet replay, made from real recordings.

Copy ``k`` holds the same serialised messages with every record time shifted by ``k × (span + gap)``
(header stamps are part of the message and stay as recorded), optionally cut to the first ``span_s``
seconds.  Written as ROS 2 MCAP bags with :class:`edgefuse.bag.BagWriter`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgefuse.errors import ReplayError
from edgefuse.time import NS_PER_S


def retimed_copies(src: str | Path, folder: str | Path, count: int, *, topics: Sequence[str] | None = None,
                   span_s: float | None = None, gap_s: float = 1.0, overwrite: bool = False) -> list[Path]:
    """Write ``count`` re-timed copies of ``src`` as ``folder/bag_000`` …; returns their paths."""
    from edgefuse.bag import BagWriter, open_bag
    from edgefuse.msgs.transcode import transcode

    if count < 1:
        raise ReplayError(f"count must be >= 1, got {count}")
    out = Path(folder)
    with open_bag(Path(src)) as reader:
        conns = {t: info.msgtype for t, info in reader.topics.items() if topics is None or t in topics}
        ros1 = reader.is_ros1
        first = None
        msgs = []
        for m in reader.messages(list(conns)):
            first = m.recv_ns if first is None else first
            if span_s is not None and m.recv_ns - first > span_s * NS_PER_S:
                break
            data = bytes(m.rawdata)
            if ros1:  # a ROS 1 bag: its serialisation, re-encoded as CDR for the ROS 2 copy
                data = bytes(transcode(data, m.msgtype, src_fmt="ros1", dst_fmt="cdr", src_typestore=reader.typestore))
            msgs.append((m.topic, m.recv_ns, data))
    if not msgs:
        raise ReplayError("no messages to copy", file=src)
    span = msgs[-1][1] - msgs[0][1]
    step = span + int(gap_s * NS_PER_S)
    paths = []
    for k in range(count):
        path = out / f"bag_{k:03d}"
        with BagWriter(path, overwrite=overwrite) as w:
            for topic, msgtype in conns.items():
                w.add_topic(topic, msgtype)
            for topic, recv, data in msgs:
                w.write_raw(topic, recv + k * step, data)
        paths.append(path)
    return paths
