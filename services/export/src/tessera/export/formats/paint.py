"""A frame's shapes painted as CVAT's mask formats paint them, label maps, and their PNGs.

Shared by the Segmentation mask, PASCAL VOC, Cityscapes, MOTS PNG and KITTI writers. CVAT
exports all of them through its datumaro fork (cvat/apps/dataset_manager/formats/mask.py,
pascal_voc.py, cityscapes.py, mots.py, kitti.py), which runs every frame's annotations
through the same chain before painting them. The rules below come from those files,
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`),
cvat/apps/dataset_manager/formats/transformations.py (`RotatedBoxesToPolygons`,
`EllipsesToMasks`, the mask converter), cvat/apps/dataset_manager/formats/utils.py
(`make_colormap`) and the fork's datumaro/plugins/transforms.py (`PolygonsToMasks`,
`BoxesToMasks`, `MergeInstanceSegments`), datumaro/util/annotation_util.py
(`find_instances`, `find_group_leader`), datumaro/components/annotation.py (`_Shape`,
`Bbox`, `CompiledMask.from_instance_masks`) and datumaro/util/mask_tools.py
(`paint_mask`, `merge_masks`, `generate_colormap`):

1. Shapes come in CVAT's order (`shapes_as_cvat_writes_them`: by `z_order`, plain shapes
   before track shapes, a track's outside frames left out). Datumaro rounds every box and
   polygon coordinate to 2 decimals when it stores it, so they are rasterised rounded.
2. Segments (`frame_segments`): a mask shape becomes its pixels on the frame; an ellipse
   its pixels (the bindings rasterise it); with `polygons`, a polygon (3 points or more)
   becomes pycocotools' rasterisation of it, and so does a rectangle with a non-zero
   rotation, as the polygon of its rotated corners (re-rounded to 2 decimals), which
   `RotatedBoxesToPolygons` moves to the END of the frame's list; with `boxes`, an upright
   rectangle becomes the rasterisation of its 4 corners (`boxes_to_masks`). Polylines,
   points, skeletons, 2D cuboids and tags paint nothing.
3. With `merge_groups` (`merge_instance_segments`): segments sharing a non-zero `group`
   become one segment, the union of their pixels, that takes the shape (label,
   attributes, `z_order`, track) of its largest member (most pixels on the frame; the
   first of equals). The frame's segments are then the ungrouped ones in their order,
   followed by the groups by group number; a segment's `position` is its place in that
   list (Cityscapes numbers instances by it).
4. Painting (`paint`, CVAT's `CompiledMask.from_instance_masks`): the segments are sorted
   stably by `z_order` and painted in that order, each over the earlier ones; the k-th
   paints index k (from 1), or 0 when `erase` says so (a segment of the background class
   erases what is under it). Pixels nothing covers keep 0. Class and instance maps are then
   `lookup`s of that index map (index 0 giving the background class and instance 0).
5. Label maps: the mask formats take `make_colormap` (every label of the task, skeleton
   points included, by label id, with a `background` label coloured #000000 inserted first
   unless a label of that name exists; a later label of a repeated name gives the colour)
   as a dict, which the fork's converters sort by name; the background is the first label
   coloured (0, 0, 0) in that order, else the label named `background`
   (`colormap_label_map`). Cityscapes and KITTI move it to index 0; VOC leaves it where it
   sorts. PASCAL VOC 1.1 uses the labels themselves (`source_label_map`).
6. PNGs: CVAT writes its colour images as 24-bit RGB (`paint_mask` looks up a 256-entry
   palette after casting the index map to uint8). `palette_png` writes the same colours as
   an 8-bit palette image (PNG colour type 3, as PASCAL VOC's own files are): the indices
   taken modulo 256, palette entry k the colour of index k, so every pixel decodes to the
   RGB value CVAT writes. `gray_png` writes 8-bit grayscale (values modulo 256, as cv2
   writes a cast) or 16-bit grayscale (values clipped to 65535, as Pillow writes an int32
   image); the writers say which CVAT uses.

Where this differs from CVAT (as the COCO writer does): ellipse pixels are those whose
centres lie inside the ellipse (CVAT rounds centre and radii and draws with cv2); a mask
whose box leaves the frame is clipped to it; shapes CVAT would fail the export on (a
polygon of fewer than 3 points, an inverted box, non-finite coordinates) are skipped.

Memory: a frame's segments are held as RLEs; painting needs one index map of the frame
(uint8 up to 255 segments) and the maps looked up from it.
"""

from __future__ import annotations

import contextlib
import io
import os.path
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import IO, Any, Final, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from tessera.export.formats.coco import attribute_value, ellipse_rle, mask_rle, round2
from tessera.export.model import FrameInfo, Label, Shape, labels_by_id
from tessera.geometry import (
    CompressedRLE,
    area,
    decode,
    from_polygons,
    merge_rles,
    rectangle_to_polygon,
    to_counts,
)

Rgb = tuple[int, int, int]
Pixels = npt.NDArray[Any]
"""A (height, width) array of unsigned integers."""

PAINTED: Final = frozenset({"rectangle", "polygon", "mask", "ellipse"})
"""Shape types that can paint pixels."""
BACKGROUND: Final = "background"
BLACK: Final[Rgb] = (0, 0, 0)

_RUN_LOOP_LIMIT = 4096
_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20


# --- segments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One painted object: its pixels, and the shape whose label and z_order it takes."""

    shape: Shape
    """The shape itself, or the largest member of its group."""
    rle: CompressedRLE
    """Its pixels on the frame."""
    position: int
    """Its place among the frame's segments, before painting sorts them by z_order."""

    @property
    def label_id(self) -> int:
        return self.shape.label_id

    @property
    def z_order(self) -> int:
        return self.shape.z_order


def frame_segments(
    shapes: Sequence[Shape],
    height: int,
    width: int,
    *,
    polygons: bool = True,
    boxes: bool = True,
    merge_groups: bool = True,
) -> list[Segment]:
    """The frame's segments in CVAT's order, from its shapes in CVAT's order.

    `polygons`: polygons and rotated rectangles are painted; `boxes`: upright rectangles
    are; `merge_groups`: shapes of one non-zero group make one segment. Masks and ellipses
    always are.
    """
    if height <= 0 or width <= 0:
        return []
    kept: list[tuple[Shape, CompressedRLE]] = []
    moved: list[tuple[Shape, CompressedRLE]] = []
    for shape in shapes:
        rle = _rasterise(shape, height, width, polygons=polygons, boxes=boxes)
        if rle is None:
            continue
        rotated = shape.type == "rectangle" and bool(shape.rotation)
        (moved if rotated else kept).append((shape, rle))
    parts = kept + moved  # RotatedBoxesToPolygons appends its polygons to the frame's list
    if not merge_groups:
        return [Segment(shape, rle, index) for index, (shape, rle) in enumerate(parts)]
    segments: list[Segment] = []
    for group, members_iter in groupby(
        sorted(parts, key=lambda part: part[0].group), key=lambda part: part[0].group
    ):
        members = list(members_iter)
        if not group:
            for shape, rle in members:
                segments.append(Segment(shape, rle, len(segments)))
            continue
        if len(members) == 1:
            leader, rle = members[0]
        else:
            sizes = [area(member) for _, member in members]
            leader = members[sizes.index(max(sizes))][0]
            rle = merge_rles([member for _, member in members])
        segments.append(Segment(leader, rle, len(segments)))
    return segments


def _rasterise(
    shape: Shape, h: int, w: int, *, polygons: bool, boxes: bool
) -> CompressedRLE | None:
    points = shape.points
    try:
        match shape.type:
            case "mask":
                return mask_rle(points, h, w)
            case "ellipse":
                if len(points) != 4 or points[2] < points[0] or points[1] < points[3]:
                    return None
                return ellipse_rle(points, shape.rotation, h, w)
            case "polygon" if polygons:
                coords = [round2(float(v)) for v in points[: len(points) // 2 * 2]]
                return from_polygons([coords], h, w) if len(coords) >= 6 else None
            case "rectangle" if len(points) >= 4:
                # dm.Bbox(x0, y0, x1 - x0, y1 - y0) stores its corners rounded
                x0, y0, x1, y1 = (float(v) for v in points[:4])
                left, top = round2(x0), round2(y0)
                right, bottom = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
                if right < left or bottom < top:
                    return None
                if shape.rotation:
                    if not polygons:
                        return None
                    corners = rectangle_to_polygon([left, top, right, bottom], shape.rotation)
                    return from_polygons([[round2(float(v)) for v in corners]], h, w)
                if not boxes:
                    return None
                xr, yb = left + (right - left), top + (bottom - top)  # Bbox.as_polygon
                return from_polygons([[left, top, xr, top, xr, yb, left, yb]], h, w)
            case _:
                return None
    except (ValueError, OverflowError):  # coordinates the rasterisers refuse (NaN, inf)
        return None


# --- painting ------------------------------------------------------------------------------


def paint(
    segments: Sequence[Segment],
    height: int,
    width: int,
    *,
    erase: Callable[[Segment], bool] | None = None,
) -> tuple[Pixels, list[Segment]]:
    """The index map of the segments painted in z_order, and the segments in that order.

    Pixel value k (from 1) is the k-th segment of the returned order, the last to paint
    it; 0 is no segment, or one for which `erase` is true.
    """
    order = sorted(segments, key=lambda segment: segment.z_order)
    flat = np.zeros(height * width, _dtype_for(len(order)))
    for index, segment in enumerate(order, 1):
        value = 0 if erase is not None and erase(segment) else index
        counts = to_counts(segment.rle)["counts"]
        if len(counts) > _RUN_LOOP_LIMIT:
            flat[decode(segment.rle).ravel(order="F").view(np.bool_)] = value
            continue
        pos = 0
        for run, length in enumerate(counts):
            if run % 2:
                flat[pos : pos + length] = value
            pos += length
    return flat.reshape(width, height).T, order  # RLEs run down the columns


def lookup(index: Pixels, values: Sequence[int]) -> Pixels:
    """`values[index]` per pixel, in the smallest unsigned type that holds every value."""
    table = np.asarray(values, dtype=_dtype_for(max(values, default=0)))
    return np.ascontiguousarray(table[index])


def _dtype_for(largest: int) -> type[np.unsignedinteger[Any]]:
    if largest <= 0xFF:
        return np.uint8
    if largest <= 0xFFFF:
        return np.uint16
    return np.uint32


# --- label maps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelMap:
    """The classes a mask format paints: names, colours and the background's index."""

    names: tuple[str, ...]
    colors: tuple[Rgb, ...]
    background: int

    def index_of(self) -> dict[str, int]:
        """Class index by name (labels are mapped to classes by name, as datumaro does)."""
        return {name: index for index, name in enumerate(self.names)}

    def palette(self) -> list[Rgb]:
        """Colour of class k at entry k."""
        return list(self.colors)


def hex_to_rgb(color: str) -> Rgb:
    """CVAT's `hex2rgb` of a label colour such as "#ff8000"; black when not a colour."""
    digits = color.strip().lstrip("#")
    try:
        red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return BLACK
    return (red, green, blue)


def all_labels(labels: Sequence[Label]) -> list[Label]:
    """Every label and skeleton point, by label id, as CVAT lists a task's labels."""
    return sorted(labels_by_id(labels).values(), key=lambda label: label.id)


def colormap_label_map(labels: Sequence[Label], *, background_first: bool) -> LabelMap:
    """CVAT's `make_colormap` as the fork's mask converters order it (rule 5)."""
    colors: dict[str, Rgb] = {}
    ordered = all_labels(labels)
    if BACKGROUND not in {label.name for label in ordered}:
        colors[BACKGROUND] = BLACK
    for label in ordered:
        colors[label.name] = hex_to_rgb(label.color)
    names = sorted(colors)
    background = next((name for name in names if colors[name] == BLACK), BACKGROUND)
    if background_first:
        names.remove(background)
        names.insert(0, background)
    return LabelMap(tuple(names), tuple(colors[name] for name in names), names.index(background))


def source_label_map(labels: Sequence[Label]) -> LabelMap:
    """PASCAL VOC's `label_map='source'`: the labels by id (a repeated name once), the
    label named `background` as background, else one inserted first; colours from VOC's
    colormap by class index."""
    names = list(dict.fromkeys(label.name for label in all_labels(labels)))
    if BACKGROUND not in names:
        names.insert(0, BACKGROUND)
    palette = voc_colormap(len(names))
    return LabelMap(tuple(names), tuple(palette), names.index(BACKGROUND))


def voc_colormap(size: int = 256) -> list[Rgb]:
    """PASCAL VOC's colormap: the bits of index k spread over the channels' high bits."""
    colors: list[Rgb] = []
    for index in range(size):
        red = green = blue = 0
        value = index
        for bit in range(7, -1, -1):
            red |= (value & 1) << bit
            green |= ((value >> 1) & 1) << bit
            blue |= ((value >> 2) & 1) << bit
            value >>= 3
        colors.append((red, green, blue))
    return colors


# --- PNG -----------------------------------------------------------------------------------


def palette_png(indices: Pixels, palette: Sequence[Rgb]) -> bytes:
    """An 8-bit palette PNG of `indices` modulo 256; entry k is `palette[k]` (black past
    the palette's end), so each pixel decodes to the colour CVAT's `paint_mask` gives it."""
    image = Image.fromarray(np.ascontiguousarray(indices.astype(np.uint8)))
    entries = list(palette[:256]) + [BLACK] * max(0, 256 - len(palette))
    image.putpalette(bytes(channel for color in entries for channel in color))
    return _png(image)


def gray_png(values: Pixels, bits: Literal[8, 16]) -> bytes:
    """A grayscale PNG: 8-bit with the values modulo 256 (cv2 writing a uint8 cast), or
    16-bit with the values clipped to 65535 (Pillow writing an int32 image)."""
    if bits == 8:
        data = values.astype(np.uint8)
    elif values.dtype.itemsize <= 2:
        data = values.astype(np.uint16)
    else:
        data = np.minimum(values, values.dtype.type(0xFFFF)).astype(np.uint16)
    return _png(Image.fromarray(np.ascontiguousarray(data)))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- archive helpers -----------------------------------------------------------------------


def split_name(frame: FrameInfo) -> tuple[str, str]:
    """A frame's item id (its file name without the extension, directories kept) and
    extension, as CVAT's bindings and datumaro's `Image.ext` take them."""
    stem, ext = os.path.splitext(frame.name)
    return stem, ext


def write_member(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    """One archive member, written whole."""
    with archive.open(path, "w", force_zip64=True) as member:
        member.write(data)


class Spools(contextlib.AbstractContextManager["Spools"]):
    """Lines per key (a subset, a list), in spooled temporary files (memory up to a few
    MiB, disk past that), kept in the order keys first appear; a context manager."""

    def __init__(self) -> None:
        self._files: dict[Any, IO[bytes]] = {}
        self._stack = contextlib.ExitStack()

    def __exit__(self, *exc: object) -> None:
        self._files.clear()
        self._stack.close()

    def add(self, key: Any, line: str) -> None:
        file = self._files.get(key)
        if file is None:
            spool = tempfile.SpooledTemporaryFile(_SPOOL_BYTES)  # noqa: SIM115 (the stack closes it)
            file = self._files[key] = self._stack.enter_context(spool)
        file.write(line.encode())
        file.write(b"\n")

    def __contains__(self, key: object) -> bool:
        return key in self._files

    def __iter__(self) -> Iterator[Any]:
        """The keys, in the order they first appeared."""
        return iter(list(self._files))

    def lines(self, key: Any) -> Iterator[str]:
        """The key's lines, without their newlines."""
        file = self._files.get(key)
        if file is None:
            return
        file.seek(0)
        for raw in file:
            yield raw[:-1].decode()

    def copy_to(self, key: Any, member: IO[bytes]) -> None:
        """The key's lines, each with its newline, written into `member`."""
        file = self._files.get(key)
        if file is None:
            return
        file.seek(0)
        while chunk := file.read(_COPY_BYTES):
            member.write(chunk)


def spec_values(label: Label | None, values: Mapping[str, str]) -> dict[str, Any]:
    """Attribute values as CVAT hands them to datumaro: every attribute of the label's spec
    (a missing value takes the default), numbers as floats, checkboxes as booleans."""
    if label is None:
        return {}
    return {
        spec.name: attribute_value(spec.input_type, values.get(spec.name, spec.default_value))
        for spec in label.attributes
    }
