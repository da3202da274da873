"""Track interpolation against a plain-Python reference of CVAT's semantics."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from tessera.geometry.interpolation import (
    interpolate_linear_tracks,
    interpolate_poly_tracks,
    interpolate_track,
    iter_interpolated_shapes,
    signed_distance,
)
from tessera.geometry.rle import array_to_cvat_mask, cvat_mask_to_array

Shape = dict[str, Any]

# ---------------------------------------------------------------- plain-Python reference


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)


def _length(pts: list[tuple[float, float]]) -> float:
    return sum(_dist(pts[i], pts[i - 1]) for i in range(1, len(pts)))


def _positions(pts: list[tuple[float, float]]) -> list[float]:
    total = _length(pts)
    out, acc = [0.0], 0.0
    for i in range(1, len(pts)):
        acc += _dist(pts[i], pts[i - 1])
        out.append(acc / total if total else 0.0)
    return out


def _nearest(value: float, curve: list[float]) -> int:
    return min(range(len(curve)), key=lambda i: (abs(value - curve[i]), i))


def _ref_poly(p0: list[float], p1: list[float], t: float, closed: bool) -> list[float]:
    left = [(p0[i], p0[i + 1]) for i in range(0, len(p0), 2)]
    right = [(p1[i], p1[i + 1]) for i in range(0, len(p1), 2)]
    if closed:
        left, right = [*left, left[0]], [*right, right[0]]
    lpos, rpos = _positions(left), _positions(right)
    match = {i: [_nearest(v, rpos)] for i, v in enumerate(lpos)}
    used = {m[0] for m in match.values()}
    for j, v in enumerate(rpos):
        if j not in used:
            match[_nearest(v, lpos)].append(j)
    for m in match.values():
        m.sort()
    points: list[tuple[float, float]] = []
    index: dict[int, int] = {}
    for i, m in match.items():
        index[i] = len(points)
        for j in m:
            points.append(
                (
                    left[i][0] + (right[j][0] - left[i][0]) * t,
                    left[i][1] + (right[j][1] - left[i][1]) * t,
                )
            )

    def thin(first: int, last: int, base: float, n: int) -> list[tuple[float, float]]:
        thr = base / (2 * n)
        kept, anchor = [points[first]], first
        for k in range(first + 1, last):
            if _dist(points[anchor], points[k]) >= thr:
                kept.append(points[k])
                anchor = k
        kept.append(points[last])
        if len(kept) == 2 and _dist(points[first], points[last]) < thr:
            a, b = points[first], points[last]
            return [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)]
        return kept

    out: list[tuple[float, float]] = []

    def run(a: int, b: int) -> None:
        if index[a] == index[b]:
            out.append(points[index[a]])
        else:
            out.extend(thin(index[a], index[b], _length(left[a : b + 1]), b - a + 1))

    opened = None
    for i in range(len(left)):
        if len(match[i]) == 1:
            if opened is None:
                opened = i
            elif match[i][0] != match[opened][0]:
                run(opened, i - 1)
                opened = i
        else:
            if opened is not None:
                run(opened, i - 1)
                opened = None
            r0, r1 = match[i][0], match[i][-1]
            last = index[i] + len(match[i]) - 1
            out.extend(thin(index[i], last, _length(right[r0 : r1 + 1]), r1 - r0 + 1))
    if opened is not None:
        run(opened, len(left) - 1)
    flat = [c for p in out for c in p]
    return flat[:-2] if closed else flat


def _ref_geometry(kind: str, a: Shape, b: Shape, t: float) -> tuple[list[float], float]:
    p0, p1 = [float(v) for v in a["points"]], [float(v) for v in b["points"]]
    linear = kind in ("rectangle", "ellipse", "cuboid", "skeleton") or (
        kind == "points" and len(p0) == 2 and len(p1) == 2
    )
    if linear:
        diff = ((b["rotation"] - a["rotation"] + 180) % 360) - 180
        pts = [x + (y - x) * t for x, y in zip(p0, p1, strict=True)]
        return pts, (a["rotation"] + diff * t + 360) % 360
    if kind in ("polygon", "polyline"):
        return _ref_poly(p0, p1, t, kind == "polygon"), float(a["rotation"])
    return p0, float(a["rotation"])


def _ref_raw(track: Shape, stop: int, include_outside: bool) -> list[Shape]:
    kfs = sorted(track["shapes"], key=lambda s: s["frame"])
    attrs: list[dict[str, Any]] = []
    out = []
    for i, kf in enumerate(kfs):
        own = {a["spec_id"] for a in kf["attributes"]}
        attrs = list(kf["attributes"]) + [a for a in attrs if a["spec_id"] not in own]
        if kf["frame"] > stop:
            break

        def make(
            frame: int, pts: list[float], rot: float, key: bool, *, kf: Shape = kf, own: Any = attrs
        ) -> Shape:
            return {
                "frame": frame, "points": pts, "rotation": rot, "keyframe": key,
                "outside": kf["outside"], "occluded": kf["occluded"], "z_order": kf["z_order"],
                "attributes": own + track["attributes"],
            }  # fmt: skip

        out.append(make(kf["frame"], [float(v) for v in kf["points"]], kf["rotation"], True))
        if kf["outside"] and not include_outside:
            continue
        nxt = kfs[i + 1] if i + 1 < len(kfs) else None
        end = stop + 1 if nxt is None else min(nxt["frame"], stop + 1)
        for f in range(kf["frame"] + 1, end):
            if nxt is None:
                pts, rot = [float(v) for v in kf["points"]], kf["rotation"]
            else:
                t = (f - kf["frame"]) / (nxt["frame"] - kf["frame"])
                pts, rot = _ref_geometry(kf["type"], kf, nxt, t)
            out.append(make(f, pts, rot, False))
    return [s for s in out if s["frame"] >= track.get("frame", 0)]


def reference(track: Shape, stop: int) -> list[Shape]:
    """CVAT's get_interpolated_shapes + to_shapes, written plainly from the design notes."""
    shapes = _ref_raw(track, stop, False)
    if not track.get("elements"):
        return shapes
    per_element = [{s["frame"]: s for s in _ref_raw(e, stop, True)} for e in track["elements"]]
    kept = []
    for shape in shapes:
        elements = [e[shape["frame"]] for e in per_element if shape["frame"] in e]
        if elements and all(e["outside"] for e in elements):
            continue
        kept.append({**shape, "elements": elements})
    return kept


def assert_same(got: list[Shape], want: list[Shape]) -> None:
    assert [s["frame"] for s in got] == [s["frame"] for s in want]
    for g, w in zip(got, want, strict=True):
        for key in ("keyframe", "outside", "occluded", "z_order", "attributes"):
            assert g[key] == w[key], (key, g["frame"])
        assert len(g["points"]) == len(w["points"]), g["frame"]
        np.testing.assert_allclose(g["points"], w["points"], atol=1e-9)
        assert math.isclose(g["rotation"], w["rotation"], abs_tol=1e-9) or math.isclose(
            abs(g["rotation"] - w["rotation"]), 360, abs_tol=1e-9
        )
        if "elements" in w:
            assert len(g["elements"]) == len(w["elements"])
            for ge, we in zip(g["elements"], w["elements"], strict=True):
                assert_same([ge], [we])


# ---------------------------------------------------------------- strategies

coord = st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 2))
attributes = st.lists(
    st.builds(lambda s, v: {"spec_id": s, "value": v}, st.integers(1, 4), st.sampled_from("abc")),
    max_size=3,
    unique_by=lambda a: a["spec_id"],
)
SIZES = {"rectangle": 4, "ellipse": 4, "cuboid": 16, "skeleton": 0}


@st.composite
def keyframes(draw: st.DrawFn, kind: str, max_frame: int = 40) -> list[Shape]:
    frames = draw(st.lists(st.integers(0, max_frame), min_size=1, max_size=5, unique=True))
    out = []
    for f in frames:
        size = SIZES.get(kind)
        if size is None:
            size = 2 * draw(st.integers(1 if kind != "polygon" else 3, 8))
        out.append(
            {
                "type": kind,
                "frame": f,
                "points": draw(st.lists(coord, min_size=size, max_size=size)),
                "rotation": draw(st.sampled_from([0.0, 10.0, 90.0, 180.0, 350.0, 359.5])),
                "outside": draw(st.booleans()),
                "occluded": draw(st.booleans()),
                "z_order": draw(st.integers(-2, 2)),
                "attributes": draw(attributes),
            }
        )
    return out


@st.composite
def tracks(draw: st.DrawFn, kind: str | None = None) -> Shape:
    kind = kind or draw(
        st.sampled_from(["rectangle", "ellipse", "cuboid", "points", "polygon", "polyline"])
    )
    shapes = draw(keyframes(kind))
    track = {
        "label_id": 1,
        "frame": min(s["frame"] for s in shapes),
        "group": 0,
        "source": "manual",
        "attributes": [{"spec_id": 9, "value": "track"}],
        "shapes": shapes,
    }
    if kind == "skeleton":
        track["elements"] = [
            {
                "label_id": 10 + i,
                "frame": 0,
                "attributes": [],
                "shapes": draw(keyframes("points")),
            }
            for i in range(draw(st.integers(1, 3)))
        ]
        for element in track["elements"]:
            element["frame"] = min(s["frame"] for s in element["shapes"])
            for s in element["shapes"]:
                s["points"] = s["points"][:2]
    return track


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(tracks(), st.integers(0, 50))
def test_matches_reference_for_every_type(track: Shape, stop: int) -> None:
    assert_same(interpolate_track(track, stop), reference(track, stop))


@settings(max_examples=40, deadline=None)
@given(tracks("skeleton"), st.integers(0, 50))
def test_skeleton_elements_are_sub_tracks(track: Shape, stop: int) -> None:
    assert_same(interpolate_track(track, stop), reference(track, stop))


@settings(max_examples=40, deadline=None)
@given(tracks(), st.integers(0, 50), st.data())
def test_generator_and_start_frame_agree_with_list(track: Shape, stop: int, data: Any) -> None:
    start = data.draw(st.integers(0, stop))
    full = [s for s in interpolate_track(track, stop) if s["frame"] >= start]
    assert list(iter_interpolated_shapes(track, stop, start_frame=start)) == full


@settings(max_examples=40, deadline=None)
@given(st.lists(tracks("rectangle"), min_size=1, max_size=6), st.integers(0, 45))
def test_linear_batch_matches_track_api(batch: list[Shape], stop: int) -> None:
    kfs = [sorted(t["shapes"], key=lambda s: s["frame"]) for t in batch]
    flat = [s for k in kfs for s in k]
    res = interpolate_linear_tracks(
        np.cumsum([0] + [len(k) for k in kfs]),
        np.array([s["frame"] for s in flat]),
        np.array([s["points"] for s in flat], dtype=float),
        stop,
        rotation=np.array([s["rotation"] for s in flat]),
        outside=np.array([s["outside"] for s in flat]),
    )
    for i, track in enumerate(batch):
        want = {s["frame"]: s for s in interpolate_track({**track, "frame": 0}, stop)}
        assert set(np.flatnonzero(res.present[i])) == set(want)
        for f, s in want.items():
            np.testing.assert_allclose(res.points[i, f], s["points"], atol=1e-9)
            assert res.keyframe[i, f] == s["keyframe"]
            assert res.outside[i, f] == s["outside"]
            assert math.isclose(res.rotation[i, f], s["rotation"], abs_tol=1e-9)
        assert np.isnan(res.points[i][~res.present[i]]).all()


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["polygon", "polyline"]).flatmap(
        lambda k: st.lists(tracks(k), min_size=1, max_size=4)
    ),
    st.integers(0, 45),
)
def test_poly_batch_matches_track_api(batch: list[Shape], stop: int) -> None:
    kfs = [sorted(t["shapes"], key=lambda s: s["frame"]) for t in batch]
    flat = [s for k in kfs for s in k]
    res = interpolate_poly_tracks(
        np.cumsum([0] + [len(k) for k in kfs]),
        np.array([s["frame"] for s in flat]),
        np.cumsum([0] + [len(s["points"]) // 2 for s in flat]),
        np.array([p for s in flat for p in s["points"]], dtype=float).reshape(-1, 2),
        stop,
        closed=batch[0]["shapes"][0]["type"] == "polygon",
        outside=np.array([s["outside"] for s in flat]),
    )
    for i, track in enumerate(batch):
        want = {s["frame"]: s for s in interpolate_track({**track, "frame": 0}, stop)}
        assert set(np.flatnonzero(res.present[i])) == set(want)
        for f, s in want.items():
            np.testing.assert_array_equal(res.vertices(i, f).reshape(-1), s["points"])
            assert res.keyframe[i, f] == s["keyframe"]
            assert res.outside[i, f] == s["outside"]


# ---------------------------------------------------------------- examples


def _track(kind: str, *shapes: tuple[int, list[Any]], **extra: Any) -> Shape:
    return {
        "label_id": 1,
        "frame": min(f for f, _ in shapes),
        "attributes": [],
        "shapes": [{"type": kind, "frame": f, "points": p, **extra} for f, p in shapes],
    }


def test_rotation_takes_the_shorter_arc_across_zero() -> None:
    track = _track("rectangle", (0, [0, 0, 4, 4]), (4, [0, 0, 4, 4]))
    track["shapes"][0]["rotation"] = 350.0
    track["shapes"][1]["rotation"] = 10.0
    rotations = [s["rotation"] for s in interpolate_track(track, 4)]
    assert rotations == pytest.approx([350.0, 355.0, 0.0, 5.0, 10.0])


def test_keyframes_out_of_order_are_sorted_and_last_visible_repeats() -> None:
    track = _track("rectangle", (4, [4, 4, 8, 8]), (0, [0, 0, 4, 4]))
    shapes = interpolate_track(track, 6)
    assert [s["frame"] for s in shapes] == list(range(7))
    assert shapes[2]["points"] == [2, 2, 6, 6]
    assert shapes[6]["points"] == [4, 4, 8, 8]
    assert [s["keyframe"] for s in shapes] == [True, False, False, False, True, False, False]


def test_track_outside_from_its_first_keyframe() -> None:
    track = _track("rectangle", (2, [0, 0, 4, 4]), (5, [0, 0, 4, 4]), (8, [1, 1, 2, 2]))
    track["shapes"][0]["outside"] = True
    track["shapes"][2]["outside"] = True
    shapes = interpolate_track(track, 20)
    assert [(s["frame"], s["outside"]) for s in shapes] == [
        (2, True), (5, False), (6, False), (7, False), (8, True),
    ]  # fmt: skip


def test_points_interpolate_only_single_points() -> None:
    one = interpolate_track(_track("points", (0, [0, 0]), (2, [2, 4])), 2)
    assert one[1]["points"] == [1, 2]
    two = interpolate_track(_track("points", (0, [0, 0, 1, 1]), (2, [2, 4, 3, 3])), 2)
    assert two[1]["points"] == [0, 0, 1, 1]


def test_polygon_with_different_vertex_counts_matches_cvat() -> None:
    # Values from CVAT's own interpolate_position on the same input.
    track = _track(
        "polygon", (0, [0, 0, 10, 0, 10, 10, 0, 10]), (4, [0, 0, 20, 0, 20, 5, 10, 20, 0, 20])
    )
    shapes = interpolate_track(track, 4)
    assert shapes[1]["points"] == [0, 0, 12.5, 0, 12.5, 1.25, 10, 12.5, 0, 12.5]


def test_generator_is_lazy() -> None:
    track = _track("rectangle", (0, [0, 0, 1, 1]), (10**9, [5, 5, 6, 6]))
    first = list(itertools.islice(iter_interpolated_shapes(track, 10**9), 3))
    assert [s["frame"] for s in first] == [0, 1, 2]


def test_skeleton_elements_outside_and_all_outside_frames_dropped() -> None:
    track = _track("skeleton", (0, []), (4, []))
    track["elements"] = [
        {"label_id": 5, "frame": 0, "attributes": [], "shapes": [
            {"type": "points", "frame": 0, "points": [0, 0]},
            {"type": "points", "frame": 2, "points": [2, 2], "outside": True},
        ]},
        {"label_id": 6, "frame": 0, "attributes": [], "shapes": [
            {"type": "points", "frame": 0, "points": [9, 9]},
            {"type": "points", "frame": 3, "points": [9, 9], "outside": True},
        ]},
    ]  # fmt: skip
    shapes = interpolate_track(track, 6)
    assert [s["frame"] for s in shapes] == [0, 1, 2]
    assert shapes[1]["elements"][0]["points"] == [1, 1]
    assert [e["outside"] for e in shapes[2]["elements"]] == [True, False]


def test_mask_repeat_is_the_default() -> None:
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True
    pts = array_to_cvat_mask(mask)
    track = _track("mask", (0, pts), (4, array_to_cvat_mask(np.roll(mask, 3, axis=1))))
    shapes = interpolate_track(track, 4)
    assert all(s["points"] == [float(v) for v in pts] for s in shapes[:4])


def test_mask_sdf_mode_matches_scipy_reference() -> None:
    a = np.zeros((30, 40), bool)
    a[5:12, 4:15] = True
    b = np.zeros((30, 40), bool)
    b[15:25, 20:36] = True
    track = _track("mask", (0, array_to_cvat_mask(a)), (4, array_to_cvat_mask(b)))
    shapes = interpolate_track(track, 4, mask_mode="sdf")

    def sdf(m: np.ndarray) -> Any:
        return np.where(m, ndimage.distance_transform_edt(m), -ndimage.distance_transform_edt(~m))

    for s in shapes:
        t = s["frame"] / 4
        want = (sdf(a) + (sdf(b) - sdf(a)) * t) > 0
        np.testing.assert_array_equal(cvat_mask_to_array(s["points"], 30, 40), want)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.randoms())
def test_signed_distance_matches_scipy(h: int, w: int, rnd: Any) -> None:
    mask = np.array([[rnd.random() < 0.4 for _ in range(w)] for _ in range(h)])
    mask[rnd.randrange(h), rnd.randrange(w)] = True
    padded = np.pad(mask, 1)
    want = np.where(
        padded,
        ndimage.distance_transform_edt(padded),
        -ndimage.distance_transform_edt(~padded),
    )
    np.testing.assert_allclose(signed_distance(padded), want, atol=1e-9)


# ---------------------------------------------------------------- validation

GOOD = {"type": "rectangle", "frame": 0, "points": [0, 0, 1, 1]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"points": [0, 0, 1]}, "needs 4 numbers"),
        ({"points": [0, 0, 1, float("nan")]}, "NaN"),
        ({"points": [0, 0, 1, float("inf")]}, "NaN or infinity"),
        ({"points": ["0", "0", "1", "1"]}, "flat list of numbers"),
        ({"points": [[0, 0], [1, 1]]}, "flat list of numbers"),
        ({"frame": -1}, "'frame' must be >= 0"),
        ({"frame": 1.5}, "'frame' must be an integer"),
        ({"type": "circle"}, "unknown 'type'"),
        ({"outside": "yes"}, "'outside' must be a boolean"),
        ({"rotation": float("nan")}, "'rotation' must be finite"),
        ({"attributes": [{"spec_id": "x", "value": "a"}]}, "'spec_id' must be an integer"),
        ({"attributes": [{"spec_id": 1, "value": 3}]}, "'value' must be a string"),
    ],
)
def test_bad_keyframes_are_rejected(change: Shape, message: str) -> None:
    track = {"label_id": 1, "shapes": [{**GOOD, **change}]}
    with pytest.raises(ValueError, match=message):
        interpolate_track(track, 10)


@pytest.mark.parametrize(
    ("track", "message"),
    [
        ({"label_id": 1, "shapes": [GOOD, GOOD]}, "two keyframes on frame 0"),
        ({"label_id": 1, "shapes": [GOOD, {**GOOD, "frame": 2, "type": "ellipse"}]}, "mix"),
        ({"label_id": 1, "shapes": [{**GOOD, "type": "polygon", "points": [1, 2, 3]}]}, "even"),
        ({"label_id": 1, "shapes": [{**GOOD, "type": "mask", "points": [5, 0, 0, 1, 1]}]}, "cover"),
        ({"shapes": [GOOD]}, "'label_id'"),
        ({"label_id": 1, "shapes": "x"}, "'shapes'"),
        (
            {"label_id": 1, "shapes": [GOOD], "elements": [{"label_id": 2, "shapes": []}]},
            "skeleton",
        ),
    ],
)
def test_bad_tracks_are_rejected(track: Shape, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        interpolate_track(track, 10)


def test_bad_ranges_and_batches_are_rejected() -> None:
    track = {"label_id": 1, "shapes": [GOOD]}
    with pytest.raises(ValueError, match="stop_frame"):
        interpolate_track(track, -1)
    with pytest.raises(ValueError, match="start_frame"):
        interpolate_track(track, 3, start_frame=5)
    with pytest.raises(ValueError, match="mask_mode"):
        interpolate_track(track, 3, mask_mode="blur")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strictly increase"):
        interpolate_linear_tracks([0, 2], [3, 3], np.zeros((2, 4)), 5)
    with pytest.raises(ValueError, match="track_offsets"):
        interpolate_linear_tracks([0, 3], [0, 1], np.zeros((2, 4)), 5)
    with pytest.raises(ValueError, match="finite"):
        interpolate_linear_tracks([0, 1], [0], np.full((1, 4), np.nan), 5)
    with pytest.raises(ValueError, match="vertex_offsets"):
        interpolate_poly_tracks([0, 1], [0], [0, 0], np.zeros((0, 2)), 5, closed=True)
