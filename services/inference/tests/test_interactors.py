"""The GrabCut interactor on synthetic photographs: an orange ellipse on a blue-grey
textured background, a green block touching it, noise and soft edges, so that GrabCut
has real colour statistics to learn and a real neighbour to leave out."""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tessera.geometry import cvat_mask_to_array, polygon_to_mask
from tessera.inference.interactors import (
    GrabCutInteractor,
    GrabCutParams,
    InteractorInputError,
    InteractorResult,
    segment,
)

BoolArray = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]

CLICK = [150, 120]  # inside the ellipse
NEIGHBOUR_CLICK = [226, 120]  # inside the green block
ELLIPSE_BOX = [[82, 70], [218, 172]]  # the ellipse with a margin (and a strip of the block)
BOTH_BOX = [[80, 52], [260, 198]]  # the ellipse and the block


def scene(seed: int = 0, *, textured: bool = False) -> tuple[Image, BoolArray, BoolArray]:
    """A 320x240 RGB photo, the ellipse's true mask, the green block's true mask."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    cells = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    background = cv2.resize(cells, (w, h), interpolation=cv2.INTER_NEAREST) // 3
    image = background.astype(np.float64) + np.array([40.0, 60.0, 110.0])
    ellipse = np.zeros((h, w), np.uint8)
    cv2.ellipse(ellipse, (150, 120), (60, 40), 20, 0, 360, 1, -1)
    block = np.zeros((h, w), np.uint8)
    cv2.rectangle(block, (200, 60), (250, 190), 1, -1)
    block[ellipse > 0] = 0
    obj, neighbour = ellipse > 0, block > 0
    if textured:
        yy, xx = np.mgrid[0:h, 0:w]
        checker = ((xx // 6 + yy // 6) % 2 == 1)[..., None]
        pattern = np.where(checker, np.array([240.0, 150, 40]), np.array([190.0, 90, 30]))
        image[obj] = pattern[obj]
    else:
        image[obj] = (230, 140, 40)
    image[neighbour] = (60, 200, 70)
    image = cv2.GaussianBlur(image, (0, 0), 1.2) + rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), obj, neighbour


def iou(a: BoolArray, b: BoolArray) -> float:
    return float((a & b).sum() / (a | b).sum())


def coverage(mask: BoolArray, region: BoolArray) -> float:
    return float((mask & region).sum() / region.sum())


@pytest.mark.parametrize("textured", [False, True], ids=["plain", "textured"])
def test_one_click_and_a_box_find_the_object(textured: bool) -> None:
    image, obj, _ = scene(textured=textured)
    result = segment(image, [CLICK], [], ELLIPSE_BOX)
    assert result.mask.shape == obj.shape
    assert iou(result.mask, obj) >= 0.85


def test_a_negative_click_removes_the_neighbouring_region() -> None:
    image, obj, neighbour = scene(seed=1)
    without = segment(image, [CLICK], [], BOTH_BOX)
    # GrabCut keeps what the background outside the box does not explain: the block too.
    assert coverage(without.mask, neighbour) > 0.5
    with_negative = segment(image, [CLICK], [NEIGHBOUR_CLICK], BOTH_BOX)
    assert coverage(with_negative.mask, neighbour) < 0.05
    assert iou(with_negative.mask, obj) >= 0.85


def test_clicks_without_a_box_grow_to_the_whole_object() -> None:
    image, obj, _ = scene(seed=2)
    result = segment(image, [CLICK], [NEIGHBOUR_CLICK])
    assert iou(result.mask, obj) >= 0.85


def test_a_box_over_the_whole_frame_is_read_as_no_box() -> None:
    image, obj, _ = scene()
    result = segment(image, [CLICK], [NEIGHBOUR_CLICK], [0, 0, 320, 240])
    assert iou(result.mask, obj) >= 0.85


def test_a_box_alone_needs_no_click_when_allowed() -> None:
    image, obj, _ = scene()
    result = segment(image, [], [], ELLIPSE_BOX, params=GrabCutParams(min_pos_points=0))
    assert iou(result.mask, obj) >= 0.85


def test_large_crops_are_cut_at_reduced_resolution() -> None:
    image, obj, _ = scene()
    result = segment(image, [CLICK], [], ELLIPSE_BOX, params=GrabCutParams(max_side=96))
    assert iou(result.mask, obj) >= 0.85


def test_the_polygon_outlines_the_mask_inside_the_image() -> None:
    image, obj, _ = scene()
    result = segment(image, [CLICK], [], ELLIPSE_BOX)
    h, w = obj.shape
    points = np.array(result.polygon)
    assert points.shape[1:] == (2,)
    assert len(points) >= 3
    assert (points >= 0).all()
    assert (points[:, 0] <= w).all()
    assert (points[:, 1] <= h).all()
    assert iou(polygon_to_mask(points.reshape(-1), h, w), result.mask) >= 0.95
    exact = InteractorResult.from_mask(result.mask, tolerance=0.0)
    np.testing.assert_array_equal(polygon_to_mask(np.ravel(exact.polygon), h, w), result.mask)


def test_the_cvat_answer_holds_the_mask_in_its_bounds_and_the_polygon() -> None:
    image, _, _ = scene()
    result = segment(image, [CLICK], [], ELLIPSE_BOX)
    answer: dict[str, Any] = result.to_cvat()
    left, top, right, bottom = answer["bounds"]
    crop = np.array(answer["mask"])
    assert crop.shape == (bottom - top + 1, right - left + 1)
    assert set(np.unique(crop)) == {0, 1}
    full = np.zeros_like(result.mask)
    full[top : bottom + 1, left : right + 1] = crop == 1
    np.testing.assert_array_equal(full, result.mask)
    assert all(len(p) == 2 for p in answer["points"])
    h, w = result.mask.shape
    points = result.cvat_mask_points()
    assert points[-4:] == [left, top, right, bottom]
    np.testing.assert_array_equal(cvat_mask_to_array(points, h, w), result.mask)


def test_the_same_call_gives_the_same_mask() -> None:
    image, _, _ = scene()
    before = image.copy()
    first = segment(image, [CLICK], [NEIGHBOUR_CLICK], BOTH_BOX)
    np.testing.assert_array_equal(image, before)  # the caller's frame is left alone
    second = segment(image, [CLICK], [NEIGHBOUR_CLICK], BOTH_BOX)
    np.testing.assert_array_equal(first.mask, second.mask)
    assert first.polygon == second.polygon


IMAGE = scene()[0]
BAD_CALLS: list[tuple[str, dict[str, Any], str, str]] = [
    ("point outside", {"pos": [[321, 10]]}, "pos_points", "outside the 320x240 image"),
    ("negative coordinate", {"pos": [[-1, 10]]}, "pos_points", "outside"),
    ("nan", {"neg": [[10, float("nan")]]}, "neg_points", "not finite"),
    ("infinite", {"pos": [[float("inf"), 3]]}, "pos_points", "not finite"),
    ("not a pair", {"pos": [[1, 2, 3]]}, "pos_points", "pair"),
    ("not numbers", {"pos": [["1", "2"]]}, "pos_points", "pair"),
    ("booleans", {"neg": [[True, False]]}, "neg_points", "pair"),
    ("not a list", {"pos": "150,120"}, "pos_points", "list"),
    ("no positive point", {"pos": []}, "pos_points", "at least 1"),
    ("too many points", {"pos": [CLICK] * 300}, "pos_points", "at most"),
    ("box outside", {"box": [[10, 10], [400, 100]]}, "obj_bbox", "outside"),
    ("box not finite", {"box": [[10, 10], [float("nan"), 100]]}, "obj_bbox", "not finite"),
    ("box of three numbers", {"box": [1, 2, 3]}, "obj_bbox", "[[x1, y1], [x2, y2]]"),
    ("box too small", {"box": [[10, 10], [11, 40]]}, "obj_bbox", "too small"),
    ("click outside the box", {"box": [[10, 10], [60, 60]]}, "pos_points", "outside obj_bbox"),
]


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [(c[1], c[2], c[3]) for c in BAD_CALLS],
    ids=[c[0] for c in BAD_CALLS],
)
def test_bad_calls_name_the_field(case: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InteractorInputError, match=re.escape(message)) as caught:
        segment(IMAGE, case.get("pos", [CLICK]), case.get("neg", []), case.get("box"))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_bad_points_carry_their_index() -> None:
    with pytest.raises(InteractorInputError) as caught:
        segment(IMAGE, [CLICK, [10, 10], [999, 5]], [])
    assert (caught.value.field, caught.value.index) == ("pos_points", 2)
    assert "pos_points[2]" in str(caught.value)


def test_published_minimums_are_enforced() -> None:
    with pytest.raises(InteractorInputError, match="neg_points needs at least 1") as caught:
        segment(IMAGE, [CLICK], [], params=GrabCutParams(min_neg_points=1))
    assert caught.value.field == "neg_points"
    with pytest.raises(InteractorInputError, match="positive point is needed") as caught:
        segment(IMAGE, [], [], params=GrabCutParams(min_pos_points=0))
    assert caught.value.field == "pos_points"


@pytest.mark.parametrize(
    "image",
    [IMAGE.astype(np.float32), IMAGE[..., 0], IMAGE[:4, :4], [[0, 0, 0]]],
    ids=["float", "grey", "tiny", "list"],
)
def test_the_image_must_be_rgb_uint8(image: Any) -> None:
    with pytest.raises(InteractorInputError) as caught:
        segment(image, [[1, 1]], [])
    assert caught.value.field == "image"


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="iterations"):
        GrabCutParams(iterations=0)
    with pytest.raises(ValueError, match="max_side"):
        GrabCutParams(max_side=4)


def test_the_registry_entry_takes_its_options_and_segments() -> None:
    interactor = GrabCutInteractor(options={"iterations": 3, "seed_radius": 1}, infer=None)
    assert interactor.params.iterations == 3
    assert interactor.params.seed_radius == 1.0
    image, obj, _ = scene()
    assert iou(interactor(image, [CLICK], [], ELLIPSE_BOX).mask, obj) >= 0.85


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"iterationz": 3}, "unknown GrabCut options: iterationz"),
        ({"iterations": 2.5}, "whole number"),
        ({"margin": "32"}, "must be a number"),
        ({"iterations": 0}, "out of range: iterations"),
    ],
)
def test_bad_registry_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        GrabCutInteractor(options=options)
