"""Running auto-annotation requests (the `RequestHandler` of the auto-annotation queue).

A request annotates the frames of its task (of its job: that job's task frames), in
increasing order, skipping deleted frames, as CVAT's `LambdaJob._call_detector` does:

1. With `cleanup`, the task's (job's) annotations are deleted first (CVAT deletes them
   before the first frame; here a `replace` with an empty document, once: `cleaned`).
2. The originals of `detect_frames` frames at a time are read from ingest and decoded;
   the function's detector runs on them together (its model on Triton through the
   batcher, which groups their frames into Triton batches).
3. Their detections become `source` "auto" shapes in the task's labels, each with its
   confidence as `score` (`documents`), gathered into a batch.
4. Once a batch holds `write_frames` frames or `write_shapes` shapes (and at the end), it
   is appended to the task (job) through the annotations service, in one transaction
   there (`AnnotationsClient.import_annotations`, action "append", for the request's
   owner). CVAT writes every 100 frames.
5. Progress (the request's frames done, of all of them) is reported after each group of
   frames the detector ran on; that is also where a cancel is noticed.

## Resuming without duplicates

The annotations service and this service commit separately, so no single transaction
can hold both a batch's shapes and the record that they were written. Instead each
batch is written in three steps:

1. record the batch (its last frame and its whole document) as `pending` in the
   request's `auto_annotations` row;
2. append the document to the task (job): one transaction of the annotations service,
   all or nothing;
3. record its last frame as `done_through` and clear `pending`, in one transaction here.

A worker that dies (or a replica that stops) leaves the request to another attempt,
which first settles a `pending` batch: it is either entirely written or not at all (step
2 is atomic), and which one is told by reading the stored shapes of its frames back
(`AnnotationsClient.snapshot`, one frame at a time) and looking for the batch's shapes by
fingerprint (frame, label, type, points, score, `source` "auto"): found, the batch is
recorded as done; not found, the recorded document itself is written (not a new
detection) and then recorded. The attempt then goes on from the first frame after
`done_through`, so every frame's shapes are written exactly once, and what an earlier
attempt detected but had not yet written is detected again. Frames deleted meanwhile are
skipped; the frame list is recomputed at each attempt. The cleanup is recorded
(`cleaned`) before the first batch, so a resumed request never deletes its own shapes.

Limits of the reconciliation, both harmless: a pending batch all of whose shapes a user
deleted in the seconds between the write and the resumption is written again; one that
had not been written but whose every shape a user or another request had already made
identically (same frame, label, points and score) is taken as written.

## Cancel and failure

`DELETE /api/lambda/requests/{id}` ends the request (failed, saying who cancelled it);
its worker notices at its next progress report and stops there, between two groups of
frames. What was written stays, as in CVAT (CVAT also writes the frames it had
gathered; here the shapes detected since the last write are dropped).

A frame whose original does not decode fails the request, as in CVAT (its function call
fails, and with it the request): the message names the frame; the batches written
before it stay. Triton unreachable or too slow, a model that is not ready, and peer
services that cannot answer are transient: the attempt is handed back to the queue and
tried again (`max_deliveries` attempts in all, `retry_delay_s` apart); the last attempt
fails the request with the reason. A request never leaves part of a batch: only whole
batches are ever written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict

from tessera.inference.auto_annotation.documents import Batch, fingerprints, frame_shapes
from tessera.inference.auto_annotation.repository import AutoAnnotationRepository, AutoAnnotationRow
from tessera.inference.detectors.detection import Detector, DetectParams, ShapeType
from tessera.inference.functions.mapping import LabelTarget, resolve_mapping, shape_type_for
from tessera.inference.functions.registry import FunctionRegistry
from tessera.inference.functions.schemas import LabelMappingEntry
from tessera.inference.images import decode_rgb
from tessera.inference.triton.errors import InferenceFailed, TritonError
from tessera.platform.clients.annotations import AnnotationsClient, SnapshotIncomplete
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.annotations import ImportTarget
from tessera.platform.errors import Problem
from tessera.platform.requests import OPEN, RequestEnded, RequestStore
from tessera.platform.workqueue import WorkQueue

logger = logging.getLogger(__name__)

_EMPTY = orjson.dumps({"tags": [], "shapes": [], "tracks": []})


class StoredParams(BaseModel):
    """What a request asked for besides its function and target (the row's `params`)."""

    model_config = ConfigDict(extra="ignore")

    threshold: float | None = None
    mapping: dict[str, LabelMappingEntry] | None = None
    cleanup: bool = False
    conv_mask_to_poly: bool = False
    shape_type: ShapeType | None = None


@dataclass(frozen=True)
class RunnerConfig:
    """Frames given to the detector at once; a batch is written after this many frames
    or once it holds this many shapes."""

    detect_frames: int = 8
    write_frames: int = 32
    write_shapes: int = 2000


@dataclass(frozen=True)
class Plan:
    """What an attempt runs: the detector and its parameters, where the labels go, and
    the request's frames (in order, deleted ones left out)."""

    detector: Detector
    params: DetectParams
    targets: dict[str, LabelTarget]
    conv_mask_to_poly: bool
    cleanup: bool
    frames: list[int]


class RequestFailed(Exception):
    """The request cannot be done; the message says why."""


class AutoAnnotationRunner:
    """Runs auto-annotation requests (see the module)."""

    def __init__(
        self,
        repository: AutoAnnotationRepository,
        requests: RequestStore,
        *,
        registry: FunctionRegistry,
        runners: dict[str, object],
        annotations: AnnotationsClient,
        ingest: IngestClient,
        queue: WorkQueue,
        config: RunnerConfig,
    ) -> None:
        self.repository = repository
        self.requests = requests
        self.registry = registry
        self.runners = runners
        self.annotations = annotations
        self.ingest = ingest
        self.queue = queue
        self.config = config

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Annotate, ending the request finished or failed (see the module)."""
        del payload  # everything is in the request's row
        row = await self.repository.begin_attempt(rq_id)
        if row is None:
            await self.requests.fail(rq_id, "The request's parameters are gone; send it again.")
            return
        if row.status not in OPEN:
            return  # cancelled, or ended by another attempt
        try:
            if row.status == "queued":
                await self.requests.start(rq_id)
            message = await self._annotate(row)
        except RequestEnded:
            logger.info("auto-annotation %s was cancelled", rq_id)
            return
        except RequestFailed as exc:
            await self.requests.fail(rq_id, str(exc))
            return
        except Exception as exc:
            reason = _transient(exc)
            if reason is None:
                if not isinstance(exc, Problem):
                    logger.exception("auto-annotation %s failed", rq_id)
                await self.requests.fail(rq_id, _failure(exc))
                return
            if row.attempts >= self.queue.max_deliveries:
                await self._settle_if_possible(rq_id)
                await self.requests.fail(
                    rq_id, f"{reason} (tried {row.attempts} times); the shapes of the frames "
                    "done before were kept. Send the request again.",
                )  # fmt: skip
                return
            logger.warning("auto-annotation %s: %s; it goes back to the queue", rq_id, reason)
            raise
        await self.requests.finish(rq_id, message=message)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Settle the batch an interrupted attempt was writing (see the module), and
        finish the request if that attempt had written its last batch."""
        del payload
        row = await self.repository.get(rq_id)
        if row is None:
            return
        if row.pending is not None:
            await self._settle(row)
        try:
            plan = await self._plan(row)
        except (Problem, RequestFailed, httpx.HTTPError):
            return  # the next attempt says what is wrong
        settled = await self.repository.get(rq_id)
        if (
            settled is not None
            and (settled.cleaned or not plan.cleanup)
            and not _remaining(plan.frames, settled.done_through)
        ):
            await self.requests.finish(rq_id, message=_report(settled, plan.frames))

    async def _annotate(self, row: AutoAnnotationRow) -> str:
        plan = await self._plan(row)
        if row.pending is not None:
            await self._settle(row)
        if plan.cleanup and not row.cleaned:
            await self.annotations.import_annotations(
                **_scope(row), document=_EMPTY, action="replace", actor_id=row.owner_id
            )
            await self.repository.set_cleaned(row.rq_id)
        current = await self.repository.get(row.rq_id)
        assert current is not None
        frames = plan.frames
        remaining = _remaining(frames, current.done_through)
        done = len(frames) - len(remaining)
        await self.requests.progress(row.rq_id, done / len(frames) if frames else 1.0)
        batch = Batch()
        step = self.config.detect_frames
        for start in range(0, len(remaining), step):
            chunk = remaining[start : start + step]
            images = await self._images(row.task_id, chunk)
            found = await plan.detector.detect(images, plan.params)
            for frame, image, detections in zip(chunk, images, found, strict=True):
                batch.add(frame, frame_shapes(
                    detections, plan.targets, frame, size=image.shape[:2],
                    conv_mask_to_poly=plan.conv_mask_to_poly,
                ))  # fmt: skip
            if batch.frames >= self.config.write_frames or (
                len(batch.shapes) >= self.config.write_shapes
            ):
                await self._write(row, batch)
                batch = Batch()
            done += len(chunk)
            await self.requests.progress(row.rq_id, done / len(frames))
        if batch.frames:
            await self._write(row, batch)
        ended = await self.repository.get(row.rq_id)
        assert ended is not None
        return _report(ended, frames)

    async def _plan(self, row: AutoAnnotationRow) -> Plan:
        """The detector, the label targets and the frames, as they are now (the task's
        labels or frames may have changed since the request was accepted)."""
        params = StoredParams.model_validate(row.params)
        try:
            spec = self.registry.get(row.function_id)
        except Problem as exc:
            raise RequestFailed(f"Function {row.function_id!r} is no longer served.") from exc
        detector = cast(Detector, self.runners[spec.id])
        target = await self.annotations.import_target(**_scope(row))
        targets = resolve_mapping(spec.labels, target.labels, params.mapping)
        shape_type = shape_type_for(detector.shape_types, params.shape_type, targets)
        return Plan(
            detector=detector,
            params=DetectParams(params.threshold or None, shape_type),
            targets=targets,
            conv_mask_to_poly=params.conv_mask_to_poly,
            cleanup=params.cleanup,
            frames=await self._frames(row, target),
        )

    async def _frames(self, row: AutoAnnotationRow, target: ImportTarget) -> list[int]:
        """The request's frames, in order, without the task's deleted frames."""
        meta = await self.ingest.task_meta(row.task_id)
        deleted = set(meta.deleted_frames)
        if row.job_id is not None:
            (job,) = (job for job in target.jobs if job.id == row.job_id)
            frames: Sequence[int] = job.task_frames()
        else:
            frames = range(target.size)
        return [frame for frame in frames if frame not in deleted]

    async def _images(self, task_id: int, frames: Sequence[int]) -> list[np.ndarray]:
        """The frames' originals, decoded to RGB (read and decoded side by side); a frame
        that does not decode fails the request."""

        async def one(frame: int) -> np.ndarray:
            data, _ = await self.ingest.original_frame(task_id, frame)
            image = await asyncio.to_thread(decode_rgb, data)
            if image is None:
                raise RequestFailed(
                    f"Frame {frame} of task {task_id} is not a decodable image; the shapes of "
                    "the frames written before it were kept."
                )
            return image

        return list(await asyncio.gather(*(one(frame) for frame in frames)))

    async def _write(self, row: AutoAnnotationRow, batch: Batch) -> None:
        """Write a batch and record it (see the module: pending, append, done)."""
        assert batch.last is not None
        if batch.shapes:
            document = batch.document()
            await self.repository.set_pending(row.rq_id, {"last": batch.last,
                                                          "document": document})  # fmt: skip
            await self.annotations.import_annotations(
                **_scope(row), document=orjson.dumps(document), action="append",
                actor_id=row.owner_id,
            )  # fmt: skip
        await self.repository.set_done(row.rq_id, batch.last, len(batch.shapes))

    async def _settle(self, row: AutoAnnotationRow) -> None:
        """Finish recording the batch an earlier attempt was writing: written if its
        shapes are stored, else written now (see the module)."""
        assert row.pending is not None
        document: dict[str, Any] = row.pending["document"]
        shapes: list[dict[str, Any]] = document.get("shapes", [])
        if shapes and not await self._stored(row.task_id, shapes):
            logger.info("auto-annotation %s: writing the batch an earlier attempt left",
                        row.rq_id)  # fmt: skip
            await self.annotations.import_annotations(
                **_scope(row), document=orjson.dumps(document), action="append",
                actor_id=row.owner_id,
            )  # fmt: skip
        else:
            logger.info("auto-annotation %s: the batch an earlier attempt left was written",
                        row.rq_id)  # fmt: skip
        await self.repository.set_done(row.rq_id, int(row.pending["last"]), len(shapes))

    async def _settle_if_possible(self, rq_id: str) -> None:
        """Settle a pending batch before the request fails, so that its record says what
        was written; left pending when the services cannot say (it was written whole or
        not at all either way)."""
        row = await self.repository.get(rq_id)
        if row is None or row.pending is None:
            return
        try:
            await self._settle(row)
        except Exception:
            logger.warning("auto-annotation %s: its last batch could not be settled", rq_id,
                           exc_info=True)  # fmt: skip

    async def _stored(self, task_id: int, shapes: Sequence[dict[str, Any]]) -> bool:
        """Whether any of these shapes is among the task's stored shapes."""
        wanted = fingerprints(shapes)
        for frame in sorted({int(shape["frame"]) for shape in shapes}):
            async with self.annotations.snapshot(task_id=task_id, frame=frame) as snapshot:
                stored = fingerprints([item.data async for item in snapshot
                                       if item.kind == "shape"])  # fmt: skip
            if stored & wanted:
                return True
        return False


def _scope(row: AutoAnnotationRow) -> dict[str, int]:
    """Where the request writes: its job, else its task."""
    return {"job_id": row.job_id} if row.job_id is not None else {"task_id": row.task_id}


def _remaining(frames: Sequence[int], done_through: int | None) -> list[int]:
    return list(frames) if done_through is None else [f for f in frames if f > done_through]


def _report(row: AutoAnnotationRow, frames: Sequence[int]) -> str:
    """What a finished request did, for its `message`."""
    return f"{row.shapes_written} shapes written on {len(frames)} frames."


def _transient(exc: Exception) -> str | None:
    """Why an attempt failed when another may succeed (Triton or a peer service that
    cannot answer now); None for a failure that another attempt would repeat."""
    if isinstance(exc, InferenceFailed):
        return None
    if isinstance(exc, TritonError):
        return f"Triton could not run the function: {exc.detail}"
    if isinstance(exc, Problem):
        return f"A service could not answer: {exc.summary()}" if exc.status >= 500 else None
    if isinstance(exc, (httpx.HTTPError, SnapshotIncomplete, OSError)):
        return f"A service could not be reached: {type(exc).__name__}: {exc}"
    return None


def _failure(exc: Exception) -> str:
    """A request's message for a failure that another attempt would repeat."""
    if isinstance(exc, Problem):
        return exc.summary()
    return f"The auto-annotation failed: {type(exc).__name__}: {exc}"
