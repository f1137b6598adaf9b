"""convert() creates its output atomically and removes only what it created (issue 10 item 5).

The race is made deterministic: another process (a real one, started with subprocess) creates the output
path at the critical moment, through a hook in the converter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefuse.convert import convert, converter
from edgefuse.errors import ConvertError

from .conftest import RADIATE_DATA

_CREATE = """\
import os, sys
os.mkdir(sys.argv[1])
if sys.argv[2] == "with_file":
    with open(os.path.join(sys.argv[1], "theirs.txt"), "w") as f:
        f.write("not yours")
"""


def _other_process_creates(path: Path, contents: str) -> None:
    subprocess.run([sys.executable, "-c", _CREATE, str(path), contents], check=True, timeout=60)


def _assert_theirs_untouched(out: Path, contents: str) -> None:
    assert out.is_dir()
    names = sorted(p.name for p in out.iterdir())
    assert names == (["theirs.txt"] if contents == "with_file" else [])
    if contents == "with_file":
        assert (out / "theirs.txt").read_text() == "not yours"


@pytest.mark.parametrize("contents", ["empty", "with_file"])
def test_output_created_while_reading_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    contents: str) -> None:
    """Between convert's existence check and its writing, another process creates OUT: convert refuses at
    the end and leaves that folder exactly as it is (it used to delete it)."""
    out = tmp_path / "bag"
    read = converter.read_dataset

    def read_then_race(*args: Any, **kwargs: Any) -> Any:
        plan = read(*args, **kwargs)
        _other_process_creates(out, contents)
        return plan

    monkeypatch.setattr(converter, "read_dataset", read_then_race)
    with pytest.raises(ConvertError, match="appeared while converting") as info:
        convert(RADIATE_DATA, out, streams=["velo_lidar"])
    assert info.value.file == str(out)
    _assert_theirs_untouched(out, contents)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]  # no temporary folder left


@pytest.mark.parametrize("noreplace", ["renameat2", "mkdir_fallback"])
@pytest.mark.parametrize("contents", ["empty", "with_file"])
def test_output_created_just_before_the_rename_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             contents: str, noreplace: str) -> None:
    """The critical moment itself: OUT appears after the bag is finished, right before it is moved into
    place.  A plain rename would silently replace an empty folder; the move refuses instead, with Linux's
    renameat2(RENAME_NOREPLACE) and with the portable fallback (exclusive mkdir, then rename over it)."""
    if noreplace == "renameat2" and converter._RENAMEAT2 is None:
        pytest.skip("no renameat2 in this C library")
    if noreplace == "mkdir_fallback":
        monkeypatch.setattr(converter, "_RENAMEAT2", None)
    out = tmp_path / "bag"
    rename = converter.rename_noreplace

    def race_then_rename(src: Path, dst: Path) -> None:
        _other_process_creates(dst, contents)
        rename(src, dst)

    monkeypatch.setattr(converter, "rename_noreplace", race_then_rename)
    with pytest.raises(ConvertError, match="appeared while converting"):
        convert(RADIATE_DATA, out, streams=["velo_lidar"])
    _assert_theirs_untouched(out, contents)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]


@pytest.mark.parametrize("noreplace", ["renameat2", "mkdir_fallback"])
def test_rename_noreplace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: str) -> None:
    if noreplace == "renameat2" and converter._RENAMEAT2 is None:
        pytest.skip("no renameat2 in this C library")
    if noreplace == "mkdir_fallback":
        monkeypatch.setattr(converter, "_RENAMEAT2", None)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("y")
    for target in ("empty", "file"):
        with pytest.raises(FileExistsError):
            converter.rename_noreplace(tmp_path / "src", tmp_path / target)
    assert (tmp_path / "file").read_text() == "y"
    assert not any((tmp_path / "empty").iterdir())
    converter.rename_noreplace(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst" / "f").read_text() == "x"
    assert not (tmp_path / "src").exists()


def test_success_leaves_only_the_bag(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "bag"
    report = convert(RADIATE_DATA, out, streams=["velo_lidar"])
    assert report.output == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["bag"]
    assert sorted(p.name for p in out.iterdir()) == ["bag.mcap", "convert_report.json", "metadata.yaml", "rig.yaml"]


def test_failure_removes_only_what_it_created(radiate_copy: Path, tmp_path: Path) -> None:
    """A conversion that fails part-way removes its temporary folder and the parent folders it made, and
    nothing else: a file someone put in a parent folder meanwhile keeps that folder."""
    png = radiate_copy / "data/radiate/tiny_foggy/zed_left/000022.png"
    png.write_bytes(png.read_bytes()[:200])  # truncated: the conversion fails on it
    out_root = tmp_path / "made"
    with pytest.raises(ConvertError, match="000022"):
        convert(radiate_copy, out_root / "deeper" / "bag", streams=["zed_left"])
    assert not out_root.exists()

    keep = tmp_path / "kept"
    original = converter._write_all

    def someone_writes_beside(*args: Any, **kwargs: Any) -> None:
        (keep / "deeper" / "theirs.txt").write_text("x")
        original(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(converter, "_write_all", someone_writes_beside)
    try:
        with pytest.raises(ConvertError, match="000022"):
            convert(radiate_copy, keep / "deeper" / "bag", streams=["zed_left"])
    finally:
        mp.undo()
    assert sorted(p.name for p in (keep / "deeper").iterdir()) == ["theirs.txt"]
