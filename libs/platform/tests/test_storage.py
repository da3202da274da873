"""Object storage against the real S3 endpoint of the test session."""

import httpx
import pytest

from tessera.devstack.testing import OpenService
from tessera.platform.storage import MIN_PART_SIZE, ObjectNotFound


async def test_put_get_stream_size_delete(open_service: OpenService) -> None:
    async with open_service("ingest") as svc:
        storage = svc.platform.storage
        await storage.put("a/b.txt", b"hello", content_type="text/plain")
        assert await storage.get("a/b.txt") == b"hello"
        assert await storage.size("a/b.txt") == 5
        chunks = [chunk async for chunk in storage.stream("a/b.txt", chunk_size=2)]
        assert b"".join(chunks) == b"hello"
        await storage.delete("a/b.txt")
        with pytest.raises(ObjectNotFound):
            await storage.get("a/b.txt")
        with pytest.raises(ObjectNotFound):
            await storage.size("a/b.txt")


async def test_multipart_upload_and_presigned_get(open_service: OpenService) -> None:
    payload = bytes(range(256)) * ((MIN_PART_SIZE * 2 + 12345) // 256)
    async with open_service("export") as svc:
        storage = svc.platform.storage
        async with storage.upload("exports/big.bin") as upload:
            for start in range(0, len(payload), 1_000_000):
                await upload.write(payload[start : start + 1_000_000])
        assert len(upload.parts) == 2  # 6 MB parts (1 MB writes), then the rest
        assert await storage.size("exports/big.bin") == len(payload)
        url = await storage.presigned_get("exports/big.bin", expires_in=60, filename="big.bin")
        async with httpx.AsyncClient() as plain:
            response = await plain.get(url)
        assert response.status_code == 200
        assert response.content == payload
        async with httpx.AsyncClient() as plain:
            tampered = await plain.get(url.replace("exports/big.bin", "exports/other.bin"))
        assert tampered.status_code == 403


async def test_failed_multipart_upload_leaves_no_object(open_service: OpenService) -> None:
    async with open_service("export") as svc:
        storage = svc.platform.storage
        with pytest.raises(RuntimeError):
            async with storage.upload("exports/broken.bin") as upload:
                await upload.write(b"x" * (MIN_PART_SIZE + 1))
                raise RuntimeError("the export failed half way")
        with pytest.raises(ObjectNotFound):
            await storage.size("exports/broken.bin")
