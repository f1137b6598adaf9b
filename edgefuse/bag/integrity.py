"""Integrity of bags: problems found when a bag disagrees with its own index, fails a CRC check or is
truncated, and how they are reported.

A problem is never silent: :class:`~edgefuse.bag.BagReader` lists it in ``problems`` and emits a
:class:`BagIntegrityWarning` (one line each), ``edgefuse info`` prints it and puts it in its JSON,
and with ``strict=True`` (``edgefuse info --strict``) it is a :class:`BagIntegrityError` instead.

What each container lets edgefuse detect:

* **ROS 1** (no checksums): disagreements between the bag header, chunk-info records, index-data
  records and the chunks (counts per topic, positions, time ranges); uncompressed and LZ4 chunks whose
  records do not tile them along their index (a changed length field); connection records whose
  copies disagree (index section vs chunk) or whose md5sum does not match their definition; message
  counts read against those the index lists; and (``verify="full"``, done by ``edgefuse info``)
  every chunk's message records against its index entries.  Changed bytes *inside* a message's
  payload cannot be detected in uncompressed or LZ4 chunks: nothing in the format covers them
  (bz2 chunks carry bz2's block CRCs, so there they surface as errors).
* **MCAP**: the summary (index) CRC on every open, each chunk's CRC while reading (rosbags checks it
  when it is not 0; edgefuse names the chunk and topics on a mismatch), and (``verify="full"``)
  the data-section CRC and every chunk's CRC.  A truncated file (no footer) or one whose summary
  fails its CRC is read from its data section: every chunk that verifies is recovered, with a
  warning saying how much and where reading stopped.  Files written without CRCs (CRC fields 0)
  cannot be checked; ``edgefuse repair`` rewrites them with CRCs.
* **sqlite3** (no checksums): message counts read against those the bag lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BagIntegrityWarning", "IntegrityProblem", "summarize"]


class BagIntegrityWarning(UserWarning):
    """A bag disagrees with its own index, fails a CRC check or is truncated (read anyway)."""


@dataclass(frozen=True, slots=True)
class IntegrityProblem:
    """One integrity problem of a bag.

    Attributes:
        kind: short category: ``"count"`` (messages read or readable ≠ messages listed); ROS 1:
            ``"header"``, ``"chunk_info"``, ``"index"``, ``"unindexed_chunk"``, ``"unindexed_messages"``,
            ``"chunk"`` (its records do not tile it along its index), ``"connection"``, ``"definition"``,
            ``"damaged"`` (a record cannot be read); MCAP: ``"truncated"``, ``"summary_crc"``,
            ``"crc_mismatch"``, ``"chunk"`` (does not decompress or parse), ``"data_crc"``, ``"damaged"``.
        message: one line saying what is wrong, naming topics and counts where known.
        file: the file concerned.
        topic: the topic concerned, when there is one.
        expected / read: message counts (the index's and what was read) for ``"count"`` problems.
        offset: byte offset in ``file`` where known.
    """

    kind: str
    message: str
    file: str
    topic: str | None = None
    expected: int | None = None
    read: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def summarize(problems: list[IntegrityProblem]) -> str:
    """One line for an error message: the first problem and how many more there are."""
    if not problems:
        return "no integrity problem"
    more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return problems[0].message + more
