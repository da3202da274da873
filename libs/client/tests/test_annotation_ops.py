"""The annotation operations as flows, without a server: what they send and parse."""

from __future__ import annotations

import json

import pytest

from tessera.client import Annotations, ReviewShape, Shape
from tessera.client import operations as ops
from tessera.client.protocol import Call, Reply

SHAPE = {
    "id": 7, "type": "rectangle", "frame": 2, "label_id": 3, "points": [1.0, 2.0, 30.0, 40.0],
    "source": "auto", "score": 0.61, "occluded": False, "outside": False, "z_order": 0,
    "rotation": 0.0, "group": None, "attributes": [], "elements": [],
}  # fmt: skip


def _json(body: object) -> Reply:
    return Reply(200, {"content-type": "application/json"}, json.dumps(body).encode())


def test_the_review_list_asks_for_sources_scores_and_frames() -> None:
    listing = ops.list_shapes(
        5, target="jobs", source=["auto", "semi-auto"], sort="score", min_frame=2, max_frame=2,
        max_score=0.5, page_size=10,
    )  # fmt: skip
    assert listing.call.url == "/api/jobs/5/annotations/shapes"
    assert listing.call.params == {
        "page_size": 10, "source": "auto,semi-auto", "sort": "score", "min_frame": 2,
        "max_frame": 2, "max_score": 0.5,
    }  # fmt: skip
    assert listing.model is ReviewShape


def test_a_patch_without_version_writes_whatever_the_version() -> None:
    flow = ops.update_annotations(4, "delete", shapes=[Shape.model_validate(SHAPE)])
    step = next(flow)
    assert isinstance(step, Call)
    assert (step.method, step.url, step.params) == (
        "PATCH", "/api/tasks/4/annotations", {"action": "delete"},
    )  # fmt: skip
    assert step.json is not None
    assert "version" not in step.json
    assert step.json["shapes"] == [SHAPE]
    with pytest.raises(StopIteration) as done:
        flow.send(_json({"version": 3, "shapes": [SHAPE], "tags": [], "tracks": []}))
    answered = done.value.value
    assert isinstance(answered, Annotations)
    assert answered.version == 3
    assert answered.shapes[0].score == 0.61


def test_a_patch_with_a_version_sends_it_and_review_shapes_lose_their_job() -> None:
    review = ReviewShape.model_validate({**SHAPE, "job_id": 9})
    step = next(ops.update_annotations(4, "update", target="jobs", shapes=[review], version=2))
    assert isinstance(step, Call)
    assert step.url == "/api/jobs/4/annotations"
    assert step.json is not None
    assert step.json["version"] == 2
    assert "job_id" not in step.json["shapes"][0]
