"""Acceptance: cvat-sdk 2.80's low-level client, with a personal access token, against a
real server: projects with a skeleton, tasks in them, jobs, labels, organizations."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cvat_sdk.api_client import ApiClient, Configuration, models  # type: ignore[import-untyped]

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
