"""What an interactor returns: a full-frame mask, its outer polygon, and CVAT's forms.

CVAT's UI (cvat-ui `tools-control.tsx`, interactor version 2 and later) reads a
function's answer as `{"mask": rows of 0/1, "points": [[x, y], ...], "bounds":
[left, top, right, bottom]}`: with `bounds`, `mask` covers only that inclusive box;
`points` is the polygon it offers when masks are converted to polygons (it simplifies it
again with its own approxPolyDP). `to_cvat()` builds exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.geometry import array_to_cvat_mask, mask_to_polygons

BoolArray = npt.NDArray[np.bool_]


def _ring_area(ring: npt.NDArray[np.float64]) -> float:
    x, y = ring[0::2], ring[1::2]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@dataclass(frozen=True, slots=True)
class InteractorResult:
    """A segmented object.

    `mask`: (H, W) bool over the whole frame. `bounds`: its tight inclusive box (left,
    top, right, bottom) in pixels. `polygon`: the outer boundary of the mask's largest
    part as [[x, y], ...], vertices on pixel corners (so the polygon rasterises back to
    the mask when `tolerance` is 0), clockwise on screen, simplified by Douglas-Peucker
    with the `tolerance` given to `from_mask`. `score`: how confident the interactor
    is, in [0, 1] (GrabCut has none: 1.0).
    """

    mask: BoolArray
    bounds: tuple[int, int, int, int]
    polygon: list[list[float]]
    score: float = 1.0

    @classmethod
    def from_mask(
        cls, mask: BoolArray, *, tolerance: float = 1.0, score: float = 1.0
    ) -> InteractorResult:
        """The result for a non-empty (H, W) bool mask; ValueError for an empty one."""
        if mask.ndim != 2 or not mask.any():
            raise ValueError("an interactor result needs a non-empty 2-D mask")
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        bounds = (int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))
        left, top, right, bottom = bounds
        # Trace only the tight box (plus a free border): cheaper on large frames.
        crop = mask[top : bottom + 1, left : right + 1]
        rings = mask_to_polygons(crop, tolerance)
        outer = [r for r in rings if _ring_area(r) > 0] or rings
        if outer:
            best = max(outer, key=_ring_area)
            polygon = [[float(x) + left, float(y) + top] for x, y in best.reshape(-1, 2)]
        else:  # a sliver that simplification erased: fall back to its box
            polygon = [
                [float(left), float(top)],
                [float(right + 1), float(top)],
                [float(right + 1), float(bottom + 1)],
                [float(left), float(bottom + 1)],
            ]
        return cls(mask=mask, bounds=bounds, polygon=polygon, score=score)

    def cvat_mask_points(self) -> list[int]:
        """The mask as a CVAT mask shape's `points`: runs over `bounds`, then the bounds."""
        return array_to_cvat_mask(self.mask)

    def to_cvat(self) -> dict[str, Any]:
        """CVAT's interactor answer: `mask` cropped to `bounds`, `points`, `bounds`."""
        left, top, right, bottom = self.bounds
        crop = self.mask[top : bottom + 1, left : right + 1].astype(np.uint8)
        return {
            "mask": crop.tolist(),
            "points": [list(p) for p in self.polygon],
            "bounds": [left, top, right, bottom],
        }
