"""Environment facts every benchmark records next to its figures (commit, CPU)."""

from __future__ import annotations

import platform
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def unwind_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C (``KeyboardInterrupt``), so that a bench killed with ``kill`` still runs
    its ``finally`` blocks and removes its temporary files."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def shared_data() -> Path:
    """The real recordings: ``$EDGEFUSE_DATA``, else ``shared/data`` beside the checkout (``../shared/data``) or
    beside its parent (a git worktree one level deeper); the first that exists, else the first candidate."""
    import os

    if os.environ.get("EDGEFUSE_DATA"):
        return Path(os.environ["EDGEFUSE_DATA"])
    candidates = [p / "shared" / "data" for p in (ROOT.parent, ROOT.parents[1])]
    return next((p for p in candidates if p.is_dir()), candidates[0])


def commit(short: bool = False) -> str | None:
    """The checked-out commit of this repository (None outside a git checkout)."""
    args = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def cpu() -> str:
    """CPU model name (as the replay report gives it), else the machine type."""
    from edgefuse.replay import cpu_name

    return cpu_name() or platform.machine()


def environment() -> dict[str, object]:
    """The facts a result needs to be compared with another: commit, CPU, cores, library versions."""
    import os

    import numba
    import numpy

    import edgefuse

    return {
        "edgefuse": edgefuse.__version__, "commit": commit(), "cpu": cpu(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__,
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,  # type: ignore[attr-defined]
    }


def write_json(path: Path, data: object, *, quiet: bool = False) -> str:
    """Write ``data`` as indented JSON to ``path`` (creating its folder), print it unless ``quiet`` (then the
    caller prints a short summary), return the text."""
    import json

    text = json.dumps(data, indent=2, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    if not quiet:
        print(text)
    return text
