"""CVAT for images 1.1: `annotations.xml`, streamed one frame at a time, as CVAT writes it.

What CVAT does (cvat/apps/dataset_manager/formats/cvat.py, `dump_as_cvat_annotation`;
cvat/apps/dataset_manager/bindings.py, `CommonData.group_by_frame`), and so this writer:
- one `<image id name width height>` per frame, empty frames included (`subset` and
  `task_id` are written only in project exports, which this writer does not make); `id`
  is the frame's number in the media (`CommonData.Frame.frame`, `abs_frame_id`:
  `start_frame + index * step`, so 10, 12, ... for a task cut from frame 10 with
  `step=2`), not its number in the task;
- in a frame, the shapes sorted by `z_order` (stable), plain shapes before track shapes,
  then the tags;
- tracks appear as plain shapes on every frame they are visible on (keyframes and
  interpolated frames alike, with no `track_id` or `keyframe`); a track's `outside`
  frames are left out, and so is a track skeleton whose elements are all outside;
- shape attributes in CVAT's order: label, source, [outside for skeleton elements],
  occluded (not on skeletons), the geometry, rotation (boxes and ellipses, only when not
  0), z_order (not on skeleton elements), group_id (only when not 0);
- coordinates as `{:.2f}`; a mask as `rle="n, n, ..."` (its stored run lengths as
  integers), `left`, `top`, `width = right - left + 1`, `height = bottom - top + 1`;
- then each `<attribute name>value</attribute>`; a skeleton's elements come before its
  own attributes.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Mapping

from tessera.export.formats.cvat_xml import (
    ELEMENT_NAMES,
    ENCODING,
    ENCODING_ERRORS,
    FOOTER,
    HEADER,
    AttributeElements,
    CvatTaskMeta,
    attr,
    geometry,
    indent,
    meta_block,
)
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    Shape,
    Tag,
    labels_by_id,
    shapes_as_cvat_writes_them,
)

MEMBER = "annotations.xml"
_FLUSH_CHARS = 1 << 18


async def write_cvat_images(
    dataset: Dataset,
    archive: zipfile.ZipFile,
    options: ExportOptions,
    *,
    meta: CvatTaskMeta | None = None,
) -> None:
    """Write `annotations.xml` in CVAT for images 1.1, holding one frame at a time.

    `meta` carries what CVAT's `<meta><task>` has beyond `TaskInfo` (dates, overlap,
    segments, e-mails, frame range); without it those are written with neutral defaults.
    """
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("CVAT for images 1.1 is a 2D format; point cloud tasks have no exporter")
    writer = _FrameWriter(
        {
            label_id: attr("label", label.name)
            for label_id, label in labels_by_id(task.labels).items()
        }
    )
    with archive.open(MEMBER, "w", force_zip64=True) as member:
        pending: list[str] = [HEADER, meta_block(task, meta or CvatTaskMeta())]
        size = 0
        async for item in dataset.frames():
            chunk = writer.image(item, options.annotated_only)
            if chunk:
                pending.append(chunk)
                size += len(chunk)
            if size >= _FLUSH_CHARS:
                member.write("".join(pending).encode(ENCODING, ENCODING_ERRORS))
                pending.clear()
                size = 0
                await asyncio.sleep(0)  # a long in-memory stream must not starve the loop
        pending.append(FOOTER)
        member.write("".join(pending).encode(ENCODING, ENCODING_ERRORS))


class _FrameWriter:
    """Renders one frame's `<image>` element to text."""

    def __init__(self, label_attrs: Mapping[int, str]) -> None:
        self._labels = label_attrs
        self._attributes = AttributeElements()

    def image(self, item: FrameAnnotations, annotated_only: bool) -> str:
        shapes = shapes_as_cvat_writes_them(item.shapes)
        if annotated_only and not shapes and not item.tags:
            return ""
        frame = item.frame
        out = [
            f'{indent(1)}<image id="{frame.number}"{attr("name", frame.name)}'
            f' width="{frame.width}" height="{frame.height}">'
        ]
        for shape in shapes:
            self._shape(shape, 2, False, out)
        for tag in item.tags:
            self._tag(tag, out)
        out.append(f"{indent(1)}</image>")
        return "".join(out)

    def _shape(self, shape: Shape, level: int, element: bool, out: list[str]) -> None:
        name = ELEMENT_NAMES[shape.type]
        head = [
            f"{indent(level)}<{name}{self._labels[shape.label_id]}",
            attr("source", shape.source),
        ]
        if element:
            head.append(f' outside="{int(shape.outside)}"')
        if shape.type != "skeleton":
            head.append(f' occluded="{int(shape.occluded)}"')
        head.append(geometry(shape))
        if not element:
            head.append(f' z_order="{shape.z_order}"')
        if shape.group:
            head.append(f' group_id="{shape.group}"')
        head.append(">")
        out.append("".join(head))
        for child in shape.elements:
            self._shape(child, level + 1, True, out)
        self._attributes.write(shape.attributes, level + 1, out)
        out.append(f"{indent(level)}</{name}>")

    def _tag(self, tag: Tag, out: list[str]) -> None:
        group = f' group_id="{tag.group}"' if tag.group else ""
        out.append(
            f"{indent(2)}<tag{self._labels[tag.label_id]}{attr('source', tag.source)}{group}>"
        )
        self._attributes.write(tag.attributes, 3, out)
        out.append(f"{indent(2)}</tag>")
