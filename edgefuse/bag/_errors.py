"""Turning rosbags' and storage back-ends' exceptions into :class:`BagError`; the integrity error."""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgefuse.errors import BagError, EdgefuseError

if TYPE_CHECKING:
    from edgefuse.bag.integrity import IntegrityProblem


class BagIntegrityError(BagError):
    """A bag disagrees with its own index, fails a CRC check or is truncated, and the reader was asked to
    be strict (``strict=True``, ``edgefuse info --strict``) or the damage leaves nothing sound to read.

    Attributes:
        problems: every :class:`~edgefuse.bag.integrity.IntegrityProblem` found.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, topic: str | None = None,
                 problems: Sequence[IntegrityProblem] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message, file=file, topic=topic)


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
        # a real OS error (missing file, permissions) passes unchanged; EINVAL comes from a seek to an
        # offset read from a corrupt file
        if err.errno is not None and err.errno != errno.EINVAL:
            raise
        # decompressors (bz2, lz4) report corrupt data as OSError without errno
        raise BagError(f"{what}: {one_line(err)}", file=file, topic=topic) from None
    except (EdgefuseError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise BagError(f"{what}: {one_line(err)}", file=file, topic=topic) from None
