"""YAML loading that keeps line numbers, and the one problem collector of every YAML validator.

Pipeline, rig and synchronizer YAML all go through :func:`load_yaml` / :func:`loads_yaml` and report
through a :class:`Collector` (file, 1-based line of a node or key, message), so that ``edgefuse validate``
lists every problem of every file in one form.

ruamel.yaml comes with rosbags.  Mappings load as ``CommentedMap`` whose ``.lc`` records the
(0-based) line of every key; :func:`line_of` turns that into a 1-based line for messages.

Loading refuses, as a reported problem with a line where there is one (never a hang, a traceback or an
exhausted memory): anything but a regular file (a FIFO or a device is refused before it is read), files
over :data:`MAX_YAML_BYTES`, bytes that are not UTF-8, NUL bytes, nesting deeper than
:data:`MAX_YAML_DEPTH`, and documents whose aliases expand to more than :data:`MAX_YAML_NODES` nodes or
into themselves (a "billion laughs" alias bomb is refused after parsing its few kilobytes, before
anything walks the expanded tree).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from edgefuse.errors import Problem

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Collector",
    "line_of",
    "load_yaml",
    "loads_yaml",
    "plain",
    "read_text",
]

#: largest YAML file read (pipeline and rig files are a few kilobytes; ruamel parses ~50 KB/s)
MAX_YAML_BYTES = 256 * 1024
#: deepest nesting of mappings and sequences accepted
MAX_YAML_DEPTH = 64
#: most nodes a document may hold once every alias is expanded
MAX_YAML_NODES = 100_000


class Collector:
    """Problems found in one file, each with the 1-based line of the node or key it is about."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, message: str, node: Any = None, key: Any = None) -> None:
        """Record ``message`` at the line of ``node[key]`` (or of ``node``; no line when node is None)."""
        self.problems.append(Problem(message, self.file, line_of(node, key) if node is not None else None))

    def at(self, message: str, line: int | None) -> None:
        """Record ``message`` at an explicit 1-based ``line`` (None: the file as a whole)."""
        self.problems.append(Problem(message, self.file, line))

    def extend(self, problems: list[Problem]) -> None:
        """Add problems found elsewhere (e.g. in a file this one names)."""
        self.problems.extend(problems)


def line_of(node: Any, key: Any = None) -> int | None:
    """1-based line of ``node[key]``'s key or item (or of the node itself) when the node came from ruamel."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is None:
            return int(lc.line) + 1
        if isinstance(node, CommentedSeq):
            return int(lc.item(key)[0]) + 1
        return int(lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        try:
            return int(lc.line) + 1
        except (TypeError, AttributeError):
            return None


def read_text(path: str | Path) -> tuple[str | None, list[Problem]]:
    """The text of a YAML file, or ``(None, [problem])`` when it cannot be YAML.

    Only regular files are read: the file is opened without blocking and checked before reading, so a
    FIFO or a device never blocks.  Missing files and permissions raise their ``OSError`` unchanged.
    """
    file = str(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return None, [Problem("is a folder, not a YAML file", file)]
        if not stat.S_ISREG(info.st_mode):
            return None, [Problem(f"is not a regular file ({_file_kind(info.st_mode)}); not read", file)]
        if info.st_size > MAX_YAML_BYTES:
            return None, [Problem(f"is {info.st_size} bytes; YAML files over {MAX_YAML_BYTES} bytes are not read",
                                  file)]
        chunks = []
        size = 0
        while size <= MAX_YAML_BYTES:
            chunk = os.read(fd, MAX_YAML_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_YAML_BYTES:
        return None, [Problem(f"YAML files over {MAX_YAML_BYTES} bytes are not read", file)]
    return decode(data, file)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def decode(data: bytes, file: str) -> tuple[str | None, list[Problem]]:
    """UTF-8 text of ``data``, or a problem naming the line of the first NUL byte or invalid byte."""
    nul = data.find(b"\x00")
    if nul >= 0:
        return None, [Problem("NUL byte in the file (a binary file, or UTF-16?); YAML must be UTF-8 text", file,
                              data.count(b"\n", 0, nul) + 1)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, [Problem(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); YAML must be UTF-8", file, line)]
    return text, []


def load_yaml(path: str | Path) -> tuple[Any, list[Problem]]:
    """Parse a YAML file.  Returns ``(data, problems)``; anything that keeps it from being YAML (see the
    module docstring) becomes one Problem, with its line where there is one."""
    text, problems = read_text(path)
    if text is None:
        return None, problems
    return loads_yaml(text, str(path))


def loads_yaml(text: str, file: str = "<string>") -> tuple[Any, list[Problem]]:
    """Parse YAML text (see :func:`load_yaml`)."""
    if len(text) > MAX_YAML_BYTES:
        return None, [Problem(f"YAML text over {MAX_YAML_BYTES} characters is not read", file)]
    if "\x00" in text:
        return None, [Problem("NUL character in the text; YAML must be text", file,
                              text.count("\n", 0, text.index("\x00")) + 1)]
    deep = _flow_depth_exceeded(text)
    if deep is not None:
        return None, [Problem(f"nested deeper than {MAX_YAML_DEPTH} levels", file, deep)]
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        return None, [Problem(f"YAML syntax error: {what}", file, line)]
    except RecursionError:
        return None, [Problem(f"nested too deeply (the limit is {MAX_YAML_DEPTH} levels)", file)]
    except YAMLError as exc:  # e.g. ReaderError: a control character
        return None, [Problem(f"YAML error: {_first_line(exc)}", file, _reader_line(exc, text))]
    except (ValueError, TypeError, OverflowError) as exc:  # a value the constructor rejects (2001-13-45)
        return None, [Problem(f"YAML value error: {_first_line(exc)}", file)]
    except Exception as exc:  # ruamel fails on some malformed input (``!!set`` on a scalar: AttributeError)
        return None, [Problem(f"YAML error: {type(exc).__name__}: {_first_line(exc)}", file)]
    problem = _expansion_problem(data)
    if problem is not None:
        return None, [Problem(problem, file)]
    return data, []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reader_line(exc: YAMLError, text: str) -> int | None:
    position = getattr(exc, "position", None)
    if isinstance(position, int) and 0 <= position <= len(text):
        return text.count("\n", 0, position) + 1
    return None


def _flow_depth_exceeded(text: str) -> int | None:
    """Line where ``[``/``{`` nesting first exceeds :data:`MAX_YAML_DEPTH`, or None.

    A deliberately rough count (brackets inside quoted or plain scalars count too): it exists to refuse
    pathological input before the parser spends seconds on it, and real files stay far below the limit.
    """
    depth = 0
    line = 1
    for ch in text:
        if ch == "\n":
            line += 1
        elif ch in "[{":
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return line
        elif ch in "]}" and depth:
            depth -= 1
    return None


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.keys()
        yield from node.values()
    elif isinstance(node, list | tuple | set | frozenset):
        yield from node


def _expansion_problem(data: Any) -> str | None:
    """Why ``data`` (a loaded document whose aliases are shared objects) must be refused, or None.

    Counts the nodes of the tree every alias expanded (memoised per container, so linear in the
    document's own size) and finds containers that contain themselves.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, Iterator[Any] | None, int]] = [(data, None, 1)]
    keep: list[Any] = []  # containers whose ids are in ``sizes`` stay alive while the ids are used
    while stack:
        node, children, total = stack.pop()
        if children is None:
            if not isinstance(node, dict | list | tuple | set | frozenset):
                _add_to_parent(stack, 1)
                continue
            key = id(node)
            if key in sizes:
                _add_to_parent(stack, sizes[key])
                continue
            if key in open_:
                return "a YAML alias refers to a node that contains it (recursive alias)"
            open_.add(key)
            keep.append(node)
            stack.append((node, _children(node), 1))
            continue
        child = next(children, _END)
        if child is _END:
            open_.discard(id(node))
            sizes[id(node)] = total
            if total > MAX_YAML_NODES:
                return (f"the document expands to more than {MAX_YAML_NODES} nodes through aliases "
                        "(an alias bomb?); not read")
            _add_to_parent(stack, total)
            continue
        stack.append((node, children, total))
        stack.append((child, None, 0))
    return None


_END = object()


def _add_to_parent(stack: list[tuple[Any, Iterator[Any] | None, int]], size: int) -> None:
    if stack:
        node, children, total = stack[-1]
        stack[-1] = (node, children, total + size)


def plain(node: Any) -> Any:
    """Convert ruamel containers to plain dict/list (recursively)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node
