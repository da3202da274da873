"""Ingest: compressed chunks, a video task's chunks, and a task from an S3 bucket.

Every figure is a ratio against a reference measured in the same run on the same data:

- compressed image chunks: `write_image_chunk` (what task creation runs for each chunk of an
  image task at `image_quality`) on 640x480 and 1920x1080 JPEG files, against a plain Pillow
  loop that opens and re-encodes the same files at the same quality into a ZIP;
- a video task: `build` of `tessera.ingest.creation.build` (the code that task creation runs
  after gathering the files) turning a 1080p H.264 video into chunks stored on the embedded
  S3, against PyAV decoding the same file alone (`thread_type` AUTO);
- a task from 10,000 JPEG images in an S3 bucket (the embedded rclone S3 on loopback) through
  the service's HTTP API, against a plain aiobotocore loop that lists and reads the bucket.

Sizes come from environment variables, so that a quick run at a small size is possible (the
defaults are the sizes of the issue), all prefixed TESSERA_BENCH_INGEST_: IMAGES (640x480
frames for the chunk writer, 1,000), HD_IMAGES (1920x1080 frames, 360), VIDEO_FRAMES (3,000)
and BUCKET_IMAGES (10,000). Generated media is kept under .tessera/bench/ingest (git-ignored), so
it is made once; its generation time is reported.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import statistics
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import httpx
import numpy as np
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from numpy.typing import NDArray
from PIL import Image

from tessera.devstack.launcher import MIGRATIONS, Uvicorn
from tessera.devstack.servers import S3, Nats, Postgres, free_port, stop_all
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.build import build
from tessera.ingest.media.chunks import (
    write_image_chunk,
    write_lossless_video_chunk,
    write_video_chunk,
)
from tessera.ingest.media.frames import VIDEO_CHUNK_SIZE, auto_chunk_size
from tessera.ingest.media.video import decode_frames, index_video
from tessera.ingest.task_data.schemas import DataRequest
from tessera.platform.migrate import migrate_packages
from tessera.platform.storage import ObjectStorage

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tessera" / "bench" / "ingest"
COMMAND = ".venv/bin/python -m benchmarks.run ingest"
QUALITY = 70  # the image_quality of the task (CVAT's default)
SOURCE_QUALITY = 90  # the JPEG quality of the generated source files
RUNS = 3
VIDEO_GOAL = 0.7
SOURCE_BUCKET = "source"
PREFIX = "images/"
TOKEN = "tsr_bench-" + uuid.uuid4().hex

T = TypeVar("T")


def _size(name: str, default: int) -> int:
    """A size from TESSERA_BENCH_INGEST_<name>, else the issue's `default`."""
    return int(os.environ.get(f"TESSERA_BENCH_INGEST_{name}", default))


# --- generated media ----------------------------------------------------------------------


def _texture(width: int, height: int, seed: int) -> NDArray[np.uint8]:
    """A photo-like RGB texture twice the frame size: smooth waves, edges and fine grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: 2 * height, : 2 * width].astype(np.float32)
    planes = []
    for _ in range(3):
        plane = np.zeros_like(xx)
        for _ in range(6):
            fx, fy = rng.uniform(0.002, 0.03, 2)
            plane += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi)) * rng.uniform(20, 40)
        planes.append(plane)
    pixels = np.stack(planes, axis=-1) + 128
    for _ in range(40):  # flat blocks give the edges of objects
        x, y = rng.integers(0, 2 * width - 64), rng.integers(0, 2 * height - 64)
        w, h = rng.integers(16, max(17, width // 4), 2)
        pixels[y : y + h, x : x + w] = rng.uniform(0, 255, 3)
    pixels += rng.normal(0, 6, pixels.shape).astype(np.float32)
    texture: NDArray[np.uint8] = np.clip(pixels, 0, 255).astype(np.uint8)
    return texture


def _crop(texture: NDArray[np.uint8], width: int, height: int, i: int) -> NDArray[np.uint8]:
    """Frame `i`: the texture seen through a window that pans a few pixels per frame."""
    x = (i * 7) % width
    y = (i * 3 + (i // width) * 5) % height
    return np.ascontiguousarray(texture[y : y + height, x : x + width])


def _images(width: int, height: int, count: int) -> tuple[list[Path], float]:
    """`count` distinct JPEG files of `width`x`height` (cached); their paths and the seconds
    spent making the missing ones."""
    folder = CACHE / f"images-{width}x{height}-q{SOURCE_QUALITY}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    start = time.perf_counter()
    if missing:
        texture = _texture(width, height, seed=width)
        for i, path in missing:
            partial = path.with_suffix(".part")
            Image.fromarray(_crop(texture, width, height, i)).save(
                partial, format="JPEG", quality=SOURCE_QUALITY
            )
            partial.rename(path)
    return paths, time.perf_counter() - start


def _video(frames: int) -> tuple[Path, float]:
    """A 1920x1080 H.264 MP4 of `frames` frames at 25 fps (cached); its path and the seconds
    spent making it (0 when cached)."""
    path = CACHE / f"video-1920x1080-{frames}.mp4"
    if path.exists():
        return path, 0.0
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    texture = _texture(1920, 1080, seed=3)
    rng = np.random.default_rng(4)
    grain = [rng.integers(-6, 7, (1080, 1920, 3), dtype=np.int16) for _ in range(7)]
    partial = path.with_suffix(".part")
    with av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        # As a camera records: High profile, CABAC, B-frames, a key frame every 250 frames
        # (x264's defaults); sensor grain makes it about 6 Mbit/s.
        stream.options = {"preset": "veryfast", "crf": "20"}
        for i in range(frames):
            pixels = np.clip(_crop(texture, 1920, 1080, i) + grain[i % len(grain)], 0, 255)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    partial.rename(path)
    return path, time.perf_counter() - start


# --- 1. compressed image chunks ------------------------------------------------------------


def _pillow_chunk(paths: Sequence[Path], out: io.BytesIO, *, optimize: bool) -> None:
    """The reference: open each file with Pillow and save it as a JPEG entry of a ZIP."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, path in enumerate(paths):
            buffer = io.BytesIO()
            with Image.open(path) as image:
                image.convert("RGB").save(buffer, format="JPEG", quality=QUALITY,
                                          optimize=optimize)  # fmt: skip
            archive.writestr(f"{i:06d}.jpeg", buffer.getvalue())


def _chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` cut into consecutive parts of `size` (the last one shorter)."""
    return [items[n : n + size] for n in range(0, len(items), size)]


def _chunk_all(
    chunks: list[Sequence[Path]], write: Callable[[Sequence[Path], io.BytesIO], None]
) -> list[bytes]:
    """The ZIP that `write` makes of each chunk."""
    outputs = []
    for part in chunks:
        buffer = io.BytesIO()
        write(part, buffer)
        outputs.append(buffer.getvalue())
    return outputs


def _entries(chunk: bytes) -> list[bytes]:
    """The contents of a ZIP's entries, in order."""
    with zipfile.ZipFile(io.BytesIO(chunk)) as archive:
        return [archive.read(name) for name in archive.namelist()]


@dataclass
class ChunkFigures:
    """Median seconds to chunk the frames: ours, the reference, the reference unoptimised."""

    width: int
    height: int
    frames: int
    chunk_size: int
    generated_s: float
    ours: float
    pillow: float
    pillow_plain: float
    identical: bool


def _measure_chunks(width: int, height: int, count: int) -> ChunkFigures:
    """Chunk `count` frames of `width`x`height` with each method; check ours against the
    reference's JPEG bytes."""
    paths, generated = _images(width, height, count)
    for path in paths:  # into the page cache, so that no method pays for the disk
        path.read_bytes()
    chunks = _chunked(paths, auto_chunk_size(width, height))
    methods: dict[str, Callable[[Sequence[Path], io.BytesIO], None]] = {
        "ours": lambda part, out: write_image_chunk(part, out, quality=QUALITY),
        "pillow": lambda part, out: _pillow_chunk(part, out, optimize=True),
        "pillow_plain": lambda part, out: _pillow_chunk(part, out, optimize=False),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, list[bytes]] = {}
    for _ in range(RUNS):  # interleaved, so that a slow spell of the VM hits every method
        for name, method in methods.items():
            start = time.perf_counter()
            outputs[name] = _chunk_all(chunks, method)
            times[name].append(time.perf_counter() - start)
    identical = [_entries(c) for c in outputs["ours"]] == [_entries(c) for c in outputs["pillow"]]
    median = {name: statistics.median(times[name]) for name in methods}
    return ChunkFigures(
        width, height, count, len(chunks[0]), generated, median["ours"], median["pillow"],
        median["pillow_plain"], identical,
    )  # fmt: skip


# --- 2. a video task -----------------------------------------------------------------------


def _decode(path: Path, *, rgb: bool) -> int:
    """Decode every frame of the video with PyAV's automatic threading; the frame count."""
    count = 0
    with closing(av.open(str(path))) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if rgb:
                frame.to_ndarray(format="rgb24")
            count += 1
    return count


def _timed(function: Callable[[], object]) -> float:
    """Seconds that one call of `function` takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


@dataclass
class VideoFigures:
    """Seconds for the video (references: median of runs), and seconds per frame of each
    stage of chunk making."""

    frames: int
    megabits_per_s: float
    generated_s: float
    decode: float
    decode_rgb: float
    build_cached: float
    build_chunks: float
    chunk_count: int
    stages: dict[str, float]


async def _build_video(
    storage: ObjectStorage, video: Path, task_id: int, *, use_cache: bool
) -> tuple[float, int]:
    """Seconds that `build` takes for a video task whose working folder is the video's
    folder, and how many chunks it stored."""

    async def progress(_: float) -> None:
        return None

    options = DataRequest(image_quality=QUALITY, use_cache=use_cache)
    start = time.perf_counter()
    built = await build(
        task_id, video.parent, names=[video.name], options=options, storage=storage,
        settings=IngestSettings(env="dev"), progress=progress,
    )  # fmt: skip
    return time.perf_counter() - start, len(built.chunks)


def _video_stages(video: Path) -> dict[str, float]:
    """Seconds per frame of each stage of making the first video chunk, timed with the
    service's own functions (the index over the whole video)."""
    start = time.perf_counter()
    index = index_video(video)
    stages = {"index": (time.perf_counter() - start) / index.frame_count}
    part = range(min(VIDEO_CHUNK_SIZE, index.frame_count))
    frames = [frame for _, frame in decode_frames(video, index, part)]
    work: dict[str, Callable[[], object]] = {
        "decode": lambda: list(decode_frames(video, index, part)),
        "compressed": lambda: write_video_chunk(frames, io.BytesIO(), quality=QUALITY),
        "original": lambda: write_lossless_video_chunk(frames, io.BytesIO()),
    }
    for name, function in work.items():
        stages[name] = _timed(function) / len(part)
    return stages


async def _measure_builds(s3: S3, cached: Path, chunked: Path) -> tuple[float, float, int]:
    """`build` of the video with `use_cache` and without (each in a working folder of its
    own)."""
    storage = ObjectStorage(bucket="bench", endpoint_url=s3.url, region="us-east-1",
                            access_key=s3.access_key, secret_key=s3.secret_key)  # fmt: skip
    await storage.start()
    try:
        await storage.ensure_bucket()
        lazy, _ = await _build_video(storage, cached, 1, use_cache=True)
        eager, count = await _build_video(storage, chunked, 2, use_cache=False)
    finally:
        await storage.close()
    return lazy, eager, count


def _measure_video(frames: int, base: Path) -> VideoFigures:
    """Decode the video (reference), build it with the service, and time the stages."""
    video, generated = _video(frames)
    with closing(av.open(str(video))) as container:
        megabits = (container.bit_rate or 0) / 1e6
    assert _decode(video, rgb=False) == frames
    decode = statistics.median(_timed(lambda: _decode(video, rgb=False)) for _ in range(RUNS))
    decode_rgb = _timed(lambda: _decode(video, rgb=True))
    copies = []
    for name in ("cached", "chunks"):  # as gathering the files would
        (base / name).mkdir(parents=True)
        copies.append(Path(shutil.copyfile(video, base / name / video.name)))
    s3 = S3(base / "s3", port=free_port(), access_key="bench", secret_key=uuid.uuid4().hex)
    s3.start()
    try:
        cached, chunks, count = asyncio.run(_measure_builds(s3, *copies))
    finally:
        stop_all([s3])
    return VideoFigures(
        frames, megabits, generated, decode, decode_rgb, cached, chunks, count,
        _video_stages(video),
    )  # fmt: skip


# --- 3. a task from an S3 bucket -----------------------------------------------------------


@dataclass
class BucketFigures:
    """Seconds: listing (medians), the reference read of the bucket (median), creations."""

    images: int
    mean_kb: float
    generated_s: float
    concurrency: int
    list_reference: float
    list_ours: float
    read_reference: float
    create_cached: float
    create_chunks: float


def _fill_bucket(folder: Path, paths: Sequence[Path]) -> None:
    """Put the files into a bucket folder of the (not yet started) rclone S3, as links."""
    folder.mkdir(parents=True)
    for path in paths:
        try:
            os.link(path, folder / path.name)
        except OSError:  # the cache is on another file system
            shutil.copyfile(path, folder / path.name)


def _source_client(s3: S3) -> Any:
    """An aiobotocore S3 client of the embedded server (an async context manager)."""
    return get_session().create_client(
        "s3", endpoint_url=s3.url, region_name="us-east-1", aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=AioConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                         max_pool_connections=max(10, IngestSettings(env="dev").cloud_concurrency)),
    )  # fmt: skip


async def _list_reference(client: Any) -> list[str]:
    """Every key under the prefix, by ListObjectsV2 pages of 1,000."""
    paginator = client.get_paginator("list_objects_v2")
    return [
        item["Key"]
        async for page in paginator.paginate(Bucket=SOURCE_BUCKET, Prefix=PREFIX, MaxKeys=1000)
        for item in page.get("Contents", ())
    ]


async def _read_reference(client: Any, concurrency: int) -> int:
    """List the prefix, then GET every object (`concurrency` at once); the objects read."""
    keys = await _list_reference(client)
    semaphore = asyncio.Semaphore(concurrency)

    async def get(key: str) -> int:
        async with semaphore:
            response = await client.get_object(Bucket=SOURCE_BUCKET, Key=key)
            async with response["Body"] as body:
                return len(await body.read())

    sizes = await asyncio.gather(*(get(key) for key in keys))
    return sum(1 for size in sizes if size > 0)


async def _list_ours(ingest: httpx.AsyncClient, storage_id: int) -> int:
    """Page through the prefix with `GET /api/cloudstorages/{id}/content-v2`; entries."""
    count, token = 0, None
    while True:
        params = {"prefix": PREFIX, **({"next_token": token} if token else {})}
        response = await ingest.get(f"/api/cloudstorages/{storage_id}/content-v2", params=params)
        response.raise_for_status()
        page = response.json()
        count += len(page["content"])
        token = page["next"]
        if not token:
            return count


async def _create_task(
    annotations: httpx.AsyncClient, ingest: httpx.AsyncClient, storage_id: int, *, use_cache: bool
) -> float:
    """Seconds from the data request of a new task to its request's end (0.1 s polls)."""
    created = await annotations.post(
        "/api/tasks", json={"name": "bench", "labels": [{"name": "car"}]}
    )
    created.raise_for_status()
    start = time.perf_counter()
    sent = await ingest.post(f"/api/tasks/{created.json()['id']}/data/", json={
        "image_quality": QUALITY, "cloud_storage_id": storage_id, "server_files": [PREFIX],
        "use_cache": use_cache,
    })  # fmt: skip
    sent.raise_for_status()
    while True:
        status = (await ingest.get(f"/api/requests/{sent.json()['rq_id']}")).json()
        if status["status"] in ("finished", "failed"):
            elapsed = time.perf_counter() - start
            if status["status"] == "failed":
                raise RuntimeError(f"task creation failed: {status.get('message')}")
            return elapsed
        await asyncio.sleep(0.1)


async def _measure_bucket_services(
    s3: S3, annotations_url: str, ingest_url: str, count: int
) -> dict[str, float]:
    """Add the bucket as a cloud storage, time the listings and the reference read (median of
    runs, interleaved), then create a task from it with and without `use_cache`."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    concurrency = IngestSettings(env="dev").cloud_concurrency
    figures: dict[str, list[float]] = {"list_reference": [], "list_ours": [], "read": []}
    async with (
        httpx.AsyncClient(base_url=annotations_url, headers=headers, timeout=600) as annotations,
        httpx.AsyncClient(base_url=ingest_url, headers=headers, timeout=600) as ingest,
        _source_client(s3) as client,
    ):
        response = await ingest.post("/api/cloudstorages", json={
            "provider_type": "AWS_S3_BUCKET", "resource": SOURCE_BUCKET, "display_name": "bench",
            "credentials_type": "KEY_SECRET_KEY_PAIR", "key": s3.access_key,
            "secret_key": s3.secret_key,
            "specific_attributes": f"endpoint_url={s3.url}&region=us-east-1",
        })  # fmt: skip
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/cloudstorages: {response.status_code} {response.text}")
        storage_id = response.json()["id"]
        for _ in range(RUNS):
            start = time.perf_counter()
            assert len(await _list_reference(client)) == count
            figures["list_reference"].append(time.perf_counter() - start)
            start = time.perf_counter()
            assert await _list_ours(ingest, storage_id) == count
            figures["list_ours"].append(time.perf_counter() - start)
            start = time.perf_counter()
            assert await _read_reference(client, concurrency) == count
            figures["read"].append(time.perf_counter() - start)
        result = {name: statistics.median(times) for name, times in figures.items()}
        result["concurrency"] = concurrency
        result["cached"] = await _create_task(annotations, ingest, storage_id, use_cache=True)
        result["chunks"] = await _create_task(annotations, ingest, storage_id, use_cache=False)
    return result


def _measure_bucket(count: int, base: Path) -> BucketFigures:
    """Start the stack and both services on a bucket holding `count` images, and measure."""
    paths, generated = _images(640, 480, count)
    servers: list[Any] = []
    try:
        postgres = Postgres(base / "pg", port=free_port(), password=uuid.uuid4().hex, durable=False)
        servers.append(postgres.start())
        nats = Nats(base / "nats", port=free_port(), token=uuid.uuid4().hex)
        servers.append(nats.start())
        s3 = S3(base / "s3", port=free_port(), access_key="bench", secret_key=uuid.uuid4().hex)
        _fill_bucket(base / "s3" / "buckets" / SOURCE_BUCKET / PREFIX, paths)
        servers.append(s3.start())
        postgres.ensure_database("tessera")
        asyncio.run(migrate_packages(postgres.url(), MIGRATIONS))
        env = {
            "TESSERA_ENV": "dev", "TESSERA_LOG_LEVEL": "WARNING",
            "TESSERA_DATABASE_URL": postgres.url(), "TESSERA_NATS_URL": nats.url,
            "TESSERA_NATS_TOKEN": nats.token, "TESSERA_S3_ENDPOINT_URL": s3.url,
            "TESSERA_S3_ACCESS_KEY": s3.access_key, "TESSERA_S3_SECRET_KEY": s3.secret_key,
            "TESSERA_S3_CREATE_BUCKET": "true", "TESSERA_MIGRATE_ON_START": "false",
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD": uuid.uuid4().hex,
            "TESSERA_BOOTSTRAP_ADMIN_TOKEN": TOKEN,
            "TESSERA_SCRATCH_DIR": str(base / "scratch"),
            # The bucket is on loopback, which cloud storages may not reach by default.
            "TESSERA_REMOTE_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(base / "numba")),
        }  # fmt: skip
        annotations = Uvicorn(base / "annotations", name="annotations", port=free_port(),
                              env=env, factory="tessera.annotations.app:create_app")  # fmt: skip
        servers.append(annotations.start())
        env["TESSERA_ANNOTATIONS_URL"] = annotations.url
        ingest = Uvicorn(base / "ingest", name="ingest", port=free_port(), env=env,
                         factory="tessera.ingest.app:create_app")  # fmt: skip
        servers.append(ingest.start())
        f = asyncio.run(_measure_bucket_services(s3, annotations.url, ingest.url, count))
    finally:
        stop_all(servers)
    return BucketFigures(
        count, sum(p.stat().st_size for p in paths) / count / 1000, generated,
        int(f["concurrency"]), f["list_reference"], f["list_ours"], f["read"],
        f["cached"], f["chunks"],
    )  # fmt: skip


# --- the report ----------------------------------------------------------------------------


def _ratio(ours_s: float, reference_s: float) -> str:
    """Our throughput over the reference's, from the seconds each took for the same work."""
    return f"{reference_s / ours_s:.2f}x"


def _met(met: bool) -> str:
    """A table cell for whether a goal or check was met."""
    return "yes" if met else "**no**"


def _chunks_report(rows: list[ChunkFigures]) -> list[str]:
    """The Markdown of the chunk writer's part."""
    lines = [
        "### Compressed image chunks",
        "",
        f"`write_image_chunk` at quality {QUALITY} (as task creation makes each compressed "
        "chunk of an image task without `use_cache`) against a plain Pillow loop over the same "
        'JPEG files (quality 90) cut into the same chunks: `Image.open`, `convert("RGB")`, '
        f"`save(JPEG, quality={QUALITY}, optimize=True)` (the service's settings, as CVAT's) "
        "into a stored ZIP. One thread each; median of "
        f"{RUNS} interleaved runs.",
        "",
        "| frames | chunk size | ours | Pillow loop (reference) | ours / reference | "
        "Pillow without `optimize` | same JPEG bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        lines.append(
            f"| {f.frames:,} x {f.width}x{f.height} | {f.chunk_size} | "
            f"{f.frames / f.ours:,.0f} frames/s | {f.frames / f.pillow:,.0f} frames/s | "
            f"{_ratio(f.ours, f.pillow)} | {f.frames / f.pillow_plain:,.0f} frames/s | "
            f"{_met(f.identical)} |"
        )
    return lines


def _video_report(f: VideoFigures) -> list[str]:
    """The Markdown of the video part."""
    s = f.stages
    chunks_ratio = f.decode / f.build_chunks
    cached_ratio = f.decode / f.build_cached
    return [
        "### A video task",
        "",
        f"A 1920x1080 H.264 video (High profile, x264 `veryfast`, CRF 20, {f.megabits_per_s:.1f} "
        "Mbit/s, key frame every 250 frames, generated with PyAV). The service's side is "
        "`build` of `tessera.ingest.creation.build`, the code that task creation runs once the "
        f"file is gathered, at image quality {QUALITY}, storing on the embedded S3 (rclone on "
        "loopback). The reference decodes the same file with PyAV alone (`thread_type` AUTO, "
        f"no pixel conversion), median of {RUNS} runs; each build ran once. Making chunks "
        "decodes the video once and encodes every frame twice: a compressed MP4 at 960x540 "
        "(x264 baseline, preset veryfast) and a lossless original MP4 at 1920x1080 (x264 QP 0 "
        "in the source's YUV, which decodes to exactly the source's frames).",
        "",
        "| work | frames | time | frames/s | vs decode only | goal | met? |",
        "|---|---|---|---|---|---|---|",
        f"| PyAV decode only (reference) | {f.frames:,} | {f.decode:.1f} s | "
        f"{f.frames / f.decode:,.0f} | 1.00x | | |",
        f"| PyAV decode and conversion to RGB (context) | {f.frames:,} | {f.decode_rgb:.1f} s | "
        f"{f.frames / f.decode_rgb:,.0f} | {_ratio(f.decode_rgb, f.decode)} | | |",
        f"| task creation with `use_cache` (index, original stored, manifest; chunks made on "
        f"request) | {f.frames:,} | {f.build_cached:.1f} s | {f.frames / f.build_cached:,.0f} "
        f"| {cached_ratio:.2f}x | | |",
        f"| task creation making {f.chunk_count} chunks (compressed and original MP4) | "
        f"{f.frames:,} | {f.build_chunks:.1f} s | {f.frames / f.build_chunks:,.1f} "
        f"| {chunks_ratio:.2f}x | >= {VIDEO_GOAL}x | {_met(chunks_ratio >= VIDEO_GOAL)} |",
        "",
        "Where the time of chunk making goes, per frame, timed with the service's functions "
        f"(the index over the whole video, the rest over its first chunk of {VIDEO_CHUNK_SIZE} "
        "frames):",
        "",
        "| stage | ms per frame |",
        "|---|---|",
        f"| `index_video` (decode everything, check key frames by seeking, MD5 of key frames) | "
        f"{1000 * s['index']:.1f} |",
        f"| `decode_frames` (seek, decode) | {1000 * s['decode']:.1f} |",
        f"| compressed chunk: x264 at 960x540, baseline, veryfast | {1000 * s['compressed']:.1f} |",
        f"| original chunk: lossless x264 at 1920x1080 | {1000 * s['original']:.1f} |",
        "",
        "Encoding H.264, even at a quarter of the pixels, costs more per frame than decoding "
        "on this 2-core machine, so making chunks at creation cannot reach decode speed; "
        "with `use_cache` the creation does not encode, and each chunk is made (once, then "
        "kept) when a client first asks for it.",
        "",
        f"Generating the video took {f.generated_s:.0f} s (0 when cached in .tessera/bench).",
    ]


def _bucket_report(f: BucketFigures) -> list[str]:
    """The Markdown of the bucket part."""
    n = f.images
    return [
        "### A task from an S3 bucket",
        "",
        f"{n:,} JPEG images (640x480, {f.mean_kb:.0f} kB on average) under `{PREFIX}` of a "
        "bucket of the embedded S3 (rclone on loopback). Ingest and annotations run as uvicorn "
        "processes on embedded PostgreSQL and NATS; the cloud storage is added with `POST "
        "/api/cloudstorages` and the task made with `POST /api/tasks/{id}/data/` "
        f'(`cloud_storage_id`, `server_files: ["{PREFIX}"]`, image quality {QUALITY}), timed '
        "from that request to its end in `/api/requests/{rq_id}` (polled every 0.1 s). The "
        "reference is a plain aiobotocore loop on the same bucket: ListObjectsV2 pages of "
        f"1,000, then GetObject of every object, {f.concurrency} at once (the service's "
        "`cloud_concurrency`), bodies read into memory. Listings are medians of "
        f"{RUNS} runs, as is the reference read; each creation ran once.",
        "",
        "| work | time | objects/s | vs reference |",
        "|---|---|---|---|",
        f"| ListObjectsV2 pages (reference) | {f.list_reference:.2f} s | "
        f"{n / f.list_reference:,.0f} | 1.00x |",
        f"| `GET /api/cloudstorages/{{id}}/content-v2` pages | {f.list_ours:.2f} s | "
        f"{n / f.list_ours:,.0f} | {_ratio(f.list_ours, f.list_reference)} |",
        f"| list and GET every object (reference) | {f.read_reference:.2f} s | "
        f"{n / f.read_reference:,.0f} | 1.00x |",
        f"| task creation with `use_cache` | {f.create_cached:.2f} s | "
        f"{n / f.create_cached:,.0f} | {_ratio(f.create_cached, f.read_reference)} |",
        f"| task creation making chunks (no `use_cache`) | {f.create_chunks:.2f} s | "
        f"{n / f.create_chunks:,.0f} | {_ratio(f.create_chunks, f.read_reference)} |",
        "",
        f"Generating the images took {f.generated_s:.0f} s (0 when cached in .tessera/bench).",
    ]


def run() -> str:
    """Generate (or reuse) the media, measure the three parts, and return the section."""
    load = os.getloadavg()[0]
    base = Path(tempfile.mkdtemp(prefix="tessera-bench-ingest-"))
    base.chmod(0o755)
    try:
        chunks = [
            _measure_chunks(640, 480, _size("IMAGES", 1_000)),
            _measure_chunks(1920, 1080, _size("HD_IMAGES", 360)),
        ]
        video = _measure_video(_size("VIDEO_FRAMES", 3_000), base / "video")
        bucket = _measure_bucket(_size("BUCKET_IMAGES", 10_000), base / "bucket")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return "\n".join([
        "## Ingest: compressed chunks, a video task, a task from an S3 bucket",
        "",
        "Ratios are our throughput over the reference's on the same data in the same run "
        "(higher is better). Absolute times on this 2-core VM, shared with other work, vary "
        "by up to 1.8x between runs of the same code (see the annotations section); load "
        f"average {load:.2f} when this run began.",
        "",
        *_chunks_report(chunks),
        "",
        *_video_report(video),
        "",
        *_bucket_report(bucket),
        "",
        f"Reproduce: `{COMMAND}`. Smaller sizes for a quick run: TESSERA_BENCH_INGEST_IMAGES, "
        "_HD_IMAGES, _VIDEO_FRAMES and _BUCKET_IMAGES (defaults 1000, 360, 3000, 10000).",
        "",
    ])  # fmt: skip
