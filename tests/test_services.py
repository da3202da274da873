"""What every service offers: health, readiness, metrics, OpenAPI, and a token on every API path."""

import pytest

from tessera.devstack.testing import OpenService

SERVICES = ["annotations", "ingest", "export", "inference"]
# The services that keep objects in the bucket; the others open no S3 client at all (on
# EKS they have no IAM role), so their readiness does not ask for it.
BUCKET_USERS = ["ingest", "export"]
# Dependencies a service's readiness asks besides the database, NATS and object storage.
OWN_CHECKS = {"inference": {"triton": "ok", "triton:ppocr_v4_det": "ok"}}
# The work queues (stream, durable consumer) whose depth a service reports at `/metrics`
# (the chart's README, "Scaling signals").
QUEUES = {
    "ingest": [("INGEST", "ingest-creation")],
    "export": [("EXPORT", "export-dataset"), ("EXPORT", "import-annotations"),
               ("EXPORT", "restore-backups"), ("EXPORT", "import-datasets")],
    "inference": [("INFERENCE", "inference-annotate")],
}  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
async def test_service_skeleton(
    open_service: OpenService, service: str, request: pytest.FixtureRequest
) -> None:
    # The inference service is ready once Triton serves its functions' models.
    overrides = (
        {"triton_url": request.getfixturevalue("triton").url} if service == "inference" else {}
    )
    async with open_service(service, **overrides) as svc:
        health = await svc.anonymous.get("/healthz")
        ready = await svc.anonymous.get("/readyz")
        await svc.client.get("/api/anything")
        metrics = await svc.anonymous.get("/metrics")
        schema = await svc.anonymous.get("/openapi.json")
        unauthenticated = await svc.anonymous.get("/api/anything")
        authenticated_unknown = await svc.client.get("/api/anything")
    assert health.json() == {"status": "ok", "service": service}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "nats": "ok",
        **({"storage": "ok"} if service in BUCKET_USERS else {}),
        **OWN_CHECKS.get(service, {}),
    }
    assert health.headers["x-tessera-service"] == service
    labels = f'method="GET",route="/healthz",service="{service}",status="200"'
    counter = f"tessera_http_requests_total{{{labels}}}"
    assert f"{counter} 1.0" in metrics.text
    assert "tessera_http_request_duration_seconds_bucket" in metrics.text
    for stream, consumer in QUEUES.get(service, []):
        depth = f'tessera_workqueue_pending_messages{{consumer="{consumer}",stream="{stream}"}}'
        assert depth in metrics.text, depth
    assert schema.json()["info"]["title"] == f"Tessera {service}"
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"
    assert authenticated_unknown.status_code == 404
    assert authenticated_unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("service", BUCKET_USERS)
async def test_readiness_names_the_dependency_that_is_down(
    open_service: OpenService, service: str
) -> None:
    async with open_service(
        service, s3_bucket="no-such-bucket-here", s3_create_bucket=False
    ) as svc:
        ready = await svc.anonymous.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] != "ok"
    assert "storage" in body["detail"]


@pytest.mark.parametrize("service", sorted(set(SERVICES) - set(BUCKET_USERS)))
async def test_a_service_without_objects_is_ready_without_the_bucket(
    open_service: OpenService, service: str, request: pytest.FixtureRequest
) -> None:
    overrides = (
        {"triton_url": request.getfixturevalue("triton").url} if service == "inference" else {}
    )
    async with open_service(
        service, s3_bucket="no-such-bucket-here", s3_create_bucket=False, **overrides
    ) as svc:
        ready = await svc.anonymous.get("/readyz")
    assert ready.status_code == 200
    assert "storage" not in ready.json()["checks"]
