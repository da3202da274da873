"""Cloud storages: who may see and change them, checking a bucket before saving it, and
opening a storage's bucket for task creation and frame reads.

Rules, as CVAT's: in the personal workspace a user sees and changes their own storages
(administrators see all); in an organization, owners, maintainers and supervisors see
the organization's storages, owners and maintainers (and the storage's owner) change
them, and only owners and maintainers create them. Others get 404 for storages they do
not see, so their existence is not revealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.cloud_storages import repository as repo
from tessera.ingest.cloud_storages.bucket import (
    BucketConfig,
    CloudBucket,
    CloudDenied,
    CloudError,
    CloudNotFound,
)
from tessera.ingest.cloud_storages.schemas import (
    CloudStoragePatch,
    CloudStorageRead,
    CloudStorageWrite,
    ContentEntry,
    ContentPage,
    StorageOwner,
    check_keys,
)
from tessera.ingest.config import IngestSettings
from tessera.ingest.media.kinds import media_kind
from tessera.platform.contracts.annotations import CallerContext
from tessera.platform.contracts.ingest import CloudObjectWritten
from tessera.platform.db import Database
from tessera.platform.egress import EgressRefused, check_public_url
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query
from tessera.platform.secrets import SecretBox

_KEY_FIELDS = ("key", "secret_key", "session_token")
SHARED_BUCKET_TTL_S = 60.0

list_query_of_storages = list_query(repo.LIST_SPEC)
"""FastAPI dependency: the cloud storage list's parameters (CVAT's)."""


def to_read(row: Any) -> CloudStorageRead:
    """The API view of a storage row (never its keys)."""
    return CloudStorageRead(
        id=row.id,
        owner=StorageOwner(url=f"/api/users/{row.owner_id}", id=row.owner_id,
                           username=row.owner_username),
        manifests=list(row.manifests),
        provider_type=row.provider_type,
        resource=row.resource,
        display_name=row.display_name,
        created_date=row.created_date,
        updated_date=row.updated_date,
        credentials_type=row.credentials_type,
        specific_attributes=row.specific_attributes,
        description=row.description,
        organization=row.organization_id,
    )  # fmt: skip


class CloudStorages:
    """The cloud storage resource, and the buckets behind it."""

    def __init__(self, database: Database, settings: IngestSettings) -> None:
        self._database = database
        self._settings = settings
        self._box = SecretBox(settings.secrets_key.get_secret_value())
        self._shared: dict[int, tuple[float, CloudBucket]] = {}
        self._retired: list[tuple[float, CloudBucket]] = []
        self._opening = asyncio.Lock()

    async def shared_bucket(self, storage_id: int) -> CloudBucket:
        """An open client of a storage's bucket for frame reads, shared by requests and
        reopened every SHARED_BUCKET_TTL_S so that changed keys or endpoints apply."""
        now = time.monotonic()
        entry = self._shared.get(storage_id)
        if entry is not None and now - entry[0] < SHARED_BUCKET_TTL_S:
            return entry[1]
        async with self._opening:
            entry = self._shared.get(storage_id)
            if entry is not None and now - entry[0] < SHARED_BUCKET_TTL_S:
                return entry[1]
            async with self._database.transaction() as session:
                row = await repo.get(session, storage_id)
                if row is None:
                    raise CloudError(f"cloud storage {storage_id}", "no longer exists")
                bucket = await self.open(session, row)
            await bucket.__aenter__()
            if entry is not None:
                self._retired.append((now, entry[1]))
            self._shared[storage_id] = (now, bucket)
            # A retired client may still serve reads that began before; close it later.
            while self._retired and now - self._retired[0][0] > SHARED_BUCKET_TTL_S:
                await self._retired.pop(0)[1].__aexit__(None, None, None)
            return bucket

    def _retire_shared(self, storage_id: int) -> None:
        """Stop sharing a storage's client here (its keys or bucket changed); closed later."""
        entry = self._shared.pop(storage_id, None)
        if entry is not None:
            self._retired.append((time.monotonic(), entry[1]))

    async def close(self) -> None:
        """Close the shared bucket clients."""
        for _, bucket in [*self._shared.values(), *self._retired]:
            await bucket.__aexit__(None, None, None)
        self._shared.clear()
        self._retired.clear()

    async def create(
        self, session: AsyncSession, ctx: CallerContext, body: CloudStorageWrite
    ) -> CloudStorageRead:
        """Check the bucket answers with these keys, then save the storage."""
        if ctx.organization_id is not None and not ctx.manages_organization:
            raise Problem(403, "Only owners and maintainers add cloud storages to an organization.")
        keys = {name: getattr(body, name) for name in _KEY_FIELDS if getattr(body, name)}
        config = await self._config(body.resource, body.specific_attributes, keys)
        await self._check_bucket(config, body.specific_attributes, body.manifests)
        secret_id = await repo.insert_secret(session, self._box.seal(keys)) if keys else None
        row = await repo.insert(
            session,
            {
                "owner_id": ctx.user_id,
                "owner_username": ctx.username,
                "organization_id": ctx.organization_id,
                "provider_type": body.provider_type,
                "resource": body.resource,
                "display_name": body.display_name,
                "description": body.description,
                "credentials_type": body.credentials_type,
                "secret_id": secret_id,
                "specific_attributes": body.specific_attributes,
                "manifests": body.manifests,
            },
        )
        return to_read(row)

    async def page(
        self, session: AsyncSession, ctx: CallerContext, query: ListQuery
    ) -> tuple[int, list[CloudStorageRead]]:
        """The storages the caller sees in their context that match the list query."""
        condition = repo.visible(
            ctx.user_id, ctx.organization_id,
            is_admin=ctx.is_admin, whole_organization=ctx.sees_whole_organization,
        )  # fmt: skip
        count, rows = await repo.page(session, condition, query)
        return count, [to_read(row) for row in rows]

    async def get(self, session: AsyncSession, ctx: CallerContext, storage_id: int) -> Any:
        """A storage row the caller sees; 404 otherwise."""
        row = await repo.get(session, storage_id)
        if row is None or not self._sees(ctx, row):
            raise NotFound(f"Cloud storage {storage_id} does not exist or is not visible to you.")
        return row

    async def update(
        self, session: AsyncSession, ctx: CallerContext, storage_id: int, body: CloudStoragePatch
    ) -> CloudStorageRead:
        """Change a storage; new keys replace the old secret. The bucket is checked again."""
        row = await self.get(session, ctx, storage_id)
        self._require_change(ctx, row)
        changes = body.model_dump(exclude_unset=True, exclude=set(_KEY_FIELDS))
        changes = {k: v for k, v in changes.items() if v is not None}
        credentials_type = changes.get("credentials_type", row.credentials_type)
        given = {name: getattr(body, name) for name in _KEY_FIELDS if getattr(body, name)}
        keys = given or (
            await self._keys(session, row) if credentials_type == row.credentials_type else {}
        )
        try:
            check_keys(credentials_type, keys.get("key"), keys.get("secret_key"))
        except ValueError as exc:
            raise unprocessable([("body.credentials_type", str(exc))]) from exc
        attributes = changes.get("specific_attributes", row.specific_attributes)
        resource = changes.get("resource", row.resource)
        config = await self._config(resource, attributes, keys)
        await self._check_bucket(config, attributes, changes.get("manifests", row.manifests))
        if keys != await self._keys(session, row):
            changes["secret_id"] = (
                await repo.insert_secret(session, self._box.seal(keys)) if keys else None
            )
        updated = await repo.update(session, storage_id, changes)
        self._retire_shared(storage_id)
        if "secret_id" in changes and row.secret_id is not None:
            await repo.delete_secret(session, row.secret_id)
        return to_read(updated)

    async def delete(self, session: AsyncSession, ctx: CallerContext, storage_id: int) -> None:
        """Remove a storage and its secret; 409 while tasks read their media from it."""
        row = await self.get(session, ctx, storage_id)
        self._require_change(ctx, row)
        users = await repo.tasks_reading_from(session, storage_id)
        if users:
            shown = ", ".join(str(t) for t in users[:10])
            raise Problem(
                409,
                f"Cloud storage {storage_id} holds the media of tasks {shown}"
                f"{' and more' if len(users) > 10 else ''} (made without copy_data); "
                "delete those tasks first.",
            )
        await repo.delete(session, storage_id)
        self._retire_shared(storage_id)
        if row.secret_id is not None:
            await repo.delete_secret(session, row.secret_id)

    async def content(
        self, session: AsyncSession, ctx: CallerContext, storage_id: int, *,
        prefix: str | None, next_token: str | None, page_size: int,
    ) -> ContentPage:  # fmt: skip
        """One page of a folder of the bucket (the storage's prefix when none is given)."""
        row = await self.get(session, ctx, storage_id)
        folder = prefix if prefix is not None else self.attributes(row).get("prefix", "")
        if folder and not folder.endswith("/"):
            folder += "/"
        try:
            bucket = await self.shared_bucket(storage_id)
            listing = await bucket.list_page(folder, token=next_token, page_size=page_size)
        except CloudError as exc:
            raise Problem(400, str(exc)) from exc
        entries = [
            ContentEntry(name=f[len(folder) :].rstrip("/"), type="DIR", mime_type="DIR")
            for f in listing.folders
        ] + [
            ContentEntry(name=f.key[len(folder) :], type="REG", mime_type=media_kind(f.key))
            for f in listing.files
        ]
        return ContentPage(content=entries, next=listing.next_token)

    async def status(self, session: AsyncSession, ctx: CallerContext, storage_id: int) -> str:
        """AVAILABLE, NOT_FOUND or FORBIDDEN, as the bucket answers now."""
        row = await self.get(session, ctx, storage_id)
        try:
            async with await self.open(session, row) as bucket:
                return await bucket.status()
        except CloudError:
            return "NOT_FOUND"

    async def open(self, session: AsyncSession, row: Any) -> CloudBucket:
        """A client of the storage's bucket (use in `async with`); its endpoint is checked."""
        keys = await self._keys(session, row)
        try:
            config = await self._config(row.resource, row.specific_attributes, keys)
        except Problem as exc:
            raise CloudError(f"s3://{row.resource}/", str(exc.detail)) from exc
        return CloudBucket(config)

    @asynccontextmanager
    async def bucket(self, storage_id: int) -> AsyncIterator[CloudBucket]:
        """The bucket of a storage by id, for background work (no caller context)."""
        async with self._database.transaction() as session:
            row = await repo.get(session, storage_id)
            if row is None:
                raise CloudError(f"cloud storage {storage_id}", "no longer exists")
            bucket = await self.open(session, row)
        async with bucket:
            yield bucket

    async def write_object(
        self, storage_id: int, key: str, chunks: AsyncIterator[bytes]
    ) -> CloudObjectWritten:
        """Write an object into a storage's bucket (another service's archive), refusals as
        problems that name the object and the permission: 403 denied, 404 no bucket."""
        try:
            async with self.bucket(storage_id) as bucket:
                size = await bucket.write(key, chunks)
        except CloudError as exc:
            raise _refusal(exc) from exc
        return CloudObjectWritten(storage_id=storage_id, key=key, size=size)

    async def read_object(self, storage_id: int, key: str) -> AsyncIterator[bytes]:
        """An object of a storage's bucket (a file another service imports), read with the
        storage's credentials; refusals as problems that name the object and the
        permission: 403 denied, 404 no such bucket or object. The first block is read
        before this returns, so a refusal comes before any byte is sent."""
        stack = contextlib.AsyncExitStack()
        try:
            bucket = await stack.enter_async_context(self.bucket(storage_id))
            blocks = bucket.stream(key)
            first = await anext(blocks, b"")
        except BaseException as exc:
            await stack.aclose()
            raise _refusal(exc) from exc

        async def rest() -> AsyncIterator[bytes]:
            async with stack:
                if first:
                    yield first
                try:
                    async for block in blocks:
                        yield block
                except CloudError as exc:
                    raise _refusal(exc) from exc

        return rest()

    def attributes(self, row: Any) -> dict[str, str]:
        """The storage's specific attributes."""
        return dict(parse_qsl(row.specific_attributes))

    def _sees(self, ctx: CallerContext, row: Any) -> bool:
        if ctx.is_admin and ctx.organization_id is None:
            return True
        if row.organization_id != ctx.organization_id:
            return False
        return row.owner_id == ctx.user_id or (
            ctx.organization_id is not None and ctx.sees_whole_organization
        )

    def _require_change(self, ctx: CallerContext, row: Any) -> None:
        if row.owner_id == ctx.user_id or ctx.is_admin:
            return
        if ctx.organization_id is not None and ctx.manages_organization:
            return
        raise Problem(403, "Only the storage's owner and organization maintainers may change it.")

    async def _keys(self, session: AsyncSession, row: Any) -> dict[str, str]:
        if row.secret_id is None:
            return {}
        return self._box.open(await repo.secret(session, row.secret_id))

    async def _config(
        self, resource: str, specific_attributes: str, keys: dict[str, str]
    ) -> BucketConfig:
        attributes = dict(parse_qsl(specific_attributes))
        endpoint = attributes.get("endpoint_url")
        if endpoint:
            try:
                await check_public_url(
                    endpoint,
                    self._settings.remote_allowed_networks,
                    self._settings.cloud_storage_allowed_endpoints,
                )
            except EgressRefused as exc:
                raise unprocessable([("body.specific_attributes", f"endpoint_url {exc}")]) from exc
        return BucketConfig(
            bucket=resource,
            region=attributes.get("region"),
            endpoint_url=endpoint,
            key=keys.get("key"),
            secret_key=keys.get("secret_key"),
            session_token=keys.get("session_token"),
        )

    async def _check_bucket(
        self, config: BucketConfig, specific_attributes: str, manifests: list[str]
    ) -> None:
        prefix = dict(parse_qsl(specific_attributes)).get("prefix", "")
        try:
            async with CloudBucket(config) as bucket:
                await bucket.list_page(prefix, page_size=1)
                for manifest in manifests:
                    await bucket.head(manifest)
        except CloudError as exc:
            raise unprocessable([("body.resource", str(exc))]) from exc


def _refusal(exc: BaseException) -> BaseException:
    """A bucket's failure as the problem another service gets: 403 denied, 404 no bucket
    or object, 502 anything else the bucket answered; other exceptions as they are."""
    if isinstance(exc, CloudDenied):
        return Problem(403, str(exc))
    if isinstance(exc, CloudError):
        return Problem(404 if isinstance(exc, CloudNotFound) else 502, str(exc))
    return exc
