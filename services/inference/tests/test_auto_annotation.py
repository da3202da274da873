"""CVAT's auto-annotation requests (`/api/lambda/requests`) with real services: tasks of
images with drawn text (annotations and ingest on sockets, the text detector on the
local Triton), requests queued on JetStream and done by workers of other replicas, the
task's annotations read back; conflicts, cancels, refusals, failures with their reason,
and a worker killed mid-request whose request is resumed without duplicated shapes."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, cast

import httpx
import nats
import numpy as np
import orjson
import pytest
from cvat_sdk.api_client import ApiClient, Configuration, models  # type: ignore[import-untyped]
from cvat_sdk.api_client.exceptions import ApiException  # type: ignore[import-untyped]
from cvat_sdk.api_client.model_utils import (  # type: ignore[import-untyped]
    validate_and_convert_types,
)
from nats.aio.msg import Msg

from tessera.devstack.servers import Triton, free_port
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    ServiceHandle,
    Stack,
    serve_in_thread,
    settings_for,
)
from tessera.gateway.app import create_app as create_gateway
from tessera.gateway.config import GatewaySettings
from tessera.inference.app import create_app as create_inference
from tessera.inference.auto_annotation.documents import Batch, fingerprint, mask_as_polygon
from tessera.inference.auto_annotation.runner import AutoAnnotationRunner, RunnerConfig
from tessera.inference.auto_annotation.schemas import FunctionCall, FunctionCallRequest
from tessera.inference.state import InferenceState
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient

from .conftest import Box, InferenceFleet, iou, open_fleet, png, text_image

DETECTOR = "ppocr_v4_det"
REQUESTS = "/api/lambda/requests"
PROBLEM = "application/problem+json"
# Small batches, so that a few frames make several: the detector gets two frames at a
# time, and a batch is written every two frames.
SMALL = {
    "auto_annotation_detect_frames": 2,
    "auto_annotation_write_frames": 2,
    "auto_annotation_retry_delay_s": 0.2,
}
LINES = [
    [("TESSERA 2026", (40, 90)), ("auto labels", (300, 250))],
    [],
    [("one line only", (60, 160))],
    [("ABC", (30, 60)), ("queue depth", (200, 150)), ("x 42", (420, 280))],
    [("the last frame", (100, 200))],
]


class WorkerKilled(BaseException):
    """A worker's process dying at that point: nothing of the runner runs after it."""


def frames_with_text(lines: Sequence[Sequence[tuple[str, tuple[int, int]]]]) -> tuple[
    list[bytes], list[list[Box]]
]:  # fmt: skip
    """PNG frames with these lines of text drawn on them, and each frame's line boxes."""
    images, boxes = [], []
    for frame_lines in lines:
        image, found = text_image(list(frame_lines)) if frame_lines else (
            np.full((320, 640, 3), 255, np.uint8), []
        )  # fmt: skip
        images.append(png(image))
        boxes.append(found)
    return images, boxes


@pytest.fixture
async def fleet(
    open_service: OpenService,
    *,
    service_settings: dict[str, Any],
    annotations_url: str,
    ingest_url: str,
    triton: Triton,
    tmp_path: Path,
) -> AsyncIterator[InferenceFleet]:
    """Inference in-process running no workers (its requests stay queued unless a test
    runs them, or opens a worker replica), annotations and ingest on sockets."""
    urls = (annotations_url, ingest_url)
    async with open_fleet(
        open_service, service_settings, urls, tmp_path / "share", triton_url=triton.url,
        auto_annotation_workers=0, **SMALL,
    ) as opened:  # fmt: skip
        yield opened


def worker_replica(
    open_service: OpenService, fleet: InferenceFleet, triton_url: str, **overrides: Any
) -> AbstractAsyncContextManager[ServiceHandle]:
    """Another inference replica, with a worker of the auto-annotation queue."""
    settings = {"auto_annotation_workers": 1, **SMALL, **overrides}
    return open_service(
        "inference", annotations_url=fleet.annotations_url, ingest_url=fleet.ingest_url,
        triton_url=triton_url, **settings,
    )  # fmt: skip


def state_of(service: ServiceHandle) -> InferenceState:
    state = service.app.state.service
    assert isinstance(state, InferenceState)
    return state


def runner_of(
    service: ServiceHandle,
    *,
    annotations: AnnotationsClient | None = None,
    ingest: IngestClient | None = None,
) -> AutoAnnotationRunner:
    """A worker's request handler on this replica's clients (or on the ones given)."""
    state = state_of(service)
    auto = state.auto_annotations
    return AutoAnnotationRunner(
        auto.repository, state.requests, registry=state.registry, runners=auto.runners,
        annotations=annotations or state.annotations, ingest=ingest or state.ingest,
        queue=auto.queue, config=RunnerConfig(detect_frames=2, write_frames=2),
    )  # fmt: skip


async def wait_for(
    client: httpx.AsyncClient, rq_id: str, *, timeout_s: float = 120.0
) -> dict[str, Any]:
    """A request once it has finished or failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        answered = await client.get(f"{REQUESTS}/{rq_id}")
        assert answered.status_code == 200, answered.text
        body: dict[str, Any] = answered.json()
        if body["status"] in ("finished", "failed"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"request {rq_id} did not end in {timeout_s} s")


async def shapes_of(fleet: InferenceFleet, task_id: int) -> list[dict[str, Any]]:
    answered = await fleet.annotations.get(f"/api/tasks/{task_id}/annotations")
    assert answered.status_code == 200, answered.text
    shapes: list[dict[str, Any]] = answered.json()["shapes"]
    return shapes


async def add_manual_box(fleet: InferenceFleet, task_id: int, frame: int, label_id: int) -> None:
    body = {"tags": [], "tracks": [], "shapes": [{
        "type": "rectangle", "frame": frame, "label_id": label_id, "points": [1, 1, 20, 20],
        "source": "manual", "occluded": False, "outside": False, "z_order": 0, "rotation": 0,
        "group": 0, "attributes": [],
    }]}  # fmt: skip
    added = await fleet.annotations.patch(
        f"/api/tasks/{task_id}/annotations", params={"action": "create"}, json=body
    )
    assert added.status_code == 200, added.text


def assert_boxes_text(
    shapes: Sequence[dict[str, Any]], boxes: Sequence[Sequence[Box]], label_id: int
) -> None:
    """Each frame has one auto rectangle of `label_id` on each of its text lines, and no
    other auto shape."""
    auto = [shape for shape in shapes if shape["source"] == "auto"]
    by_frame = Counter(shape["frame"] for shape in auto)
    assert by_frame == Counter({f: len(lines) for f, lines in enumerate(boxes) if lines})
    for shape in auto:
        assert (shape["type"], shape["label_id"]) == ("rectangle", label_id)
        assert 0.6 <= shape["score"] <= 1, shape
        best = max(iou(shape["points"], line) for line in boxes[shape["frame"]])
        assert best >= 0.5, (shape, boxes[shape["frame"]])
    assert len({fingerprint(shape) for shape in auto}) == len(auto), "duplicated shapes"


async def test_a_request_boxes_the_text_of_every_frame_with_scores(
    fleet: InferenceFleet, open_service: OpenService, triton: Triton, stack: Stack
) -> None:
    images, boxes = frames_with_text(LINES)
    task_id = await fleet.create_task(images, [{"name": "text"}, {"name": "car"}], segment_size=3)
    labels = await fleet.labels(task_id)
    await add_manual_box(fleet, task_id, 1, labels["car"])
    client = fleet.inference.client

    # Progress and status as the event stream tells them.
    events: list[dict[str, Any]] = []

    async def on_event(msg: Msg) -> None:
        events.append(orjson.loads(msg.data))

    connection = await nats.connect(stack.nats.url, token=stack.nats.token)
    subscription = await connection.subscribe("inference.requests.updated", cb=on_event)

    created = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
    assert created.status_code == 200, created.text
    call = created.json()
    FunctionCall.model_validate(call)
    assert call["status"] == "queued"
    assert (call["progress"], call["exc_info"], call["started"]) == (0, None, None)
    assert call["function"] == {"id": DETECTOR, "threshold": None, "task": task_id}
    rq_id = call["id"]
    assert rq_id.startswith("inference-autoannotate-task-")

    # One request per task: a second one, of the task or of one of its jobs, is a 409.
    again = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
    first_job = (await fleet.jobs(task_id))[0]
    of_job = await client.post(
        REQUESTS, json={"function": DETECTOR, "task": task_id, "job": first_job["id"]}
    )
    for conflict in (again, of_job):
        assert conflict.status_code == 409, conflict.text
        assert conflict.headers["content-type"] == PROBLEM
        assert conflict.json()["rq_id"] == rq_id
        assert f"#{task_id}" in conflict.json()["detail"]

    # A replica with a worker takes it from the queue; any replica answers for it.
    async with worker_replica(open_service, fleet, triton.url) as replica:
        ended = await wait_for(client, rq_id)
        seen_by_worker = await replica.client.get(f"{REQUESTS}/{rq_id}")
    assert ended["status"] == "finished", ended
    assert ended["progress"] == 100
    assert ended["exc_info"] is None
    assert ended["started"] is not None
    assert ended["ended"] is not None
    assert seen_by_worker.json()["status"] == "finished"

    shapes = await shapes_of(fleet, task_id)
    assert_boxes_text(shapes, boxes, labels["text"])
    manual = [shape for shape in shapes if shape["source"] == "manual"]
    assert [(shape["frame"], shape["label_id"]) for shape in manual] == [(1, labels["car"])]

    # Progress was reported throughout: in steps, from 0 to 1, never backwards.
    await asyncio.sleep(0.5)
    await subscription.unsubscribe()
    await connection.close()
    mine = [event for event in events if event["rq_id"] == rq_id]
    assert next(event["status"] for event in mine) == "queued"
    assert mine[-1] == {"rq_id": rq_id, "status": "finished", "progress": 1.0}
    steps = [event["progress"] for event in mine if event["status"] == "started"]
    assert steps == sorted(steps)
    assert any(0 < step < 1 for step in steps), steps

    # The list shows it (finished lately); so does the platform's request endpoint.
    listed = await client.get(REQUESTS)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()] == [rq_id]
    platform = await client.get(f"/api/requests/{rq_id}")
    assert platform.status_code == 200, platform.text
    assert platform.json()["operation"] == {
        "type": "autoannotate:task", "target": "task", "project_id": None,
        "task_id": task_id, "job_id": None, "format": None, "function_id": DETECTOR,
    }  # fmt: skip
    total = sum(len(lines) for lines in boxes)
    assert platform.json()["message"] == f"{total} shapes written on 5 frames."

    # A job's request with cleanup replaces that job's annotations only: the second job
    # (frames 3 and 4) held nothing but the detector's shapes, the first keeps its own.
    second_job = (await fleet.jobs(task_id))[1]
    cleanup = await client.post(REQUESTS, json={
        "function": DETECTOR, "task": task_id, "job": second_job["id"], "cleanup": True,
        "threshold": 0.6, "mapping": {"text": {"name": "car"}},
    })  # fmt: skip
    assert cleanup.status_code == 200, cleanup.text
    assert cleanup.json()["function"] == {
        "id": DETECTOR,
        "threshold": 0.6,
        "task": task_id,
        "job": second_job["id"],
    }
    await runner_of(fleet.inference).run(cleanup.json()["id"], {})
    done = await wait_for(client, cleanup.json()["id"])
    assert done["status"] == "finished", done
    after = await shapes_of(fleet, task_id)
    early = [shape for shape in after if shape["frame"] < 3]
    late = [shape for shape in after if shape["frame"] >= 3]
    assert sorted(map(fingerprint, early)) == sorted(
        fingerprint(shape) for shape in shapes if shape["frame"] < 3
    )
    assert Counter(shape["frame"] for shape in late) == {3: 3, 4: 1}
    assert {(shape["label_id"], shape["source"]) for shape in late} == {(labels["car"], "auto")}


async def create_project(fleet: InferenceFleet, labels: Sequence[str]) -> int:
    """A project with these labels; its id."""
    body = {"name": "inference project", "labels": [{"name": name} for name in labels]}
    created = await fleet.annotations.post("/api/projects", json=body)
    assert created.status_code == 201, created.text
    project_id: int = created.json()["id"]
    return project_id


async def test_a_project_request_annotates_each_task_once_even_when_resumed(
    fleet: InferenceFleet, stack: Stack
) -> None:
    project_id = await create_project(fleet, ["text", "car"])
    first_images, first_boxes = frames_with_text(LINES[:3])
    second_images, second_boxes = frames_with_text(LINES[3:])
    first = await fleet.create_task(first_images, [], project_id=project_id)
    second = await fleet.create_task(second_images, [], project_id=project_id)
    without_data = await fleet.annotations.post(
        "/api/tasks", json={"name": "no data yet", "project_id": project_id}
    )
    assert without_data.status_code == 201, without_data.text
    found = await fleet.annotations.get("/api/labels", params={"project_id": project_id})
    labels = {label["name"]: label["id"] for label in found.json()["results"]}
    client = fleet.inference.client

    events: list[dict[str, Any]] = []

    async def on_event(msg: Msg) -> None:
        events.append(orjson.loads(msg.data))

    connection = await nats.connect(stack.nats.url, token=stack.nats.token)
    subscription = await connection.subscribe("inference.requests.updated", cb=on_event)

    created = await client.post(REQUESTS, json={"function": DETECTOR, "project": project_id})
    assert created.status_code == 200, created.text
    call = created.json()
    rq_id = call["id"]
    assert rq_id.startswith(f"inference-autoannotate-project-{project_id}-")
    assert call["function"] == {
        "id": DETECTOR, "threshold": None, "task": None, "project": project_id,
    }  # fmt: skip
    # cvat-sdk 2.80 reads it: no task, the project as an additional property.
    parsed = validate_and_convert_types(
        call, (models.FunctionCall,), ["received_data"], True, True, Configuration()
    )
    assert (parsed.id, parsed.function.id, parsed.function.task) == (rq_id, DETECTOR, None)
    assert parsed.function["project"] == project_id

    # While it is queued, neither of its tasks takes a request of its own.
    for task_id in (first, second):
        refused = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert (refused.json()["rq_id"], refused.json()["task"]) == (rq_id, task_id)
        assert f"#{task_id}" in refused.json()["detail"]
    platform = (await client.get(f"/api/requests/{rq_id}")).json()
    assert platform["operation"]["type"] == "autoannotate:project"
    assert platform["operation"]["project_id"] == project_id

    state = state_of(fleet.inference)
    appended = 0

    class DiesAfterThirdWrite:
        """The worker dies right after its third batch (the second task's first) was
        stored, before recording it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(state.annotations, name)

        async def import_annotations(self, **kwargs: Any) -> Any:
            nonlocal appended
            written = await state.annotations.import_annotations(**kwargs)
            appended += 1
            if appended == 3:
                raise httpx.ReadError("the worker died")
            return written

    dying = runner_of(fleet.inference, annotations=cast(AnnotationsClient, DiesAfterThirdWrite()))
    with pytest.raises(httpx.ReadError):
        await dying.run(rq_id, {})
    parts = await state.auto_annotations.repository.parts(rq_id)
    assert [(part.task_id, part.done_through) for part in parts] == [(first, 2), (second, None)]
    assert parts[1].pending is not None
    resumed = runner_of(fleet.inference)
    await resumed.clear(rq_id, {})
    await resumed.run(rq_id, {})

    ended = (await client.get(f"{REQUESTS}/{rq_id}")).json()
    assert (ended["status"], ended["progress"]) == ("finished", 100), ended
    total = sum(len(lines) for lines in LINES)
    message = (await client.get(f"/api/requests/{rq_id}")).json()["message"]
    assert message == f"{total} shapes written on 5 frames of 2 tasks."
    for task_id, boxes in ((first, first_boxes), (second, second_boxes)):
        assert_boxes_text(await shapes_of(fleet, task_id), boxes, labels["text"])

    # Progress counted the frames of both tasks: 2 and 3 of 5 in the first, then all.
    await asyncio.sleep(0.5)
    await subscription.unsubscribe()
    await connection.close()
    steps = [event["progress"] for event in events
             if event["rq_id"] == rq_id and event["status"] == "started"]  # fmt: skip
    assert [step for step in steps if 0 < step < 1] == [0.4, 0.6], steps

    # A task's request keeps a project's request out; of two sent together, one passes.
    blocking = await client.post(
        REQUESTS, json={"function": DETECTOR, "task": second, "cleanup": True}
    )
    assert blocking.status_code == 200, blocking.text
    refused = await client.post(REQUESTS, json={"function": DETECTOR, "project": project_id})
    assert refused.status_code == 409, refused.text
    assert (refused.json()["rq_id"], refused.json()["task"]) == (blocking.json()["id"], second)
    assert (await client.delete(f"{REQUESTS}/{blocking.json()['id']}")).status_code == 204
    together = await asyncio.gather(
        client.post(REQUESTS, json={"function": DETECTOR, "project": project_id}),
        client.post(REQUESTS, json={"function": DETECTOR, "task": first}),
    )
    assert sorted(answer.status_code for answer in together) == [200, 409]
    for answer in together:
        if answer.status_code == 200:
            assert (await client.delete(f"{REQUESTS}/{answer.json()['id']}")).status_code == 204

    # A cancel stops the whole request: the second task is neither cleaned nor annotated.
    await add_manual_box(fleet, second, 0, labels["car"])
    cleanup = await client.post(
        REQUESTS, json={"function": DETECTOR, "project": project_id, "cleanup": True}
    )
    cleanup_rq = cleanup.json()["id"]

    class CancelAfterFirstWrite:
        def __getattr__(self, name: str) -> Any:
            return getattr(state.annotations, name)

        async def import_annotations(self, **kwargs: Any) -> Any:
            written = await state.annotations.import_annotations(**kwargs)
            if kwargs["action"] == "append":
                assert (await client.delete(f"{REQUESTS}/{cleanup_rq}")).status_code == 204
            return written

    canceller = cast(AnnotationsClient, CancelAfterFirstWrite())
    await runner_of(fleet.inference, annotations=canceller).run(cleanup_rq, {})
    stopped = (await client.get(f"{REQUESTS}/{cleanup_rq}")).json()
    assert (stopped["status"], stopped["exc_info"]) == ("failed", "Cancelled by admin.")
    assert Counter(shape["frame"] for shape in await shapes_of(fleet, first)) == {0: 2}
    kept = await shapes_of(fleet, second)
    assert ("manual", 0) in {(shape["source"], shape["frame"]) for shape in kept}
    assert len(kept) == sum(len(lines) for lines in second_boxes) + 1


async def test_jobs_and_frames_requests_write_only_there(fleet: InferenceFleet) -> None:
    images, boxes = frames_with_text(LINES)
    task_id = await fleet.create_task(images, [{"name": "text"}], segment_size=2)
    labels = await fleet.labels(task_id)
    jobs = [job["id"] for job in await fleet.jobs(task_id)]  # frames 0-1, 2-3, 4
    assert len(jobs) == 3
    client = fleet.inference.client
    runner = runner_of(fleet.inference)

    # Some frames: only they get shapes.
    created = await client.post(
        REQUESTS, json={"function": DETECTOR, "task": task_id, "frames": [3, 0, 3]}
    )
    assert created.status_code == 200, created.text
    assert created.json()["function"] == {
        "id": DETECTOR, "threshold": None, "task": task_id, "frames": [0, 3],
    }  # fmt: skip
    await runner.run(created.json()["id"], {})
    assert (await wait_for(client, created.json()["id"]))["status"] == "finished"
    written = await shapes_of(fleet, task_id)
    assert Counter(shape["frame"] for shape in written) == {0: 2, 3: 3}
    assert {shape["source"] for shape in written} == {"auto"}

    # Some jobs, with cleanup: the first and the last job are replaced, the middle one
    # (frames 2 and 3) keeps what it had.
    await add_manual_box(fleet, task_id, 1, labels["text"])
    await add_manual_box(fleet, task_id, 2, labels["text"])
    created = await client.post(REQUESTS, json={
        "function": DETECTOR, "task": task_id, "jobs": [jobs[2], jobs[0]], "cleanup": True,
    })  # fmt: skip
    assert created.status_code == 200, created.text
    assert created.json()["function"] == {
        "id": DETECTOR, "threshold": None, "task": task_id, "jobs": [jobs[0], jobs[2]],
    }  # fmt: skip
    await runner.run(created.json()["id"], {})
    ended = await wait_for(client, created.json()["id"])
    assert (ended["status"], ended["progress"]) == ("finished", 100), ended
    after = await shapes_of(fleet, task_id)
    auto = Counter(shape["frame"] for shape in after if shape["source"] == "auto")
    assert auto == {0: 2, 3: 3, 4: 1}
    manual = [shape["frame"] for shape in after if shape["source"] == "manual"]
    assert manual == [2]
    assert_boxes_text([shape for shape in after if shape["frame"] != 3], [
        lines if frame in (0, 1, 4) else [] for frame, lines in enumerate(boxes)
    ], labels["text"])  # fmt: skip

    # Frames outside the task or deleted are refused, naming the field.
    deleted = await fleet.ingest.patch(
        f"/api/tasks/{task_id}/data/meta", json={"deleted_frames": [4]}
    )
    assert deleted.status_code == 200, deleted.text
    for frames in ([4], [1, 5]):
        refused = await client.post(
            REQUESTS, json={"function": DETECTOR, "task": task_id, "frames": frames}
        )
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert [error["field"] for error in refused.json()["errors"]] == ["body.frames"]


async def test_bad_requests_are_refused_and_cancels_stop_them(
    fleet: InferenceFleet, enrol: Enrol
) -> None:
    images, _ = frames_with_text(LINES[:2])
    task_id = await fleet.create_task(images, [{"name": "text"}, {"name": "car"}])
    other = await fleet.create_task(images[:1], [{"name": "person"}])
    other_job = (await fleet.jobs(other))[0]
    own_job = (await fleet.jobs(task_id))[0]
    project_id = await create_project(fleet, ["text"])  # no task
    client = fleet.inference.client

    async def post(body: dict[str, Any], who: httpx.AsyncClient = client) -> httpx.Response:
        return await who.post(REQUESTS, json=body)

    unknown = await post({"function": "nope", "task": task_id})
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"] == PROBLEM
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"function": DETECTOR, "task": task_id, "job": other_job["id"]}, 400, "body.job"),
        ({"function": DETECTOR, "task": task_id, "mapping": {"text": {"name": "tree"}}}, 400,
         "body.mapping.text.name"),
        ({"function": DETECTOR, "task": other}, 400, "body.mapping"),
        ({"function": DETECTOR, "task": task_id, "shape_type": "mask"}, 400, "body.shape_type"),
        ({"function": DETECTOR, "task": task_id, "threshold": 2}, 422, "body.threshold"),
        ({"function": DETECTOR}, 422, "body.task"),
        # Beyond CVAT: projects, jobs and frames.
        ({"function": DETECTOR, "task": task_id, "project": project_id}, 422, "body.project"),
        ({"function": DETECTOR, "task": 999_999}, 404, "body.task"),
        ({"function": DETECTOR, "project": 999_999}, 404, "body.project"),
        ({"function": DETECTOR, "project": project_id}, 400, "body.project"),
        ({"function": DETECTOR, "project": project_id, "job": own_job["id"]}, 422, "body.job"),
        ({"function": DETECTOR, "project": project_id, "jobs": [own_job["id"]]}, 400,
         "body.jobs"),
        ({"function": DETECTOR, "task": task_id, "job": 999_999}, 404, "body.job"),
        ({"function": DETECTOR, "task": task_id, "jobs": [own_job["id"], 999_999]}, 404,
         "body.jobs"),
        ({"function": DETECTOR, "task": task_id, "jobs": [other_job["id"]]}, 400, "body.jobs"),
        ({"function": DETECTOR, "task": task_id, "job": own_job["id"],
          "jobs": [own_job["id"]]}, 422, "body.jobs"),
        ({"function": DETECTOR, "task": task_id, "jobs": []}, 422, "body.jobs"),
        ({"function": DETECTOR, "task": task_id, "frames": [2]}, 400, "body.frames"),
        ({"function": DETECTOR, "task": task_id, "frames": [-1]}, 422, "body.frames[0]"),
        ({"function": DETECTOR, "task": task_id, "frames": [0],
          "jobs": [own_job["id"]]}, 422, "body.frames"),
        ({"function": DETECTOR, "task": task_id, "frames": [0], "cleanup": True}, 400,
         "body.cleanup"),
    ]  # fmt: skip
    for body, status, field in cases:
        answered = await post(body)
        assert answered.status_code == status, (body, answered.text)
        assert answered.headers["content-type"] == PROBLEM
        named = [error["field"] for error in answered.json().get("errors", [])]
        assert named == [field], (body, answered.text)

    # Somebody who may not change (nor see) the task is refused, and learns nothing.
    eve = await enrol(fleet.inference, "eve")
    refused = await post({"function": DETECTOR, "task": task_id}, eve.client)
    assert refused.status_code in (403, 404), refused.text
    assert refused.headers["content-type"] == PROBLEM

    # CVAT's deprecated spelling of conv_mask_to_poly is read.
    assert FunctionCallRequest.model_validate(
        {"function": DETECTOR, "task": 1, "convMaskToPoly": True}
    ).conv_mask_to_poly

    created = await post({"function": DETECTOR, "task": task_id})
    assert created.status_code == 200, created.text
    rq_id = created.json()["id"]
    hidden = await eve.client.get(f"{REQUESTS}/{rq_id}")
    not_hers = await eve.client.delete(f"{REQUESTS}/{rq_id}")
    assert (hidden.status_code, not_hers.status_code) == (404, 404)
    assert (await eve.client.get(REQUESTS)).json() == []
    assert [item["id"] for item in (await client.get(REQUESTS)).json()] == [rq_id]

    cancelled = await client.delete(f"{REQUESTS}/{rq_id}")
    assert cancelled.status_code == 204, cancelled.text
    shown = (await client.get(f"{REQUESTS}/{rq_id}")).json()
    assert (shown["status"], shown["exc_info"]) == ("failed", "Cancelled by admin.")
    assert (await client.get(REQUESTS)).json() == []
    assert (await client.delete(f"{REQUESTS}/{rq_id}")).status_code == 204
    assert (await client.get(f"{REQUESTS}/nope")).status_code == 404
    # A worker that gets the cancelled request does nothing; the task takes a new one.
    await runner_of(fleet.inference).run(rq_id, {})
    assert await shapes_of(fleet, task_id) == []
    renewed = await post({"function": DETECTOR, "task": task_id})
    assert renewed.status_code == 200, renewed.text

    # A cancel while the request runs stops it between batches; what was written stays.
    many_images, _ = frames_with_text(LINES)
    busy = await fleet.create_task(many_images, [{"name": "text"}])
    started = await post({"function": DETECTOR, "task": busy})
    busy_rq = started.json()["id"]
    state = state_of(fleet.inference)

    class CancelAfterFirstWrite:
        def __getattr__(self, name: str) -> Any:
            return getattr(state.annotations, name)

        async def import_annotations(self, **kwargs: Any) -> Any:
            written = await state.annotations.import_annotations(**kwargs)
            assert (await client.delete(f"{REQUESTS}/{busy_rq}")).status_code == 204
            return written

    canceller = cast(AnnotationsClient, CancelAfterFirstWrite())
    await runner_of(fleet.inference, annotations=canceller).run(busy_rq, {})
    stopped = (await client.get(f"{REQUESTS}/{busy_rq}")).json()
    assert (stopped["status"], stopped["exc_info"]) == ("failed", "Cancelled by admin.")
    assert stopped["progress"] < 100
    kept = await shapes_of(fleet, busy)
    assert Counter(shape["frame"] for shape in kept) == {0: 2}  # the first batch: frames 0, 1


async def test_a_killed_worker_is_resumed_without_duplicated_shapes(fleet: InferenceFleet) -> None:
    images, boxes = frames_with_text(LINES)
    task_id = await fleet.create_task(images, [{"name": "text"}])
    labels = await fleet.labels(task_id)
    await add_manual_box(fleet, task_id, 4, labels["text"])
    client = fleet.inference.client
    created = await client.post(
        REQUESTS, json={"function": DETECTOR, "task": task_id, "cleanup": True}
    )
    assert created.status_code == 200, created.text
    rq_id = created.json()["id"]
    state = state_of(fleet.inference)
    repository = state.auto_annotations.repository

    class DiesAfterWriting:
        """The worker dies right after the annotations service stored its first batch,
        before recording it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(state.annotations, name)

        async def import_annotations(self, **kwargs: Any) -> Any:
            written = await state.annotations.import_annotations(**kwargs)
            if kwargs["action"] == "append":
                raise httpx.ReadError("the worker died")
            return written

    first = runner_of(fleet.inference, annotations=cast(AnnotationsClient, DiesAfterWriting()))
    with pytest.raises(httpx.ReadError):
        await first.run(rq_id, {})
    (part,) = await repository.parts(rq_id)
    assert part.cleaned
    assert part.done_through is None
    assert part.pending is not None
    assert part.pending["last"] == 1
    stored = await shapes_of(fleet, task_id)
    assert Counter(shape["frame"] for shape in stored) == {0: 2}  # the manual box is gone

    class DiesReadingFrame4:
        """The next worker dies reading frame 4 (after settling the first batch and
        writing the second)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(state.ingest, name)

        async def original_frame(self, task: int, number: int) -> tuple[bytes, str]:
            if number == 4:
                raise httpx.ConnectError("the worker died")
            return await state.ingest.original_frame(task, number)

    second = runner_of(fleet.inference, ingest=cast(IngestClient, DiesReadingFrame4()))
    await second.clear(rq_id, {})
    with pytest.raises(httpx.ConnectError):
        await second.run(rq_id, {})
    (part,) = await repository.parts(rq_id)
    assert (part.done_through, part.pending) == (3, None)
    assert part.shapes_written == 2 + 1 + 3

    class KilledAfterWriting(DiesAfterWriting):
        """The last attempt's process is killed right after its last batch was stored
        (nothing of the runner runs after that)."""

        async def import_annotations(self, **kwargs: Any) -> Any:
            await state.annotations.import_annotations(**kwargs)
            raise WorkerKilled

    # A third attempt writes the last batch and is killed; clearing after it (as the
    # queue does before giving up) finds that nothing is left and ends the request: every
    # frame's text boxed once, the cleanup done once.
    third = runner_of(fleet.inference, annotations=cast(AnnotationsClient, KilledAfterWriting()))
    await third.clear(rq_id, {})
    with pytest.raises(WorkerKilled):
        await third.run(rq_id, {})
    await runner_of(fleet.inference).clear(rq_id, {})
    ended = (await client.get(f"{REQUESTS}/{rq_id}")).json()
    assert (ended["status"], ended["progress"]) == ("finished", 100), ended
    platform = (await client.get(f"/api/requests/{rq_id}")).json()
    assert platform["message"] == "7 shapes written on 5 frames."
    shapes = await shapes_of(fleet, task_id)
    assert all(shape["source"] == "auto" for shape in shapes)
    assert_boxes_text(shapes, boxes, labels["text"])
    row = await repository.get(rq_id)
    assert row is not None
    assert row.attempts == 3
    (part,) = await repository.parts(rq_id)
    assert part.shapes_written == len(shapes)

    # A batch recorded as pending but never sent is written from its record.
    again = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
    rq_again = again.json()["id"]
    pending = Batch()
    pending.add(0, [{
        "type": "rectangle", "frame": 0, "label_id": labels["text"], "source": "auto",
        "points": [5.0, 5.0, 50.0, 30.0], "score": 0.777, "occluded": False, "outside": False,
        "z_order": 0, "rotation": 0.0, "group": None, "attributes": [], "elements": [],
    }])  # fmt: skip
    await repository.set_pending(rq_again, 0, {"last": 0, "document": pending.document()})
    await runner_of(fleet.inference).clear(rq_again, {})
    (part,) = await repository.parts(rq_again)
    assert (part.done_through, part.pending, part.shapes_written) == (0, None, 1)
    scores = [shape["score"] for shape in await shapes_of(fleet, task_id)]
    assert scores.count(0.777) == 1


async def test_failures_end_the_request_with_their_reason(
    fleet: InferenceFleet, open_service: OpenService
) -> None:
    images, _boxes = frames_with_text(LINES[:4])
    task_id = await fleet.create_task(images, [{"name": "text"}])
    client = fleet.inference.client

    # A frame whose original no longer decodes fails the request, naming it; the batch
    # written before it stays.
    storage = fleet.bucket
    originals = sorted(
        [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/originals/")]
    )
    assert len(originals) == 4, originals
    await storage.put(originals[2], b"not an image at all")
    created = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
    rq_id = created.json()["id"]
    await runner_of(fleet.inference).run(rq_id, {})
    failed = (await client.get(f"{REQUESTS}/{rq_id}")).json()
    assert failed["status"] == "failed", failed
    assert "Frame 2 of task" in failed["exc_info"]
    assert "not a decodable image" in failed["exc_info"]
    kept = await shapes_of(fleet, task_id)
    assert Counter(shape["frame"] for shape in kept) == {0: 2}

    # Triton unreachable: the queue tries again, then the request fails saying why.
    dead = f"127.0.0.1:{free_port()}"
    retried = await client.post(REQUESTS, json={"function": DETECTOR, "task": task_id})
    assert retried.status_code == 200, retried.text
    async with worker_replica(
        open_service, fleet, dead, triton_retries=0, auto_annotation_max_deliveries=2
    ):
        ended = await wait_for(client, retried.json()["id"], timeout_s=60)
    assert ended["status"] == "failed", ended
    assert "Triton" in ended["exc_info"]
    assert "tried 2 times" in ended["exc_info"]
    assert await shapes_of(fleet, task_id) == kept


def test_masks_become_the_polygon_of_their_largest_region() -> None:
    # A 3x2 block at (2, 1) and a single pixel at (7, 5), as a CVAT mask over their box.
    mask = np.zeros((8, 10), bool)
    mask[1:3, 2:5] = True
    mask[5, 7] = True
    box = mask[1:6, 2:8]
    runs, current, count = [], False, 0
    for value in box.reshape(-1):
        if value == current:
            count += 1
        else:
            runs.append(count)
            current, count = bool(value), 1
    runs.append(count)
    shape = {"type": "mask", "points": [*runs, 2, 1, 7, 5], "frame": 0, "label_id": 1}
    polygon = mask_as_polygon(shape, (8, 10))
    assert polygon is not None
    assert polygon["type"] == "polygon"
    xs, ys = polygon["points"][0::2], polygon["points"][1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (2, 1, 5, 3)


async def test_cvat_sdk_requests_through_the_gateway(
    fleet: InferenceFleet, service_settings: dict[str, Any], triton: Triton
) -> None:
    images, boxes = frames_with_text(LINES[:3])
    task_id = await fleet.create_task(images, [{"name": "text"}])
    settings = settings_for(
        "inference", **service_settings, annotations_url=fleet.annotations_url,
        ingest_url=fleet.ingest_url, triton_url=triton.url, auto_annotation_workers=1,
    )  # fmt: skip
    with serve_in_thread(create_inference(settings)) as inference_url:
        upstreams = {
            "annotations": fleet.annotations_url,
            "ingest": fleet.ingest_url,
            "export": f"http://127.0.0.1:{free_port()}",
            "inference": inference_url,
        }
        gateway = create_gateway(GatewaySettings(upstreams=upstreams, log_json=False))
        with serve_in_thread(gateway) as gateway_url:

            def use_sdk() -> tuple[Any, Any, Any, Any, Any]:
                with ApiClient(Configuration(host=gateway_url)) as client:
                    client.set_default_header("Authorization", f"Bearer {ADMIN_TOKEN}")
                    asked = models.FunctionCallRequest(
                        function=DETECTOR, task=task_id, cleanup=False, threshold=0.6
                    )
                    created, _ = client.lambda_api.create_requests(asked)
                    conflict = None
                    try:
                        client.lambda_api.create_requests(asked)
                    except ApiException as exc:
                        conflict = exc.status
                    listed, _ = client.lambda_api.list_requests()
                    deadline = time.monotonic() + 120
                    while True:
                        polled, _ = client.lambda_api.retrieve_requests(created.id)
                        if polled.status in ("finished", "failed"):
                            break
                        assert time.monotonic() < deadline, polled
                        time.sleep(0.1)
                    _, platform = client.requests_api.retrieve(created.id, _parse_response=False)
                    client.lambda_api.delete_requests(created.id)
                    return created, conflict, listed, polled, json.loads(platform.data)

            created, conflict, listed, polled, platform = await asyncio.to_thread(use_sdk)
    assert created.function.id == DETECTOR
    assert created.function.task == task_id
    assert created.status == "queued"
    assert conflict == 409
    assert [item.id for item in listed] == [created.id]
    assert (polled.status, polled.progress) == ("finished", 100), polled
    assert platform["status"] == "finished"
    assert platform["operation"]["function_id"] == DETECTOR
    assert_boxes_text(await shapes_of(fleet, task_id), boxes, (await fleet.labels(task_id))["text"])
