"""The Ultralytics YOLO formats (Detection, Segmentation, Pose, Oriented Bounding Boxes and
Classification 1.0), as CVAT 2.80 writes them, streamed one frame at a time.

CVAT exports them through its datumaro fork (cvat/apps/dataset_manager/formats/yolo.py:
`_export_yolo_ultralytics_detection`, `_segmentation` (which first applies datumaro's
`masks_to_polygons` transform), `_pose`, `_oriented_boxes` and `_classification`, each
`GetCVATDataExtractor` then `dataset.export(dir, "yolo_ultralytics_<kind>")` with the
fork's defaults), after cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`,
`CVATDataExtractorMixin._load_categories`) has turned each frame into a datumaro item
(ellipses become masks there). The fork's datumaro/plugins/yolo_format (the Ultralytics
writers derive from `YoloConverter`, see `formats/yolo.py`), datumaro/util/mask_tools.py
and datumaro/components/annotation.py fix the rest; CVAT's docs: docs.cvat.ai, "Export
formats" > "Ultralytics YOLO" and "Ultralytics-YOLO-Classification". The rules, and so
these writers:

Detection, Segmentation, Pose and Oriented Bounding Boxes share a layout:
- Subsets as in YOLO 1.1: the frame's subset, else the task's, else `default`, written as
  `train`. `backup`, `classes`, `names`, `path`, `kpt_shape` and `flip_idx` are reserved
  (ValueError).
- `labels/<subset>/<id>.txt` for each frame that has at least one line (`<id>`: the
  frame's name without its extension, folders kept); a frame without lines gets no file.
- `<subset>.txt` per subset: `data/images/<subset>/<id><ext>` for every frame written
  (only annotated ones with `annotated_only`), lines or not, in frame order (`<ext>`: the
  name's extension, `.jpg` when it has none).
- `data.yaml`, as PyYAML's `yaml.dump` writes the fork's dict (keys sorted, block style,
  ASCII): `path: .`, `names: {<class>: <name>}`, `<subset>: <subset>.txt` for each subset,
  and for Pose `kpt_shape: [<points>, 3]`. With no frame at all there is no subset key.
- Classes (`names`): the labels without a parent (skeleton points excluded) ordered by
  label id, numbered from 0; for Pose only the skeleton labels, by label id.
- Shapes in CVAT's order (by `z_order`, plain shapes before track shapes; a track's
  outside frames, and a track skeleton whose points are all outside, are left out).
  Every coordinate is first rounded to 2 decimals as datumaro stores it, then divided by
  the frame's width (x) or height (y) and printed `%.6f`, not clipped (shapes that leave
  the frame give values outside [0, 1], as in CVAT). A frame without a size gets no lines.
- Detection: each rectangle not rotated (`rotation % 360 <= 1e-5`) as
  `<class> <cx> <cy> <w> <h>`, computed as in YOLO 1.1; rotated rectangles are left out
  (the fork's detection writer inherits YOLO 1.1's rule). Nothing else is written.
- Oriented Bounding Boxes: each rectangle, rotated or not, as `<class> x1 y1 x2 y2 x3 y3
  x4 y4`: the corners top-left, top-right, bottom-right, bottom-left of the rounded box,
  turned by `rotation` degrees about the box's centre (clockwise on screen), in that order.
- Segmentation: each polygon (3 points or more) as `<class> x1 y1 ...`; each mask, and
  each ellipse (which CVAT makes a mask), as one line per 8-connected piece of it, its
  outline closed (the first point repeated at the end) with each hole joined to it by a
  cut from the nearest pair of outline and hole vertices (the fork's
  `mask_tools.mask_to_polygons`: contours with their holes merged in, as Ultralytics has
  no holes). Rectangles, polylines, points, cuboids and skeletons write nothing.
- Pose: each skeleton as `<class> <cx> <cy> <w> <h>` then `x y v` for each point of the
  `kpt_shape`: the skeleton label's points in the order of its svg circles, padded to the
  largest skeleton's count with `0.0 0.0 0`. `v` is 2 visible, 1 occluded, 0 outside (an
  outside point keeps its coordinates); a point the skeleton lacks stays `0.0 0.0 0`. The
  box is that of the points not outside (all zero when none is). `kpt_shape` is
  `[<most points of a skeleton label>, 3]` (`[0, 3]` without skeletons).
- With `save_images`, CVAT puts each image at `images/<subset>/<id><ext>`
  (`image_path_ultralytics`).

Classification:
- Per subset (named as above, no name reserved) `<subset>/labels.json`: compact JSON
  (orjson, as datumaro writes it) mapping each frame's `<id>` to `{"labels": [the names of
  its tags' labels, in order], "path": "<label>/<name><ext>"}`, frames in order. Without
  `save_images` these files are all CVAT writes (it makes the image folders only to save
  images into them, and empty folders do not reach the zip). With no frame at all the
  archive is empty.
- With `save_images`, the image goes once into `<subset>/<label>/` for each of its tags
  (`<subset>/no_label/` without a tag) under its base name `<name><ext>` (the id's last
  path component); a base name already used in that folder becomes `<name>.0`, `<name>.1`,
  ... (the first free one). `path` is the last of those copies. `ClassificationLayout`
  gives the same paths when fed the same frames in the same order.

Where these writers differ from CVAT (on purpose or of necessity):
- mask outlines (masks, ellipses): CVAT traces cv2 contours through pixel centres
  (`CHAIN_APPROX_TC89_KCOS`, outlines of fewer than 3 points and pieces under 1 px of
  area dropped) and draws ellipses with cv2; these writers take the exact pixel-edge
  outlines of `tessera.geometry.mask_to_polygons` (vertices on pixel corners, so a lone
  pixel is a 1x1 square and is kept) of the pixels whose centres lie in the ellipse,
  joining holes the way the fork does.
- Inputs CVAT would fail the export on are skipped: a polygon of fewer than 3 points, a
  box without 4 numbers, an ellipse with negative radii, a skeleton point of a label the
  skeleton does not have; a mask whose box leaves the frame is clipped to it.
- Not written: CVAT's "Ultralytics YOLO Detection Track 1.0" (detection lines with the
  track id appended).

Nothing is held beyond one frame: label files are written as the frames come; subset lists
and `labels.json` entries are spooled (in memory up to a few MiB, on disk past that) until
the end, and the classification base names already used live in a temporary SQLite file.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import yaml
from scipy import ndimage
from scipy.spatial import cKDTree

from tessera.export.formats.coco import ellipse_rle, mask_rle, round2, skeleton_graph
from tessera.export.formats.yolo import (
    Spools,
    check_subset,
    cvat_frames,
    frame_subset,
    is_rotated,
    item_stem_and_ext,
    number,
    rounded_box,
    top_labels,
    write_member,
    yolo_box,
    yolo_subset,
)
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    Shape,
    labels_by_id,
)
from tessera.geometry import decode, mask_to_polygons

ULTRALYTICS_IMAGE_PATH: Final = "images/{subset}/{name}"
"""Where CVAT puts a frame's image with `save_images` (`name` is `<id><ext>`)."""
ULTRALYTICS_LABELS_PATH: Final = "labels/{subset}/{stem}.txt"
ULTRALYTICS_LIST_ENTRY: Final = "data/images/{subset}/{name}"
CONFIG_MEMBER: Final = "data.yaml"
RESERVED_SUBSETS: Final = frozenset({"backup", "classes", "names", "path", "kpt_shape", "flip_idx"})
CLASSIFICATION_IMAGE_PATH: Final = "{subset}/{label}/{name}"
"""Where CVAT puts a copy of a frame's image for each of its tags with `save_images`."""
CLASSIFICATION_LABELS_PATH: Final = "{subset}/labels.json"
NO_LABEL: Final = "no_label"

_VISIBLE, _OCCLUDED, _OUTSIDE = 2, 1, 0
_MISSING_POINT: Final = f"0.0 0.0 {_OUTSIDE}"
_EIGHT_CONNECTED: Final = np.ones((3, 3), np.bool_)


def image_path_ultralytics(frame: FrameInfo, subset: str) -> str:
    """Where CVAT's Ultralytics YOLO Detection, Segmentation, Pose and Oriented Bounding
    Boxes put the frame's image with `save_images` (`subset` as the other writers name it:
    `default` becomes `train`)."""
    stem, ext = item_stem_and_ext(frame.name)
    return ULTRALYTICS_IMAGE_PATH.format(subset=yolo_subset(subset), name=stem + ext)


# --- the four formats with labels/ files ---------------------------------------------------


Lines = Callable[[FrameAnnotations, Sequence[Shape]], list[str]]


@dataclass(frozen=True)
class _Kind:
    name: str
    names: list[str]
    """The class names, by class number."""
    lines: Lines
    extra: dict[str, Any] = field(default_factory=dict)


async def write_ultralytics_detection(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Ultralytics YOLO Detection 1.0: unrotated rectangles as centre and size."""
    labels = top_labels(dataset.task.labels)
    classes = {label.id: index for index, label in enumerate(labels)}

    def lines(item: FrameAnnotations, shapes: Sequence[Shape]) -> list[str]:
        w, h = item.frame.width, item.frame.height
        out = []
        for shape in shapes:
            index = classes.get(shape.label_id)
            if shape.type != "rectangle" or index is None or is_rotated(shape):
                continue
            box = rounded_box(shape.points)
            if box is not None:
                out.append(_line(index, yolo_box(box, w, h)))
        return out

    kind = _Kind("Ultralytics YOLO Detection 1.0", [lb.name for lb in labels], lines)
    await _write(dataset, archive, options, kind)


async def write_ultralytics_obb(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Ultralytics YOLO Oriented Bounding Boxes 1.0: rectangles as 4 corners."""
    labels = top_labels(dataset.task.labels)
    classes = {label.id: index for index, label in enumerate(labels)}

    def lines(item: FrameAnnotations, shapes: Sequence[Shape]) -> list[str]:
        w, h = item.frame.width, item.frame.height
        out = []
        for shape in shapes:
            index = classes.get(shape.label_id)
            if shape.type != "rectangle" or index is None:
                continue
            corners = obb_corners(shape.points, shape.rotation)
            if corners is not None:
                out.append(_line(index, _normalised(corners, w, h)))
        return out

    name = "Ultralytics YOLO Oriented Bounding Boxes 1.0"
    await _write(dataset, archive, options, _Kind(name, [lb.name for lb in labels], lines))


async def write_ultralytics_segmentation(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Ultralytics YOLO Segmentation 1.0: polygons, and masks and ellipses as their
    outlines."""
    labels = top_labels(dataset.task.labels)
    classes = {label.id: index for index, label in enumerate(labels)}

    def lines(item: FrameAnnotations, shapes: Sequence[Shape]) -> list[str]:
        w, h = item.frame.width, item.frame.height
        out = []
        for shape in shapes:
            index = classes.get(shape.label_id)
            if index is not None:
                for ring in segmentation_rings(shape, h, w):
                    out.append(_line(index, _normalised(ring, w, h)))
        return out

    name = "Ultralytics YOLO Segmentation 1.0"
    await _write(dataset, archive, options, _Kind(name, [lb.name for lb in labels], lines))


async def write_ultralytics_pose(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Ultralytics YOLO Pose 1.0: skeletons as a box and `x y v` per point."""
    skeletons = [label for label in top_labels(dataset.task.labels) if label.type == "skeleton"]
    classes = {label.id: index for index, label in enumerate(skeletons)}
    positions: dict[int, dict[int, int]] = {}
    for label in skeletons:
        point_names, _ = skeleton_graph(label)
        by_name = {sublabel.name: sublabel.id for sublabel in label.sublabels}
        positions[label.id] = {
            by_name[name]: index for index, name in enumerate(point_names) if name in by_name
        }
    points = max((len(skeleton_graph(label)[0]) for label in skeletons), default=0)

    def lines(item: FrameAnnotations, shapes: Sequence[Shape]) -> list[str]:
        w, h = item.frame.width, item.frame.height
        out = []
        for shape in shapes:
            index = classes.get(shape.label_id)
            if shape.type == "skeleton" and index is not None:
                out.append(_pose_line(index, shape, positions[shape.label_id], points, w=w, h=h))
        return out

    kind = _Kind(
        "Ultralytics YOLO Pose 1.0",
        [label.name for label in skeletons],
        lines,
        {"kpt_shape": [points, 3]},
    )
    await _write(dataset, archive, options, kind)


async def _write(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions, kind: _Kind
) -> None:
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError(f"{kind.name} is a 2D format: point cloud tasks cannot be written in it")
    with contextlib.ExitStack() as stack:
        lists = Spools(stack)
        async for item, shapes in cvat_frames(dataset, options):
            frame = item.frame
            subset = yolo_subset(frame_subset(frame, task))
            check_subset(subset, RESERVED_SUBSETS, kind.name)
            stem, ext = item_stem_and_ext(frame.name)
            lines = kind.lines(item, shapes) if frame.width > 0 and frame.height > 0 else []
            if lines:
                path = ULTRALYTICS_LABELS_PATH.format(subset=subset, stem=stem)
                write_member(archive, path, "".join(lines).encode())
            entry = ULTRALYTICS_LIST_ENTRY.format(subset=subset, name=stem + ext)
            lists.add(subset, entry.encode() + b"\n")
        for subset in lists.subsets():
            await lists.write(archive, subset, f"{subset}.txt")
        config = config_yaml(kind.names, lists.subsets(), kind.extra)
        write_member(archive, CONFIG_MEMBER, config.encode())


def config_yaml(names: Sequence[str], subsets: Sequence[str], extra: dict[str, Any]) -> str:
    """`data.yaml` as the fork writes it: `yaml.dump` of `path`, `names`, the subset lists
    and any extra fields (keys sorted, block style, non-ASCII escaped)."""
    data: dict[str, Any] = {"path": ".", "names": dict(enumerate(names))}
    data.update({subset: f"{subset}.txt" for subset in subsets})
    data.update(extra)
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=False)


def _line(index: int, values: Sequence[float]) -> str:
    return f"{index} {' '.join(number(v) for v in values)}\n"


def _normalised(points: Sequence[float], width: int, height: int) -> list[float]:
    return [v / width if i % 2 == 0 else v / height for i, v in enumerate(points)]


# - oriented boxes


def obb_corners(points: Sequence[float], rotation: float) -> list[float] | None:
    """The fork's `_bbox_annotation_as_polygon`: the rounded box's corners (top-left,
    top-right, bottom-right, bottom-left) turned by `rotation` degrees about its centre."""
    box = rounded_box(points)
    if box is None:
        return None
    x, y = box[0], box[1]
    w, h = box[2] - box[0], box[3] - box[1]
    corners = [x, y, x + w, y, x + w, y + h, x, y + h]
    angle = math.radians(float(rotation))
    if not angle:
        return corners
    cx, cy = x + w / 2, y + h / 2
    cos, sin = math.cos(angle), math.sin(angle)
    turned = []
    for px, py in zip(corners[0::2], corners[1::2], strict=True):
        turned += [cx + cos * (px - cx) - sin * (py - cy), cy + sin * (px - cx) + cos * (py - cy)]
    return turned


# - segmentation


def segmentation_rings(shape: Shape, h: int, w: int) -> list[list[float]]:
    """What Ultralytics YOLO Segmentation writes of a shape: a polygon's points, rounded; a
    mask's or an ellipse's outlines (one per 8-connected piece, holes joined in, closed)."""
    points = shape.points
    if shape.type == "polygon":
        if len(points) < 6 or len(points) % 2:
            return []
        return [[round2(float(v)) for v in points]]
    if shape.type == "mask":
        pixels = decode(mask_rle(points, h, w))
    elif shape.type == "ellipse":
        if len(points) != 4 or points[2] < points[0] or points[3] > points[1]:
            return []
        pixels = decode(ellipse_rle(points, shape.rotation, h, w))
    else:
        return []
    return mask_outlines(pixels)


def mask_outlines(mask: npt.NDArray[Any]) -> list[list[float]]:
    """Each 8-connected piece of the mask as one closed outline with its holes cut in (the
    fork's `mask_to_polygons` with `_merge_contour_with_parent`), vertices on pixel corners.
    """
    pieces, _ = ndimage.label(np.asarray(mask, np.bool_), structure=_EIGHT_CONNECTED)
    outlines: list[list[float]] = []
    for index, window in enumerate(ndimage.find_objects(pieces), start=1):
        if window is None:
            continue
        rows, cols = window
        rings = mask_to_polygons(pieces[window] == index)
        outer = [ring.reshape(-1, 2) for ring in rings if _signed_area(ring) > 0]
        if not outer:
            continue
        outline = outer[0]
        for ring in rings:
            if _signed_area(ring) < 0:
                outline = _join_hole(outline, ring.reshape(-1, 2))
        corner = np.array([cols.start, rows.start], np.float64)
        outline = np.vstack((outline, outline[:1])) + corner
        outlines.append(outline.ravel().tolist())
    return outlines


def _signed_area(ring: npt.NDArray[np.float64]) -> float:
    xs, ys = ring[0::2], ring[1::2]
    return float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))


def _join_hole(
    outline: npt.NDArray[np.float64], hole: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The outline with the hole spliced in at the closest pair of their vertices: outline
    up to that vertex, the hole all round back to its vertex, then the rest of the outline
    from the same vertex (orientations opposite, as the fork makes them)."""
    distances, nearest = cKDTree(outline).query(hole)
    at_hole = int(np.argmin(distances))
    at_outline = int(nearest[at_hole])
    return np.concatenate(
        (
            outline[: at_outline + 1],
            hole[at_hole:],
            hole[: at_hole + 1],
            outline[at_outline:],
        )
    )


# - pose


def _pose_line(
    index: int, skeleton: Shape, positions: dict[int, int], size: int, *, w: int, h: int
) -> str:
    seen = [e for e in skeleton.elements if not e.outside and len(e.points) >= 2]
    xs = [round2(float(e.points[0])) for e in seen]
    ys = [round2(float(e.points[1])) for e in seen]
    x0, x1 = min(xs, default=0.0), max(xs, default=0.0)
    y0, y1 = min(ys, default=0.0), max(ys, default=0.0)
    bw, bh = x1 - x0, y1 - y0
    box = " ".join(number(v) for v in yolo_box((x0, y0, x0 + bw, y0 + bh), w, h))
    slots = [_MISSING_POINT] * size
    for element in skeleton.elements:
        position = positions.get(element.label_id)
        if position is None or len(element.points) < 2:
            continue
        x = round2(float(element.points[0])) / w
        y = round2(float(element.points[1])) / h
        visibility = _OUTSIDE if element.outside else _OCCLUDED if element.occluded else _VISIBLE
        slots[position] = f"{number(x)} {number(y)} {visibility}"
    return f"{index} {box} {' '.join(slots)}\n"


# --- classification ------------------------------------------------------------------------


class ClassificationLayout:
    """Where Ultralytics YOLO Classification puts a frame's image copies with `save_images`:
    one in `<subset>/<label>/` per tag (`no_label` without one), under the frame's base name,
    `.0`, `.1`, ... added when that folder already has the name. Stateful (as the fork's
    `_used_paths`): feed it the frames in the order they are written. The names used are
    kept in a temporary SQLite file, so memory stays flat; close it (or use it as a context
    manager) when done."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database, on disk
        self._db.execute(
            "CREATE TABLE used (folder TEXT, name TEXT, PRIMARY KEY (folder, name)) WITHOUT ROWID"
        )

    def __enter__(self) -> ClassificationLayout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def paths(self, frame: FrameInfo, subset: str, label_names: Sequence[str]) -> list[str]:
        """The archive paths of the frame's copies, one per name in `label_names` (the
        frame's tags' label names, in order), or the `no_label` one. `subset` as the other
        writers name it (`default` becomes `train`)."""
        folder_subset = yolo_subset(subset)
        stem, ext = item_stem_and_ext(frame.name)
        base = stem.rsplit("/", 1)[-1]
        out = []
        for label in label_names or [NO_LABEL]:
            folder = f"{folder_subset}/{label}"
            name = self._claim(folder, base)
            out.append(
                CLASSIFICATION_IMAGE_PATH.format(subset=folder_subset, label=label, name=name + ext)
            )
        return out

    def _claim(self, folder: str, base: str) -> str:
        name = base
        suffix = 0
        while self._db.execute(
            "SELECT 1 FROM used WHERE folder = ? AND name = ?", (folder, name)
        ).fetchone():
            name = f"{base}.{suffix}"
            suffix += 1
        self._db.execute("INSERT INTO used VALUES (?, ?)", (folder, name))
        return name


def image_paths_ultralytics_classification(
    layout: ClassificationLayout, item: FrameAnnotations, subset: str, labels: Sequence[Label]
) -> list[str]:
    """The archive paths CVAT gives the frame's image copies (see `ClassificationLayout`);
    `labels` are the task's labels, to name the tags."""
    return layout.paths(item.frame, subset, tag_names(item, labels_by_id(labels)))


def tag_names(item: FrameAnnotations, labels: dict[int, Label]) -> list[str]:
    """The names of the frame's tags' labels, in order (tags of unknown labels left out)."""
    return [labels[tag.label_id].name for tag in item.tags if tag.label_id in labels]


async def write_ultralytics_classification(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Ultralytics YOLO Classification 1.0: `<subset>/labels.json` per subset (the
    images, which CVAT adds with `save_images`, are not the writer's)."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError(
            "Ultralytics YOLO Classification 1.0 is a 2D format: point cloud tasks cannot be "
            "written in it"
        )
    labels = labels_by_id(task.labels)
    with contextlib.ExitStack() as stack:
        layout = stack.enter_context(ClassificationLayout())
        entries = Spools(stack, separator=b",")
        async for item, _ in cvat_frames(dataset, options):
            subset = frame_subset(item.frame, task)
            tags = tag_names(item, labels)
            paths = layout.paths(item.frame, subset, tags)
            folder = yolo_subset(subset)
            stem, _ = item_stem_and_ext(item.frame.name)
            relative = paths[-1][len(folder) + 1 :]
            entry = orjson.dumps({stem: {"labels": tags, "path": relative}})[1:-1]
            entries.add(folder, entry)
        for folder in entries.subsets():
            path = CLASSIFICATION_LABELS_PATH.format(subset=folder)
            await entries.write(archive, folder, path, b"{", b"}")
