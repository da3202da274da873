"""KITTI 1.0 (CVAT's importer "KITTI 1.0": 2D detection and segmentation).

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/kitti.py) by writing a
`label_colors.txt` of the task's labels when the archive has none, reading it with its
datumaro fork's `kitti` importer (datumaro/plugins/kitti_format/importer.py,
extractor.py, format.py), dropping annotations of a `background` label the task lacks,
and handing the items to cvat/apps/dataset_manager/bindings.py
(`import_dm_annotations`). The layout and what is read, as there:

- Subsets are the folders holding `label_2/` or `instance/` (anywhere in the archive; the
  subset's name is its folder's), items the files below those (`<id>` may hold folders).
- `<subset>/label_2/<id>.txt`: a rectangle per line of KITTI's 15 fields (16 with a
  score), blank lines skipped: `type` (the label), `truncated` (a number: the attribute
  `truncated` is "true" unless it is 0), `occluded` (an integer: the shape is occluded
  unless it is 0), `alpha`, the box `left top right bottom` (stored as datumaro stores a
  box, [x, y, x + w, y + h] rounded to 2 decimals), dimensions, location, rotation_y
  (ignored), and the score (the shape's `score`, and its attribute `score` as CVAT
  keeps it).
- `<subset>/instance/<id>.png`: a grayscale PNG (16-bit as CVAT writes it) whose pixel
  value v is `class_id << 8` plus an instance number: each distinct value is one mask of
  class `v >> 8`, with the attribute `is_crowd` ("true" when the instance number is 0,
  as in every mask CVAT writes). `semantic/` and `semantic_rgb/` are not read (datumaro
  reads neither).
- `label_colors.txt` in the folder above the subsets (CVAT writes it): a line
  `r g b name` per class, the class id being the line's place (from 0). Its names, but
  the background's (the first coloured 0 0 0, else the one named `background`), go to
  `ParsedAnnotations.labels`. Without it, KITTI's segmentation ids (Cityscapes' label
  ids, datumaro's `KittiLabelMap`) name the classes.
- Frame refs: the id plus the extension of its image `<subset>/image_2/<id>.<ext>` when
  the archive has one, else the id alone.

Where the reader differs from CVAT:
- both kinds are read: datumaro reads only the boxes of a dataset that has both boxes
  and masks (a "conflicting source types" limitation it logs), so CVAT imports no mask
  back from its own KITTI exports of boxes and masks.
- masks of the background class (class 0 with CVAT's `label_colors.txt`, "unlabeled"
  with KITTI's ids) are no objects (CVAT drops them when the task has no `background`
  label); without `label_colors.txt` CVAT names the classes after the task's labels,
  the reader after KITTI's ids; a class name with spaces is the rest of its line.
- malformed input fails with `ImportFailed` naming the file and line: a line of other
  than 15 or 16 fields, coordinates that are not finite numbers (or beyond
  `tessera.geometry.MAX_COORD`), a `truncated` or score that is not a number, an
  `occluded` that is not an integer, a PNG that is not grayscale, a class past the
  classes, a PNG declaring more than `MAX_PNG_PIXELS` pixels (refused from its header),
  a label colour that is not three numbers 0-255.

Memory: one text file or PNG at a time; each PNG is decoded, split into masks (CVAT's run
lengths) and dropped.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.cityscapes import (
    CITYSCAPES_CLASSES,
    ClassMap,
    class_name,
    parse_label_colors,
)
from tessera.export.imports.formats.voc import (
    bool_text,
    box_points,
    coordinate,
    gray_pixels,
    image_exts,
    is_macos_metadata,
    read_png,
    value_masks,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedShape

FORMAT: Final = "KITTI 1.0"

_MEMBER = re.compile(r"^(?:(?P<parent>.*?)/)?(?P<task>label_2|instance)/(?P<path>.+)$")
_DEFAULT_CLASSES: Final = ClassMap(names=CITYSCAPES_CLASSES, background=0, declared=())


def read_kitti(files: ImportFiles) -> ParsedAnnotations:
    """Read a KITTI 1.0 upload (see the module's docstring)."""
    found = [
        (match, name)
        for name in files.names()
        if (match := _MEMBER.match(name))
        and not is_macos_metadata(name)
        and name.endswith(".txt" if match.group("task") == "label_2" else ".png")
    ]
    if not found:
        raise ImportFailed(
            f"this is not a {FORMAT} upload: no <subset>/label_2/*.txt or "
            "<subset>/instance/*.png found."
        )
    result = ParsedAnnotations()
    class_maps: dict[str, ClassMap] = {}
    images: dict[str, dict[str, str]] = {}
    for match, name in found:
        parent = match.group("parent") or ""
        path = match.group("path")
        item_id = posixpath.splitext(path)[0]
        if parent not in images:
            images[parent] = image_exts(files, f"{parent}/image_2" if parent else "image_2")
        ref = item_id + images[parent].get(item_id, "")
        colors_name = posixpath.join(posixpath.dirname(parent), "label_colors.txt")
        if colors_name not in class_maps:
            classes = _DEFAULT_CLASSES
            if colors_name in files:
                classes = parse_label_colors(files.text(colors_name), colors_name)
                result.labels += [label for label in classes.declared if label not in result.labels]
            class_maps[colors_name] = classes
        if match.group("task") == "label_2":
            result.shapes += _boxes(files.text(name), name, ref)
        else:
            result.shapes += _masks(files, name, ref, class_maps[colors_name])
    return result


def _boxes(text: str, name: str, ref: str) -> list[ParsedShape]:
    shapes = []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields:
            continue
        where = f"{name}, line {number}"
        if len(fields) not in (15, 16):
            raise ImportFailed(
                f"{where}: {len(fields)} fields where KITTI's 15 (16 with a score) were expected."
            )
        left, top, right, bottom = (
            coordinate(fields[index], f"{where}: the box's {side}")
            for index, side in zip(range(4, 8), ("left", "top", "right", "bottom"), strict=True)
        )
        truncated = _number(fields[1], f"{where}: truncated")
        try:
            occluded = int(fields[2])
        except ValueError:
            raise ImportFailed(f"{where}: occluded is not an integer: {fields[2]!r}.") from None
        shape = ParsedShape(
            type="rectangle",
            label=fields[0],
            points=box_points(left, top, right, bottom),
            frame=ref,
            occluded=occluded != 0,
            attributes={"truncated": bool_text(truncated != 0)},
        )
        if len(fields) == 16:
            shape.score = _number(fields[15], f"{where}: the score")
            shape.attributes["score"] = str(shape.score)
        shapes.append(shape)
    return shapes


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ImportFailed(f"{where} is not a finite number: {text!r}.")
    return value


def _masks(files: ImportFiles, name: str, ref: str, classes: ClassMap) -> list[ParsedShape]:
    values = gray_pixels(read_png(files, name), name)
    shapes = []
    for value, points in value_masks(values):
        index = value >> 8
        if index == classes.background:
            continue
        shapes.append(
            ParsedShape(
                type="mask",
                label=class_name(classes, index, name),
                points=points,
                frame=ref,
                attributes={"is_crowd": bool_text(value % 256 == 0)},
            )
        )
    return shapes
