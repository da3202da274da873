"""Shape conversions: polygons, ellipses and rotated boxes to masks and back, boxes, fill.

Pixel convention (pycocotools'): pixel (col, row) covers [col, col + 1] x [row, row + 1]
and belongs to a shape when its centre (col + 0.5, row + 0.5) is inside. Polygons are
rasterised exactly as `pycocotools.mask.frPyObjects` does. Masks are (h, w) arrays,
indexed [row, col]. Rotations are CVAT's: degrees, about the shape's centre, clockwise
on screen (the y axis points down).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tessera.geometry._jit import kernel
from tessera.geometry._validate import (
    MAX_PIXELS,
    BoolArray,
    ByteArray,
    FloatArray,
    IntArray,
    as_coords,
    as_float,
    as_int_list,
    as_mask,
    as_numbers,
    check_size,
)
from tessera.geometry.rle import _area, _polygon_toggles, _toggles_to_counts

FILL_RATIO_BOX_LIMIT = 0.4
"""Below this fill ratio a polygon or mask trains a detector better than a box does."""

ShapeType = Literal[
    "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton"
]

Point = tuple[float, float]
Ellipse = tuple[float, float, float, float, float]
"""(cx, cy, rx, ry, rotation in radians)."""

_DX = (1, 0, -1, 0)
_DY = (0, 1, 0, -1)


# --- kernels -------------------------------------------------------------------------------


@kernel
def _fill_toggles(pos: IntArray, h: int, w: int, out: BoolArray) -> None:
    """Set the pixels between consecutive pairs of sorted column-major toggle positions."""
    n = h * w
    for i in range(0, pos.shape[0] - 1, 2):
        q = pos[i]
        end = min(pos[i + 1], n)
        while q < end:
            x = q // h
            y = q % h
            e = min(end - q, h - y)
            for yy in range(y, y + e):
                out[yy, x] = True
            q += e


@kernel
def _pixel(m: ByteArray, x: int, y: int) -> bool:
    return bool(0 <= y < m.shape[0] and 0 <= x < m.shape[1] and m[y, x] != 0)


@kernel
def _step_ok(m: ByteArray, vx: int, vy: int, d: int) -> bool:
    """Whether the pixel edge leaving corner (vx, vy) in direction d has foreground on
    its right (directions: 0 east, 1 south, 2 west, 3 north; y points down)."""
    if d == 0:
        return _pixel(m, vx, vy) and not _pixel(m, vx, vy - 1)
    if d == 1:
        return _pixel(m, vx - 1, vy) and not _pixel(m, vx, vy)
    if d == 2:
        return _pixel(m, vx - 1, vy - 1) and not _pixel(m, vx - 1, vy)
    return _pixel(m, vx, vy - 1) and not _pixel(m, vx - 1, vy - 1)


@kernel
def _grow(a: FloatArray, need: int) -> FloatArray:
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]))
    out[: a.shape[0]] = a
    return out


@kernel
def _trace(m: ByteArray) -> tuple[FloatArray, IntArray]:
    """Closed pixel-edge contours of the foreground, as corner coordinates.

    Foreground is kept on the right of the walk, so outer boundaries run clockwise on
    screen (positive shoelace area with y down) and holes anticlockwise. Where two
    foreground pixels touch only at a corner the walk turns left, joining them
    (8-connected foreground). Only corners where the direction changes are kept.
    Returns the flat coordinates and the start of each ring in them (plus the end).
    """
    h, w = m.shape
    seen = np.zeros((h + 1, w), np.bool_)
    xy = np.empty(64)
    offs = np.zeros(16, np.int64)
    nring = 0
    k = 0
    for sy in range(h + 1):
        for sx in range(w):
            below = _pixel(m, sx, sy)
            if seen[sy, sx] or below == _pixel(m, sx, sy - 1):
                continue
            vx, vy, d0 = (sx, sy, 0) if below else (sx + 1, sy, 2)
            vx0, vy0 = vx, vy
            prev = d0
            d = d0
            while True:
                if d % 2 == 0:
                    seen[vy, vx if d == 0 else vx - 1] = True
                vx += _DX[d]
                vy += _DY[d]
                found = False
                for turn in (3, 0, 1):
                    d = (prev + turn) % 4
                    if _step_ok(m, vx, vy, d):
                        found = True
                        break
                if not found:
                    break
                if d != prev:
                    xy = _grow(xy, k + 2)
                    xy[k] = vx
                    xy[k + 1] = vy
                    k += 2
                if vx == vx0 and vy == vy0 and d == d0:
                    break
                prev = d
            nring += 1
            if nring + 1 > offs.shape[0]:
                grown = np.zeros(2 * offs.shape[0], np.int64)
                grown[: offs.shape[0]] = offs
                offs = grown
            offs[nring] = k
    return xy[:k], offs[: nring + 1]


@kernel
def _segment_distance(p: Point, a: Point, b: Point) -> float:
    px, py = p
    ax, ay = a
    bx, by = b
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return math.hypot(px - ax, py - ay)
    t = min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


@kernel
def _simplify_ring(ring: FloatArray, tolerance: float) -> FloatArray:
    """Douglas-Peucker on a closed ring: split at vertex 0 and the vertex farthest from it,
    then keep every vertex farther than `tolerance` from the chord it would shorten."""
    n = ring.shape[0] // 2
    keep = np.zeros(n + 1, np.bool_)
    far = 0
    best = -1.0
    for i in range(n):
        dist = math.hypot(ring[2 * i] - ring[0], ring[2 * i + 1] - ring[1])
        if dist > best:
            best = dist
            far = i
    keep[0] = True
    keep[far] = True
    keep[n] = True
    stack = np.empty((2 * n + 2, 2), np.int64)
    stack[0, 0], stack[0, 1] = 0, far
    stack[1, 0], stack[1, 1] = far, n
    top = 2
    while top > 0:
        top -= 1
        a, b = stack[top, 0], stack[top, 1]
        if b - a < 2:
            continue
        pa = (ring[2 * a], ring[2 * a + 1])
        pb = (ring[2 * (b % n)], ring[2 * (b % n) + 1])
        split = -1
        best = tolerance
        for i in range(a + 1, b):
            dist = _segment_distance((ring[2 * i], ring[2 * i + 1]), pa, pb)
            if dist > best:
                best = dist
                split = i
        if split >= 0:
            keep[split] = True
            stack[top, 0], stack[top, 1] = a, split
            stack[top + 1, 0], stack[top + 1, 1] = split, b
            top += 2
    out = np.empty(2 * n)
    k = 0
    for i in range(n):
        if keep[i]:
            out[k] = ring[2 * i]
            out[k + 1] = ring[2 * i + 1]
            k += 2
    return out[:k]


@kernel
def _ellipse_polygon(ell: Ellipse, n: int) -> FloatArray:
    cx, cy, rx, ry, angle = ell
    out = np.empty(2 * n)
    c = math.cos(angle)
    s = math.sin(angle)
    for i in range(n):
        t = 2.0 * math.pi * i / n
        lx = rx * math.cos(t)
        ly = ry * math.sin(t)
        out[2 * i] = cx + lx * c - ly * s
        out[2 * i + 1] = cy + lx * s + ly * c
    return out


@kernel
def _ellipse_rows(ell: Ellipse, col: int) -> tuple[int, int]:
    """Rows [first, last) of pixel column `col` whose centres lie in the ellipse."""
    cx, cy, rx, ry, angle = ell
    c = math.cos(angle)
    s = math.sin(angle)
    dx = col + 0.5 - cx
    irx = 1.0 / (rx * rx)
    iry = 1.0 / (ry * ry)
    qa = s * s * irx + c * c * iry
    qb = 2.0 * dx * c * s * (irx - iry)
    qc = dx * dx * (c * c * irx + s * s * iry) - 1.0
    disc = qb * qb - 4.0 * qa * qc
    if disc < 0.0:
        return 0, 0
    root = math.sqrt(disc)
    lo = (-qb - root) / (2.0 * qa)
    hi = (-qb + root) / (2.0 * qa)
    return math.ceil(cy + lo - 0.5), math.floor(cy + hi - 0.5) + 1


@kernel
def _ellipse_fill(ell: Ellipse, out: BoolArray) -> None:
    """Set the pixels of `out` whose centres lie in the ellipse."""
    h, w = out.shape
    if ell[2] <= 0.0 or ell[3] <= 0.0:
        return
    for col in range(w):
        first, last = _ellipse_rows(ell, col)
        for row in range(max(first, 0), min(last, h)):
            out[row, col] = True


@kernel
def _ellipse_count(ell: Ellipse, x0: int, x1: int) -> int:
    """Pixels of the ellipse in columns x0..x1-1 (all rows)."""
    total = 0
    if ell[2] <= 0.0 or ell[3] <= 0.0:
        return 0
    for col in range(x0, x1):
        first, last = _ellipse_rows(ell, col)
        total += max(last - first, 0)
    return total


@kernel
def _rotate_box(box: FloatArray, angle: float) -> FloatArray:
    x0, y0, x1, y1 = box[0], box[1], box[2], box[3]
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0
    c = math.cos(angle)
    s = math.sin(angle)
    out = np.empty(8)
    corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    for i in range(4):
        px, py = corners[i]
        out[2 * i] = cx + (px - cx) * c - (py - cy) * s
        out[2 * i + 1] = cy + (px - cx) * s + (py - cy) * c
    return out


@kernel
def _points_bbox(xy: FloatArray) -> FloatArray:
    out = np.empty(4)
    out[0] = xy[0::2].min()
    out[1] = xy[1::2].min()
    out[2] = xy[0::2].max()
    out[3] = xy[1::2].max()
    return out


@kernel
def _grid_pixels(xy: FloatArray, bbox: FloatArray) -> int:
    """Pixels of the polygon rasterised on the grid of whole pixels covering `bbox`."""
    fx = math.floor(bbox[0])
    fy = math.floor(bbox[1])
    gw = int(math.ceil(bbox[2]) - fx)
    gh = int(math.ceil(bbox[3]) - fy)
    shifted = xy.copy()
    shifted[0::2] -= fx
    shifted[1::2] -= fy
    return _area(_toggles_to_counts(_polygon_toggles(shifted, gh, gw), gh * gw))


# --- public API ----------------------------------------------------------------------------


def polygon_to_mask(points: Sequence[float] | FloatArray, h: int, w: int) -> BoolArray:
    """The (h, w) bool mask of one polygon `[x0, y0, x1, y1, ...]`, filled even-odd.

    Equals `pycocotools.mask.decode(frPyObjects([points], h, w)[0])` (as bool, C order).
    """
    return polygons_to_mask([points], h, w)


def polygons_to_mask(
    polygons: Sequence[Sequence[float] | FloatArray],
    h: int,
    w: int,
    *,
    rule: Literal["union", "evenodd"] = "union",
) -> BoolArray:
    """The (h, w) bool mask of several polygons.

    `rule="union"` ORs them (COCO's meaning of a list of polygons); `rule="evenodd"`
    toggles pixels once per polygon covering them, which turns the rings returned by
    `mask_to_polygons` (outer boundaries and holes) back into the mask.
    """
    h, w = check_size(h, w)
    if rule not in ("union", "evenodd"):
        raise ValueError(f"rule must be 'union' or 'evenodd', got {rule!r}")
    if isinstance(polygons, np.ndarray) or not isinstance(polygons, Sequence):
        raise ValueError("polygons must be a list of flat coordinate lists")
    rings = [as_coords(p, f"polygons[{i}]") for i, p in enumerate(polygons)]
    out = np.zeros((h, w), np.bool_)
    if rule == "union":
        for ring in rings:
            _fill_toggles(_polygon_toggles(ring, h, w), h, w, out)
    elif rings:
        toggles = np.sort(np.concatenate([_polygon_toggles(r, h, w) for r in rings]))
        _fill_toggles(toggles, h, w, out)
    return out


def mask_to_polygons(mask: npt.NDArray[Any], tolerance: float = 0.0) -> list[FloatArray]:
    """Boundaries of a 2-D bool or uint8 mask as flat `[x0, y0, x1, y1, ...]` float arrays.

    Vertices lie on pixel corners (integer coordinates), so with `tolerance=0` every
    ring is exact: `polygons_to_mask(rings, h, w, rule="evenodd")` gives the mask back.
    Holes are rings of their own, told apart by orientation: outer boundaries run
    clockwise on screen (positive shoelace area, y down), holes anticlockwise (negative).
    Rings come in raster order of their top-left edge, so an outer boundary precedes its
    holes. Diagonal neighbours belong to one ring (8-connected foreground).
    `tolerance > 0` simplifies each ring with Douglas-Peucker (max deviation in pixels)
    and drops rings left with fewer than 3 vertices.
    """
    m = np.ascontiguousarray(as_mask(mask))
    tol = as_float(tolerance, "tolerance")
    if tol < 0:
        raise ValueError(f"tolerance must be non-negative, got {tol}")
    xy, offs = _trace(m)
    rings = []
    for i in range(offs.shape[0] - 1):
        ring = xy[offs[i] : offs[i + 1]]
        if tol > 0:
            ring = _simplify_ring(ring, tol)
        if ring.shape[0] >= 6:
            rings.append(ring)
    return rings


def _ellipse_parts(points: object, rotation: object) -> Ellipse:
    cx, cy, right_x, top_y = as_numbers(points, "points", 4)
    rx, ry = right_x - cx, cy - top_y
    if rx < 0 or ry < 0:
        raise ValueError(f"ellipse needs rightX >= cx and topY <= cy, got rx={rx}, ry={ry}")
    return cx, cy, rx, ry, math.radians(as_float(rotation, "rotation"))


def ellipse_to_polygon(
    points: Sequence[float] | FloatArray, rotation: float = 0.0, *, vertices: int = 16
) -> FloatArray:
    """A polygon of `vertices` points on a CVAT ellipse `[cx, cy, rightX, topY]`.

    rx = rightX - cx, ry = cy - topY; vertex i is at parameter angle 2*pi*i/vertices,
    starting at the end of the rotated x semi-axis, clockwise on screen. COCO exports
    use 12-20 vertices.
    """
    ell = _ellipse_parts(points, rotation)
    if isinstance(vertices, bool) or not isinstance(vertices, int) or vertices < 3:
        raise ValueError(f"vertices must be an int >= 3, got {vertices!r}")
    return _ellipse_polygon(ell, vertices)


def ellipse_to_mask(
    points: Sequence[float] | FloatArray, h: int, w: int, rotation: float = 0.0
) -> BoolArray:
    """The (h, w) bool mask of pixels whose centre lies in the CVAT ellipse (boundary in)."""
    h, w = check_size(h, w)
    out = np.zeros((h, w), np.bool_)
    _ellipse_fill(_ellipse_parts(points, rotation), out)
    return out


def rectangle_to_polygon(points: Sequence[float] | FloatArray, rotation: float = 0.0) -> FloatArray:
    """Corners of a CVAT rectangle `[xtl, ytl, xbr, ybr]` rotated by `rotation` degrees
    about its centre: top-left, top-right, bottom-right, bottom-left before rotation."""
    box = as_numbers(points, "points", 4)
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"rectangle needs xtl <= xbr and ytl <= ybr, got {box.tolist()}")
    return _rotate_box(box, math.radians(as_float(rotation, "rotation")))


def shape_bbox(
    shape_type: ShapeType,
    points: Sequence[float] | FloatArray,
    *,
    rotation: float = 0.0,
    elements: Sequence[Sequence[float] | FloatArray] | None = None,
) -> tuple[float, float, float, float]:
    """Axis-aligned box `(xtl, ytl, xbr, ybr)` of a CVAT shape.

    Rotated rectangles and ellipses give the box of the rotated shape; a cuboid takes its
    8 points (16 numbers); a mask gives the pixels' extent `(left, top, right + 1,
    bottom + 1)`; a skeleton (empty points) the box of its `elements`' points (pass only
    the visible ones).
    """
    if shape_type == "skeleton":
        if not elements:
            raise ValueError("skeleton needs elements, the points of its sub-shapes")
        boxes = np.array(
            [_points_bbox(as_coords(e, f"elements[{i}]")) for i, e in enumerate(elements)]
        )
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        return (float(x0), float(y0), float(boxes[:, 2].max()), float(boxes[:, 3].max()))
    if shape_type == "rectangle":
        xy = rectangle_to_polygon(points, rotation)
    elif shape_type == "ellipse":
        cx, cy, rx, ry, angle = _ellipse_parts(points, rotation)
        hx = math.hypot(rx * math.cos(angle), ry * math.sin(angle))
        hy = math.hypot(rx * math.sin(angle), ry * math.cos(angle))
        xy = np.array([cx - hx, cy - hy, cx + hx, cy + hy])
    elif shape_type == "cuboid":
        xy = as_coords(points)
        if xy.shape[0] != 16:
            raise ValueError(f"cuboid needs 16 numbers (8 points), got {xy.shape[0]}")
    elif shape_type == "mask":
        left, top, right, bottom = _mask_box(points)
        xy = np.array([left, top, right + 1.0, bottom + 1.0])
    elif shape_type in ("polygon", "polyline", "points"):
        xy = as_coords(points)
    else:
        raise ValueError(f"unknown shape type {shape_type!r}")
    x0, y0, x1, y1 = _points_bbox(xy)
    return (float(x0), float(y0), float(x1), float(y1))


def _mask_box(points: object) -> tuple[int, int, int, int]:
    values = as_numbers(points, "points")
    if values.shape[0] < 5:
        raise ValueError("mask points must hold runs followed by [left, top, right, bottom]")
    left, top, right, bottom = (int(v) for v in values[-4:])
    if right < left or bottom < top:
        raise ValueError(f"mask box [{left}, {top}, {right}, {bottom}] is inverted")
    return left, top, right, bottom


def fill_ratio(
    shape_type: Literal["rectangle", "polygon", "ellipse", "mask"],
    points: Sequence[float] | FloatArray,
    *,
    rotation: float = 0.0,
) -> float:
    """Object pixels over pixels of the shape's axis-aligned box, in [0, 1].

    Both are counted with the pixel-centre convention on a grid covering the box (a
    mask counts its set pixels over its box's pixels). An upright rectangle gives 1.0;
    below `FILL_RATIO_BOX_LIMIT` (0.4) a polygon or mask serves detection better than
    a box. A shape whose box holds no pixel centre gives 0.0.
    """
    if shape_type == "mask":
        left, top, right, bottom = _mask_box(points)
        runs = as_int_list(as_numbers(points, "points")[:-4], "points runs")
        return min(1.0, _area(runs) / ((right - left + 1) * (bottom - top + 1)))
    if shape_type == "ellipse":
        x0, y0, x1, y1 = shape_bbox("ellipse", points, rotation=rotation)
        bbox = _checked_grid(np.array([x0, y0, x1, y1]))
        inside = _ellipse_count(_ellipse_parts(points, rotation), math.floor(x0), math.ceil(x1))
    elif shape_type in ("rectangle", "polygon"):
        if shape_type == "rectangle":
            xy = rectangle_to_polygon(points, rotation)
        else:
            xy = as_coords(points, min_points=3)
        bbox = _checked_grid(_points_bbox(xy))
        inside = _grid_pixels(xy, bbox)
    else:
        raise ValueError(
            f"fill_ratio needs a rectangle, polygon, ellipse or mask, got {shape_type!r}"
        )
    x0, y0, x1, y1 = bbox
    whole = _grid_pixels(np.array([x0, y0, x0, y1, x1, y1, x1, y0]), bbox)
    return min(1.0, inside / whole) if whole else 0.0


def _checked_grid(bbox: FloatArray) -> FloatArray:
    cells = (math.ceil(bbox[2]) - math.floor(bbox[0])) * (math.ceil(bbox[3]) - math.floor(bbox[1]))
    if cells > MAX_PIXELS:
        raise ValueError(f"shape's box {bbox.tolist()} covers more than 2**32 - 1 pixels")
    return bbox
