"""Deleting archives once they expire: every replica looks now and then; a row's delete is
atomic, so two replicas never both delete one object's last row."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from tessera.export.exports import repository
from tessera.platform.bus import BackgroundLoop
from tessera.platform.db import Database
from tessera.platform.storage import ObjectStorage

logger = logging.getLogger(__name__)


class ExpiredExports(BackgroundLoop):
    """Deletes expired export rows and the archives no row names any more."""

    task_name = "export-expiry"

    def __init__(self, database: Database, storage: ObjectStorage, interval_s: float) -> None:
        super().__init__()
        self.database = database
        self.storage = storage
        self.interval_s = interval_s

    async def sweep(self) -> int:
        """Delete what has expired now; how many archives were deleted."""
        async with self.database.transaction() as session:
            keys = await repository.delete_expired(session, datetime.now(UTC))
        for key in keys:
            await self.storage.delete(key)
        return len(keys)

    async def _run(self) -> None:
        while self.running:
            try:
                deleted = await self.sweep()
                if deleted:
                    logger.info("deleted %d expired export archives", deleted)
            except Exception:
                logger.exception("expired exports could not be deleted; trying again later")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                continue
