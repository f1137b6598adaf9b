"""The command-line error handling every entry point shares (``edgefuse`` and ``python -m edgefuse_calibration.cli``).

It sits on the lowest layer (it needs only :mod:`edgefuse.errors`), so that packages beside the core
(``edgefuse_calibration``) can use it without importing the ``edgefuse.cli`` module.
"""

from __future__ import annotations

import argparse
import sys

from edgefuse.errors import EdgefuseError, ValidationError

#: exit status for bad input (one ``edgefuse: …`` line per problem)
EXIT_INPUT = 2
#: exit status for a latency budget breach (``--check-budgets``)
EXIT_BUDGET = 3


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func(args)`` with the CLI's error handling: bad input prints one ``edgefuse: …`` line
    per problem and returns 2 (``args.trace``: re-raise instead); Ctrl-C returns 130.  Also used by the
    stand-alone ``python -m edgefuse_calibration.cli``."""
    try:
        return int(args.func(args))
    except ValidationError as exc:
        if args.trace:
            raise
        for problem in exc.problems:
            print(f"edgefuse: {problem}", file=sys.stderr)
        return EXIT_INPUT
    except (EdgefuseError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if args.trace:
            raise
        print(f"edgefuse: {one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("edgefuse: interrupted", file=sys.stderr)
        return 130


def one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
