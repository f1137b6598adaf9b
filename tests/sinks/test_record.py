"""RecordSink: written under <out>.partial and moved into place when complete; incomplete and failed outputs
stay clearly named; storage failures are one clear error after closing what can be closed; payloads that
cannot be serialised are counted."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefuse.bag import BagWriter, open_bag
from edgefuse.errors import ReplayError
from edgefuse.msgs.types import ImageData
from edgefuse.sinks import RecordSink


def partial_path(out: Path) -> Path:
    """Where a bag is written until it is complete: <out>.partial, beside it."""
    return out.with_name(out.name + ".partial")


def _image(stamp_ns: int, seed: int) -> ImageData:
    data = np.random.default_rng(seed).integers(0, 255, (4, 6), dtype=np.uint8)
    return ImageData(stamp_ns, "cam", "mono8", data)


def _record(sink: RecordSink, n: int) -> None:
    sink.open({"/img": "Image"})
    for k in range(n):
        sink.write("/img", 1000 + k, _image(1000 + k, k))


def test_written_under_partial_then_moved_into_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = RecordSink(out)
    _record(sink, 3)
    assert not out.exists() and partial_path(out).is_dir()  # while running: clearly not a result
    sink.close()
    assert sink.complete is True and sink.path == out
    assert not partial_path(out).exists()
    assert sorted(p.name for p in out.iterdir()) == ["metadata.yaml", "out.mcap"]
    with open_bag(out) as reader:
        assert reader.topics["/img"].count == 3


def test_incomplete_run_is_finished_but_left_at_partial(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = RecordSink(out)
    _record(sink, 4)
    sink.mark_incomplete("interrupted by SIGTERM")
    sink.close()
    partial = partial_path(out)
    assert sink.complete is False and sink.path == partial and not out.exists()
    with open_bag(partial) as reader:  # a finished, indexed bag
        assert reader.topics["/img"].count == 4
    # the next run replaces the leftover and is not blocked by it
    again = RecordSink(out)
    _record(again, 2)
    again.close()
    assert again.complete is True and not partial.exists()
    with open_bag(out) as reader:
        assert reader.topics["/img"].count == 2


def test_killed_run_leftover_is_replaced_but_foreign_folder_is_not(tmp_path: Path) -> None:
    out = tmp_path / "out"
    partial = partial_path(out)
    (partial / "out").mkdir(parents=True)  # what a run killed outright (SIGKILL) leaves
    (partial / "out" / "out.mcap").write_bytes(b"\x89MCAP0\r\n truncated")
    sink = RecordSink(out)
    _record(sink, 1)
    sink.close()
    assert sink.complete is True and not partial.exists()
    foreign = partial_path(tmp_path / "other")
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    with pytest.raises(ReplayError, match="not a partial bag edgefuse left"):
        RecordSink(tmp_path / "other")
    assert (foreign / "notes.txt").exists()


def test_overwrite_replaces_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = RecordSink(out)
    _record(first, 3)
    first.close()
    with pytest.raises(ReplayError, match=r"already exists.*--overwrite"):
        RecordSink(out)
    failed = RecordSink(out, overwrite=True)
    _record(failed, 1)
    failed.mark_incomplete("corrupt recording")
    failed.close()
    with open_bag(out) as reader:  # the old result is untouched by a run that did not complete
        assert reader.topics["/img"].count == 3
    second = RecordSink(out, overwrite=True)
    _record(second, 5)
    second.close()
    with open_bag(out) as reader:
        assert reader.topics["/img"].count == 5
    assert not partial_path(out).exists()


def _enospc(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    sink = RecordSink(out)
    _record(sink, 2)
    monkeypatch.setattr(BagWriter, "write_raw", _enospc)
    with pytest.raises(ReplayError, match="cannot write output: No space left on device"):
        sink.write("/img", 2000, _image(2000, 9))
    assert sink.storage_error == "No space left on device" and sink.path == partial_path(out)
    # the run goes on closing: later writes only digest, close does not raise again
    sink.write("/img", 2001, _image(2001, 10))
    sink.close()
    assert sink.complete is False and not out.exists()
    assert list(partial_path(out).glob("*.mcap"))  # what was written is kept, clearly named


def test_disk_full_when_finishing_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last chunk and the index are written on close: a full disk there fails the same way."""
    from rosbags.rosbag2 import Writer

    out = tmp_path / "out"
    sink = RecordSink(out)
    _record(sink, 2)
    monkeypatch.setattr(Writer, "close", _enospc)
    with pytest.raises(ReplayError, match="No space left on device"):
        sink.close()
    assert sink.complete is False and sink.path == partial_path(out) and not out.exists()
    sink.close()  # idempotent


def test_payload_that_cannot_be_serialised_is_counted(tmp_path: Path) -> None:
    sink = RecordSink(tmp_path / "out")
    sink.open({"/img": "Image"})
    sink.write("/img", 1, _image(1, 1))
    bad = ImageData(2, "cam", "mono8", np.zeros((2, 2, 2, 2), dtype=np.uint8))  # 4-D: no ROS image
    sink.write("/img", 2, bad)
    sink.write("/img", 3, "not a payload")
    sink.write("/img", 4, _image(4, 4))
    sink.close()
    assert sink.counts == {"/img": 2} and sink.write_errors == {"/img": 2}
    assert len(sink.first_write_errors) == 2 and sink.first_write_errors[0].startswith("/img (stamp 2 ns): ")
    with open_bag(tmp_path / "out") as reader:
        assert reader.topics["/img"].count == 2
