"""KITTI 1.0 (2D: detection and segmentation), as CVAT 2.80 writes it, one frame at a time.

CVAT exports it (cvat/apps/dataset_manager/formats/kitti.py) by running the frames, as
cvat/apps/dataset_manager/bindings.py converts them, through `RotatedBoxesToPolygons`,
`polygons_to_masks` and `merge_instance_segments` (upright boxes stay boxes), then
`dataset.export(dir, "kitti", apply_colormap=True, label_map={name: colour of
make_colormap(task)})`: its datumaro fork's datumaro/plugins/kitti_format/converter.py
(`KittiConverter`, both tasks) and format.py (`KittiPath`,
`find_or_create_background_label`, `write_label_map`) write it. The rules, and so this
writer:

- Classes: CVAT's `make_colormap` (every label of the task, skeleton points included,
  with their colours, and a `background` coloured 0,0,0 unless a label is named so)
  sorted by name, then the background (the first class coloured 0,0,0 in that order, else
  the one named `background`) moved first: class ids are positions in that order, the
  background 0. `label_colors.txt` (written last) has a line `r g b name` per class.
- Segmentation: polygons, rotated boxes, masks and ellipses become masks; shapes sharing a
  non-zero group one mask (the union, with the largest member's label and z_order);
  masks are painted in z_order, later over earlier, a mask of the background class
  erasing (paint.py has every rule). Each frame with a mask gets, under `<subset>/` (the
  frame's subset, else the task's, else `default`), `semantic_rgb/<id>.png` (each class
  in its colour), `semantic/<id>.png` (16-bit grayscale class ids, 0 unpainted) and
  `instance/<id>.png` (16-bit grayscale `class_id << 8` plus the mask's annotation id,
  which CVAT's annotations never set: so `class_id * 256` for every mask of a class, as
  CVAT writes it). `<id>` is the frame's file name without its extension.
- Detection: each frame with an upright box gets `<subset>/label_2/<id>.txt`, a line per
  box in CVAT's order (by z_order, plain shapes before track shapes) with KITTI's 16
  fields as datumaro writes them: the label's name, truncated (`float()` of the
  `truncated` attribute, 0.0 when absent or not a number), occluded (the shape's flag, 0
  or 1), alpha -1, the box (left, top, right, bottom: the corners rounded to 2 decimals,
  right and bottom as `x + w` in float arithmetic, as Python writes floats), dimensions,
  location and rotation_y -1 (7 fields), and the score (`float()` of a `score` attribute,
  else 1.0).
- Frames are all the task's frames, or only annotated ones with `annotated_only`; a frame
  with neither a mask nor a box gets no file. Polylines, points, skeletons, cuboids and
  tags are not written.

Where this writer differs from CVAT: `semantic_rgb` PNGs are 8-bit palette images whose
pixels decode to the RGB values CVAT writes (paint.py); ellipse pixels are those whose
centres lie inside; shapes CVAT would fail the export on are skipped (paint.py). As in
CVAT (Pillow writing int32 images), values past 65535 are clipped in the 16-bit PNGs.
KITTI's 3D cuboids of point cloud tasks are another format ("Kitti Raw Format"): 3D tasks
raise a ValueError.

Images (`save_images`) go to `<subset>/image_2/<id><ext>` (`.png` without an extension;
`image_path`). Nothing is held beyond one frame.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from tessera.export.formats.cityscapes import label_colors_txt
from tessera.export.formats.coco import round2
from tessera.export.formats.common import cvat_frames
from tessera.export.formats.paint import (
    PAINTED,
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
SEMANTIC_RGB_MEMBER: Final = "{subset}/semantic_rgb/{id}.png"
SEMANTIC_MEMBER: Final = "{subset}/semantic/{id}.png"
INSTANCE_MEMBER: Final = "{subset}/instance/{id}.png"
LABELS_MEMBER: Final = "{subset}/label_2/{id}.txt"
DEFAULT_SUBSET: Final = "default"
DEFAULT_IMAGE_EXT: Final = ".png"

_YIELD_EVERY = 4


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image: `<subset>/image_2/<id><ext>`."""
    stem, ext = split_name(frame)
    return f"{subset}/image_2/{stem}{ext or DEFAULT_IMAGE_EXT}"


async def write_kitti(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write KITTI 1.0: per subset `semantic_rgb/`, `semantic/`, `instance/` PNGs and
    `label_2/` boxes, then `label_colors.txt`."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError(
            "this writer makes KITTI 1.0 of 2D tasks; KITTI-style 3D cuboids of point cloud "
            "tasks are another format"
        )
    label_map = colormap_label_map(task.labels, background_first=True)
    labels = labels_by_id(task.labels)
    classes = ClassOf(label_map, labels)
    async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
        frame = item.frame
        subset = frame.subset or task.subset or DEFAULT_SUBSET
        stem, _ = split_name(frame)
        if any(shape.type in PAINTED for shape in shapes):
            pngs = await asyncio.to_thread(_render, shapes, frame, classes)
            if pngs is not None:
                members = (SEMANTIC_RGB_MEMBER, SEMANTIC_MEMBER, INSTANCE_MEMBER)
                for member, data in zip(members, pngs, strict=True):
                    write_member(archive, member.format(subset=subset, id=stem), data)
        lines = [_box_line(shape, labels) for shape in shapes if _is_upright_box(shape)]
        if lines:
            text = "".join(f"{line}\n" for line in lines)
            write_member(archive, LABELS_MEMBER.format(subset=subset, id=stem), text.encode())
    write_member(archive, LABEL_COLORS_MEMBER, label_colors_txt(label_map))


def _render(
    shapes: Sequence[Shape], frame: FrameInfo, classes: ClassOf
) -> tuple[bytes, bytes, bytes] | None:
    segments = frame_segments(shapes, frame.height, frame.width, polygons=True, boxes=False)
    if not segments:
        return None
    index, order = paint(
        segments, frame.height, frame.width, erase=lambda segment: classes(segment) == 0
    )
    class_map = lookup(index, [0, *(classes(segment) for segment in order)])
    instance_map = lookup(index, [0, *(classes(segment) << 8 for segment in order)])
    return (
        palette_png(class_map, classes.label_map.palette()),
        gray_png(class_map, 16),
        gray_png(instance_map, 16),
    )


def _is_upright_box(shape: Shape) -> bool:
    return shape.type == "rectangle" and not shape.rotation and len(shape.points) >= 4


def _box_line(shape: Shape, labels: Mapping[int, Label]) -> str:
    label = labels.get(shape.label_id)
    attributes = spec_values(label, shape.attributes)
    x0, y0, x1, y1 = (float(v) for v in shape.points[:4])
    left, top = round2(x0), round2(y0)
    right, bottom = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
    fields: list[Any] = [-1] * 16
    fields[0] = label.name if label else ""
    fields[1] = _cast(attributes.get("truncated"), float, 0.0)
    fields[2] = int(shape.occluded)
    fields[4:8] = [left, top, left + (right - left), top + (bottom - top)]
    fields[15] = _cast(attributes.get("score"), float, 1.0)
    return " ".join(str(value) for value in fields)


def _cast(value: Any, convert: Callable[[Any], Any], default: Any) -> Any:
    """datumaro's `cast`: `convert(value)`, the default for None or when that fails."""
    if value is None:
        return default
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):
        return default
