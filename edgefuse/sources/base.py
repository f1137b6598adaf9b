"""The :class:`Source` seam and :func:`open_source`.

A source produces :class:`~edgefuse.envelope.Envelope` objects: a recording (bag), a live driver (UDP,
serial, camera) or a transport subscription.  Whatever it is, it

- says whether it is **live** (messages arrive in real time and cannot be re-read or paced) or a
  recording (the consumer may pace it by :attr:`Envelope.recv_ns`);
- says which clock its stamps are in: :attr:`Source.stamp_clock` for ``Envelope.stamp_ns`` (``"header"``:
  the acquisition stamp from the message header, i.e. the sensor's or driver's clock; ``"host"``: the
  host's receive time, for sensors that carry no stamp) and :attr:`Source.recv_clock` for
  ``Envelope.recv_ns`` (``"recorded"``: the bag's record time; ``"host_monotonic"``: live receive time);
- owns the per-sensor **time-offset correction**: :meth:`Source.set_time_offsets` takes topic → offset
  (``t_reference = t_sensor + offset``, from the rig) and every envelope it yields carries the corrected
  ``stamp_ns``, with the original in ``meta["header_stamp_ns"]`` when an offset was applied.  Nothing
  downstream changes stamps.

:func:`open_source` picks the implementation from a path or URL: a ROS 1 ``.bag``, a ROS 2 bag folder,
``.mcap`` or ``.db3`` file → :class:`~edgefuse.sources.bag.BagSource`.  Other kinds (packet captures, UDP,
serial, transports) register an opener with :func:`register_source` or through the
``edgefuse.sources`` entry-point group (``name = "module:opener"``; the opener takes the URL/path and
keyword options and returns a Source, and declares what it handles in its ``schemes``/``suffixes``
attributes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from edgefuse.envelope import Envelope
from edgefuse.errors import SourceError

StampClock = Literal["header", "host"]
RecvClock = Literal["recorded", "host_monotonic"]


@dataclass(frozen=True)
class SourceTopic:
    """What a source knows of one topic before reading it: ROS message type and, for recordings, the count."""

    topic: str
    msgtype: str
    count: int | None = None


@runtime_checkable
class Source(Protocol):
    """Produces envelopes (see the module documentation for the contract)."""

    live: bool
    stamp_clock: StampClock
    recv_clock: RecvClock

    def open(self) -> Source:
        """Open the underlying recording/device; returns self (also done by ``with``)."""
        ...

    def close(self) -> None:
        """Release the recording/device; idempotent."""
        ...

    def __enter__(self) -> Source: ...

    def __exit__(self, *exc: object) -> None: ...

    def topics(self) -> Mapping[str, SourceTopic]:
        """Topics this source can deliver (for a live source: those it is configured for)."""
        ...

    def set_time_offsets(self, offsets_ns: Mapping[str, int]) -> None:
        """Per-topic time offsets [ns] applied to every envelope's stamp from now on."""
        ...

    def envelopes(self, topics: Sequence[str] | None = None) -> Iterator[Envelope]:
        """Yield envelopes of ``topics`` (all when None), in arrival (recordings: record-time) order."""
        ...


@dataclass
class TimeOffsets:
    """The per-topic offset correction every source applies (a small helper sources share)."""

    offsets_ns: dict[str, int] = field(default_factory=dict)

    def set(self, offsets_ns: Mapping[str, int]) -> None:
        self.offsets_ns = {str(t): int(v) for t, v in offsets_ns.items() if int(v) != 0}

    def apply(self, env: Envelope) -> Envelope:
        """Correct ``env.stamp_ns`` in place (original kept in ``meta['header_stamp_ns']``) and return it."""
        offset = self.offsets_ns.get(env.topic)
        if offset:
            env.meta["header_stamp_ns"] = env.stamp_ns
            env.stamp_ns += offset
        return env


Opener = Callable[..., Source]


@dataclass(frozen=True)
class _Registration:
    opener: Opener
    schemes: tuple[str, ...]
    suffixes: tuple[str, ...]


_OPENERS: dict[str, _Registration] = {}
_PLUGINS_LOADED = False


def register_source(name: str, opener: Opener, *, schemes: Sequence[str] = (), suffixes: Sequence[str] = ()) -> None:
    """Make :func:`open_source` use ``opener`` for URLs with one of ``schemes`` (``udp``) or paths ending in
    one of ``suffixes`` (``.pcap``)."""
    _OPENERS[name] = _Registration(opener, tuple(s.lower() for s in schemes), tuple(s.lower() for s in suffixes))


def _load_plugins() -> None:
    global _PLUGINS_LOADED  # noqa: PLW0603
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group="edgefuse.sources"):
        if ep.name in _OPENERS:
            continue
        opener = ep.load()
        register_source(ep.name, opener, schemes=getattr(opener, "schemes", ()),
                        suffixes=getattr(opener, "suffixes", ()))


def open_source(url_or_path: str | Path | Sequence[str | Path], **options: Any) -> Source:
    """A :class:`Source` for ``url_or_path`` (not yet opened; use ``with``).

    Bags: a ROS 1 ``.bag`` (or a list of them, read as one recording), a ROS 2 bag folder, ``.mcap`` or
    ``.db3`` file.  ``scheme://…`` URLs and other file kinds go to the opener registered for them.

    Raises:
        SourceError: nothing can open it (the message lists what can).
        FileNotFoundError: a path that does not exist.
    """
    from edgefuse.sources.bag import BagSource

    if not isinstance(url_or_path, str | Path):
        return BagSource([Path(p) for p in url_or_path], **options)
    text = str(url_or_path)
    scheme = text.split("://", 1)[0].lower() if "://" in text else None
    _load_plugins()
    if scheme is not None and scheme != "file":
        for reg in _OPENERS.values():
            if scheme in reg.schemes:
                return reg.opener(text, **options)
        raise SourceError(f"no source for '{scheme}://' URLs (known: {_known()})", file=text)
    path = Path(text.split("://", 1)[1]) if scheme == "file" else Path(text)
    suffix = path.suffix.lower()
    for reg in _OPENERS.values():
        if suffix and suffix in reg.suffixes:
            return reg.opener(path, **options)
    if not path.exists():
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    if path.is_dir() or suffix in BagSource.suffixes:
        return BagSource(path, **options)
    raise SourceError(f"cannot tell what kind of recording this is (known: {_known()})", file=path)


def _known() -> str:
    from edgefuse.sources.bag import BagSource

    kinds = [f"bag ({', '.join(BagSource.suffixes)} or a ROS 2 bag folder)"]
    for name, reg in sorted(_OPENERS.items()):
        what = [f"{s}://" for s in reg.schemes] + list(reg.suffixes)
        kinds.append(f"{name} ({', '.join(what)})")
    return "; ".join(kinds)


def file_tool(path: str | Path) -> Any:
    """The ``edgefuse.file_tools`` plugin (an object with ``suffixes``, ``info_file(path, as_json=, **options)``
    and ``convert_file(path, out, overwrite=, **options)``) for a file that is not a bag but a driver's
    recording (a packet capture, an NMEA log …), or None.  ``edgefuse info``/``convert`` call it, so the core
    never imports the drivers package."""
    from edgefuse.sources.bag import BagSource

    p = Path(path)
    suffix = p.suffix.lower()
    if not suffix or suffix in BagSource.suffixes or p.is_dir():
        return None
    for ep in entry_points(group="edgefuse.file_tools"):
        tool = ep.load()
        if suffix in getattr(tool, "suffixes", ()):
            return tool
    return None
