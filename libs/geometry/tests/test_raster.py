"""Shape conversions against pycocotools and plain NumPy references."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco

from tessera.geometry import raster

# pycocotools' decode of a single RLE trips a NumPy 2 deprecation inside pycocotools.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
FAST = settings(max_examples=60, deadline=None)
coords = st.floats(-20, 50, allow_nan=False)


def signed_area(ring: npt.NDArray[np.float64]) -> float:
    """Shoelace area; positive for clockwise rings on screen (y down)."""
    x, y = ring[0::2], ring[1::2]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def ellipse_reference(
    ellipse: tuple[float, float, float, float, float], h: int, w: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Pixel centres inside the ellipse, and those too close to the boundary to call."""
    cx, cy, rx, ry, deg = ellipse
    yy, xx = np.mgrid[:h, :w] + 0.5
    a = math.radians(deg)
    u = (xx - cx) * math.cos(a) + (yy - cy) * math.sin(a)
    v = -(xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)
    f = (u / rx) ** 2 + (v / ry) ** 2
    return f <= 1, np.abs(f - 1) < 1e-9


@given(st.lists(coords, min_size=6, max_size=20).filter(lambda v: len(v) % 2 == 0))
@settings(max_examples=100, deadline=None)
def test_polygon_to_mask_equals_pycocotools(poly: list[float]) -> None:
    h, w = 23, 31
    ref = coco.decode(coco.frPyObjects([poly], h, w)[0]).astype(bool)
    got = raster.polygon_to_mask(poly, h, w)
    assert got.flags.c_contiguous
    assert np.array_equal(got, ref)


@given(st.lists(st.lists(coords, min_size=6, max_size=6), min_size=1, max_size=3))
@FAST
def test_polygons_union_equals_pycocotools_merge(polys: list[list[float]]) -> None:
    ref = coco.decode(coco.merge(coco.frPyObjects(polys, 20, 20))).astype(bool)
    assert np.array_equal(raster.polygons_to_mask(polys, 20, 20), ref)


@given(arrays(np.bool_, st.tuples(st.integers(1, 20), st.integers(1, 20))))
@FAST
def test_mask_to_polygons_round_trips_exactly(mask: npt.NDArray[np.bool_]) -> None:
    rings = raster.mask_to_polygons(mask)
    h, w = mask.shape
    assert np.array_equal(raster.polygons_to_mask(rings, h, w, rule="evenodd"), mask)
    assert sum(signed_area(r) for r in rings) == pytest.approx(mask.sum())
    for ring in rings:
        assert np.array_equal(ring, np.round(ring))
        assert ring.shape[0] >= 8


def test_mask_to_polygons_holes_and_diagonals() -> None:
    ring = np.zeros((7, 7), np.bool_)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    outer, hole = raster.mask_to_polygons(ring)
    assert signed_area(outer) == 25
    assert signed_area(hole) == -1
    diagonal = np.eye(3, dtype=np.bool_)
    (joined,) = raster.mask_to_polygons(diagonal)
    assert signed_area(joined) == 3


def test_mask_to_polygons_tolerance_reduces_vertices() -> None:
    yy, xx = np.mgrid[:60, :60]
    disc = (xx - 30) ** 2 + (yy - 30) ** 2 < 25**2
    (exact,) = raster.mask_to_polygons(disc)
    (coarse,) = raster.mask_to_polygons(disc.astype(np.uint8), tolerance=1.5)
    assert coarse.shape[0] < exact.shape[0] / 3
    back = raster.polygon_to_mask(coarse, 60, 60)
    assert (back & disc).sum() / (back | disc).sum() > 0.95
    assert raster.mask_to_polygons(np.zeros((4, 4), np.bool_)) == []


@given(
    st.floats(-5, 40),
    st.floats(-5, 40),
    st.floats(0.5, 25),
    st.floats(0.5, 25),
    st.floats(-360, 360),
)
@FAST
def test_ellipse_to_mask_matches_numpy(
    cx: float, cy: float, rx: float, ry: float, deg: float
) -> None:
    h, w = 30, 36
    got = raster.ellipse_to_mask([cx, cy, cx + rx, cy - ry], h, w, rotation=deg)
    ref, unsure = ellipse_reference((cx, cy, rx, ry, deg), h, w)
    assert np.array_equal(got[~unsure], ref[~unsure])


@given(
    st.floats(-50, 50),
    st.floats(-50, 50),
    st.floats(0, 30),
    st.floats(0, 30),
    st.floats(-360, 360),
)
@FAST
def test_ellipse_to_polygon_lies_on_the_ellipse(
    cx: float, cy: float, rx: float, ry: float, deg: float
) -> None:
    n = 3 + int(abs(deg)) % 38
    poly = raster.ellipse_to_polygon([cx, cy, cx + rx, cy - ry], deg, vertices=n)
    assert poly.shape == (2 * n,)
    a = math.radians(deg)
    dx, dy = poly[0::2] - cx, poly[1::2] - cy
    u = dx * math.cos(a) + dy * math.sin(a)
    v = -dx * math.sin(a) + dy * math.cos(a)
    t = 2 * np.pi * np.arange(n) / n
    np.testing.assert_allclose(u, rx * np.cos(t), atol=1e-9)
    np.testing.assert_allclose(v, ry * np.sin(t), atol=1e-9)


@given(coords, coords, st.floats(0, 30), st.floats(0, 30), st.floats(-360, 360))
@FAST
def test_rectangle_to_polygon_matches_numpy_rotation(
    x: float, y: float, bw: float, bh: float, deg: float
) -> None:
    box = [x, y, x + bw, y + bh]
    got = raster.rectangle_to_polygon(box, deg).reshape(4, 2)
    a = math.radians(deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([x + bw / 2, y + bh / 2])
    corners = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
    np.testing.assert_allclose(got, (corners - centre) @ rot.T + centre, atol=1e-9)


@given(
    st.floats(-50, 50),
    st.floats(-50, 50),
    st.floats(0, 30),
    st.floats(0, 30),
    st.floats(-360, 360),
)
@FAST
def test_shape_bbox_of_rotated_ellipse_and_rectangle(
    cx: float, cy: float, rx: float, ry: float, deg: float
) -> None:
    dense = raster.ellipse_to_polygon([cx, cy, cx + rx, cy - ry], deg, vertices=4000)
    ref = [dense[0::2].min(), dense[1::2].min(), dense[0::2].max(), dense[1::2].max()]
    got = raster.shape_bbox("ellipse", [cx, cy, cx + rx, cy - ry], rotation=deg)
    np.testing.assert_allclose(got, ref, atol=1e-3 * max(rx, ry, 1))
    corners = raster.rectangle_to_polygon([cx - rx, cy - ry, cx + rx, cy + ry], deg)
    got = raster.shape_bbox("rectangle", [cx - rx, cy - ry, cx + rx, cy + ry], rotation=deg)
    expected = [corners[0::2].min(), corners[1::2].min(), corners[0::2].max(), corners[1::2].max()]
    np.testing.assert_allclose(got, expected)


def test_shape_bbox_of_every_type() -> None:
    pts = [3.0, 4.0, -1.0, 9.0, 7.5, 2.0]
    assert raster.shape_bbox("polygon", pts) == (-1.0, 2.0, 7.5, 9.0)
    assert raster.shape_bbox("polyline", pts) == (-1.0, 2.0, 7.5, 9.0)
    assert raster.shape_bbox("points", [5, 6]) == (5.0, 6.0, 5.0, 6.0)
    assert raster.shape_bbox("rectangle", [1, 2, 5, 8]) == (1.0, 2.0, 5.0, 8.0)
    assert raster.shape_bbox("ellipse", [10, 10, 14, 7]) == (6.0, 7.0, 14.0, 13.0)
    cuboid = np.arange(16, dtype=float)
    assert raster.shape_bbox("cuboid", cuboid) == (0.0, 1.0, 14.0, 15.0)
    assert raster.shape_bbox("mask", [0, 3, 1, 4, 2, 5]) == (1.0, 4.0, 3.0, 6.0)
    elements = [[1, 1], [5, 2], [3, 9]]
    assert raster.shape_bbox("skeleton", [], elements=elements) == (1.0, 1.0, 5.0, 9.0)


def test_fill_ratio() -> None:
    assert raster.fill_ratio("rectangle", [2, 3, 12, 9]) == 1.0
    assert raster.fill_ratio("rectangle", [0, 0, 100, 100], rotation=45) == pytest.approx(
        0.5, abs=0.01
    )
    assert raster.fill_ratio("ellipse", [50, 50, 90, 20]) == pytest.approx(math.pi / 4, abs=0.01)
    assert raster.fill_ratio("polygon", [0, 0, 100, 0, 0, 100]) == pytest.approx(0.5, abs=0.01)
    assert raster.fill_ratio("mask", [2, 3, 4, 0, 0, 2, 2]) == pytest.approx(3 / 9)
    assert raster.fill_ratio("polygon", [0.1, 0.1, 0.2, 0.1, 0.2, 0.2]) == 0.0
    assert raster.FILL_RATIO_BOX_LIMIT == 0.4


@given(st.lists(coords, min_size=6, max_size=16).filter(lambda v: len(v) % 2 == 0))
@FAST
def test_fill_ratio_of_polygon_matches_pycocotools(poly: list[float]) -> None:
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    fx, fy = math.floor(xs.min()), math.floor(ys.min())
    gw, gh = math.ceil(xs.max()) - fx, math.ceil(ys.max()) - fy
    shifted = np.column_stack([xs - fx, ys - fy]).ravel().tolist()
    x0, y0, x1, y1 = xs.min() - fx, ys.min() - fy, xs.max() - fx, ys.max() - fy
    inside = coco.area(coco.frPyObjects([shifted], gh, gw)[0])
    box = coco.area(coco.frPyObjects([[x0, y0, x0, y1, x1, y1, x1, y0]], gh, gw)[0])
    expected = min(1.0, inside / box) if box else 0.0
    assert raster.fill_ratio("polygon", poly) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: raster.polygon_to_mask([0, 0, 1], 4, 4), "even number"),
        (lambda: raster.polygon_to_mask([0, 0, 1, np.nan], 4, 4), "finite"),
        (lambda: raster.polygon_to_mask([0, 0, 1, 1], 4, -1), "non-negative"),
        (lambda: raster.polygons_to_mask([[0, 0, 1, 1, 2, 0]], 4, 4, rule="xor"), "rule"),  # type: ignore[arg-type]
        (lambda: raster.mask_to_polygons(np.zeros((2, 2), np.int32)), "dtype"),
        (lambda: raster.mask_to_polygons(np.zeros(4, np.bool_)), "2-D"),
        (lambda: raster.mask_to_polygons(np.zeros((2, 2), np.bool_), -1.0), "non-negative"),
        (lambda: raster.mask_to_polygons(np.zeros((2, 2), np.bool_), np.inf), "finite"),
        (lambda: raster.ellipse_to_polygon([0, 0, -1, -1]), "rightX"),
        (lambda: raster.ellipse_to_polygon([0, 0, 1, -1], vertices=2), "vertices"),
        (lambda: raster.ellipse_to_polygon([0, 0, 1], 0.0), "4 numbers"),
        (lambda: raster.ellipse_to_mask([0, 0, 1, -1], 4, 4, rotation=np.nan), "finite"),
        (lambda: raster.rectangle_to_polygon([5, 0, 1, 1]), "xtl <= xbr"),
        (lambda: raster.shape_bbox("cuboid", [0.0] * 8), "16 numbers"),
        (lambda: raster.shape_bbox("skeleton", []), "elements"),
        (lambda: raster.shape_bbox("circle", [0, 0]), "unknown"),  # type: ignore[arg-type]
        (lambda: raster.shape_bbox("mask", [1, 5, 0, 4, 0]), "inverted"),
        (lambda: raster.fill_ratio("points", [0, 0]), "fill_ratio needs"),  # type: ignore[arg-type]
        (lambda: raster.fill_ratio("polygon", [0, 0, 1e8, 0, 0, 1e8]), "2\\*\\*32"),
        (lambda: raster.fill_ratio("polygon", [0, 0, 1, 1]), "at least 3"),
    ],
)
def test_bad_input_raises_value_error(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
