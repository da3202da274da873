"""PP-OCRv4's text detector (DBNet) as a detector function: one label, "text".

Pre-processing: each frame is scaled down, keeping its aspect, until its longer side
fits `max_side` (never up), and padded at the right and bottom to a canvas whose sides
are multiples of 32 (the model's stride). The frames of one call share one canvas (the
largest scaled frame's, rounded up), so they go to Triton as one batch.

The model (`services/inference/models/ppocr_v4_det`) answers a probability map: uint8,
round(255 p), p the probability that a pixel belongs to text. DBNet learns to mark each
text region shrunk; the post-processing (`text_boxes`) finds the regions and grows them
back:

1. threshold the map (p > `binary_threshold`, 0.3), on the scaled frame's part of the
   canvas only;
2. the outer contours of the regions (OpenCV), and each one's rotated bounding box of
   least area (`cv2.minAreaRect`); boxes thinner than `min_size` are dropped;
3. the box's score: the mean probability inside it; boxes under the threshold (the
   call's, else `box_threshold`, 0.6) are dropped;
4. unclip: the region was shrunk by D = A * r / L (A the area, L the perimeter, r
   `unclip_ratio`, 1.6); offsetting a rectangle outwards by D with round joins and taking
   the least-area box of the result gives the same rectangle grown by D on every side,
   so that is computed directly (no polygon clipping library);
5. the grown box back in the frame's pixels (pixel centres to edges, divided by the
   scale), clipped to the frame; boxes that are then thinner than `min_size` are dropped.

Each box becomes a CVAT `rectangle` (its axis-aligned extent) or a `polygon` (its four
corners, clockwise from the top-left one), with the box's score as the confidence.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tessera.inference.detectors.detection import (
    Detection,
    DetectParams,
    InferFn,
    ShapeType,
)

STRIDE = 32
LABEL = "text"


class TextDetectorOptions(BaseModel):
    """The detector's settings (the registry's `options`); the defaults are PaddleOCR's
    for this model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_side: int = Field(default=960, ge=STRIDE, le=8192)
    binary_threshold: float = Field(default=0.3, gt=0, lt=1)
    box_threshold: float = Field(default=0.6, ge=0, le=1)
    unclip_ratio: float = Field(default=1.6, ge=0)
    min_size: float = Field(default=3.0, ge=0)
    max_candidates: int = Field(default=1000, ge=1)
    input: str = "images"
    output: str = "probability"


@dataclass(frozen=True)
class Scaled:
    """A frame scaled to fit the model: the scaled pixels, and the scale of each axis
    (x, y: the scaled size over the frame's)."""

    image: np.ndarray
    scale: tuple[float, float]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the scaled frame."""
        height, width = self.image.shape[:2]
        return height, width


@dataclass(frozen=True)
class TextBox:
    """A text box in a frame's pixels: four corners clockwise from the top-left one
    ([4, 2], x then y), and its score."""

    corners: np.ndarray
    score: float

    def rectangle(self) -> tuple[float, float, float, float]:
        """`(xtl, ytl, xbr, ybr)`: the box's axis-aligned extent."""
        xs, ys = self.corners[:, 0], self.corners[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    def detection(self, shape_type: ShapeType) -> Detection:
        """The box as a CVAT `rectangle` or `polygon` of label "text"."""
        if shape_type == "rectangle":
            points: tuple[float, ...] = tuple(round(v, 2) for v in self.rectangle())
        elif shape_type == "polygon":
            points = tuple(round(float(v), 2) for v in self.corners.reshape(-1))
        else:
            raise ValueError(f"the text detector gives rectangles or polygons, not {shape_type}")
        return Detection(LABEL, shape_type, points, round(self.score, 4))


def scale_to_fit(image: np.ndarray, max_side: int) -> Scaled:
    """The frame scaled down (keeping its aspect) until its longer side is at most
    `max_side`; as it is when it already fits."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return Scaled(image, (1.0, 1.0))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # The scale each axis really got, rounded to whole pixels.
    return Scaled(resized, (size[0] / width, size[1] / height))


def canvas_for(sizes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(height, width) of the canvas that holds every (height, width) given: the largest
    of each, rounded up to a multiple of 32."""
    heights, widths = zip(*sizes, strict=True)
    return _round_up(max(heights)), _round_up(max(widths))


def _round_up(value: int) -> int:
    return max(STRIDE, math.ceil(value / STRIDE) * STRIDE)


def pad_to(image: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """The image at the top-left of a black canvas of (height, width) `canvas`."""
    height, width = image.shape[:2]
    if (height, width) == canvas:
        return np.ascontiguousarray(image)
    padded = np.zeros((*canvas, image.shape[2]), dtype=image.dtype)
    padded[:height, :width] = image
    return padded


def text_boxes(
    probability: np.ndarray,
    *,
    scale: tuple[float, float],
    frame_size: tuple[int, int],
    options: TextDetectorOptions,
    threshold: float | None = None,
) -> list[TextBox]:
    """DBNet's boxes in a probability map (uint8, round(255 p), the scaled frame's part
    only), in the frame's pixels (`frame_size`: its (height, width); `scale`: the map's
    size over the frame's, x then y). See the module's documentation for the steps."""
    if probability.ndim != 2 or probability.dtype != np.uint8:
        found = f"{probability.dtype} {probability.shape}"
        raise ValueError(f"expected a uint8 [H, W] map, got {found}")
    least = options.box_threshold if threshold is None else threshold
    bitmap = (probability > options.binary_threshold * 255).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    height, width = frame_size
    boxes = []
    for contour in contours[: options.max_candidates]:
        centre, (box_w, box_h), angle = cv2.minAreaRect(contour)
        if min(box_w, box_h) < options.min_size:
            continue
        score = _mean_inside(probability, cv2.boxPoints((centre, (box_w, box_h), angle))) / 255
        if score < least:
            continue
        grow = box_w * box_h * options.unclip_ratio / (2 * (box_w + box_h))
        grown = (box_w + 2 * grow, box_h + 2 * grow)
        if min(grown) < options.min_size + 2:
            continue
        corners = cv2.boxPoints((centre, grown, angle)).astype(np.float64)
        # Contour points are pixel centres; CVAT's coordinates are pixel edges.
        corners = (corners + 0.5) / scale
        corners[:, 0] = corners[:, 0].clip(0, width)
        corners[:, 1] = corners[:, 1].clip(0, height)
        corners = _clockwise(corners)
        sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
        if min(sides[0], sides[1]) <= options.min_size:
            continue
        boxes.append(TextBox(corners, float(score)))
    boxes.sort(key=lambda box: (box.rectangle()[1], box.rectangle()[0]))
    return boxes


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """The mean of the map's values inside a polygon (its pixels whose centres it covers)."""
    height, width = probability.shape
    x0 = int(np.clip(np.floor(corners[:, 0].min()), 0, width - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()), 0, width - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()), 0, height - 1))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()), 0, height - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    polygon = np.round(corners - (x0, y0)).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    if not mask.any():
        return 0.0
    return float(cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _clockwise(corners: np.ndarray) -> np.ndarray:
    """The corners in clockwise order on screen (y down), from the top-left one."""
    centre = corners.mean(axis=0)
    angles = np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0])
    ordered = corners[np.argsort(angles)]
    first = int(np.argmin(ordered.sum(axis=1)))
    return np.roll(ordered, -first, axis=0)


class TextDetector:
    """The `ppocr_v4_det` function: frames in, text boxes out (see the module)."""

    shape_types: Sequence[ShapeType] = ("rectangle", "polygon")

    def __init__(self, *, options: Mapping[str, Any], infer: InferFn | None) -> None:
        if infer is None:
            raise ValueError("the text detector runs on Triton: give its function a model")
        self.options = TextDetectorOptions.model_validate(dict(options))
        self._infer = infer

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[list[Scaled], list[np.ndarray]]:
        """The frames scaled to fit, and padded onto one canvas (the model's inputs)."""
        for image in images:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected uint8 RGB [H, W, 3], got {image.dtype} {image.shape}")
        scaled = [scale_to_fit(image, self.options.max_side) for image in images]
        canvas = canvas_for(s.size for s in scaled)
        return scaled, [pad_to(s.image, canvas) for s in scaled]

    async def detect(
        self, images: Sequence[np.ndarray], params: DetectParams
    ) -> list[list[Detection]]:
        """The text boxes on each frame (uint8 RGB), as `params.shape_type` shapes
        (rectangles by default) with at least `params.threshold` confidence."""
        if not images:
            return []
        shape_type = params.shape_type or self.shape_types[0]
        if shape_type not in self.shape_types:
            raise ValueError(f"the text detector gives rectangles or polygons, not {shape_type}")
        scaled, inputs = await asyncio.to_thread(self.prepare, images)
        outputs = await asyncio.gather(*(self._infer({self.options.input: x}) for x in inputs))

        def post_process() -> list[list[Detection]]:
            found = []
            for image, fitted, output in zip(images, scaled, outputs, strict=True):
                height, width = fitted.size
                probability = output[self.options.output][:height, :width]
                boxes = text_boxes(
                    probability, scale=fitted.scale, frame_size=image.shape[:2],
                    options=self.options, threshold=params.threshold,
                )  # fmt: skip
                found.append([box.detection(shape_type) for box in boxes])
            return found

        return await asyncio.to_thread(post_process)
