"""GrabCut interactor: OpenCV's iterated graph cut, seeded from a box and the user's clicks.

How one call runs (on the CPU; some tens of milliseconds for an object of a few hundred
pixels, the work bounded by `max_side` however large the frame):

1. With `obj_bbox` (and some frame around it), the box is the region of interest (ROI)
   and everything outside it is sure background, as in the GrabCut paper. Without a box,
   or with one over (nearly) the whole frame, the ROI is grown from the positive clicks:
   first their bounding box joined with the pixels of their colour reachable from them
   (a flood fill), plus a quarter of that extent or `margin` pixels; around it is only
   probable background. When the object found reaches the edge of the crop, the ROI
   doubles and the cut runs again, up to `max_expansions` times, so one click on a large
   object still finds all of it.
2. GrabCut works on a crop: the ROI plus `context` (a quarter of its size, at least
   `min_context` pixels) around it, to learn the background's colours from, scaled
   down so its longer side is at most `max_side`. Inside the ROI every pixel starts as
   probable foreground.
3. Clicks become seeds. A click marks a disc of `stroke_radius` pixels, and also the
   pixels reachable from it by a flood fill of similar colour (within `seed_tolerance` per
   channel of the click's colour, after a light blur) inside a disc of `seed_radius`
   times the ROI diagonal: positive seeds are sure foreground, negative ones sure
   background. The flood fill is what lets one negative click remove a whole neighbouring
   region of another colour, not just the few pixels under the click.
4. `iterations` rounds of GrabCut; then only the connected parts (8-connectivity) that
   hold a positive click are kept (the largest part when there is no click, a box
   alone), holes smaller than `max_hole_ratio` of the object that hold no negative
   click are filled, and nothing outside the box is kept.

Intelligent Scissors (`cv2.segmentation.IntelligentScissorsMB`) was not chosen: it traces a
boundary between points the user places *on* the contour (a live wire), which does not
fit CVAT's interactor call (clicks inside and outside an object, maybe a box).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from tessera.inference.interactors.inputs import (
    MAX_POINTS,
    FloatArray,
    ImageArray,
    InteractorInputError,
    InteractorRequest,
    parse_request,
)
from tessera.inference.interactors.result import InteractorResult

BoolArray = npt.NDArray[np.bool_]
ByteArray = npt.NDArray[np.uint8]
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 exclusive


@dataclass(frozen=True, slots=True)
class GrabCutParams:
    """Tuning of the GrabCut interactor; the defaults suit photos of everyday size.

    `min_pos_points` and `min_neg_points` are what the function publishes to CVAT
    (`min_pos_points`, `min_neg_points`) and what `segment` enforces.
    """

    iterations: int = 4
    stroke_radius: int = 3
    seed_radius: float = 0.5
    seed_tolerance: int = 20
    margin: int = 32
    max_expansions: int = 3
    context: float = 0.25
    min_context: int = 12
    max_side: int = 480
    max_hole_ratio: float = 0.02
    polygon_tolerance: float = 1.0
    min_pos_points: int = 1
    min_neg_points: int = 0
    max_points: int = MAX_POINTS

    def __post_init__(self) -> None:
        checks = {
            "iterations": 1 <= self.iterations <= 20,
            "stroke_radius": 0 <= self.stroke_radius <= 64,
            "seed_radius": 0.0 <= self.seed_radius <= 1.0,
            "seed_tolerance": 0 <= self.seed_tolerance <= 255,
            "margin": self.margin >= 1,
            "max_expansions": self.max_expansions >= 0,
            "context": self.context >= 0.0,
            "min_context": self.min_context >= 1,
            "max_side": self.max_side >= 32,
            "max_hole_ratio": self.max_hole_ratio >= 0.0,
            "polygon_tolerance": self.polygon_tolerance >= 0.0,
            "max_points": self.max_points >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"GrabCutParams out of range: {', '.join(bad)}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GrabCutParams:
        """Params from a registry entry's `options` table; ValueError naming an unknown
        key or a value of the wrong type or range."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown GrabCut options: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in options.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"GrabCut option {name} must be a number")
            if known[name] == "int":
                if not isinstance(value, int):
                    raise ValueError(f"GrabCut option {name} must be a whole number")
                values[name] = value
            else:
                values[name] = float(value)
        return cls(**values)


DEFAULT_PARAMS = GrabCutParams()


class GrabCutInteractor:
    """The interactor as a registry entry (`entry =
    "tessera.inference.interactors:GrabCutInteractor"`, `model = "cpu"`): made once with
    the function's `options` (GrabCutParams' fields), then called per request."""

    def __init__(self, *, options: Mapping[str, Any] | None = None, infer: object = None) -> None:
        del infer  # runs in the service's process, no Triton model
        self.params = GrabCutParams.from_options(options or {})

    def __call__(
        self, image: ImageArray, pos_points: object, neg_points: object, obj_bbox: object = None
    ) -> InteractorResult:
        return segment(image, pos_points, neg_points, obj_bbox, params=self.params)


def segment(
    image: ImageArray,
    pos_points: object,
    neg_points: object,
    obj_bbox: object = None,
    *,
    params: GrabCutParams = DEFAULT_PARAMS,
) -> InteractorResult:
    """Segment the object the user clicked on, as CVAT's interactor call asks.

    `image`: decoded RGB uint8 (H, W, 3). `pos_points`, `neg_points`: lists of [x, y];
    `obj_bbox`: None, `[[x1, y1], [x2, y2]]` or `[x1, y1, x2, y2]` (see `inputs`).
    Raises `InteractorInputError` (a ValueError naming the field) for bad input.
    """
    request = parse_request(
        image,
        pos_points,
        neg_points,
        obj_bbox,
        min_pos_points=params.min_pos_points,
        min_neg_points=params.min_neg_points,
        max_points=params.max_points,
    )
    return segment_request(request, params)


def segment_request(
    request: InteractorRequest, params: GrabCutParams = DEFAULT_PARAMS
) -> InteractorResult:
    """Run the GrabCut interactor on an already validated request."""
    h, w = request.height, request.width
    bound = (0, 0, w, h)
    if request.box is not None:
        x1, y1, x2, y2 = request.box
        bound = _clip((math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)), w, h)
        if _has_context(bound, w, h, params) or len(request.pos) == 0:
            mask, _ = _cut(request, bound, bound, params, boxed=True)
            return _result(mask, "obj_bbox", params)
    if len(request.pos) == 0:
        raise InteractorInputError(
            "pos_points", "without obj_bbox at least one positive point is needed"
        )
    # No box, or one over (nearly) the whole frame, which says nothing about the
    # background: grow a region from the clicks.
    roi = _initial_roi(request, bound, params)
    for attempt in range(params.max_expansions + 1):
        mask, touches = _cut(request, roi, bound, params, boxed=False)
        if not touches or roi == bound or attempt == params.max_expansions:
            break
        x0, y0, x1, y1 = roi
        dx, dy = (x1 - x0 + 1) // 2, (y1 - y0 + 1) // 2
        roi = _intersect((x0 - dx, y0 - dy, x1 + dx, y1 + dy), bound)
    return _result(mask, "pos_points", params)


def _initial_roi(request: InteractorRequest, bound: Rect, params: GrabCutParams) -> Rect:
    """Where to look first without a box: the positive points and the pixels of their
    colour reachable from them (a flood fill within a quarter of the frame's diagonal),
    grown by a quarter of that extent or `margin` pixels, whichever is more."""
    bx0, by0, bx1, by1 = bound
    region = request.image[by0:by1, bx0:bx1]
    rh, rw = region.shape[:2]
    scale = min(1.0, params.max_side / max(rw, rh))
    if scale < 1.0:
        size = (max(1, round(rw * scale)), max(1, round(rh * scale)))
        region = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), np.uint8)
    sh, sw = region.shape[:2]
    blur = np.asarray(cv2.GaussianBlur(region, (5, 5), 0), np.uint8)
    everywhere = np.ones((sh, sw), np.bool_)
    radius = max(1, round(0.25 * math.hypot(sw, sh)))
    filled = np.zeros((sh, sw), np.bool_)
    for p in _pixels(request.pos, (bx0, by0), scale, (sw, sh)):
        filled |= _flood_seed(blur, everywhere, p, radius, params.seed_tolerance)
    ys, xs = np.nonzero(filled)
    lo = request.pos.min(axis=0)
    hi = request.pos.max(axis=0)
    if xs.size:
        lo = np.minimum(lo, [bx0 + xs.min() / scale, by0 + ys.min() / scale])
        hi = np.maximum(hi, [bx0 + (xs.max() + 1) / scale, by0 + (ys.max() + 1) / scale])
    margin = max(params.margin, round(0.25 * float(max(hi - lo))))
    x0, y0 = math.floor(lo[0]) - margin, math.floor(lo[1]) - margin
    x1, y1 = math.ceil(hi[0]) + margin + 1, math.ceil(hi[1]) + margin + 1
    return _intersect((x0, y0, x1, y1), bound)


def _result(mask: BoolArray, field: str, params: GrabCutParams) -> InteractorResult:
    if not mask.any():  # only reachable without positive points
        raise InteractorInputError(field, "no object found; add a positive point")
    return InteractorResult.from_mask(mask, tolerance=params.polygon_tolerance)


def _has_context(box: Rect, w: int, h: int, params: GrabCutParams) -> bool:
    """Whether the crop around `box` holds enough pixels outside it to learn the
    background from (at least a tenth of the box's area)."""
    x0, y0, x1, y1 = box
    pad = max(params.min_context, round(params.context * max(x1 - x0, y1 - y0)))
    cx0, cy0, cx1, cy1 = _clip((x0 - pad, y0 - pad, x1 + pad, y1 + pad), w, h)
    inside = (x1 - x0) * (y1 - y0)
    return (cx1 - cx0) * (cy1 - cy0) - inside >= 0.1 * inside


def _intersect(a: Rect, b: Rect) -> Rect:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _clip(rect: Rect, w: int, h: int) -> Rect:
    x0, y0, x1, y1 = rect
    x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    return x0, y0, min(max(x1, x0 + 1), w), min(max(y1, y0 + 1), h)


def _pixels(
    points: FloatArray, origin: tuple[int, int], scale: float, size: tuple[int, int]
) -> list[tuple[int, int]]:
    """Integer pixel (x, y) of each point in a crop at `origin` scaled by `scale`."""
    cw, ch = size
    out = []
    for x, y in points:
        px = min(max(math.floor((x - origin[0]) * scale), 0), cw - 1)
        py = min(max(math.floor((y - origin[1]) * scale), 0), ch - 1)
        out.append((px, py))
    return out


def _flood_seed(
    blur: ByteArray, allowed: BoolArray, seed: tuple[int, int], radius: int, tolerance: int
) -> BoolArray:
    """Pixels reachable from `seed` through colours within `tolerance` of the seed's,
    inside `allowed` and a disc of `radius`."""
    ch, cw = allowed.shape
    limit = np.ones((ch + 2, cw + 2), np.uint8)
    disc = np.zeros((ch, cw), np.uint8)
    cv2.circle(disc, seed, radius, 1, -1)
    limit[1:-1, 1:-1][allowed & (disc > 0)] = 0
    if limit[seed[1] + 1, seed[0] + 1]:
        return np.zeros((ch, cw), np.bool_)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
    tol = (tolerance, tolerance, tolerance)
    cv2.floodFill(blur, limit, seed, (0, 0, 0), tol, tol, flags)
    seeded: BoolArray = limit[1:-1, 1:-1] == 2
    return seeded


def _cut(
    request: InteractorRequest, roi: Rect, bound: Rect, params: GrabCutParams, *, boxed: bool
) -> tuple[BoolArray, bool]:
    """GrabCut with `roi` as probable foreground: the full-frame mask, and whether the
    object reaches the edge of the crop (where that is not the image's edge).

    `boxed`: `roi` is the user's box, all around it is background. Otherwise `roi` was
    grown from clicks: around it is probably background, and surely so outside `bound`
    (the user's box, or the whole frame).
    """
    h, w = request.height, request.width
    rx0, ry0, rx1, ry1 = roi
    pad = max(params.min_context, round(params.context * max(rx1 - rx0, ry1 - ry0)))
    cx0, cy0, cx1, cy1 = _clip((rx0 - pad, ry0 - pad, rx1 + pad, ry1 + pad), w, h)
    crop = request.image[cy0:cy1, cx0:cx1]
    full_w, full_h = cx1 - cx0, cy1 - cy0
    scale = min(1.0, params.max_side / max(full_w, full_h))
    if scale < 1.0:
        size = (max(1, round(full_w * scale)), max(1, round(full_h * scale)))
        work = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    else:
        work = np.ascontiguousarray(crop)
    ch, cw = work.shape[:2]
    origin = (cx0, cy0)

    def sx(v: float) -> int:
        return int(min(max(round((v - cx0) * scale), 0), cw))

    def sy(v: float) -> int:
        return int(min(max(round((v - cy0) * scale), 0), ch))

    wx0, wy0, wx1, wy1 = sx(rx0), sy(ry0), max(sx(rx1), sx(rx0) + 1), max(sy(ry1), sy(ry0) + 1)
    # With a box, what lies outside it is background for sure; around a region grown
    # from clicks only probably so (the object may reach further), but surely so
    # outside the bound.
    labels = np.full((ch, cw), cv2.GC_BGD if boxed else cv2.GC_PR_BGD, np.uint8)
    if not boxed:
        bx0, by0, bx1, by1 = bound
        inside = np.zeros((ch, cw), np.bool_)
        inside[sy(by0) : sy(by1), sx(bx0) : sx(bx1)] = True
        labels[~inside] = cv2.GC_BGD
    labels[wy0:wy1, wx0:wx1] = cv2.GC_PR_FGD
    if not ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any():
        # The ROI is the whole frame: GrabCut still needs background samples, so a band
        # along the frame's border starts as probable background.
        band = max(2, round(0.04 * min(ch, cw)))
        labels[:band, :] = cv2.GC_PR_BGD
        labels[-band:, :] = cv2.GC_PR_BGD
        labels[:, :band] = cv2.GC_PR_BGD
        labels[:, -band:] = cv2.GC_PR_BGD
    in_roi = np.zeros((ch, cw), np.bool_)
    in_roi[wy0:wy1, wx0:wx1] = True

    pos = _pixels(request.pos, origin, scale, (cw, ch))
    neg = _pixels(request.neg, origin, scale, (cw, ch))
    blur = np.asarray(cv2.GaussianBlur(work, (5, 5), 0), np.uint8)
    radius = max(params.stroke_radius, round(params.seed_radius * math.hypot(wx1 - wx0, wy1 - wy0)))
    everywhere = np.ones((ch, cw), np.bool_)
    for p in pos:
        labels[_flood_seed(blur, in_roi, p, radius, params.seed_tolerance)] = cv2.GC_FGD
    for p in neg:
        labels[_flood_seed(blur, everywhere, p, radius, params.seed_tolerance)] = cv2.GC_BGD
    for p in neg:
        cv2.circle(labels, p, params.stroke_radius, cv2.GC_BGD, -1)
    for p in pos:
        cv2.circle(labels, p, params.stroke_radius, cv2.GC_FGD, -1)

    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    if (labels == cv2.GC_FGD).any() or (labels == cv2.GC_PR_FGD).any():
        cv2.grabCut(
            work,
            labels,
            (0, 0, 0, 0),
            bgd_model,
            fgd_model,
            params.iterations,
            cv2.GC_INIT_WITH_MASK,
        )
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1.0:
        up = cv2.resize(fg.astype(np.float32), (full_w, full_h), interpolation=cv2.INTER_LINEAR)
        fg = (up >= 0.5).astype(np.uint8)
        pos = _pixels(request.pos, origin, 1.0, (full_w, full_h))
        neg = _pixels(request.neg, origin, 1.0, (full_w, full_h))
    obj = _keep_clicked(fg, pos)
    obj = _fill_holes(obj, neg, params.max_hole_ratio)

    mask = np.zeros((h, w), np.bool_)
    mask[cy0:cy1, cx0:cx1] = obj
    # A click's disc may reach past the box: nothing outside it is kept.
    bx0, by0, bx1, by1 = bound
    mask[:by0] = False
    mask[by1:] = False
    mask[:, :bx0] = False
    mask[:, bx1:] = False
    # Does the object reach the crop's edge (where that is not the image's edge)? Then
    # it probably goes on beyond the crop.
    edges = []
    if cx0 > 0:
        edges.append(obj[:, :3])
    if cx1 < w:
        edges.append(obj[:, -3:])
    if cy0 > 0:
        edges.append(obj[:3, :])
    if cy1 < h:
        edges.append(obj[-3:, :])
    touching = sum(int(e.sum()) for e in edges)
    return mask, touching > max(2, 0.01 * (full_w + full_h))


def _keep_clicked(fg: ByteArray, pos: list[tuple[int, int]]) -> BoolArray:
    """The connected parts of `fg` holding a positive click; the largest without clicks."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return np.zeros(fg.shape, np.bool_)
    keep = {int(labels[y, x]) for x, y in pos} - {0}
    if not keep:
        keep = {1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
    lut = np.zeros(count, np.bool_)
    lut[list(keep)] = True
    kept: BoolArray = lut[labels]
    return kept


def _fill_holes(obj: BoolArray, neg: list[tuple[int, int]], max_ratio: float) -> BoolArray:
    """`obj` with its small holes (no negative click inside) filled."""
    area = int(obj.sum())
    if area == 0 or max_ratio <= 0:
        return obj
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (~obj).astype(np.uint8), connectivity=4
    )
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    clicked = {int(labels[y, x]) for x, y in neg}
    fill = np.zeros(count, np.bool_)
    for i in range(1, count):
        if i in clicked or i in border:
            continue
        if stats[i, cv2.CC_STAT_AREA] <= max_ratio * area:
            fill[i] = True
    if not fill.any():
        return obj
    filled: BoolArray = obj | fill[labels]
    return filled
