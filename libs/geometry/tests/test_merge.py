"""Segment merge against plain references: box IoU, brute-force assignment, CVAT's rules."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.geometry.merge import merge_segments, shape_similarity, track_similarity
from tessera.geometry.rle import array_to_cvat_mask

Obj = dict[str, Any]


def box_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def rect(frame: int, box: list[float], label: int = 1, **extra: Any) -> Obj:
    return {"type": "rectangle", "frame": frame, "label_id": label, "points": box, **extra}


boxes = st.tuples(
    st.integers(0, 60), st.integers(0, 60), st.integers(4, 40), st.integers(4, 40)
).map(lambda b: [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])])


@settings(max_examples=60, deadline=None)
@given(boxes, boxes)
def test_rectangle_similarity_is_box_iou(a: list[float], b: list[float]) -> None:
    assert shape_similarity(rect(0, a), rect(0, b)) == pytest.approx(box_iou(a, b))


@settings(max_examples=40, deadline=None)
@given(boxes, boxes)
def test_polygon_and_mask_iou_approach_box_iou(a: list[float], b: list[float]) -> None:
    def poly(box: list[float]) -> Obj:
        x0, y0, x1, y1 = box
        return {"type": "polygon", "label_id": 1, "points": [x0, y0, x1, y0, x1, y1, x0, y1]}

    assert shape_similarity(poly(a), poly(b)) == pytest.approx(box_iou(a, b), abs=0.02)

    def mask(box: list[float]) -> Obj:
        m = np.zeros((110, 110), bool)
        m[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
        return {"type": "mask", "label_id": 1, "points": array_to_cvat_mask(m)}

    assert shape_similarity(mask(a), mask(b)) == pytest.approx(box_iou(a, b))


def test_similarity_for_other_types() -> None:
    pts = {"type": "points", "label_id": 1, "points": [0, 0, 10, 10, 20, 0]}
    assert shape_similarity(pts, pts) == 1.0
    moved = {**pts, "points": [0, 0, 10, 10, 20, 5]}
    assert 0 < shape_similarity(pts, moved) < 1
    assert shape_similarity(pts, {**pts, "points": [0, 0]}) == 0.0
    assert shape_similarity(pts, {**pts, "label_id": 2}) == 0.0
    ell = {"type": "ellipse", "label_id": 1, "points": [10, 10, 20, 5], "rotation": 30.0}
    assert shape_similarity(ell, ell) == pytest.approx(1.0)
    rot = rect(0, [0, 0, 10, 4], rotation=90.0)
    assert shape_similarity(rot, rect(0, [3, -3, 7, 7])) == pytest.approx(1.0, abs=0.02)
    cube = {"type": "cuboid", "label_id": 1, "points": [1, 2, 3, 0, 0, 0, 2, 2, 2] + [0] * 7}
    assert shape_similarity(cube, cube, "3d") == 1.0
    skeleton = {"type": "skeleton", "label_id": 1, "points": [], "elements": [
        {"label_id": 5, "points": [0, 0]}, {"label_id": 6, "points": [10, 10]},
    ]}  # fmt: skip
    assert shape_similarity(skeleton, skeleton) == 1.0


def brute_force_matches(cost: np.ndarray, limit: float) -> int:
    """Matches accepted under the optimal assignment, by trying every assignment."""
    n, m = cost.shape
    best, best_accepted = None, 0
    if n <= m:
        options = (list(zip(range(n), p, strict=True)) for p in itertools.permutations(range(m), n))
    else:
        options = (list(zip(p, range(m), strict=True)) for p in itertools.permutations(range(n), m))
    for pairs in options:
        total = sum(cost[i, j] for i, j in pairs)
        if best is None or total < best - 1e-12:
            best = total
            best_accepted = sum(cost[i, j] <= limit for i, j in pairs)
    return best_accepted


@settings(max_examples=60, deadline=None)
@given(st.lists(boxes, min_size=1, max_size=4), st.lists(boxes, min_size=1, max_size=4))
def test_shapes_in_overlap_follow_the_optimal_assignment(
    old: list[list[float]], new: list[list[float]]
) -> None:
    job0 = {"shapes": [rect(5, b) for b in old]}
    job1 = {"shapes": [rect(5, b) for b in new] + [rect(12, [0, 0, 1, 1])]}
    merged = merge_segments([(job0, 0, 9), (job1, 5, 14)])
    cost = np.array([[1 - box_iou(n, o) for o in old] for n in new])
    matched = brute_force_matches(cost, 0.25)
    assert len(merged["shapes"]) == len(old) + len(new) + 1 - matched
    assert merged["shapes"][: len(old)] == job0["shapes"]


def _track(label: int, *keys: tuple[int, list[float], bool]) -> Obj:
    return {
        "label_id": label,
        "frame": keys[0][0],
        "group": 0,
        "source": "manual",
        "attributes": [],
        "shapes": [
            {"type": "rectangle", "frame": f, "points": p, "outside": out, "occluded": False,
             "z_order": 0, "rotation": 0.0, "attributes": []}
            for f, p, out in keys
        ],
    }  # fmt: skip


def test_tracks_are_united_or_closed() -> None:
    same_old = _track(1, (0, [0, 0, 10, 10], False), (8, [8, 8, 18, 18], False))
    same_new = _track(1, (5, [5, 5, 15, 15], False), (14, [20, 20, 30, 30], False))
    lone_old = _track(2, (2, [50, 50, 60, 60], False))
    other_new = _track(2, (6, [90, 90, 99, 99], False))
    merged = merge_segments(
        [({"tracks": [same_old, lone_old]}, 0, 9), ({"tracks": [same_new, other_new]}, 5, 14)]
    )
    tracks = merged["tracks"]
    assert len(tracks) == 3
    united = tracks[0]
    assert [s["frame"] for s in united["shapes"]] == [0, 5, 8, 14]
    assert united["shapes"][2]["points"] == [8, 8, 18, 18]
    closed = tracks[1]
    assert closed["shapes"][-1]["frame"] == 10
    assert closed["shapes"][-1]["outside"]
    assert tracks[2]["shapes"][0]["points"] == [90, 90, 99, 99]
    assert same_old["shapes"][-1]["frame"] == 8, "inputs are not modified"


def test_track_similarity_counts_missing_frames_as_errors() -> None:
    a = _track(1, (0, [0, 0, 10, 10], False))
    b = _track(1, (0, [0, 0, 10, 10], False), (2, [0, 0, 10, 10], True))
    assert track_similarity(a, a, 0, 3) == 1.0
    assert track_similarity(a, b, 0, 3) == pytest.approx(1 - 2 / 4)
    assert track_similarity(a, _track(2, (0, [0, 0, 10, 10], False)), 0, 3) == 0.0


def test_tags_merge_by_label() -> None:
    tag = {"frame": 6, "label_id": 3, "attributes": []}
    merged = merge_segments(
        [({"tags": [tag]}, 0, 9), ({"tags": [tag, {**tag, "label_id": 4}]}, 5, 14)]
    )
    assert [t["label_id"] for t in merged["tags"]] == [3, 4]


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([({}, 5, 2)], "before start"),
        ([({}, -1, 2)], "non-negative"),
        ([({}, 0)], r"\(annotations, start, stop\)"),
        ([({"shapes": [{"frame": 1}]}, 0, 2)], "label_id"),
        ([({"tracks": [{"label_id": 1, "shapes": []}]}, 0, 2)], "non-empty"),
        ([({"shapes": "x"}, 0, 2)], "must be a list"),
    ],
)
def test_bad_segments_are_rejected(segments: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge_segments(segments)
