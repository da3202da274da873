"""The template-matching tracker and its signed states, on synthetic video: a textured
patch on a differently textured background, moved by known offsets and slowly scaled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tessera.inference.trackers import (
    TemplateTrackerFunction,
    TrackerInputError,
    TrackerStateCodec,
    TrackerStateError,
    TrackState,
    derive_key,
    encode_payload,
    track,
)

Image = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]
SECRET = b"tracker-test-secret-0123456789ab"
CONTEXT = "tracker.template"


def video(
    *,
    frames: int = 10,
    size: tuple[int, int] = (64, 48),
    start: tuple[int, int] = (60, 80),
    step: tuple[int, int] = (7, 3),
    growth: float = 0.02,
    seed: int = 0,
) -> tuple[list[Image], list[Box]]:
    """320x240 RGB frames and the patch's true box on each: it moves `step` pixels and
    grows by `growth` per frame."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    cells = rng.integers(0, 256, (h // 6, w // 6, 3), dtype=np.uint8)
    background = cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR)
    blocks = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(cv2.resize(blocks, size, interpolation=cv2.INTER_NEAREST), (3, 3), 0)
    images, boxes = [], []
    for t in range(frames):
        scale = (1 + growth) ** t
        ow, oh = round(size[0] * scale), round(size[1] * scale)
        x, y = start[0] + step[0] * t, start[1] + step[1] * t
        frame = background.copy()
        frame[y : y + oh, x : x + ow] = cv2.resize(
            texture, (ow, oh), interpolation=cv2.INTER_LINEAR
        )
        noisy = frame.astype(np.float64) + rng.normal(0, 4, frame.shape)
        images.append(np.clip(noisy, 0, 255).astype(np.uint8))
        boxes.append((x, y, x + ow, y + oh))
    return images, boxes


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def codec(**kwargs: Any) -> TrackerStateCodec:
    kwargs.setdefault("context", CONTEXT)
    return TrackerStateCodec(kwargs.pop("secret", SECRET), **kwargs)


def first_state() -> tuple[TrackerStateCodec, list[Image], str]:
    images, boxes = video(frames=2)
    states = codec()
    answer = track(images[0], [list(boxes[0])], None, codec=states)
    return states, images, answer.states[0]


@pytest.mark.parametrize(
    "motion",
    [
        {"step": (7, 3), "growth": 0.02},
        {"step": (12, -5), "growth": -0.02},
        {"step": (3, 2), "growth": 0.03, "size": (30, 30), "seed": 3},
    ],
    ids=["right-growing", "fast-shrinking", "small"],
)
def test_the_box_follows_the_object_through_motion_and_scale(motion: dict[str, Any]) -> None:
    images, truth = video(**motion)
    states = codec()
    answer = track(images[0], [list(truth[0])], None, codec=states)
    assert answer.shapes == [[float(v) for v in truth[0]]]
    assert answer.scores == [None]
    for image, box in zip(images[1:], truth[1:], strict=True):
        answer = track(image, answer.shapes, answer.states, codec=states)
        (shape,) = answer.shapes
        assert box_iou(shape, box) >= 0.85, (shape, box)
        assert max(abs(p - q) for p, q in zip(shape, box, strict=True)) <= 3.0, (shape, box)
        assert answer.scores[0] is not None
        assert answer.scores[0] > 0.8


def test_several_objects_are_tracked_in_one_call_each_with_its_state() -> None:
    images, truth = video(frames=4)
    others, other_truth = video(frames=4, start=(200, 150), size=(40, 40), step=(-4, -2), seed=7)
    # Paste the second patch (and its own motion) into the first video.
    frames = []
    for image, other, (x1, y1, x2, y2) in zip(images, others, other_truth, strict=True):
        frame = image.copy()
        frame[y1:y2, x1:x2] = other[y1:y2, x1:x2]
        frames.append(frame)
    states = codec()
    answer = track(frames[0], [list(truth[0]), list(other_truth[0])], [None, None], codec=states)
    for t in range(1, 4):
        answer = track(frames[t], answer.shapes, answer.states, codec=states)
        assert box_iou(answer.shapes[0], truth[t]) >= 0.85
        assert box_iou(answer.shapes[1], other_truth[t]) >= 0.85


def test_grey_frames_are_tracked_too() -> None:
    images, truth = video(frames=3)
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]
    states = codec()
    answer = track(grey[0], [list(truth[0])], None, codec=states)
    for image, box in zip(grey[1:], truth[1:], strict=True):
        before = image.copy()
        answer = track(image, answer.shapes, answer.states, codec=states)
        np.testing.assert_array_equal(image, before)
        assert box_iou(answer.shapes[0], box) >= 0.85


def test_an_object_that_vanishes_keeps_its_last_box() -> None:
    states, images, token = first_state()
    start = states.open(token).box
    flat = np.full_like(images[1], 128)
    answer = track(flat, [list(start)], [token], codec=states)
    assert answer.scores[0] is not None
    assert answer.scores[0] < 0.3
    assert answer.shapes[0] == pytest.approx(list(start), abs=0.01)


def test_states_round_trip() -> None:
    clock = Clock()
    states = codec(clock=clock)
    template = np.arange(48 * 36, dtype=np.uint32).astype(np.uint8).reshape(36, 48)
    state = TrackState(
        box=(10.5, 20.25, 74.5, 68.0),
        velocity=(1.5, -2.0),
        frame_size=(320, 240),
        template=template,
    )
    token = states.seal(state)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    opened = states.open(token)
    assert opened.box == state.box
    assert opened.velocity == state.velocity
    assert opened.frame_size == state.frame_size
    assert opened.issued_at == int(clock.now)
    np.testing.assert_array_equal(opened.template, template)


def test_the_same_calls_give_the_same_states() -> None:
    images, truth = video(frames=3)
    runs = []
    for _ in range(2):
        states = codec(clock=Clock())
        answer = track(images[0], [list(truth[0])], None, codec=states)
        tokens = list(answer.states)
        for image in images[1:]:
            answer = track(image, answer.shapes, answer.states, codec=states)
            tokens += answer.states
        runs.append(tokens)
    assert runs[0] == runs[1]


def test_a_state_stays_small_however_large_the_box() -> None:
    image = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    answer = track(image, [[10, 10, 1900, 1070]], None, codec=codec())
    assert len(answer.states[0]) < 3300
    assert codec().open(answer.states[0]).template.shape == (27, 48)


def flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("index", [0, 9, 30, 50, -40, -1], ids=lambda i: f"byte{i}")
def test_a_state_with_one_byte_changed_is_refused(index: int) -> None:
    states, images, token = first_state()
    with pytest.raises(TrackerStateError) as caught:
        track(images[1], [[60, 80, 124, 128]], [flip_byte(token, index)], codec=states)
    assert caught.value.problem == "signature"
    assert caught.value.field == "states"
    assert caught.value.index == 0
    assert "states[0]" in str(caught.value)


def test_a_state_with_one_character_changed_is_refused() -> None:
    states, _, token = first_state()
    for position in (0, len(token) // 2, len(token) - 1):
        changed = (
            token[:position] + ("B" if token[position] != "B" else "C") + token[position + 1 :]
        )
        with pytest.raises(TrackerStateError):
            states.open(changed)


def test_a_state_signed_with_another_secret_is_refused() -> None:
    _, _, token = first_state()
    other = codec(secret=b"another-secret-0123456789abcdefg")
    with pytest.raises(TrackerStateError, match="signature") as caught:
        other.open(token)
    assert caught.value.problem == "signature"


def test_a_state_of_another_function_is_refused() -> None:
    _, _, token = first_state()
    with pytest.raises(TrackerStateError) as caught:
        codec(context="another.tracker").open(token)
    assert caught.value.problem == "signature"


def test_a_state_signed_before_a_secret_rotation_is_still_accepted() -> None:
    _, _, token = first_state()
    rotated = codec(secret=b"the-new-secret-0123456789abcdefgh", previous_secrets=[SECRET])
    assert rotated.open(token).frame_size == (320, 240)


@pytest.mark.parametrize("keep", [1, 10, 40, -1, -4, -43], ids=lambda k: f"keep{k}")
def test_a_truncated_state_is_refused(keep: int) -> None:
    states, _, token = first_state()
    with pytest.raises(TrackerStateError) as caught:
        states.open(token[:keep])
    assert caught.value.problem in {"malformed", "signature"}


def test_an_oversized_state_is_refused_before_decoding() -> None:
    states = codec(max_token_chars=4096)
    with pytest.raises(TrackerStateError, match="more than 4096") as caught:
        states.open("A" * 4097)
    assert caught.value.problem == "oversized"


@pytest.mark.parametrize("token", [42, "", "not base64!", "A" * 44, b"bytes"], ids=repr)
def test_a_malformed_state_is_refused(token: object) -> None:
    with pytest.raises(TrackerStateError) as caught:
        codec().open(token)
    assert caught.value.problem in {"malformed", "signature"}


def sign(payload: bytes, secret: bytes = SECRET, context: str = CONTEXT) -> str:
    """A token as the format defines it, for payloads the codec would not write."""
    tagged = struct.pack("<H", len(context)) + context.encode() + payload
    tag = hmac.new(derive_key(secret), tagged, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()


def test_the_token_format_is_the_documented_one() -> None:
    _, _, token = first_state()
    payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[:-32]
    assert sign(payload) == token


def test_a_state_of_another_format_version_is_refused() -> None:
    state = TrackState((1, 1, 20, 20), (0, 0), (320, 240), np.full((8, 8), 7, np.uint8))
    payload = encode_payload(state, issued_at=int(Clock().now))
    with pytest.raises(TrackerStateError, match="version 2 is not supported") as caught:
        codec(clock=Clock()).open(sign(b"\x02" + payload[1:]))
    assert caught.value.problem == "version"


def test_a_signed_but_corrupt_state_is_refused() -> None:
    state = TrackState((1, 1, 20, 20), (0, 0), (320, 240), np.full((8, 8), 7, np.uint8))
    payload = encode_payload(state, issued_at=int(Clock().now))
    for bad in (payload[:-3], payload + b"extra", payload[:20]):
        with pytest.raises(TrackerStateError) as caught:
            codec(clock=Clock()).open(sign(bad))
        assert caught.value.problem == "corrupt"


def test_an_expired_state_is_refused() -> None:
    clock = Clock()
    states = codec(clock=clock)
    images, truth = video(frames=1)
    token = track(images[0], [list(truth[0])], None, codec=states).states[0]
    clock.now += 8 * 3600 - 1
    states.open(token)
    clock.now += 2
    with pytest.raises(TrackerStateError, match="expired") as caught:
        states.open(token)
    assert caught.value.problem == "expired"


def test_a_state_for_frames_of_another_size_is_refused() -> None:
    states, images, token = first_state()
    larger = cv2.resize(images[1], (640, 480))
    with pytest.raises(TrackerStateError, match="320x240 frame") as caught:
        track(larger, [[60, 80, 124, 128]], [token], codec=states)
    assert caught.value.problem == "frame_size"


def test_the_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        TrackerStateCodec("short")


IMAGE = video(frames=1)[0][0]
BAD_CALLS: list[tuple[str, Any, Any, str, str]] = [
    ("three numbers", [[1, 2, 3]], None, "shapes", "four numbers"),
    ("strings", [["1", "2", "3", "4"]], None, "shapes", "four numbers"),
    ("nan", [[1, 2, float("nan"), 4]], None, "shapes", "not finite"),
    ("outside", [[400, 10, 450, 60]], None, "shapes", "outside the 320x240 image"),
    ("huge", [[0, 0, 1e300, 60]], None, "shapes", "beyond"),
    ("too small", [[10, 10, 12, 60]], None, "shapes", "too small"),
    ("not a list", "10,10,60,60", None, "shapes", "list"),
    ("too many shapes", [[10, 10, 60, 60]] * 300, None, "shapes", "at most"),
    ("more states", [[10, 10, 60, 60]], [None, None], "states", "one state per shape"),
    ("states not a list", [[10, 10, 60, 60]], "abc", "states", "list"),
]


@pytest.mark.parametrize(
    ("shapes", "states", "field", "message"),
    [c[1:] for c in BAD_CALLS],
    ids=[c[0] for c in BAD_CALLS],
)
def test_bad_calls_name_the_field(shapes: Any, states: Any, field: str, message: str) -> None:
    with pytest.raises(TrackerInputError, match=re.escape(message)) as caught:
        track(IMAGE, shapes, states, codec=codec())
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_every_state_is_checked_before_any_object_is_tracked() -> None:
    states, images, token = first_state()
    with pytest.raises(TrackerStateError) as caught:
        track(images[1], [[60, 80, 124, 128]] * 2, [token, token[:-2]], codec=states)
    assert caught.value.index == 1


def test_the_image_must_be_decoded_uint8() -> None:
    with pytest.raises(TrackerInputError) as caught:
        track(IMAGE.astype(np.float32), [[10, 10, 60, 60]], None, codec=codec())
    assert caught.value.field == "image"


def test_the_registry_entry_takes_its_options_and_tracks() -> None:
    function = TemplateTrackerFunction(options={"template_side": 32, "scales": [0.95, 1, 1.05]})
    assert function.tracker.params.scales == (0.95, 1.0, 1.05)
    images, truth = video(frames=3)
    states = codec()
    answer = function(images[0], [list(truth[0])], None, codec=states)
    assert states.open(answer.states[0]).template.shape == (24, 32)
    for image, box in zip(images[1:], truth[1:], strict=True):
        answer = function(image, answer.shapes, answer.states, codec=states)
        assert box_iou(answer.shapes[0], box) >= 0.85


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"templat_side": 32}, "unknown tracker options: templat_side"),
        ({"template_side": 32.5}, "whole number"),
        ({"scales": "1"}, "list of numbers"),
        ({"template_side": 4}, "out of range: template_side"),
    ],
)
def test_bad_registry_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TemplateTrackerFunction(options=options)
