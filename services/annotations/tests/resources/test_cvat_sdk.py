"""Acceptance: cvat-sdk 2.80 with a personal access token, against a real server.

Its low-level `ApiClient` (response validation on) creates projects with a skeleton,
tasks, jobs, labels and organizations, and writes and reads annotations of every shape
and track type; its high-level `Client` accepts the version `/api/server/about` reports.
"""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cvat_sdk import Client, Config  # type: ignore[import-untyped]
from cvat_sdk.api_client import ApiClient, Configuration, models  # type: ignore[import-untyped]

from tessera.annotations import __version__
from tessera.annotations.app import create_app
from tessera.devstack.servers import free_port
from tessera.devstack.testing import ADMIN_TOKEN, settings_for

SVG = (
    '<line x1="10" y1="10" x2="50" y2="50" data-node-from="1" data-node-to="2"></line>'
    '<circle r="1.5" cx="10" cy="10" data-node-id="1" data-label-name="head"></circle>'
    '<circle r="1.5" cx="50" cy="50" data-node-id="2" data-label-name="tail"></circle>'
)


@pytest.fixture
def server(service_settings: dict[str, Any]) -> Iterator[str]:
    """The annotations service under uvicorn on a free port, in a thread; its base URL."""
    port = free_port()
    app = create_app(settings_for("annotations", **service_settings))
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)


def test_cvat_sdk_creates_and_reads_projects_tasks_and_jobs(server: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{server}/api/auth/api_tokens", json={"name": "sdk"}, headers=admin)
    with ApiClient(Configuration(host=server)) as client:
        client.set_default_header("Authorization", f"Bearer {token.json()['value']}")
        labels = [
            models.PatchedLabelRequest(
                name="car",
                color="#ff0000",
                type="rectangle",
                attributes=[
                    models.AttributeRequest(
                        name="model", mutable=False, input_type=models.InputTypeEnum("select"),
                        values=["a", "b"], default_value="b",
                    ),
                    models.AttributeRequest(
                        name="speed", mutable=True, input_type=models.InputTypeEnum("number"),
                        values=["0", "100", "1"],
                    ),
                ],
            ),
            models.PatchedLabelRequest(
                name="body",
                type="skeleton",
                svg=SVG,
                sublabels=[models.SublabelRequest(name=name) for name in ("head", "tail")],
            ),
        ]  # fmt: skip
        project, _ = client.projects_api.create(
            models.ProjectWriteRequest(name="sdk project", labels=labels)
        )
        task, _ = client.tasks_api.create(
            models.TaskWriteRequest(name="sdk task", project_id=project.id, segment_size=5)
        )
        made = httpx.post(
            f"{server}/api/internal/tasks/{task.id}/segments",
            json={"size": 10, "media_type": "image", "chunk_size": 5,
                  "segments": [{"start_frame": 0, "stop_frame": 4},
                               {"start_frame": 5, "stop_frame": 9}]},
            headers=admin,
        )  # fmt: skip
        assert made.status_code == 201, made.text

        projects, _ = client.projects_api.list()
        tasks, _ = client.tasks_api.list(project_id=project.id)
        read_task, _ = client.tasks_api.retrieve(task.id)
        read_labels, _ = client.labels_api.list(task_id=task.id)
        jobs, _ = client.jobs_api.list(task_id=task.id)
        job, _ = client.jobs_api.partial_update(
            jobs.results[0].id,
            patched_job_write_request=models.PatchedJobWriteRequest(
                stage=models.JobStage("validation")
            ),
        )
        organization, _ = client.organizations_api.create(
            models.OrganizationWriteRequest(slug="sdk-org")
        )
        memberships, _ = client.memberships_api.list(org="sdk-org")
        renamed, _ = client.labels_api.partial_update(
            read_labels.results[0].id, patched_label_request=models.PatchedLabelRequest(name="auto")
        )

    assert [p.name for p in projects.results] == ["sdk project"]
    assert projects.results[0].tasks.count == 1
    assert [t.id for t in tasks.results] == [task.id]
    assert read_task.project_id == project.id
    assert read_task.size == 10
    assert read_task.jobs.count == 2
    assert read_task.owner.username == "admin"
    car, body = read_labels.results
    assert car.attributes[0].default_value == "b"
    assert [s.name for s in body.sublabels] == ["head", "tail"]
    assert f'data-label-id="{body.sublabels[0].id}"' in body.svg
    assert {(j.start_frame, j.stop_frame, j.frame_count) for j in jobs.results} == {
        (0, 4, 5),
        (5, 9, 5),
    }
    assert (job.stage, job.state, job.status) == ("validation", "new", "validation")
    assert job.labels.url.endswith(f"/api/labels?job_id={job.id}")
    assert organization.owner.username == "admin"
    assert [(m.user.username, m.role) for m in memberships.results] == [("admin", "owner")]
    assert renamed.name == "auto"


MASK = [0.0, 3.0, 2.0, 1.0, 10.0, 20.0, 12.0, 21.0]  # a 3x2 box, runs 0,3,2,1
GEOMETRY = {
    "rectangle": [1.0, 2.0, 30.5, 40.25],
    "polygon": [0.0, 0.0, 10.0, 0.0, 5.0, 8.5],
    "polyline": [1.0, 1.0, 2.0, 3.0, 4.0, 1.5],
    "points": [3.0, 4.0, 7.5, 8.5],
    "ellipse": [5.0, 5.0, 8.0, 3.0],
    "cuboid": [float(i) for i in range(16)],
    "mask": MASK,
}


def _sdk_labels() -> list[Any]:
    """A label for every shape type (with a select attribute), a tag label, a skeleton."""
    select = models.AttributeRequest(
        name="color", mutable=False, input_type=models.InputTypeEnum("select"),
        values=["red", "blue"], default_value="red",
    )  # fmt: skip
    speed = models.AttributeRequest(
        name="speed", mutable=True, input_type=models.InputTypeEnum("number"),
        values=["0", "100", "1"],
    )  # fmt: skip
    return [
        models.PatchedLabelRequest(name="car", type="any", attributes=[select, speed]),
        models.PatchedLabelRequest(name="flag", type="tag"),
        models.PatchedLabelRequest(
            name="body", type="skeleton", svg=SVG,
            sublabels=[models.SublabelRequest(name=name) for name in ("head", "tail")],
        ),
    ]  # fmt: skip


def _labeled_data(labels: dict[str, Any]) -> Any:
    """Tags, a shape of every type and a track of every type, as cvat-sdk models."""
    car = labels["car"]
    color, speed = (a.id for a in car.attributes)
    head, tail = (s.id for s in labels["body"].sublabels)

    def attrs(**values: str) -> list[Any]:
        ids = {"color": color, "speed": speed}
        return [models.AttributeValRequest(spec_id=ids[k], value=v) for k, v in values.items()]

    shapes = [
        models.LabeledShapeRequest(
            type=models.ShapeType(kind), frame=i % 5, label_id=car.id, points=points,
            occluded=i % 2 == 0, z_order=i, rotation=15.0 if kind == "rectangle" else 0.0,
            group=i, source="manual", attributes=attrs(color="blue", speed=str(i)),
        )
        for i, (kind, points) in enumerate(GEOMETRY.items())
    ]  # fmt: skip
    shapes.append(
        models.LabeledShapeRequest(
            type=models.ShapeType("skeleton"), frame=2, label_id=labels["body"].id,
            points=[], attributes=[],
            elements=[
                models.SubLabeledShapeRequest(
                    type=models.ShapeType("points"), frame=2, label_id=sub,
                    points=[float(n), float(n + 1)], outside=sub == tail, attributes=[],
                )
                for n, sub in enumerate((head, tail))
            ],
        )
    )  # fmt: skip
    tracks = [
        models.LabeledTrackRequest(
            frame=0, label_id=car.id, group=0, source="manual", attributes=attrs(color="red"),
            shapes=[
                models.TrackedShapeRequest(
                    type=models.ShapeType(kind), frame=frame, points=points,
                    outside=frame == 4, attributes=attrs(speed=str(frame)),
                )
                for frame in (0, 4)
            ],
        )
        for kind, points in GEOMETRY.items()
    ]  # fmt: skip
    element_shapes = [
        models.TrackedShapeRequest(
            type=models.ShapeType("points"), frame=frame, points=[float(frame), 1.0],
            occluded=frame == 3, attributes=[],
        )
        for frame in (0, 3)
    ]  # fmt: skip
    tracks.append(
        models.LabeledTrackRequest(
            frame=0, label_id=labels["body"].id, attributes=[],
            shapes=[models.TrackedShapeRequest(type=models.ShapeType("skeleton"), frame=f,
                                               points=[], attributes=[]) for f in (0, 3)],
            elements=[
                models.SubLabeledTrackRequest(frame=0, label_id=sub, shapes=element_shapes,
                                              attributes=[])
                for sub in (head, tail)
            ],
        )
    )  # fmt: skip
    tags = [
        models.LabeledImageRequest(frame=1, label_id=labels["flag"].id, attributes=[]),
        models.LabeledImageRequest(
            frame=3, label_id=car.id, attributes=attrs(color="blue", speed="7")
        ),
    ]
    return models.LabeledDataRequest(version=0, tags=tags, shapes=shapes, tracks=tracks)


def _plain(value: Any, *, drop: tuple[str, ...] = ("id", "version")) -> Any:
    """A model (or list of them) as plain data, without ids, for comparing round trips."""
    if isinstance(value, list):
        return [_plain(v, drop=drop) for v in value]
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v, drop=drop) for k, v in value.items() if k not in drop}
    return value


def _by_type(objects: list[Any]) -> dict[str, Any]:
    return {o["type"] if "type" in o else o["shapes"][0]["type"]: o for o in objects}


def _sent_back(sent: Any, read: Any) -> Any:
    """`read` restricted to the fields `sent` has, so that server defaults do not count."""
    if isinstance(sent, dict) and isinstance(read, dict):
        return {k: _sent_back(v, read.get(k)) for k, v in sent.items()}
    if isinstance(sent, list) and isinstance(read, list) and len(sent) == len(read):
        return [_sent_back(s, r) for s, r in zip(sent, read, strict=True)]
    return read


def test_cvat_sdk_writes_and_reads_annotations_of_every_type(server: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{server}/api/auth/api_tokens", json={"name": "sdk"}, headers=admin)
    with ApiClient(Configuration(host=server)) as client:
        client.set_default_header("Authorization", f"Bearer {token.json()['value']}")
        project, _ = client.projects_api.create(
            models.ProjectWriteRequest(name="shapes", labels=_sdk_labels())
        )
        task, _ = client.tasks_api.create(
            models.TaskWriteRequest(name="shapes", project_id=project.id)
        )
        made = httpx.post(
            f"{server}/api/internal/tasks/{task.id}/segments",
            json={"size": 10, "media_type": "image", "chunk_size": 5,
                  "segments": [{"start_frame": 0, "stop_frame": 4},
                               {"start_frame": 5, "stop_frame": 9}]},
            headers=admin,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        job_id = made.json()["jobs"][0]["id"]
        labels = {label.name: label for label in client.labels_api.list(task_id=task.id)[0].results}
        sent = _labeled_data(labels)

        client.jobs_api.update_annotations(job_id, labeled_data_request=sent)
        read, _ = client.jobs_api.retrieve_annotations(job_id)
        added_tag = models.LabeledImageRequest(frame=4, label_id=labels["flag"].id, attributes=[])
        client.jobs_api.partial_update_annotations(
            "create", job_id,
            patched_labeled_data_request=models.PatchedLabeledDataRequest(tags=[added_tag]),
        )  # fmt: skip
        moved = read.shapes[0].to_dict() | {"points": [0.0, 0.0, 1.0, 1.0]}
        client.jobs_api.partial_update_annotations(
            "update", job_id,
            patched_labeled_data_request=models.PatchedLabeledDataRequest(
                shapes=[models.LabeledShapeRequest._from_openapi_data(**moved)]
            ),
        )  # fmt: skip
        client.jobs_api.partial_update_annotations(
            "delete", job_id,
            patched_labeled_data_request=models.PatchedLabeledDataRequest(
                tracks=[models.LabeledTrackRequest._from_openapi_data(**read.tracks[0].to_dict())]
            ),
        )  # fmt: skip
        after, _ = client.jobs_api.retrieve_annotations(job_id)
        of_task, _ = client.tasks_api.retrieve_annotations(task.id)

    assert read.version == 1
    for kind in ("tags", "shapes", "tracks"):
        wanted, got = _plain(sent[kind]), _plain(read[kind])
        if kind != "tags":
            wanted, got = _by_type(wanted), _by_type(got)
        assert _sent_back(wanted, got) == wanted, kind
    assert (read.tags[0].group, read.tags[0].source) == (0, "manual")
    assert after.version == 4
    assert [t.frame for t in after.tags] == [1, 3, 4]
    assert after.shapes[0].id == read.shapes[0].id
    assert after.shapes[0].points == [0.0, 0.0, 1.0, 1.0]
    assert {t.id for t in after.tracks} == {t.id for t in read.tracks[1:]}
    assert _plain(of_task.shapes) == _plain(after.shapes)
    assert _plain(of_task.tags) == _plain(after.tags)


def test_cvat_sdk_client_accepts_the_server_version(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """cvat-sdk's `Client` checks `about.version`, before it has a token, without a warning."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{server}/api/auth/api_tokens", json={"name": "sdk"}, headers=admin)
    sdk_logger = logging.getLogger("cvat-sdk-test")
    with (
        caplog.at_level(logging.WARNING, logger=sdk_logger.name),
        Client(
            server,
            config=Config(allow_unsupported_server=False),
            logger=sdk_logger,
            check_server_version=True,
        ) as sdk,
    ):
        sdk.api_client.set_default_header("Authorization", f"Bearer {token.json()['value']}")
        about, _ = sdk.api_client.server_api.retrieve_about()
    assert [r.message for r in caplog.records if r.name == sdk_logger.name] == []
    assert about.version == "2.80.0"
    assert about["tessera_version"] == __version__
