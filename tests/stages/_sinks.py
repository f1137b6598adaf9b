"""A sink that keeps what a pipeline writes, for stage tests that run whole pipelines."""

from __future__ import annotations

from typing import Any


class ListSink:
    def __init__(self) -> None:
        self.items: list[tuple[str, int, Any]] = []

    def open(self, outputs: Any) -> None:
        del outputs

    def write(self, topic: str, stamp_ns: int, payload: Any) -> None:
        self.items.append((topic, stamp_ns, payload))

    def close(self) -> None:
        pass
