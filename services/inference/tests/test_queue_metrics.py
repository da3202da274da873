"""The scaling signal at `/metrics`: the auto-annotation queue's depth, read from its
JetStream consumer, on a replica that runs no workers."""

from __future__ import annotations

import asyncio
import uuid

from tessera.devstack.testing import OpenService
from tessera.inference.queue import AUTO_ANNOTATION
from tessera.inference.state import InferenceState

LABELS = f'{{consumer="{AUTO_ANNOTATION.durable}",stream="{AUTO_ANNOTATION.stream}"}}'


def _value(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(f"{name}{LABELS} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_queued_requests_show_as_the_queue_depth_without_workers(
    open_service: OpenService,
) -> None:
    """Messages queued while no worker runs anywhere are counted at each scrape. (The
    stream outlives a test, so the count is compared with the one before; the requests do
    not exist, so the workers of a later test acknowledge them without running them.)"""
    # The names an autoscaler is configured with (the chart's README, "Scaling signals").
    assert (AUTO_ANNOTATION.stream, AUTO_ANNOTATION.durable) == ("INFERENCE", "inference-annotate")
    async with open_service("inference", auto_annotation_workers=0) as svc:
        state = svc.app.state.service
        assert isinstance(state, InferenceState)
        assert state.auto_annotation_workers is None

        async def scrape() -> str:
            response = await svc.anonymous.get("/metrics")
            assert response.status_code == 200
            return response.text

        before = _value(await scrape(), "tessera_workqueue_pending_messages")
        assert before is not None  # the consumer exists, made by the first scrape if need be
        platform = svc.platform
        async with platform.database.transaction() as session:
            for _ in range(3):
                rq_id = f"inference-queue-metrics-{uuid.uuid4().hex}"
                await state.auto_annotations.queue.enqueue(session, platform.outbox, rq_id, {})

        deadline = asyncio.get_running_loop().time() + 20
        while True:
            metrics = await scrape()
            if _value(metrics, "tessera_workqueue_pending_messages") == before + 3:
                break
            assert asyncio.get_running_loop().time() < deadline, metrics
            await asyncio.sleep(0.1)
        assert _value(metrics, "tessera_workqueue_ack_pending_messages") is not None
        # This replica runs no workers: nothing of its own to report.
        assert _value(metrics, "tessera_workqueue_running_requests") is None
