"""Sending webhook deliveries: signed POSTs, retried with exponential backoff.

Deliveries are rows of `webhook_deliveries` with `next_attempt_at` (null once done). The
`Deliverer` loop claims due rows (leasing them, so a crashed worker's claims come back
after the lease and two workers never send the same row at once), sends each in a task
of its own (a slow or dead receiver delays only its own deliveries, up to the timeout),
and records the answer. A failure (not 2xx, or no answer) is tried again after
`retry_base_s`, then twice as long each time, up to `max_attempts` attempts in all.
Rows in a table rather than JetStream redeliveries keep every attempt visible in the API
and let a redelivery be requested long after the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.webhooks import repository
from tessera.platform.bus import BackgroundLoop
from tessera.platform.db import Database
from tessera.platform.telemetry import http_client

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-256"
RESPONSE_EXCERPT = 1000
LEASE_S = 120.0


def signature(secret: str, body: bytes) -> str:
    """CVAT's `X-Signature-256` value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """What one POST to a receiver came to."""

    status_code: int | None
    response: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer(BackgroundLoop):
    """Sends due deliveries in the background; `send` also serves pings."""

    task_name = "webhook-deliveries"

    def __init__(
        self,
        database: Database,
        *,
        max_attempts: int,
        retry_base_s: float,
        timeout_s: float,
        concurrency: int = 32,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.database = database
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self._clients = {
            verify: http_client(timeout=timeout_s, verify=verify, follow_redirects=False)
            for verify in (True, False)
        }
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Look for due deliveries as soon as `session`'s transaction commits."""
        sa_event.listen(session.sync_session, "after_commit", lambda _: self._wake.set(), once=True)

    async def stop(self) -> None:
        """Stop claiming, cancel the attempts in flight (their leases expire), close clients."""
        await super().stop()
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        for client in self._clients.values():
            await client.aclose()

    async def send(self, hook: dict[str, Any], request: dict[str, Any]) -> Attempt:
        """POST `request` to the hook's target, signed with its secret; never raises."""
        body = orjson.dumps(request)
        headers = {"Content-Type": hook["content_type"]}
        if hook["secret"]:
            headers[SIGNATURE_HEADER] = signature(hook["secret"], body)
        started = time.perf_counter()
        try:
            response = await self._clients[bool(hook["enable_ssl"])].post(
                hook["target_url"], content=body, headers=headers
            )
        except Exception as exc:
            status, text = None, f"{type(exc).__name__}: {exc}"
        else:
            status, text = response.status_code, response.text
        duration = int((time.perf_counter() - started) * 1000)
        return Attempt(status, text[:RESPONSE_EXCERPT], duration)

    def outcome(self, attempts: int, attempt: Attempt) -> dict[str, Any]:
        """The columns recording the `attempts`-th attempt, with when to retry (if ever)."""
        retry = not attempt.succeeded and attempts < self.max_attempts
        delay = self.retry_base_s * 2 ** (attempts - 1)
        return {
            "status_code": attempt.status_code,
            "response": attempt.response,
            "request_duration": attempt.duration_ms,
            "attempts": attempts,
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay) if retry else None,
        }

    async def _deliver(self, row: dict[str, Any]) -> None:
        attempts = row["attempts"] + 1
        if row["is_active"]:
            attempt = await self.send(row, row["request"])
            values = self.outcome(attempts, attempt)
        else:
            values = {"next_attempt_at": None, "response": "not sent: the webhook is inactive"}
        async with self.database.transaction() as session:
            await repository.record_attempt(session, row["id"], values)
        if values["next_attempt_at"] is not None:
            logger.info("delivery %s failed (attempt %s); retrying later", row["id"], attempts)

    async def _claim(self) -> int:
        room = self.concurrency - len(self._in_flight)
        if room <= 0:
            return 0
        lease_until = datetime.now(UTC) + timedelta(seconds=LEASE_S)
        async with self.database.transaction() as session:
            rows = await repository.claim_due(session, room, lease_until)
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"webhook-delivery-{row['id']}")
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a webhook delivery failed", exc_info=task.exception())
        self._wake.set()

    async def _run(self) -> None:
        while self.running:
            try:
                claimed = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("claiming webhook deliveries failed (%s); retrying", exc)
                claimed = 0
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()
