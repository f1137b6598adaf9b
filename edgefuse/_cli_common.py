"""The command-line error handling every entry point shares (``edgefuse`` and ``python -m edgefuse_calibration.cli``),
and the signal handling long-running commands rely on to stop cleanly.

It sits on the lowest layer (it needs only :mod:`edgefuse.errors`), so that packages beside the core
(``edgefuse_calibration``) and every layer of the core (sinks, convert, replay) can use it without importing
the ``edgefuse.cli`` module.

Signals: inside :func:`handle_signals` (which :func:`run_command` sets up), SIGINT and SIGTERM raise
``KeyboardInterrupt`` (made by :func:`interrupted`, saying which signal) in the main thread, so a command
unwinds as it does on Ctrl-C: it closes its outputs, writes its report marked incomplete and exits with 128 +
the signal number (130, 143).  Code that must not be cut in the middle (writing one record of an output file,
finishing a file) runs inside :class:`deferred_signals`: a signal that arrives there is raised when the block
ends.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType, TracebackType

from edgefuse.errors import EdgefuseError, ValidationError

__all__ = [
    "EXIT_BUDGET",
    "EXIT_INPUT",
    "deferred_signals",
    "handle_signals",
    "interrupt_message",
    "interrupt_reason",
    "interrupt_signal",
    "interrupted",
    "one_line",
    "run_command",
    "signal_name",
]

#: exit status for bad input (one ``edgefuse: …`` line per problem)
EXIT_INPUT = 2
#: exit status for a latency budget breach (``--check-budgets``)
EXIT_BUDGET = 3

_HANDLED: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


def interrupted(signum: int, message: str | None = None) -> KeyboardInterrupt:
    """The ``KeyboardInterrupt`` raised for ``signum`` (see :func:`handle_signals`), optionally carrying the one
    line the CLI prints for it (what was stopped, where the partial outputs are).

    A plain ``KeyboardInterrupt`` (no class of its own): ``except Exception`` never swallows it, code written for
    Ctrl-C handles it, and it is no edgefuse *error*.  Read it back with :func:`interrupt_signal`,
    :func:`interrupt_reason` and :func:`interrupt_message`.
    """
    exc = KeyboardInterrupt(message or f"interrupted by {signal_name(signum)}")
    vars(exc).update(edgefuse_signum=int(signum), edgefuse_message=message)
    return exc


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def interrupt_signal(exc: BaseException) -> int:
    """The signal a ``KeyboardInterrupt`` stands for (a plain one, from Python's own handler, is SIGINT)."""
    return int(vars(exc).get("edgefuse_signum", signal.SIGINT))


def interrupt_reason(exc: BaseException) -> str:
    """``"interrupted by SIGTERM"``."""
    return f"interrupted by {signal_name(interrupt_signal(exc))}"


def interrupt_message(exc: BaseException) -> str:
    """The one line to print for an interruption: the message a command attached, else the reason."""
    message = vars(exc).get("edgefuse_message")
    return str(message) if message else interrupt_reason(exc)


class _State:
    depth = 0
    pending: int | None = None


_STATE = _State()


def _handler(signum: int, frame: FrameType | None) -> None:  # signal handler signature
    if _STATE.depth > 0:
        if _STATE.pending is None:
            _STATE.pending = signum
        return
    raise interrupted(signum)


class deferred_signals:  # noqa: N801 (used like a function: ``with deferred_signals():``)
    """Hold SIGINT/SIGTERM (as handled by :func:`handle_signals`) until the block ends, then raise
    :func:`interrupted` for the first one that came, unless the block is already ending with an exception.

    Nested blocks defer to the outermost.  Outside :func:`handle_signals` (default handlers) it changes nothing.
    """

    def __enter__(self) -> deferred_signals:
        _STATE.depth += 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _STATE.depth -= 1
        if _STATE.depth == 0 and _STATE.pending is not None:
            signum, _STATE.pending = _STATE.pending, None
            if exc_type is None:
                raise interrupted(signum)


@contextmanager
def handle_signals(signals: Sequence[int] = _HANDLED) -> Iterator[None]:
    """Within the block, ``signals`` raise :func:`interrupted` in the main thread (see the module doc);
    the previous handlers are restored afterwards.  Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        _STATE.pending = None


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func(args)`` with the CLI's error handling: bad input prints one ``edgefuse: …`` line
    per problem and returns 2 (``args.trace``: re-raise instead); SIGINT/SIGTERM (see :func:`handle_signals`)
    print one line and return 130/143.  Also used by the stand-alone ``python -m edgefuse_calibration.cli``."""
    try:
        with handle_signals():
            return int(args.func(args))
    except ValidationError as exc:
        if args.trace:
            raise
        for problem in exc.problems:
            print(f"edgefuse: {problem}", file=sys.stderr)
        return EXIT_INPUT
    except (EdgefuseError, OSError) as exc:
        # an OSError without errno is not a file-system error (a decompressor's, say): a bug to show
        unexplained = type(exc) is OSError and exc.errno is None
        if args.trace or unexplained:
            raise
        print(f"edgefuse: {one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt as exc:
        if args.trace:
            raise
        print(f"edgefuse: {interrupt_message(exc)}", file=sys.stderr)
        return 128 + interrupt_signal(exc)  # as a shell reports it: 130 SIGINT, 143 SIGTERM


def one_line(exc: BaseException) -> str:
    """One line for an exception: an OS error as ``reason: file``, anything else its first line."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
