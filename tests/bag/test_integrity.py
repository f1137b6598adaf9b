"""Bags that disagree with their own index (ROS 1) or fail a CRC check (MCAP) are reported, never read
silently short or altered: a warning and ``problems`` entry naming topics and counts, a problem in
``edgefuse info``, and an error with ``strict=True`` / ``info --strict``."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pytest
from mcap.records import Chunk, DataEnd, Footer
from mcap.stream_reader import StreamReader

from edgefuse.bag import BagIntegrityError, BagIntegrityWarning, IntegrityProblem, bag_info, open_bag
from edgefuse.cli import main
from edgefuse.convert.build_demo import build_demo
from edgefuse.convert.converter import bag_digests
from tests.bag import bag_samples as S  # noqa: N812  (short: used on most lines)

ROOT = Path(__file__).resolve().parents[2]
HUSKY = ROOT / "tests" / "data" / "husky_imu_gps_odom_bag" / "test1.bag"
LUMINAR = ROOT / "tests" / "data" / "luminar_pointcloud_bag" / "luminar_1frame.bag"
DEMO = ROOT / "edgefuse" / "data" / "demo"


def _edit(path: Path, offset: int, value: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] = value
    path.write_bytes(bytes(data))


def _field(path: Path, op: int, name: str, nth: int = 0) -> int:
    """File offset of header field ``name`` of the ``nth`` top-level record with ``op``."""
    records = [r for r in S.ros1_records(path.read_bytes()) if r.op == op]
    return int(records[nth].fields[name][0])


# ------------------------------------------------------------------------------------------ ROS 1
def test_chunk_info_count_edit_is_reported_not_read_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: one byte of a chunk-info header (its connection count 3 -> 1) made rosbags read
    5 of 15 messages, two topics at 0, with exit 0 and not a word."""
    bag = tmp_path / "one_chunk.bag"
    S.write_ros1(bag)
    _edit(bag, _field(bag, 6, "count"), 1)
    with pytest.warns(BagIntegrityWarning) as record:
        messages, problems = S.read_all(bag, quiet=False)
    assert len(messages) == 5  # what can be read through the damaged index …
    text = " | ".join(p.message for p in problems)
    assert "/odom (5)" in text and "/fix (5)" in text  # … and which topics lose how many
    assert {p.topic for p in problems if p.kind == "count"} == {"/odom", "/fix"}
    assert record  # the same problems went out as warnings
    with pytest.raises(BagIntegrityError) as exc, open_bag(bag, strict=True):
        pass
    assert "\n" not in str(exc.value) and exc.value.problems

    assert main(["info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "integrity: " in out and "problem: " in out and "/fix" in out
    assert main(["info", "--json", str(bag)]) == 0
    problems_json = json.loads(capsys.readouterr().out)["problems"]
    assert {p["topic"] for p in problems_json if p["kind"] == "count"} == {"/odom", "/fix"}
    assert main(["info", "--strict", str(bag)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgefuse: ") and err.count("\n") == 1


def test_index_data_connection_edit_losing_every_fix_is_reported(tmp_path: Path) -> None:
    """The issue's other case: the connection id of /fix's index-data record changed, so every /fix
    message vanished."""
    bag = tmp_path / "one_chunk.bag"
    written = S.write_ros1(bag)
    _edit(bag, _field(bag, 4, "conn", nth=2), 7)
    messages, problems = S.read_all(bag)
    assert not [m for m in messages if m[0] == "/fix"]
    assert len(messages) == len(written) - 5
    fix = [p for p in problems if p.topic == "/fix"]
    assert fix and fix[0].kind == "count" and fix[0].expected == 5 and fix[0].read == 0
    info = bag_info(bag)
    assert info.topics["/fix"].count == 0 and any("/fix (5)" in p.message for p in info.problems)


def _read_topic(bag: Path, topic: str) -> tuple[int, list[IntegrityProblem]]:
    with open_bag(bag) as reader:
        return sum(1 for _ in reader.messages(topics=topic)), list(reader.problems)


def test_husky_chunk_index_edit_names_fix_and_count(tmp_path: Path) -> None:
    """The real Husky bag, one byte changed: the first chunk's /fix index data now names connection 9."""
    bag = tmp_path / "husky.bag"
    bag.write_bytes(HUSKY.read_bytes())
    records = [r for r in S.ros1_records(bag.read_bytes()) if r.op == 4]
    fix = next(r for r in records if struct.unpack("<I", r.fields["conn"][1])[0] == 2)
    lost = struct.unpack("<I", fix.fields["count"][1])[0]
    _edit(bag, fix.fields["conn"][0], 9)
    with pytest.warns(BagIntegrityWarning) as record:
        n_fix, problems = _read_topic(bag, "/fix")
    assert n_fix == 989 - lost
    counts = {p.topic: (p.expected, p.read) for p in problems if p.kind == "count"}
    assert any("/fix" in str(w.message) for w in record)
    assert counts["/fix"] == (989, 989 - lost)
    with pytest.raises(BagIntegrityError, match="/fix"):
        bag_info(bag, strict=True)


def test_bag_header_chunk_count_edit_is_reported(tmp_path: Path) -> None:
    bag = tmp_path / "chunks.bag"
    S.write_ros1(bag, chunk_threshold=200)
    count_at = _field(bag, 3, "chunk_count")
    chunks = bag.read_bytes()[count_at]
    _edit(bag, count_at, chunks - 2)  # rosbags now reads only the first chunks
    messages, problems = S.read_all(bag)
    assert len(messages) < 15
    kinds = {p.kind for p in problems}
    assert {"header", "unindexed_chunk", "count"} <= kinds
    assert any(f"says {chunks - 2} chunks" in p.message for p in problems)


def test_message_length_edit_in_uncompressed_chunk_is_reported(tmp_path: Path) -> None:
    """A changed data-length field would hand out a message with a byte added; its chunk no longer tiles."""
    bag = tmp_path / "len.bag"
    S.write_ros1(bag)
    data = bag.read_bytes()
    first_payload = S.chunk_payload_ranges(data)[0][0]
    _edit(bag, first_payload - 4, data[first_payload - 4] + 1)  # the uint32 length before the payload
    with pytest.raises(BagIntegrityError, match=r"runs past|middle of a record"):
        S.read_all(bag, strict=True)
    _, problems = S.read_all(bag)
    assert any(p.kind == "chunk" for p in problems)


def test_connection_topic_edit_is_reported(tmp_path: Path) -> None:
    """The index section's connection record renamed /imu: its copy in the connection header (and in
    the chunk) still says /imu."""
    bag = tmp_path / "topic.bag"
    S.write_ros1(bag)
    records = [r for r in S.ros1_records(bag.read_bytes()) if r.op == 7]
    _edit(bag, records[0].fields["topic"][0] + 1, ord("x"))  # /imu -> /xmu in the record header only
    messages, problems = S.read_all(bag)
    assert {m[0] for m in messages} == {"/xmu", "/odom", "/fix"}
    assert any(p.kind == "connection" and "/xmu" in p.message for p in problems)
    full = bag_info(bag)
    assert any(p.kind == "connection" for p in full.problems)


def test_message_definition_edit_is_reported(tmp_path: Path) -> None:
    """A changed type definition would decode the same bytes as something else: its md5sum disagrees."""
    bag = tmp_path / "def.bag"
    S.write_ros1(bag)
    data = bytearray(bag.read_bytes())
    index_pos = struct.unpack("<Q", S.ros1_records(bytes(data))[0].fields["index_pos"][1])[0]
    at = data.index(b"string data", index_pos)
    data[at : at + 11] = b"string date"
    bag.write_bytes(bytes(data))
    _, problems = S.read_all(bag)
    assert any(p.kind == "definition" and "/imu" in p.message for p in problems)


@pytest.mark.parametrize("compression", [None, "bz2", "lz4"])
def test_clean_ros1_bags_have_no_problems(tmp_path: Path, compression: str | None) -> None:
    bag = tmp_path / "clean.bag"
    written = S.write_ros1(bag, n=40, compression=compression, chunk_threshold=300)
    for verify in ("index", "full"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", BagIntegrityWarning)
            messages, problems = S.read_all(bag, strict=True, verify=verify)
        assert problems == []
        assert sorted(messages, key=lambda m: (m[1], m[0])) == sorted(written, key=lambda m: (m[1], m[0]))


@pytest.mark.parametrize("path", [HUSKY, LUMINAR, DEMO])
def test_real_bags_have_no_problems(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", BagIntegrityWarning)
        info = bag_info(path, strict=True)
    assert info.problems == []
    assert info.crc == ("verified" if path == DEMO else None)


# ------------------------------------------------------------------------------------------ MCAP CRCs
def _mcap_records(path: Path) -> list[object]:
    with path.open("rb") as f:
        return list(StreamReader(f, skip_magic=False, emit_chunks=True, validate_crcs=True).records)


@pytest.mark.parametrize("compress", [False, True])
def test_written_mcap_has_all_crcs(tmp_path: Path, compress: bool) -> None:
    """Before: rosbags' MCAP storage wrote every CRC as 0 (Foxglove's reader checks them here)."""
    file, written = S.write_ros2(tmp_path / "bag", n=60, compress=compress, chunk_size=300)
    records = _mcap_records(file)
    chunks = [r for r in records if isinstance(r, Chunk)]
    assert len(chunks) > 3 and all(c.uncompressed_crc != 0 for c in chunks)
    assert {c.compression for c in chunks} == {"zstd" if compress else ""}
    (data_end,) = [r for r in records if isinstance(r, DataEnd)]
    (footer,) = [r for r in records if isinstance(r, Footer)]
    assert data_end.data_section_crc != 0 and footer.summary_crc != 0
    messages, problems = S.read_all(file.parent, verify="full")
    assert problems == [] and messages == written
    assert bag_info(file.parent).crc == "verified"


def test_bundled_demo_has_crcs_and_the_same_messages() -> None:
    records = _mcap_records(DEMO / "demo.mcap")
    chunks = [r for r in records if isinstance(r, Chunk)]
    assert chunks and all(c.uncompressed_crc != 0 and c.compression == "zstd" for c in chunks)
    assert all(r.data_section_crc != 0 for r in records if isinstance(r, DataEnd))
    expected = json.loads((DEMO / "digests.json").read_text())
    got = {t: {"count": d.count, "sha256": d.sha256} for t, d in bag_digests(DEMO).items()}
    assert got == expected


def test_demo_rebuild_path_writes_crcs(tmp_path: Path) -> None:
    """``python -m edgefuse.convert.build_demo`` writes through BagWriter: its MCAP carries CRCs too (run
    here on the RADIATE excerpt in tests/data)."""
    build_demo(ROOT / "tests" / "data" / "radiate_tiny_foggy", tmp_path / "demo")
    (file,) = (tmp_path / "demo").glob("*.mcap")
    records = _mcap_records(file)
    chunks = [r for r in records if isinstance(r, Chunk)]
    assert chunks and all(c.uncompressed_crc != 0 and c.compression == "zstd" for c in chunks)
    assert all(r.data_section_crc != 0 for r in records if isinstance(r, DataEnd))
    assert bag_info(tmp_path / "demo", strict=True).crc == "verified"


def _chunk_offsets(file: Path) -> list[tuple[int, int]]:
    """(start, end) file offsets of each chunk record's compressed data."""
    data = file.read_bytes()
    out = []
    pos = 8
    while pos < len(data):
        op = data[pos]
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        if op == 0x06:
            (clen,) = struct.unpack_from("<I", data, pos + 9 + 28)
            start = pos + 9 + 32 + clen + 8
            out.append((start, pos + 9 + length))
        if op == 0x0F:
            break
        pos += 9 + length
    return out


def test_altered_chunk_is_an_error_naming_the_chunk_and_topics(tmp_path: Path) -> None:
    """Before: CRC 0, so a changed byte decoded as altered data."""
    file, _written = S.write_ros2(tmp_path / "bag", n=30, chunk_size=400)
    chunks = _chunk_offsets(file)
    _start, end = chunks[1]
    data = bytearray(file.read_bytes())
    data[end - 3] ^= 0x20  # a payload byte of the second chunk's last message
    file.write_bytes(bytes(data))
    with open_bag(file.parent) as bag, pytest.raises(BagIntegrityError) as exc:
        list(bag.messages())
    text = str(exc.value)
    assert f"chunk 2 of {len(chunks)}" in text and "CRC" in text and "/imu" in text
    assert "\n" not in text


def test_damaged_summary_is_read_from_the_data_section(tmp_path: Path) -> None:
    file, written = S.write_ros2(tmp_path / "bag", n=30, chunk_size=400)
    data = bytearray(file.read_bytes())
    (summary_start,) = struct.unpack_from("<Q", data, len(data) - 37 + 9)
    data[summary_start + 20] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.warns(BagIntegrityWarning, match="index damaged"):
        messages, problems = S.read_all(file.parent, quiet=False)
    assert messages == written
    assert [p.kind for p in problems] == ["summary_crc"]


def test_full_verify_checks_the_data_section_crc(tmp_path: Path) -> None:
    """A channel record outside the chunks altered: indexed reading uses the summary's copy (intact),
    ``info`` reads the whole file and reports the data-section CRC."""
    file, written = S.write_ros2(tmp_path / "bag", n=9)
    data = bytearray(file.read_bytes())
    at = data.index(b"/odom")  # first copy: the channel record in the data section
    data[at + 1] = ord("x")
    file.write_bytes(bytes(data))
    messages, problems = S.read_all(file.parent)
    assert messages == written and problems == []
    info = bag_info(file.parent)
    assert [p.kind for p in info.problems] == ["data_crc"]
    assert main(["info", "--strict", str(file.parent)]) == 2


def test_replay_reports_a_bag_that_disagrees_with_its_index(tmp_path: Path) -> None:
    """The same one-byte Husky edit through ``edgefuse replay``: the report and the summary name /fix."""
    from edgefuse.replay import format_report, replay

    bag = tmp_path / "husky.bag"
    bag.write_bytes(HUSKY.read_bytes())
    records = [r for r in S.ros1_records(bag.read_bytes()) if r.op == 4]
    fix = next(r for r in records if struct.unpack("<I", r.fields["conn"][1])[0] == 2)
    _edit(bag, fix.fields["conn"][0], 9)
    pipeline = ROOT / "edgefuse" / "data" / "pipelines" / "husky_localization.yaml"
    with pytest.warns(BagIntegrityWarning):
        report = replay(pipeline, bag=bag, max_speed=True).report
    assert any("/fix" in p for p in report["bag_problems"])
    assert "BAG PROBLEM" in format_report(report) and "/fix" in format_report(report)
