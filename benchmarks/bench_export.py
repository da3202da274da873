"""Export writers against datumaro and against the serialisation floor, measured in one run.

- COCO 1.0 of 10,000 images (1920x1080) with 200,000 shapes (50% boxes, 35% polygons of
  10-40 vertices, 15% masks in CVAT's layout, blobs 60-300 px a side), seeded: our
  `write_coco` from a generator dataset into a deflated zip over an unseekable null sink,
  against datumaro 1.13's `coco_instances` exporter on the same items (what CVAT runs),
  and against the floor: the same JSON, ready in memory, through `orjson.dumps` into the
  same kind of zip. Then the peak RSS of a process writing 10,000 images against one
  writing 100,000.
- CVAT for video 1.1 and MOT 1.1 of 800 frames with 55,000 tracked rectangles, read
  through `SnapshotDataset` from the annotations service's snapshot items (so the track
  expansion is timed), against a naive plain-Python expansion and writer (CVAT's XML
  dumper layout; datumaro's `mot_seq_gt` exporter).

Frames come from a pool of 1,000 distinct generated frames, cycled, so that generating
them costs next to nothing and memory does not grow with the number of frames.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

import numpy as np
import orjson
from pycocotools import mask as coco

from tessera.export.formats.coco import INSTANCES_MEMBER, attribute_value, write_coco
from tessera.export.formats.cvat_video import write_cvat_video
from tessera.export.formats.mot import write_mot
from tessera.export.model import (
    AttributeSpec,
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    Shape,
    ShapeType,
    TaskInfo,
)
from tessera.export.snapshot_dataset import SnapshotDataset
from tessera.geometry import array_to_cvat_mask, compress, cvat_mask_to_rle
from tessera.platform.clients.annotations import SnapshotItem
from tessera.platform.contracts.annotations import (
    SnapshotAttribute,
    SnapshotHeader,
    SnapshotJob,
    SnapshotLabel,
    SnapshotTask,
)

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python -m benchmarks.run export"
SEED = 2024
WIDTH, HEIGHT = 1920, 1080
IMAGES = 10_000
BIG_IMAGES = 100_000
POOL = 1_000  # distinct frames, cycled
KINDS: tuple[ShapeType, ...] = ("rectangle",) * 10 + ("polygon",) * 7 + ("mask",) * 3
BLOBS = 400
BIG_IMAGES_FALLBACK = 50_000  # when BIG_IMAGES would take longer than BIG_LIMIT_S
BIG_LIMIT_S = 300.0
RUNS = 3
DM_CHECK = 200  # images datumaro exports to check its output against ours
DM_IMAGES = 1_000  # images datumaro is timed on, scaled to IMAGES
TRACK_RUNS = 5
VIDEO_FRAMES = 800
TRACK_SHAPES = 55_000
JOB_ID = 7

# --- COCO data -----------------------------------------------------------------------------


def _spec(id: int, name: str, input_type: Any, values: tuple[str, ...]) -> AttributeSpec:
    return AttributeSpec(id, name, input_type, False, values, values[0])


LABELS = (
    Label(1, "car", "rectangle", "#ff0000", (
        _spec(11, "color", "select", ("red", "blue", "white", "black")),
        _spec(12, "parked", "checkbox", ("false", "true")),
    )),
    Label(2, "truck", "rectangle", "#00ff00"),
    Label(3, "person", "polygon", "#0000ff", (
        _spec(31, "pose", "select", ("standing", "sitting", "walking")),
    )),
    Label(4, "tree", "polygon", "#00ffff"),
    Label(5, "road", "mask", "#ff00ff"),
    Label(6, "puddle", "mask", "#ffff00", (_spec(61, "depth", "number", ("0", "100", "1")),)),
)  # fmt: skip
LABELS_OF: dict[str, tuple[Label, Label]] = {
    "rectangle": (LABELS[0], LABELS[1]),
    "polygon": (LABELS[2], LABELS[3]),
    "mask": (LABELS[4], LABELS[5]),
}
TASK = TaskInfo(id=1, name="bench", mode="annotation", dimension="2d", size=IMAGES, labels=LABELS)


def _blob(rng: np.random.Generator) -> tuple[list[int], int, int]:
    """CVAT mask runs of a wobbly blob (a star-shaped outline in a 60-300 px box), with
    its tight box's width and height."""
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
    points = array_to_cvat_mask((rho < radius).astype(np.uint8))
    left, top, right, bottom = points[-4:]
    return points[:-4], right - left + 1, bottom - top + 1


def _attributes(label: Label, rng: np.random.Generator) -> dict[str, str]:
    out = {}
    for spec in label.attributes:
        if spec.input_type == "number":
            out[spec.name] = str(int(rng.integers(0, 101)))
        else:
            out[spec.name] = spec.values[int(rng.integers(len(spec.values)))]
    return out


def _shape(
    kind: ShapeType, rng: np.random.Generator, blobs: Sequence[tuple[list[int], int, int]], id: int
) -> Shape:
    label = LABELS_OF[kind][int(rng.integers(2))]
    points: list[float]
    if kind == "rectangle":
        x0, y0 = rng.uniform(0, WIDTH - 20), rng.uniform(0, HEIGHT - 20)
        w, h = rng.uniform(15, 400), rng.uniform(15, 300)
        points = [float(x0), float(y0), float(min(x0 + w, WIDTH)), float(min(y0 + h, HEIGHT))]
    elif kind == "polygon":
        n = int(rng.integers(10, 41))
        cx, cy = rng.uniform(50, WIDTH - 50), rng.uniform(50, HEIGHT - 50)
        rx, ry = rng.uniform(20, 200, 2)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.6, 1.0, n)
        xs = np.clip(cx + rx * radius * np.cos(angles), 0, WIDTH)
        ys = np.clip(cy + ry * radius * np.sin(angles), 0, HEIGHT)
        points = np.column_stack([xs, ys]).ravel().tolist()
    else:
        runs, bw, bh = blobs[int(rng.integers(len(blobs)))]
        left, top = int(rng.integers(0, WIDTH - bw + 1)), int(rng.integers(0, HEIGHT - bh + 1))
        points = [*runs, left, top, left + bw - 1, top + bh - 1]
    return Shape(
        type=kind, label_id=label.id, points=points, id=id, attributes=_attributes(label, rng)
    )


def make_pool(seed: int = SEED) -> list[list[Shape]]:
    """POOL frames of 20 shapes each (10 boxes, 7 polygons, 3 masks, shuffled)."""
    rng = np.random.default_rng(seed)
    blobs = [_blob(rng) for _ in range(BLOBS)]
    pool = []
    ids = 0
    for _ in range(POOL):
        kinds = [KINDS[i] for i in rng.permutation(len(KINDS))]
        shapes = []
        for kind in kinds:
            ids += 1
            shapes.append(_shape(kind, rng, blobs, ids))
        pool.append(shapes)
    return pool


def _frame(index: int) -> FrameInfo:
    return FrameInfo(index=index, name=f"frame_{index:06d}.jpg", width=WIDTH, height=HEIGHT)


@dataclass(frozen=True)
class PoolDataset:
    """`images` frames, made as they are asked for, cycling the pool's shapes."""

    task: TaskInfo
    pool: Sequence[Sequence[Shape]]
    images: int

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        """Every frame, in order."""
        pool, size = self.pool, len(self.pool)
        for index in range(self.images):
            yield FrameAnnotations(_frame(index), pool[index % size])


class NullSink(io.RawIOBase):
    """A write-only, unseekable file that counts and drops what it gets (as the archive's
    sink hands its bytes to the upload)."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self.size += n
        return n


Writer = Callable[[Dataset, zipfile.ZipFile, ExportOptions], Any]


def _write(writer: Writer, dataset: Dataset, sink: IO[bytes], *, stored: bool = False) -> None:
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    level = None if stored else 1
    with zipfile.ZipFile(sink, "w", compression=compression, compresslevel=level) as archive:
        asyncio.run(writer(dataset, archive, ExportOptions()))


def _timed_write(writer: Writer, dataset: Dataset) -> tuple[float, int]:
    """Seconds to write `dataset` into a deflated zip over a null sink, and its size."""
    sink = NullSink()
    start = time.perf_counter()
    _write(writer, dataset, cast(IO[bytes], sink))
    return time.perf_counter() - start, sink.size


def _member(writer: Writer, dataset: Dataset, name: str) -> bytes:
    buffer = io.BytesIO()
    _write(writer, dataset, buffer, stored=True)
    with zipfile.ZipFile(buffer) as archive:
        return archive.read(name)


def _median(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    times = [fn() for _ in range(runs)]
    return statistics.median(times), times


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def rss_probe(images: int) -> dict[str, float]:
    """Run in a fresh process: write COCO of `images` frames, report time and memory."""
    pool = make_pool()
    _timed_write(write_coco, PoolDataset(TASK, pool, 100))  # load the kernels
    before = _status_kib("VmRSS")
    seconds, size = _timed_write(write_coco, PoolDataset(TASK, pool, images))
    return {
        "seconds": seconds,
        "bytes": size,
        "rss_before_mb": before / 1024,
        "hwm_mb": _status_kib("VmHWM") / 1024,
    }


_RSS_PROBE = (
    "import json, sys\n"
    "from benchmarks.bench_export import rss_probe\n"
    "print(json.dumps(rss_probe(int(sys.argv[1]))))\n"
)


def _rss(images: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(images)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the floor -----------------------------------------------------------------------------


def _floor_document(
    categories: list[Any], bases: list[list[dict[str, Any]]], images: int
) -> dict[str, Any]:
    """The COCO document ours writes for `images` frames, as ready Python objects
    (annotation dicts share their segmentation lists with the pool's)."""
    image_entries = []
    annotations = []
    ann_id = 0
    for index in range(images):
        frame = _frame(index)
        image_entries.append({
            "id": index + 1, "width": frame.width, "height": frame.height,
            "file_name": frame.name, "license": 0, "flickr_url": "", "coco_url": "",
            "date_captured": 0,
        })  # fmt: skip
        for base in bases[index % len(bases)]:
            ann_id += 1
            annotations.append({"id": ann_id, "image_id": index + 1, **base})
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": categories,
        "images": image_entries,
        "annotations": annotations,
    }


def _floor_write(document: dict[str, Any]) -> tuple[float, int]:
    sink = NullSink()
    start = time.perf_counter()
    data = orjson.dumps(document)
    with (
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(INSTANCES_MEMBER.format(subset="default"), "w", force_zip64=True) as member,
    ):
        member.write(data)
    return time.perf_counter() - start, sink.size


# --- the datumaro reference ----------------------------------------------------------------


def _dm_annotations(pool: Sequence[Sequence[Shape]]) -> list[list[Any]]:
    """The pool's shapes as CVAT's bindings hand them to datumaro (attributes converted
    by input type, then `occluded`, then `rotation` for boxes; masks as frame RLEs)."""
    import datumaro as dm  # type: ignore[import-untyped]  # noqa: PLC0415  # not in the RSS probes

    index = {label.id: i for i, label in enumerate(LABELS)}
    specs = {label.id: {s.name: s.input_type for s in label.attributes} for label in LABELS}
    frames = []
    for shapes in pool:
        annotations: list[Any] = []
        for shape in shapes:
            attrs: dict[str, Any] = {
                name: attribute_value(specs[shape.label_id][name], value)
                for name, value in shape.attributes.items()
            }
            attrs["occluded"] = shape.occluded
            label = index[shape.label_id]
            p = [float(v) for v in shape.points]
            if shape.type == "rectangle":
                attrs["rotation"] = shape.rotation
                annotations.append(
                    dm.Bbox(p[0], p[1], p[2] - p[0], p[3] - p[1], label=label, attributes=attrs)
                )
            elif shape.type == "polygon":
                annotations.append(dm.Polygon(p, label=label, attributes=attrs))
            else:
                rle = compress(cvat_mask_to_rle(shape.points, HEIGHT, WIDTH))
                annotations.append(dm.RleMask(rle=rle, label=label, attributes=attrs))
        frames.append(annotations)
    return frames


def _dm_dataset(annotations: Sequence[Sequence[Any]], images: int) -> Any:
    import datumaro as dm  # noqa: PLC0415  # not in the RSS probes

    items = [
        dm.DatasetItem(
            id=f"frame_{index:06d}",
            subset="default",
            media=dm.Image.from_file(path=f"frame_{index:06d}.jpg", size=(HEIGHT, WIDTH)),
            annotations=list(annotations[index % len(annotations)]),
            attributes={"frame": index},
        )
        for index in range(images)
    ]
    return dm.Dataset.from_iterable(items, categories=[label.name for label in LABELS])


def _dm_export(dataset: Any) -> tuple[float, bytes | None, int]:
    """Seconds of `dataset.export(dir, "coco_instances")`, the JSON when small, its size."""
    with tempfile.TemporaryDirectory(prefix="bench-export-") as root:
        start = time.perf_counter()
        dataset.export(root, "coco_instances", save_media=False)
        seconds = time.perf_counter() - start
        path = Path(root) / "annotations" / "instances_default.json"
        size = path.stat().st_size
        return seconds, path.read_bytes() if size < 64 << 20 else None, size


def _close(key: str, a: Any, b: Any) -> bool:
    """Whether ours' `a` and datumaro's `b` agree: exactly, or for polygon points and
    boxes to 0.01 and areas to 1%. datumaro 1.13 keeps polygon points as float32 (CVAT's
    fork keeps float64), which moves some vertices across pycocotools' rounding steps, so
    its polygon areas (pycocotools' of its float32 points) are off by a few pixels."""
    if a == b:
        return True
    if key == "segmentation" and isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            len(p) == len(q) and bool(np.allclose(p, q, rtol=0, atol=0.011))
            for p, q in zip(a, b, strict=True)
        )
    if key == "bbox":
        return len(a) == len(b) and bool(np.allclose(a, b, rtol=0, atol=0.011))
    if key == "area":
        return bool(np.isclose(a, b, rtol=1e-2, atol=0))
    return False


def _compare(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """How the two COCO documents agree (annotations in order), in words; ours' polygon
    areas are also checked against pycocotools' on ours' own points."""
    if len(ours["annotations"]) != len(theirs["annotations"]):
        return f"**{len(ours['annotations'])} vs {len(theirs['annotations'])} annotations**"
    differing: dict[str, int] = {}
    masks = 0
    polygons = 0
    for a, b in zip(ours["annotations"], theirs["annotations"], strict=True):
        masks += a["iscrowd"]
        if a["iscrowd"] and a != b:
            differing["masks"] = differing.get("masks", 0) + 1
        for key in sorted(set(a) | set(b)):
            if not _close(key, a.get(key), b.get(key)):
                differing[key] = differing.get(key, 0) + 1
        if isinstance(a["segmentation"], list) and a["segmentation"]:
            polygons += 1
            rles = coco.frPyObjects(a["segmentation"], HEIGHT, WIDTH)
            if float(coco.area(coco.merge(rles))) != a["area"]:
                differing["area against pycocotools"] = (
                    differing.get("area against pycocotools", 0) + 1
                )
    for key in ("categories", "images"):
        if ours[key] != theirs[key]:
            differing[key] = 1
    count = len(ours["annotations"])
    if differing:
        return "**differ in " + ", ".join(f"{k} ({n})" for k, n in sorted(differing.items())) + "**"
    return (
        f"all {count:,} annotations agree: the {masks:,} masks exactly, boxes and polygons to "
        "0.01 in points and bbox and to 1% in area (datumaro 1.13 keeps coordinates as "
        "float32, CVAT's fork float64, so its polygon areas, pycocotools' of its float32 "
        f"points, move by a few pixels; ours' {polygons:,} polygon areas equal pycocotools' "
        "of ours' points); images and categories identical"
    )


# --- tracks --------------------------------------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)
VIDEO_LABELS = [
    SnapshotLabel(id=1, name="car", color="#ff0000", type="rectangle", attributes=[
        SnapshotAttribute(id=11, name="model", input_type="select", mutable=False,
                          values=["sedan", "suv", "van"], default_value="sedan"),
        SnapshotAttribute(id=12, name="moving", input_type="checkbox", mutable=True,
                          values=["false", "true"], default_value="false"),
    ]),
    SnapshotLabel(id=2, name="person", color="#00ff00", type="rectangle", attributes=[]),
    SnapshotLabel(id=3, name="bike", color="#0000ff", type="rectangle", attributes=[]),
]  # fmt: skip


def video_header() -> SnapshotHeader:
    """A task of VIDEO_FRAMES frames in one job."""
    task = SnapshotTask(
        id=1, name="traffic", status="annotation", mode="interpolation", dimension="2d",
        media_type="video", size=VIDEO_FRAMES, subset="", bug_tracker="", project_id=None,
        project_name=None, organization_id=None, owner="bench", assignee=None,
        segment_size=VIDEO_FRAMES, overlap=0, image_quality=70, start_frame=0,
        stop_frame=VIDEO_FRAMES - 1, frame_filter="", data_chunk_size=36,
        compressed_chunk_type="video", original_chunk_type="video", created_date=NOW,
        updated_date=NOW,
    )  # fmt: skip
    job = SnapshotJob(
        id=JOB_ID, type="annotation", start_frame=0, stop_frame=VIDEO_FRAMES - 1, frames=None,
        version=1,
    )  # fmt: skip
    return SnapshotHeader(scope="task", version=1, task=task, labels=VIDEO_LABELS, jobs=[job])


def make_tracks(seed: int = SEED) -> list[dict[str, Any]]:
    """Tracks of rectangles, as the annotations API writes them, ordered by first frame:
    each spans 50-400 frames (its last keyframe, outside, one frame after), keyframes
    every 5-20 frames, moving at a steady pace with some jitter; TRACK_SHAPES visible
    frames in all."""
    rng = np.random.default_rng(seed)
    tracks: list[dict[str, Any]] = []
    total = 0
    while total < TRACK_SHAPES:
        span = min(int(rng.integers(50, 401)), TRACK_SHAPES - total)
        total += span
        start = int(rng.integers(0, VIDEO_FRAMES - span))
        label = int(rng.integers(1, 4))
        w, h = rng.uniform(30, 250), rng.uniform(30, 200)
        x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
        vx, vy = rng.uniform(-3, 3, 2)
        frames = [start]
        while frames[-1] + 5 < start + span:
            frames.append(min(frames[-1] + int(rng.integers(5, 21)), start + span - 1))
            if frames[-1] == frames[-2]:
                frames.pop()
                break
        shapes = []
        for frame in [*frames, start + span]:
            t = frame - start
            cx = float(np.clip(x + vx * t + rng.normal(0, 2), 0, WIDTH - w))
            cy = float(np.clip(y + vy * t + rng.normal(0, 2), 0, HEIGHT - h))
            attributes = (
                [{"spec_id": 12, "value": "true" if rng.random() < 0.5 else "false"}]
                if label == 1
                else []
            )
            shapes.append({
                "type": "rectangle", "frame": frame, "points": [cx, cy, cx + w, cy + h],
                "rotation": 0.0, "occluded": bool(rng.random() < 0.1),
                "outside": frame == start + span, "z_order": 0, "attributes": attributes,
            })  # fmt: skip
        tracks.append({
            "frame": start, "label_id": label, "group": 0, "source": "manual",
            "attributes": [{"spec_id": 11, "value": "suv"}] if label == 1 else [],
            "shapes": shapes, "elements": [],
        })  # fmt: skip
    tracks.sort(key=lambda track: int(track["frame"]))
    for number, track in enumerate(tracks, start=1):
        track["id"] = number
    return tracks


def _video_frames() -> list[FrameInfo]:
    return [
        FrameInfo(index=i, name=f"frame_{i:06d}.jpg", width=WIDTH, height=HEIGHT)
        for i in range(VIDEO_FRAMES)
    ]


async def _items(tracks: Sequence[dict[str, Any]]) -> AsyncIterator[SnapshotItem]:
    for track in tracks:
        yield SnapshotItem("track", JOB_ID, track)


def _snapshot(tracks: Sequence[dict[str, Any]]) -> SnapshotDataset:
    return SnapshotDataset(video_header(), _items(tracks), _video_frames())


def _expand_only(tracks: Sequence[dict[str, Any]]) -> tuple[float, int]:
    async def drain() -> int:
        count = 0
        async for item in _snapshot(tracks).frames():
            count += sum(not shape.outside for shape in item.shapes)
        return count

    start = time.perf_counter()
    count = asyncio.run(drain())
    return time.perf_counter() - start, count


# --- the naive track references ------------------------------------------------------------

NaiveShape = tuple[int, list[float], bool, bool, bool, dict[int, str]]
"""frame, points, outside, occluded, keyframe, attributes by spec id."""


def _naive_expand(track: dict[str, Any], stop: int) -> Iterator[NaiveShape]:
    """A track's frames by the plain loop CVAT's TrackManager runs for boxes: keyframes,
    linear interpolation between them, the last one repeated up to `stop` unless outside."""
    keyframes = track["shapes"]
    for left, right in zip(keyframes, [*keyframes[1:], None], strict=True):
        attrs = {a["spec_id"]: a["value"] for a in left["attributes"]}
        first = left["frame"]
        yield first, left["points"], left["outside"], left["occluded"], True, attrs
        if left["outside"]:
            continue
        last = stop + 1 if right is None else right["frame"]
        for frame in range(first + 1, last):
            if right is None:
                points = left["points"]
            else:
                t = (frame - first) / (right["frame"] - first)
                points = [
                    a + (b - a) * t for a, b in zip(left["points"], right["points"], strict=True)
                ]
            yield frame, points, False, left["occluded"], False, attrs


def _naive_expand_only(tracks: Sequence[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for track in tracks:
        for _ in _naive_expand(track, VIDEO_FRAMES - 1):
            pass
    return time.perf_counter() - start


def _naive_video(tracks: Sequence[dict[str, Any]]) -> float:
    """CVAT's `dump_as_cvat_interpolation` layout through an `XMLGenerator`, as CVAT's
    dumper writes it, after the naive expansion."""
    names = {label.id: label.name for label in VIDEO_LABELS}
    specs = {a.id: a.name for label in VIDEO_LABELS for a in label.attributes}
    sink = NullSink()
    start = time.perf_counter()
    with (
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("annotations.xml", "w", force_zip64=True) as member,
        io.TextIOWrapper(member, encoding="utf-8") as text,
    ):
        xml = XMLGenerator(text, "utf-8")
        xml.startDocument()
        xml.startElement("annotations", AttributesImpl({}))
        for number, track in enumerate(tracks):
            text.write("\n  ")
            xml.startElement(
                "track",
                AttributesImpl(
                    {"id": str(number), "label": names[track["label_id"]], "source": "manual"}
                ),
            )
            immutable = {a["spec_id"]: a["value"] for a in track["attributes"]}
            for frame, points, outside, occluded, keyframe, attrs in _naive_expand(
                track, VIDEO_FRAMES - 1
            ):
                text.write("\n    ")
                xml.startElement("box", AttributesImpl({
                    "frame": str(frame), "keyframe": str(int(keyframe)),
                    "outside": str(int(outside)), "occluded": str(int(occluded)),
                    "xtl": f"{points[0]:.2f}", "ytl": f"{points[1]:.2f}",
                    "xbr": f"{points[2]:.2f}", "ybr": f"{points[3]:.2f}", "z_order": "0",
                }))  # fmt: skip
                for spec_id, value in {**attrs, **immutable}.items():
                    text.write("\n      ")
                    xml.startElement("attribute", AttributesImpl({"name": specs[spec_id]}))
                    xml.characters(value)
                    xml.endElement("attribute")
                text.write("\n    ")
                xml.endElement("box")
            text.write("\n  ")
            xml.endElement("track")
        xml.endElement("annotations")
        xml.endDocument()
    return time.perf_counter() - start


def _naive_mot(tracks: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """The naive expansion into datumaro items, then datumaro's `mot_seq_gt` exporter
    (CVAT's path); seconds and the number of lines of gt.txt."""
    import datumaro as dm  # noqa: PLC0415  # not in the RSS probes

    start = time.perf_counter()
    by_frame: list[list[Any]] = [[] for _ in range(VIDEO_FRAMES)]
    for track in tracks:
        for frame, points, outside, occluded, keyframe, _ in _naive_expand(track, VIDEO_FRAMES - 1):
            if outside:
                continue
            x0, y0, x1, y1 = points
            by_frame[frame].append(
                dm.Bbox(x0, y0, x1 - x0, y1 - y0, label=track["label_id"] - 1, attributes={
                    "occluded": occluded, "track_id": track["id"], "keyframe": keyframe,
                })
            )  # fmt: skip
    items = [
        dm.DatasetItem(
            id=f"frame_{index:06d}",
            media=dm.Image.from_file(path=f"frame_{index:06d}.jpg", size=(HEIGHT, WIDTH)),
            annotations=annotations,
        )
        for index, annotations in enumerate(by_frame)
    ]
    dataset = dm.Dataset.from_iterable(items, categories=[label.name for label in VIDEO_LABELS])
    with tempfile.TemporaryDirectory(prefix="bench-export-") as root:
        dataset.export(root, "mot_seq_gt", save_media=False)
        seconds = time.perf_counter() - start
        lines = len((Path(root) / "gt" / "gt.txt").read_text().splitlines())
    return seconds, lines


# --- report --------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"  [export] {message}", flush=True)


def _mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


COCO_MODULES = ("tessera.export.model", "tessera.export.formats.coco", "tessera.geometry.rle")
"""What the RSS probes import afresh: a change on disk during the run would mix versions."""
MEASURED_MODULES = (
    *COCO_MODULES,
    "tessera.export.formats.cvat_video",
    "tessera.export.formats.cvat_xml",
    "tessera.export.formats.mot",
    "tessera.export.snapshot_dataset",
    "tessera.geometry.interpolation",
)


def _sources_digest(names: Sequence[str] = MEASURED_MODULES) -> str:
    """A digest of the source files of the named (imported) modules."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(Path(str(sys.modules[name].__file__)).read_bytes())
    return digest.hexdigest()


def _speed(reference: float, ours: float) -> str:
    if reference >= ours:
        return f"{reference / ours:.{1 if reference >= 10 * ours else 2}f}x faster"
    return f"{ours / reference:.2f}x slower"


def _drain(dataset: Dataset) -> float:
    async def drain() -> None:
        async for _ in dataset.frames():
            pass

    start = time.perf_counter()
    asyncio.run(drain())
    return time.perf_counter() - start


def run() -> str:
    """Measure and return the Markdown section."""
    began = time.perf_counter()
    load = os.getloadavg()[0]
    sources = _sources_digest()  # as imported, give or take the moment since
    coco_sources = _sources_digest(COCO_MODULES)
    _log("COCO: generating the pool of frames")
    pool = make_pool()
    dataset = PoolDataset(TASK, pool, IMAGES)
    shapes = IMAGES * len(KINDS)
    member = INSTANCES_MEMBER.format(subset="default")

    # Ours on the pool (which loads the kernels): its JSON gives the floor its objects.
    ours_pool = _member(write_coco, PoolDataset(TASK, pool, POOL), member)
    parsed = orjson.loads(ours_pool)
    bases: list[list[dict[str, Any]]] = [[] for _ in range(POOL)]
    for ann in parsed["annotations"]:
        bases[ann["image_id"] - 1].append(
            {k: v for k, v in ann.items() if k not in ("id", "image_id")}
        )
    categories = parsed["categories"]
    floor_same = orjson.dumps(_floor_document(categories, bases, POOL)) == ours_pool
    del parsed, ours_pool
    generator_s = _drain(dataset)

    _log(f"COCO: ours vs datumaro on {DM_CHECK} images (checking the reference)")
    start = time.perf_counter()
    dm_annotations = _dm_annotations(pool)
    dm_items_s = (time.perf_counter() - start) * IMAGES / POOL
    dm_json = _dm_export(_dm_dataset(dm_annotations, DM_CHECK))[1]
    assert dm_json is not None
    ours_check = _member(write_coco, PoolDataset(TASK, pool, DM_CHECK), member)
    agreement = _compare(orjson.loads(ours_check), orjson.loads(dm_json))
    del dm_json, ours_check
    _log(f"COCO: {agreement}")
    start = time.perf_counter()
    dm_dataset = _dm_dataset(dm_annotations, DM_IMAGES)
    dm_build_s = dm_items_s + (time.perf_counter() - start) * IMAGES / DM_IMAGES
    document = _floor_document(categories, bases, IMAGES)
    json_size = len(orjson.dumps(document))

    _log(
        f"COCO: {RUNS} rounds of ours ({IMAGES:,} images), the floor ({IMAGES:,}) and "
        f"datumaro ({DM_IMAGES:,}), alternating so that load from other work falls on all"
    )
    ours_runs: list[tuple[float, int]] = []
    floor_runs: list[tuple[float, int]] = []
    dm_runs: list[float] = []
    for _ in range(RUNS):
        ours_runs.append(_timed_write(write_coco, dataset))
        floor_runs.append(_floor_write(document))
        seconds, _, dm_part_size = _dm_export(dm_dataset)
        dm_runs.append(seconds)
        _log(
            f"COCO: ours {ours_runs[-1][0]:.2f} s, floor {floor_runs[-1][0]:.2f} s, "
            f"datumaro {seconds:.2f} s"
        )
    del document, dm_dataset, dm_annotations
    ours_s = statistics.median(seconds for seconds, _ in ours_runs)
    ours_zip = ours_runs[0][1]
    floor_s = statistics.median(seconds for seconds, _ in floor_runs)
    dm_part_s = statistics.median(dm_runs)
    dm_s = dm_part_s * IMAGES / DM_IMAGES

    big_images = BIG_IMAGES if ours_s * BIG_IMAGES / IMAGES <= BIG_LIMIT_S else BIG_IMAGES_FALLBACK
    _log(f"COCO: peak RSS of fresh processes writing {IMAGES:,} and {big_images:,} images")
    small = _rss(IMAGES)
    big = _rss(big_images)
    changed = _sources_digest(COCO_MODULES) != coco_sources
    _log(f"COCO: {small}, {big}")

    _log("tracks: generating, checking the output")
    tracks = make_tracks()
    keyframes = sum(len(track["shapes"]) for track in tracks)
    tracks_before = orjson.dumps(tracks)
    _, visible = _expand_only(tracks)  # also loads the kernels
    assert visible == TRACK_SHAPES, visible
    mot_lines = len(_member(write_mot, _snapshot(tracks), "gt/gt.txt").splitlines())
    assert mot_lines == TRACK_SHAPES, mot_lines
    xml = _member(write_cvat_video, _snapshot(tracks), "annotations.xml")
    video_boxes = xml.count(b"<box ")
    del xml
    _log(f"tracks: {TRACK_RUNS} rounds of ours and the naive references, alternating")
    times: dict[str, list[float]] = {}
    naive_mot_lines = 0
    for _ in range(TRACK_RUNS):
        round_times = {
            "expand": _expand_only(tracks)[0],
            "video": _timed_write(write_cvat_video, _snapshot(tracks))[0],
            "mot": _timed_write(write_mot, _snapshot(tracks))[0],
            "naive expand": _naive_expand_only(tracks),
            "naive video": _naive_video(tracks),
        }
        round_times["naive mot"], naive_mot_lines = _naive_mot(tracks)
        for key, seconds in round_times.items():
            times.setdefault(key, []).append(seconds)
        _log("tracks: " + ", ".join(f"{k} {v:.2f} s" for k, v in round_times.items()))
    assert orjson.dumps(tracks) == tracks_before, "the writers changed the snapshot's items"
    assert naive_mot_lines == TRACK_SHAPES, naive_mot_lines
    median = {key: statistics.median(values) for key, values in times.items()}
    expand_s, video_s, mot_s = median["expand"], median["video"], median["mot"]
    naive_expand_s, naive_video_s = median["naive expand"], median["naive video"]
    naive_mot_s = median["naive mot"]
    total_s = time.perf_counter() - began
    _log(f"done in {total_s:.0f} s")
    if changed:
        _log("WARNING: the COCO sources changed on disk before the RSS probes ended")

    ours_ratio = dm_s / ours_s
    ours_times = ", ".join(f"{seconds:.1f}" for seconds, _ in ours_runs)
    dm_times = ", ".join(f"{seconds:.1f}" for seconds in dm_runs)
    floor_ratio = ours_s / floor_s
    rss_ratio = big["hwm_mb"] / small["hwm_mb"]
    rows = [
        f"| COCO 1.0, {IMAGES:,} images, {shapes:,} shapes | datumaro `coco_instances`: "
        f"{dm_s:.0f} s (scaled from {DM_IMAGES:,} images) | {ours_s:.1f} s | "
        f"{_speed(dm_s, ours_s)} | >= 20x | {_yes(ours_ratio >= 20)} |",
        f"| the same | floor, `orjson.dumps` + deflate of the ready document: {floor_s:.2f} s | "
        f"{ours_s:.1f} s | {floor_ratio:.1f}x the floor | <= 1.5x | {_yes(floor_ratio <= 1.5)} |",
        f"| peak RSS (VmHWM) of the COCO export | {IMAGES:,} images: {small['hwm_mb']:.0f} MB | "
        f"{big_images:,} images: {big['hwm_mb']:.0f} MB | {rss_ratio:.2f}x | <= 1.3x | "
        f"{_yes(rss_ratio <= 1.3)} |",
        f"| CVAT for video 1.1, {VIDEO_FRAMES} frames, {TRACK_SHAPES:,} track shapes | naive "
        f"expansion + `XMLGenerator`: {naive_video_s:.2f} s | {video_s:.2f} s | "
        f"{_speed(naive_video_s, video_s)} | under 10 s | {_yes(video_s < 10)} |",
        f"| MOT 1.1, the same tracks | naive expansion + datumaro `mot_seq_gt`: "
        f"{naive_mot_s:.2f} s | {mot_s:.2f} s | {_speed(naive_mot_s, mot_s)} | "
        f"under 10 s | {_yes(mot_s < 10)} |",
        f"| track expansion alone (part of both rows above) | naive loop, tuples per track: "
        f"{naive_expand_s:.2f} s | "
        f"`SnapshotDataset.frames`: {expand_s:.2f} s | {_speed(naive_expand_s, expand_s)} | - | "
        "(no goal) |",
    ]
    big_note = (
        ""
        if big_images == BIG_IMAGES
        else f" ({BIG_IMAGES:,} images would have taken about {ours_s * BIG_IMAGES / IMAGES:.0f} "
        f"s at this run's pace, over the {BIG_LIMIT_S:.0f} s allowed, so {big_images:,})"
    )
    lines = [
        "## Export: COCO against datumaro and the floor; tracks through the snapshot",
        "",
        f"One run ({total_s / 60:.1f} min; load average {load:.2f} when it began, on a 2-core "
        "VM shared with other work, where absolute times vary by up to 1.8x between runs). "
        "Ours is timed as the archive runs it: the writer into `zipfile.ZipFile(sink, 'w', "
        "ZIP_DEFLATED, compresslevel=1)` over an unseekable sink that drops the bytes. "
        "Absolute times are context; the figures are the ratios. Sources measured: "
        f"`{sources[:12]}` (sha256 of {', '.join(m.rsplit('.', 1)[1] for m in MEASURED_MODULES)}, "
        "as imported when the run began)."
        + (
            " **The COCO writer's sources changed on disk during this run: the RSS probes "
            "may have run another version than the timings.**"
            if changed
            else ""
        ),
        "",
        "| workload | reference | ours | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"COCO data: {IMAGES:,} frames of {WIDTH}x{HEIGHT}, 20 shapes each (10 boxes, 7 "
        "polygons of 10-40 vertices, 3 masks in CVAT's layout: wobbly blobs 60-300 px a side "
        "encoded by `array_to_cvat_mask`), 6 labels, 0-2 attributes a shape, seed "
        f"{SEED}. The dataset makes each frame as the writer asks for it, cycling a pool of "
        f"{POOL:,} generated frames ({POOL * len(KINDS):,} distinct shapes), so memory stays "
        f"flat and generating costs little ({generator_s:.2f} s for the {IMAGES:,} frames, "
        f"inside ours' time). Ours, the floor and datumaro were run in {RUNS} alternating "
        f"rounds (so that load from other work falls on all alike); medians. Ours: "
        f"{ours_times} s, "
        f"{_mib(json_size)} of JSON, {_mib(ours_zip)} deflated.",
        "",
        f"- datumaro 1.13 (the exporter CVAT runs): the same items as CVAT's bindings give "
        "them (`Bbox`, `Polygon`, `RleMask` with the frame RLE precomputed; the spec "
        "attributes, `occluded`, `rotation`), `dataset.export(dir, 'coco_instances', "
        f"save_media=False)`, writing plain JSON to disk and no zip. Timed on the first "
        f"{DM_IMAGES:,} images ({dm_times} s, {_mib(dm_part_size)} of JSON; it works item "
        f"by item) and scaled linearly to {IMAGES:,}: the full size in every round would "
        f"add about {RUNS * (dm_s - dm_part_s) / 60:.0f} minutes to this run; only the "
        "export is timed (making the annotations and the `dm.Dataset` "
        f"would add about {dm_build_s:.0f} s at full size). Output checked against ours on "
        f"{DM_CHECK} images: {agreement}.",
        "- floor: the document ours writes, in memory as ready Python objects (taken from "
        "ours' own output on the pool; re-serialised, "
        + ("byte-identical to ours" if floor_same else "**not identical to ours**")
        + "), timed for `orjson.dumps` and the write into the same kind of zip only ("
        + ", ".join(f"{seconds:.2f}" for seconds, _ in floor_runs)
        + " s).",
        f"- peak RSS: fresh processes (`python -c`), each building the pool and loading the "
        f"kernels before the export (RSS then {small['rss_before_mb']:.0f} MB and "
        f"{big['rss_before_mb']:.0f} MB, so the export's own peak above it is "
        f"{small['hwm_mb'] - small['rss_before_mb']:.1f} MB and "
        f"{big['hwm_mb'] - big['rss_before_mb']:.1f} MB){big_note}. The "
        f"{big_images:,}-image export took "
        f"{big['seconds']:.0f} s ({_mib(big['bytes'])} deflated), the {IMAGES:,}-image one "
        f"{small['seconds']:.0f} s.",
        "",
        f"Tracks: {len(tracks)} rectangle tracks on {VIDEO_FRAMES} frames (one job), each "
        f"spanning 50-400 frames with a keyframe every 5-20 frames ({keyframes:,} keyframes "
        "with the outside one that ends each track), 10% of keyframes occluded, 0-2 "
        f"attributes; {TRACK_SHAPES:,} visible shapes once expanded (MOT's gt.txt checked to "
        f"have {TRACK_SHAPES:,} lines, datumaro's too; {video_boxes:,} `<box>` elements in "
        "the XML, outside frames included). Ours reads the snapshot items "
        "(`SnapshotItem('track', job, dict)` by first frame, as the annotations service "
        "streams them) through `SnapshotDataset`, which expands the tracks lazily. The "
        "naive references expand with a plain Python loop "
        "(linear interpolation between keyframes, as CVAT's TrackManager does for boxes, "
        "without its bookkeeping), then write CVAT's dumper layout through `XMLGenerator` "
        "(video) or build datumaro items and run its `mot_seq_gt` exporter (MOT, as CVAT "
        f"does); everything timed. Medians of {TRACK_RUNS} rounds, ours and the references "
        "alternating.",
        "",
        f"Reproduce: `{COMMAND}`",
        "",
    ]
    return "\n".join(lines)
