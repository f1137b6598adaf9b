"""YAML loading that keeps line numbers, so validators can point at the offending line.

ruamel.yaml comes with rosbags.  Mappings load as ``CommentedMap`` whose ``.lc`` records the
(0-based) line of every key; :func:`line_of` turns that into a 1-based line for error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from edgefuse.errors import Problem


def load_yaml(path: str | Path) -> tuple[Any, list[Problem]]:
    """Parse a YAML file.  Returns ``(data, problems)``; a syntax error becomes one Problem with its line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return loads_yaml(text, str(path))


def loads_yaml(text: str, file: str = "<string>") -> tuple[Any, list[Problem]]:
    """Parse YAML text (see :func:`load_yaml`)."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text), []
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "syntax error"
        return None, [Problem(f"YAML syntax error: {reason}", file, line)]


def line_of(node: Any, key: Any = None) -> int | None:
    """1-based line of ``node[key]`` (or of the node itself) when the node came from ruamel, else None."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is None:
            return int(lc.line) + 1
        if isinstance(key, int):
            return int(lc.item(key)[0]) + 1
        return int(lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return int(lc.line) + 1 if getattr(lc, "line", None) is not None else None


def plain(node: Any) -> Any:
    """Convert ruamel containers to plain dict/list (recursively)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node
