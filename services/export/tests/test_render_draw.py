"""`render(image, objects, labels, options)`, the drawing of a frame's annotations, shape
type by shape type, checked on the pixels; and a track's shape on a frame."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tessera.export.model import Label, Shape, Tag
from tessera.export.renders.draw import FALLBACK_COLOURS, RenderOptions, render, skeleton_edges
from tessera.export.renders.service import displayed, track_on_frame

BACKGROUND = (100, 100, 100)
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)
SVG = (
    '<line x1="10" y1="10" x2="50" y2="50" stroke="black" data-type="edge" '
    'data-node-from="1" data-node-to="2"></line>'
    '<circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="1" '
    'data-label-id="11"></circle>'
    '<circle r="1.5" cx="50" cy="50" data-type="element node" data-node-id="2" '
    'data-label-name="tail"></circle>'
)
LABELS = (
    Label(1, "car", "rectangle", "#ff0000"),
    Label(2, "person", "any", "#0000ff"),
    Label(10, "body", "skeleton", "#00ff00", svg=SVG, sublabels=(
        Label(11, "head", "points", "#ff00ff", parent_id=10),
        Label(12, "tail", "points", "#00ffff", parent_id=10),
    )),
    Label(20, "plain", "any", ""),
)  # fmt: skip
PLAIN = RenderOptions(outline_width=3, write_labels=False)


def frame(size: tuple[int, int] = (200, 150)) -> Image.Image:
    return Image.new("RGB", size, BACKGROUND)


def drawn(*objects: Shape | Tag, options: RenderOptions = PLAIN) -> np.ndarray:
    """The rendered pixels (rows, columns, RGB) of `objects` on a grey 200 x 150 frame."""
    picture = render(frame(), list(objects), LABELS, options)
    assert picture.mode == "RGB"
    return np.asarray(picture)


def at(pixels: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in pixels[y, x])


def rectangle(points: list[float], label_id: int = 1, **extra: object) -> Shape:
    return Shape("rectangle", label_id, points, **extra)  # type: ignore[arg-type]


def test_nothing_to_draw_leaves_the_frame_as_it_was() -> None:
    source = frame()
    picture = render(source, [], LABELS)
    assert np.array_equal(np.asarray(picture), np.asarray(source))
    assert picture is not source


def test_a_rectangle_is_outlined_in_its_labels_colour() -> None:
    pixels = drawn(rectangle([20, 30, 120, 90]))
    for x, y in ((70, 30), (20, 60), (120, 60), (70, 90), (20, 30), (120, 90)):
        assert at(pixels, x, y) == RED, (x, y)
    for x, y in ((70, 60), (10, 10), (130, 60), (70, 100)):
        assert at(pixels, x, y) == BACKGROUND, (x, y)


def test_a_rotated_rectangle_turns_about_its_centre() -> None:
    pixels = drawn(rectangle([40, 60, 160, 80], rotation=90))  # 120 x 20 about (100, 70)
    for x, y in ((90, 70), (110, 70), (100, 10), (100, 130)):
        assert at(pixels, x, y) == RED, (x, y)
    for x, y in ((40, 70), (160, 70), (100, 70)):
        assert at(pixels, x, y) == BACKGROUND, (x, y)


def test_polygons_close_and_polylines_do_not() -> None:
    polygon = Shape("polygon", 2, [20, 20, 180, 20, 100, 120])
    pixels = drawn(polygon)
    assert at(pixels, 100, 20) == BLUE
    assert at(pixels, 60, 70) == BLUE  # on the closing edge (100, 120) -> (20, 20)
    assert at(pixels, 100, 60) == BACKGROUND
    polyline = Shape("polyline", 2, [20, 20, 180, 20, 100, 120])
    pixels = drawn(polyline)
    assert (at(pixels, 100, 20), at(pixels, 140, 70)) == (BLUE, BLUE)
    assert at(pixels, 60, 70) == BACKGROUND


def test_points_are_dots() -> None:
    pixels = drawn(Shape("points", 1, [50, 50, 150, 100]))
    assert (at(pixels, 50, 50), at(pixels, 150, 100)) == (RED, RED)
    assert at(pixels, 100, 75) == BACKGROUND
    hollow = drawn(Shape("points", 1, [50, 50], occluded=True))
    assert at(hollow, 50, 50) == BACKGROUND  # an occluded point is a ring
    assert RED in {at(hollow, 50 + dx, 50) for dx in range(-6, 7)}


@pytest.mark.parametrize(
    ("rotation", "on", "off"),
    [
        (0.0, [(160, 75), (40, 75), (100, 55), (100, 95)], [(100, 15), (100, 75)]),
        (90.0, [(100, 15), (100, 135), (80, 75), (120, 75)], [(160, 75), (100, 75)]),
    ],
)
def test_an_ellipse_follows_its_radii_and_rotation(
    rotation: float, on: list[tuple[int, int]], off: list[tuple[int, int]]
) -> None:
    # centre (100, 75), rx = 160 - 100 = 60, ry = 75 - 55 = 20
    pixels = drawn(Shape("ellipse", 1, [100, 75, 160, 55], rotation=rotation))
    for x, y in on:
        assert at(pixels, x, y) == RED, (x, y)
    for x, y in off:
        assert at(pixels, x, y) == BACKGROUND, (x, y)


def test_a_cuboid_has_both_faces_and_the_edges_between_them() -> None:
    front = [20, 20, 20, 80, 80, 20, 80, 80]  # tl1, bl1, tr1, br1
    back = [60, 10, 60, 70, 120, 10, 120, 70]  # tl2, bl2, tr2, br2
    pixels = drawn(Shape("cuboid", 1, front + back))
    for x, y in (
        (50, 20),
        (50, 80),
        (20, 50),
        (80, 50),  # the front face
        (90, 10),
        (120, 40),
        (60, 40),  # the back face
        (40, 15),
        (100, 75),
        (100, 15),
    ):  # edges tl1-tl2, br1-br2, tr1-tr2
        assert at(pixels, x, y) == RED, (x, y)  # fmt: skip
    assert at(pixels, 100, 40) == BACKGROUND


def test_a_mask_is_filled_translucent_over_its_box() -> None:
    # a 10 x 10 box at (50, 40): 50 pixels off, then 50 on (its bottom five rows)
    mask = Shape("mask", 1, [50, 50, 50, 40, 59, 49])
    pixels = drawn(mask)
    tinted = (178, 50, 50)  # half red, half grey
    for x, y in ((50, 45), (59, 49), (55, 47)):
        assert at(pixels, x, y) == tinted, (x, y)
    for x, y in ((55, 44), (49, 47), (60, 47), (55, 50)):
        assert at(pixels, x, y) == BACKGROUND, (x, y)
    lighter = drawn(Shape("mask", 1, [50, 50, 50, 40, 59, 49], occluded=True))
    assert at(lighter, 55, 47) == (139, 75, 75)  # occluded: half the opacity
    opaque = drawn(mask, options=RenderOptions(write_labels=False, opacity=1.0))
    assert at(opaque, 55, 47) == RED


def test_a_skeleton_joins_its_points_by_the_labels_graph() -> None:
    assert skeleton_edges(LABELS[2]) == ((11, 12),)
    head = Shape("points", 11, [40, 40])
    tail = Shape("points", 12, [140, 40])
    pixels = drawn(Shape("skeleton", 10, [], elements=(head, tail)))
    assert at(pixels, 90, 40) == GREEN  # the edge, in the skeleton's colour
    assert (at(pixels, 40, 40), at(pixels, 140, 40)) == (MAGENTA, CYAN)  # the points'
    hidden_tail = Shape("points", 12, [140, 40], outside=True)
    pixels = drawn(Shape("skeleton", 10, [], elements=(head, hidden_tail)))
    assert at(pixels, 40, 40) == MAGENTA
    assert (at(pixels, 90, 40), at(pixels, 140, 40)) == (BACKGROUND, BACKGROUND)


def test_z_order_decides_what_is_on_top() -> None:
    # the red box's right edge crosses the blue box's top edge at (100, 60)
    red = rectangle([20, 20, 100, 100], z_order=1)
    blue = rectangle([60, 60, 140, 140], label_id=2, z_order=0)
    assert at(drawn(red, blue), 100, 60) == RED
    assert at(drawn(red, Shape("rectangle", 2, blue.points, z_order=2)), 100, 60) == BLUE
    # on one level, a track's shape over a plain one (as CVAT exports them)
    track = Shape("rectangle", 2, blue.points, z_order=1, track_id=0)
    assert at(drawn(track, red), 100, 60) == BLUE


def test_occluded_shapes_are_dashed_and_outside_ones_not_drawn() -> None:
    def red_share(*objects: Shape) -> float:
        row = drawn(*objects)[30, 21:120]
        return float(np.all(row == RED, axis=1).mean())

    assert red_share(rectangle([20, 30, 120, 90])) == 1.0
    assert 0.3 < red_share(rectangle([20, 30, 120, 90], occluded=True)) < 0.8
    gone = drawn(rectangle([20, 30, 120, 90], outside=True, track_id=3))
    assert np.all(gone == BACKGROUND)


def test_labels_are_written_on_tabs_and_tags_listed_in_the_corner() -> None:
    box = rectangle([50, 60, 150, 100])
    assert at(drawn(box, options=RenderOptions(outline_width=3)), 52, 57) == RED  # the tab
    assert at(drawn(box), 52, 57) == BACKGROUND
    pixels = drawn(Tag(2), Tag(1))
    assert at(pixels, 1, 1) == (24, 24, 24)  # the panel
    assert at(pixels, 6, 6) == BLUE  # the first tag's swatch
    assert RED in {at(pixels, 6, y) for y in range(10, 40)}  # the second's, below it
    assert at(pixels, 150, 100) == BACKGROUND


def test_a_label_without_a_colour_gets_one_of_the_palette() -> None:
    pixels = drawn(rectangle([20, 30, 120, 90], label_id=20))
    assert at(pixels, 70, 30) == FALLBACK_COLOURS[20 % len(FALLBACK_COLOURS)]


def test_max_size_scales_the_picture_and_the_shapes() -> None:
    options = RenderOptions(outline_width=2, write_labels=False, max_size=100)
    picture = render(frame(), [rectangle([20, 30, 120, 90])], LABELS, options)
    assert picture.size == (100, 75)
    pixels = np.asarray(picture)
    assert at(pixels, 35, 15) == RED  # the top edge, at half the coordinates
    assert at(pixels, 35, 30) == BACKGROUND


def test_a_shape_that_cannot_be_drawn_is_left_out() -> None:
    broken = Shape("mask", 1, [1, 2])
    pixels = drawn(broken, rectangle([20, 30, 120, 90]))
    assert at(pixels, 70, 30) == RED


def test_a_track_is_drawn_where_it_is_between_its_keyframes() -> None:
    keyframes: list[dict[str, Any]] = [
        {"type": "rectangle", "frame": 0, "points": [0, 0, 20, 20], "attributes": []},
        {"type": "rectangle", "frame": 10, "points": [100, 100, 120, 120], "attributes": [],
         "occluded": True},
    ]  # fmt: skip
    track = {"id": 7, "frame": 0, "label_id": 1, "group": 0, "source": "manual",
             "attributes": [], "shapes": keyframes}  # fmt: skip
    shape = track_on_frame(track, 5)
    assert shape is not None
    assert (list(shape.points), shape.track_id, shape.occluded) == ([50, 50, 70, 70], 7, False)
    assert track_on_frame(track, 10) is not None
    pixels = drawn(shape)
    assert (at(pixels, 60, 50), at(pixels, 50, 60), at(pixels, 70, 70)) == (RED, RED, RED)
    assert (at(pixels, 10, 0), at(pixels, 110, 100)) == (BACKGROUND, BACKGROUND)

    ended = {**track, "shapes": [keyframes[0], {**keyframes[1], "outside": True}]}
    assert track_on_frame(ended, 12) is None
    outside = track_on_frame(ended, 10)
    assert outside is not None
    assert outside.outside
    assert track_on_frame({**track, "frame": 3}, 2) is None


def test_a_frame_is_decoded_as_it_is_shown() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter when shown
    Image.new("RGB", (60, 20), RED).save(buffer, format="JPEG", exif=exif)
    image = displayed(buffer.getvalue())
    assert (image.size, image.mode) == ((20, 60), "RGB")
    grey = io.BytesIO()
    Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)).save(grey, "PNG")
    assert np.asarray(displayed(grey.getvalue()))[1, 1].tolist() == [255, 255, 255]
