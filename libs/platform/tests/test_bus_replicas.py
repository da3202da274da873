"""Streams are declared with `TESSERA_NATS_STREAM_REPLICAS` replicas, on a single real NATS
server and on a two-server JetStream cluster; more replicas than JetStream servers fail
the bus's start with a message that says so, instead of running on fewer copies."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from tessera.devstack.servers import Nats, free_port, http_ok, stop_all, venv_binary
from tessera.devstack.testing import OpenService, Stack
from tessera.platform.bus import Bus, StreamReplicasError
from tessera.platform.workqueue import WorkQueue

STREAM = "REPLICAS_TEST"
STREAMS = {STREAM: ("replicas-test.>",)}
QUEUE = WorkQueue(stream=STREAM, subject="replicas-test.run", durable="replicas")


@pytest.fixture
async def nats_client(stack: Stack) -> AsyncIterator[NatsClient]:
    """A connection to the session's NATS server; the test's stream is gone before and after."""
    connection = await nats.connect(stack.nats.url, token=stack.nats.token)
    js = connection.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(STREAM)
    try:
        yield connection
    finally:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(STREAM)
        await connection.close()


async def test_one_replica_on_a_single_server(stack: Stack, nats_client: NatsClient) -> None:
    bus = Bus(stack.nats.url, token=stack.nats.token, stream_replicas=1)
    try:
        await bus.start(streams=STREAMS)
        await bus.ping()
    finally:
        await bus.close()
    info = await nats_client.jetstream().stream_info(STREAM)
    assert info.config.num_replicas == 1


@pytest.mark.parametrize("existing", [False, True], ids=["new-stream", "existing-stream"])
async def test_more_replicas_than_servers_fail_the_start(
    stack: Stack, nats_client: NatsClient, existing: bool
) -> None:
    """Creating the stream and moving an existing one to 3 replicas are both refused."""
    if existing:
        first = Bus(stack.nats.url, token=stack.nats.token)
        await first.start(streams=STREAMS)
        await first.close()
    bus = Bus(stack.nats.url, token=stack.nats.token, stream_replicas=3)
    started = time.monotonic()
    try:
        with pytest.raises(StreamReplicasError) as refused:
            await bus.start(streams=STREAMS, wait=30.0)
        with pytest.raises(StreamReplicasError):
            await bus.ping()
    finally:
        await bus.close()
    assert time.monotonic() - started < 10, "a refusal is not waited out like an outage"
    message = str(refused.value)
    assert f"stream {STREAM} on 3 replicas" in message
    assert "not supported in non-clustered mode" in message
    assert "TESSERA_NATS_STREAM_REPLICAS=3 exceeds the JetStream servers" in message
    if existing:
        info = await nats_client.jetstream().stream_info(STREAM)
        assert info.config.num_replicas == 1


class ClusterNode(Nats):
    """One `nats-server` of a JetStream cluster on loopback."""

    def __init__(self, state_dir: Path, *, name: str, token: str, cluster_port: int) -> None:
        super().__init__(state_dir, port=free_port(), token=token)
        self.server_name = name
        self.cluster_port = cluster_port
        self.routes: Sequence[int] = ()

    def command(self) -> Sequence[str]:
        return [
            venv_binary("nats-server"),
            "--jetstream",
            "--store_dir", str(self.state_dir / "jetstream"),
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
            "--auth", self.token,
            "--server_name", self.server_name,
            "--cluster_name", "replicas-test",
            "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
            "--routes", ",".join(f"nats://127.0.0.1:{port}" for port in self.routes),
        ]  # fmt: skip

    def current(self) -> bool:
        """True once this server follows the cluster's JetStream meta leader."""
        return http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz")


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[ClusterNode]]:
    """Two JetStream servers clustered together."""
    base = Path(tempfile.mkdtemp(prefix="tessera-nats-cluster-"))
    token = uuid.uuid4().hex
    nodes = [
        ClusterNode(base / f"n{i}", name=f"n{i}", token=token, cluster_port=free_port())
        for i in range(2)
    ]
    for node in nodes:
        node.routes = [other.cluster_port for other in nodes]
    try:
        for node in nodes:
            node.spawn()
        for node in nodes:
            node.wait_ready()
        deadline = time.monotonic() + 30
        while not all(node.current() for node in nodes):
            assert time.monotonic() < deadline, "the NATS cluster did not form"
            time.sleep(0.1)
        yield nodes
    finally:
        stop_all(nodes)
        shutil.rmtree(base, ignore_errors=True)


async def _consumer_copies(bus: Bus) -> int:
    info = await bus.jetstream.consumer_info(STREAM, QUEUE.durable)
    assert info.cluster is not None
    return 1 + len(info.cluster.replicas or [])


@pytest.mark.slow
async def test_a_cluster_moves_an_existing_stream_to_the_configured_replicas(
    cluster: list[ClusterNode],
) -> None:
    url, token = cluster[0].url, cluster[0].token
    for replicas in (1, 2):
        bus = Bus(url, token=token, stream_replicas=replicas)
        try:
            await bus.start(streams=STREAMS, wait=30.0)
            info = await bus.jetstream.stream_info(STREAM)
            assert info.config.num_replicas == replicas
            assert info.cluster is not None
            assert len(info.cluster.replicas or []) == replicas - 1
            # A work queue's consumer follows its stream, the one made before the move too.
            await bus.jetstream.add_consumer(STREAM, QUEUE.consumer_config())
            deadline = time.monotonic() + 15
            while await _consumer_copies(bus) != replicas:
                assert time.monotonic() < deadline, "the consumer did not follow its stream"
                await asyncio.sleep(0.2)
        finally:
            await bus.close()

    bus = Bus(url, token=token, stream_replicas=3)
    try:
        with pytest.raises(StreamReplicasError, match="no suitable peers for placement"):
            await bus.start(streams=STREAMS, wait=30.0)
    finally:
        await bus.close()


async def test_a_service_with_more_stream_replicas_than_servers_does_not_start(
    open_service: OpenService,
) -> None:
    with pytest.raises(StreamReplicasError, match="TESSERA_NATS_STREAM_REPLICAS=3 exceeds"):
        async with open_service("annotations", nats_stream_replicas=3):
            pass
