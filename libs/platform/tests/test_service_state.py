"""A service's own state: `/readyz` asks its dependencies besides the platform's when the
state has `readiness_checks()`, and its collectors in `platform.metrics.registry` are
served at `/metrics`."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter

from tessera.devstack.testing import run_app
from tessera.platform.service import Platform, ReadinessCheck, ServiceSpec, create_service_app
from tessera.platform.settings import PlatformSettings


@dataclass
class Engine:
    """A dependency that answers or not."""

    up: bool

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionError("the engine does not answer")


@dataclass
class State:
    engine: Engine
    calls: Counter

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        return {"engine": self.engine.ping}


async def test_readiness_asks_the_service_dependencies_and_metrics_show_its_own(
    service_settings: dict[str, Any],
) -> None:
    engine = Engine(up=True)

    @asynccontextmanager
    async def running(platform: Platform) -> AsyncIterator[State]:
        calls = Counter("probe_calls", "Calls", registry=platform.metrics.registry)
        calls.inc(3)
        yield State(engine, calls)

    spec = ServiceSpec(
        name="probe",
        schema="probe",
        version="0",
        description="a service with a dependency of its own",
        migrations=Path(__file__).parent,
        lifespan=running,
    )
    async with run_app(create_service_app(spec, PlatformSettings(**service_settings))) as svc:
        ready = await svc.anonymous.get("/readyz")
        engine.up = False
        down = await svc.anonymous.get("/readyz")
        metrics = await svc.anonymous.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "nats": "ok",
        "storage": "ok",
        "engine": "ok",
    }
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["checks"]["engine"] == "ConnectionError: the engine does not answer"
    assert "engine" in down.json()["detail"]
    assert "probe_calls_total 3.0" in metrics.text


async def test_a_service_without_storage_needs_no_bucket_to_be_ready(
    service_settings: dict[str, Any],
) -> None:
    seen: list[Platform] = []

    @asynccontextmanager
    async def running(platform: Platform) -> AsyncIterator[None]:
        seen.append(platform)
        yield None

    spec = ServiceSpec(
        name="probe",
        schema="probe",
        version="0",
        description="a service that keeps nothing in the bucket",
        migrations=Path(__file__).parent,
        lifespan=running,
        uses_storage=False,
    )
    # An S3 endpoint where nothing listens, and no keys: as annotations runs on EKS.
    settings = {**service_settings, "s3_endpoint_url": "http://127.0.0.1:9", "s3_access_key": None}
    async with run_app(create_service_app(spec, PlatformSettings(**settings))) as svc:
        ready = await svc.anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "nats": "ok"}
    (platform,) = seen
    assert platform.object_storage is None
    with pytest.raises(RuntimeError, match="does not use object storage"):
        _ = platform.storage
