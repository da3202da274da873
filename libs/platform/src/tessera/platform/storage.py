"""S3-compatible object storage over aiobotocore.

Large objects are written with multipart upload and read as streams, so neither
direction holds a whole object in memory. Presigned GET URLs are SigV4.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp.http_exceptions import HttpProcessingError
from botocore.exceptions import BotoCoreError, ClientError

MIN_PART_SIZE = 5 * 1024 * 1024
READ_TRIES = 3
# A body cut off mid-read (a pooled connection the server closed): botocore retries the
# request, not the reading of its body.
_CUT_SHORT = (aiohttp.ClientError, HttpProcessingError, BotoCoreError)
SINGLE_PUT_LIMIT = 8 * 1024 * 1024


class ObjectNotFound(KeyError):
    """The key does not exist in the bucket."""


class ObjectStorage:
    """One S3 client per service process, bound to the service's bucket."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        """Keys given: static credentials; none: the AWS default chain (env, IRSA, profile)."""
        self.bucket = bucket
        credentials = (
            {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
            if access_key and secret_key
            else {}
        )
        self._client_args: dict[str, Any] = {
            **credentials,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "config": AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        }
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        """Open the client."""
        self._client = await self._stack.enter_async_context(
            get_session().create_client("s3", **self._client_args)
        )

    async def close(self) -> None:
        """Close the client."""
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        """The underlying aiobotocore S3 client."""
        if self._client is None:
            raise RuntimeError("ObjectStorage.start() has not been awaited")
        return self._client

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (used in dev; Terraform makes it in prod)."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
                await self.client.create_bucket(Bucket=self.bucket)

    async def ping(self) -> None:
        """Raise unless the bucket answers."""
        await self.client.head_bucket(Bucket=self.bucket)

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        """Write a small object in one request."""
        await self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )

    async def get(self, key: str) -> bytes:
        """Read a whole (small) object; a read the connection cut short is read again."""
        for attempt in range(READ_TRIES):
            try:
                return b"".join([chunk async for chunk in self.stream(key)])
            except _CUT_SHORT:
                if attempt + 1 == READ_TRIES:
                    raise
                await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    async def stream(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Read an object as a stream of chunks."""
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise
        async with response["Body"] as body:
            while chunk := await body.read(chunk_size):
                yield chunk

    async def size(self, key: str) -> int:
        """The size of an object in bytes."""
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(key) from exc
            raise
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        """Delete an object (no error if it is absent)."""
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`, in key order (ListObjectsV2 pages)."""
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield item["Key"], int(item["Size"])

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (1,000 per request); how many there were."""
        keys = [key async for key, _ in self.list_keys(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            await self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
        return len(keys)

    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Write a local file (one request when small, else multipart 8 MiB at a time); its size."""
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        if size < SINGLE_PUT_LIMIT:
            data = await asyncio.to_thread(path.read_bytes)
            await self.put(key, data, content_type=content_type)
            return len(data)
        async with self.upload(key, content_type=content_type) as upload:
            with path.open("rb") as source:
                while block := await asyncio.to_thread(source.read, 8 * 2**20):
                    await upload.write(block)
        return upload.size

    async def get_file(self, key: str, path: Path) -> int:
        """Copy an object into a local file; its size."""
        size = 0
        with path.open("wb") as target:
            async for block in self.stream(key, chunk_size=8 * 2**20):
                await asyncio.to_thread(target.write, block)
                size += len(block)
        return size

    def upload(
        self, key: str, *, content_type: str = "application/octet-stream"
    ) -> MultipartUpload:
        """A multipart upload: `async with storage.upload(key) as up: await up.write(b)`."""
        return MultipartUpload(self, key, content_type)

    async def presigned_get(
        self, key: str, *, expires_in: int = 3600, filename: str | None = None
    ) -> str:
        """A SigV4 presigned GET URL for `key`."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = await self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return url


class MultipartUpload:
    """Buffers writes into parts of at least 5 MiB; completes on success, aborts on error."""

    def __init__(self, storage: ObjectStorage, key: str, content_type: str) -> None:
        self.storage = storage
        self.key = key
        self.content_type = content_type
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.size = 0
        self._buffer = bytearray()

    async def __aenter__(self) -> MultipartUpload:
        created = await self.storage.client.create_multipart_upload(
            Bucket=self.storage.bucket, Key=self.key, ContentType=self.content_type
        )
        self.upload_id = created["UploadId"]
        return self

    async def write(self, data: bytes) -> None:
        """Append bytes; a part is sent whenever the buffer reaches the minimum part size."""
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= MIN_PART_SIZE:
            await self._send_part()

    async def _send_part(self) -> None:
        number = len(self.parts) + 1
        response = await self.storage.client.upload_part(
            Bucket=self.storage.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client, bucket = self.storage.client, self.storage.bucket
        if exc_type is not None:
            await client.abort_multipart_upload(
                Bucket=bucket, Key=self.key, UploadId=self.upload_id
            )
            return
        if self._buffer or not self.parts:
            await self._send_part()
        await client.complete_multipart_upload(
            Bucket=bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
