"""The internal API answers exactly the models of `tessera.platform.contracts.annotations`,
and the shared client (`tessera.platform.clients.annotations`) reads them from the service
on a real socket, forwarding the caller's credentials."""

from typing import Any

import httpx
import pytest
from fastapi import Request

from tessera.annotations.app import create_app
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    serve_in_thread,
    settings_for,
)
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import (
    CallerContext,
    JobAccess,
    Role,
    Segment,
    SegmentsCreate,
    SegmentsCreated,
    TaskAccess,
)
from tessera.platform.errors import Problem

LAB = {"X-Organization": "lab"}
SEGMENTS: dict[str, Any] = {
    "size": 10, "media_type": "image", "chunk_size": 5,
    "segments": [{"start_frame": 0, "stop_frame": 4},
                 {"start_frame": 5, "stop_frame": 9, "frames": [5, 7, 9]}],
}  # fmt: skip


def exactly(model: type[Any], body: dict[str, Any]) -> Any:
    """`body` parsed as `model`, checked to be all the model's fields and nothing else."""
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json") == body
    return parsed


async def test_internal_endpoints_answer_the_contract_models(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        alice, eve = await enrol(svc, "alice"), await enrol(svc, "eve")
        org = await alice.client.post(
            "/api/organizations", json={"slug": "lab", "contact": {"email": "lab@example.com"}}
        )
        assert org.status_code == 201, org.text
        task = await alice.client.post(
            "/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}, headers=LAB
        )
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]

        made = await svc.client.post(f"/api/internal/tasks/{task_id}/segments", json=SEGMENTS)
        assert made.status_code == 201, made.text
        created = exactly(SegmentsCreated, made.json())
        assert [job.frame_count for job in created.jobs] == [5, 3]

        answer = await alice.client.get(f"/api/internal/tasks/{task_id}/access", headers=LAB)
        assert answer.status_code == 200, answer.text
        access = exactly(TaskAccess, answer.json())
        assert (access.task_id, access.owner_id, access.organization_id) == (
            task_id, alice.id, org.json()["id"],
        )  # fmt: skip
        assert (access.size, access.has_jobs, access.can_change) == (10, True, True)

        job_id = created.jobs[1].id
        answer = await alice.client.get(f"/api/internal/jobs/{job_id}/access", headers=LAB)
        assert answer.status_code == 200, answer.text
        job = exactly(JobAccess, answer.json())
        assert (job.task_id, job.task_frames()) == (task_id, [5, 7, 9])

        answer = await alice.client.get("/api/internal/context", headers=LAB)
        owner = exactly(CallerContext, answer.json())
        assert (owner.username, owner.role, owner.organization_id) == (
            "alice", Role.OWNER, org.json()["id"],
        )  # fmt: skip
        assert (owner.manages_organization, owner.sees_whole_organization) == (True, True)

        answer = await eve.client.get("/api/internal/context")
        stranger = exactly(CallerContext, answer.json())
        assert (stranger.role, stranger.organization_id, stranger.is_admin) == (None, None, False)
        assert (stranger.manages_organization, stranger.sees_whole_organization) == (False, False)
        hidden = await eve.client.get(f"/api/internal/tasks/{task_id}/access", headers=LAB)
        assert hidden.status_code == 404


def caller(token: str, headers: dict[str, str] | None = None) -> Request:
    """An incoming request as a service receives it: the caller's token and headers."""
    raw = {"authorization": f"Bearer {token}", **{k.lower(): v for k, v in (headers or {}).items()}}
    return Request({
        "type": "http", "method": "GET", "path": "/", "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in raw.items()],
    })  # fmt: skip


async def test_the_shared_client_reads_the_contract_from_the_service(
    service_settings: dict[str, Any],
) -> None:
    app = create_app(settings_for("annotations", **service_settings))
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as admin:
            org = await admin.post(
                "/api/organizations", json={"slug": "lab", "contact": {"email": "l@example.com"}}
            )
            assert org.status_code == 201, org.text
            task = await admin.post(
                "/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}, headers=LAB
            )
            assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        client = AnnotationsClient(url, ADMIN_TOKEN)
        try:
            context = await client.context(caller(ADMIN_TOKEN, LAB))
            assert (context.username, context.role, context.organization_id) == (
                "admin", Role.OWNER, org.json()["id"],
            )  # fmt: skip
            before = await client.task_access(caller(ADMIN_TOKEN, LAB), task_id)
            assert not before.has_jobs

            segments = [Segment(start_frame=0, stop_frame=4), Segment(start_frame=5, stop_frame=9)]
            body = SegmentsCreate(size=10, media_type="image", chunk_size=5, segments=segments)
            made = await client.create_segment_jobs(task_id, body)
            assert [(job.start_frame, job.stop_frame) for job in made.jobs] == [(0, 4), (5, 9)]
            assert await client.create_segment_jobs(task_id, body) == made  # idempotent

            after = await client.task_access(caller(ADMIN_TOKEN, LAB), task_id)
            assert (after.has_jobs, after.size) == (True, 10)  # the cached answer was dropped
            job = await client.job_access(caller(ADMIN_TOKEN, LAB), made.jobs[1].id)
            assert job.task_frames() == list(range(5, 10))

            with pytest.raises(Problem) as missing:
                await client.task_access(caller(ADMIN_TOKEN, LAB), task_id + 1000)
            assert missing.value.status == 404
            with pytest.raises(Problem) as stranger:
                await client.context(caller("tsr_not-a-real-token"))
            assert stranger.value.status == 401
            assert stranger.value.headers["WWW-Authenticate"].startswith("Bearer")
            other = SegmentsCreate.model_validate({**body.model_dump(), "size": 12})
            with pytest.raises(Problem) as refused:
                await client.create_segment_jobs(task_id, other)
            assert refused.value.status == 409
        finally:
            await client.close()
