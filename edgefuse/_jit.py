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


def njit(signature: Any = None, *, parallel: bool = False, fastmath: bool = False) -> Callable[[F], F]:
    """Decorate a kernel with Numba's ``njit`` using edgefuse's cache policy."""

    def wrap(func: F) -> F:
        options: dict[str, Any] = {"cache": cache_enabled(), "nogil": True, "parallel": parallel,
                                   "fastmath": fastmath}
        if signature is None:
            return numba.njit(**options)(func)  # type: ignore[no-any-return]
        return numba.njit(signature, **options)(func)  # type: ignore[no-any-return]

    return wrap
