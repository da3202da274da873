"""Inference: images per second through Triton against direct ONNX Runtime; a task's
auto-annotation from request to first shape and to the end.

Everything runs against a real Triton (the local one, `nvidia-pytriton` serving the
model repository through `services/inference/triton/serve.py`, as tests and `make run`
do) and real services:

- Throughput: IMAGES deterministic 640x640 RGB frames with drawn text through the
  PP-OCRv4 detector (`ppocr_v4_det`). Ours is the service's path: `TritonClient` over
  gRPC with uint8 tensors, one caller per frame (16 at once), through `FrameBatcher`
  with the service's defaults (linger, requests in flight), which sends batches of the
  model's `max_batch_size` (8). The reference is direct ONNX Runtime on the same ONNX
  file (the wrapped uint8 graph Triton serves), with the same session options (opened by
  `serve.py`'s own functions, in `.venv-triton`, where ONNX Runtime is installed), in
  batches of 8 as Triton runs them, timed around `session.run` in its own process. The
  same again with FP32 input: the graph as the wheel ships it (FP32 NCHW, normalised, in;
  FP32 map out), served by the same Triton as a second model made for this run, against
  direct ONNX Runtime on that same graph. The four paths take turns on each block of 16
  frames, in an order rotated from block to block (so that load from other work falls on
  all alike); rates over all rounds.
- Auto-annotation: a task of FRAMES 320x240 PNG frames with drawn text (made by ingest
  from its share), annotations, ingest and inference as uvicorn processes on embedded
  PostgreSQL, NATS and S3, and the same Triton. `POST /api/lambda/requests`, then the
  task's annotations polled until the first shape shows, and the request until it ends;
  the shapes are checked against the drawn lines. Reference: direct ONNX Runtime on the
  same frames, as the detector pads them, in batches of 8, before and after the request.

Sizes come from TESSERA_BENCH_INFERENCE_IMAGES (64), TESSERA_BENCH_INFERENCE_FRAMES
(1,000) and TESSERA_BENCH_INFERENCE_ROUNDS (4), for a quick run at a smaller size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from benchmarks.services import started_services
from tessera.devstack.launcher import Uvicorn
from tessera.devstack.servers import Triton, free_port
from tessera.inference.config import InferenceSettings
from tessera.inference.detectors.text import canvas_for, pad_to, scale_to_fit
from tessera.inference.images import decode_rgb
from tessera.inference.triton.batcher import FrameBatcher
from tessera.inference.triton.client import TritonClient

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python -m benchmarks.run inference"
TOKEN = "tsr_bench-" + uuid.uuid4().hex
SEED = 2026
MODEL = "ppocr_v4_det"
FP32_MODEL = "ppocr_v4_det_fp32"
REPOSITORY = ROOT / "services" / "inference" / "models"
TRITON_VENV = Path(os.environ.get("TESSERA_TRITON_VENV", ROOT / ".venv-triton"))
WORKER = ROOT / "benchmarks" / "inference_ort.py"
SIDE = 640  # throughput frames are SIDE x SIDE
BLOCK = 16  # frames per turn of a path: two batches of 8 (two requests in flight)
TASK_SIZE = (240, 320)  # (height, width) of the task's frames
WARM_UP_FRAMES = 16  # frames of the untimed request before the timed one
POLL_S = 0.25  # the request's polls
FIRST_POLL_S = 0.05  # the annotations' polls, until the first shape shows
GOAL = 0.9
REQUEST_TIMEOUT_S = 1800.0
WORDS = (
    "TESSERA", "invoice", "total", "2026", "queue depth", "auto labels", "street",
    "EXIT", "No. 42", "batch", "triton", "gRPC", "uint8", "frame", "review", "score",
)  # fmt: skip
MEASURED = (
    "services/inference/src/tessera/inference/triton/client.py",
    "services/inference/src/tessera/inference/triton/batcher.py",
    "services/inference/src/tessera/inference/detectors/text.py",
    "services/inference/src/tessera/inference/auto_annotation/runner.py",
    "services/inference/triton/serve.py",
    "services/inference/models/ppocr_v4_det/config.pbtxt",
    "services/inference/models/ppocr_v4_det/1/model.onnx",
)


def _size(name: str, default: int) -> int:
    """A size from TESSERA_BENCH_INFERENCE_<name>, else the issue's `default`."""
    return int(os.environ.get(f"TESSERA_BENCH_INFERENCE_{name}", default))


def _log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for name in MEASURED:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


# --- frames --------------------------------------------------------------------------------

Box = tuple[int, int, int, int]


def text_frame(
    rng: np.random.Generator, size: tuple[int, int], lines: int, scale: float, thickness: int
) -> tuple[np.ndarray, list[Box]]:
    """An RGB frame of `size` (height, width) on a light background, with `lines` lines of
    dark text in separate bands (FONT_HERSHEY_SIMPLEX), and each line's box (xtl, ytl,
    xbr, ybr), descenders included."""
    height, width = size
    background = rng.integers(200, 256, 3)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    boxes: list[Box] = []
    band = height // max(lines, 1)
    for index in range(lines):
        words = rng.choice(len(WORDS), size=int(rng.integers(1, 3)), replace=False)
        text = " ".join(WORDS[int(w)] for w in words)
        (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        while w > width - 8:  # too long for the frame: drop the last word
            text = text.rsplit(" ", 1)[0] if " " in text else text[: len(text) - 1]
            (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x = int(rng.integers(4, max(5, width - w - 4)))
        top = index * band
        y = int(rng.integers(top + h + 4, max(top + h + 5, top + band - baseline - 4)))
        ink = tuple(int(v) for v in rng.integers(0, 60, 3))
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness,
                    cv2.LINE_AA)  # fmt: skip
        boxes.append((x, y - h, x + w, y + baseline))
    return image, boxes


def throughput_frames(count: int, seed: int = SEED) -> np.ndarray:
    """`count` SIDE x SIDE uint8 RGB frames, 3-6 lines of text each, seeded."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, SIDE, SIDE, 3), np.uint8)
    for index in range(count):
        frames[index], _ = text_frame(rng, (SIDE, SIDE), int(rng.integers(3, 7)), 1.6, 3)
    return frames


def as_fp32(frames: np.ndarray) -> np.ndarray:
    """What the shipped graph takes: BGR, NCHW, (x / 255 - 0.5) / 0.5, float32 (the
    normalisation the uint8 model does in its graph)."""
    bgr = frames[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    return np.ascontiguousarray(bgr / np.float32(127.5) - np.float32(1.0))


def task_frames(count: int, seed: int = SEED + 1) -> tuple[list[bytes], list[list[Box]]]:
    """`count` PNG frames of TASK_SIZE with 0-3 lines of text (one frame in ten has none),
    and each frame's line boxes."""
    rng = np.random.default_rng(seed)
    pngs, boxes = [], []
    for _ in range(count):
        lines = 0 if rng.random() < 0.1 else int(rng.integers(1, 4))
        image, found = text_frame(rng, TASK_SIZE, lines, 0.9, 2)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok
        pngs.append(encoded.tobytes())
        boxes.append(found)
    return pngs, boxes


def detector_inputs(pngs: Sequence[bytes], max_side: int = 960) -> np.ndarray:
    """The frames as the text detector hands them to the model: decoded (as the runner
    decodes them), scaled to fit `max_side`, padded onto a canvas of multiples of 32."""
    images = [decode_rgb(data) for data in pngs]
    scaled = [scale_to_fit(image, max_side) for image in images if image is not None]
    assert len(scaled) == len(pngs)
    canvas = canvas_for(s.size for s in scaled)
    return np.stack([pad_to(s.image, canvas) for s in scaled])


# --- direct ONNX Runtime, in .venv-triton -------------------------------------------------


class OrtWorker:
    """`benchmarks/inference_ort.py` in the local Triton's interpreter, asked one command
    at a time."""

    def __init__(self) -> None:
        python = TRITON_VENV / "bin" / "python"
        if not python.exists():
            raise FileNotFoundError(f"{python} is missing: run `make install`")
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        self.process = subprocess.Popen(
            [str(python), str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the ONNX Runtime worker exited ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the ONNX Runtime worker: {answer['error']}")
        return answer

    def run(
        self, name: str, frames: Path, batch: int, *, start: int = 0, count: int = 0,
        save: Path | None = None,
    ) -> float:  # fmt: skip
        """Seconds for `count` frames (all by default) from `start` in `frames` through
        model `name`, `batch` at a time; their outputs saved in `save` when given."""
        answer = self.ask(op="run", name=name, frames=str(frames), batch=batch, start=start,
                          count=count, save=str(save) if save else None)  # fmt: skip
        seconds: float = answer["seconds"]
        return seconds

    def close(self) -> None:
        with_stdin = self.process.stdin
        if with_stdin is not None and not with_stdin.closed:
            with_stdin.write(json.dumps({"op": "quit"}) + "\n")
            with_stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def ort_worker() -> Iterator[OrtWorker]:
    worker = OrtWorker()
    try:
        yield worker
    finally:
        worker.close()


# --- Triton ----------------------------------------------------------------------------------


@contextmanager
def triton_server(base: Path, worker: OrtWorker) -> Iterator[Triton]:
    """The local Triton serving `ppocr_v4_det` from the repository (linked, not copied)
    and the FP32 variant made by the worker, both in a repository under `base`."""
    repository = base / "models"
    repository.mkdir()
    (repository / MODEL).symlink_to(REPOSITORY / MODEL)
    worker.ask(op="fp32_variant", folder=str(repository / FP32_MODEL),
               like=str(REPOSITORY / MODEL))  # fmt: skip
    server = Triton(base / "triton", http_port=free_port(), grpc_port=free_port(),
                    repository=repository)  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class Pass:
    """One pass of the frames through Triton: seconds, the outputs, the batches sent."""

    seconds: float
    outputs: np.ndarray
    batch_sizes: dict[int, int]


async def through_batcher(batcher: FrameBatcher, frames: np.ndarray) -> Pass:
    """Every frame from a caller of its own, all at once, through the batcher."""
    before = dict(batcher.stats.batch_sizes)
    started = time.perf_counter()
    results = await asyncio.gather(*(batcher.infer({"images": frame}) for frame in frames))
    seconds = time.perf_counter() - started
    sizes = {size: count - before.get(size, 0)
             for size, count in batcher.stats.batch_sizes.items()
             if count - before.get(size, 0)}  # fmt: skip
    return Pass(seconds, np.stack([r["probability"] for r in results]), sizes)


# --- the throughput --------------------------------------------------------------------------

PATHS = ("direct_uint8", "triton_uint8", "direct_fp32", "triton_fp32")


@dataclass
class Throughput:
    """Seconds of each path for each block of each round, and what was checked."""

    images: int
    block: int
    seconds: dict[str, list[list[float]]] = field(default_factory=dict)
    batch_sizes: dict[str, dict[int, int]] = field(default_factory=dict)
    executions: dict[str, tuple[int, int]] = field(default_factory=dict)
    uint8_outputs: str = ""
    fp32_outputs: str = ""
    graphs_agree: str = ""
    normalise_s: float = 0.0
    load: float = 0.0
    linger_s: float = 0.0
    in_flight: int = 0

    @property
    def rounds(self) -> int:
        return len(self.seconds[PATHS[0]])

    def total(self, path: str) -> float:
        """Seconds of a path over every block of every round."""
        return sum(sum(blocks) for blocks in self.seconds[path])

    def round_totals(self, path: str) -> list[float]:
        """Seconds of a path's pass over the frames, round by round."""
        return [sum(blocks) for blocks in self.seconds[path]]

    def rate(self, path: str) -> float:
        """Images per second of a path, over all rounds."""
        return self.images * self.rounds / self.total(path)

    def ratio(self, ours: str, reference: str) -> float:
        """Ours' throughput over the reference's, over all rounds."""
        return self.total(reference) / self.total(ours)

    def round_ratios(self, ours: str, reference: str) -> list[float]:
        """The same ratio, round by round."""
        return [r / o for o, r in zip(self.round_totals(ours), self.round_totals(reference),
                                      strict=True)]  # fmt: skip


async def measure_throughput(
    triton: Triton, worker: OrtWorker, base: Path, images: int, rounds: int
) -> Throughput:
    """Warm up (a direct pass of every frame, whose outputs are kept, and a block through
    Triton, of each model), then `rounds` rounds: for each block of BLOCK frames the four
    paths in turn, their order rotated from block to block and from round to round."""
    frames = throughput_frames(images)
    started = time.perf_counter()
    fp32 = as_fp32(frames)
    result = Throughput(images, BLOCK, normalise_s=(time.perf_counter() - started) / images)
    files = {"uint8": base / "frames-uint8.npy", "fp32": base / "frames-fp32.npy"}
    np.save(files["uint8"], frames)
    np.save(files["fp32"], fp32)
    del fp32
    fp32_frames = np.load(files["fp32"])
    worker.ask(op="open", name="uint8", folder=str(REPOSITORY / MODEL))
    worker.ask(op="open", name="fp32", folder=str(triton.repository / FP32_MODEL))
    defaults = InferenceSettings.model_fields
    result.linger_s = float(defaults["batch_linger_s"].default)
    result.in_flight = int(defaults["batch_max_in_flight"].default)
    blocks = [(start, min(start + BLOCK, images)) for start in range(0, images, BLOCK)]
    async with TritonClient(triton.url) as client:
        batchers = {
            kind: FrameBatcher(client, model, linger_s=result.linger_s,
                               max_in_flight=result.in_flight)
            for kind, model in (("uint8", MODEL), ("fp32", FP32_MODEL))
        }  # fmt: skip
        inputs = {"uint8": frames, "fp32": fp32_frames}
        batch = 8
        for kind, batcher in batchers.items():
            batch = await batcher.max_batch_size()
            worker.run(kind, files[kind], batch, save=base / f"direct-{kind}.npy")
            await through_batcher(batcher, inputs[kind][:BLOCK])
        _log(f"warmed up (batches of {batch})")
        result.load = os.getloadavg()[0]
        outputs: dict[str, list[np.ndarray]] = {"uint8": [], "fp32": []}
        for round_ in range(rounds):
            for path in PATHS:
                result.seconds.setdefault(path, []).append([])
            before = {kind: await client.statistics(b.model) for kind, b in batchers.items()}
            sizes: dict[str, Counter[int]] = {kind: Counter() for kind in batchers}
            for index, (low, high) in enumerate(blocks):
                turn = (index + round_) % len(PATHS)
                for path in PATHS[turn:] + PATHS[:turn]:
                    side, kind = path.split("_")
                    if side == "direct":
                        seconds = worker.run(kind, files[kind], batch, start=low, count=high - low)
                    else:
                        done = await through_batcher(batchers[kind], inputs[kind][low:high])
                        seconds = done.seconds
                        sizes[kind].update(done.batch_sizes)
                        if round_ == 0:
                            outputs[kind].append(done.outputs)
                    result.seconds[path][round_].append(seconds)
            for kind, batcher in batchers.items():
                after = await client.statistics(batcher.model)
                result.executions[kind] = (
                    after.inference_count - before[kind].inference_count,
                    after.execution_count - before[kind].execution_count,
                )
                result.batch_sizes[kind] = dict(sizes[kind])
            _log(f"round {round_ + 1}: " + ", ".join(
                f"{path} {sum(result.seconds[path][round_]):.2f} s" for path in PATHS))  # fmt: skip
        for batcher in batchers.values():
            await batcher.aclose()
    direct_uint8 = np.load(base / "direct-uint8.npy")
    direct_fp32 = np.load(base / "direct-fp32.npy")
    result.uint8_outputs = _compare(np.concatenate(outputs["uint8"]), direct_uint8, "of 255")
    result.fp32_outputs = _compare(np.concatenate(outputs["fp32"]), direct_fp32, "")
    # The two graphs compute the same map: round(255 p) against p.
    rounded = np.rint(direct_fp32[:, 0] * 255)
    result.graphs_agree = _compare(direct_uint8, rounded, "of 255")
    return result


def _compare(ours: np.ndarray, reference: np.ndarray, unit: str) -> str:
    """'identical', or the largest difference between two arrays of the same shape."""
    if ours.shape != reference.shape:
        raise RuntimeError(f"outputs of shape {ours.shape} against {reference.shape}")
    if np.array_equal(ours, reference):
        return "identical"
    diff = float(np.abs(ours.astype(np.float64) - reference.astype(np.float64)).max())
    share = float(np.mean(ours != reference))
    text = f"{diff:.0f} {unit}" if unit else f"{diff:.2g}"
    return f"differ by at most {text} ({share:.2%} of values differ)"


# --- the auto-annotation -----------------------------------------------------------------------


@dataclass
class Services:
    """The annotations, ingest and inference processes, and ingest's share."""

    annotations: Uvicorn
    ingest: Uvicorn
    inference: Uvicorn
    share: Path


@contextmanager
def services(base: Path, triton_url: str) -> Iterator[Services]:
    """PostgreSQL (fsync off, as in tests), NATS and S3, and the annotations, ingest and
    inference services as uvicorn processes (inference with its defaults: one worker of
    the auto-annotation queue) on the given Triton; the ingest share at base/share."""
    names = ("annotations", "ingest", "inference")
    env = {"TESSERA_TRITON_URL": triton_url}
    with started_services(base, names, token=TOKEN, env=env) as started:
        p = started.processes
        yield Services(p["annotations"], p["ingest"], p["inference"], started.share)


@dataclass
class Clients:
    annotations: httpx.AsyncClient
    ingest: httpx.AsyncClient
    inference: httpx.AsyncClient


async def create_task(c: Clients, share: Path, name: str, pngs: Sequence[bytes]) -> int:
    """A task of the PNG frames (`frame_000000.png`, ...) from the share, label "text"."""
    folder = share / name
    folder.mkdir()
    for index, data in enumerate(pngs):
        (folder / f"frame_{index:06d}.png").write_bytes(data)
    created = await c.annotations.post("/api/tasks", json={
        "name": name, "labels": [{"name": "text"}]})  # fmt: skip
    created.raise_for_status()
    task_id: int = created.json()["id"]
    sent = await c.ingest.post(f"/api/tasks/{task_id}/data/", json={
        "image_quality": 70, "server_files": [f"{name}/"]})  # fmt: skip
    sent.raise_for_status()
    rq_id = sent.json()["rq_id"]
    while True:
        body = (await c.ingest.get(f"/api/requests/{rq_id}")).json()
        if body["status"] == "failed":
            raise RuntimeError(f"ingest failed: {body.get('message')}")
        if body["status"] == "finished":
            return task_id
        await asyncio.sleep(0.5)


@dataclass
class Timeline:
    """An auto-annotation request, in seconds from just before its POST: the POST
    answered, the first poll that saw a shape in the task, the first that saw the request
    finished; its own dates (enqueued, started, ended) by the inference service's clock
    (this machine's), and the progress seen at each poll."""

    posted: float = 0.0
    first_shape: float = 0.0
    first_shapes: int = 0
    finished: float = 0.0
    dates: dict[str, float] = field(default_factory=dict)
    progress: list[tuple[float, int]] = field(default_factory=list)
    message: str = ""


async def auto_annotate(c: Clients, task_id: int) -> Timeline:
    """Request the text detector on the whole task; follow it to its end."""
    timeline = Timeline()
    origin = time.time()
    started = time.perf_counter()
    created = await c.inference.post("/api/lambda/requests",
                                      json={"function": MODEL, "task": task_id})  # fmt: skip
    created.raise_for_status()
    rq_id = created.json()["id"]
    timeline.posted = time.perf_counter() - started
    last_request_poll = -POLL_S
    while True:
        now = time.perf_counter() - started
        if not timeline.first_shape:
            answer = await c.annotations.get(f"/api/tasks/{task_id}/annotations")
            answer.raise_for_status()
            shapes = answer.json()["shapes"]
            if shapes:
                timeline.first_shape = time.perf_counter() - started
                timeline.first_shapes = len(shapes)
        if now - last_request_poll >= POLL_S or timeline.first_shape:
            last_request_poll = now
            body = (await c.inference.get(f"/api/lambda/requests/{rq_id}")).json()
            timeline.progress.append((time.perf_counter() - started, int(body["progress"] or 0)))
            if body["status"] == "failed":
                raise RuntimeError(f"the request failed: {body.get('exc_info')}")
            if body["status"] == "finished":
                timeline.finished = time.perf_counter() - started
                if not timeline.first_shape:
                    raise RuntimeError("the request finished before any shape was seen")
                break
        if time.perf_counter() - started > REQUEST_TIMEOUT_S:
            raise RuntimeError(f"the request did not end in {REQUEST_TIMEOUT_S:.0f} s")
        await asyncio.sleep(FIRST_POLL_S if not timeline.first_shape else POLL_S)
    for name in ("enqueued", "started", "ended"):
        timeline.dates[name] = datetime.fromisoformat(body[name]).timestamp() - origin
    platform = (await c.inference.get(f"/api/requests/{rq_id}")).json()
    timeline.message = platform.get("message") or ""
    return timeline


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (xtl, ytl, xbr, ybr) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Checked:
    """The auto shapes against the drawn lines: lines matched by a shape (IoU >= 0.5),
    shapes matching no line, and the scores' range."""

    lines: int = 0
    matched: int = 0
    shapes: int = 0
    unmatched: int = 0
    scores: tuple[float, float] = (0.0, 0.0)


async def check_shapes(c: Clients, task_id: int, boxes: Sequence[Sequence[Box]]) -> Checked:
    answer = await c.annotations.get(f"/api/tasks/{task_id}/annotations")
    answer.raise_for_status()
    shapes = [s for s in answer.json()["shapes"] if s["source"] == "auto"]
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for shape in shapes:
        by_frame.setdefault(shape["frame"], []).append(shape)
    checked = Checked(lines=sum(len(lines) for lines in boxes), shapes=len(shapes))
    for frame, lines in enumerate(boxes):
        found = by_frame.get(frame, [])
        checked.matched += sum(
            1 for line in lines if any(iou(s["points"], line) >= 0.5 for s in found)
        )
        checked.unmatched += sum(
            1 for s in found if not any(iou(s["points"], line) >= 0.5 for line in lines)
        )
    scores = [float(s["score"]) for s in shapes]
    checked.scores = (min(scores), max(scores)) if scores else (0.0, 0.0)
    return checked


@dataclass
class Annotation:
    """The auto-annotation's figures."""

    frames: int
    task_s: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
    checked: Checked = field(default_factory=Checked)
    direct_before: float = 0.0
    direct_after: float = 0.0

    @property
    def direct_s(self) -> float:
        """The reference: the mean of direct ONNX Runtime before and after the request."""
        return (self.direct_before + self.direct_after) / 2

    canvas: tuple[int, ...] = ()
    load: float = 0.0
    detect_frames: int = 0
    write_frames: int = 0


async def measure_annotation(s: Services, worker: OrtWorker, base: Path, frames: int) -> Annotation:
    """Make the tasks; direct ONNX Runtime on the frames; an untimed request on a small
    task, then the timed one on the big task; direct ONNX Runtime again."""
    pngs, boxes = task_frames(frames)
    result = Annotation(frames)
    defaults = InferenceSettings.model_fields
    result.detect_frames = int(defaults["auto_annotation_detect_frames"].default)
    result.write_frames = int(defaults["auto_annotation_write_frames"].default)
    inputs = detector_inputs(pngs)
    result.canvas = tuple(inputs.shape[1:3])
    path = base / "task-frames.npy"
    np.save(path, inputs)
    del inputs
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def client(service: Uvicorn) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=service.url, headers=headers, timeout=300)

    async with client(s.annotations) as ann, client(s.ingest) as ing, client(s.inference) as inf:
        c = Clients(ann, ing, inf)
        warm_task = await create_task(c, s.share, "warm-up", pngs[:WARM_UP_FRAMES])
        started = time.perf_counter()
        task_id = await create_task(c, s.share, "text", pngs)
        result.task_s = time.perf_counter() - started
        _log(f"ingest made the task of {frames} frames in {result.task_s:.1f} s")
        worker.run("uint8", path, result.detect_frames, count=result.detect_frames)  # warm-up
        result.direct_before = worker.run("uint8", path, result.detect_frames)
        _log(f"direct ONNX Runtime on the same frames: {result.direct_before:.1f} s")
        await auto_annotate(c, warm_task)
        result.load = os.getloadavg()[0]
        _log(f"warmed up; load average {result.load:.2f}")
        result.timeline = await auto_annotate(c, task_id)
        t = result.timeline
        _log(f"first shape {t.first_shape:.2f} s, finished {t.finished:.1f} s ({t.message})")
        result.direct_after = worker.run("uint8", path, result.detect_frames)
        _log(f"direct ONNX Runtime on the same frames: {result.direct_after:.1f} s")
        result.checked = await check_shapes(c, task_id, boxes)
    return result


# --- the run -------------------------------------------------------------------------------


def measure(images: int, frames: int, rounds: int) -> tuple[Throughput, Annotation]:
    base = Path(tempfile.mkdtemp(prefix="tessera-bench-inference-"))
    base.chmod(0o755)
    try:
        with ort_worker() as worker, triton_server(base, worker) as triton:
            _log("Triton ready")
            throughput = asyncio.run(measure_throughput(triton, worker, base, images, rounds))
            with services(base, triton.url) as s:
                annotation = asyncio.run(measure_annotation(s, worker, base, frames))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return throughput, annotation


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def _seconds(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def report(t: Throughput, a: Annotation, load: float, minutes: float, sources: str) -> str:
    """The Markdown section."""
    rate = {path: t.rate(path) for path in PATHS}
    uint8_ratio = t.ratio("triton_uint8", "direct_uint8")
    fp32_ratio = t.ratio("triton_fp32", "direct_fp32")
    fp32_vs_uint8 = t.ratio("triton_fp32", "direct_uint8")
    block_s = [v for blocks in t.seconds["direct_uint8"] for v in blocks[: t.images // t.block]]
    per_round = {
        name: ", ".join(f"{v:.2f}" for v in t.round_ratios(ours, reference))
        for name, ours, reference in (
            ("uint8", "triton_uint8", "direct_uint8"), ("fp32", "triton_fp32", "direct_fp32"),
            ("fp32_vs_uint8", "triton_fp32", "direct_uint8"))
    }  # fmt: skip
    pixels = SIDE * SIDE
    sent = {"uint8": pixels * 3, "fp32": pixels * 3 * 4}
    received = {"uint8": pixels, "fp32": pixels * 4}
    tl, ck = a.timeline, a.checked
    total = tl.finished
    fps = a.frames / total
    direct_fps = a.frames / a.direct_s
    first_direct = a.direct_s * min(a.write_frames, a.frames) / a.frames
    canvas = "x".join(str(v) for v in reversed(a.canvas))
    task_bytes = int(np.prod(a.canvas)) * 3
    batches = {kind: ", ".join(f"{count} requests of {size} frames"
                               for size, count in sorted(sizes.items()))
               for kind, sizes in t.batch_sizes.items()}  # fmt: skip
    executions = {kind: f"{items} images in {runs} executions"
                  for kind, (items, runs) in t.executions.items()}  # fmt: skip
    dates = tl.dates
    quick = " (a smaller size than the issue's 1,000)" if a.frames != 1000 else ""
    return "\n".join([
        "## Inference: Triton against direct ONNX Runtime; auto-annotating a task",
        "",
        f"One run ({minutes:.1f} min; load average {load:.2f} when it began, {t.load:.2f} "
        f"when the throughput rounds began and {a.load:.2f} when the timed request was "
        "sent, on a 2-core VM shared with other work, where absolute times vary by up to "
        "1.8x between runs). Triton is the local one (`nvidia-pytriton` 0.7.0, Triton 2.51, "
        "on the CPU), started as tests and `make run` start it (`tessera.devstack.servers."
        "Triton`, `services/inference/triton/serve.py`): its Python backend runs the ONNX "
        "file in ONNX Runtime 1.32 with the session options the reference uses, so the "
        "ratio is the price of the way to the model (gRPC, Triton's scheduler and dynamic "
        "batcher, pytriton's hop from the Python backend to the serving process, the "
        "client and the batcher) and not of a different runtime. Sources measured: "
        f"`{sources[:12]}` (sha256 of {', '.join(Path(m).name for m in MEASURED)}).",
        "",
        "| workload | reference | ours | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
        f"| PP-OCRv4 detector, {t.images} frames of {SIDE}x{SIDE}, uint8 over gRPC: "
        f"`TritonClient` + `FrameBatcher`, {t.block} callers at once, one frame each | direct ONNX "
        f"Runtime on the same graph (uint8 in), batches of 8: {rate['direct_uint8']:.2f} "
        f"images/s | {rate['triton_uint8']:.2f} images/s | {uint8_ratio:.2f}x | "
        f">= {GOAL}x | {_met(uint8_ratio >= GOAL)} |",
        f"| the same with FP32 input over gRPC (the graph as the wheel ships it, served as "
        f"a second model) | direct ONNX Runtime on that FP32 graph, batches of 8: "
        f"{rate['direct_fp32']:.2f} images/s | {rate['triton_fp32']:.2f} images/s | "
        f"{fp32_ratio:.2f}x | - | (no goal) |",
        f"| the FP32 path against the uint8 reference (what sending FP32 would cost the "
        f"service) | direct ONNX Runtime, uint8 graph: {rate['direct_uint8']:.2f} images/s "
        f"| {rate['triton_fp32']:.2f} images/s | {fp32_vs_uint8:.2f}x | - | (no goal) |",
        f"| bytes per {SIDE}x{SIDE} image sent (the input tensor) | FP32 [3, {SIDE}, "
        f"{SIDE}]: {sent['fp32']:,} B | uint8 [{SIDE}, {SIDE}, 3]: {sent['uint8']:,} B | "
        f"{sent['fp32'] / sent['uint8']:.0f}x fewer | - | (no goal) |",
        f"| bytes per image received (the output tensor) | FP32 [1, {SIDE}, {SIDE}]: "
        f"{received['fp32']:,} B | uint8 [{SIDE}, {SIDE}]: {received['uint8']:,} B | "
        f"{received['fp32'] / received['uint8']:.0f}x fewer | - | (no goal) |",
        f"| auto-annotation of a task of {a.frames:,} frames of {TASK_SIZE[1]}x"
        f"{TASK_SIZE[0]}: `POST /api/lambda/requests` to the first shape seen in the task "
        f"(the first batch of shapes is written after {a.write_frames} frames) | direct ONNX "
        f"Runtime on {a.write_frames} of the same frames: {first_direct:.2f} s (from the "
        f"rate below) | {tl.first_shape:.2f} s | {tl.first_shape / first_direct:.2f}x the "
        "model's time | - | (no goal) |",
        f"| the same, to the request seen finished{quick} | direct ONNX Runtime on the "
        f"same frames (model alone, padded to {canvas}, batches of {a.detect_frames}): "
        f"{a.direct_s:.1f} s ({direct_fps:.1f} frames/s) | {total:.1f} s ({fps:.1f} "
        f"frames/s) | {total / a.direct_s:.2f}x the model's time | - | (no goal) |",
        "",
        f"Throughput frames (seed {SEED}): {t.images} RGB frames of {SIDE}x{SIDE} on light "
        "backgrounds with 3-6 lines of dark text each (OpenCV's Hershey simplex, scale "
        "1.6), held in memory as one uint8 array; the FP32 frames are the same ones "
        "normalised as the uint8 graph normalises them inside (BGR, NCHW, x / 127.5 - 1), "
        f"made before the clock starts on both sides (that normalisation in NumPy costs "
        f"{t.normalise_s * 1000:.1f} ms an image, not counted). The machine's CPU time is "
        "shared with other work (another session's tests, and other virtual machines: top "
        "showed up to 50% steal while this was written): the same block of "
        f"{t.block} frames took from {min(block_s):.1f} to {max(block_s):.1f} s on the "
        "direct uint8 path in this run. So the paths are interleaved finely: the frames go "
        f"in blocks of {t.block} (two batches of 8, so that the batcher has two requests in "
        f"flight), and for each block the four paths run in turn (direct uint8, Triton "
        "uint8, direct FP32, Triton FP32), the order rotated by one from block to block and "
        f"from round to round, so that each path takes each place equally often; "
        f"{t.rounds} round{'s' if t.rounds > 1 else ''} of the {t.images} frames, after "
        "an untimed direct pass of all "
        "the frames and an untimed block through Triton of each model. A rate is the "
        "frames over the sum of the path's times in all rounds, a ratio the quotient of "
        "two rates. The rounds' own ratios: uint8 "
        f"{per_round['uint8']}; FP32 {per_round['fp32']}; FP32 Triton against uint8 direct "
        f"{per_round['fp32_vs_uint8']}. Seconds per round (all {t.images} frames): direct "
        f"uint8 {_seconds(t.round_totals('direct_uint8'))}; Triton uint8 "
        f"{_seconds(t.round_totals('triton_uint8'))}; direct FP32 "
        f"{_seconds(t.round_totals('direct_fp32'))}; Triton FP32 "
        f"{_seconds(t.round_totals('triton_fp32'))}.",
        "",
        f"- Ours: one `TritonClient` (gRPC) and one `FrameBatcher` per model, with the "
        f"service's defaults (linger {t.linger_s * 1000:g} ms, {t.in_flight} requests in "
        f"flight, batches up to the model's `max_batch_size`, 8); for each block, {t.block} "
        f"concurrent `batcher.infer` calls of one frame each, timed until the last answer. "
        "Requests "
        f"sent in the last round: uint8 {batches['uint8']}, FP32 {batches['fp32']}; Triton's "
        f"own statistics for that round: uint8 {executions['uint8']}, FP32 "
        f"{executions['fp32']}.",
        "- Reference: `benchmarks/inference_ort.py` in `.venv-triton` (ONNX Runtime is not in "
        "the workspace), which opens the session with `serve.py`'s `load_spec` and "
        "`open_session` (all cores, CPU provider) on the very file Triton serves, and "
        "times the `session.run` calls of a block's batches of 8 back to back.",
        f"- Outputs checked: Triton's uint8 maps against direct ONNX Runtime's: "
        f"{t.uint8_outputs}; FP32: {t.fp32_outputs}; the uint8 graph's map against "
        f"round(255 p) of the shipped graph's: {t.graphs_agree}.",
        "- The FP32 model: the detector's ONNX file from the `rapidocr-onnxruntime` 1.4.4 "
        "wheel (its SHA-256 checked by `build_models.py`'s recipe), its tensors renamed "
        "(`images`, `probability`) by Identity nodes, with the uint8 model's "
        "`max_batch_size` and dynamic batcher, served by the same Triton. Its answer is "
        "the FP32 map as well, so both directions carry 4x the bytes; the bytes are "
        "computed from the tensors' shapes and types (gRPC adds a few hundred bytes of "
        "framing per request).",
        "",
        f"Auto-annotation: {a.frames:,} PNG frames of {TASK_SIZE[1]}x{TASK_SIZE[0]} (seed "
        f"{SEED + 1}; one in ten blank, the others with 1-3 lines of text, {ck.lines:,} "
        f"lines in all; {task_bytes:,} B a frame to Triton once padded to {canvas}), made "
        f"into a task by ingest from its share ({a.task_s:.0f} s, not timed). The services "
        "(annotations, ingest, inference) run as uvicorn processes on embedded PostgreSQL "
        "(fsync off, as in tests), NATS and S3, with the inference service's defaults: one "
        f"worker, {a.detect_frames} frames given to the detector at once (one Triton batch), "
        f"a batch of shapes written every {a.write_frames} frames. An untimed request on a "
        f"task of {WARM_UP_FRAMES} frames ran first (imports, connections, the model's first "
        f"run). The POST answered in {tl.posted:.2f} s; the task's annotations were polled "
        f"every {FIRST_POLL_S:g} s until the first shapes showed ({tl.first_shapes} shapes, "
        f"the first written batch), then the request every {POLL_S:g} s. The request's own "
        f"dates: started {dates['started'] - dates['enqueued']:.2f} s after it was queued, "
        f"ended {dates['ended'] - dates['enqueued']:.1f} s after. Its message: "
        f"\"{tl.message}\". The shapes against the drawn lines: {ck.matched:,} of "
        f"{ck.lines:,} lines boxed (IoU >= 0.5), {ck.unmatched} of {ck.shapes:,} shapes on "
        f"no line, scores {ck.scores[0]:.2f} to {ck.scores[1]:.2f}. The reference runs the "
        "model alone on the frames as the detector pads them (no reading from ingest, "
        "decoding, post-processing or writing), in the worker above; it cannot be "
        "interleaved with a request, so it ran just before the warm-up request and just "
        f"after the timed one ({a.direct_before:.1f} s and {a.direct_after:.1f} s), and "
        "the figure is their mean.",
        "",
        f"Reproduce: `{COMMAND}`. Smaller sizes for a quick run: TESSERA_BENCH_INFERENCE_"
        "IMAGES, TESSERA_BENCH_INFERENCE_FRAMES and TESSERA_BENCH_INFERENCE_ROUNDS "
        "(defaults 64, 1000 and 4).",
        "",
    ])  # fmt: skip


def run() -> str:
    """Measure at the issue's sizes (or those of the environment) and return the section."""
    began = time.perf_counter()
    load = os.getloadavg()[0]
    sources = _sources_digest()
    throughput, annotation = measure(_size("IMAGES", 64), _size("FRAMES", 1000),
                                     _size("ROUNDS", 4))  # fmt: skip
    return report(throughput, annotation, load, (time.perf_counter() - began) / 60, sources)


if __name__ == "__main__":
    print(run())
