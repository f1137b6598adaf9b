"""The ROS 2 managed-node (lifecycle) state machine, in plain Python so every transport has it.

Primary states: ``unconfigured`` → (configure) → ``inactive`` → (activate) → ``active``;
``active`` → (deactivate) → ``inactive`` → (cleanup) → ``unconfigured``; ``shutdown`` from any of the
three → ``finalized``.  Transitions go through the transition states of ROS 2's design
(``configuring``, ``activating``, ``deactivating``, ``cleaningup``, ``shuttingdown``); a callback that
raises leaves the node in the state it started from (``on_configure`` failing: ``unconfigured``), except
during shutdown, which always ends ``finalized``.  As in rclcpp_lifecycle, an error while
``activating``/``deactivating`` goes through ``errorprocessing`` back to ``unconfigured`` after cleaning up.

Ids follow lifecycle_msgs/msg/State and Transition, so transition events can be published as
``lifecycle_msgs/msg/TransitionEvent``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from edgefuse.errors import NodeError

# lifecycle_msgs/msg/State ids
UNKNOWN, UNCONFIGURED, INACTIVE, ACTIVE, FINALIZED = 0, 1, 2, 3, 4
CONFIGURING, CLEANINGUP, SHUTTINGDOWN, ACTIVATING, DEACTIVATING, ERRORPROCESSING = 10, 11, 12, 13, 14, 15

STATE_NAMES = {
    UNKNOWN: "unknown", UNCONFIGURED: "unconfigured", INACTIVE: "inactive", ACTIVE: "active",
    FINALIZED: "finalized", CONFIGURING: "configuring", CLEANINGUP: "cleaningup",
    SHUTTINGDOWN: "shuttingdown", ACTIVATING: "activating", DEACTIVATING: "deactivating",
    ERRORPROCESSING: "errorprocessing",
}

# lifecycle_msgs/msg/Transition ids
TRANSITION_IDS = {"configure": 1, "cleanup": 2, "activate": 3, "deactivate": 4, "shutdown": 5}


@dataclass(frozen=True)
class TransitionEvent:
    """One transition that happened (mirrors lifecycle_msgs/msg/TransitionEvent)."""

    transition: str
    start: int
    goal: int
    ok: bool
    error: str | None = None

    @property
    def text(self) -> str:
        arrow = f"{STATE_NAMES[self.start]} -> {STATE_NAMES[self.goal]}"
        return f"{self.transition}: {arrow}" + ("" if self.ok else f" (failed: {self.error})")


class Lifecycle:
    """The state machine; subclasses (or the owner) provide ``on_configure`` … ``on_shutdown``.

    Each ``on_*`` callback runs with the lifecycle lock held (transitions never overlap); it signals
    failure by raising.  ``listeners`` get every :class:`TransitionEvent`.
    """

    #: transition → (allowed start states, transition state, goal on success, state on failure)
    _TABLE: ClassVar[dict[str, tuple[tuple[int, ...], int, int, int]]] = {
        "configure": ((UNCONFIGURED,), CONFIGURING, INACTIVE, UNCONFIGURED),
        "activate": ((INACTIVE,), ACTIVATING, ACTIVE, INACTIVE),
        "deactivate": ((ACTIVE,), DEACTIVATING, INACTIVE, ACTIVE),
        "cleanup": ((INACTIVE,), CLEANINGUP, UNCONFIGURED, INACTIVE),
        "shutdown": ((UNCONFIGURED, INACTIVE, ACTIVE), SHUTTINGDOWN, FINALIZED, FINALIZED),
    }

    def __init__(self) -> None:
        self._state = UNCONFIGURED
        self._lock = threading.RLock()
        self.history: list[TransitionEvent] = []
        self.listeners: list[Callable[[TransitionEvent], None]] = []

    @property
    def state(self) -> int:
        return self._state

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self._state]

    def configure(self) -> None:
        self._transition("configure")

    def activate(self) -> None:
        self._transition("activate")

    def deactivate(self) -> None:
        self._transition("deactivate")

    def cleanup(self) -> None:
        self._transition("cleanup")

    def shutdown(self) -> None:
        """From any primary state but ``finalized`` (a second call does nothing)."""
        with self._lock:
            if self._state == FINALIZED:
                return
            self._transition("shutdown")

    # callbacks (override)
    def on_configure(self) -> None: ...

    def on_activate(self) -> None: ...

    def on_deactivate(self) -> None: ...

    def on_cleanup(self) -> None: ...

    def on_shutdown(self, previous: int) -> None: ...

    def on_error(self, previous: int) -> None:
        """Called in ``errorprocessing`` after a failed activate/deactivate; must release everything."""

    def _transition(self, name: str) -> None:
        allowed, during, goal, on_failure = self._TABLE[name]
        with self._lock:
            start = self._state
            if start not in allowed:
                raise NodeError(f"cannot {name} a node that is {STATE_NAMES[start]} "
                                f"(allowed from: {', '.join(STATE_NAMES[s] for s in allowed)})")
            self._state = during
            try:
                if name == "shutdown":
                    self.on_shutdown(start)
                else:
                    getattr(self, f"on_{name}")()
            except BaseException as exc:
                error = str(exc) or type(exc).__name__
                if name in {"activate", "deactivate"} and isinstance(exc, Exception):
                    self._state = ERRORPROCESSING
                    try:
                        self.on_error(start)
                    finally:
                        self._state = UNCONFIGURED
                else:
                    self._state = on_failure
                self._emit(TransitionEvent(name, start, self._state, False, error))
                raise
            self._state = goal
            self._emit(TransitionEvent(name, start, goal, True))

    def _emit(self, event: TransitionEvent) -> None:
        self.history.append(event)
        for listener in list(self.listeners):
            listener(event)
