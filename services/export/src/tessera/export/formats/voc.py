"""PASCAL VOC 1.1, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it (cvat/apps/dataset_manager/formats/pascal_voc.py) by handing its datumaro
fork the frames as cvat/apps/dataset_manager/bindings.py converts them, with no transform,
to `dataset.export(dir, "voc", label_map="source")`: the fork's
datumaro/plugins/voc_format/converter.py (`VocConverter`, every VOC task) and format.py
(`VocLabelMap`, `make_voc_categories`) write it. The rules, and so this writer:

- Label map (`labelmap.txt`, written last): `# label:color_rgb:parts:actions`, then one
  `name:r,g,b::` line per class: every label of the task, skeleton points included, by
  label id (a repeated name once), after a `background` class inserted first unless a
  label is named so (that label is then the background, where it stands). Colours are
  PASCAL VOC's colormap by class index (black for class 0); parts and actions are empty.
- `Annotations/<id>.xml` for every frame (only annotated ones with `annotated_only`),
  `<id>` the frame's file name without its extension: lxml's pretty print (2 spaces, no
  declaration) of `annotation` with `folder` (the id up to its first "_", "" without one:
  datumaro's rule), `filename` (the id plus the frame's extension, `.jpg` without one),
  `source` (database, annotation, image: `Unknown`), `size` (width, height, empty
  depth), `segmented` (1 when the frame has a mask or an ellipse), then an `object` per
  rectangle in CVAT's shape order (by z_order, plain shapes before track shapes; a rotated
  box is written upright, its angle in the `rotation` attribute): `name`, `pose` (only
  when the label has a `pose` attribute, its value), `truncated`, `occluded`,
  `difficult` (`int()` of the attribute of that name, 0 when absent or not a number;
  `occluded` is the shape's flag), `bndbox` (xmin, ymin, xmax, ymax: the corners rounded
  to 2 decimals, the max as `x + w` in float arithmetic, as Python writes floats), and
  `attributes` (only when non-empty) with an `attribute` {`name`, `value`} for every
  attribute but difficult, pose, truncated and occluded: the label's spec attributes
  (defaults for missing values; numbers as floats, checkboxes as True/False), `rotation`
  (a float), and for frames of tracks `track_id` and `keyframe`.
- Segmentation: only mask shapes and ellipses are masks (no transform turns boxes or
  polygons into masks for this format); each paints on its own (no group merging). Frames
  with one get `SegmentationClass/<id>.png` (class colours of `labelmap.txt`; unpainted
  pixels the background class) and `SegmentationObject/<id>.png` (instance k in VOC's
  colour k; masks of the background class erase), painted as `paint.py` describes.
- Lists per subset (the frame's, else the task's, else `default`), item ids one a line,
  in frame order, written after every frame: `ImageSets/Main/<subset>.txt` (every frame);
  when a frame of the subset has tags, `ImageSets/Main/<class>_<subset>.txt` for every
  class of the label map, a line `<id>  1` or `<id> -1` (`"%s % d"`) for each frame with
  tags, whether one of its tags has that label; `ImageSets/Segmentation/<subset>.txt`
  (frames with masks, and frames with nothing on them); `ImageSets/Action/<subset>.txt`
  and `ImageSets/Layout/<subset>.txt` (frames with nothing on them; a Layout id with
  whitespace in double quotes). A frame has "nothing on it" when it has no tag and no
  shape CVAT converts (a 2D cuboid is not converted). A list with no line is not written,
  so with no frame at all only `labelmap.txt` is.

Where this writer differs from CVAT: it writes each PNG as an 8-bit palette image whose
colours are the RGB values CVAT writes (see paint.py); `track_id` is the track id the
dataset carries (CVAT numbers its tracks 0, 1, ... in its track list); ellipse pixels are
those whose centres lie inside (paint.py); a number attribute that is not a number is
written as text (CVAT fails the export); a box without 4 numbers is skipped.

Images (`save_images`) go to `JPEGImages/<id><ext>` (`image_path`).
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape

from tessera.export.formats.coco import round2
from tessera.export.formats.common import cvat_frames
from tessera.export.formats.paint import (
    PAINTED,
    LabelMap,
    Segment,
    Spools,
    frame_segments,
    lookup,
    paint,
    palette_png,
    source_label_map,
    spec_values,
    split_name,
    voc_colormap,
    write_member,
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

LABELMAP_MEMBER: Final = "labelmap.txt"
ANNOTATION_MEMBER: Final = "Annotations/{id}.xml"
CLASS_MEMBER: Final = "SegmentationClass/{id}.png"
OBJECT_MEMBER: Final = "SegmentationObject/{id}.png"
MAIN_LIST: Final = "ImageSets/Main/{subset}.txt"
CLASS_LIST: Final = "ImageSets/Main/{label}_{subset}.txt"
ACTION_LIST: Final = "ImageSets/Action/{subset}.txt"
LAYOUT_LIST: Final = "ImageSets/Layout/{subset}.txt"
SEGMENTATION_LIST: Final = "ImageSets/Segmentation/{subset}.txt"
DEFAULT_SUBSET: Final = "default"
DEFAULT_IMAGE_EXT: Final = ".jpg"

_BUILTIN_ATTRIBUTES = frozenset({"difficult", "pose", "truncated", "occluded"})
_INSTANCE_PALETTE: Final = voc_colormap(256)
_MASKS: Final = frozenset({"mask", "ellipse"})
_YIELD_EVERY = 4


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image: `JPEGImages/<id><ext>`, whatever the subset."""
    stem, ext = split_name(frame)
    return f"JPEGImages/{stem}{ext or DEFAULT_IMAGE_EXT}"


async def write_voc(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write PASCAL VOC 1.1: annotations, masks and lists as CVAT writes them."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("PASCAL VOC is a 2D format; point cloud tasks have no VOC exporter")
    label_map = source_label_map(task.labels)
    labels = labels_by_id(task.labels)
    classes = ClassOf(label_map, labels)
    subsets: dict[str, None] = {}
    with Spools() as lists:
        async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
            frame = item.frame
            subset = frame.subset or task.subset or DEFAULT_SUBSET
            subsets.setdefault(subset)
            stem, _ = split_name(frame)
            pngs = await render(shapes, frame, classes, polygons=False, boxes=False)
            xml = annotation_xml(item, shapes, labels, segmented=pngs is not None)
            write_member(archive, ANNOTATION_MEMBER.format(id=stem), xml.encode())
            if pngs is not None:
                write_member(archive, CLASS_MEMBER.format(id=stem), pngs[0])
                write_member(archive, OBJECT_MEMBER.format(id=stem), pngs[1])
            lists.add(("main", subset), stem)
            tagged = sorted(
                {labels[tag.label_id].name for tag in item.tags if tag.label_id in labels}
            )
            if tagged:
                lists.add(("tags", subset), json.dumps([stem, tagged]))
            if not has_annotations(item, shapes):
                lists.add(("empty", subset), stem)
                lists.add(("segmentation", subset), stem)
            elif pngs is not None:
                lists.add(("segmentation", subset), stem)
        for subset in subsets:
            _write_lists(archive, lists, subset, label_map)
            await asyncio.sleep(0)
    write_member(archive, LABELMAP_MEMBER, labelmap_txt(label_map))


def _write_lists(archive: zipfile.ZipFile, lists: Spools, subset: str, label_map: LabelMap) -> None:
    _copy(archive, lists, ("main", subset), MAIN_LIST.format(subset=subset))
    if ("tags", subset) in lists:
        for name in label_map.names:
            with archive.open(
                CLASS_LIST.format(label=name, subset=subset), "w", force_zip64=True
            ) as member:
                for line in lists.lines(("tags", subset)):
                    stem, present = json.loads(line)
                    member.write(f"{stem} {1 if name in present else -1: d}\n".encode())
    if ("empty", subset) in lists:
        _copy(archive, lists, ("empty", subset), ACTION_LIST.format(subset=subset))
        with archive.open(LAYOUT_LIST.format(subset=subset), "w", force_zip64=True) as member:
            for stem in lists.lines(("empty", subset)):
                quoted = f'"{stem}"' if len(stem.split()) > 1 else stem
                member.write(f"{quoted}\n".encode())
    if ("segmentation", subset) in lists:
        _copy(archive, lists, ("segmentation", subset), SEGMENTATION_LIST.format(subset=subset))


def _copy(archive: zipfile.ZipFile, lists: Spools, key: Any, path: str) -> None:
    with archive.open(path, "w", force_zip64=True) as member:
        lists.copy_to(key, member)


def has_annotations(item: FrameAnnotations, shapes: Sequence[Shape]) -> bool:
    """Whether CVAT's bindings give the frame any annotation (they skip 2D cuboids)."""
    return bool(item.tags) or any(shape.type != "cuboid" for shape in shapes)


def labelmap_txt(label_map: LabelMap) -> bytes:
    """`labelmap.txt`: the header, then `name:r,g,b::` per class."""
    lines = ["# label:color_rgb:parts:actions"]
    lines += [
        f"{name}:{','.join(str(c) for c in color)}::"
        for name, color in zip(label_map.names, label_map.colors, strict=True)
    ]
    return "".join(f"{line}\n" for line in lines).encode()


class ClassOf:
    """A segment's class in a label map: its label's name's index (the background for a
    label the map lacks), as datumaro maps labels by name."""

    def __init__(self, label_map: LabelMap, labels: Mapping[int, Label]) -> None:
        self.label_map = label_map
        index = label_map.index_of()
        self._by_id = {
            label_id: index.get(label.name, label_map.background)
            for label_id, label in labels.items()
        }

    def __call__(self, segment: Segment) -> int:
        return self._by_id.get(segment.label_id, self.label_map.background)


async def render(
    shapes: Sequence[Shape], frame: FrameInfo, classes: ClassOf, *, polygons: bool, boxes: bool
) -> tuple[bytes, bytes] | None:
    """The frame's class and object PNGs, painted in a worker thread; None without masks.

    `polygons`, `boxes`: as `frame_segments` takes them; groups merge when either is set
    (the formats that transform shapes into masks also merge them).
    """
    kinds = PAINTED if polygons or boxes else _MASKS
    if not any(shape.type in kinds for shape in shapes):
        return None
    return await asyncio.to_thread(_render, shapes, frame, classes, polygons, boxes)


def _render(
    shapes: Sequence[Shape], frame: FrameInfo, classes: ClassOf, polygons: bool, boxes: bool
) -> tuple[bytes, bytes] | None:
    segments = frame_segments(
        shapes,
        frame.height,
        frame.width,
        polygons=polygons,
        boxes=boxes,
        merge_groups=polygons or boxes,
    )
    return segmentation_pngs(segments, frame, classes) if segments else None


def segmentation_pngs(
    segments: Sequence[Segment], frame: FrameInfo, classes: ClassOf
) -> tuple[bytes, bytes]:
    """VOC's class and object PNGs of a frame's segments (CVAT's `CompiledMask`: the
    background class erases, instance k is the k-th segment in z_order)."""
    background = classes.label_map.background
    index, order = paint(
        segments, frame.height, frame.width, erase=lambda segment: classes(segment) == background
    )
    class_map = lookup(index, [background, *(classes(segment) for segment in order)])
    return (
        palette_png(class_map, classes.label_map.palette()),
        palette_png(index, _INSTANCE_PALETTE),
    )


# --- Annotations/<id>.xml ------------------------------------------------------------------


def annotation_xml(
    item: FrameAnnotations, shapes: Sequence[Shape], labels: Mapping[int, Label], *, segmented: bool
) -> str:
    """The frame's `Annotations/<id>.xml`, as the fork's lxml pretty print writes it."""
    frame = item.frame
    stem, ext = split_name(frame)
    folder = stem[: stem.find("_")] if "_" in stem else ""
    out = [
        "<annotation>",
        f"  <folder>{escape(folder)}</folder>",
        f"  <filename>{escape(stem + (ext or DEFAULT_IMAGE_EXT))}</filename>",
        "  <source>",
        "    <database>Unknown</database>",
        "    <annotation>Unknown</annotation>",
        "    <image>Unknown</image>",
        "  </source>",
        "  <size>",
        f"    <width>{frame.width}</width>",
        f"    <height>{frame.height}</height>",
        "    <depth></depth>",
        "  </size>",
        f"  <segmented>{int(segmented)}</segmented>",
    ]
    for shape in shapes:
        if shape.type == "rectangle" and len(shape.points) >= 4:
            out += _object(shape, labels.get(shape.label_id))
    out.append("</annotation>")
    return "".join(f"{line}\n" for line in out)


def _object(shape: Shape, label: Label | None) -> list[str]:
    attributes = spec_values(label, shape.attributes)
    attributes["occluded"] = shape.occluded
    attributes["rotation"] = float(shape.rotation)
    if shape.track_id is not None:
        attributes["track_id"] = shape.track_id
        attributes["keyframe"] = shape.keyframe
    x0, y0, x1, y1 = (float(v) for v in shape.points[:4])
    left, top = round2(x0), round2(y0)
    right, bottom = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
    out = ["  <object>", f"    <name>{escape(label.name if label else '')}</name>"]
    if "pose" in attributes:
        out.append(f"    <pose>{escape(str(attributes['pose']))}</pose>")
    for name in ("truncated", "occluded", "difficult"):
        out.append(f"    <{name}>{_as_int(attributes.get(name, 0))}</{name}>")
    out += [
        "    <bndbox>",
        f"      <xmin>{left}</xmin>",
        f"      <ymin>{top}</ymin>",
        f"      <xmax>{left + (right - left)}</xmax>",
        f"      <ymax>{top + (bottom - top)}</ymax>",
        "    </bndbox>",
    ]
    extra = [(k, v) for k, v in attributes.items() if k not in _BUILTIN_ATTRIBUTES]
    if extra:
        out.append("    <attributes>")
        for name, value in extra:
            out += [
                "      <attribute>",
                f"        <name>{escape(str(name))}</name>",
                f"        <value>{escape(str(value))}</value>",
                "      </attribute>",
            ]
        out.append("    </attributes>")
    out.append("  </object>")
    return out


def _as_int(value: Any) -> int:
    """datumaro's `_convert_attr(name, attrs, int, 0)`: `int(value)`, 0 when that fails."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
