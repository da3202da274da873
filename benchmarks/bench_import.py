"""Annotation import through the export service, against datumaro and against a PUT.

Everything runs against the real services (annotations, ingest, export as uvicorn
processes on embedded PostgreSQL, NATS and S3, started here), into real tasks made by
ingest from a video on the connected share (`use_cache`: ingest indexes the video; the
import needs the task's frame names and sizes, `frame_000000`, ...):

- COCO 1.0: a zip of `annotations/instances_default.json` with 200,000 shapes (50% boxes,
  35% polygons, 15% masks as compressed RLE from `pycocotools.mask.encode`) on 10,000
  images of 1920x1080, seeded, into a task of 10,000 frames of 1920x1080. The import is
  uploaded as cvat-sdk sends it (Upload-Start, TUS, Upload-Finish) and followed in
  `/api/requests/{rq_id}` until it ends; its phases are read from the request's progress
  (the runner reports 0.5 once the file is read and 0.7 once it is matched), and the
  runner's steps are timed again one by one in this process (read, match, serialise,
  write through `AnnotationsClient.import_annotations`). References, in the same run:
  datumaro 1.13's `coco_instances` importer reading the same file (every item and
  annotation iterated), and `PUT /api/tasks/{id}/annotations` of the same shapes (the
  document the import writes).
- Tags, cvat#10141's case (200,000 images of classification in "Ultralytics YOLO
  Classification 1.0", which took CVAT over 20 hours): 200,000 tags into a task of
  200,000 frames, from the format's two layouts: class folders of images
  (`train/<label>/<image>`, as Ultralytics lays a dataset out) and CVAT's `labels.json`.
  Goal: under 30 s from the upload's start to the request's end.

Sizes come from TESSERA_BENCH_IMPORT_IMAGES (10,000) and TESSERA_BENCH_IMPORT_TAGS
(200,000), for a quick run at a smaller size.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import orjson
from PIL import Image
from pycocotools import mask as coco_mask

from benchmarks.services import started_services
from tessera.devstack.launcher import Uvicorn
from tessera.export.imports.files import ImportFiles
from tessera.export.imports.matching import Matcher
from tessera.export.imports.registry import ReadContext, importer_named, skeleton_points
from tessera.export.imports.steps import sizes, task_frames
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.collector import gc_paused

COMMAND = ".venv/bin/python -m benchmarks.run import"
TOKEN = "tsr_bench-" + uuid.uuid4().hex
SEED = 2026
WIDTH, HEIGHT = 1920, 1080
KINDS = ("rectangle",) * 10 + ("polygon",) * 7 + ("mask",) * 3  # of each image, shuffled
FORMATS = {"coco": ("coco.zip", "COCO 1.0"),
           "tags": ("tags.zip", "Ultralytics YOLO Classification 1.0")}  # fmt: skip
PER_IMAGE = len(KINDS)
COCO_SEGMENT = 1_000
TAGS_SEGMENT = 10_000
WARM_UP = 50  # images of the warm-up imports
MASK_POOL = 3_000  # distinct encoded masks, each used by several annotations
TAG_SIZE = 64  # tag frames are TAG_SIZE x TAG_SIZE
TAG_LABELS = 100
TAGS_GOAL_S = 30.0
CHUNK = 10 * 2**20  # bytes per TUS append (cvat-sdk's TUS_CHUNK_SIZE)
POLL_S = 0.25  # the request's polls (more often, they take CPU from the import)
GOP = 250


def _size(name: str, default: int) -> int:
    """A size from TESSERA_BENCH_IMPORT_<name>, else the issue's `default`."""
    return int(os.environ.get(f"TESSERA_BENCH_IMPORT_{name}", default))


# --- labels and data -----------------------------------------------------------------------


def _select(name: str, values: list[str]) -> dict[str, Any]:
    return {"name": name, "input_type": "select", "values": values, "default_value": values[0]}


COCO_LABELS: list[dict[str, Any]] = [
    {"name": "car", "type": "rectangle", "attributes": [
        _select("color", ["red", "blue", "white", "black"]),
        {"name": "parked", "input_type": "checkbox", "values": ["false"],
         "default_value": "false"},
    ]},
    {"name": "truck", "type": "rectangle"},
    {"name": "person", "type": "polygon", "attributes": [
        _select("pose", ["standing", "sitting", "walking"])]},
    {"name": "tree", "type": "polygon"},
    {"name": "road", "type": "mask"},
    {"name": "puddle", "type": "mask", "attributes": [
        {"name": "depth", "input_type": "number", "values": ["0", "100", "1"],
         "default_value": "0"}]},
]  # fmt: skip
LABELS_OF = {"rectangle": (1, 2), "polygon": (3, 4), "mask": (5, 6)}  # category ids
TAG_NAMES = [f"class_{i:03d}" for i in range(TAG_LABELS)]


def _frame_name(index: int) -> str:
    return f"frame_{index:06d}"


def _coco_attributes(category: int, rng: np.random.Generator) -> dict[str, Any]:
    """The attributes of an annotation as CVAT's COCO export writes them."""
    out: dict[str, Any] = {"occluded": bool(rng.random() < 0.1)}
    if category == 1:
        out["color"] = ("red", "blue", "white", "black")[int(rng.integers(4))]
        out["parked"] = bool(rng.integers(2))
    elif category == 3:
        out["pose"] = ("standing", "sitting", "walking")[int(rng.integers(3))]
    elif category == 6:
        out["depth"] = int(rng.integers(0, 101))
    if category in (1, 2):
        out["rotation"] = 0.0
    return out


_FRAME = np.zeros((HEIGHT, WIDTH), dtype=np.uint8, order="F")


def _blob(rng: np.random.Generator) -> tuple[dict[str, Any], float, list[float]]:
    """A wobbly blob (a star-shaped outline in a 60-300 px box) somewhere on a frame, as
    COCO's compressed RLE made by pycocotools; its area and bbox."""
    bw, bh = (int(v) for v in rng.integers(60, 301, 2))
    yy, xx = np.mgrid[:bh, :bw]
    xn = (xx + 0.5 - bw / 2) / (bw / 2)
    yn = (yy + 0.5 - bh / 2) / (bh / 2)
    theta, rho = np.arctan2(yn, xn), np.hypot(xn, yn)
    k1, k2 = int(rng.integers(2, 6)), int(rng.integers(5, 11))
    radius = (
        0.75
        + 0.15 * np.sin(k1 * theta + rng.uniform(0, 2 * np.pi))
        + 0.08 * np.sin(k2 * theta + rng.uniform(0, 2 * np.pi))
    )
    left, top = int(rng.integers(0, WIDTH - bw + 1)), int(rng.integers(0, HEIGHT - bh + 1))
    _FRAME[top : top + bh, left : left + bw] = rho < radius
    rle = coco_mask.encode(_FRAME)
    _FRAME[top : top + bh, left : left + bw] = 0
    area = float(coco_mask.area(rle))
    bbox = [float(v) for v in coco_mask.toBbox(rle)]
    return {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode()}, area, bbox


def coco_document(images: int, seed: int = SEED) -> dict[str, Any]:
    """The COCO instances file: `images` frames of 1920x1080, 20 annotations each (10
    boxes, 7 polygons of 10-40 vertices, 3 compressed RLE masks, shuffled), as a CVAT
    export writes them (coordinates to 2 decimals, `attributes` with `occluded`)."""
    rng = np.random.default_rng(seed)
    masks = [_blob(rng) for _ in range(MASK_POOL)]
    annotations: list[dict[str, Any]] = []
    for image in range(images):
        for index in rng.permutation(len(KINDS)):
            kind = KINDS[index]
            category = LABELS_OF[kind][int(rng.integers(2))]
            ann: dict[str, Any] = {"id": len(annotations) + 1, "image_id": image + 1,
                                   "category_id": category}  # fmt: skip
            if kind == "rectangle":
                x, y = rng.uniform(0, WIDTH - 20), rng.uniform(0, HEIGHT - 20)
                w = min(rng.uniform(15, 400), WIDTH - x)
                h = min(rng.uniform(15, 300), HEIGHT - y)
                bbox = [round(float(v), 2) for v in (x, y, w, h)]
                ann.update(segmentation=[], area=round(bbox[2] * bbox[3], 2), bbox=bbox,
                           iscrowd=0)  # fmt: skip
            elif kind == "polygon":
                n = int(rng.integers(10, 41))
                cx, cy = rng.uniform(50, WIDTH - 50), rng.uniform(50, HEIGHT - 50)
                rx, ry = rng.uniform(20, 200, 2)
                angles = np.sort(rng.uniform(0, 2 * np.pi, n))
                radius = rng.uniform(0.6, 1.0, n)
                xs = np.clip(cx + rx * radius * np.cos(angles), 0, WIDTH).round(2)
                ys = np.clip(cy + ry * radius * np.sin(angles), 0, HEIGHT).round(2)
                area = 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))
                box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()),
                       float(ys.max() - ys.min())]  # fmt: skip
                polygon = np.column_stack([xs, ys]).ravel().tolist()
                bbox = [round(v, 2) for v in box]
                ann.update(segmentation=[polygon], area=round(area, 2), bbox=bbox, iscrowd=0)
            else:
                rle, area, box = masks[int(rng.integers(MASK_POOL))]
                ann.update(segmentation=rle, area=area, bbox=box, iscrowd=1)
            ann["attributes"] = _coco_attributes(category, rng)
            annotations.append(ann)
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "",
                 "version": "", "year": ""},
        "categories": [{"id": i + 1, "name": label["name"], "supercategory": ""}
                       for i, label in enumerate(COCO_LABELS)],
        "images": [{"id": i + 1, "width": WIDTH, "height": HEIGHT,
                    "file_name": f"{_frame_name(i)}.jpg", "license": 0, "flickr_url": "",
                    "coco_url": "", "date_captured": 0} for i in range(images)],
        "annotations": annotations,
    }  # fmt: skip


def _zip(members: Iterator[tuple[str, bytes]], compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _tag_labels(tags: int, seed: int = SEED) -> list[str]:
    """The label of each tagged frame, seeded."""
    rng = np.random.default_rng(seed + 1)
    return [TAG_NAMES[i] for i in rng.integers(TAG_LABELS, size=tags)]


def tags_in_folders(labels: list[str]) -> bytes:
    """An Ultralytics classification upload: `train/<label>/frame_XXXXXX.jpg`, each image a
    real JPEG of the frame's size (stored, as JPEGs are)."""
    buffer = io.BytesIO()
    Image.new("RGB", (TAG_SIZE, TAG_SIZE), (90, 120, 150)).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    members = ((f"train/{label}/{_frame_name(i)}.jpg", jpeg) for i, label in enumerate(labels))
    return _zip(members, zipfile.ZIP_STORED)


def tags_in_labels_json(labels: list[str]) -> bytes:
    """The same tags as CVAT's export of the format lists them: `train/labels.json`."""
    listed = {_frame_name(i): {"labels": [label], "path": f"{label}/{_frame_name(i)}.jpg"}
              for i, label in enumerate(labels)}  # fmt: skip
    return _zip(iter([("train/labels.json", orjson.dumps(listed))]), zipfile.ZIP_DEFLATED)


def make_video(path: Path, frames: int, width: int, height: int) -> None:
    """An H.264 MP4 of `frames` frames: one GOP of `GOP` frames encoded (two flat frames,
    alternating every 50), its packets muxed again and again with shifted timestamps, so
    a long video costs one GOP's encoding."""
    segment = io.BytesIO()
    with av.open(segment, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30", "g": str(GOP),
                          "keyint_min": str(GOP), "sc_threshold": "0"}  # fmt: skip
        flats = []
        for shade in (90, 130):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(frame.planes, (shade, 128, 128), strict=True):
                np.frombuffer(memoryview(plane), np.uint8)[:] = value
            flats.append(frame)
        for i in range(GOP):
            frame = flats[(i // 50) % 2]
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    segment.seek(0)
    with av.open(segment, mode="r") as source, av.open(str(path), mode="w", format="mp4") as out:
        video = source.streams.video[0]
        target = out.add_stream_from_template(video)
        packets = [packet for packet in source.demux(video) if packet.size]
        assert packets[0].pts is not None
        assert packets[1].pts is not None
        step = (packets[1].pts - packets[0].pts) * GOP
        for round_ in range((frames + GOP - 1) // GOP):
            for packet in packets[: min(GOP, frames - round_ * GOP)]:
                assert packet.pts is not None
                assert packet.dts is not None
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts = packet.pts + round_ * step, packet.dts + round_ * step
                copy.is_keyframe = packet.is_keyframe
                copy.time_base = packet.time_base
                copy.stream = target
                out.mux(copy)


# --- the stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    """The services' processes and the connected share."""

    annotations: Uvicorn
    ingest: Uvicorn
    export: Uvicorn
    share: Path


@contextmanager
def stack(base: Path) -> Iterator[Stack]:
    """PostgreSQL (fsync off, as in tests), NATS, S3 and the annotations, ingest and
    export services as uvicorn processes; the ingest share at base/share."""
    with started_services(base, ("annotations", "ingest", "export"), token=TOKEN) as started:
        p = started.processes
        yield Stack(p["annotations"], p["ingest"], p["export"], started.share)


@dataclass
class Clients:
    """Admin clients of the three services."""

    annotations: httpx.AsyncClient
    ingest: httpx.AsyncClient
    export: httpx.AsyncClient


async def _ended(client: httpx.AsyncClient, rq_id: str, poll_s: float) -> dict[str, Any]:
    while True:
        response = await client.get(f"/api/requests/{rq_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body["status"] in ("finished", "failed"):
            if body["status"] == "failed":
                raise RuntimeError(f"request {rq_id} failed: {body.get('message')}")
            return body
        await asyncio.sleep(poll_s)


async def create_task(
    c: Clients, share: Path, name: str, labels: list[dict[str, Any]], *, video: Path,
    segment_size: int,
) -> tuple[int, float]:  # fmt: skip
    """A task from `video` on the share (`use_cache`); its id and the seconds ingest took."""
    folder = share / name
    folder.mkdir()
    shutil.move(video, folder / video.name)
    # No overlap, as for an image task (a video's jobs overlap by 5 frames by default).
    created = await c.annotations.post("/api/tasks", json={
        "name": name, "labels": labels, "segment_size": segment_size, "overlap": 0})  # fmt: skip
    created.raise_for_status()
    task_id: int = created.json()["id"]
    start = time.perf_counter()
    files = [f"{name}/{video.name}"]
    sent = await c.ingest.post(f"/api/tasks/{task_id}/data/", json={
        "image_quality": 70, "server_files": files, "use_cache": True})  # fmt: skip
    sent.raise_for_status()
    await _ended(c.ingest, sent.json()["rq_id"], 0.5)
    return task_id, time.perf_counter() - start


# --- the import as cvat-sdk sends it -------------------------------------------------------


@dataclass
class Timeline:
    """An import's points in time, in seconds from the upload's start (wall clock, which the
    export service's database shares on this machine): the upload's end (Upload-Finish
    answered), the request's creation, start and end by the service's own dates, and the
    first polls that saw its progress reach 0.5 (read) and 0.7 (matched) and its end;
    with the longest answer of the export service's `/healthz` meanwhile."""

    points: dict[str, float] = field(default_factory=dict)
    message: str = ""
    stalled: float = 0.0

    @property
    def total(self) -> float:
        """From the upload's start to the first poll that saw the request finished."""
        return self.points["seen_finished"]

    @property
    def uploaded(self) -> float:
        return self.points["uploaded"]

    def phase(self, start: str, end: str) -> float:
        """Seconds between two points."""
        return self.points[end] - self.points[start]


async def upload_and_import(
    client: httpx.AsyncClient, task_id: int, data: bytes, filename: str, format: str
) -> Timeline:
    """Upload-Start, TUS creation and appends of CHUNK bytes, Upload-Finish; then the
    request polled every POLL_S until it ends, and `/healthz` every POLL_S / 2."""
    path = f"/api/tasks/{task_id}/annotations/"
    query = {"filename": filename, "format": format}
    timeline = Timeline()
    origin = time.time()

    def mark(name: str) -> None:
        timeline.points.setdefault(name, time.time() - origin)

    started = await client.post(path, params=query, headers={"Upload-Start": ""})
    assert started.status_code == 202, started.text
    metadata = f"filename {base64.b64encode(filename.encode()).decode()}"
    created = await client.post(path, headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata})  # fmt: skip
    assert created.status_code == 201, created.text
    location = httpx.URL(created.headers["Location"]).path
    for offset in range(0, len(data), CHUNK):
        appended = await client.patch(location, content=data[offset : offset + CHUNK], headers={
            "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"})  # fmt: skip
        assert appended.status_code == 204, appended.text
    query["filename"] = created.headers["Upload-Filename"]
    finished = await client.post(path, params=query, headers={"Upload-Finish": ""})
    assert finished.status_code == 202, finished.text
    rq_id = finished.json()["rq_id"]
    mark("uploaded")
    longest = [0.0]
    prober = asyncio.create_task(_probe(client, "/healthz", POLL_S / 2, longest))
    try:
        while True:
            body = (await client.get(f"/api/requests/{rq_id}")).json()
            status, progress = body["status"], body.get("progress") or 0.0
            if status == "failed":
                raise RuntimeError(f"the import failed: {body.get('message')}")
            if status == "finished" or (status == "started" and progress >= 0.5):
                mark("seen_read")
            if status == "finished" or (status == "started" and progress >= 0.7):
                mark("seen_matched")
            if status == "finished":
                mark("seen_finished")
                break
            await asyncio.sleep(POLL_S)
    finally:
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
    timeline.stalled = longest[0]
    for name in ("created", "started", "finished"):
        timeline.points[name] = _date(body[f"{name}_date"]) - origin
    timeline.message = body.get("message") or ""
    return timeline


async def _probe(
    client: httpx.AsyncClient, path: str, every_s: float, longest: list[float]
) -> None:
    """GET `path` every `every_s` until cancelled, keeping the longest answer's seconds in
    `longest[0]`."""
    while True:
        start = time.perf_counter()
        (await client.get(path)).raise_for_status()
        longest[0] = max(longest[0], time.perf_counter() - start)
        await asyncio.sleep(every_s)


def _date(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# --- the runner's steps, one by one --------------------------------------------------------


@dataclass
class Steps:
    """Seconds of each of the runner's steps, timed in this process."""

    target: float = 0.0
    read: float = 0.0
    match: float = 0.0
    serialise: float = 0.0
    write: float = 0.0
    document_mb: float = 0.0

    @property
    def total(self) -> float:
        return self.target + self.read + self.match + self.serialise + self.write


async def runner_steps(
    stack_: Stack, task_id: int, path: Path, *, filename: str, format: str, actor_id: int
) -> tuple[Steps, bytes]:
    """The steps of `ImportRunner._import`, with its functions, timed one by one (the file
    is read from disk, where the runner first copies it from S3); the steps, and the
    matched document as a PUT body (no `version`)."""
    annotations = AnnotationsClient(stack_.annotations.url, TOKEN)
    ingest = IngestClient(stack_.ingest.url, TOKEN)
    importer = importer_named(format)
    assert importer is not None
    steps = Steps()
    try:
        start = time.perf_counter()
        target = await annotations.import_target(task_id=task_id)
        frames = task_frames(target, await ingest.task_meta(target.task_id))
        context = ReadContext(sizes(frames), skeleton_points(target.labels))
        steps.target, start = _lap(start)
        with ImportFiles(path, filename) as files, gc_paused():
            parsed = importer.read(files, context)
        steps.read, start = _lap(start)
        matcher = Matcher(target.labels, frames,
                          tracks_listed_per_frame=importer.tracks_listed_per_frame)  # fmt: skip
        matcher.frames_not_found(context.missing)
        with gc_paused():
            matched = matcher.match(parsed)
        steps.match, start = _lap(start)
        document = orjson.dumps({"version": target.version, **matched.document})
        steps.serialise, start = _lap(start)
        await annotations.import_annotations(
            task_id=task_id, document=document, action="replace", actor_id=actor_id
        )
        steps.write, start = _lap(start)
    finally:
        await annotations.close()
        await ingest.close()
    if matched.skipped:
        raise RuntimeError(f"the import left out {matched.skipped}")
    steps.document_mb = len(document) / 2**20
    return steps, orjson.dumps(matched.document)


def _lap(start: float) -> tuple[float, float]:
    """Seconds since `start`, and now."""
    now = time.perf_counter()
    return now - start, now


# --- references ----------------------------------------------------------------------------


def datumaro_read(root: Path) -> tuple[float, Counter[str]]:
    """Seconds for datumaro's `coco_instances` importer to read the dataset at `root` and
    iterate every item and annotation; the annotations by type."""
    import datumaro as dm  # type: ignore[import-untyped]  # noqa: PLC0415  # slow to import

    start = time.perf_counter()
    dataset = dm.Dataset.import_from(str(root), "coco_instances")
    kinds: Counter[str] = Counter()
    for item in dataset:
        for annotation in item.annotations:
            kinds[annotation.type.name] += 1
    return time.perf_counter() - start, kinds


async def put(client: httpx.AsyncClient, task_id: int, body: bytes) -> float:
    """Seconds of `PUT /api/tasks/{id}/annotations` of `body`."""
    start = time.perf_counter()
    response = await client.put(f"/api/tasks/{task_id}/annotations", content=body,
                                headers={"content-type": "application/json"})  # fmt: skip
    response.raise_for_status()
    return time.perf_counter() - start


async def clear(client: httpx.AsyncClient, task_id: int) -> None:
    (await client.delete(f"/api/tasks/{task_id}/annotations")).raise_for_status()


async def stored(client: httpx.AsyncClient, task_id: int) -> tuple[int, int]:
    """The task's shapes and tags (counted) and a digest of what they hold, without ids."""
    response = await client.get(f"/api/tasks/{task_id}/annotations")
    response.raise_for_status()
    doc = response.json()
    keys = ("type", "frame", "label_id", "points", "occluded", "rotation", "z_order", "group",
            "source", "attributes")  # fmt: skip
    rows = sorted(orjson.dumps([o.get(k) for k in keys]) for o in doc["shapes"] + doc["tags"])
    return len(rows), hash(tuple(rows))


# --- the run -------------------------------------------------------------------------------


@dataclass
class Figures:
    """Everything measured (seconds unless named otherwise)."""

    images: int
    tags: int
    generated_s: float
    coco_mb: float
    coco_zip_mb: float
    folders_mb: float
    labels_json_mb: float
    coco_task_s: float = 0.0
    tags_task_s: float = 0.0
    json_loads: float = 0.0
    datumaro: float = 0.0
    datumaro_kinds: dict[str, int] = field(default_factory=dict)
    coco: Timeline = field(default_factory=Timeline)
    coco_put: float = 0.0
    coco_steps: Steps = field(default_factory=Steps)
    folders: Timeline = field(default_factory=Timeline)
    labels_json: Timeline = field(default_factory=Timeline)
    tags_put: float = 0.0
    tags_steps: Steps = field(default_factory=Steps)
    coco_checked: str = ""
    tags_checked: str = ""
    load_at_imports: float = 0.0


async def _warm_up(s: Stack, c: Clients, tasks: dict[str, int], files: dict[str, Path],
                   actor: int) -> None:  # fmt: skip
    """Untimed: the first import of each format in a process imports its reader and loads
    (or compiles) the geometry kernels, and the first PUT of a task compiles the kernels
    that read it back; each is done once here, on the first WARM_UP images."""
    for kind, (filename, format) in FORMATS.items():
        task = tasks["coco" if kind == "coco" else "tags"]
        await upload_and_import(c.export, task, files[f"{kind}_small"].read_bytes(), filename,
                                format)  # fmt: skip
        _, body = await runner_steps(
            s, task, files[f"{kind}_small"], filename=filename, format=format, actor_id=actor
        )
        await put(c.annotations, task, body)


async def _measure(s: Stack, f: Figures, files: dict[str, Path]) -> None:
    """Make the tasks, warm up, then import each file as cvat-sdk does (the request timed
    by its progress), time the runner's steps, and PUT the same document."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def client(service: Uvicorn) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=service.url, headers=headers, timeout=900)

    async with client(s.annotations) as ann, client(s.ingest) as ing, client(s.export) as exp:
        c = Clients(ann, ing, exp)
        actor = (await ann.get("/api/users/self")).json()["id"]
        coco_task, f.coco_task_s = await create_task(
            c, s.share, "coco", COCO_LABELS, video=files["coco_video"], segment_size=COCO_SEGMENT
        )
        tag_labels = [{"name": name} for name in TAG_NAMES]
        tags_task, f.tags_task_s = await create_task(
            c, s.share, "tags", tag_labels, video=files["tags_video"], segment_size=TAGS_SEGMENT
        )
        _log(f"tasks made by ingest in {f.coco_task_s:.1f} s and {f.tags_task_s:.1f} s")
        await _warm_up(s, c, {"coco": coco_task, "tags": tags_task}, files, actor)
        f.load_at_imports = os.getloadavg()[0]
        _log(f"warmed up; load average {f.load_at_imports:.2f}")

        filename, format = FORMATS["coco"]
        await clear(ann, coco_task)
        f.coco = await upload_and_import(exp, coco_task, files["coco"].read_bytes(), filename,
                                         format)  # fmt: skip
        _log(f"COCO import {f.coco}")
        imported = await stored(ann, coco_task)
        await clear(ann, coco_task)
        f.coco_steps, body = await runner_steps(
            s, coco_task, files["coco"], filename=filename, format=format, actor_id=actor
        )
        _log(f"COCO runner's steps {f.coco_steps}")
        await clear(ann, coco_task)
        f.coco_put = await put(ann, coco_task, body)
        _log(f"COCO PUT {f.coco_put:.1f} s")
        f.coco_checked = _check(imported, await stored(ann, coco_task), f.images * PER_IMAGE)

        filename, format = FORMATS["tags"]
        digests = []
        for key in ("folders", "labels_json"):
            await clear(ann, tags_task)
            timeline = await upload_and_import(exp, tags_task, files[key].read_bytes(),
                                               filename, format)  # fmt: skip
            setattr(f, key, timeline)
            _log(f"tags ({key}) import {timeline}")
            digests.append(await stored(ann, tags_task))
        await clear(ann, tags_task)
        f.tags_steps, body = await runner_steps(
            s, tags_task, files["folders"], filename=filename, format=format, actor_id=actor
        )
        _log(f"tags runner's steps {f.tags_steps}")
        await clear(ann, tags_task)
        f.tags_put = await put(ann, tags_task, body)
        _log(f"tags PUT {f.tags_put:.1f} s")
        put_digest = await stored(ann, tags_task)
        f.tags_checked = " and ".join({_check(d, put_digest, f.tags) for d in digests})


def _check(imported: tuple[int, int], put_: tuple[int, int], expected: int) -> str:
    """Whether an import stored what the PUT stores, all `expected` objects."""
    if imported != put_:
        raise RuntimeError(f"the import stored {imported}, the PUT {put_}")
    if imported[0] != expected:
        raise RuntimeError(f"{imported[0]} objects stored, not {expected}")
    return "identical"


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _prepare(base: Path, images: int, tags: int) -> tuple[Figures, dict[str, Path]]:
    """The files of the run under `base` (COCO also as a dataset folder for datumaro); the
    figures to fill and the files' paths."""
    start = time.perf_counter()
    coco = coco_document(images)
    document = orjson.dumps(coco)
    first = [a for a in coco["annotations"] if a["image_id"] <= WARM_UP]
    small = {**coco, "images": coco["images"][:WARM_UP], "annotations": first}
    del coco
    files = {key: base / name for key, name in (
        ("coco", "coco.zip"), ("coco_small", "coco-small.zip"), ("folders", "tags-folders.zip"),
        ("labels_json", "tags-labels-json.zip"), ("tags_small", "tags-small.zip"),
        ("coco_video", "coco.mp4"), ("tags_video", "tags.mp4"))}  # fmt: skip
    dataset = base / "datumaro"
    (dataset / "images" / "default").mkdir(parents=True)  # datumaro wants the folder
    (dataset / "annotations").mkdir()
    files["coco_json"] = dataset / "annotations" / "instances_default.json"
    files["coco_json"].write_bytes(document)
    for key, content in (("coco", document), ("coco_small", orjson.dumps(small))):
        files[key].write_bytes(_zip(iter([("annotations/instances_default.json", content)]),
                                    zipfile.ZIP_DEFLATED))  # fmt: skip
    labels = _tag_labels(tags)
    files["folders"].write_bytes(tags_in_folders(labels))
    files["labels_json"].write_bytes(tags_in_labels_json(labels))
    files["tags_small"].write_bytes(tags_in_folders(labels[:WARM_UP]))
    make_video(files["coco_video"], images, WIDTH, HEIGHT)
    make_video(files["tags_video"], tags, TAG_SIZE, TAG_SIZE)
    mib = {key: path.stat().st_size / 2**20 for key, path in files.items()}
    figures = Figures(images, tags, time.perf_counter() - start, mib["coco_json"], mib["coco"],
                      mib["folders"], mib["labels_json"])  # fmt: skip
    return figures, files


def measure(images: int, tags: int) -> Figures:
    """Prepare the files, read the COCO file with datumaro, then start the stack and
    measure the imports."""
    base = Path(tempfile.mkdtemp(prefix="tessera-bench-import-"))
    base.chmod(0o755)
    try:
        figures, files = _prepare(base, images, tags)
        _log(f"files made in {figures.generated_s:.1f} s")
        start = time.perf_counter()
        orjson.loads(files["coco_json"].read_bytes())
        figures.json_loads = time.perf_counter() - start
        figures.datumaro, kinds = datumaro_read(files["coco_json"].parent.parent)
        figures.datumaro_kinds = dict(kinds)
        _log(f"datumaro {figures.datumaro:.1f} s {dict(kinds)}")
        with stack(base) as s:
            asyncio.run(_measure(s, figures, files))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return figures


# --- the report ----------------------------------------------------------------------------


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def _times(ours: float, reference: float) -> str:
    """Ours against the reference, from the seconds each took."""
    if ours >= reference:
        return f"{ours / reference:.2f}x slower"
    return f"{reference / ours:.2f}x faster"


def _phases(t: Timeline) -> list[float]:
    """Upload, queue, read, match, write and the total of an import's timeline."""
    return [
        t.uploaded,
        t.phase("created", "started"),
        t.phase("started", "seen_read"),
        t.phase("seen_read", "seen_matched"),
        t.phase("seen_matched", "finished"),
        t.total,
        t.stalled,
    ]


def report(f: Figures, load: tuple[float, float], minutes: float) -> str:
    """The Markdown section."""
    coco, folders, labels_json = f.coco, f.folders, f.labels_json
    shapes = f.images * PER_IMAGE
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(f.datumaro_kinds.items()))
    read_phase = coco.phase("started", "seen_read")
    tag_rows = []
    for name, t in (("class folders (`train/<label>/<image>`, Ultralytics' layout; "
                     f"{f.folders_mb:.0f} MiB with the images)", folders),
                    (f"CVAT's `train/labels.json` ({f.labels_json_mb:.1f} MiB zipped)",
                     labels_json)):  # fmt: skip
        tag_rows.append(
            f"| {f.tags:,} tags, Ultralytics YOLO Classification 1.0, {name}: upload to "
            f"the request's end | PUT of the same tags: {f.tags_put:.1f} s | {t.total:.1f} s "
            f"(request alone {t.total - t.uploaded:.1f} s) | {_times(t.total, f.tags_put)} | "
            f"under {TAGS_GOAL_S:.0f} s | {_met(t.total < TAGS_GOAL_S)} |"
        )
    phase_rows = [
        "upload (Upload-Start, TUS appends of 10 MiB, Upload-Finish)",
        "queued (the request's `created_date` to `started_date`)",
        "import target, frame names, file from S3, read (to progress 0.5)",
        "match (0.5 to 0.7)",
        "serialise and write through the annotations service (0.7 to `finished_date`)",
        "**total** (upload's start to the poll that saw it finished)",
        "longest answer of the export service's `/healthz` meanwhile",
    ]
    columns = [_phases(t) for t in (coco, folders, labels_json)]
    digits = [1] * (len(phase_rows) - 1) + [2]  # the longest answer in hundredths
    phases = [f"| {name} | " + " | ".join(f"{col[i]:.{digits[i]}f}" for col in columns) + " |"
              for i, name in enumerate(phase_rows)]  # fmt: skip
    st, sf = f.coco_steps, f.tags_steps
    step_rows = [
        ("import target (annotations) and frame names (ingest), frame index", st.target,
         sf.target),
        ("read: `ImportFiles` and the format's reader", st.read, sf.read),
        ("match: `Matcher.match`", st.match, sf.match),
        (f"serialise: `orjson.dumps` of the document ({st.document_mb:.0f} MiB; "
         f"{sf.document_mb:.0f} MiB)", st.serialise, sf.serialise),
        ("write: `AnnotationsClient.import_annotations` (HTTP, validation, COPY, commit)",
         st.write, sf.write),
        ("**total**", st.total, sf.total),
    ]  # fmt: skip
    steps = [f"| {name} | {a:.1f} | {b:.1f} |" for name, a, b in step_rows]
    return "\n".join([
        "## Import: COCO against datumaro and a PUT; 200,000 tags (cvat#10141)",
        "",
        f"One run ({minutes:.1f} min; load average {load[0]:.2f} when it began and "
        f"{load[1]:.2f} when the imports began, on a 2-core VM shared with other work, where "
        "absolute times vary by up to 1.8x between runs; each figure below was measured "
        "once). The annotations, ingest and export services run as uvicorn processes on "
        "embedded PostgreSQL (fsync off, as in tests), NATS and S3. The tasks are real: ingest "
        "made them from a video on its share (`use_cache`; no overlap, as an image task), "
        "which gives the frames the import matches names against (`frame_000000`, ...). "
        "Ours is the import as cvat-sdk runs it: Upload-Start, a TUS upload in 10 MiB "
        "appends, Upload-Finish, then `/api/requests/{rq_id}` polled every "
        f"{POLL_S:g} s until it ends, replacing the task's (emptied) annotations. Each import "
        "and each PUT was preceded by an untimed one of the first "
        f"{WARM_UP} images (imports and kernels loaded); nothing is timed cold.",
        "",
        "| workload | reference | ours | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
        f"| COCO 1.0, {f.images:,} images, {shapes:,} shapes: upload to the request's end | "
        f"datumaro `coco_instances` reading the same file: {f.datumaro:.1f} s | "
        f"{coco.total:.1f} s | {_times(coco.total, f.datumaro)} | - | (no goal) |",
        f"| the same, its read phase (target, frames, file from S3, parse and convert) | "
        f"datumaro: {f.datumaro:.1f} s | {read_phase:.1f} s | {_times(read_phase, f.datumaro)} "
        "| - | (no goal) |",
        f"| the same, upload to the request's end | `PUT /api/tasks/{{id}}/annotations` of the "
        f"same {shapes:,} shapes: {f.coco_put:.1f} s | {coco.total:.1f} s | "
        f"{_times(coco.total, f.coco_put)} | - | (no goal) |",
        *tag_rows,
        "",
        f"COCO data (seed {SEED}): `annotations/instances_default.json` ({f.coco_mb:.0f} MiB, "
        f"{f.coco_zip_mb:.0f} MiB deflated in the zip uploaded), {f.images:,} images of "
        f"{WIDTH}x{HEIGHT} named `frame_000000.jpg`..., {PER_IMAGE} annotations each in "
        "random order: 10 boxes (`segmentation` [], `bbox`), 7 polygons of 10-40 vertices, 3 "
        "masks as compressed RLE (`pycocotools.mask.encode` of wobbly blobs 60-300 px a "
        f"side, `iscrowd` 1; {MASK_POOL:,} distinct masks, each used about "
        f"{max(1, shapes * 3 // PER_IMAGE // MASK_POOL)} times); coordinates to 2 decimals; "
        "6 labels typed rectangle, polygon or mask, 3 of them with attributes (select, "
        "checkbox, number), `attributes` with `occluded` (and `rotation` for boxes) as CVAT "
        f"writes them. The task: {f.images:,} frames of {WIDTH}x{HEIGHT} in jobs of "
        f"{COCO_SEGMENT:,}; everything matched, nothing left out. The matched document is "
        f"{st.document_mb:.0f} MiB of LabeledData JSON, most of it the masks in CVAT's layout "
        "(run lengths over the tight box, a few hundred numbers each, where the COCO file "
        "has a short compressed string).",
        "",
        f"- datumaro 1.13: `dm.Dataset.import_from(dir, 'coco_instances')`, then every item "
        f"and annotation iterated (it makes {kinds}: a `Bbox` for every annotation besides "
        f"its polygon or mask). `orjson.loads` of the same JSON alone took {f.json_loads:.1f} s.",
        "- PUT: the document the import wrote (its `matched.document`, serialised, no "
        "`version`), sent to the public endpoint; like CVAT's, it answers with the task's "
        "annotations read back, which the import's internal write does not. After the "
        f"import and after the PUT the stored annotations were compared (GET of the task, "
        f"without ids): {f.coco_checked}.",
        "",
        f"Tags (cvat#10141: over 200,000 images of classification imported as Ultralytics "
        "YOLO Classification 1.0 took CVAT over 20 hours): a task of "
        f"{f.tags:,} frames of {TAG_SIZE}x{TAG_SIZE} in jobs of {TAGS_SEGMENT:,}, one tag a "
        f"frame from {TAG_LABELS} labels (seeded). The class-folder upload holds a "
        f"{TAG_SIZE}x{TAG_SIZE} JPEG per frame (stored), as a dataset does; the reader only "
        "lists the archive. The goal is judged from the upload's start; the request alone "
        "(Upload-Finish to its end) is given with it. The stored tags of both imports and "
        f"of the PUT: {f.tags_checked}.",
        "",
        "Where the time goes, seconds: the request's dates (the export service's database "
        "clock, which is this machine's) and the first polls that saw its progress reach "
        "0.5 (the runner reports it once the file is read) and 0.7 (once it is matched). "
        f"`/healthz` was asked every {POLL_S / 2:g} s during each import:",
        "",
        "| phase | COCO | tags, class folders | tags, labels.json |",
        "|---|---|---|---|",
        *phases,
        "",
        "The runner's steps again, one by one in the benchmark's process with the runner's "
        "own functions, against the same services (the file read from disk), seconds:",
        "",
        "| step | COCO | tags, class folders |",
        "|---|---|---|",
        *steps,
        "",
        f"Making the files and videos took {f.generated_s:.0f} s; ingest made the tasks in "
        f"{f.coco_task_s:.0f} s and {f.tags_task_s:.0f} s (not timed in the figures).",
        "",
        f"Reproduce: `{COMMAND}`. Smaller sizes for a quick run: TESSERA_BENCH_IMPORT_IMAGES "
        "and TESSERA_BENCH_IMPORT_TAGS (defaults 10000 and 200000).",
        "",
    ])  # fmt: skip


def run() -> str:
    """Measure at the issue's sizes (or those of the environment) and return the section."""
    began = time.perf_counter()
    load = os.getloadavg()[0]
    figures = measure(_size("IMAGES", 10_000), _size("TAGS", 200_000))
    return report(figures, (load, figures.load_at_imports), (time.perf_counter() - began) / 60)


if __name__ == "__main__":
    print(run())
