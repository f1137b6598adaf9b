"""Process-wide runtime settings: Numba cache directory and thread counts.

Read from the environment at import time and overridable by a pipeline's ``runtime:`` section (applied
when a run starts; a relative ``numba_cache_dir`` there is relative to the pipeline file's folder) or
:func:`configure`:

- ``EDGEFUSE_NUMBA_CACHE_DIR``: where compiled kernels are cached (default: ``$XDG_CACHE_HOME/edgefuse/numba``
  or ``~/.cache/edgefuse/numba``).  If no writable directory exists, caching is switched off so that
  importing edgefuse works from a read-only install.  A directory given to :func:`configure` applies to
  every kernel, including those whose modules were imported before (:func:`edgefuse._jit.retarget_caches`).
- ``EDGEFUSE_NUMBA_THREADS``: Numba's thread count for parallel kernels (default: Numba's default).
- ``EDGEFUSE_ORT_THREADS``: ONNX Runtime intra-op threads (default: ONNX Runtime's default, 0).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgefuse" / "numba"


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


@dataclass
class RuntimeConfig:
    """Settings that apply to the whole process."""

    numba_cache_dir: Path | None
    numba_threads: int | None
    ort_threads: int


def _int_env(name: str) -> int | None:
    """An integer >= 0 from the environment; a bad value is reported (warning) and ignored, not fatal."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        warnings.warn(f"{name} must be an integer >= 0, got {value!r}; ignored", RuntimeWarning, stacklevel=3)
        return None
    return number


def _init() -> RuntimeConfig:
    requested = os.environ.get("EDGEFUSE_NUMBA_CACHE_DIR")
    cache: Path | None = Path(requested) if requested else _default_cache_dir()
    if cache is not None and not _writable_dir(cache):
        cache = None
    if cache is not None and "NUMBA_CACHE_DIR" not in os.environ:
        # numba reads NUMBA_CACHE_DIR when it is imported; if it already was, set its config directly.
        os.environ["NUMBA_CACHE_DIR"] = str(cache)
        numba_mod = sys.modules.get("numba")
        if numba_mod is not None:
            numba_mod.config.CACHE_DIR = str(cache)
    return RuntimeConfig(
        numba_cache_dir=cache,
        numba_threads=_int_env("EDGEFUSE_NUMBA_THREADS"),
        ort_threads=_int_env("EDGEFUSE_ORT_THREADS") or 0,
    )


CONFIG = _init()


def cache_enabled() -> bool:
    """Whether Numba kernels should be compiled with ``cache=True``."""
    return CONFIG.numba_cache_dir is not None


def configure(
    *, numba_threads: int | None = None, ort_threads: int | None = None, numba_cache_dir: str | None = None
) -> RuntimeConfig:
    """Change settings at run time.

    ``numba_cache_dir`` is created if needed and used for every kernel from now on (kernels already
    compiled in this process are saved there too).  A directory that cannot be created or written is
    reported with a :class:`RuntimeWarning` and the current cache setting is kept.
    """
    if numba_cache_dir is not None:
        _use_cache_dir(Path(numba_cache_dir))
    if numba_threads is not None:
        CONFIG.numba_threads = numba_threads
    if ort_threads is not None:
        CONFIG.ort_threads = ort_threads
    apply_numba_threads()
    return CONFIG


def _use_cache_dir(path: Path) -> None:
    path = path.absolute()
    if CONFIG.numba_cache_dir is not None and CONFIG.numba_cache_dir.absolute() == path:
        return
    if not _writable_dir(path):
        warnings.warn(f"numba cache directory {path} cannot be created or written; kept "
                      f"{CONFIG.numba_cache_dir or 'caching off'}", RuntimeWarning, stacklevel=3)
        return
    import numba

    from edgefuse import _jit

    CONFIG.numba_cache_dir = path
    numba.config.CACHE_DIR = str(path)  # type: ignore[attr-defined]
    _jit.retarget_caches()


def apply_numba_threads() -> int:
    """Apply the configured Numba thread count (clamped to what Numba allows); returns the count in use."""
    import numba

    if CONFIG.numba_threads:
        numba.set_num_threads(max(1, min(CONFIG.numba_threads, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    return int(numba.get_num_threads())
