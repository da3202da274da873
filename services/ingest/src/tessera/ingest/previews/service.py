"""Preview thumbnails of tasks, jobs and projects, as CVAT makes them.

CVAT (2.x, `cvat/apps/engine/cache.py`, `prepare_preview_image`) takes the first frame of
the segment (a task's: the segment holding frame 0; a job's: the first frame of its
segment), at compressed quality, turns it as its EXIF orientation says, fits it into
256 x 256 with `Image.thumbnail` (never enlarging) and answers it as an RGB JPEG (Pillow's
default quality); a 3D task's preview is a fixed picture. A project's preview is that of
its newest task (`tasks.order_by('-id').first()`).

Here an image frame is decoded from its original (the compressed frame is a JPEG made
from it: decoding it again would only lose detail), a video frame from the compressed
(JPEG) frame, so the thumbnail is the same picture.

Previews are kept: a task's media never changes once made (CVAT refuses more data), so
the thumbnail of frame `n` is made once, on first request, and stored under the task's
media prefix (`tasks/{id}/media/previews/...`), where it goes with the media. Making one
reads a whole original (megabytes from S3, or from the task's cloud storage) or decodes
a video frame (the first one downloads and indexes the video); reading the stored one is
a small object GET. Task lists ask for a preview per task on every page, from any
replica, so the stored thumbnail is shared by all of them.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageDraw, ImageFont, ImageOps
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.creation.build import media_prefix
from tessera.ingest.frames import repository as frames_repository
from tessera.ingest.frames.service import MediaReader
from tessera.ingest.media.images import to_8bit
from tessera.platform.errors import NotFound
from tessera.platform.storage import ObjectNotFound

PREVIEW_SIZE = (256, 256)
"""The box a preview fits in (CVAT's `PREVIEW_SIZE`)."""
PREVIEW_MEDIA_TYPE = "image/jpeg"
PREVIEW_VERSION = "v1"
"""Part of the stored previews' keys: a change to how they are made takes a new one."""


def preview_key(task_id: int, number: int) -> str:
    """Where the preview of task frame `number` is kept."""
    return f"{media_prefix(task_id)}previews/{PREVIEW_VERSION}/{number:06d}.jpeg"


def make_preview(data: bytes) -> bytes:
    """The preview of an encoded image: oriented as displayed, fitted into `PREVIEW_SIZE`
    (never enlarged), as an RGB JPEG. A JPEG is decoded at a reduced scale (no smaller
    than the preview) rather than whole."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", PREVIEW_SIZE)
        oriented = ImageOps.exif_transpose(image)
        oriented.thumbnail(PREVIEW_SIZE)
        return _jpeg(to_8bit(oriented).convert("RGB"))


def placeholder_3d() -> bytes:
    """The preview of a 3D task (CVAT shows a fixed picture for point clouds)."""
    image = Image.new("RGB", PREVIEW_SIZE, (54, 61, 74))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    draw.text((PREVIEW_SIZE[0] / 2, PREVIEW_SIZE[1] / 2), "3D", fill=(230, 230, 230),
              font=font, anchor="mm")  # fmt: skip
    return _jpeg(image)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


async def frame_preview(
    session: AsyncSession, reader: MediaReader, task_id: int, number: int
) -> bytes:
    """The preview of task frame `number` (JPEG bytes): the stored one, or made and
    stored. A task without media (yet) is a 404, as CVAT answers."""
    media = await frames_repository.ready_media(session, task_id)
    if media is None:
        raise NotFound(f"Task image preview not found: task {task_id} has no data yet.")
    key = preview_key(task_id, number)
    try:
        return await reader.storage.get(key)
    except ObjectNotFound:
        pass
    if media.dimension == "3d":
        data = await asyncio.to_thread(placeholder_3d)
    else:
        quality = "compressed" if media.media_type == "video" else "original"
        frame = await reader.frame(session, task_id, number, quality)
        data = await asyncio.to_thread(make_preview, frame.data)
    await reader.storage.put(key, data, content_type=PREVIEW_MEDIA_TYPE)
    return data
