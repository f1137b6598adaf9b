"""Exception hierarchy of edgefuse.

Every error edgefuse raises on purpose derives from :class:`EdgefuseError` and carries structured
fields (file, line, topic, stamp) so callers and the CLI can report them precisely.  OS errors
(``FileNotFoundError``, ``PermissionError``) are let through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class EdgefuseError(Exception):
    """Root of all edgefuse errors."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        topic: str | None = None,
        stamp_ns: int | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.topic = topic
        self.stamp_ns = stamp_ns
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        extra = []
        if self.topic is not None:
            extra.append(f"topic {self.topic}")
        if self.stamp_ns is not None:
            extra.append(f"stamp {self.stamp_ns} ns")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{where}{self.message}{tail}"


class ConfigError(EdgefuseError):
    """A configuration (pipeline YAML, runtime settings) is invalid."""


class CalibrationError(EdgefuseError):
    """A calibration file or transform is invalid or inconsistent."""


class MessageError(EdgefuseError):
    """A ROS message cannot be converted (malformed, inconsistent sizes, unknown type)."""


class ParameterError(ConfigError, ValueError, TypeError):
    """A function or stage parameter is of the wrong kind or out of range.

    Also a ``ValueError``/``TypeError``, so callers that catch those keep working.
    """


class InputDataError(MessageError, ValueError, TypeError):
    """An input array or payload handed to a public function has the wrong shape, dtype, layout or content.

    Also a ``ValueError``/``TypeError``, so callers that catch those keep working.
    """


class BagError(EdgefuseError):
    """A bag cannot be opened, read or written."""


class SyncError(EdgefuseError):
    """A synchronizer was misused (bad parameters, unknown input)."""


class PipelineError(EdgefuseError):
    """A pipeline failed while running."""


class ReplayError(EdgefuseError):
    """Replay failed (bad source, unwritable output)."""


class SourceError(EdgefuseError):
    """No source can open a path/URL, or a source was misused (see :mod:`edgefuse.sources`)."""


class ObjectsError(EdgefuseError):
    """Output-level fusion (association, box fusion, tracking) got input it cannot use."""


class EstimationError(EdgefuseError):
    """A state estimator (Kalman filters, localization) got a bad model, state or measurement."""


class DriverError(EdgefuseError):
    """A sensor driver failed (garbage bytes, lost sensor)."""


class TransportError(EdgefuseError):
    """A middleware (Zenoh, ROS 2, ROS 1) is not installed, cannot be reached or refused a topic."""


class NodeError(EdgefuseError):
    """The live node was misused (a lifecycle transition not allowed in its state) or cannot run."""


class ModelError(EdgefuseError):
    """An ONNX model could not be loaded or run."""


class ConvertError(EdgefuseError):
    """A dataset folder could not be converted to a bag."""


@dataclass(frozen=True)
class Problem:
    """One problem found while validating a file; many are collected and reported at once."""

    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class ValidationError(ConfigError):
    """Several problems found at once (``edgefuse validate`` prints each on its own line)."""

    problems: list[Problem] = field(default_factory=list)
    kind: str = "configuration"

    def __post_init__(self) -> None:
        first = self.problems[0] if self.problems else Problem("invalid")
        EdgefuseError.__init__(self, f"{len(self.problems)} problem(s) in {self.kind}; first: {first}")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems) or "invalid"
