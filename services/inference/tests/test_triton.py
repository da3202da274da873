"""The inference service's Triton client against a real local Triton serving the repository.

The `triton` fixture (tessera.devstack.testing) starts Triton once for the session, from
its own virtual environment, serving `services/inference/models/` as the production
Triton does. The text detector runs on images with text drawn by OpenCV.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest

from tessera.devstack.servers import Triton, free_port
from tessera.inference.config import InferenceSettings
from tessera.inference.triton import (
    FrameBatcher,
    InferenceFailed,
    ModelNotReady,
    ModelStatistics,
    TritonClient,
    TritonTimeout,
    TritonUnavailable,
)

DETECTOR = "ppocr_v4_det"
TEXT = 0.3 * 255  # DBNet's threshold on the probability map


def text_image(
    lines: list[tuple[str, tuple[int, int]]], size: tuple[int, int] = (320, 640)
) -> tuple[np.ndarray, np.ndarray]:
    """A white RGB image with black text, and the boxes (x0, y0, x1, y1) of its lines."""
    image = np.full((*size, 3), 255, np.uint8)
    boxes = []
    for text, (x, y) in lines:
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.5, 3)
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3, cv2.LINE_AA)
        boxes.append((x, y - height, x + width, y + baseline))
    return image, np.array(boxes)


def mask_of(boxes: np.ndarray, shape: tuple[int, int], margin: int = 0) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin] = True
    return mask


async def settled_statistics(client: TritonClient, count: int | None = None) -> ModelStatistics:
    """Triton's counters once they stop moving (or reach `count`): Triton counts a request
    when it releases it, which can be a moment after the answer has reached the client."""
    last = await client.statistics(DETECTOR)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = await client.statistics(DETECTOR)
        if (count is None and now == last) or (count is not None and now.inference_count >= count):
            return now
        last = now
    return last


@pytest.fixture(params=["grpc", "http"])
async def client(request: pytest.FixtureRequest, triton: Triton) -> AsyncIterator[TritonClient]:
    url = triton.url if request.param == "grpc" else triton.http_url
    async with TritonClient(url, timeout_s=20) as made:
        yield made


async def test_model_is_ready_with_the_repository_configuration(client: TritonClient) -> None:
    model = await client.model(DETECTOR)
    assert model.max_batch_size == 8
    (images,) = model.inputs.values()
    assert (images.name, images.datatype, images.dims) == ("images", "UINT8", (-1, -1, 3))
    (probability,) = model.outputs.values()
    assert (probability.name, probability.datatype, probability.dims) == (
        "probability",
        "UINT8",
        (-1, -1),
    )
    assert await client.server_ready()


async def test_text_detector_finds_the_text_and_nothing_else(client: TritonClient) -> None:
    image, boxes = text_image([("TESSERA 2026", (40, 90)), ("auto labels", (300, 250))])
    result = await client.infer(DETECTOR, {"images": image[None]})
    probability = result["probability"]
    assert probability.shape == (1, 320, 640)
    assert probability.dtype == np.uint8
    text = probability[0] > TEXT
    # Every line is found: a good part of each line's box is text, along its length ...
    for x0, y0, x1, y1 in boxes:
        inside = text[y0:y1, x0:x1]
        assert inside.mean() > 0.2, (x0, y0, x1, y1)
        columns = np.flatnonzero(inside.any(axis=0))
        assert columns[-1] - columns[0] > 0.8 * (x1 - x0), (x0, y0, x1, y1)
    # ... and nothing away from the lines is.
    assert not text[~mask_of(boxes, text.shape, margin=8)].any()
    blank = probability[0][~mask_of(boxes, text.shape, margin=24)]
    assert blank.max() < 0.1 * 255


async def test_batcher_sends_concurrent_frames_in_fewer_requests(
    triton: Triton, client: TritonClient
) -> None:
    frames = [
        text_image([(word, (20 + 30 * i, 60 + 40 * i))], size=(256, 320))[0]
        for i, word in enumerate(["one", "two", "three", "four"])
    ]
    frames += [frame[:, ::-1].copy() for frame in frames]  # mirrored: other maps, same shape
    alone = [(await client.infer(DETECTOR, {"images": f[None]}))["probability"][0] for f in frames]
    before = await settled_statistics(client)
    requests_before = client.stats.requests

    batcher = FrameBatcher(client, DETECTOR, linger_s=0.02)
    try:
        results = await asyncio.gather(*(batcher.infer({"images": f}) for f in frames))
    finally:
        await batcher.aclose()

    after = await settled_statistics(client, before.inference_count + len(frames))
    assert after.inference_count - before.inference_count == len(frames)
    assert after.execution_count - before.execution_count < len(frames)
    assert client.stats.requests - requests_before == batcher.stats.requests < len(frames)
    assert batcher.stats.items == len(frames)
    for got, expected in zip(results, alone, strict=True):
        assert got["probability"].shape == expected.shape
        # The same map as alone (ONNX Runtime may differ by rounding in a batch).
        assert np.abs(got["probability"].astype(int) - expected).max() <= 2


async def test_batcher_keeps_shapes_apart_and_respects_the_batch_limit(
    client: TritonClient,
) -> None:
    small = text_image([("a", (10, 40))], size=(64, 64))[0]
    wide = text_image([("b", (10, 40))], size=(64, 128))[0]
    batcher = FrameBatcher(client, DETECTOR, max_batch_size=3, linger_s=0.02)
    try:
        results = await asyncio.gather(
            *(batcher.infer({"images": f}) for f in [small] * 5 + [wide] * 2)
        )
    finally:
        await batcher.aclose()
    assert [r["probability"].shape for r in results] == [(64, 64)] * 5 + [(64, 128)] * 2
    assert max(batcher.stats.batch_sizes) <= 3
    assert batcher.stats.requests == 3  # 3 + 2 small, 2 wide


async def test_batcher_fails_every_caller_of_a_failed_request(client: TritonClient) -> None:
    odd = np.zeros((50, 70, 3), np.uint8)  # sides that are not multiples of 32
    batcher = FrameBatcher(client, DETECTOR, linger_s=0.02)
    try:
        results = await asyncio.gather(
            *(batcher.infer({"images": odd}) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, InferenceFailed) for r in results), results
        ok = await batcher.infer({"images": np.zeros((64, 64, 3), np.uint8)})
        assert ok["probability"].shape == (64, 64)
    finally:
        await batcher.aclose()
    with pytest.raises(ModelNotReady):
        await FrameBatcher(client, "no_such_model").infer({"images": odd})


async def test_unknown_model_or_version_is_a_clear_error(client: TritonClient) -> None:
    with pytest.raises(ModelNotReady) as caught:
        await client.model("no_such_model")
    assert caught.value.model == "no_such_model"
    assert "no_such_model" in str(caught.value)
    assert "unknown model" in caught.value.reason.lower()
    assert caught.value.status == 503

    with pytest.raises(ModelNotReady, match="version 7"):
        await client.model(DETECTOR, version="7")
    with pytest.raises(ModelNotReady):
        await client.infer("no_such_model", {"images": np.zeros((1, 32, 32, 3), np.uint8)})


async def test_inputs_are_checked_before_they_are_sent(client: TritonClient) -> None:
    frame = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"must be uint8, got float32"):
        await client.infer(DETECTOR, {"images": frame.astype(np.float32)})
    with pytest.raises(ValueError, match="expected"):
        await client.infer(DETECTOR, {"images": frame[..., :1]})
    with pytest.raises(ValueError, match="batch of 9"):
        await client.infer(DETECTOR, {"images": np.zeros((9, 32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match="takes inputs"):
        await client.infer(DETECTOR, {"pixels": frame})
    # Triton itself refuses what the model cannot take (sides not multiples of 32).
    with pytest.raises(InferenceFailed, match="rejected"):
        await client.infer(DETECTOR, {"images": np.zeros((1, 50, 70, 3), np.uint8)})


async def test_readiness_is_asked_each_time_and_each_request_is_observed(
    client: TritonClient,
) -> None:
    assert await client.model_ready(DETECTOR)
    assert not await client.model_ready("no_such_model")
    assert not await client.model_ready(DETECTOR, "7")
    seen: list[tuple[str, int, float, str]] = []
    client.on_request = lambda *request: seen.append(request)
    await client.infer(DETECTOR, {"images": np.zeros((2, 64, 64, 3), np.uint8)})
    with pytest.raises(InferenceFailed):
        await client.infer(DETECTOR, {"images": np.zeros((1, 50, 70, 3), np.uint8)})
    assert [(model, batch, outcome) for model, batch, _, outcome in seen] == [
        (DETECTOR, 2, "ok"),
        (DETECTOR, 1, "InferenceFailed"),
    ]
    assert all(seconds > 0 for _, _, seconds, _ in seen)
    async with TritonClient(f"127.0.0.1:{free_port()}", retries=0) as nowhere:
        with pytest.raises(TritonUnavailable):
            await nowhere.model_ready(DETECTOR)


async def test_a_slow_answer_times_out(client: TritonClient) -> None:
    image = np.zeros((1, 640, 640, 3), np.uint8)
    with pytest.raises(TritonTimeout, match=r"did not answer an inference .* within 0.001 s"):
        await client.infer(DETECTOR, {"images": image}, timeout_s=0.001)
    assert (await client.infer(DETECTOR, {"images": image[:, :64, :64]}))["probability"].shape


@pytest.mark.parametrize("scheme", ["", "http://"])
async def test_unreachable_triton_fails_quickly_and_clearly(scheme: str) -> None:
    url = f"{scheme}127.0.0.1:{free_port()}"
    async with TritonClient(url, timeout_s=5, retries=2, backoff_s=0.05) as client:
        assert not await client.server_ready()
        started = time.monotonic()
        with pytest.raises(TritonUnavailable) as caught:
            await client.model(DETECTOR)
        assert time.monotonic() - started < 2
        assert url in str(caught.value)
        assert "unreachable" in str(caught.value)
        assert caught.value.status == 503
        assert client.stats.retries >= 2


def test_settings_read_the_triton_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TRITON_URL", "tessera-triton:8001")
    settings = InferenceSettings(env="dev")
    assert settings.triton_url == "tessera-triton:8001"
    with pytest.raises(ValueError, match="scheme"):
        TritonClient("ftp://somewhere:1")
