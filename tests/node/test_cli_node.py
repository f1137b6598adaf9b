"""``edgefuse node`` / ``play`` argument handling: bad input is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from edgefuse.cli import main
from edgefuse.errors import NodeError
from edgefuse.node.cli import parse_options, parse_remaps


def test_remaps_and_options_parse() -> None:
    assert parse_remaps(["/a:=/robot/a", " /b := /c "]) == {"/a": "/robot/a", "/b": "/c"}
    assert parse_options(["mode=client", "connect=tcp/127.0.0.1:7447", "connect=tcp/10.0.0.2:7447",
                          "domain-id=3", "multicast_scouting=false", "x=1.5"]) == {
        "mode": "client", "connect": ["tcp/127.0.0.1:7447", "tcp/10.0.0.2:7447"], "domain_id": 3,
        "multicast_scouting": False, "x": 1.5}


@pytest.mark.parametrize("bad", ["/a", ":=/b", "/a:="])
def test_bad_remaps_are_refused(bad: str) -> None:
    with pytest.raises(NodeError, match="FROM:=TO"):
        parse_remaps([bad])


@pytest.mark.parametrize(("argv", "message"), [
    (["node", "radiate_demo", "--remap", "nonsense"], "--remap takes FROM:=TO"),
    (["node", "radiate_demo", "-o", "novalue"], "-o takes KEY=VALUE"),
    (["node", "radiate_demo", "--transport", "carrier-pigeon"], "no transport 'carrier-pigeon'"),
    (["node", "radiate_demo", "--queue-depth", "0"], "--queue-depth must be >= 1"),
    (["node", "radiate_demo", "--duration", "-1"], "--duration must be > 0"),
    (["node", "no_such_pipeline"], "pipeline no_such_pipeline not found"),
    (["play", "edgefuse/data/demo", "--transport", "carrier-pigeon"], "no transport 'carrier-pigeon'"),
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
