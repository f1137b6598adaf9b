"""The managed-node state machine: ROS 2's transitions, refusals and failure paths."""

from __future__ import annotations

import pytest

from edgefuse.errors import NodeError
from edgefuse.node.lifecycle import ACTIVE, FINALIZED, INACTIVE, UNCONFIGURED, Lifecycle, TransitionEvent


class Recorder(Lifecycle):
    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail = fail

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail:
            raise OSError(f"{name} failed")

    def on_configure(self) -> None:
        self._call("configure")

    def on_activate(self) -> None:
        self._call("activate")

    def on_deactivate(self) -> None:
        self._call("deactivate")

    def on_cleanup(self) -> None:
        self._call("cleanup")

    def on_shutdown(self, previous: int) -> None:
        self._call(f"shutdown from {previous}")

    def on_error(self, previous: int) -> None:
        self._call("error")


def test_the_primary_path_and_events() -> None:
    node = Recorder()
    events: list[TransitionEvent] = []
    node.listeners.append(events.append)
    assert node.state == UNCONFIGURED
    node.configure()
    assert node.state == INACTIVE
    node.activate()
    assert node.state == ACTIVE
    node.deactivate()
    node.cleanup()
    assert node.state == UNCONFIGURED
    node.shutdown()
    assert node.state == FINALIZED
    node.shutdown()  # a second shutdown does nothing
    assert node.calls == ["configure", "activate", "deactivate", "cleanup", f"shutdown from {UNCONFIGURED}"]
    assert [e.text for e in events] == [
        "configure: unconfigured -> inactive", "activate: inactive -> active", "deactivate: active -> inactive",
        "cleanup: inactive -> unconfigured", "shutdown: unconfigured -> finalized"]


@pytest.mark.parametrize(("steps", "bad"), [((), "activate"), ((), "deactivate"), (("configure",), "configure"),
                                            (("configure", "activate"), "cleanup")])
def test_transitions_not_allowed_are_refused(steps: tuple[str, ...], bad: str) -> None:
    node = Recorder()
    for step in steps:
        getattr(node, step)()
    before = node.state
    with pytest.raises(NodeError, match=f"cannot {bad}"):
        getattr(node, bad)()
    assert node.state == before


def test_a_failed_configure_stays_unconfigured() -> None:
    node = Recorder(fail="configure")
    with pytest.raises(OSError, match="configure failed"):
        node.configure()
    assert node.state == UNCONFIGURED
    assert node.history[-1].ok is False


def test_a_failed_activate_goes_through_errorprocessing_to_unconfigured() -> None:
    node = Recorder(fail="activate")
    node.configure()
    with pytest.raises(OSError, match="activate failed"):
        node.activate()
    assert node.state == UNCONFIGURED
    assert node.calls[-1] == "error"


def test_shutdown_from_active_always_finalizes() -> None:
    node = Recorder(fail=f"shutdown from {ACTIVE}")
    node.configure()
    node.activate()
    with pytest.raises(OSError, match="shutdown from"):
        node.shutdown()
    assert node.state == FINALIZED
    with pytest.raises(NodeError):
        node.configure()
