"""The text detector function: its pre- and post-processing on probability maps drawn by
hand (boxes worked out on paper), then the whole detector through the local Triton on
images with text drawn by OpenCV (each drawn line found, nothing on a blank image)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest

from tessera.devstack.servers import Triton
from tessera.inference.detectors.detection import DetectParams
from tessera.inference.detectors.text import (
    TextBox,
    TextDetector,
    TextDetectorOptions,
    canvas_for,
    pad_to,
    scale_to_fit,
    text_boxes,
)
from tessera.inference.triton import FrameBatcher, TritonClient

from .conftest import iou, text_image

OPTIONS = TextDetectorOptions()


def region_map(shape: tuple[int, int], regions: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """A uint8 probability map, 0 but inside each polygon (its value)."""
    probability = np.zeros(shape, np.uint8)
    for polygon, value in regions:
        cv2.fillPoly(probability, [np.round(polygon).astype(np.int32)], value)
    return probability


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The pixels x0..x1, y0..y1 (inclusive) as a polygon through their centres."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_a_shrunk_region_grows_back_by_the_unclip_distance() -> None:
    # Pixels 50..149 x 40..59 at 230: the box through their centres is 99 x 19, so the
    # region grows by 99 * 19 * 1.6 / (2 * (99 + 19)) = 12.7525 on every side.
    probability = region_map((128, 256), [(rect(50, 40, 149, 59), 230)])
    (box,) = text_boxes(probability, scale=(1.0, 1.0), frame_size=(128, 256), options=OPTIONS)
    grow = 99 * 19 * 1.6 / (2 * (99 + 19))
    expected = (50 - grow + 0.5, 40 - grow + 0.5, 149 + grow + 0.5, 59 + grow + 0.5)
    assert box.rectangle() == pytest.approx(expected, abs=1e-3)
    assert box.score == pytest.approx(230 / 255, abs=1e-6)
    # The polygon: the same corners, clockwise from the top-left.
    x0, y0, x1, y1 = expected
    corners = [x0, y0, x1, y0, x1, y1, x0, y1]
    assert box.corners.reshape(-1).tolist() == pytest.approx(corners, abs=1e-3)


def test_boxes_go_back_to_the_frame_scale_and_are_clipped_to_it() -> None:
    # The map is the frame at half size (x and y); a region at the map's left edge grows
    # past it, and is clipped to the frame.
    probability = region_map((64, 128), [(rect(0, 20, 59, 29), 255)])
    (box,) = text_boxes(probability, scale=(0.5, 0.5), frame_size=(128, 256), options=OPTIONS)
    grow = 59 * 9 * 1.6 / (2 * (59 + 9))
    assert box.rectangle() == pytest.approx(
        (0.0, (20 - grow + 0.5) * 2, (59 + grow + 0.5) * 2, (29 + grow + 0.5) * 2), abs=1e-3
    )


def test_weak_small_and_blank_regions_give_no_box() -> None:
    weak = rect(20, 20, 120, 40)  # above the binary threshold (0.3), under the box one (0.6)
    tiny = rect(200, 100, 201, 101)  # 1 x 1 between pixel centres: thinner than min_size
    probability = region_map((128, 256), [(weak, 110), (tiny, 255)])
    assert text_boxes(probability, scale=(1, 1), frame_size=(128, 256), options=OPTIONS) == []
    # The call's threshold replaces the function's own.
    (box,) = text_boxes(
        probability, scale=(1, 1), frame_size=(128, 256), options=OPTIONS, threshold=0.4
    )
    assert box.score == pytest.approx(110 / 255, abs=1e-6)
    blank = np.zeros((96, 96), np.uint8)
    assert text_boxes(blank, scale=(1, 1), frame_size=(96, 96), options=OPTIONS) == []


def test_a_rotated_region_gives_a_rotated_box_in_clockwise_order() -> None:
    corners = cv2.boxPoints(((128.0, 96.0), (140.0, 24.0), -25.0))
    probability = region_map((192, 256), [(corners, 240)])
    (box,) = text_boxes(probability, scale=(1, 1), frame_size=(192, 256), options=OPTIONS)
    (cx, cy), (width, height), _ = cv2.minAreaRect(box.corners.astype(np.float32))
    long_side, short_side = max(width, height), min(width, height)
    grow = 140 * 24 * 1.6 / (2 * (140 + 24))
    assert (cx, cy) == pytest.approx((128.5, 96.5), abs=1.0)
    assert long_side == pytest.approx(140 + 2 * grow, abs=2.5)
    assert short_side == pytest.approx(24 + 2 * grow, abs=2.5)
    # Clockwise on screen (y down): the shoelace sum is positive; the first corner is
    # the top-left one.
    xs, ys = box.corners[:, 0], box.corners[:, 1]
    assert float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) > 0
    assert int(np.argmin(xs + ys)) == 0


def test_boxes_come_top_to_bottom_as_cvat_shapes() -> None:
    probability = region_map(
        (128, 256), [(rect(30, 80, 200, 95), 250), (rect(30, 20, 120, 35), 250)]
    )
    boxes = text_boxes(probability, scale=(1, 1), frame_size=(128, 256), options=OPTIONS)
    assert [round(b.rectangle()[1]) for b in boxes] == [10, 69]
    rectangle = boxes[0].detection("rectangle")
    polygon = boxes[0].detection("polygon")
    assert (rectangle.label, rectangle.type, len(rectangle.points)) == ("text", "rectangle", 4)
    assert (polygon.type, len(polygon.points)) == ("polygon", 8)
    assert rectangle.confidence == polygon.confidence == round(250 / 255, 4)
    with pytest.raises(ValueError, match="rectangles or polygons"):
        boxes[0].detection("mask")
    assert isinstance(boxes[0], TextBox)


def test_frames_are_scaled_down_to_fit_and_padded_to_one_canvas() -> None:
    large = np.zeros((1080, 1920, 3), np.uint8)
    small = np.full((100, 50, 3), 7, np.uint8)
    fitted = scale_to_fit(large, 960)
    assert fitted.size == (540, 960)
    assert fitted.scale == (0.5, 0.5)
    kept = scale_to_fit(small, 960)
    assert kept.image is small
    assert kept.scale == (1.0, 1.0)
    canvas = canvas_for([fitted.size, kept.size])
    assert canvas == (544, 960)
    assert canvas_for([(1, 1)]) == (32, 32)
    padded = pad_to(small, canvas)
    assert padded.shape == (544, 960, 3)
    assert (padded[:100, :50] == 7).all()
    assert not padded[100:].any()
    assert not padded[:, 50:].any()


def test_detector_options_are_checked() -> None:
    async def infer(inputs: object) -> dict[str, np.ndarray]:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="max_sid"):
        TextDetector(options={"max_sid": 960}, infer=infer)
    with pytest.raises(ValueError, match="runs on Triton"):
        TextDetector(options={}, infer=None)
    assert TextDetector(options={"max_side": 640}, infer=infer).options.max_side == 640


@pytest.fixture
async def detector(triton: Triton) -> AsyncIterator[tuple[TextDetector, FrameBatcher]]:
    async with TritonClient(triton.url, timeout_s=20) as client:
        batcher = FrameBatcher(client, "ppocr_v4_det", linger_s=0.02)
        try:
            yield TextDetector(options={}, infer=batcher.infer), batcher
        finally:
            await batcher.aclose()


async def test_each_drawn_line_is_found_and_nothing_else(
    detector: tuple[TextDetector, FrameBatcher],
) -> None:
    text, _ = detector
    image, lines = text_image([("TESSERA 2026", (40, 90)), ("auto labels", (300, 250))])
    (found,) = await text.detect([image], DetectParams())
    assert len(found) == len(lines)
    for detection, line in zip(found, lines, strict=True):
        assert detection.type == "rectangle"
        assert iou(detection.points, line) >= 0.5, (detection.points, line)
        assert detection.confidence >= OPTIONS.box_threshold
    blank = np.full((320, 640, 3), 255, np.uint8)
    assert await text.detect([blank], DetectParams()) == [[]]


async def test_polygons_and_large_frames_in_one_batch(
    detector: tuple[TextDetector, FrameBatcher],
) -> None:
    text, batcher = detector
    large, large_lines = text_image(
        [("Hello world", (100, 500)), ("Second line here", (700, 900))],
        size=(1080, 1920), scale=3, thickness=6,
    )  # fmt: skip
    small, small_lines = text_image([("small frame", (20, 60))], size=(120, 400))
    requests = batcher.stats.requests
    found = await text.detect([large, small], DetectParams(shape_type="polygon"))
    # Both frames on one canvas: one request to Triton.
    assert batcher.stats.requests - requests == 1
    for detections, lines in zip(found, [large_lines, small_lines], strict=True):
        assert len(detections) == len(lines)
        for detection, line in zip(detections, lines, strict=True):
            assert detection.type == "polygon"
            xs, ys = detection.points[0::2], detection.points[1::2]
            extent = (min(xs), min(ys), max(xs), max(ys))
            assert iou(extent, line) >= 0.5, (extent, line)
    # A stricter threshold than any box's score leaves nothing.
    assert await text.detect([small], DetectParams(threshold=1.0)) == [[]]
