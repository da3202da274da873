"""The checked form of a CVAT interactor call: an RGB image, positive and negative
points and an optional box, as CVAT's lambda manager passes them to a function.

CVAT's UI posts `{"frame", "pos_points": [[x, y], ...], "neg_points": [[x, y], ...]}`
and, for functions that start with a box, `"obj_bbox": [[x1, y1], [x2, y2]]` (two
corners). Coordinates are continuous image coordinates: pixel (column j, row i) covers
[j, j + 1) x [i, i + 1), so a point may lie anywhere in [0, width] x [0, height].

Everything a client could get wrong raises `InteractorInputError` (a ValueError) naming
the request field, so the service can answer problem+json 400 pointing at it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ImageArray = npt.NDArray[np.uint8]

MAX_POINTS = 256
"""Most positive (and, separately, negative) points one call may carry."""


class InteractorInputError(ValueError):
    """A field of an interactor call is malformed or contradicts the image.

    `field` is the request field at fault (`image`, `pos_points`, `neg_points`,
    `obj_bbox`); `index` the offending item of a point list, when there is one.
    """

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


@dataclass(frozen=True, slots=True)
class InteractorRequest:
    """A validated interactor call.

    `pos` and `neg` are (N, 2) float64 arrays of [x, y]; `box` is None or
    (x1, y1, x2, y2) with x1 < x2 and y1 < y2, inside the image.
    """

    image: ImageArray
    pos: FloatArray
    neg: FloatArray
    box: tuple[float, float, float, float] | None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def check_image(image: object, *, min_side: int = 8) -> ImageArray:
    """`image` as a C-contiguous (H, W, 3) uint8 RGB array; InteractorInputError if not."""
    if not isinstance(image, np.ndarray):
        raise InteractorInputError("image", "image must be a decoded numpy array")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InteractorInputError(
            "image",
            f"image must be RGB uint8 of shape (height, width, 3), "
            f"got {image.dtype} {tuple(image.shape)}",
        )
    h, w = int(image.shape[0]), int(image.shape[1])
    if h < min_side or w < min_side:
        raise InteractorInputError(
            "image", f"image of {w}x{h} is too small (each side needs {min_side} pixels or more)"
        )
    return np.ascontiguousarray(image)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real | np.integer | np.floating):
        return None
    return float(value)


def _pair(value: object) -> tuple[float, float] | None:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        return None
    if len(value) != 2:
        return None
    x, y = _number(value[0]), _number(value[1])
    if x is None or y is None:
        return None
    return x, y


def check_points(
    points: object,
    field: str,
    width: int,
    height: int,
    *,
    min_count: int = 0,
    max_count: int = MAX_POINTS,
) -> FloatArray:
    """`points` (a list of [x, y] pairs) as an (N, 2) float64 array inside the image.

    None counts as no points. Raises InteractorInputError naming `field` (and the index
    of a bad point) for a point that is not a pair of finite numbers or lies outside
    [0, width] x [0, height], and for fewer than `min_count` or more than `max_count`.
    """
    if points is None:
        points = []
    if isinstance(points, str | bytes | dict) or not isinstance(points, Sequence | np.ndarray):
        raise InteractorInputError(field, f"{field} must be a list of [x, y] points")
    count = len(points)
    if count < min_count:
        raise InteractorInputError(
            field, f"{field} needs at least {min_count} point(s), got {count}"
        )
    if count > max_count:
        raise InteractorInputError(field, f"{field} has {count} points, at most {max_count}")
    out = np.empty((count, 2), np.float64)
    for i, item in enumerate(points):
        pair = _pair(item)
        if pair is None:
            raise InteractorInputError(
                field, f"{field}[{i}] must be a pair [x, y] of numbers", index=i
            )
        x, y = pair
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InteractorInputError(field, f"{field}[{i}] is not finite: [{x}, {y}]", index=i)
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise InteractorInputError(
                field,
                f"{field}[{i}] = [{x:g}, {y:g}] lies outside the {width}x{height} image",
                index=i,
            )
        out[i] = x, y
    return out


def check_box(
    box: object, width: int, height: int, *, field: str = "obj_bbox", min_side: float = 2.0
) -> tuple[float, float, float, float] | None:
    """`box` as (x1, y1, x2, y2) with x1 < x2, y1 < y2, or None when absent.

    Takes CVAT's two corners `[[x1, y1], [x2, y2]]` (in any order) or a flat
    `[x1, y1, x2, y2]`. Raises InteractorInputError for anything else, for a corner that
    is not finite or lies outside the image, and for a box under `min_side` pixels.
    """
    if box is None:
        return None
    if isinstance(box, str | bytes | dict) or not isinstance(box, Sequence | np.ndarray):
        raise InteractorInputError(field, f"{field} must be [[x1, y1], [x2, y2]]")
    corners: list[tuple[float, float]] = []
    if len(box) == 2:
        for i, item in enumerate(box):
            pair = _pair(item)
            if pair is None:
                raise InteractorInputError(
                    field, f"{field}[{i}] must be a corner [x, y] of numbers", index=i
                )
            corners.append(pair)
    elif len(box) == 4:
        values = [_number(v) for v in box]
        if any(v is None for v in values):
            raise InteractorInputError(field, f"{field} must hold four numbers x1, y1, x2, y2")
        x1, y1, x2, y2 = (float(v) for v in values if v is not None)
        corners = [(x1, y1), (x2, y2)]
    else:
        raise InteractorInputError(
            field, f"{field} must be [[x1, y1], [x2, y2]] or [x1, y1, x2, y2]"
        )
    for i, (x, y) in enumerate(corners):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InteractorInputError(field, f"{field} corner {i} is not finite: [{x}, {y}]")
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise InteractorInputError(
                field,
                f"{field} corner {i} = [{x:g}, {y:g}] lies outside the {width}x{height} image",
            )
    (ax, ay), (bx, by) = corners
    x1, x2 = min(ax, bx), max(ax, bx)
    y1, y2 = min(ay, by), max(ay, by)
    if x2 - x1 < min_side or y2 - y1 < min_side:
        raise InteractorInputError(
            field,
            f"{field} of {x2 - x1:g}x{y2 - y1:g} is too small "
            f"(each side needs {min_side:g} pixels or more)",
        )
    return x1, y1, x2, y2


def parse_request(
    image: object,
    pos_points: object,
    neg_points: object,
    obj_bbox: object = None,
    *,
    min_pos_points: int = 1,
    min_neg_points: int = 0,
    max_points: int = MAX_POINTS,
) -> InteractorRequest:
    """Check a CVAT interactor call against its image.

    `min_pos_points` and `min_neg_points` are the function's published minimums (CVAT's
    `min_pos_points`, `min_neg_points`; a negative minimum means none). With a box, every
    positive point must lie inside it (a click outside contradicts the box); negative
    points may lie anywhere in the image.
    """
    img = check_image(image)
    h, w = int(img.shape[0]), int(img.shape[1])
    pos = check_points(
        pos_points, "pos_points", w, h, min_count=max(min_pos_points, 0), max_count=max_points
    )
    neg = check_points(
        neg_points, "neg_points", w, h, min_count=max(min_neg_points, 0), max_count=max_points
    )
    box = check_box(obj_bbox, w, h)
    if box is not None:
        x1, y1, x2, y2 = box
        for i, (x, y) in enumerate(pos):
            if not (x1 <= x <= x2 and y1 <= y <= y2):
                raise InteractorInputError(
                    "pos_points",
                    f"pos_points[{i}] = [{x:g}, {y:g}] lies outside obj_bbox "
                    f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}]",
                    index=i,
                )
    return InteractorRequest(image=img, pos=pos, neg=neg, box=box)
