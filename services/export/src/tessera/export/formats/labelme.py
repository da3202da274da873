"""LabelMe 3.0, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it through its datumaro fork (cvat/apps/dataset_manager/formats/labelme.py:
`GetCVATDataExtractor`, then `dataset.export(dir, "label_me")`), after
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`,
`CvatTaskOrJobDataExtractor`) has turned each frame into a datumaro item (ellipses become
masks there). The fork's datumaro/plugins/labelme_format.py (`LabelMeConverter`) writes
one XML per item with lxml (`tostring(..., encoding="unicode", pretty_print=True)`), and
datumaro/components/annotation.py rounds the coordinates. The rules, and so this writer:

- per frame (every frame, only annotated ones with `annotated_only`), in its subset's
  folder (the frame's subset, else the task's, else `default`):
  `<subset>/<id>.xml`, the id being the file name without its extension (folders kept:
  "dir/a.jpg" gives `default/dir/a.xml`), and one PNG per mask object,
  `<subset>/Masks/<id>_mask_<object id>.png`.
- the XML, indented by two spaces a level, a newline after each line, no XML
  declaration: `<annotation>` with `filename` (the image's base name: the id's base name
  plus the file's extension; a video frame, named without one, gets CVAT's ".PNG"),
  `folder` (the id's folder, "" for most), `source` (`sourceImage` "",
  `sourceAnnotation` "Datumaro"), `imagesize` (`nrows` the height, `ncols` the width),
  then one `<object>` per box, polygon, mask or ellipse. Points, polylines, skeletons,
  cuboids and tags are not written.
- shapes in CVAT's order (by `z_order`, plain shapes before track shapes; a track's
  outside frames are left out); object ids count from 0 over the objects written.
- an object: `name` (the label), `deleted` 0, `verified` 0, `occluded` yes/no, `date`
  "", `id`, `parts` (`hasparts`, `ispartof`), then the geometry, then `attributes`:
  * box: `type` "bounding_box" and a `polygon` of its four corners (x1 y1, x2 y1,
    x2 y2, x1 y2), unrotated, then `username`;
  * polygon: a `polygon` of its points, then `username`;
  * mask (and ellipse): `segm` with `mask` (the PNG's name under `Masks/`), `box`
    (`xmin`, `ymin`: the first foreground column and row; `xmax`, `ymax`: one past the
    last) and `username`. The PNG is the whole frame, RGBA, transparent black behind,
    (0, 203, 255, 153) on the mask (datumaro paints BGRA (255, 203, 0, 153)).
  Coordinates are rounded to 2 decimals as datumaro stores them (a box as its corners
  `x1, y1, x1 + w, y1 + h`), then written "%.2f".
- groups: the objects sharing a non-zero `group` form a LabelMe part tree: the first of
  them (in object order) lists the others' ids in `hasparts` ("1,2"), each other one has
  the first's id in `ispartof`; an ungrouped object has both empty.
- `username`: the label's `username` attribute when it has one, else "".
- `attributes`: "name=value" pairs joined by ", ", for every attribute of the label's
  spec (missing values take the default; numbers as floats "42.0", checkboxes as
  "True"/"False"), then `rotation` for boxes ("30.5"), then on frames of tracks
  `track_id` and `keyframe` ("True"/"False"). `occluded` and `username` are not listed.
  A text value is escaped (`\\` `=` `"` `,` get a backslash) unless it reads as a number
  ("12", "1.5"), which is quoted instead (`"12"`); names are escaped the same way.
- XML text escapes `&`, `<`, `>` and carriage returns (lxml's serialiser).
- images (`save_images`): next to the XML, `<subset>/<id><ext>`; see `image_path`.

Where this writer differs from CVAT (as the other writers do): ellipse pixels are those
whose centres lie inside the ellipse (CVAT draws with cv2); `track_id` is the track
number the dataset carries (the snapshot reader's, by first frame; CVAT's by id);
characters XML cannot hold are dropped (lxml refuses them and CVAT fails); a polygon of
fewer than 3 points is skipped, a mask whose box leaves the frame is clipped, a frame
without a size gets no `imagesize` and no masks (CVAT would fail the export). The PNG
bytes are this module's own encoding (zlib, no filter), the pixels are datumaro's. When
two frames of a subset share an id (`a.jpg`, `a.png`), the second's XML and masks take
the image's full name (`a.png.xml`, `a.png_mask_0.png`), where datumaro would have
merged the two items.

Nothing is held beyond one frame but the names of the XML files written so far (to tell
such ids apart): each frame's masks and XML are written as the frame comes.
"""

from __future__ import annotations

import asyncio
import os.path
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tessera.export.formats.coco import attribute_value, ellipse_rle, mask_rle, round2
from tessera.export.formats.common import split_frame_name
from tessera.export.model import (
    AttributeSpec,
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Shape,
    TaskInfo,
    labels_by_id,
    shapes_as_cvat_writes_them,
)
from tessera.geometry import decode

DEFAULT_SUBSET: Final = "default"
MASKS_DIR: Final = "Masks"

_YIELD_EVERY = 4
_MASK_COLOUR: Final = (0, 203, 255, 153)  # RGBA, what datumaro's BGRA paint becomes
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_ESCAPES: Final = (("\\", "\\\\"), ("=", "\\="), ('"', '\\"'), (",", "\\,"))


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image with `save_images`: beside its XML,
    `<subset>/<id><ext>`."""
    root, ext = split_frame_name(frame)
    return f"{subset}/{root}{ext}"


def image_paths(item: FrameAnnotations, task: TaskInfo) -> list[str]:
    """Every path the frame's image takes in the archive (one, for LabelMe)."""
    return [image_path(item.frame, item.frame.subset or task.subset or DEFAULT_SUBSET)]


async def write_labelme(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write LabelMe 3.0: `<subset>/<id>.xml` per frame and `<subset>/Masks/*.png`."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("LabelMe 3.0 is a 2D format; point cloud tasks have no LabelMe exporter")
    labels = {
        label_id: _LabelInfo(label.name, label.attributes)
        for label_id, label in labels_by_id(task.labels).items()
    }
    written: dict[str, set[str]] = {}
    frames = 0
    async for item in dataset.frames():
        shapes = shapes_as_cvat_writes_them(item.shapes)
        if options.annotated_only and not shapes and not item.tags:
            continue
        subset = item.frame.subset or task.subset or DEFAULT_SUBSET
        root, ext = split_frame_name(item.frame)
        names = written.setdefault(subset, set())
        base = root if root not in names else root + ext
        names.add(base)
        xml, masks = _render(
            item.frame, root=root, ext=ext, base=base, shapes=shapes, labels=labels
        )
        for name, png in masks:
            with archive.open(f"{subset}/{MASKS_DIR}/{name}", "w", force_zip64=True) as member:
                member.write(png)
        with archive.open(f"{subset}/{base}.xml", "w", force_zip64=True) as member:
            member.write(xml.encode())
        frames += 1
        if frames % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # the CPU work of a long stream must not starve the loop


@dataclass(frozen=True, slots=True)
class _LabelInfo:
    name: str
    specs: tuple[AttributeSpec, ...]


def _text(value: str) -> str:
    """Element text as lxml serialises it."""
    value = _INVALID_XML.sub("", value)
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _leaf(level: int, name: str, value: str) -> str:
    return f"{'  ' * level}<{name}>{_text(value)}</{name}>\n"


def _escape(value: str) -> str:
    for pattern, substitute in _ATTRIBUTE_ESCAPES:
        value = value.replace(pattern, substitute)
    return value


def _reads_as_number(value: str) -> bool:
    """datumaro's test for a text value that must be quoted to stay text."""
    try:
        if str(float(value)) == value:
            return True
    except ValueError:
        pass
    try:
        return str(int(value)) == value
    except ValueError:
        return False


def _attribute_text(attributes: Mapping[str, Any]) -> str:
    pairs = []
    for name, value in attributes.items():
        if name in ("username", "occluded"):
            continue
        if isinstance(value, str):
            shown = f'"{value}"' if _reads_as_number(value) else _escape(value)
        else:
            shown = str(value)
        pairs.append(f"{_escape(name)}={shown}")
    return ", ".join(pairs)


def _attributes(shape: Shape, info: _LabelInfo) -> dict[str, Any]:
    """The datumaro attributes CVAT gives a shape (`_convert_shape`), in its order."""
    values: dict[str, Any] = {
        spec.name: attribute_value(
            spec.input_type, shape.attributes.get(spec.name, spec.default_value)
        )
        for spec in info.specs
    }
    values["occluded"] = shape.occluded
    if shape.type == "rectangle":
        values["rotation"] = float(shape.rotation)
    if shape.track_id is not None:
        values["track_id"] = shape.track_id
        values["keyframe"] = shape.keyframe
    return values


def _points(level: int, points: Sequence[tuple[float, float]]) -> list[str]:
    pad = "  " * level
    out = []
    for x, y in points:
        out.append(f"{pad}<pt>\n{pad}  <x>{x:.2f}</x>\n{pad}  <y>{y:.2f}</y>\n{pad}</pt>\n")
    return out


def _png(mask: npt.NDArray[Any]) -> bytes:
    """The mask painted as datumaro paints it, as an RGBA PNG."""
    h, w = mask.shape
    rows = np.zeros((h, w * 4 + 1), np.uint8)  # each row: filter type 0, then RGBA pixels
    rows[:, 1:].reshape(h, w, 4)[mask.astype(np.bool_)] = _MASK_COLOUR

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


@dataclass(slots=True)
class _Object:
    group: int
    head: str
    """`name` .. `id`, already indented."""
    body: list[str]
    """The geometry and `attributes`, already indented."""
    parts: tuple[str, str] = ("", "")
    """`hasparts`, `ispartof`."""


def _mask_pixels(shape: Shape, frame: FrameInfo) -> npt.NDArray[Any] | None:
    h, w = frame.height, frame.width
    if h <= 0 or w <= 0:
        return None
    points = shape.points
    if shape.type == "mask":
        try:
            return decode(mask_rle(points, h, w))
        except ValueError:
            return None
    if len(points) != 4 or points[2] < points[0] or points[1] < points[3]:
        return None
    return decode(ellipse_rle(points, shape.rotation, h, w))


def _render(
    frame: FrameInfo,
    *,
    root: str,
    ext: str,
    base: str,
    shapes: Sequence[Shape],
    labels: Mapping[int, _LabelInfo],
) -> tuple[str, list[tuple[str, bytes]]]:
    """The frame's XML and its mask PNGs (name under `Masks/`, bytes)."""
    folder, name = os.path.split(root + ext)
    lines = [
        "<annotation>\n",
        _leaf(1, "filename", name),
        _leaf(1, "folder", folder),
        "  <source>\n",
        _leaf(2, "sourceImage", ""),
        _leaf(2, "sourceAnnotation", "Datumaro"),
        "  </source>\n",
    ]
    if frame.height > 0 and frame.width > 0:
        lines += [
            "  <imagesize>\n",
            _leaf(2, "nrows", str(frame.height)),
            _leaf(2, "ncols", str(frame.width)),
            "  </imagesize>\n",
        ]
    objects: list[_Object] = []
    masks: list[tuple[str, bytes]] = []
    for shape in shapes:
        info = labels.get(shape.label_id)
        if info is None or shape.type not in ("rectangle", "polygon", "mask", "ellipse"):
            continue
        attributes = _attributes(shape, info)
        username = str(attributes.get("username", ""))
        obj_id = len(objects)
        body: list[str] = []
        if shape.type == "rectangle":
            if len(shape.points) != 4:
                continue
            x0, y0, x1, y1 = (float(v) for v in shape.points)
            left, top = round2(x0), round2(y0)
            right, bottom = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
            body.append(_leaf(2, "type", "bounding_box"))
            body.append("    <polygon>\n")
            body += _points(3, [(left, top), (right, top), (right, bottom), (left, bottom)])
            body.append(_leaf(3, "username", username))
            body.append("    </polygon>\n")
        elif shape.type == "polygon":
            values = [round2(float(v)) for v in shape.points[: len(shape.points) // 2 * 2]]
            if len(values) < 6:
                continue
            body.append("    <polygon>\n")
            body += _points(3, list(zip(values[0::2], values[1::2], strict=True)))
            body.append(_leaf(3, "username", username))
            body.append("    </polygon>\n")
        else:
            pixels = _mask_pixels(shape, frame)
            if pixels is None:
                continue
            mask_name = f"{base}_mask_{obj_id}.png"
            masks.append((mask_name, _png(pixels)))
            columns = np.flatnonzero(pixels.any(axis=0))
            rows = np.flatnonzero(pixels.any(axis=1))
            if columns.size:
                box = (columns[0], rows[0], columns[-1] + 1, rows[-1] + 1)
            else:
                box = (0, 0, 0, 0)
            body.append("    <segm>\n")
            body.append(_leaf(3, "mask", mask_name))
            body.append("      <box>\n")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
                body.append(_leaf(4, tag, f"{float(value):.2f}"))
            body.append("      </box>\n")
            body.append(_leaf(3, "username", username))
            body.append("    </segm>\n")
        body.append(_leaf(2, "attributes", _attribute_text(attributes)))
        head = "".join(
            (
                _leaf(2, "name", info.name),
                _leaf(2, "deleted", "0"),
                _leaf(2, "verified", "0"),
                _leaf(2, "occluded", "yes" if shape.occluded else "no"),
                _leaf(2, "date", ""),
                _leaf(2, "id", str(obj_id)),
            )
        )
        objects.append(_Object(shape.group, head, body))
    groups: dict[int, list[int]] = {}
    for index, obj in enumerate(objects):
        if obj.group:
            groups.setdefault(obj.group, []).append(index)
    for members in groups.values():
        leader, rest = members[0], members[1:]
        objects[leader].parts = (",".join(str(index) for index in rest), "")
        for index in rest:
            objects[index].parts = ("", str(leader))
    for obj in objects:
        lines.append("  <object>\n")
        lines.append(obj.head)
        lines.append("    <parts>\n")
        lines.append(_leaf(3, "hasparts", obj.parts[0]))
        lines.append(_leaf(3, "ispartof", obj.parts[1]))
        lines.append("    </parts>\n")
        lines += obj.body
        lines.append("  </object>\n")
    lines.append("</annotation>\n")
    return "".join(lines), masks
