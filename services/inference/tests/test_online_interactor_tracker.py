"""Online calls of the GrabCut interactor and the template tracker through the inference
app, as CVAT's UI makes them, with real callers: annotations and ingest on sockets, the
frames read from a real task. Neither function needs Triton, so none is started (the
inference service is pointed at a port nothing listens on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from tessera.devstack.servers import free_port
from tessera.devstack.testing import Enrol, OpenService
from tessera.inference.config import InferenceSettings

from .conftest import InferenceFleet, iou, open_fleet, png

INTERACTOR = "/api/lambda/functions/opencv_grabcut"
TRACKER = "/api/lambda/functions/opencv_template_tracker"
PROBLEM = "application/problem+json"
SIZE = (180, 240)  # height, width


@pytest.fixture
async def cpu_fleet(
    open_service: OpenService,
    service_settings: dict[str, Any],
    annotations_url: str,
    ingest_url: str,
    tmp_path: Path,
) -> AsyncIterator[InferenceFleet]:
    """Inference in-process without Triton, talking to annotations and ingest over HTTP."""
    urls = (annotations_url, ingest_url)
    async with open_fleet(
        open_service, service_settings, urls, tmp_path / "share",
        triton_url=f"127.0.0.1:{free_port()}", triton_retries=0,
    ) as opened:  # fmt: skip
        yield opened


def background(seed: int) -> np.ndarray:
    """A greenish, softly textured RGB background of SIZE."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (*SIZE, 3)).astype(np.float32), (0, 0), 2)
    base = np.array([70, 140, 80], np.float32)
    image: np.ndarray = np.clip(base + noise, 0, 255).astype(np.uint8)
    return image


def blob_scene() -> tuple[np.ndarray, np.ndarray]:
    """A frame with a filled red blob (an ellipse and a box joined), and the blob's mask."""
    image = background(1)
    mask = np.zeros(SIZE, np.uint8)
    cv2.ellipse(mask, (110, 90), (50, 34), 20, 0, 360, 1, -1)
    cv2.rectangle(mask, (140, 100), (175, 140), 1, -1)
    image[mask.astype(bool)] = (200, 40, 35)
    return image, mask.astype(bool)


def answer_mask(answer: dict[str, Any]) -> np.ndarray:
    """The full-frame mask of an interactor's answer (`mask` covers `bounds`)."""
    left, top, right, bottom = answer["bounds"]
    rows = np.array(answer["mask"], np.uint8)
    assert rows.shape == (bottom - top + 1, right - left + 1)
    assert set(np.unique(rows)) <= {0, 1}
    full = np.zeros(SIZE, bool)
    full[top : bottom + 1, left : right + 1] = rows.astype(bool)
    return full


def polygon_mask(points: list[list[float]]) -> np.ndarray:
    """The pixels whose centres the polygon covers."""
    canvas = np.zeros(SIZE, np.uint8)
    shifted = np.round((np.array(points) - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [shifted], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def fields(response: httpx.Response) -> list[str]:
    """The fields a problem names."""
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error["field"] for error in response.json().get("errors", [])]


async def test_an_interactor_call_segments_the_clicked_object(cpu_fleet: InferenceFleet) -> None:
    fleet = cpu_fleet
    image, blob = blob_scene()
    task_id = await fleet.create_task([png(image)], [{"name": "thing", "type": "polygon"}])
    job = (await fleet.jobs(task_id))[0]
    client = fleet.inference.client

    # As CVAT's UI: one positive click, no negative one, CVAT's `type` alongside.
    clicked = await client.post(
        INTERACTOR,
        json={"task": task_id, "frame": 0, "pos_points": [[105, 85]], "neg_points": [],
              "type": "interactor"},
    )  # fmt: skip
    assert clicked.status_code == 200, clicked.text
    assert clicked.headers["content-type"] == "application/json"
    answer = clicked.json()
    assert set(answer) == {"mask", "points", "bounds"}
    assert mask_iou(answer_mask(answer), blob) >= 0.85
    assert mask_iou(polygon_mask(answer["points"]), blob) >= 0.85
    rows, cols = np.nonzero(blob)
    assert iou(answer["bounds"], (cols.min(), rows.min(), cols.max(), rows.max())) >= 0.85

    # Through the job, with a box first and a negative click on the background.
    boxed = await client.post(
        INTERACTOR,
        json={"job": job["id"], "frame": 0, "pos_points": [[120, 95]],
              "neg_points": [[20, 20]], "obj_bbox": [[50, 45], [185, 150]]},
    )  # fmt: skip
    assert boxed.status_code == 200, boxed.text
    assert mask_iou(answer_mask(boxed.json()), blob) >= 0.85


async def test_bad_interactor_calls_name_the_field(cpu_fleet: InferenceFleet, enrol: Enrol) -> None:
    fleet = cpu_fleet
    image, _ = blob_scene()
    task_id = await fleet.create_task([png(image)], [{"name": "thing"}])
    client = fleet.inference.client
    call = {"task": task_id, "frame": 0, "neg_points": []}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**call, "pos_points": [[100, 80], [250, 10]]}, 400, "body.pos_points[1]"),
        ({**call, "pos_points": [[100, "x"]]}, 400, "body.pos_points[0]"),
        ({**call}, 400, "body.pos_points"),
        ({**call, "pos_points": []}, 400, "body.pos_points"),
        ({**call, "pos_points": "here"}, 400, "body.pos_points"),
        ({**call, "pos_points": [[100, 80]], "neg_points": [[-1, 5]]}, 400,
         "body.neg_points[0]"),
        ({**call, "pos_points": [[100, 80]], "obj_bbox": [[10, 10], [400, 100]]}, 400,
         "body.obj_bbox"),
        ({**call, "pos_points": [[100, 80]], "obj_bbox": [[120, 120], [200, 170]]}, 400,
         "body.pos_points[0]"),
        ({**call, "frame": 1, "pos_points": [[100, 80]]}, 400, "body.frame"),
        ({"frame": 0, "pos_points": [[100, 80]]}, 400, "body.task"),
    ]  # fmt: skip
    for body, status, field in cases:
        answered = await client.post(INTERACTOR, json=body)
        assert answered.status_code == status, (body, answered.text)
        assert fields(answered) == [field], (body, answered.text)

    # Somebody who may not see the task learns nothing about it.
    eve = await enrol(fleet.inference, "eve")
    hidden = await eve.client.post(INTERACTOR, json={**call, "pos_points": [[100, 80]]})
    assert hidden.status_code in (403, 404)
    assert hidden.headers["content-type"] == PROBLEM


def tracker_frames() -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """Three frames of one textured object moving by (+12, +5), then (+10, -4), over a
    textured background, and the object's box on each."""
    rng = np.random.default_rng(7)
    patch = cv2.resize(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8), (40, 32),
                       interpolation=cv2.INTER_NEAREST)  # fmt: skip
    frames, boxes = [], []
    for x, y in ((60, 70), (72, 75), (82, 71)):
        frame = background(3)
        frame[y : y + 32, x : x + 40] = patch
        frames.append(frame)
        boxes.append((float(x), float(y), float(x + 40), float(y + 32)))
    return frames, boxes


async def test_a_tracker_follows_an_object_over_three_frames(cpu_fleet: InferenceFleet) -> None:
    fleet = cpu_fleet
    frames, boxes = tracker_frames()
    task_id = await fleet.create_task([png(frame) for frame in frames], [{"name": "thing"}])
    job = (await fleet.jobs(task_id))[0]
    client = fleet.inference.client

    # As CVAT's UI: the state is made on the frame the box was drawn on, with no states.
    started = await client.post(
        TRACKER, json={"task": task_id, "frame": 0, "shapes": [list(boxes[0])]}
    )
    assert started.status_code == 200, started.text
    assert started.headers["content-type"] == "application/json"
    answer = started.json()
    assert set(answer) == {"shapes", "states"}
    assert answer["shapes"] == [list(boxes[0])]
    (state,) = answer["states"]
    assert isinstance(state, str)
    assert len(state) > 100

    shape = boxes[0]
    for frame in (1, 2):
        body = {"job": job["id"], "frame": frame, "shapes": [list(shape)], "states": [state]}
        tracked = await client.post(TRACKER, json=body)
        assert tracked.status_code == 200, tracked.text
        (found,), (state,) = tracked.json()["shapes"], tracked.json()["states"]
        assert max(abs(a - b) for a, b in zip(found, boxes[frame], strict=True)) <= 1.5, (
            frame, found, boxes[frame],
        )  # fmt: skip
        shape = tuple(found)

    # Two objects, one starting here (a null state), one carried on.
    both = await client.post(
        TRACKER,
        json={"task": task_id, "frame": 2, "shapes": [list(shape), [10, 10, 40, 40]],
              "states": [state, None]},
    )  # fmt: skip
    assert both.status_code == 200, both.text
    assert len(both.json()["states"]) == 2
    assert both.json()["shapes"][1] == [10.0, 10.0, 40.0, 40.0]


async def test_tampered_states_and_bad_shapes_are_refused(cpu_fleet: InferenceFleet) -> None:
    fleet = cpu_fleet
    frames, boxes = tracker_frames()
    task_id = await fleet.create_task([png(frames[0]), png(frames[1])], [{"name": "thing"}])
    client = fleet.inference.client
    started = await client.post(
        TRACKER, json={"task": task_id, "frame": 0, "shapes": [list(boxes[0])]}
    )
    assert started.status_code == 200, started.text
    (state,) = started.json()["states"]

    # One character changed in the middle of the signed state.
    middle = len(state) // 2
    tampered = state[:middle] + ("A" if state[middle] != "A" else "B") + state[middle + 1 :]
    refused = await client.post(
        TRACKER,
        json={"task": task_id, "frame": 1, "shapes": [list(boxes[0]), list(boxes[0])],
              "states": [state, tampered]},
    )  # fmt: skip
    assert refused.status_code == 400, refused.text
    assert fields(refused) == ["body.states[1]"]
    (error,) = refused.json()["errors"]
    assert error["problem"] == "signature"
    assert "Invalid or expired tracker state" in refused.json()["detail"]

    call = {"task": task_id, "frame": 1}
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({**call, "shapes": [list(boxes[0])], "states": [state[:40]]}, "body.states[0]",
         "malformed"),
        ({**call, "shapes": [list(boxes[0])], "states": [42]}, "body.states[0]", "malformed"),
        ({**call, "shapes": [list(boxes[0])], "states": "abc"}, "body.states", None),
        ({**call, "shapes": [list(boxes[0])], "states": [state, state]}, "body.states", None),
        ({**call, "shapes": [[1, 2, 3]]}, "body.shapes[0]", None),
        ({**call, "shapes": [[500, 500, 600, 600]]}, "body.shapes[0]", None),
        ({**call, "shapes": {"a": 1}}, "body.shapes", None),
        ({"task": task_id, "frame": 2, "shapes": [list(boxes[0])]}, "body.frame", None),
    ]  # fmt: skip
    for body, field, problem in cases:
        answered = await client.post(TRACKER, json=body)
        assert answered.status_code == 400, (body, answered.text)
        assert fields(answered) == [field], (body, answered.text)
        assert answered.json()["errors"][0].get("problem") == problem, answered.text


async def test_a_state_signed_with_another_secret_is_refused(
    cpu_fleet: InferenceFleet, open_service: OpenService
) -> None:
    fleet = cpu_fleet
    frames, boxes = tracker_frames()
    task_id = await fleet.create_task([png(frames[0]), png(frames[1])], [{"name": "thing"}])
    peers = {"annotations_url": fleet.annotations_url, "ingest_url": fleet.ingest_url,
             "triton_url": f"127.0.0.1:{free_port()}", "triton_retries": 0}  # fmt: skip
    first = await fleet.inference.client.post(
        TRACKER, json={"task": task_id, "frame": 0, "shapes": [list(boxes[0])]}
    )
    assert first.status_code == 200, first.text
    (state,) = first.json()["states"]
    call = {"task": task_id, "frame": 1, "shapes": [list(boxes[0])], "states": [state]}

    rotated = {"tracker_state_secret": "a newer tracker state secret"}
    async with open_service("inference", **peers, **rotated) as other:
        refused = await other.client.post(TRACKER, json=call)
    assert refused.status_code == 400, refused.text
    assert fields(refused) == ["body.states[0]"]
    assert refused.json()["errors"][0]["problem"] == "signature"

    # The old secret still listed as a previous one: the track goes on.
    previous = {"tracker_state_previous_secrets": ["tessera development tracker state secret"]}
    async with open_service("inference", **peers, **rotated, **previous) as other:
        taken = await other.client.post(TRACKER, json=call)
    assert taken.status_code == 200, taken.text
    (found,) = taken.json()["shapes"]
    assert max(abs(a - b) for a, b in zip(found, boxes[1], strict=True)) <= 1.5


def test_production_needs_its_own_tracker_secret() -> None:
    prod: dict[str, Any] = {
        "env": "prod",
        "database_url": "postgresql+asyncpg://tessera:elsewhere@db:5432/tessera",
        "bootstrap_admin_password": "not the development one",
    }
    with pytest.raises(ValidationError, match="TESSERA_TRACKER_STATE_SECRET"):
        InferenceSettings(**prod)
    with pytest.raises(ValidationError, match="tracker_state_secret"):
        InferenceSettings(**prod, tracker_state_secret="too short")
    settings = InferenceSettings(**prod, tracker_state_secret="a production tracker secret")
    assert settings.tracker_state_secret.get_secret_value() == "a production tracker secret"
