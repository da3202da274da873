"""Fixtures of the audit log tests: users besides the admin, with their clients."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from tessera.devstack.testing import ServiceHandle
from tessera.platform.auth import ensure_token, ensure_user


@dataclass(frozen=True)
class Person:
    """A user with a personal access token and a client that sends it."""

    id: int
    username: str
    client: httpx.AsyncClient


Enrol = Callable[[ServiceHandle, str], Awaitable[Person]]


@pytest.fixture
async def enrol() -> AsyncIterator[Enrol]:
    """`await enrol(svc, "alice")`: a new user of that service with a token and a client."""
    clients: list[httpx.AsyncClient] = []

    async def enrol_(svc: ServiceHandle, username: str) -> Person:
        token = f"tsr_{username}-audit-token-0123456789abcdefghij"
        async with svc.platform.database.transaction() as session:
            user_id = await ensure_user(
                session, username=username, email=f"{username}@example.com", password=token
            )
            await ensure_token(session, owner_id=user_id, name="test", token=token)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=svc.app, raise_app_exceptions=False),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        )
        clients.append(client)
        return Person(user_id, username, client)

    yield enrol_
    for client in clients:
        await client.aclose()
