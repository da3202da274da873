"""From local files to a task's media: frames, stored originals, chunks and a manifest.

The working folder holds the gathered files; archives are unpacked in place. A task is
either images (any number, from any folders), exactly one video, or point clouds (a 3D
task: `.pcd` files and KITTI `.bin` scans, which become `.pcd` as in CVAT); anything else
is refused naming the file. Images and point clouds get their context images by CVAT's
folder layouts (`tessera.ingest.media.related`); a given `manifest.jsonl` is checked
against the files (`tessera.ingest.creation.given_manifest`). Frames are numbered after
sorting and the frame options (`start_frame`, `stop_frame`, `frame_filter`); chunks are
made now, or on first request when `use_cache` is set. Nothing here touches the database:
`MediaBuild` says what to record.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from av.video.frame import VideoFrame
from PIL import Image

from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.given_manifest import GivenManifest, split_manifest
from tessera.ingest.creation.together import all_or_cancel
from tessera.ingest.media.archives import extract_archive, is_archive_name
from tessera.ingest.media.chunks import (
    write_image_chunk,
    write_lossless_video_chunk,
    write_video_chunk,
)
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.frames import VIDEO_CHUNK_SIZE, auto_chunk_size, frame_numbers
from tessera.ingest.media.images import ImageInfo, is_image_name, read_image_info
from tessera.ingest.media.pointclouds import (
    is_pointcloud_name,
    kitti_to_pcd,
    pcd_name,
    read_pointcloud_info,
    write_pointcloud_chunk,
)
from tessera.ingest.media.related import detect_related_images, is_in_related_folder
from tessera.ingest.media.sorting import sort_names
from tessera.ingest.media.video import (
    VideoIndex,
    decode_frames,
    index_video,
    is_video_name,
    to_rgb,
)
from tessera.ingest.task_data.schemas import DataRequest
from tessera.platform.storage import ObjectStorage

Progress = Callable[[float], Awaitable[None]]
ORIGINALS_AT_ONCE = 16  # objects written to storage at once
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def media_prefix(task_id: int) -> str:
    """Where a task's stored media lives (originals, chunks, manifest)."""
    return f"tasks/{task_id}/media/"


def related_prefix(task_id: int) -> str:
    """Where a task's context images are stored, each under its name among the task's files."""
    return f"{media_prefix(task_id)}related/"


def chunk_key(task_id: int, quality: str, number: int, extension: str) -> str:
    """The object key of a task chunk."""
    return f"{media_prefix(task_id)}chunks/{quality}/{number:06d}.{extension}"


def chunk_row(
    task_id: int, quality: str, number: int, key: str, size: int, *, cached: bool = False
) -> dict[str, Any]:
    """A row of the `chunks` table."""
    return {"task_id": task_id, "quality": quality, "number": number, "object_key": key,
            "size": size, "cached": cached}  # fmt: skip


@dataclass
class FrameRecord:
    """One task frame: its name (relative path), size, the object holding its original, and
    the objects holding its context images."""

    name: str
    width: int
    height: int
    object_key: str | None
    related_keys: list[str] = field(default_factory=list)


@dataclass
class MediaBuild:
    """What a built task's media is, for the database and the annotations service."""

    media_type: str
    size: int
    chunk_size: int
    compressed_chunk_type: str
    original_chunk_type: str
    start_frame: int
    stop_frame: int
    frames: list[FrameRecord]
    chunks: list[dict[str, Any]] = field(default_factory=list)
    video_key: str | None = None
    video_keyframes: list[int] | None = None
    manifest_key: str | None = None
    dimension: str = "2d"


def unpack(workdir: Path, names: list[str], settings: IngestSettings) -> list[str]:
    """Replace archives among `names` by the files they hold (in archive order)."""
    out: list[str] = []
    for name in names:
        if not is_archive_name(name):
            out.append(name)
            continue
        archive = workdir / name
        destination = archive.parent
        extracted = extract_archive(
            archive, destination, max_total_bytes=settings.max_task_bytes,
            max_files=settings.max_archive_files, max_ratio=settings.max_archive_ratio,
        )  # fmt: skip
        archive.unlink()
        prefix = Path(name).parent
        out += [(prefix / entry).as_posix() for entry in extracted]
    return [n for n in out if not any(part in n for part in IGNORED)]


def classify(names: list[str]) -> tuple[str, list[str]]:
    """("image" | "video" | "pointcloud", the media files); MediaError for anything else.

    Images in `related_images` folders are context images, never frames. With point clouds
    among the files every image is a candidate context image, as in CVAT's 3D tasks.
    """
    media = [n for n in names if not is_in_related_folder(n)]
    videos = [n for n in media if is_video_name(n)]
    images = [n for n in media if is_image_name(n)]
    clouds = [n for n in media if is_pointcloud_name(n)]
    for name in media:
        if name not in videos and name not in images and name not in clouds:
            raise MediaError(
                name, "unsupported file type (images, one video or point clouds are accepted)"
            )
    if videos and (images or clouds or len(videos) > 1):
        raise MediaError(videos[0], "a video task takes exactly one video and nothing else")
    if not media:
        raise MediaError("(task data)", "no images, video or point clouds among the files")
    if clouds:
        return "pointcloud", clouds
    return ("video", videos) if videos else ("image", images)


def _ordered(names: list[str], options: DataRequest, given: GivenManifest | None) -> list[str]:
    if given is not None:
        return given.frame_order(names, options.sorting_method)
    if options.sorting_method == "predefined":
        return names
    return sort_names(names, options.sorting_method)


async def build(
    task_id: int,
    workdir: Path,
    *,
    names: list[str],
    options: DataRequest,
    storage: ObjectStorage,
    settings: IngestSettings,
    progress: Progress,
) -> MediaBuild:
    """Make the task's media from the gathered files (see the module doc)."""
    names = await asyncio.to_thread(unpack, workdir, names, settings)
    manifest_name, names = split_manifest(names)
    given = None
    if manifest_name is not None:
        given = await asyncio.to_thread(GivenManifest.read, workdir, manifest_name)
    media_type, files = classify(names)
    if media_type == "video":
        return await _build_video(
            task_id, workdir, name=files[0], options=options, storage=storage, progress=progress,
            given=given,
        )  # fmt: skip
    if media_type == "pointcloud":
        return await _build_pointclouds(
            task_id, workdir, clouds=files, names=names, options=options, storage=storage,
            settings=settings, progress=progress, given=given,
        )  # fmt: skip
    return await _build_images(
        task_id, workdir, ordered=_ordered(files, options, given), names=names,
        options=options, storage=storage, settings=settings, progress=progress, given=given,
    )  # fmt: skip


def _selection(count: int, options: DataRequest, name: str) -> range:
    try:
        return frame_numbers(count, options.start_frame, options.stop_frame or None,
                             options.frame_filter)  # fmt: skip
    except ValueError as exc:
        raise MediaError(name, str(exc)) from exc


async def _build_images(
    task_id: int,
    workdir: Path,
    *,
    ordered: list[str],
    names: list[str],
    options: DataRequest,
    storage: ObjectStorage,
    settings: IngestSettings,
    progress: Progress,
    given: GivenManifest | None,
) -> MediaBuild:
    selected = [ordered[i] for i in _selection(len(ordered), options, ordered[0])]
    semaphore = asyncio.Semaphore(settings.media_workers)

    async def info(name: str) -> tuple[int, int]:
        async with semaphore:
            found = await asyncio.to_thread(read_image_info, workdir / name)
            return found.width, found.height

    sizes = await all_or_cancel(info(name) for name in selected)
    if given is not None:
        given.check_image_sizes(
            {name: ImageInfo(w, h) for name, (w, h) in zip(selected, sizes, strict=True)}
        )
    await progress(0.2)
    frames = await _frames_with_context(
        task_id, workdir, selected, sizes, names, dimension="2d", storage=storage,
        settings=settings,
    )  # fmt: skip
    return await _store_frames(
        task_id, workdir, frames, options=options, storage=storage, progress=progress
    )


async def _build_pointclouds(
    task_id: int,
    workdir: Path,
    *,
    clouds: list[str],
    names: list[str],
    options: DataRequest,
    storage: ObjectStorage,
    settings: IngestSettings,
    progress: Progress,
    given: GivenManifest | None,
) -> MediaBuild:
    """A 3D task: as images, with KITTI scans turned into the PCD files the frames are."""
    sources = {pcd_name(name): name for name in clouds}
    if len(sources) != len(clouds):
        twice = next(name for name in clouds if pcd_name(name) != name and pcd_name(name) in clouds)
        raise MediaError(twice, f"becomes {pcd_name(twice)}, which is also among the files")
    ordered = _ordered(list(sources), options, given)
    selected = [ordered[i] for i in _selection(len(ordered), options, ordered[0])]
    semaphore = asyncio.Semaphore(settings.media_workers)

    async def prepare(name: str) -> tuple[int, int]:
        async with semaphore:
            if sources[name] == name:
                found = await asyncio.to_thread(read_pointcloud_info, workdir / name)
            else:
                found = await asyncio.to_thread(
                    kitti_to_pcd, workdir / sources[name], workdir / name
                )
            return found.width, found.height

    sizes = await all_or_cancel(prepare(name) for name in selected)
    await progress(0.2)
    frames = await _frames_with_context(
        task_id, workdir, selected, sizes, names, dimension="3d", storage=storage,
        settings=settings,
    )  # fmt: skip
    return await _store_frames(
        task_id, workdir, frames, options=options, storage=storage, progress=progress,
        dimension="3d",
    )  # fmt: skip


async def _frames_with_context(
    task_id: int,
    workdir: Path,
    selected: list[str],
    sizes: Sequence[tuple[int, int]],
    names: list[str],
    *,
    dimension: Literal["2d", "3d"],
    storage: ObjectStorage,
    settings: IngestSettings,
) -> list[FrameRecord]:
    """The frames' records, their context images found among `names` and stored."""
    related = detect_related_images(selected, names, dimension=dimension)
    related_keys = await _store_related_images(task_id, workdir, related, storage, settings)
    return [
        FrameRecord(name, w, h, f"{media_prefix(task_id)}originals/{name}",
                    [related_keys[r] for r in related[name]])
        for name, (w, h) in zip(selected, sizes, strict=True)
    ]  # fmt: skip


async def _store_related_images(
    task_id: int,
    workdir: Path,
    related: dict[str, list[str]],
    storage: ObjectStorage,
    settings: IngestSettings,
) -> dict[str, str]:
    """Check and store the frames' context images; their object keys by name."""
    names = sorted({name for images in related.values() for name in images})
    semaphore = asyncio.Semaphore(settings.media_workers)

    async def check(name: str) -> None:
        async with semaphore:
            try:
                await asyncio.to_thread(read_image_info, workdir / name)
            except MediaError as exc:
                raise MediaError(name, exc.reason) from None

    await all_or_cancel(check(name) for name in names)
    keys = {name: f"{related_prefix(task_id)}{name}" for name in names}
    for name, key in keys.items():
        await storage.put_file(key, workdir / name)
    return keys


def originals_stay_in_cloud(options: DataRequest) -> bool:
    """Whether a task's image originals are read from its cloud storage (no `copy_data`)."""
    return options.cloud_storage_id is not None and not options.copy_data


async def _store_originals(
    workdir: Path, frames: list[FrameRecord], storage: ObjectStorage, progress: Progress
) -> None:
    semaphore = asyncio.Semaphore(ORIGINALS_AT_ONCE)
    done = 0

    async def store(frame: FrameRecord) -> None:
        nonlocal done
        assert frame.object_key is not None
        async with semaphore:
            await storage.put_file(frame.object_key, workdir / frame.name)
        done += 1
        await progress(0.2 + 0.3 * done / len(frames))

    await all_or_cancel(store(frame) for frame in frames)


async def _store_frames(
    task_id: int,
    workdir: Path,
    frames: list[FrameRecord],
    *,
    options: DataRequest,
    storage: ObjectStorage,
    progress: Progress,
    dimension: str = "2d",
) -> MediaBuild:
    """Store the originals of image or point cloud frames, their manifest and chunks.

    Images taken from a cloud storage without `copy_data` stay in the bucket: their
    frames keep no object key and are read from the bucket under their names.
    """
    if dimension == "2d" and originals_stay_in_cloud(options):
        for frame in frames:
            frame.object_key = None
    else:
        await _store_originals(workdir, frames, storage, progress)
    # A point cloud's size is its PCD WIDTH and HEIGHT (an unorganised cloud has height 1).
    first = frames[0]
    chunk_size = options.chunk_size or auto_chunk_size(max(first.width, 1), first.height)
    built = MediaBuild(
        media_type="image", size=len(frames), chunk_size=chunk_size,
        compressed_chunk_type="imageset", original_chunk_type="imageset",
        start_frame=options.start_frame,
        stop_frame=options.start_frame + (len(frames) - 1) * options.step, frames=frames,
        dimension=dimension,
    )  # fmt: skip
    built.manifest_key = await _write_image_manifest(task_id, frames, storage)
    if not options.use_cache:
        paths = [workdir / f.name for f in frames]
        count = math.ceil(len(frames) / chunk_size)
        for number in range(count):
            part = paths[number * chunk_size : (number + 1) * chunk_size]
            built.chunks += await _store_image_chunks(
                task_id, number, part, options, storage, dimension=dimension
            )
            await progress(0.5 + 0.5 * (number + 1) / count)
    return built


async def _store_image_chunks(
    task_id: int,
    number: int,
    paths: Sequence[Path],
    options: DataRequest,
    storage: ObjectStorage,
    *,
    dimension: str,
) -> list[dict[str, Any]]:
    rows = []
    for quality, level in (("compressed", options.image_quality or 1), ("original", None)):
        data = await asyncio.to_thread(zip_chunk, paths, level, dimension)
        key = chunk_key(task_id, quality, number, "zip")
        await storage.put(key, data, content_type="application/zip")
        rows.append(chunk_row(task_id, quality, number, key, len(data)))
    return rows


def zip_chunk(paths: Sequence[Path], quality: int | None, dimension: str) -> bytes:
    """An image-set chunk of image files (JPEG at `quality`, or originals for None), or of
    PCD files for a 3D task (the files themselves at either quality, as CVAT's chunks)."""
    buffer = io.BytesIO()
    if dimension == "3d":
        write_pointcloud_chunk(paths, buffer)
    else:
        write_image_chunk(paths, buffer, quality=quality)
    return buffer.getvalue()


async def _write_image_manifest(
    task_id: int, frames: list[FrameRecord], storage: ObjectStorage
) -> str:
    """CVAT's image manifest of the frames: a frame with context images lists them, by
    their paths among the task's files, in `meta.related_images` (as CVAT's task creation
    links them)."""
    lines = [orjson.dumps({"version": "1.1"}), orjson.dumps({"type": "images"})]
    prefix = related_prefix(task_id)
    for frame in frames:
        stem, dot, extension = frame.name.rpartition(".")
        line: dict[str, Any] = {
            "name": stem if dot else frame.name, "extension": f".{extension}" if dot else "",
            "width": frame.width, "height": frame.height,
        }  # fmt: skip
        if frame.related_keys:
            related = [key.removeprefix(prefix) for key in frame.related_keys]
            line["meta"] = {"related_images": related}
        lines.append(orjson.dumps(line))
    key = f"{media_prefix(task_id)}manifest.jsonl"
    await storage.put(key, b"\n".join(lines) + b"\n", content_type="application/jsonl")
    return key


async def _build_video(
    task_id: int,
    workdir: Path,
    *,
    name: str,
    options: DataRequest,
    storage: ObjectStorage,
    progress: Progress,
    given: GivenManifest | None,
) -> MediaBuild:
    path = workdir / name
    if given is not None:
        given.frame_order([name], options.sorting_method)
    index = await asyncio.to_thread(index_video, path)
    if given is not None:
        given.check_video(index)
    numbers = list(_selection(index.frame_count, options, name))
    await progress(0.2)
    video_key = f"{media_prefix(task_id)}originals/{name}"
    await storage.put_file(video_key, path, content_type="video/mp4")
    chunk_size = options.chunk_size or VIDEO_CHUNK_SIZE
    compressed_type = "imageset" if options.use_zip_chunks else "video"
    built = MediaBuild(
        media_type="video", size=len(numbers), chunk_size=chunk_size,
        compressed_chunk_type=compressed_type, original_chunk_type="video",
        start_frame=numbers[0], stop_frame=numbers[-1],
        frames=[FrameRecord(name, index.width, index.height, None)],
        video_key=video_key, video_keyframes=[k.number for k in index.keyframes],
    )  # fmt: skip
    built.manifest_key = await _write_video_manifest(task_id, name, index, storage)
    if not options.use_cache:
        count = math.ceil(len(numbers) / chunk_size)
        chunks = video_chunks(
            path, index, numbers, chunk_size,
            compressed_type=compressed_type, image_quality=options.image_quality,
        )  # fmt: skip
        for number in range(count):
            made = await asyncio.to_thread(next, chunks)
            for quality, (data, extension) in zip(("compressed", "original"), made, strict=True):
                key = chunk_key(task_id, quality, number, extension)
                await storage.put(key, data, content_type=_CHUNK_TYPES[extension])
                built.chunks.append(chunk_row(task_id, quality, number, key, len(data)))
            await progress(0.3 + 0.7 * (number + 1) / count)
    return built


_CHUNK_TYPES = {"zip": "application/zip", "mp4": "video/mp4"}


ChunkBytes = tuple[bytes, str]  # the chunk, and its file extension


def video_chunks(
    path: Path,
    index: VideoIndex,
    numbers: Sequence[int],
    chunk_size: int,
    *,
    compressed_type: str,
    image_quality: int,
) -> Iterator[tuple[ChunkBytes, ChunkBytes]]:
    """(compressed, original) for each chunk of `numbers`, decoding the video once."""
    frames = decode_frames(path, index, numbers)
    while part := [frame for _, frame in itertools.islice(frames, chunk_size)]:
        yield (
            _compressed_video_chunk(part, index, compressed_type, image_quality),
            _original_video_chunk(part, index),
        )


def video_chunk(
    path: Path,
    index: VideoIndex,
    numbers: Sequence[int],
    *,
    quality: str,
    compressed_type: str,
    image_quality: int,
) -> ChunkBytes:
    """One chunk of video frames, as `video_chunks` makes it at creation.

    Compressed chunks are MP4 (or a ZIP of JPEGs with `use_zip_chunks`); original chunks are
    lossless MP4, which decode to exactly the frames the video decodes to.
    """
    part = [frame for _, frame in decode_frames(path, index, numbers)]
    if quality == "original":
        return _original_video_chunk(part, index)
    return _compressed_video_chunk(part, index, compressed_type, image_quality)


def _compressed_video_chunk(
    frames: list[VideoFrame], index: VideoIndex, compressed_type: str, image_quality: int
) -> ChunkBytes:
    buffer = io.BytesIO()
    if compressed_type == "video" and not index.rotation:
        write_video_chunk(frames, buffer, quality=image_quality or 1)
        return buffer.getvalue(), "mp4"
    pixels = [to_rgb(frame, index.rotation) for frame in frames]
    if compressed_type == "video":
        write_video_chunk(pixels, buffer, quality=image_quality or 1)
        return buffer.getvalue(), "mp4"
    write_image_chunk([Image.fromarray(p) for p in pixels], buffer, quality=image_quality or 1)
    return buffer.getvalue(), "zip"


def _original_video_chunk(frames: list[VideoFrame], index: VideoIndex) -> ChunkBytes:
    buffer = io.BytesIO()
    if index.rotation:
        write_lossless_video_chunk([to_rgb(f, index.rotation) for f in frames], buffer)
    else:
        write_lossless_video_chunk(frames, buffer)
    return buffer.getvalue(), "mp4"


async def _write_video_manifest(
    task_id: int, name: str, index: VideoIndex, storage: ObjectStorage
) -> str:
    lines = [
        orjson.dumps({"version": "1.1"}),
        orjson.dumps({"type": "video"}),
        orjson.dumps(
            {
                "properties": {
                    "name": Path(name).name,  # CVAT's: the file's base name
                    "resolution": [index.width, index.height],
                    "length": index.frame_count,
                }
            }
        ),
    ]
    lines += [
        orjson.dumps({"number": k.number, "pts": k.pts, "checksum": k.checksum})
        for k in index.keyframes
    ]
    key = f"{media_prefix(task_id)}manifest.jsonl"
    await storage.put(key, b"\n".join(lines) + b"\n", content_type="application/jsonl")
    return key
