"""Input checks shared by the public wrappers.

Kernels trust their arguments, so every public function funnels its input through these
helpers first. Each raises `ValueError` naming the argument and the problem.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

MAX_PIXELS = 2**32 - 1
"""COCO stores run lengths as unsigned 32-bit integers, so an image holds fewer pixels."""

MAX_COORD = 1e8
"""Largest coordinate magnitude accepted; keeps every integer in the kernels within 32 bits."""


def check_size(h: object, w: object) -> tuple[int, int]:
    """Image height and width as non-negative ints whose product fits COCO's counters."""
    sizes = []
    for name, value in (("h", h), ("w", w)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
        if int(value) < 0:
            raise ValueError(f"{name} must be non-negative, got {int(value)}")
        sizes.append(int(value))
    if sizes[0] * sizes[1] > MAX_PIXELS:
        raise ValueError(f"image of {sizes[0]}x{sizes[1]} has more than 2**32 - 1 pixels")
    return sizes[0], sizes[1]


def as_mask(mask: object, name: str = "mask", ndim: int = 2) -> ByteArray:
    """A bool or uint8 array of `ndim` dimensions, viewed as uint8 (nonzero = foreground)."""
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(mask).__name__}")
    if mask.dtype not in (np.bool_, np.uint8):
        raise ValueError(f"{name} must have dtype bool or uint8, got {mask.dtype}")
    if mask.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {mask.ndim}-D of shape {mask.shape}")
    if mask.size > 0 and math.prod(mask.shape[-2:]) > MAX_PIXELS:
        raise ValueError(f"{name} of shape {mask.shape} has more than 2**32 - 1 pixels")
    return mask.view(np.uint8)


def as_coords(points: object, name: str = "points", min_points: int = 1) -> FloatArray:
    """Flat `[x0, y0, x1, y1, ...]` as a contiguous float64 array of finite values."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a flat sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be flat [x0, y0, x1, y1, ...], got shape {arr.shape}")
    if arr.size % 2:
        raise ValueError(f"{name} must hold an even number of coordinates, got {arr.size}")
    if arr.size < 2 * min_points:
        raise ValueError(f"{name} needs at least {min_points} points, got {arr.size // 2}")
    check_finite(arr, name)
    return np.ascontiguousarray(arr)


def as_numbers(values: object, name: str, size: int | None = None) -> FloatArray:
    """A flat, contiguous float64 array of finite values, optionally of a fixed size."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a flat sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers, got shape {arr.shape}")
    if size is not None and arr.size != size:
        raise ValueError(f"{name} must hold {size} numbers, got {arr.size}")
    check_finite(arr, name)
    return np.ascontiguousarray(arr)


def check_finite(arr: FloatArray, name: str) -> None:
    """Reject NaN, infinities and magnitudes beyond `MAX_COORD`."""
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if arr.size and float(np.abs(arr).max()) > MAX_COORD:
        raise ValueError(f"{name} has a coordinate beyond +-{MAX_COORD:g}")


def as_float(value: object, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def as_int_list(values: object, name: str) -> IntArray:
    """Non-negative integral numbers (ints or integral floats) as an int64 array."""
    if isinstance(values, np.ndarray):
        arr: Any = values
    elif isinstance(values, Sequence) and not isinstance(values, str | bytes):
        arr = np.asarray(values)
    else:
        raise ValueError(f"{name} must be a sequence of integers, got {type(values).__name__}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be flat, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.trunc(arr)).any():
            raise ValueError(f"{name} must hold whole numbers")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if arr.max() > MAX_PIXELS:
        raise ValueError(f"{name} holds a value beyond 2**32 - 1")
    out: IntArray = arr.astype(np.int64)
    return out
