"""A task's or a job's frame rendered with its annotations.

The caller's right to see the task or the job is asked of the annotations service with
their own credentials (as the annotations GET decides it). Then, with the service token:

- the frame's objects, from the annotations service's snapshot of that one frame
  (`AnnotationsClient.snapshot(..., frame=n)`): its tags and shapes and the tracks that
  may be visible there, read through the (job, frame) indexes. Reading the whole task's
  snapshot for one frame would stream every object of every job (millions, on a big
  task) to keep a handful; the frame's read costs what is on the frame plus the tracks
  alive there. A task's frame is read from every job that holds it (overlapping jobs
  give their copies of one object once, by id, as the export's `SnapshotDataset`
  does); a job's frame from that job alone;
- each track at its position on the frame (`tessera.geometry.iter_interpolated_shapes`
  from that frame to that frame: CVAT's interpolation, without expanding the frames
  before it);
- the frame's image from ingest (`IngestClient.original_frame`: the original file, or a
  video's decoded frame), turned as its EXIF orientation says (as frames are shown and
  annotated);

and `draw.render` draws them; the picture is encoded as PNG or JPEG.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from fastapi import Request
from PIL import Image, ImageOps

from tessera.export.model import Label, Shape, ShapeType, Tag
from tessera.export.renders.draw import RenderOptions, render
from tessera.export.snapshot_dataset import convert_label
from tessera.geometry import iter_interpolated_shapes
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.errors import NotFound, Problem

logger = logging.getLogger(__name__)

ImageFormat = Literal["png", "jpeg"]
MEDIA_TYPES: Mapping[ImageFormat, str] = {"png": "image/png", "jpeg": "image/jpeg"}
DEFAULT_JPEG_QUALITY = 90
_SHAPE_TYPES = frozenset(get_args(ShapeType))


@dataclass(frozen=True)
class FrameObjects:
    """What shows on one frame: the labels, the task's dimension, the frame's shapes
    (tracks at their interpolated position, `outside` ones included) and tags."""

    labels: list[Label]
    dimension: str
    objects: list[Shape | Tag]


@dataclass(frozen=True)
class Picture:
    """What a render makes: how the annotations are drawn, the format and JPEG quality."""

    options: RenderOptions = field(default_factory=RenderOptions)
    image_format: ImageFormat = "png"
    quality: int | None = None


@dataclass(frozen=True)
class Rendered:
    """An encoded picture and its media type."""

    data: bytes
    media_type: str


def _shape(obj: Mapping[str, Any], track_id: int | None = None) -> Shape:
    """A shape (or a track's shape on a frame) in CVAT's JSON form as the model's."""
    kind = obj["type"]
    if kind not in _SHAPE_TYPES:
        raise ValueError(f"unknown shape type {kind!r}")
    return Shape(
        type=kind,
        label_id=int(obj["label_id"]),
        points=[float(v) for v in obj.get("points") or ()],
        rotation=float(obj.get("rotation") or 0.0),
        occluded=bool(obj.get("occluded", False)),
        outside=bool(obj.get("outside", False)),
        z_order=int(obj.get("z_order") or 0),
        elements=tuple(_shape(element, track_id) for element in obj.get("elements") or ()),
        track_id=track_id,
    )


def track_on_frame(track: Mapping[str, Any], frame: int) -> Shape | None:
    """The track's shape on `frame` (an outside one included), None where it has none."""
    if int(track.get("frame", 0)) > frame:
        return None
    for shape in iter_interpolated_shapes(track, frame, start_frame=frame):
        if shape["frame"] == frame:
            track_id = track.get("id")
            return _shape(shape, None if track_id is None else int(track_id))
    return None


async def frame_objects(
    annotations: AnnotationsClient, frame: int, *, task_id: int | None = None,
    job_id: int | None = None,
) -> FrameObjects:  # fmt: skip
    """The objects on task frame `frame` of a task or a job (one of `task_id`, `job_id`),
    from the annotations service's snapshot of that frame."""
    objects: list[Shape | Tag] = []
    seen: set[tuple[str, int]] = set()
    async with annotations.snapshot(task_id=task_id, job_id=job_id, frame=frame) as snapshot:
        header = snapshot.header
        async for item in snapshot:
            data = item.data
            if data.get("id") is not None:
                key = (item.kind, int(data["id"]))
                if key in seen:
                    continue  # another overlapping job's copy
                seen.add(key)
            try:
                if item.kind == "track":
                    shape = track_on_frame(data, frame)
                    if shape is not None:
                        objects.append(shape)
                elif int(data["frame"]) != frame:
                    continue
                elif item.kind == "tag":
                    objects.append(Tag(label_id=int(data["label_id"]), id=data.get("id")))
                else:
                    objects.append(_shape(data))
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("a %s %s was left out of a render: %s",
                               item.kind, data.get("id"), exc)  # fmt: skip
    labels = [convert_label(label) for label in header.labels]
    return FrameObjects(labels, header.task.dimension, objects)


def displayed(data: bytes) -> Image.Image:
    """An encoded frame decoded as shown: turned as its EXIF orientation says, in RGB
    (16- and 32-bit grey stretched from their minimum and maximum onto 0..255)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        turned = ImageOps.exif_transpose(image)
    if turned.mode.startswith("I") or turned.mode == "F":
        samples = np.asarray(turned, dtype=np.float64)
        low, high = float(samples.min()), float(samples.max())
        stretch = 255.0 / (high - low) if high > low else 0.0
        turned = Image.fromarray(((samples - low) * stretch).round().astype(np.uint8))
    return turned.convert("RGB")


def encode(picture: Image.Image, image_format: ImageFormat, quality: int | None) -> bytes:
    """The picture as PNG, or as JPEG at `quality` (90 by default)."""
    buffer = io.BytesIO()
    if image_format == "png":
        picture.save(buffer, format="PNG")
    else:
        picture.save(buffer, format="JPEG", quality=quality or DEFAULT_JPEG_QUALITY)
    return buffer.getvalue()


class Renders:
    """Frames rendered with their annotations, for callers who may see them."""

    def __init__(self, annotations: AnnotationsClient, ingest: IngestClient) -> None:
        self.annotations = annotations
        self.ingest = ingest

    async def task_frame(
        self, request: Request, task_id: int, frame: int, picture: Picture
    ) -> Rendered:
        """Task frame `frame` with what every job holding it has on it."""
        task = await self.annotations.task_access(request, task_id)
        if task.dimension == "3d":
            raise _three_d()
        if not task.has_jobs or task.size == 0:
            raise NotFound(f"Task {task_id} has no data yet.")
        if not 0 <= frame < task.size:
            raise _outside(f"frame {frame} is outside the task's frames 0..{task.size - 1}")
        found = await frame_objects(self.annotations, frame, task_id=task_id)
        return await self._render(task_id, frame, found, picture)

    async def job_frame(
        self, request: Request, job_id: int, frame: int, picture: Picture
    ) -> Rendered:
        """Task frame `frame` of a job (one of the job's frames) with the job's objects."""
        job = await self.annotations.job_access(request, job_id)
        if frame not in job.task_frames():
            raise _outside(f"frame {frame} is not a frame of job {job_id}")
        found = await frame_objects(self.annotations, frame, job_id=job_id)
        if found.dimension == "3d":
            raise _three_d()
        return await self._render(job.task_id, frame, found, picture)

    async def _render(
        self, task_id: int, frame: int, found: FrameObjects, picture: Picture
    ) -> Rendered:
        data, _ = await self.ingest.original_frame(task_id, frame)

        def draw() -> bytes:
            drawn = render(displayed(data), found.objects, found.labels, picture.options)
            return encode(drawn, picture.image_format, picture.quality)

        try:
            encoded = await asyncio.to_thread(draw)
        except (OSError, Image.DecompressionBombError) as exc:
            detail = f"Frame {frame} of task {task_id} could not be decoded: {exc}"
            raise Problem(422, detail) from exc
        return Rendered(encoded, MEDIA_TYPES[picture.image_format])


def _three_d() -> Problem:
    return Problem(400, "3D tasks' frames are point clouds: they are not rendered.")


def _outside(detail: str) -> Problem:
    return Problem(400, detail, errors=[{"field": "path.frame", "message": detail}])
