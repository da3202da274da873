"""COCO RLE and CVAT mask conversions against pycocotools and plain NumPy references."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco

from tessera.geometry import rle

# pycocotools' decode of a single RLE trips a NumPy 2 deprecation inside pycocotools.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
FAST = settings(max_examples=60, deadline=None)


def coco_encode(mask: npt.NDArray[Any]) -> dict[str, Any]:
    """pycocotools' encoding of a mask read as 0/1."""
    result: dict[str, Any] = coco.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return result


@st.composite
def masks(draw: st.DrawFn, max_side: int = 24) -> npt.NDArray[Any]:
    """Masks of every layout: noise or a few rectangles, bool or uint8 (values 0-3), C or F."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    if draw(st.booleans()):
        mask = draw(arrays(np.bool_, (h, w)))
    else:
        mask = np.zeros((h, w), np.bool_)
        for _ in range(draw(st.integers(0, 4))):
            y0, y1 = sorted(draw(st.integers(0, h)) for _ in range(2))
            x0, x1 = sorted(draw(st.integers(0, w)) for _ in range(2))
            mask[y0:y1, x0:x1] = True
    if draw(st.booleans()):
        mask = mask.astype(np.uint8) * draw(st.sampled_from([1, 3]))
    return np.asfortranarray(mask) if draw(st.booleans()) else np.ascontiguousarray(mask)


def numpy_cvat_points(mask: npt.NDArray[Any]) -> list[int]:
    """CVAT's layout computed with NumPy: row-major runs over the tight box, then the box."""
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    flat = (mask[top : bottom + 1, left : right + 1] != 0).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    runs = np.diff(np.concatenate([[0], edges]))
    return [*runs.tolist(), int(left), int(top), int(right), int(bottom)]


SPECIAL = {
    "empty": np.zeros((7, 5), np.bool_),
    "full": np.ones((7, 5), np.bool_),
    "one_pixel": np.pad(np.ones((1, 1), np.bool_), ((3, 2), (1, 4))),
    "corner_first": np.pad(np.ones((1, 1), np.bool_), ((0, 4), (0, 4))),
    "corner_last": np.pad(np.ones((1, 1), np.bool_), ((4, 0), (4, 0))),
    "row_1xN": np.array([[0, 1, 1, 0, 1, 1, 1, 0, 1]], np.bool_),
    "col_Nx1": np.array([[1], [1], [0], [1], [0], [0], [1]], np.bool_),
    "single_on": np.ones((1, 1), np.bool_),
    "single_off": np.zeros((1, 1), np.bool_),
    "odd_sizes": np.indices((13, 17)).sum(axis=0) % 3 == 0,
    "bottom_rows": np.pad(np.ones((2, 9), np.bool_), ((5, 0), (0, 0))),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
@pytest.mark.parametrize("order", ["C", "F"])
def test_special_masks_match_pycocotools(name: str, order: str) -> None:
    mask = np.asfortranarray(SPECIAL[name]) if order == "F" else SPECIAL[name]
    ref = coco_encode(mask)
    ours = rle.encode(mask)
    assert ours == {"size": [mask.shape[0], mask.shape[1]], "counts": ref["counts"]}
    assert np.array_equal(rle.decode(ours), coco.decode(ref))
    assert rle.area(ours) == int(coco.area(ref))
    assert np.array_equal(rle.to_bbox(ours), coco.toBbox(ref))
    assert rle.encode_batch(mask[None])[0] == ours


@given(masks())
@FAST
def test_encode_equals_pycocotools(mask: npt.NDArray[Any]) -> None:
    ref = coco_encode(mask)
    ours = rle.encode(mask)
    assert ours["counts"] == ref["counts"]
    assert ours["size"] == list(mask.shape)
    plain = rle.encode(mask, compressed=False)
    assert coco.frPyObjects(plain, *mask.shape)["counts"] == ref["counts"]
    assert sum(plain["counts"]) == mask.size


@given(masks())
@FAST
def test_decode_area_bbox_equal_pycocotools(mask: npt.NDArray[Any]) -> None:
    ref = coco_encode(mask)
    decoded = rle.decode(ref)
    assert decoded.dtype == np.uint8
    assert decoded.flags.f_contiguous
    assert np.array_equal(decoded, coco.decode(ref))
    assert np.array_equal(decoded, mask != 0)
    uncompressed = rle.to_counts(ref)
    assert np.array_equal(rle.decode(uncompressed), decoded)
    assert rle.compress(uncompressed) == {"size": ref["size"], "counts": ref["counts"]}
    str_counts = {"size": ref["size"], "counts": ref["counts"].decode()}
    assert np.array_equal(rle.decode(str_counts), decoded)
    assert rle.area(uncompressed) == int(coco.area(ref))
    assert np.array_equal(rle.to_bbox(uncompressed), coco.toBbox(ref))


@given(st.lists(masks(max_side=12), min_size=1, max_size=4), st.booleans(), st.data())
@FAST
def test_merge_equals_pycocotools(
    stack: list[npt.NDArray[Any]], intersect: bool, data: st.DataObject
) -> None:
    h, w = stack[0].shape
    same = [m for m in stack if m.shape == (h, w)]
    refs = [coco_encode(m) for m in same]
    inputs: list[Any] = [data.draw(st.sampled_from([r, rle.to_counts(r)])) for r in refs]
    assert rle.merge(inputs, intersect)["counts"] == coco.merge(refs, intersect)["counts"]


@given(
    st.lists(masks(max_side=10), min_size=1, max_size=5),
    st.lists(masks(max_side=10), min_size=1, max_size=5),
    st.data(),
)
@FAST
def test_iou_equals_pycocotools(
    dts: list[npt.NDArray[Any]], gts: list[npt.NDArray[Any]], data: st.DataObject
) -> None:
    dt = [coco_encode(m) for m in dts]
    gt = [coco_encode(m) for m in gts]
    crowd = data.draw(st.lists(st.booleans(), min_size=len(gt), max_size=len(gt)))
    ours = rle.iou(dt, gt, crowd)
    assert ours.shape == (len(dt), len(gt))
    np.testing.assert_array_equal(ours, coco.iou(dt, gt, crowd))


@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.just(4)), elements=st.floats(0, 50)),
    arrays(np.float64, st.tuples(st.integers(1, 6), st.just(4)), elements=st.floats(0, 50)),
    st.data(),
)
@FAST
def test_box_iou_equals_pycocotools(
    dt: npt.NDArray[np.float64], gt: npt.NDArray[np.float64], data: st.DataObject
) -> None:
    crowd = data.draw(st.lists(st.booleans(), min_size=len(gt), max_size=len(gt)))
    ref = coco.iou(dt, gt, crowd)
    np.testing.assert_array_equal(rle.iou(dt, gt, crowd), ref)
    np.testing.assert_array_equal(rle.iou(dt.tolist(), gt.tolist(), crowd), ref)


def test_iou_empty_inputs_give_empty_matrix() -> None:
    r = rle.encode(np.ones((3, 3), np.bool_))
    assert rle.iou([], [r], [0]).shape == (0, 1)
    assert rle.iou([r], [], []).shape == (1, 0)


def test_iou_of_different_sizes_is_minus_one_like_pycocotools() -> None:
    a = coco_encode(np.ones((4, 4), np.bool_))
    b = coco_encode(np.ones((5, 4), np.bool_))
    np.testing.assert_array_equal(rle.iou([a], [b], [0]), coco.iou([a], [b], [0]))


coords = st.floats(-30, 60, allow_nan=False)


@st.composite
def polygons(draw: st.DrawFn) -> list[list[float]]:
    """1-3 random polygons (usually self-intersecting), partly or wholly outside."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(3, 9))
        out.append([draw(coords) for _ in range(2 * k)])
    return out


@given(polygons(), st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=120, deadline=None)
def test_from_polygons_equals_pycocotools(polys: list[list[float]], h: int, w: int) -> None:
    ref = coco.merge(coco.frPyObjects(polys, h, w))
    assert rle.from_polygons(polys, h, w)["counts"] == ref["counts"]


@pytest.mark.parametrize(
    "poly",
    [
        [-100.0, -100.0, 200.0, -100.0, 200.0, 200.0, -100.0, 200.0],  # covers the image
        [100.0, 100.0, 120.0, 100.0, 110.0, 130.0],  # wholly outside
        [0.0, 0.0, 20.0, 20.0, 20.0, 0.0, 0.0, 20.0],  # bow tie
        [2.5, 2.5, 17.5, 2.5, 17.5, 17.5, 2.5, 17.5],  # on pixel centres
        [-3000.0, 5.0, 4000.0, 7.0, 10.0, 9000.0],  # far outside, steep and flat edges
        [3.2, 4.4, 3.2, 4.4, 3.2, 4.4],  # degenerate
    ],
)
def test_from_polygons_edge_cases(poly: list[float]) -> None:
    ref = coco.merge(coco.frPyObjects([poly], 20, 24))
    assert rle.from_polygons([poly], 20, 24)["counts"] == ref["counts"]


@given(
    st.lists(st.floats(-10, 40, allow_nan=False), min_size=2, max_size=2),
    st.lists(st.floats(0, 40, allow_nan=False), min_size=2, max_size=2),
)
@FAST
def test_from_bbox_equals_pycocotools(xy: list[float], size: list[float]) -> None:
    box = [*xy, *size]
    ref = coco.frPyObjects(np.array([box]), 30, 25)[0]
    assert rle.from_bbox(box, 30, 25)["counts"] == ref["counts"]


@given(st.lists(masks(max_side=16), min_size=1, max_size=6), st.booleans())
@FAST
def test_encode_batch_equals_encode(stack: list[npt.NDArray[Any]], compressed: bool) -> None:
    h, w = stack[0].shape
    batch = np.stack([m != 0 for m in stack if m.shape == (h, w)])
    got = rle.encode_batch(batch, compressed=compressed)
    assert got == [rle.encode(m, compressed=compressed) for m in batch]


def test_encode_batch_of_empty_sizes() -> None:
    assert rle.encode_batch(np.zeros((2, 0, 3), np.bool_)) == [coco_encode(np.zeros((0, 3)))] * 2
    assert rle.encode_batch(np.zeros((0, 4, 3), np.bool_)) == []


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (4, 0)])
def test_zero_sized_masks_match_pycocotools(shape: tuple[int, int]) -> None:
    mask = np.zeros(shape, np.uint8)
    ref = coco_encode(mask)
    assert rle.encode(mask)["counts"] == ref["counts"]
    assert rle.decode(ref).shape == shape


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_8k_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 4320, 7680
    mask = np.zeros((h, w), np.bool_)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        mask[y0 : y0 + rng.integers(1, 2000), x0 : x0 + rng.integers(1, 3000)] ^= True
    mask[-1, -1] = True
    ref = coco_encode(mask)
    ours = rle.encode(mask)
    assert ours["counts"] == ref["counts"]
    assert rle.encode(np.asfortranarray(mask))["counts"] == ref["counts"]
    assert np.array_equal(rle.decode(ours), mask)
    assert rle.area(ours) == int(mask.sum())
    points = rle.rle_to_cvat_mask(ours)
    assert rle.cvat_mask_to_rle(points, h, w)["counts"] == ref["counts"]


@given(masks())
@FAST
def test_cvat_conversions_match_numpy_reference(mask: npt.NDArray[Any]) -> None:
    h, w = mask.shape
    if not mask.any():
        with pytest.raises(ValueError, match="empty"):
            rle.array_to_cvat_mask(mask)
        with pytest.raises(ValueError, match="empty"):
            rle.rle_to_cvat_mask(rle.encode(mask))
        return
    points = rle.array_to_cvat_mask(mask)
    assert points == numpy_cvat_points(mask)
    assert rle.rle_to_cvat_mask(rle.encode(mask)) == points
    assert np.array_equal(rle.cvat_mask_to_array(points, h, w), mask != 0)
    assert rle.cvat_mask_to_rle(points, h, w)["counts"] == coco_encode(mask)["counts"]
    as_floats = [float(v) for v in points]
    assert rle.cvat_mask_to_rle(as_floats, h, w)["counts"] == coco_encode(mask)["counts"]


@given(st.lists(polygons(), min_size=0, max_size=3), st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=80, deadline=None)
def test_polygons_to_counts_equals_pycocotools_per_polygon(
    groups: list[list[list[float]]], h: int, w: int
) -> None:
    polys = [poly for group in groups for poly in group]
    offsets = np.cumsum([0, *(len(poly) for poly in polys)])
    flat = [v for poly in polys for v in poly]
    batch = rle.polygons_to_counts(flat, offsets, h, w)
    assert len(batch) == len(polys)
    boxes = batch.boxes()
    for index, poly in enumerate(polys):
        ref = coco.frPyObjects([poly], h, w)[0]
        ours = {"size": [h, w], "counts": batch.counts_of(index).tolist()}
        assert rle.compress(ours)["counts"] == ref["counts"]
        assert batch.areas[index] == coco.area(ref)
        assert boxes[index].tolist() == coco.toBbox(ref).tolist()


@given(st.lists(masks(max_side=16), min_size=0, max_size=4), st.integers(0, 6), st.integers(0, 6))
@FAST
def test_cvat_masks_to_counts_equals_one_at_a_time(
    stack: list[npt.NDArray[Any]], top: int, left: int
) -> None:
    h, w = 16 + top, 16 + left
    placed = []
    for mask in stack:
        if mask.any():
            points = rle.array_to_cvat_mask(mask)
            points[-4] += left
            points[-2] += left
            points[-3] += top
            points[-1] += top
            placed.append(points)
    offsets = np.cumsum([0, *(len(points) for points in placed)])
    batch = rle.cvat_masks_to_counts([v for p in placed for v in p], offsets, h, w)
    boxes = batch.boxes()
    for index, points in enumerate(placed):
        ref = rle.cvat_mask_to_rle(points, h, w)
        assert rle.compress({"size": [h, w], "counts": batch.counts_of(index).tolist()}) == ref
        assert batch.areas[index] == rle.area(ref)
        assert boxes[index].tolist() == rle.to_bbox(ref).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_cvat_masks_touching_the_image_edges_equal_one_at_a_time(seed: int) -> None:
    """Boxes against every edge, full-height ones (whose columns run into each other in
    column-major order) among them."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 6)), int(rng.integers(1, 8))
    placed = []
    for _ in range(60):
        mask = rng.random((h, w)) < 0.5
        mask[rng.integers(0, h), rng.integers(0, w)] = True
        if rng.random() < 0.5:
            mask[0, rng.integers(0, w)] = mask[h - 1, rng.integers(0, w)] = True
        placed.append(rle.array_to_cvat_mask(mask))
    offsets = np.cumsum([0, *(len(points) for points in placed)])
    batch = rle.cvat_masks_to_counts([v for p in placed for v in p], offsets, h, w)
    for index, points in enumerate(placed):
        ref = rle.cvat_mask_to_rle(points, h, w)
        assert rle.compress({"size": [h, w], "counts": batch.counts_of(index).tolist()}) == ref


def test_batches_of_nothing_are_empty() -> None:
    assert len(rle.polygons_to_counts([], [0], 4, 4)) == 0
    assert len(rle.cvat_masks_to_counts([], [0], 4, 4)) == 0
    assert rle.cvat_masks_to_counts([], [0], 4, 4).boxes().shape == (0, 4)


def test_cvat_runs_may_stop_short_of_the_box() -> None:
    points = [1, 2, 3, 2, 5, 4]  # box 3 x 3 at (3, 2): runs cover 3 of 9 pixels
    mask = rle.cvat_mask_to_array(points, 6, 8)
    expected = np.zeros((6, 8), np.bool_)
    expected[2, 4:6] = True
    assert np.array_equal(mask, expected)
    assert rle.cvat_mask_to_rle(points, 6, 8)["counts"] == coco_encode(expected)["counts"]


def test_nonbinary_uint8_reads_nonzero_as_foreground() -> None:
    mask = np.array([[0, 2, 255], [7, 0, 1]], np.uint8)
    assert rle.encode(mask) == rle.encode(mask != 0)


GOOD = {"size": [2, 2], "counts": [1, 2, 1]}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rle.encode([[1, 0]]), "numpy array"),  # type: ignore[call-overload]
        (lambda: rle.encode(np.zeros((2, 2), np.float32)), "dtype"),
        (lambda: rle.encode(np.zeros((2, 2, 2), np.uint8)), "2-D"),
        (lambda: rle.encode_batch(np.zeros((2, 2), np.uint8)), "3-D"),
        (lambda: rle.decode({"size": [2, 2]}), "'size' and 'counts'"),
        (lambda: rle.decode({"size": [2], "counts": b"4"}), r"\[h, w\]"),
        (lambda: rle.decode({"size": [-1, 2], "counts": b"0"}), "non-negative"),
        (lambda: rle.decode({"size": [2.5, 2], "counts": b"0"}), "integer"),
        (lambda: rle.decode({"size": [2, 2], "counts": [1, 2]}), "cover 3 pixels"),
        (lambda: rle.decode({"size": [2, 2], "counts": [1, -2, 5]}), "non-negative"),
        (lambda: rle.decode({"size": [2, 2], "counts": [1.5, 2.5]}), "whole numbers"),
        (lambda: rle.decode({"size": [2, 2], "counts": b"1!"}), "character"),
        (lambda: rle.decode({"size": [2, 2], "counts": "1é"}), "character"),
        (lambda: rle.decode({"size": [2, 2], "counts": b"1a"}), "middle of a number"),
        (lambda: rle.decode({"size": [2, 2], "counts": b"O"}), "negative"),
        (lambda: rle.decode({"size": [70000, 70000], "counts": b"0"}), "2\\*\\*32"),
        (lambda: rle.merge([]), "at least one"),
        (lambda: rle.merge(GOOD), "list of RLEs"),  # type: ignore[arg-type]
        (lambda: rle.merge([GOOD, {"size": [1, 4], "counts": [4]}]), "same size"),
        (lambda: rle.iou([GOOD], [[0, 0, 1, 1]], [0]), "both"),
        (lambda: rle.iou([GOOD], [GOOD], [0, 1]), "one flag per gt"),
        (lambda: rle.iou([[0, 0, 1, np.nan]], [[0, 0, 1, 1]], [0]), "finite"),
        (lambda: rle.from_polygons([[0, 0, 1]], 4, 4), "even number"),
        (lambda: rle.from_polygons([[0, 0, 1, np.inf]], 4, 4), "finite"),
        (lambda: rle.from_polygons([[0, 0, 1, 1e12]], 4, 4), "beyond"),
        (lambda: rle.from_polygons([[[0, 0], [1, 1]]], 4, 4), "flat"),  # type: ignore[list-item]
        (lambda: rle.from_polygons([[0, 0, 2, 2, 0, 2]], -4, 4), "non-negative"),
        (lambda: rle.from_polygons(np.zeros(6), 4, 4), "list of flat"),  # type: ignore[arg-type]
        (lambda: rle.from_bbox([0, 0, -1, 2], 4, 4), "non-negative"),
        (lambda: rle.from_bbox([0, 0, 1], 4, 4), "4 numbers"),
        (lambda: rle.cvat_mask_to_rle([1, 0, 0, 0], 4, 4), "followed by"),
        (lambda: rle.cvat_mask_to_rle([1, 0, 0, 4, 0], 4, 4), "inside"),
        (lambda: rle.cvat_mask_to_rle([1, 3, 0, 0, 0, 0], 4, 4), "more than the box"),
        (lambda: rle.cvat_mask_to_array([0.5, 1, 0, 0, 0, 0], 4, 4), "whole numbers"),
        (lambda: rle.cvat_mask_to_array([0, 1, 1, 0, 0, 0], 4, 4), "inside"),
        (lambda: rle.polygons_to_counts([0, 0, 1, 1, 2, 0], [0, 5], 4, 4), "run from 0 to 6"),
        (lambda: rle.polygons_to_counts([0, 0, 1, 1, 2, 0], [0, 3, 6], 4, 4), "item 0 has an odd"),
        (lambda: rle.polygons_to_counts([0, 0, 1, 1, 2, 0], [0, 6, 6], 4, 4), "item 1 has 0"),
        (lambda: rle.polygons_to_counts([0, 0, 1, np.nan], [0, 4], 4, 4), r"values\[3\]"),
        (lambda: rle.polygons_to_counts([0, 0, 1, 1e12], [0, 4], 4, 4), "beyond"),
        (lambda: rle.polygons_to_counts([[0, 0], [1, 1]], [0, 4], 4, 4), "flat"),
        (lambda: rle.polygons_to_counts([0, 0, 1, 1], [0.0, 4.0], 4, 4), "integer"),
        (lambda: rle.cvat_masks_to_counts([1, 0, 0, 0, 0], [0, 5], -1, 4), "non-negative"),
        (lambda: rle.cvat_masks_to_counts([1, 0, 0, 0], [0, 4], 4, 4), "fewer than 5"),
        (
            lambda: rle.cvat_masks_to_counts([1, 0, 0, 0, 0, 0.5, 0, 0, 0, 0], [0, 5, 10], 4, 4),
            "mask 1 holds a number",
        ),
        (lambda: rle.cvat_masks_to_counts([-1, 0, 0, 0, 0], [0, 5], 4, 4), "mask 0 holds"),
        (lambda: rle.cvat_masks_to_counts([1, 0, 0, 4, 0], [0, 5], 4, 4), r"box \[0, 0, 4, 0\]"),
        (lambda: rle.cvat_masks_to_counts([1, 3, 0, 0, 0, 0], [0, 6], 4, 4), "more pixels"),
    ],
)
def test_bad_input_raises_value_error(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
