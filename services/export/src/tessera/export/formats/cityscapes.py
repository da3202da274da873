"""Cityscapes 1.0, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it (cvat/apps/dataset_manager/formats/cityscapes.py) by running the frames, as
cvat/apps/dataset_manager/bindings.py converts them, through `RotatedBoxesToPolygons`,
`polygons_to_masks`, `boxes_to_masks` and `merge_instance_segments`, then
`dataset.export(dir, "cityscapes", apply_colormap=True, label_map={name: colour of
make_colormap(task)})`: its datumaro fork's datumaro/plugins/cityscapes_format.py
(`CityscapesConverter`, `find_or_create_background_label`, `write_label_map`) writes it.
The rules, and so this writer:

- Classes: CVAT's `make_colormap` (every label of the task, skeleton points included,
  with their colours, and a `background` coloured 0,0,0 unless a label is named so)
  sorted by name, then the background (the first class coloured 0,0,0 in that order, else
  the one named `background`) moved first: class ids are positions in that order, the
  background 0. `label_colors.txt` (written last) has a line `r g b name` per class.
- Masks: boxes (upright or rotated), polygons, masks and ellipses become masks; shapes
  sharing a non-zero group become one mask (the union, with the largest member's label,
  attributes and z_order); masks are painted in z_order, later over earlier; a mask of
  the background class erases (paint.py has every rule). Polylines, points, skeletons,
  cuboids and tags are not written.
- Each frame with a mask (the frames of the task, or only annotated ones with
  `annotated_only`) gets three PNGs in `gtFine/<subset>/` (the frame's subset, else the
  task's, else `default`), named `<id>_gtFine_<kind>.png`, `<id>` the frame's file name
  without its extension: `labelIds` (8-bit grayscale class ids; unpainted pixels 0),
  `color` (each class in its colour) and `instanceIds` (16-bit grayscale: the class id
  times 1000 plus n for an instance, n the mask's place (from 1) among the frame's masks
  in CVAT's list order, which is not the painting order; just the class id when the
  mask's label has a true `is_crowd` attribute; 0 unpainted). Frames without a mask get
  no file.

Where this writer differs from CVAT: `_color.png` is an 8-bit palette image whose pixels
decode to the RGB values CVAT writes (paint.py); ellipse pixels are those whose centres lie
inside; shapes CVAT would fail the export on are skipped (paint.py). As in CVAT, class ids
past 255 wrap in `labelIds` and instance ids past 65535 are clipped in `instanceIds`.

Images (`save_images`) go to `imgsFine/leftImg8bit/<subset>/<id>_leftImg8bit<ext>` (`.png`
without an extension; `image_path`). Nothing is held beyond one frame.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Mapping, Sequence
from typing import Final

from tessera.export.formats.common import cvat_frames
from tessera.export.formats.paint import (
    PAINTED,
    LabelMap,
    Segment,
    colormap_label_map,
    frame_segments,
    gray_png,
    lookup,
    paint,
    palette_png,
    spec_values,
    split_name,
    write_member,
)
from tessera.export.formats.voc import ClassOf
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameInfo,
    Label,
    Shape,
    labels_by_id,
)

LABEL_COLORS_MEMBER: Final = "label_colors.txt"
LABEL_IDS_MEMBER: Final = "gtFine/{subset}/{id}_gtFine_labelIds.png"
COLOR_MEMBER: Final = "gtFine/{subset}/{id}_gtFine_color.png"
INSTANCE_IDS_MEMBER: Final = "gtFine/{subset}/{id}_gtFine_instanceIds.png"
DEFAULT_SUBSET: Final = "default"
DEFAULT_IMAGE_EXT: Final = ".png"
INSTANCES_PER_CLASS: Final = 1000

_YIELD_EVERY = 4


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image: `imgsFine/leftImg8bit/<subset>/<id>_leftImg8bit<ext>`."""
    stem, ext = split_name(frame)
    return f"imgsFine/leftImg8bit/{subset}/{stem}_leftImg8bit{ext or DEFAULT_IMAGE_EXT}"


async def write_cityscapes(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Cityscapes 1.0: `gtFine/<subset>/<id>_gtFine_*.png` and `label_colors.txt`."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("Cityscapes is a 2D format; point cloud tasks have no Cityscapes masks")
    label_map = colormap_label_map(task.labels, background_first=True)
    labels = labels_by_id(task.labels)
    classes = ClassOf(label_map, labels)
    async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
        if not any(shape.type in PAINTED for shape in shapes):
            continue
        frame = item.frame
        pngs = await asyncio.to_thread(_render, shapes, frame, classes, labels)
        if pngs is None:
            continue
        subset = frame.subset or task.subset or DEFAULT_SUBSET
        stem, _ = split_name(frame)
        members = (LABEL_IDS_MEMBER, COLOR_MEMBER, INSTANCE_IDS_MEMBER)
        for member, data in zip(members, pngs, strict=True):
            write_member(archive, member.format(subset=subset, id=stem), data)
    write_member(archive, LABEL_COLORS_MEMBER, label_colors_txt(label_map))


def label_colors_txt(label_map: LabelMap) -> bytes:
    """`label_colors.txt`: `r g b name` per class, in class order."""
    return "".join(
        f"{' '.join(str(c) for c in color)} {name}\n"
        for name, color in zip(label_map.names, label_map.colors, strict=True)
    ).encode()


def _render(
    shapes: Sequence[Shape], frame: FrameInfo, classes: ClassOf, labels: Mapping[int, Label]
) -> tuple[bytes, bytes, bytes] | None:
    segments = frame_segments(shapes, frame.height, frame.width)
    if not segments:
        return None
    instance_ids = [_instance_id(segment, classes(segment), labels) for segment in segments]
    index, order = paint(
        segments, frame.height, frame.width, erase=lambda segment: classes(segment) == 0
    )
    class_map = lookup(index, [0, *(classes(segment) for segment in order)])
    instance_map = lookup(index, [0, *(instance_ids[segment.position] for segment in order)])
    return (
        gray_png(class_map, 8),
        palette_png(class_map, classes.label_map.palette()),
        gray_png(instance_map, 16),
    )


def _instance_id(segment: Segment, class_id: int, labels: Mapping[int, Label]) -> int:
    attributes = spec_values(labels.get(segment.label_id), segment.shape.attributes)
    if attributes.get("is_crowd", False):
        return class_id
    return class_id * INSTANCES_PER_CLASS + segment.position + 1
