"""What several format writers share: the stream of frames to write, in CVAT's shape order,
and text lists written one member per subset."""

from __future__ import annotations

import asyncio
import contextlib
import os.path
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import IO, Final

from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Shape,
    shapes_as_cvat_writes_them,
)

VIDEO_FRAME_EXT: Final = ".PNG"
"""The extension CVAT gives video frames (`FrameProvider.VIDEO_FRAME_EXT`)."""


def split_frame_name(frame: FrameInfo) -> tuple[str, str]:
    """The item id (the frame's name without its extension, folders kept) and the image's
    extension, as CVAT has them: the name's own, `VIDEO_FRAME_EXT` for a video frame
    (named without one)."""
    root, ext = os.path.splitext(frame.name)
    return root, ext or VIDEO_FRAME_EXT


async def cvat_frames(
    dataset: Dataset, options: ExportOptions, *, yield_every: int
) -> AsyncIterator[tuple[FrameAnnotations, list[Shape]]]:
    """Each frame to write (every frame, only those with shapes or tags with
    `annotated_only`) with its shapes in CVAT's order, yielding to the event loop every
    `yield_every` frames (the CPU work of a long stream must not starve it)."""
    count = 0
    async for item in dataset.frames():
        shapes = shapes_as_cvat_writes_them(item.shapes)
        if options.annotated_only and not shapes and not item.tags:
            continue
        yield item, shapes
        count += 1
        if count % yield_every == 0:
            await asyncio.sleep(0)


async def write_subset_lists(
    dataset: Dataset,
    archive: zipfile.ZipFile,
    options: ExportOptions,
    *,
    member: str,
    line: Callable[[FrameAnnotations, str], str],
    default_subset: str,
    spool_bytes: int,
    copy_bytes: int,
    yield_every: int,
) -> None:
    """Write one text member per subset, `member` formatted with the `subset` (the frame's,
    else the task's, else `default_subset`): `line(item, subset)` for each frame (only
    annotated ones with `annotated_only`), in frame order, subsets in the order they first
    appear. With no frame at all, the task's subset gets an empty member. The lines are
    spooled (in memory up to `spool_bytes`, on disk past that) and copied into the archive
    `copy_bytes` at a time at the end."""
    task = dataset.task
    spools: dict[str, IO[bytes]] = {}
    with contextlib.ExitStack() as stack:
        async for item, _ in cvat_frames(dataset, options, yield_every=yield_every):
            subset = item.frame.subset or task.subset or default_subset
            spool = spools.get(subset)
            if spool is None:
                spool = spools[subset] = stack.enter_context(
                    tempfile.SpooledTemporaryFile(spool_bytes)
                )
            spool.write(line(item, subset).encode())
        if not spools:
            spools[task.subset or default_subset] = stack.enter_context(
                tempfile.SpooledTemporaryFile(spool_bytes)
            )
        for subset, spool in spools.items():
            with archive.open(member.format(subset=subset), "w", force_zip64=True) as out:
                spool.seek(0)
                while chunk := spool.read(copy_bytes):
                    out.write(chunk)
            await asyncio.sleep(0)
