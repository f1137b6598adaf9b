"""Fixtures shared across test folders."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A real pseudo-terminal: (master fd the test writes the device's bytes to, the slave's device path a
    serial source opens).  The slave end is closed here so that the source owns the only open handle."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    try:
        yield master, name
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
