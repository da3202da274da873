"""A frame's annotations drawn on its image: `render(image, objects, labels, options)`.

A pure function of its inputs (no I/O): the image is the frame as displayed (the
coordinates of the shapes are in its pixels), the objects are the frame's shapes (a
track's at its interpolated position on the frame) and tags, in the export model's form
(`tessera.export.model`), the labels give their colours, names, skeleton sublabels and
graphs.

What is drawn, in CVAT's layouts (DESIGN.md, "Shape layouts"):

- rectangles (turned by `rotation` about their centre), polygons (closed), polylines,
  ellipses (turned), cuboids (both faces and the four edges between them) as outlines;
  points as dots; masks (run lengths over their box) filled with the label's colour at
  `opacity`; skeletons as their points (each in its sublabel's colour) joined by the
  edges of the label's graph (the svg's lines between its circles);
- in z_order (plain shapes before a track's on one level, as CVAT exports them); a shape
  that is `outside` (a track's frame after it left) is not drawn, nor a skeleton element
  that is;
- an occluded shape is drawn dashed (a point hollow, a mask at half the opacity);
- with `write_labels`, each shape's label name on a tab of its colour at the top left of
  the shape; tags (no geometry) are listed in the top left corner of the image.

`max_size` scales the picture (and the shapes with it) so that its longer side is at most
that many pixels; outline widths and text are in the output's pixels.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageColor, ImageDraw, ImageFont

from tessera.export.model import Label, Shape, Tag, labels_by_id
from tessera.geometry import cvat_mask_to_array, ellipse_to_polygon, rectangle_to_polygon

logger = logging.getLogger(__name__)

RGB = tuple[int, int, int]
Points = npt.NDArray[np.float64]
"""(n, 2) coordinates in the output's pixels."""

FALLBACK_COLOURS: tuple[RGB, ...] = (
    (255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
    (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187),
    (44, 153, 168), (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236),
    (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199),
)  # fmt: skip
"""Colours of labels without a readable `color`, by label id."""
CUBOID_FACES = ((0, 2, 3, 1), (4, 6, 7, 5))
"""A 2D cuboid's faces by point (its points: tl1, bl1, tr1, br1, tl2, bl2, tr2, br2)."""
CUBOID_EDGES = ((0, 4), (1, 5), (2, 6), (3, 7))
"""The edges between the two faces."""
ELLIPSE_VERTICES = 72
_ATTRIBUTE = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')
_ELEMENT = re.compile(r"<\s*(line|circle)\b([^>]*)>", re.IGNORECASE)


@dataclass(frozen=True)
class RenderOptions:
    """How a frame is drawn (see the module's description)."""

    outline_width: int | None = None
    """Pixels; None: 2, or more on large pictures (one per 800 pixels of the longer side)."""
    write_labels: bool = True
    opacity: float = 0.5
    """Of a mask's fill (0 to 1)."""
    max_size: int | None = None
    """The longest side of the output, in pixels; None: the image's size."""


def render(
    image: Image.Image,
    objects: Sequence[Shape | Tag],
    labels: Sequence[Label],
    options: RenderOptions | None = None,
) -> Image.Image:
    """A new RGB image: `image` (scaled to `options.max_size`) with `objects` drawn."""
    options = options or RenderOptions()
    picture = image if image.mode == "RGB" else image.convert("RGB")
    scale = 1.0
    longest = max(picture.size)
    if options.max_size is not None and longest > options.max_size:
        scale = options.max_size / longest
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    else:
        picture = picture.copy()
    width = options.outline_width or max(2, round(max(picture.size) / 800))
    canvas = _Canvas(picture, scale, width, _Palette(labels), options)
    shapes = [shape for shape in objects if isinstance(shape, Shape) and not shape.outside]
    for shape in sorted(shapes, key=lambda s: (s.z_order, s.track_id is not None)):
        try:
            canvas.shape(shape)
        except (ValueError, IndexError, TypeError) as exc:
            logger.debug("a %s shape could not be drawn: %s", shape.type, exc)
    if options.write_labels:
        canvas.captions()
    canvas.tags([tag for tag in objects if isinstance(tag, Tag)])
    return picture


class _Palette:
    """Colours and names of the labels (and sublabels) by id, and skeletons' edges."""

    def __init__(self, labels: Sequence[Label]) -> None:
        self.labels = labels_by_id(labels)

    def colour(self, label_id: int) -> RGB:
        label = self.labels.get(label_id)
        if label is not None and label.color:
            try:
                red, green, blue = ImageColor.getrgb(label.color)[:3]
                return red, green, blue
            except ValueError:
                pass
        return FALLBACK_COLOURS[label_id % len(FALLBACK_COLOURS)]

    def name(self, label_id: int) -> str:
        label = self.labels.get(label_id)
        return label.name if label is not None else f"label {label_id}"

    def edges(self, label_id: int) -> tuple[tuple[int, int], ...]:
        label = self.labels.get(label_id)
        return skeleton_edges(label) if label is not None else ()


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def skeleton_edges(label: Label) -> tuple[tuple[int, int], ...]:
    """The edges of a skeleton label's graph as pairs of sublabel ids: the svg's lines
    (`data-node-from`, `data-node-to`) between its circles (`data-node-id`), each circle
    naming its sublabel by `data-label-id` (as stored) or `data-label-name`."""
    by_name = {sublabel.name: sublabel.id for sublabel in label.sublabels}
    by_id = {str(sublabel.id): sublabel.id for sublabel in label.sublabels}
    nodes: dict[str, int] = {}
    lines: list[tuple[str, str]] = []
    for kind, text in _ELEMENT.findall(label.svg or ""):
        attributes = dict(_ATTRIBUTE.findall(text))
        if kind.lower() == "circle":
            sublabel = by_id.get(attributes.get("data-label-id", "")) or by_name.get(
                attributes.get("data-label-name", "")
            )
            if sublabel is not None and "data-node-id" in attributes:
                nodes[attributes["data-node-id"]] = sublabel
        elif "data-node-from" in attributes and "data-node-to" in attributes:
            lines.append((attributes["data-node-from"], attributes["data-node-to"]))
    return tuple(
        (nodes[start], nodes[end]) for start, end in lines if start in nodes and end in nodes
    )


@dataclass
class _Caption:
    text: str
    colour: RGB
    at: tuple[float, float]


@dataclass
class _Canvas:
    """The picture being drawn on, at `scale` of the frame's coordinates."""

    picture: Image.Image
    scale: float
    width: int
    palette: _Palette
    options: RenderOptions
    pending: list[_Caption] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.picture)
        self.font = _font(max(11, 10 + 2 * self.width))

    def xy(self, points: Sequence[float] | npt.NDArray[np.float64]) -> Points:
        coords = np.asarray(points, dtype=np.float64)
        if coords.size == 0 or coords.size % 2 or not np.isfinite(coords).all():
            raise ValueError("points must be finite (x, y) pairs")
        return coords.reshape(-1, 2) * self.scale

    def shape(self, shape: Shape) -> None:
        colour = self.palette.colour(shape.label_id)
        kind = shape.type
        if kind == "skeleton":
            self.skeleton(shape, colour)
            return
        if kind == "mask":
            corner = self.mask(shape, colour)
        elif kind == "points":
            corner = self.dots(self.xy(shape.points), colour, hollow=shape.occluded)
        elif kind == "cuboid":
            corner = self.cuboid(self.xy(shape.points[:16]), colour, shape.occluded)
        else:
            if kind == "rectangle":
                outline = self.xy(rectangle_to_polygon(shape.points[:4], shape.rotation))
            elif kind == "ellipse":
                outline = self.xy(ellipse_to_polygon(
                    shape.points[:4], shape.rotation, vertices=ELLIPSE_VERTICES
                ))  # fmt: skip
            elif kind in ("polygon", "polyline"):
                outline = self.xy(shape.points)
            else:
                raise ValueError(f"unknown shape type {kind!r}")
            self.line(outline, colour, closed=kind != "polyline", dashed=shape.occluded)
            corner = (float(outline[:, 0].min()), float(outline[:, 1].min()))
        self.caption(shape.label_id, colour, corner)

    def caption(self, label_id: int, colour: RGB, corner: tuple[float, float]) -> None:
        self.pending.append(_Caption(self.palette.name(label_id), colour, corner))

    def line(self, points: Points, colour: RGB, *, closed: bool, dashed: bool) -> None:
        vertices = [(float(x), float(y)) for x, y in points]
        if closed and len(vertices) > 2:
            vertices.append(vertices[0])
        if len(vertices) == 1:
            vertices.append(vertices[0])
        if dashed:
            self.dashes(vertices, colour)
        else:
            self.draw.line(vertices, fill=colour, width=self.width, joint="curve")

    def dashes(self, vertices: Sequence[tuple[float, float]], colour: RGB) -> None:
        """A dashed line through `vertices` (dashes and gaps of 3 widths, at least 6 px)."""
        dash = max(6.0, 3.0 * self.width)
        drawing, left = True, dash
        for (x0, y0), (x1, y1) in itertools.pairwise(vertices):
            length = math.hypot(x1 - x0, y1 - y0)
            done = 0.0
            while done < length:
                step = min(left, length - done)
                if drawing:
                    a, b = done / length, (done + step) / length
                    self.draw.line(
                        [(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                         (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                        fill=colour, width=self.width,
                    )  # fmt: skip
                done += step
                left -= step
                if left <= 0:
                    drawing, left = not drawing, dash

    def dots(self, points: Points, colour: RGB, *, hollow: bool) -> tuple[float, float]:
        radius = max(3, self.width + 2)
        for x, y in points:
            box = (x - radius, y - radius, x + radius, y + radius)
            if hollow:
                self.draw.ellipse(box, outline=colour, width=max(1, self.width // 2 + 1))
            else:
                self.draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=1)
        return float(points[:, 0].min()) - radius, float(points[:, 1].min()) - radius

    def cuboid(self, points: Points, colour: RGB, occluded: bool) -> tuple[float, float]:
        if len(points) != 8:
            raise ValueError("a cuboid has 8 points")
        back, front = (points[list(face)] for face in reversed(CUBOID_FACES))
        self.line(back, colour, closed=True, dashed=occluded)
        for start, end in CUBOID_EDGES:
            self.line(points[[start, end]], colour, closed=False, dashed=occluded)
        self.line(front, colour, closed=True, dashed=occluded)
        return float(points[:, 0].min()), float(points[:, 1].min())

    def mask(self, shape: Shape, colour: RGB) -> tuple[float, float]:
        """Fill a mask's pixels (its run lengths over its box) with `colour` at the
        options' opacity (half that when occluded)."""
        values = [float(v) for v in shape.points]
        if len(values) < 5:
            raise ValueError("a mask needs run lengths and a box")
        left, top, right, bottom = (int(v) for v in values[-4:])
        if left < 0 or top < 0 or right < left or bottom < top:
            raise ValueError("a mask's box must be non-negative and not reversed")
        box_w, box_h = right - left + 1, bottom - top + 1
        pixels = cvat_mask_to_array([*values[:-4], 0, 0, box_w - 1, box_h - 1], box_h, box_w)
        x0, y0 = math.floor(left * self.scale), math.floor(top * self.scale)
        x1 = max(x0 + 1, math.ceil((right + 1) * self.scale))
        y1 = max(y0 + 1, math.ceil((bottom + 1) * self.scale))
        if (x1 - x0, y1 - y0) != (box_w, box_h):
            resized = Image.fromarray(pixels).resize((x1 - x0, y1 - y0), Image.Resampling.NEAREST)
            pixels = np.asarray(resized, dtype=np.bool_)
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x1, self.picture.width), min(y1, self.picture.height)
        if cx0 < cx1 and cy0 < cy1:
            inside = pixels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            region = np.asarray(self.picture.crop((cx0, cy0, cx1, cy1)), dtype=np.float64)
            alpha = self.options.opacity * (0.5 if shape.occluded else 1.0)
            region[inside] = region[inside] * (1.0 - alpha) + np.array(colour) * alpha
            self.picture.paste(Image.fromarray(region.round().astype(np.uint8)), (cx0, cy0))
        return float(x0), float(y0)

    def skeleton(self, shape: Shape, colour: RGB) -> None:
        visible = {
            element.label_id: element
            for element in shape.elements
            if not element.outside and len(element.points) >= 2
        }
        if not visible:
            return
        at = {label_id: self.xy(e.points[:2])[0] for label_id, e in visible.items()}
        for start, end in self.palette.edges(shape.label_id):
            if start in at and end in at:
                occluded = visible[start].occluded or visible[end].occluded
                self.line(np.array([at[start], at[end]]), colour, closed=False, dashed=occluded)
        for label_id, element in visible.items():
            self.dots(at[label_id][None, :], self.palette.colour(label_id), hollow=element.occluded)
        radius = max(3, self.width + 2)
        corner = np.array(list(at.values())).min(axis=0) - radius
        self.caption(shape.label_id, colour, (float(corner[0]), float(corner[1])))

    def captions(self) -> None:
        """Each shape's label name on a tab of its colour, above the shape's top left
        corner when there is room (inside it otherwise)."""
        for caption in self.pending:
            left, top, right, bottom = self.draw.textbbox((0, 0), caption.text, font=self.font)
            pad = 2
            w, h = right - left + 2 * pad, bottom - top + 2 * pad
            x = min(max(caption.at[0], 0.0), max(self.picture.width - w, 0))
            y = caption.at[1] - h if caption.at[1] - h >= 0 else max(caption.at[1], 0.0)
            y = min(y, max(self.picture.height - h, 0))
            self.draw.rectangle((x, y, x + w - 1, y + h - 1), fill=caption.colour)
            self.draw.text((x + pad - left, y + pad - top), caption.text,
                           fill=_ink(caption.colour), font=self.font)  # fmt: skip

    def tags(self, tags: Iterable[Tag]) -> None:
        """The tags' label names listed in the top left corner, each after a swatch of its
        colour, on a dark panel."""
        lines = [(self.palette.name(tag.label_id), self.palette.colour(tag.label_id))
                 for tag in tags]  # fmt: skip
        if not lines:
            return
        pad = 4
        boxes = [self.draw.textbbox((0, 0), text, font=self.font) for text, _ in lines]
        line_h = max(b[3] - b[1] for b in boxes) + pad
        swatch = line_h - pad
        text_w = max(b[2] - b[0] for b in boxes)
        panel = (0, 0, 3 * pad + swatch + text_w, pad + line_h * len(lines))
        self.draw.rectangle(panel, fill=(24, 24, 24))
        for row, ((text, colour), box) in enumerate(zip(lines, boxes, strict=True)):
            y = pad + row * line_h
            self.draw.rectangle((pad, y, pad + swatch - 1, y + swatch - 1), fill=colour)
            self.draw.text((2 * pad + swatch - box[0], y - box[1]), text,
                           fill=(255, 255, 255), font=self.font)  # fmt: skip


def _ink(colour: RGB) -> RGB:
    """Black or white, whichever reads better on `colour`."""
    red, green, blue = colour
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else (255, 255, 255)


def colour_of(labels: Sequence[Label], label_id: int) -> RGB:
    """The colour a label is drawn in."""
    return _Palette(labels).colour(label_id)
