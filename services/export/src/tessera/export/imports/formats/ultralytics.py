"""The Ultralytics YOLO formats' import (Detection, Segmentation, Pose, Oriented Bounding
Boxes and Classification 1.0), as CVAT 2.80 reads them.

CVAT imports them through its datumaro fork (cvat/apps/dataset_manager/formats/yolo.py:
`_import_yolo_ultralytics_detection`, `_segmentation`, `_oriented_boxes`, `_pose` and
`_classification`, each `_import_common` -> `Dataset.import_from(dir,
"yolo_ultralytics_<kind>", image_info=...)` then bindings.py's `import_dm_annotations`);
the fork's datumaro/plugins/yolo_format/extractor.py (`YOLOv8*Extractor`) reads the files.
The layout (as `formats/ultralytics.py` writes it, and as Ultralytics datasets are laid out):

Detection, Segmentation, Pose and Oriented Bounding Boxes:
- `data.yaml` (the one `.yaml` file at the root or one folder down; `data.yaml` when there
  are several): `names`, a list of class names or a mapping of class numbers to names
  (CVAT orders the labels by the numbers); for Pose also `kpt_shape: [<points>, 2 or 3]`.
  Read with PyYAML's safe loader, at most 4 MiB, without aliases (no data.yaml needs them,
  and they are how YAML bombs grow) and at most 32 levels deep.
- `labels/<subset>/<id>.txt` under the folder of `data.yaml`, one line per object, every
  coordinate normalised to the image's width (x) or height (y):
  * Detection: `<class> <cx> <cy> <w> <h>` -> a rectangle (as YOLO 1.1);
  * Segmentation: `<class> x1 y1 x2 y2 x3 y3 ...` (3 points or more) -> a polygon;
  * Oriented Bounding Boxes: `<class> x1 y1 x2 y2 x3 y3 x4 y4` -> a rotated rectangle
    (see `_rotated_box`);
  * Pose: `<class> <cx> <cy> <w> <h>` then `x y [v]` for each of the `kpt_shape` points ->
    a skeleton of `points` elements: `v` 0 outside, 1 occluded, anything else visible
    (2, or no `v` with `kpt_shape [n, 2]`). The box is checked but not kept (CVAT keeps
    none: a skeleton's box follows its points).
  Frame refs are CVAT's item ids: the label file's path below `labels/<subset>/`, without
  `.txt` ("seq/img2" for `labels/train/seq/img2.txt`). The readers take `frame_sizes`
  (`imports.formats.yolo.FrameSizes`, asked once per label file with lines; see
  `imports/formats/yolo.py` for what None does).
- Pose points: CVAT names a class's points after the task's skeleton (its sublabels in
  the order of the skeleton's svg, which is the order its writer puts them in); the reader
  cannot see the task, so it takes `skeleton_points`, the point names of each skeleton
  label in that order (the caller supplies them from the task). Points past a skeleton's
  names (the padding of a smaller skeleton) are left out. Without names for a class, its
  points are named by their position, "0", "1", ... (CVAT, given no task, would call
  them `<label>_point_<i>`).
- `ParsedAnnotations.labels`: the class names (for Pose, the skeletons');
  `ParsedAnnotations.items`: the images under `images/<subset>/` (or `<subset>/images/`),
  their frame refs made as their label files' are; shapes carry their label file's subset.

Classification: folders per subset at the archive's root. A subset with a `labels.json`
(`{"<id>": {"labels": [<names>], "path": "<label>/<file>"}}`, as CVAT writes it) gives
each id a tag per label named (`no_label` is none), on the frame ref `<id>`; a subset
without one gives each image in `<subset>/<label>/` a tag of the folder's label (none in
`no_label/`), on the frame ref of the image's path below the label folder (`img0.jpg`).
`ParsedAnnotations.labels`: the labels named, sorted (CVAT's order).

Where the readers differ from CVAT:
- every label file under `labels/` is read (also `<subset>/labels/` of a Roboflow-style
  export), whatever `data.yaml`'s subset keys say; CVAT reads only the label files of the
  images its subsets list or hold, so an upload of labels without images, with subsets
  given as image folders (Ultralytics' usual `train: images/train`), imports nothing in
  CVAT, and a `data.yaml` with `nc: 80` or `test:` left empty fails there;
- Oriented boxes: the rectangle is the one the four corners make, its width along the
  first corner to the second (CVAT's writer puts the corners in that order, so its own
  boxes come back as they were), where CVAT fits OpenCV's `minAreaRect` (the same
  rectangle, its width and height maybe swapped and its angle off by 90 degrees); four
  points that are no rectangle give the smallest rectangle holding them, as in CVAT. The
  rotation is in [0, 180) as in CVAT;
- Pose visibility may be written as a float ("2.0"), a class number as an integral float
  (CVAT fails on both);
- YAML aliases are refused (CVAT reads them).

Hostile or malformed input fails with `ImportFailed` naming the file and line: no
`data.yaml` ("not an Ultralytics YOLO ... upload"), a `data.yaml` that is not YAML, too
big or without `names` (or, for Pose, a valid `kpt_shape`), a line with the wrong number
of fields, a class that is not a number or not in `names`, coordinates that are not
finite numbers or scale past `tessera.geometry.MAX_COORD`, a `labels.json` of the wrong
shape.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.yolo import (
    FrameSizes,
    LineReader,
    box_reader,
    class_label,
    finite,
    is_image,
    is_metadata,
    not_an_upload,
    not_found,
    read_label_file,
    scaled,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedItem, ParsedShape, ParsedTag

DETECTION: Final = "Ultralytics YOLO Detection 1.0"
SEGMENTATION: Final = "Ultralytics YOLO Segmentation 1.0"
POSE: Final = "Ultralytics YOLO Pose 1.0"
OBB: Final = "Ultralytics YOLO Oriented Bounding Boxes 1.0"
CLASSIFICATION: Final = "Ultralytics YOLO Classification 1.0"

CONFIG_MEMBER: Final = "data.yaml"
MAX_CONFIG_BYTES: Final = 4 << 20
_MAX_CONFIG_DEPTH = 32
_LABELS_DIR = "labels"
_IMAGES_DIR = "images"
_LABELS_EXT = ".txt"
_NO_LABEL = "no_label"
_CLASSIFICATION_LABELS = "labels.json"
_ROTATION_EPSILON = 0.00001
_AREA_TOLERANCE = 1e-3
"""How much smaller a later direction's rectangle must be to win: corners printed to 6
decimals make a rectangle's sides differ a little, and it must keep its first side."""


# --- Detection, Segmentation, Oriented Bounding Boxes, Pose --------------------------------


def read_ultralytics_detection(files: ImportFiles, frame_sizes: FrameSizes) -> ParsedAnnotations:
    """Read an Ultralytics YOLO Detection upload: boxes as rectangles.

    `frame_sizes` gives each frame's size (see `imports/formats/yolo.py`). Raises
    ImportFailed when the upload is not in the format or is malformed.
    """
    config, root, member = _config(files, DETECTION)
    classes, labels = _classes(config, member, DETECTION)
    return _read(files, root, labels, box_reader(classes, member), frame_sizes)


def read_ultralytics_segmentation(files: ImportFiles, frame_sizes: FrameSizes) -> ParsedAnnotations:
    """Read an Ultralytics YOLO Segmentation upload: outlines as polygons.

    `frame_sizes` gives each frame's size (see `imports/formats/yolo.py`). Raises
    ImportFailed when the upload is not in the format or is malformed.
    """
    config, root, member = _config(files, SEGMENTATION)
    classes, labels = _classes(config, member, SEGMENTATION)

    def read(fields: list[str], where: str, width: float, height: float) -> ParsedShape:
        if len(fields) < 7 or len(fields) % 2 == 0:
            raise ImportFailed(
                f"{where}: {len(fields)} fields, where a polygon has a class and 3 or more "
                "x y pairs"
            )
        label = class_label(fields[0], classes, where, member)
        return ParsedShape("polygon", label, scaled(fields[1:], where, width, height))

    return _read(files, root, labels, read, frame_sizes)


def read_ultralytics_obb(files: ImportFiles, frame_sizes: FrameSizes) -> ParsedAnnotations:
    """Read an Ultralytics YOLO Oriented Bounding Boxes upload: 4 corners as rotated
    rectangles.

    `frame_sizes` gives each frame's size (see `imports/formats/yolo.py`). Raises
    ImportFailed when the upload is not in the format or is malformed.
    """
    config, root, member = _config(files, OBB)
    classes, labels = _classes(config, member, OBB)

    def read(fields: list[str], where: str, width: float, height: float) -> ParsedShape:
        if len(fields) != 9:
            raise ImportFailed(
                f"{where}: {len(fields)} fields, where an oriented box has 9 (class, then x y "
                "of 4 corners)"
            )
        label = class_label(fields[0], classes, where, member)
        box, rotation = _rotated_box(scaled(fields[1:], where, width, height))
        return ParsedShape("rectangle", label, box, rotation=rotation)

    return _read(files, root, labels, read, frame_sizes)


def read_ultralytics_pose(
    files: ImportFiles,
    frame_sizes: FrameSizes,
    *,
    skeleton_points: Mapping[str, Sequence[str]] | None = None,
) -> ParsedAnnotations:
    """Read an Ultralytics YOLO Pose upload: skeletons of points.

    `frame_sizes` gives each frame's size (see `imports/formats/yolo.py`);
    `skeleton_points` the point names of each skeleton label, in the order of its svg
    (without them, or for a skeleton not in it, points are named "0", "1", ...). Raises
    ImportFailed when the upload is not in the format or is malformed, or when a
    skeleton has more point names than `kpt_shape` has points.
    """
    config, root, member = _config(files, POSE)
    classes, labels = _classes(config, member, POSE)
    count, per_point = _kpt_shape(config, member)
    names: dict[str, list[str]] = {}
    for label in labels:
        given = (skeleton_points or {}).get(label)
        if given is not None and len(given) > count:
            raise ImportFailed(
                f"{member}: kpt_shape has {count} points, but the skeleton {label!r} has "
                f"{len(given)}"
            )
        names[label] = list(given) if given is not None else [str(i) for i in range(count)]
    expected = 5 + count * per_point

    def read(fields: list[str], where: str, width: float, height: float) -> ParsedShape:
        if len(fields) != expected:
            raise ImportFailed(
                f"{where}: {len(fields)} fields, where a skeleton has {expected} (class, box, "
                f"then {per_point} values for each of {count} points)"
            )
        label = class_label(fields[0], classes, where, member)
        scaled(fields[1:5], where, width, height)  # the box: checked, not kept
        elements = []
        for index, name in enumerate(names[label]):
            at = 5 + index * per_point
            x, y = scaled(fields[at : at + 2], where, width, height)
            visibility = finite(fields[at + 2], where, "visibility") if per_point == 3 else 2.0
            elements.append(
                ParsedShape(
                    "points",
                    name,
                    [x, y],
                    outside=visibility == 0,
                    occluded=visibility == 1,
                )
            )
        return ParsedShape("skeleton", label, [], elements=elements)

    return _read(files, root, labels, read, frame_sizes)


def _read(
    files: ImportFiles,
    root: str,
    labels: list[str],
    read_line: LineReader,
    frame_sizes: FrameSizes,
) -> ParsedAnnotations:
    out = ParsedAnnotations(labels=list(labels))
    prefix = f"{root}/" if root else ""
    for name in files.names():
        if not name.startswith(prefix) or is_metadata(name):
            continue
        path = name[len(prefix) :]
        ref = _item_id(path)
        if ref is not None:
            subset = _placed(path, _LABELS_DIR)[0]
            read_label_file(
                files, name, ref, read_line=read_line, frame_sizes=frame_sizes, out=out,
                subset=subset,
            )  # fmt: skip
        elif is_image(path) and _IMAGES_DIR in path.split("/")[:-1]:
            subset, below = _placed(path, _IMAGES_DIR)
            out.items.append(ParsedItem(posixpath.splitext(below)[0], subset, name))
    return out


def _placed(path: str, folder: str) -> tuple[str, str]:
    """(subset, path below the subset's folder) of a member under `<folder>/<subset>/` or
    `<subset>/<folder>/` (`folder` one of its parent folders): the subset "" for a member
    right under a top-level `folder`."""
    parts = path.split("/")
    at = parts.index(folder)
    rest = parts[at + 1 :]
    if at == 0 and len(rest) > 1:
        return rest[0], "/".join(rest[1:])
    return (parts[at - 1] if at else ""), "/".join(rest)


def _item_id(path: str) -> str | None:
    """The frame ref of a label file (its path below the folder of data.yaml), None for a
    member that is no label file: the path below `labels/<subset>/` (or below
    `<subset>/labels/`), without `.txt`."""
    if not path.lower().endswith(_LABELS_EXT):
        return None
    parts = path.split("/")
    if _LABELS_DIR not in parts[:-1]:
        return None
    at = parts.index(_LABELS_DIR)
    rest = parts[at + 1 :]
    if at == 0 and len(rest) > 1:
        rest = rest[1:]  # labels/<subset>/...
    return "/".join(rest)[: -len(_LABELS_EXT)]


# --- data.yaml -----------------------------------------------------------------------------


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses aliases and deep nesting."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(problem="YAML aliases are not read")
        depth = self._depth
        if depth >= _MAX_CONFIG_DEPTH:
            raise yaml.composer.ComposerError(problem=f"nested deeper than {_MAX_CONFIG_DEPTH}")
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def _config(files: ImportFiles, format_name: str) -> tuple[dict[Any, Any], str, str]:
    """data.yaml's mapping, the folder it is in and its member name."""
    member = _config_member(files, format_name)
    if files.size(member) > MAX_CONFIG_BYTES:
        raise ImportFailed(f"{member} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        config = yaml.load(files.text(member), Loader=_ConfigLoader)
    except yaml.YAMLError as exc:
        raise ImportFailed(f"{member} is not YAML Tessera reads: {exc}") from None
    if not isinstance(config, dict):
        raise ImportFailed(f"{member} is not a YAML mapping")
    return config, posixpath.dirname(member), member


def _config_member(files: ImportFiles, format_name: str) -> str:
    """The fork's choice: the `.yaml` at the root or one folder down, `data.yaml` when
    there are several."""
    found = [
        name
        for name in files.names()
        if name.lower().endswith(".yaml") and name.count("/") <= 1 and not is_metadata(name)
    ]
    if len(found) > 1:
        found = [name for name in found if posixpath.basename(name) == CONFIG_MEMBER]
        if len(found) > 1:
            root = [name for name in found if name == CONFIG_MEMBER]
            found = root or found
    if not found:
        raise not_found(format_name, CONFIG_MEMBER)
    if len(found) > 1:
        raise ImportFailed(
            f"the upload holds more than one {CONFIG_MEMBER} ({', '.join(found[:3])}): "
            f"upload one {format_name} dataset at a time"
        )
    return found[0]


def _classes(
    config: dict[Any, Any], member: str, format_name: str
) -> tuple[dict[int, str], list[str]]:
    """Class numbers to label names, and the names in CVAT's order."""
    names = config.get("names")
    if isinstance(names, list):
        pairs = list(enumerate(names))
    elif isinstance(names, dict):
        if not all(isinstance(key, int) and not isinstance(key, bool) for key in names):
            raise ImportFailed(f"{member}: the keys of 'names' must be class numbers")
        pairs = sorted(names.items())
    else:
        raise ImportFailed(f"{not_an_upload(format_name)}: {member} has no 'names' list or mapping")
    classes: dict[int, str] = {}
    for number, name in pairs:
        if isinstance(name, bool) or not isinstance(name, str | int | float):
            raise ImportFailed(f"{member}: the name of class {number} is not text")
        classes[number] = str(name)
    return classes, list(classes.values())


def _kpt_shape(config: dict[Any, Any], member: str) -> tuple[int, int]:
    shape = config.get("kpt_shape")
    if shape is None:
        raise ImportFailed(f"{not_an_upload(POSE)}: {member} has no 'kpt_shape'")
    valid = (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        and shape[0] >= 0
        and shape[1] in (2, 3)
    )
    if not valid:
        raise ImportFailed(
            f"{member}: 'kpt_shape' must be [<points>, 2 or 3], not {str(shape)[:40]}"
        )
    return shape[0], shape[1]


# --- oriented boxes ------------------------------------------------------------------------


def _rotated_box(xy: Sequence[float]) -> tuple[list[float], float]:
    """The rectangle of four corners: [x1, y1, x2, y2] unrotated about its centre, and its
    rotation in degrees in [0, 180) (clockwise on screen, as CVAT turns boxes).

    Among the directions between the corners (first to second corner first, then second
    to third, ... then the diagonals), the one whose enclosing rectangle is the smallest,
    the earliest on a tie (within 0.1% of the area): four corners that make a rectangle
    give it back, its width along first to second corner; other points give the smallest
    rectangle holding them (whose sides include a side of their convex hull, one of these
    directions).
    """
    points = list(zip(xy[0::2], xy[1::2], strict=True))
    order = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3)]
    best: tuple[float, float, float, float, float, float, float] | None = None
    for a, b in order:
        dx, dy = points[b][0] - points[a][0], points[b][1] - points[a][1]
        length = math.hypot(dx, dy)
        if length == 0:
            continue
        ux, uy = dx / length, dy / length
        along = [x * ux + y * uy for x, y in points]
        across = [y * ux - x * uy for x, y in points]
        width, height = max(along) - min(along), max(across) - min(across)
        area = width * height
        if best is None or area < best[0] * (1 - _AREA_TOLERANCE):
            mid_along = (max(along) + min(along)) / 2
            mid_across = (max(across) + min(across)) / 2
            cx = mid_along * ux - mid_across * uy
            cy = mid_along * uy + mid_across * ux
            best = (area, width, height, cx, cy, ux, uy)
    if best is None:  # four times the same point
        x, y = points[0]
        return [x, y, x, y], 0.0
    _, width, height, cx, cy, ux, uy = best
    rotation = math.degrees(math.atan2(uy, ux)) % 180.0
    if rotation < _ROTATION_EPSILON or rotation > 180.0 - _ROTATION_EPSILON:
        rotation = 0.0
    box = [cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2]
    return box, rotation


# --- Classification ------------------------------------------------------------------------


def read_ultralytics_classification(files: ImportFiles) -> ParsedAnnotations:
    """Read an Ultralytics YOLO Classification upload: tags, from each subset's
    `labels.json` or its label folders.

    Raises ImportFailed when the upload has neither, or a `labels.json` that is malformed.
    """
    subsets: dict[str, list[str]] = {}
    for name in files.names():
        if "/" in name and not is_metadata(name):
            subset, rest = name.split("/", 1)
            subsets.setdefault(subset, []).append(rest)
    out = ParsedAnnotations()
    found = False
    labels: set[str] = set()
    for subset, members in subsets.items():
        listed = _listed_tags(files, f"{subset}/{_CLASSIFICATION_LABELS}")
        if listed:
            found = True
            out.items += [ParsedItem(ref, subset) for ref in dict.fromkeys(r for r, _ in listed)]
            for ref, label in listed:
                labels.add(label)
                if label != _NO_LABEL:
                    out.tags.append(ParsedTag(label=label, frame=ref, subset=subset))
            continue
        for rest in members:
            label, _, image = rest.partition("/")
            if not image or not is_image(image):
                continue
            found = True
            out.items.append(ParsedItem(image, subset, f"{subset}/{rest}"))
            if label != _NO_LABEL:
                labels.add(label)
                out.tags.append(ParsedTag(label=label, frame=image, subset=subset))
    if not found:
        raise not_found(
            CLASSIFICATION, f"<subset>/{_CLASSIFICATION_LABELS} or <subset>/<label>/<image>"
        )
    labels.discard(_NO_LABEL)
    out.labels = sorted(labels)
    return out


def _listed_tags(files: ImportFiles, member: str) -> list[tuple[str, str]]:
    """(frame ref, label name) of each label a subset's labels.json names, in order ([]
    without one, or with an empty one, as the fork then reads the folders)."""
    if member not in files:
        return []
    items = files.load_json(member)
    if not isinstance(items, dict):
        raise ImportFailed(f"{member}: not a JSON object of items")
    out = []
    for ref, info in items.items():
        names = info.get("labels") if isinstance(info, dict) else None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ImportFailed(f"{member}: item {ref!r} has no 'labels' list of names")
        out += [(ref, name) for name in names]
    return out


__all__ = [
    "read_ultralytics_classification",
    "read_ultralytics_detection",
    "read_ultralytics_obb",
    "read_ultralytics_pose",
    "read_ultralytics_segmentation",
]
