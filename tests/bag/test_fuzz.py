"""Fuzzing the bag containers: byte flips, truncations and edits of chunk/record headers of small ROS 1
bags (uncompressed, bz2, LZ4), MCAP files (plain and zstd, several chunks, as BagWriter writes them)
and ROS 2 sqlite3 files, each read with ``open_bag(...).messages()``.

Every mutated file must end in one of:

* an edgefuse error (:class:`~edgefuse.errors.EdgefuseError`: BagError, BagIntegrityError);
* a reported problem (``BagReader.problems`` / a BagIntegrityWarning);
* exactly the original messages (topic, type, record time, bytes);
* *only where the container cannot know*: for ROS 1, exactly what the file reads as when only the
  flips that fall inside a message payload of an uncompressed chunk, or inside the compressed data of
  an LZ4 chunk, are applied (changed payload bytes: ROS 1 bags have no checksums; bz2 chunks carry
  bz2's CRCs and are caught; every other flip must then have changed nothing); for sqlite3 (no
  checksums either) any output — only the "no foreign exception" rule is checked.

Anything else is a silently wrong output and fails the test, as does any exception that is not an
EdgefuseError.  MCAP files carry CRCs (chunk, summary, data section), so for them nothing may differ
silently.  The default run mutates a few thousand times; ``-m slow`` runs ≥ 10⁵ mutations in total.
"""

from __future__ import annotations

import struct
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from edgefuse.bag import BagIntegrityWarning, open_bag
from edgefuse.errors import EdgefuseError
from tests.bag import bag_samples as S  # noqa: N812  (short: used on most lines)

TypedMessage = tuple[str, str, int, bytes]  # topic, type, record time, bytes
#: two topics: enough to catch a message read under the wrong topic, and each open stays cheap
TOPICS = ("/imu", "/fix")


@dataclass
class Container:
    """An intact container, what it reads as, and where its structure lies."""

    name: str
    suffix: str
    data: bytes
    reference: list[TypedMessage]
    #: byte ranges of record/chunk headers and indexes (targets of "header" edits)
    headers: list[tuple[int, int]]
    #: whether a payload-only change at this offset is undetectable by design (see module doc)
    payload_blind: Callable[[int], bool] = lambda _offset: False
    check_content: bool = True


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    foreign: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)


def _ros1_headers(data: bytes) -> list[tuple[int, int]]:
    out = []
    for rec in S.ros1_records(data):
        out.append((rec.pos, rec.data_start))
        if rec.op in {4, 6, 7}:  # index data, chunk info, connection: their data is index too
            out.append((rec.data_start, rec.data_end))
        if rec.op == 5 and rec.fields["compression"][1] == b"none":
            out.extend(_ros1_inner_headers(data, rec.data_start, rec.data_end))
    return out


def _ros1_inner_headers(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    while pos < end:
        (hlen,) = struct.unpack_from("<I", data, pos)
        (dlen,) = struct.unpack_from("<I", data, pos + 4 + hlen)
        out.append((pos, pos + 8 + hlen))
        pos += 8 + hlen + dlen
    return out


def _ros1(tmp: Path, compression: str | None) -> Container:
    path = tmp / f"src_{compression}.bag"
    S.write_ros1(path, n=12, compression=compression, chunk_threshold=250, topics=TOPICS)
    data = path.read_bytes()
    reference, problems = _read(path)
    assert problems == [] and len(reference) == 12
    blind: list[tuple[int, int]] = list(S.chunk_payload_ranges(data))
    blind += [(r.data_start, r.data_end) for r in S.ros1_records(data)
              if r.op == 5 and r.fields["compression"][1] == b"lz4"]

    def payload_blind(offset: int) -> bool:
        return any(a <= offset < b for a, b in blind)

    return Container(f"ros1-{compression or 'none'}", ".bag", data, reference, _ros1_headers(data), payload_blind)


def _mcap_headers(data: bytes) -> list[tuple[int, int]]:
    out = [(0, 8), (len(data) - 37, len(data))]
    pos = 8
    while pos + 9 <= len(data) - 8:
        op = data[pos]
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        if op == 0x06:
            (clen,) = struct.unpack_from("<I", data, pos + 9 + 28)
            out.append((pos, pos + 9 + 32 + clen + 8))  # through compressed_size
        elif op != 0x05:
            out.append((pos, pos + 9 + length))  # every other record is structure
        pos += 9 + length
    return out


def _mcap(tmp: Path, compress: bool) -> Container:
    file, written = S.write_ros2(tmp / f"src_mcap_{compress}", n=12, compress=compress, chunk_size=200, topics=TOPICS)
    data = file.read_bytes()
    reference, problems = _read(file)
    assert problems == [] and [(t, s, b) for t, _, s, b in reference] == written
    return Container(f"mcap-{'zstd' if compress else 'plain'}", ".mcap", data, reference, _mcap_headers(data))


def _sqlite(tmp: Path) -> Container:
    file, written = S.write_ros2(tmp / "src_sqlite", n=12, storage="sqlite3", topics=TOPICS)
    data = file.read_bytes()
    reference, problems = _read(file)
    assert problems == [] and [(t, s, b) for t, _, s, b in reference] == written
    return Container("sqlite3", ".db3", data, reference, [(0, min(len(data), 4096))], check_content=False)


Flip = tuple[int, int]  # (offset, xor mask); offset -1: a truncation


def _mutate(rng: np.random.Generator, c: Container) -> tuple[bytes, list[Flip]]:
    """A mutated copy of ``c.data`` and the flips applied (a truncation is ``[(-1, length)]``)."""
    kind = rng.choice(3, p=[0.45, 0.15, 0.40])
    data = bytearray(c.data)
    if kind == 1:
        cut = int(rng.integers(0, len(data)))
        return bytes(data[:cut]), [(-1, cut)]
    flips = []
    for _ in range(int(rng.integers(1, 3))):
        if kind == 0:
            at = int(rng.integers(0, len(data)))
        else:
            start, end = c.headers[int(rng.integers(0, len(c.headers)))]
            at = int(rng.integers(start, max(end, start + 1)))
        at = min(at, len(data) - 1)
        mask = int(rng.integers(1, 256))
        data[at] ^= mask
        flips.append((at, mask))
    return bytes(data), flips


def _read(path: Path) -> tuple[list[TypedMessage], list[object]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagIntegrityWarning)
        with open_bag(path) as bag:
            messages = [(m.topic, m.msgtype, m.recv_ns, bytes(m.rawdata)) for m in bag.messages()]
            return messages, list(bag.problems)


def _explained_by_payload(c: Container, flips: list[Flip], messages: list[TypedMessage], path: Path) -> bool:
    """Whether ``messages`` is exactly what the file reads as with only the flips that fall into payload
    bytes ROS 1 cannot check applied (the other flips then changed nothing)."""
    blind = [(o, m) for o, m in flips if o >= 0 and c.payload_blind(o)]
    if not blind:
        return False
    data = bytearray(c.data)
    for offset, mask in blind:
        data[offset] ^= mask
    path.write_bytes(bytes(data))
    try:
        expected, problems = _read(path)
    except EdgefuseError:
        return False
    return not problems and messages == expected and _structure(messages) == _structure(c.reference)


def _structure(messages: list[TypedMessage]) -> list[tuple[str, str, int, int]]:
    return [(t, ty, s, len(b)) for t, ty, s, b in messages]


def _fuzz(c: Container, tmp: Path, n: int, seed: int) -> Outcome:
    rng = np.random.default_rng(seed)
    path = tmp / f"mutated{c.suffix}"
    out = Outcome()
    for i in range(n):
        mutated, flips = _mutate(rng, c)
        offsets = [o for o, _ in flips]  # -1: truncated
        path.write_bytes(mutated)
        try:
            messages, problems = _read(path)
        except EdgefuseError:
            out.counts["edgefuse error"] += 1
            continue
        except Exception as exc:  # anything else is a finding
            out.counts["FOREIGN EXCEPTION"] += 1
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            out.foreign.append(f"#{i} offsets {offsets}: {type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})")
            continue
        if problems:
            out.counts["reported problem"] += 1
        elif messages == c.reference:
            out.counts["unchanged"] += 1
        elif not c.check_content:
            out.counts["sqlite3: not checkable"] += 1
        elif _explained_by_payload(c, flips, messages, tmp / f"payload_only{c.suffix}"):
            out.counts["payload bytes (no checksum in ROS 1)"] += 1
        else:
            out.counts["SILENTLY WRONG"] += 1
            out.silent.append(f"#{i} offsets {offsets}: read {len(messages)} messages")
    return out


_BUILDERS: dict[str, Callable[[Path], Container]] = {
    "ros1-none": lambda t: _ros1(t, None),
    "ros1-bz2": lambda t: _ros1(t, "bz2"),
    "ros1-lz4": lambda t: _ros1(t, "lz4"),
    "mcap-plain": lambda t: _mcap(t, False),
    "mcap-zstd": lambda t: _mcap(t, True),
    "sqlite3": _sqlite,
}


def _check(name: str, tmp_path: Path, n: int, seed: int) -> Outcome:
    container = _BUILDERS[name](tmp_path)
    outcome = _fuzz(container, tmp_path, n, seed)
    print(f"{name}: {n} mutations: {dict(outcome.counts)}")
    assert not outcome.foreign, "\n".join(outcome.foreign[:20])
    assert not outcome.silent, "\n".join(outcome.silent[:20])
    assert outcome.counts["edgefuse error"] + outcome.counts["reported problem"] > 0
    return outcome


# default run: 2,000 mutations in all
@pytest.mark.parametrize(("name", "n"), [("ros1-none", 500), ("ros1-bz2", 150), ("ros1-lz4", 150),
                                         ("mcap-plain", 500), ("mcap-zstd", 500), ("sqlite3", 200)])
def test_fuzz_bag_containers(tmp_path: Path, name: str, n: int) -> None:
    _check(name, tmp_path, n, seed=list(_BUILDERS).index(name) + 1)


# opt-in: 100,000 mutations in all
@pytest.mark.slow
@pytest.mark.parametrize(("name", "n"), [("ros1-none", 25_000), ("ros1-bz2", 10_000), ("ros1-lz4", 10_000),
                                         ("mcap-plain", 22_500), ("mcap-zstd", 22_500), ("sqlite3", 10_000)])
def test_fuzz_bag_containers_1e5(tmp_path: Path, name: str, n: int) -> None:
    _check(name, tmp_path, n, seed=1000 + list(_BUILDERS).index(name))
