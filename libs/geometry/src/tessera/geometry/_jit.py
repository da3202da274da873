"""Typed wrappers around Numba's decorators.

Numba ships no type information, so a bare `@njit` would make every kernel untyped
under mypy's strict mode. These wrappers keep the decorated function's signature.
Kernels are cached on disk (`NUMBA_CACHE_DIR`, or `__pycache__` beside the source) so a
service start loads compiled code instead of compiling again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

# Numba's OpenMP threading layer spin-waits between parallel regions by default. On a
# node whose cores other processes also use, that made encode_batch on 2 threads 3x
# slower than on one; passive waiting keeps the parallel kernels ahead. Must be set
# before the layer loads (the first parallel call); an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile `fn` in nopython mode, releasing the GIL, cached on disk."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def parallel_kernel(fn: F) -> F:
    """Like `kernel`, with `numba.prange` loops run on all cores."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(fn))
