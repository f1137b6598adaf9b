"""One typed wrapper around ``numba.njit`` so kernels share cache and fastmath settings.

Kernels are compiled with ``cache=True`` only when a writable cache directory exists (see
:mod:`edgefuse.config`), so a read-only install still imports and runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

from edgefuse.config import cache_enabled

F = TypeVar("F", bound=Callable[..., Any])


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
        if signature is None:
            return numba.njit(**options)(func)  # type: ignore[no-any-return]
        return numba.njit(signature, **options)(func)  # type: ignore[no-any-return]

    return wrap
