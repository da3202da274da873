"""The archive stream: a complete archive reaches the upload, a failed one raises and
leaves nothing behind to write itself later."""

from __future__ import annotations

import gc
import io
import warnings
import zipfile

import pytest

from tessera.export.archive import Bridge, stream_archive


class _Upload:
    """What stream_archive needs of a multipart upload: `write`."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, block: bytes) -> None:
        self.data += block


async def test_a_complete_archive_is_uploaded_whole() -> None:
    upload = _Upload()

    async def fill(archive: zipfile.ZipFile, bridge: Bridge) -> None:
        del bridge
        with archive.open("a.txt", "w", force_zip64=True) as member:
            member.write(b"x" * 20_000_000)  # more than two blocks
        archive.writestr("b.txt", b"b")

    await stream_archive(upload, fill)  # type: ignore[arg-type]

    with zipfile.ZipFile(io.BytesIO(bytes(upload.data))) as archive:
        assert archive.namelist() == ["a.txt", "b.txt"]
        assert archive.read("a.txt") == b"x" * 20_000_000


async def test_a_failed_archive_raises_and_never_writes_its_end() -> None:
    upload = _Upload()

    async def fill(archive: zipfile.ZipFile, bridge: Bridge) -> None:
        del bridge
        with archive.open("a.txt", "w", force_zip64=True) as member:
            member.write(b"partial")
            raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError, match="the writer failed"):
        await stream_archive(upload, fill)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.collect()  # the abandoned ZipFile must not write (or fail) when collected
    assert not zipfile.is_zipfile(io.BytesIO(bytes(upload.data)))
