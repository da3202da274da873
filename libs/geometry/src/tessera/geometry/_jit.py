"""Typed wrappers around Numba's decorators.

Numba ships no type information, so a bare `@njit` would make every kernel untyped
under mypy's strict mode. These wrappers keep the decorated function's signature.
Kernels are cached on disk (`NUMBA_CACHE_DIR`, or `__pycache__` beside the source) so a
service start loads compiled code instead of compiling again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile `fn` in nopython mode, releasing the GIL, cached on disk."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def parallel_kernel(fn: F) -> F:
    """Like `kernel`, with `numba.prange` loops run on all cores."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(fn))
