"""One typed wrapper around ``numba.njit`` so kernels share cache and fastmath settings.

Kernels are compiled with ``cache=True`` only when a writable cache directory exists (see
:mod:`edgefuse.config`), so a read-only install still imports and runs.  Every kernel made here is
remembered, so that a cache directory chosen later (a pipeline's ``runtime.numba_cache_dir``, applied by
:func:`edgefuse.config.configure` when a run starts) takes effect for kernels whose modules were imported
before it: :func:`retarget_caches` points each kernel's cache at the new directory and saves there what
was already compiled in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

from edgefuse.config import cache_enabled

F = TypeVar("F", bound=Callable[..., Any])

#: every dispatcher made by :func:`njit`, in creation order
_KERNELS: list[Any] = []


def njit(signature: Any = None, *, parallel: bool = False, fastmath: bool = False, inline: str = "never",
         cache: bool = True) -> Callable[[F], F]:
    """Decorate a kernel with Numba's ``njit`` using edgefuse's cache policy.

    ``inline="always"`` inlines the function into its jitted callers at Numba IR level (small helpers
    shared by several kernels).  ``cache=False`` for kernels that take functions as arguments: each
    process gives those a new type that never hits the on-disk cache, so caching would only add files.
    """

    def wrap(func: F) -> F:
        options: dict[str, Any] = {"cache": cache and cache_enabled(), "nogil": True, "parallel": parallel,
                                   "fastmath": fastmath}
        if inline != "never":
            options["inline"] = inline
        decorate = numba.njit(**options) if signature is None else numba.njit(signature, **options)
        dispatcher = decorate(func)
        _KERNELS.append(dispatcher)
        return dispatcher  # type: ignore[no-any-return]

    return wrap


def retarget_caches() -> int:
    """Point every kernel's on-disk cache at ``numba.config.CACHE_DIR`` (set it first) and save there the
    overloads already compiled in this process.  Returns the number of kernels retargeted.

    Numba picks a kernel's cache folder once, when the kernel is decorated (at import), from
    ``NUMBA_CACHE_DIR``; re-enabling caching makes it pick again.
    """
    count = 0
    for dispatcher in _KERNELS:
        enable = getattr(dispatcher, "enable_caching", None)
        if enable is None:
            continue
        enable()
        count += 1
        cache = getattr(dispatcher, "_cache", None)
        save = getattr(cache, "save_overload", None)
        if save is None:
            continue
        for sig, compiled in list(dispatcher.overloads.items()):
            try:
                save(sig, compiled)
            except Exception:  # a kernel numba cannot cache stays in memory only; never fatal
                continue
    return count
