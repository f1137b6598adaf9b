"""A truncated MCAP (what a crashed recorder leaves) is read from its intact chunks with a warning, shown
by ``edgefuse info`` as truncated, and ``edgefuse repair`` writes a valid, indexed copy with CRCs."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap.records import Chunk, Footer
from mcap.records import Message as McapMessage
from mcap.stream_reader import StreamReader, breakup_chunk
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from edgefuse.bag import BagIntegrityError, BagIntegrityWarning, bag_info, open_bag, repair_bag
from edgefuse.cli import main
from edgefuse.errors import BagError
from tests.bag import bag_samples as S  # noqa: N812  (short: used on most lines)

Message = tuple[str, int, bytes]


def _chunks(file: Path) -> list[tuple[int, int, list[Message]]]:
    """(start, end, messages) of every chunk record, from Foxglove's reader (independent of edgefuse)."""
    with file.open("rb") as f:
        summary = make_reader(f).get_summary()
        assert summary is not None
        f.seek(0)
        records = [r for r in StreamReader(f, emit_chunks=True).records if isinstance(r, Chunk)]
    assert len(records) == len(summary.chunk_indexes)
    out = []
    for index, chunk in zip(summary.chunk_indexes, records, strict=True):
        msgs = [(summary.channels[r.channel_id].topic, r.log_time, bytes(r.data))
                for r in breakup_chunk(chunk) if isinstance(r, McapMessage)]
        out.append((index.chunk_start_offset, index.chunk_start_offset + index.chunk_length, msgs))
    return out


def _sorted(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=lambda m: (m[1], m[0], m[2]))


def _truncated_copy(file: Path, cut: int, out: Path) -> Path:
    out.write_bytes(file.read_bytes()[:cut])
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_mcap_reads_every_intact_chunk_with_a_warning(tmp_path: Path, compress: bool) -> None:
    """Before: BagError 'File end magic is invalid' and nothing read."""
    file, _written = S.write_ros2(tmp_path / "full", n=60, compress=compress, chunk_size=500)
    chunks = _chunks(file)
    assert len(chunks) >= 5
    for k in (1, 3, len(chunks) - 1):
        start, end, _ = chunks[k]
        for cut in (start + 5, (start + end) // 2, end - 1):  # inside chunk k: chunks 0..k-1 are intact
            bad = _truncated_copy(file, cut, tmp_path / f"cut_{k}_{cut}.mcap")
            with pytest.warns(BagIntegrityWarning, match="truncated MCAP") as record:
                messages, problems = S.read_all(bad, quiet=False)
            expected = [m for _, _, msgs in chunks[:k] for m in msgs]
            assert _sorted(messages) == _sorted(expected)
            (problem,) = problems
            assert problem.kind == "truncated" and problem.offset == start
            text = str(record[0].message)
            assert f"recovered {len(expected)} messages" in text and f"stopped at byte {start} of {cut}" in text
            with pytest.raises(BagIntegrityError, match="truncated MCAP"), open_bag(bad, strict=True):
                pass


def test_crashed_rosbags_recorder_file_is_read(tmp_path: Path) -> None:
    """rosbags' own writer aborted mid-recording (no summary, no footer, no CRCs) and then cut."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    string = store.types["std_msgs/msg/String"]
    writer = Writer(tmp_path / "rec", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
    for i in range(3000):
        writer.write(conn, 10**9 + i * 10**6, store.serialize_cdr(string(data=f"hello {i} " * 60), conn.msgtype))
    writer.abort()
    (file,) = (tmp_path / "rec").glob("*.mcap")
    size = file.stat().st_size
    file.write_bytes(file.read_bytes()[: size - 1000])
    messages, problems = S.read_all(file)
    assert 0 < len(messages) < 3000
    assert [m[1] for m in messages] == [10**9 + i * 10**6 for i in range(len(messages))]
    assert problems[0].kind == "truncated"
    info = bag_info(file)
    assert info.crc == "partial" and info.recovered is not None
    assert info.recovered["messages"] == len(messages)


def test_info_says_truncated_and_shows_what_is_recoverable(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    file, _ = S.write_ros2(tmp_path / "full", n=60, chunk_size=500)
    chunks = _chunks(file)
    start, end, _ = chunks[4]
    intact = sum(len(msgs) for _, _, msgs in chunks[:4])
    folder = tmp_path / "crashed"
    folder.mkdir()
    _truncated_copy(file, (start + end) // 2, folder / "crashed.mcap")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"messages: {intact} " in out and f"problem: truncated MCAP: recovered {intact} messages" in out
    assert main(["info", "--json", str(folder / "crashed.mcap")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["message_count"] == intact and report["recovered"]["stop_offset"] == start
    assert main(["info", "--strict", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgefuse: ") and "truncated MCAP" in err and err.count("\n") == 1


def test_repair_writes_a_valid_indexed_mcap_with_crcs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, _ = S.write_ros2(tmp_path / "full", n=60, compress=True, chunk_size=500)
    chunks = _chunks(file)
    start, _end, _ = chunks[5]
    bad = _truncated_copy(file, start + 40, tmp_path / "crashed.mcap")
    out = tmp_path / "fixed.mcap"
    assert main(["repair", str(bad), str(out)]) == 0
    line = capsys.readouterr().out.strip()
    expected = [m for _, _, msgs in chunks[:5] for m in msgs]
    assert "\n" not in line and "truncated" in line
    assert f"{len(expected)} messages on 3 topic(s) from 5 of 5 chunk(s)" in line
    with out.open("rb") as f:  # Foxglove's reader: indexed, every CRC checked
        records = list(StreamReader(f, validate_crcs=True).records)
        assert any(isinstance(r, Footer) and r.summary_crc for r in records)
        f.seek(0)
        summary = make_reader(f, validate_crcs=True).get_summary()
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == len(expected) and summary.chunk_indexes
    messages, problems = S.read_all(out, verify="full")
    assert problems == [] and _sorted(messages) == _sorted(expected)
    info = bag_info(out)
    assert info.crc == "verified" and info.problems == []

    folder = tmp_path / "fixed_bag"  # no .mcap suffix: a bag folder holding fixed_bag.mcap
    result = repair_bag(bad, folder)
    assert result.out == folder / "fixed_bag.mcap" and result.message_count == len(expected) and result.truncated
    assert S.read_all(folder)[0] == messages


def test_repair_drops_a_chunk_failing_its_crc_and_keeps_the_rest(tmp_path: Path) -> None:
    file, written = S.write_ros2(tmp_path / "full", n=30, chunk_size=400)
    chunks = _chunks(file)
    _start, end, lost = chunks[1]
    data = bytearray(file.read_bytes())
    data[end - 3] ^= 0x40
    file.write_bytes(bytes(data))
    result = repair_bag(file, tmp_path / "fixed.mcap")
    assert (result.bad_chunks, result.lost, result.truncated) == (1, len(lost), False)
    messages, problems = S.read_all(result.out)
    assert problems == []
    assert _sorted(messages) == _sorted([m for m in written if m not in lost])


def test_repair_of_a_healthy_crcless_file_keeps_every_message(tmp_path: Path) -> None:
    """rosbags' writer (CRCs 0): repair gives the same messages, now with CRCs."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    string = store.types["std_msgs/msg/String"]
    with Writer(tmp_path / "plain", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = [writer.add_connection(t, "std_msgs/msg/String", typestore=store) for t in ("/a", "/b")]
        for i in range(50):
            writer.write(conns[i % 2], i, store.serialize_cdr(string(data=str(i)), "std_msgs/msg/String"))
    before = bag_info(tmp_path / "plain")
    assert before.crc == "absent" and before.problems == []
    result = repair_bag(tmp_path / "plain", tmp_path / "fixed.mcap")
    assert not result.truncated and result.bad_chunks == 0 and result.message_count == 50
    assert S.read_all(result.out)[0] == S.read_all(tmp_path / "plain")[0]
    assert bag_info(result.out).crc == "verified"


def test_repair_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, _ = S.write_ros2(tmp_path / "full", n=6)
    (tmp_path / "taken.mcap").write_bytes(b"")
    ros1 = tmp_path / "x.bag"
    S.write_ros1(ros1)
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not an mcap file at all" * 10)
    for args in ([str(file), str(tmp_path / "taken.mcap")], [str(ros1), str(tmp_path / "o.mcap")],
                 [str(garbage), str(tmp_path / "g.mcap")], [str(tmp_path / "missing.mcap"), str(tmp_path / "m.mcap")]):
        assert main(["repair", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("edgefuse: ") and err.count("\n") == 1
    assert not (tmp_path / "g.mcap").exists() and not (tmp_path / "o.mcap").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(BagError, match="ROS 1"):
        repair_bag(ros1, tmp_path / "o2.mcap")


def test_truncated_inside_the_summary_reads_everything(tmp_path: Path) -> None:
    """Cut after DataEnd: the data section is complete and verifies; every message is read."""
    file, written = S.write_ros2(tmp_path / "full", n=30, chunk_size=400)
    data = file.read_bytes()
    (summary_start,) = struct.unpack_from("<Q", data, len(data) - 37 + 9)
    bad = _truncated_copy(file, summary_start + 30, tmp_path / "cut.mcap")
    messages, problems = S.read_all(bad)
    assert messages == written
    assert [p.kind for p in problems] == ["truncated"] and "which verifies" in problems[0].message
