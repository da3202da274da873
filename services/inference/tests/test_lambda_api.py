"""CVAT's lambda function endpoints through the inference app, with real callers: the
function list, and online calls of the text detector on a real task (annotations and
ingest on sockets, the model on the local Triton), bad calls answered as problems, and
cvat-sdk's low-level client through the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from cvat_sdk.api_client import ApiClient, Configuration, models  # type: ignore[import-untyped]

from tessera.devstack.servers import Triton, free_port
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    serve_in_thread,
    settings_for,
)
from tessera.gateway.app import create_app as create_gateway
from tessera.gateway.config import GatewaySettings
from tessera.inference.app import create_app as create_inference

from .conftest import InferenceFleet, iou, png, text_image

DETECTOR = "ppocr_v4_det"
INTERACTOR = "opencv_grabcut"
TRACKER = "opencv_template_tracker"
CALL = f"/api/lambda/functions/{DETECTOR}"
PROBLEM = "application/problem+json"


def fields(response: httpx.Response) -> list[str]:
    """The fields a problem names."""
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error["field"] for error in response.json().get("errors", [])]


async def test_functions_are_listed_as_cvat_lists_them(
    open_service: OpenService, enrol: Enrol
) -> None:
    # No Triton: the list does not need it, readiness says it is missing.
    dead = f"127.0.0.1:{free_port()}"
    async with open_service("inference", triton_url=dead, triton_retries=0) as svc:
        bob = await enrol(svc, "bob")
        listed = await bob.client.get("/api/lambda/functions")
        one = await bob.client.get(f"/api/lambda/functions/{DETECTOR}")
        missing = await bob.client.get("/api/lambda/functions/nope")
        anonymous = await svc.anonymous.get("/api/lambda/functions")
        ready = await svc.anonymous.get("/readyz")
    assert listed.status_code == 200, listed.text
    assert [function["id"] for function in listed.json()] == [DETECTOR, INTERACTOR, TRACKER]
    assert listed.json()[0] == one.json()
    assert one.json() == {
        "id": DETECTOR,
        "kind": "detector",
        "labels_v2": [{"name": "text", "type": "any", "attributes": []}],
        "description": one.json()["description"],
        "name": "Text detector (PP-OCRv4)",
        "version": 1,
    }
    assert "text" in one.json()["description"]
    grabcut, tracker = listed.json()[1:]
    # CVAT's fields for each kind (`LambdaFunction.to_dict()`); version 2 on, CVAT's UI
    # reads an interactor's answer as {mask, points, bounds} without warning.
    assert grabcut == {
        "id": INTERACTOR,
        "kind": "interactor",
        "labels_v2": [],
        "description": grabcut["description"],
        "name": "GrabCut (OpenCV)",
        "version": 2,
        "min_pos_points": 1,
        "min_neg_points": -1,
        "startswith_box": False,
        "startswith_box_optional": True,
        "help_message": grabcut["help_message"],
        "animated_gif": "",
    }
    assert "GrabCut" in grabcut["description"]
    assert "click" in grabcut["help_message"]
    assert tracker == {
        "id": TRACKER,
        "kind": "tracker",
        "labels_v2": [],
        "description": tracker["description"],
        "name": "Template tracker (OpenCV)",
        "version": 1,
        "supported_shape_types": ["rectangle"],
    }
    assert missing.status_code == 404
    assert fields(missing) == []
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert (checks["database"], checks["nats"]) == ("ok", "ok")
    assert "storage" not in checks  # it keeps nothing in the bucket: no S3 role on EKS
    assert checks["triton"] != "ok"
    assert checks[f"triton:{DETECTOR}"] != "ok"
    assert "triton" in ready.json()["detail"]


async def test_a_detector_call_boxes_the_drawn_text(
    inference_fleet: InferenceFleet,
) -> None:
    fleet = inference_fleet
    image, lines = text_image([("TESSERA 2026", (40, 90)), ("auto labels", (300, 250))])
    blank = np.full_like(image, 255)
    task_id = await fleet.create_task(
        [png(image), png(blank), png(image)],
        [{"name": "text"}, {"name": "car"}, {"name": "line", "type": "polygon"}],
        segment_size=2,
    )
    labels = await fleet.labels(task_id)
    client = fleet.inference.client

    called = await client.post(CALL, json={"task": task_id, "frame": 0, "cleanup": True})
    assert called.status_code == 200, called.text
    body = called.json()
    assert (body["version"], body["tags"], body["tracks"]) == (0, [], [])
    shapes = body["shapes"]
    assert len(shapes) == len(lines)
    for shape, line in zip(shapes, lines, strict=True):
        assert shape["type"] == "rectangle"
        assert (shape["label_id"], shape["frame"], shape["source"]) == (labels["text"], 0, "auto")
        assert (shape["occluded"], shape["outside"], shape["attributes"]) == (False, False, [])
        assert 0.6 <= shape["score"] <= 1
        assert iou(shape["points"], line) >= 0.5, (shape["points"], line)

    nothing = await client.post(CALL, json={"task": task_id, "frame": 1})
    assert nothing.status_code == 200, nothing.text
    assert nothing.json()["shapes"] == []

    # Through a job (its frames are task frames 2..), as polygons, into another label.
    second = (await fleet.jobs(task_id))[1]
    polygons = await client.post(
        CALL,
        json={"job": second["id"], "task": task_id, "frame": 2, "shape_type": "polygon",
              "threshold": 0.5, "mapping": {"text": {"name": "car"}}, "type": "annotate_frame"},
    )  # fmt: skip
    assert polygons.status_code == 200, polygons.text
    found = polygons.json()["shapes"]
    assert [(s["type"], s["label_id"], s["frame"]) for s in found] == [
        ("polygon", labels["car"], 2)
    ] * len(lines)
    for shape, line in zip(found, lines, strict=True):
        xs, ys = shape["points"][0::2], shape["points"][1::2]
        assert iou((min(xs), min(ys), max(xs), max(ys)), line) >= 0.5

    # A polygon label gets polygons without asking; a region of the frame, that region's.
    into_polygons = await client.post(
        CALL, json={"task": task_id, "frame": 0, "mapping": {"text": {"name": "line"}},
                    "roi": [280, 200, 600, 280]},
    )  # fmt: skip
    assert into_polygons.status_code == 200, into_polygons.text
    (only,) = into_polygons.json()["shapes"]
    assert (only["type"], only["label_id"]) == ("polygon", labels["line"])
    xs, ys = only["points"][0::2], only["points"][1::2]
    assert iou((min(xs), min(ys), max(xs), max(ys)), lines[1]) >= 0.5

    # Readiness asks Triton and the model; the metrics count the frames Triton answered.
    ready = await fleet.inference.anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["triton"] == "ok"
    assert ready.json()["checks"][f"triton:{DETECTOR}"] == "ok"
    metrics = (await fleet.inference.anonymous.get("/metrics")).text
    images = _sample(metrics, "tessera_inference_images_total", model=DETECTOR)
    assert images == 4
    assert _sample(metrics, "tessera_inference_batch_size_count", model=DETECTOR) == 4
    assert (
        _sample(
            metrics, "tessera_inference_triton_request_seconds_count", model=DETECTOR, outcome="ok"
        )
        == 4
    )
    assert _sample(metrics, "tessera_inference_pending_frames", model=DETECTOR) == 0


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text exposition."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}} in the metrics")


async def test_bad_calls_are_problems_naming_the_field(
    inference_fleet: InferenceFleet, open_service: OpenService, enrol: Enrol, tmp_path: Path
) -> None:
    fleet = inference_fleet
    image, _ = text_image([("words", (20, 60))], size=(96, 160))
    task_id = await fleet.create_task([png(image), png(image)], [{"name": "text"}], segment_size=1)
    first_job = (await fleet.jobs(task_id))[0]
    client = fleet.inference.client

    async def call(body: dict[str, Any], function: str = DETECTOR) -> httpx.Response:
        return await client.post(f"/api/lambda/functions/{function}", json=body)

    unknown = await call({"task": task_id, "frame": 0}, function="nope")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"task": task_id}, 400, "body.frame"),
        ({"task": task_id, "frame": 2}, 400, "body.frame"),
        ({"job": first_job["id"], "frame": 1}, 400, "body.frame"),
        ({"frame": 0}, 400, "body.task"),
        ({"job": first_job["id"], "task": task_id + 1, "frame": 0}, 400, "body.task"),
        ({"task": task_id, "frame": 0, "mapping": {"text": {"name": "car"}}}, 400,
         "body.mapping.text.name"),
        ({"task": task_id, "frame": 0, "mapping": {"word": {"name": "text"}}}, 400,
         "body.mapping.word"),
        ({"task": task_id, "frame": 0, "shape_type": "mask"}, 400, "body.shape_type"),
        ({"task": task_id, "frame": 0, "roi": [500, 500, 600, 600]}, 400, "body.roi"),
        ({"task": task_id, "frame": -1}, 422, "body.frame"),
        ({"task": task_id, "frame": 0, "threshold": 2}, 422, "body.threshold"),
    ]  # fmt: skip
    for body, status, field in cases:
        answered = await call(body)
        assert answered.status_code == status, (body, answered.text)
        assert fields(answered) == [field], (body, answered.text)

    # Somebody who may not see the task learns nothing about it.
    eve = await enrol(fleet.inference, "eve")
    hidden = await eve.client.post(CALL, json={"task": task_id, "frame": 0})
    assert hidden.status_code in (403, 404)
    assert hidden.headers["content-type"] == PROBLEM

    # A frame whose stored original no longer decodes.
    storage = fleet.bucket
    originals = [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/originals/")]
    assert len(originals) == 2, originals
    await storage.put(sorted(originals)[0], b"not an image at all")
    broken = await call({"task": task_id, "frame": 0})
    assert broken.status_code == 422, broken.text
    assert fields(broken) == ["body.frame"]

    # Triton unreachable, and a model Triton does not serve: 503.
    ghost = tmp_path / "ghost.toml"
    ghost.write_text(
        '[[functions]]\nid = "ghost"\nname = "Ghost"\nkind = "detector"\n'
        'model = "ghost_model"\nentry = "tessera.inference.detectors.text:TextDetector"\n'
        '[[functions.labels]]\nname = "text"\n'
    )
    peers = {"annotations_url": fleet.annotations_url, "ingest_url": fleet.ingest_url}
    async with open_service(
        "inference", **peers, triton_url=f"127.0.0.1:{free_port()}", triton_retries=0
    ) as down:
        unreachable = await down.client.post(CALL, json={"task": task_id, "frame": 1})
    assert unreachable.status_code == 503, unreachable.text
    assert unreachable.headers["content-type"] == PROBLEM
    triton_url = fleet.inference.app.state.service.triton.url
    async with open_service(
        "inference", **peers, triton_url=triton_url, functions_file=ghost
    ) as haunted:
        not_ready = await haunted.client.post(
            "/api/lambda/functions/ghost", json={"task": task_id, "frame": 1}
        )
        ready = await haunted.anonymous.get("/readyz")
    assert not_ready.status_code == 503, not_ready.text
    assert "ghost_model" in not_ready.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["checks"]["triton"] == "ok"
    assert ready.json()["checks"]["triton:ghost_model"] != "ok"


async def test_cvat_sdk_lists_and_calls_the_detector_through_the_gateway(
    inference_fleet: InferenceFleet, service_settings: dict[str, Any], triton: Triton
) -> None:
    fleet = inference_fleet
    image, lines = text_image([("through the gateway", (30, 120))])
    task_id = await fleet.create_task([png(image)], [{"name": "text"}])
    settings = settings_for(
        "inference", **service_settings, annotations_url=fleet.annotations_url,
        ingest_url=fleet.ingest_url, triton_url=triton.url,
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

            def use_sdk() -> tuple[Any, Any, Any]:
                with ApiClient(Configuration(host=gateway_url)) as client:
                    client.set_default_header("Authorization", f"Bearer {ADMIN_TOKEN}")
                    _, listed = client.lambda_api.list_functions(_parse_response=False)
                    _, one = client.lambda_api.retrieve_functions(DETECTOR, _parse_response=False)
                    request = models.OnlineFunctionCallRequest(task=task_id, frame=0)
                    _, called = client.lambda_api.create_functions(
                        DETECTOR, online_function_call_request=request, _parse_response=False
                    )
                    return json.loads(listed.data), json.loads(one.data), json.loads(called.data)

            listed, one, called = await asyncio.to_thread(use_sdk)
    assert [function["id"] for function in listed] == [DETECTOR, INTERACTOR, TRACKER]
    assert one == listed[0]
    (shape,) = called["shapes"]
    assert shape["label_id"] == (await fleet.labels(task_id))["text"]
    assert iou(shape["points"], lines[0]) >= 0.5
