"""The shared painter: segments and painting against a plain NumPy/pycocotools reference of
CVAT's chain (RotatedBoxesToPolygons, polygons_to_masks, boxes_to_masks,
merge_instance_segments, CompiledMask), label maps, colormaps and the PNG encoders."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tessera.export.formats import paint as painter
from tessera.export.formats.paint import (
    Segment,
    colormap_label_map,
    frame_segments,
    gray_png,
    hex_to_rgb,
    lookup,
    paint,
    palette_png,
    source_label_map,
    voc_colormap,
)
from tessera.export.model import Label, Shape, shapes_as_cvat_writes_them

H, W = 37, 53

# --- a reference, written from CVAT's and datumaro's rules with NumPy and pycocotools -----


def _r2(values: Sequence[float]) -> list[float]:
    return [float(v) for v in np.around(np.asarray(values, dtype=float), 2)]


def _coco(polygon: Sequence[float], h: int, w: int) -> npt.NDArray[np.bool_]:
    rle = mask_utils.frPyObjects([list(polygon)], h, w)[0]
    return np.asarray(mask_utils.decode(rle), dtype=bool)


def _cvat_mask(points: Sequence[float], h: int, w: int) -> npt.NDArray[np.bool_]:
    left, top, right, bottom = (int(v) for v in points[-4:])
    bh, bw = bottom - top + 1, right - left + 1
    flat = np.zeros(bh * bw, bool)
    pos = 0
    for i, run in enumerate(int(v) for v in points[:-4]):
        if i % 2:
            flat[pos : pos + run] = True
        pos += run
    out = np.zeros((h, w), bool)
    out[top : bottom + 1, left : right + 1] = flat.reshape(bh, bw)
    return out


def _ellipse(points: Sequence[float], rotation: float, h: int, w: int) -> npt.NDArray[np.bool_]:
    cx, cy, right, top = points
    rx, ry = right - cx, cy - top
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    dx, dy = xs - cx, ys - cy
    lx, ly = dx * c + dy * s, -dx * s + dy * c
    return np.asarray((lx / rx) ** 2 + (ly / ry) ** 2 <= 1.0)


def _reference_pixels(shape: Shape, h: int, w: int) -> npt.NDArray[np.bool_] | None:
    if shape.type == "mask":
        return _cvat_mask(shape.points, h, w)
    if shape.type == "ellipse":
        return _ellipse(shape.points, shape.rotation, h, w)
    if shape.type == "polygon":
        return _coco(_r2(shape.points), h, w)
    if shape.type == "rectangle":
        x0, y0, x1, y1 = _r2(shape.points)
        if shape.rotation:  # RotatedBoxesToPolygons, on the rounded box
            angle = math.radians(shape.rotation)
            cx, cy = x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2
            corners: list[float] = []
            for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
                corners.append(cx + math.cos(angle) * (x - cx) - math.sin(angle) * (y - cy))
                corners.append(cy + math.sin(angle) * (x - cx) + math.cos(angle) * (y - cy))
            return _coco(_r2(corners), h, w)
        return _coco([x0, y0, x1, y0, x1, y1, x0, y1], h, w)
    return None


def _reference(
    shapes: Sequence[Shape], h: int, w: int, classes: dict[int, int], background: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Class and instance maps as CVAT's chain would paint them, step by step."""
    ordered = shapes_as_cvat_writes_them(shapes)
    anns = [(s, m) for s in ordered if (m := _reference_pixels(s, h, w)) is not None]
    # RotatedBoxesToPolygons appends the rotated boxes' polygons at the end
    anns = [a for a in anns if not (a[0].type == "rectangle" and a[0].rotation)] + [
        a for a in anns if a[0].type == "rectangle" and a[0].rotation
    ]
    # merge_instance_segments: find_instances, then the union under the largest member
    instances: list[tuple[Shape, npt.NDArray[np.bool_]]] = []
    for group in sorted({s.group for s, _ in anns}):
        members = [a for a in anns if a[0].group == group]
        if group == 0:
            instances += members
            continue
        areas = [int(m.sum()) for _, m in members]
        leader = members[areas.index(max(areas))][0]
        instances.append((leader, np.logical_or.reduce([m for _, m in members])))
    # CompiledMask.from_instance_masks
    ranked = sorted(instances, key=lambda a: a[0].z_order)
    index = np.zeros((h, w), np.int64)
    class_of = [background]
    for k, (shape, pixels) in enumerate(ranked, 1):
        cls = classes[shape.label_id]
        index = np.where(pixels, 0 if cls == background else k, index)
        class_of.append(cls)
    return np.asarray(class_of)[index], index


def _random_shape(rng: random.Random, label_ids: Sequence[int]) -> Shape:
    kind = rng.choice(["rectangle", "rectangle", "polygon", "mask", "ellipse", "points"])
    label = rng.choice(label_ids)
    common: dict[str, Any] = {
        "z_order": rng.choice([0, 0, 1, 2, -1]),
        "group": rng.choice([0, 0, 0, 1, 2]),
    }
    if rng.random() < 0.3:
        common["track_id"] = rng.randrange(5)
    if kind == "rectangle":
        x0, y0 = rng.uniform(-5, W), rng.uniform(-5, H)
        points: list[float] = [x0, y0, x0 + rng.uniform(0, 30), y0 + rng.uniform(0, 20)]
        rotation = rng.choice([0.0, 0.0, rng.uniform(0, 360)])
        return Shape("rectangle", label, points, rotation=rotation, **common)
    if kind == "polygon":
        size = rng.randrange(3, 8)
        points = [
            rng.uniform(-3, W + 3) if i % 2 == 0 else rng.uniform(-3, H + 3)
            for i in range(2 * size)
        ]
        return Shape("polygon", label, points, **common)
    if kind == "mask":
        left, top = rng.randrange(W - 1), rng.randrange(H - 1)
        right, bottom = rng.randrange(left, W), rng.randrange(top, H)
        cells = (right - left + 1) * (bottom - top + 1)
        runs, total = [], 0
        while total < cells:
            run = min(rng.randrange(0, 9), cells - total)
            runs.append(run)
            total += run
        return Shape("mask", label, [*runs, left, top, right, bottom], **common)
    if kind == "ellipse":
        cx, cy = rng.uniform(0, W) + 0.137, rng.uniform(0, H) + 0.291
        rx, ry = rng.uniform(0.7, 12.3), rng.uniform(0.7, 9.1)
        rotation = rng.choice([0.0, rng.uniform(0, 180)])
        return Shape("ellipse", label, [cx, cy, cx + rx, cy - ry], rotation=rotation, **common)
    return Shape("points", label, [1.0, 2.0], **common)


def test_painting_matches_a_numpy_and_pycocotools_reference() -> None:
    rng = random.Random(20240611)
    classes = {10: 3, 11: 1, 12: 0, 13: 2}  # label 12 is the background class
    for _ in range(40):
        shapes = [_random_shape(rng, list(classes)) for _ in range(rng.randrange(1, 12))]
        segments = frame_segments(shapes_as_cvat_writes_them(shapes), H, W)
        index, order = paint(segments, H, W, erase=lambda s: classes[s.label_id] == 0)
        class_map = lookup(index, [0, *(classes[s.label_id] for s in order)])
        want_class, want_index = _reference(shapes, H, W, classes, background=0)
        assert np.array_equal(class_map, want_class)
        assert np.array_equal(index, want_index)


def test_segments_order_leader_and_kinds() -> None:
    shapes = shapes_as_cvat_writes_them(
        [
            Shape("rectangle", 1, (0, 0, 4, 4), rotation=30),  # moved to the end
            Shape("rectangle", 2, (5, 5, 6, 6), group=7),  # 1 pixel
            Shape("polygon", 3, (5, 0, 9, 0, 9, 4, 5, 4), group=7),  # 16 pixels: the leader
            Shape("mask", 4, (0, 1, 10, 10, 10, 10)),
            Shape("polyline", 5, (0, 0, 9, 9)),
            Shape("polygon", 6, (0, 0, 1, 1)),  # 2 points: skipped
            Shape("ellipse", 7, (3, 3, 5, 2), group=2),
            Shape("rectangle", 8, (7, 7, 9, 9), z_order=-1),
        ]
    )
    segments = frame_segments(shapes, 12, 12)
    assert [(s.label_id, s.position) for s in segments] == [(8, 0), (4, 1), (1, 2), (7, 3), (3, 4)]
    merged = segments[-1]
    assert merged.shape.group == 7
    assert int(mask_utils.area(dict(merged.rle))) == 17
    only_masks = frame_segments(shapes, 12, 12, polygons=False, boxes=False, merge_groups=False)
    assert [s.label_id for s in only_masks] == [4, 7]
    kitti = frame_segments(shapes, 12, 12, polygons=True, boxes=False)
    assert [s.label_id for s in kitti] == [4, 1, 7, 3]  # the upright boxes are not segments
    assert frame_segments(shapes, 0, 12) == []


def test_paint_in_z_order_with_erasing() -> None:
    def seg(label: int, z: int, box: tuple[int, int, int, int], position: int) -> Segment:
        x0, y0, x1, y1 = box
        shape = Shape("rectangle", label, box, z_order=z)
        rle = mask_utils.frPyObjects([[x0, y0, x1, y0, x1, y1, x0, y1]], 4, 6)[0]
        return Segment(shape, rle, position)

    segments = [seg(1, 1, (0, 0, 4, 3), 0), seg(2, 0, (2, 1, 6, 4), 1), seg(3, 2, (1, 0, 3, 2), 2)]
    index, order = paint(segments, 4, 6, erase=lambda s: s.label_id == 3)
    assert [s.label_id for s in order] == [2, 1, 3]
    assert index.tolist() == [
        [2, 0, 0, 2, 0, 0],
        [2, 0, 0, 2, 1, 1],
        [2, 2, 2, 2, 1, 1],
        [0, 0, 1, 1, 1, 1],
    ]
    assert index.dtype == np.uint8
    assert lookup(index, [0, 500, 7, 9]).dtype == np.uint16


def _rle(pixels: npt.NDArray[Any]) -> Any:
    return mask_utils.encode(np.asfortranarray(pixels, dtype=np.uint8))


def test_many_segments_and_long_runs() -> None:
    h, w = 40, 120
    checker = np.indices((h, w)).sum(axis=0) % 2  # 4800 runs: painted from the decoded mask
    segments = [Segment(Shape("mask", 1, ()), _rle(checker), 0)]
    for k in range(300):  # more than 255 segments: a 16-bit index map
        pixel = np.zeros((h, w))
        pixel[k // w, k % w] = 1
        segments.append(Segment(Shape("mask", 2, (), z_order=1), _rle(pixel), k + 1))
    stripes = np.zeros((h, w))
    stripes[::2, :] = 1
    segments.append(Segment(Shape("mask", 3, (), z_order=2), _rle(stripes), 301))
    index, order = paint(segments, h, w)
    assert index.dtype == np.uint16
    want = np.where(checker, 1, 0)
    for k in range(300):
        want[k // w, k % w] = k + 2
    want[::2, :] = 302
    assert np.array_equal(index, want)
    assert [s.position for s in order] == list(range(302))


def test_label_maps() -> None:
    labels = (
        Label(4, "zebra", "mask", "#102030"),
        Label(2, "Apple", "polygon", "#ff0000"),
        Label(
            7,
            "person",
            "skeleton",
            "#00ff00",
            sublabels=(Label(8, "head", "points", "#0000ff", parent_id=7),),
        ),
        Label(9, "car", "rectangle", "#000000"),
    )
    voc_sorted = colormap_label_map(labels, background_first=False)
    # make_colormap adds a black background; "car" is black too and sorts first
    assert voc_sorted.names == ("Apple", "background", "car", "head", "person", "zebra")
    assert voc_sorted.background == 1
    assert voc_sorted.colors[2] == (0, 0, 0)
    first = colormap_label_map(labels, background_first=True)
    assert first.names[0] == "background"
    assert first.background == 0
    named = (Label(1, "sky", "mask", "#0000ff"), Label(2, "background", "mask", "#ff00ff"))
    assert colormap_label_map(named, background_first=False).names == ("background", "sky")
    assert colormap_label_map(named, background_first=True).colors[0] == (255, 0, 255)
    source = source_label_map(labels)
    assert source.names == ("background", "Apple", "zebra", "person", "head", "car")
    assert source.colors[:3] == ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    in_place = source_label_map((Label(1, "a", "mask", ""), Label(2, "background", "mask", "")))
    assert (in_place.names, in_place.background) == (("a", "background"), 1)
    assert hex_to_rgb("#Ff8001") == (255, 128, 1)
    assert hex_to_rgb("") == (0, 0, 0)


def test_voc_colormap() -> None:
    colors = voc_colormap()
    assert len(colors) == 256
    assert colors[:6] == [
        (0, 0, 0),
        (128, 0, 0),
        (0, 128, 0),
        (128, 128, 0),
        (0, 0, 128),
        (128, 0, 128),
    ]
    assert colors[15] == (192, 128, 128)  # VOC's person
    assert colors[255] == (224, 224, 192)  # VOC's void


def _decode(data: bytes) -> npt.NDArray[Any]:
    """cv2's reading (as datumaro reads masks): palette images come back as BGR."""
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))


def test_png_encoders() -> None:
    indices = np.array([[0, 1, 2], [257, 3, 0]], dtype=np.uint16)
    palette = [(0, 0, 0), (255, 0, 0), (1, 2, 3)]
    data = palette_png(indices, palette)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "P"
    assert np.asarray(image).tolist() == [[0, 1, 2], [1, 3, 0]]  # modulo 256
    rgb = _decode(data)[..., ::-1]
    assert rgb.tolist() == [
        [[0, 0, 0], [255, 0, 0], [1, 2, 3]],
        [[255, 0, 0], [0, 0, 0], [0, 0, 0]],  # past the palette: black
    ]
    values = np.array([[0, 300], [70000, 65535]], dtype=np.uint32)
    sixteen = _decode(gray_png(values, 16))
    assert sixteen.dtype == np.uint16
    assert sixteen.tolist() == [[0, 300], [65535, 65535]]
    eight = _decode(gray_png(np.array([[1, 256, 257]], dtype=np.uint16), 8))
    assert eight.dtype == np.uint8
    assert eight.tolist() == [[1, 0, 1]]
    assert _decode(gray_png(np.array([[9]], dtype=np.uint8), 16)).tolist() == [[9]]


def test_spools_keep_key_order_and_lines() -> None:
    with painter.Spools() as spools:
        spools.add("b", "one")
        spools.add("a", "two words")
        spools.add("b", "three")
        assert list(spools) == ["b", "a"]
        assert list(spools.lines("b")) == ["one", "three"]
        assert "a" in spools
        assert "c" not in spools
        assert list(spools.lines("c")) == []


@pytest.mark.parametrize(
    "shape",
    [
        Shape("rectangle", 1, (1.0, float("nan"), 3.0, 4.0)),
        Shape("rectangle", 1, (5.0, 5.0, 1.0, 1.0)),
        Shape("rectangle", 1, (0.0, 0.0, float("inf"), 1.0)),
        Shape("ellipse", 1, (4.0, 4.0, float("inf"), 2.0)),
        Shape("rectangle", 1, (5.0, 5.0, 1.0, 1.0), rotation=10),
        Shape("polygon", 1, (1.0, float("nan"), 3.0, 4.0, 5.0, 6.0)),
        Shape("polygon", 1, (1.0, 2.0, 3.0, 4.0)),
        Shape("ellipse", 1, (4.0, 4.0, 3.0, 2.0)),
        Shape("ellipse", 1, (4.0, 4.0, 5.0)),
        Shape("mask", 1, (1.0, 2.0)),
        Shape("cuboid", 1, tuple(float(v) for v in range(16))),
    ],
)
def test_broken_or_unpainted_shapes_paint_nothing(shape: Shape) -> None:
    assert frame_segments([shape], 8, 8) == []
