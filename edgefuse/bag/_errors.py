"""Turning rosbags' and storage back-ends' exceptions into :class:`BagError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgefuse.errors import BagError, EdgefuseError


def one_line(err: BaseException) -> str:
    """First line of an exception's text, prefixed by its class name when that helps."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    name = type(err).__name__
    return f"{name}: {text}" if text else name


@contextmanager
def bag_errors(file: str | Path, what: str, *, topic: str | None = None) -> Iterator[None]:
    """Re-raise anything a rosbags call throws as BagError(``what``: reason), except OS errors with an
    errno (missing file, permissions) and edgefuse's own errors, which pass unchanged.

    rosbags and its back-ends (apsw/sqlite3, the MCAP parser, struct, zstd) raise many unrelated
    exception types for corrupt input, so this guards only calls into them.
    """
    try:
        yield
    except OSError as err:
        if err.errno is not None:  # a real OS error (missing file, permissions): unchanged
            raise
        # decompressors (bz2, lz4) report corrupt data as OSError without errno
        raise BagError(f"{what}: {one_line(err)}", file=file, topic=topic) from None
    except (EdgefuseError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise BagError(f"{what}: {one_line(err)}", file=file, topic=topic) from None
