"""Running auto-annotation requests (the `RequestHandler` of the auto-annotation queue).

A request is made of parts (`repository`): a task, one job of a task, or some frames of
a task; a CVAT request (a task, or one of its jobs) is one part, a project's request one
part per task (per job, when it names jobs). The parts are done one after the other, in
their order. A part annotates its frames (the task's, the job's task frames, or the
frames asked for) in increasing order, skipping deleted frames, as CVAT's
`LambdaJob._call_detector` does:

1. With `cleanup`, the part's annotations (its task's or its job's) are deleted first
   (CVAT deletes them before the first frame; here a `replace` with an empty document,
   once: `cleaned`), just before its first frame, after checking that the request was
   not cancelled meanwhile.
2. The originals of `detect_frames` frames at a time are read from ingest and decoded;
   the function's detector runs on them together (its model on Triton through the
   batcher, which groups their frames into Triton batches).
3. Their detections become `source` "auto" shapes in the task's labels, each with its
   confidence as `score` (`documents`), gathered into a batch.
4. Once a batch holds `write_frames` frames or `write_shapes` shapes (and at the end of
   the part), it is appended to the part's task (job) through the annotations service,
   in one transaction there (`AnnotationsClient.import_annotations`, action "append",
   for the request's owner). CVAT writes every 100 frames. A batch never spans two
   parts.
5. Progress (the request's frames done, of all of its parts' frames) is reported after
   each group of frames the detector ran on; that is also where a cancel is noticed.

A task or job deleted since the request was accepted leaves its part out (the report
says how many were); a request of one part, or whose parts are all gone, fails saying
so, as before.

## Resuming without duplicates

The annotations service and this service commit separately, so no single transaction
can hold both a batch's shapes and the record that they were written. Instead each
batch is written in three steps:

1. record the batch (its last frame and its whole document) as `pending` in its part's
   `auto_annotation_parts` row;
2. append the document to the part's task (job): one transaction of the annotations
   service, all or nothing;
3. record its last frame as the part's `done_through` and clear `pending`, in one
   transaction here.

A worker that dies (or a replica that stops) leaves the request to another attempt,
which first settles a `pending` batch: it is either entirely written or not at all (step
2 is atomic), and which one is told by reading the stored shapes of its frames back
(`AnnotationsClient.snapshot`, one frame at a time) and looking for the batch's shapes by
fingerprint (frame, label, type, points, score, `source` "auto"): found, the batch is
recorded as done; not found, the recorded document itself is written (not a new
detection) and then recorded. The attempt then goes on, part by part, from the first
frame after each part's `done_through` (parts done are passed over), so every frame's
shapes are written exactly once, and what an earlier attempt detected but had not yet
written is detected again. Frames deleted meanwhile are skipped; the frame lists are
recomputed at each attempt. A part's cleanup is recorded (`cleaned`) before its first
batch, so a resumed request never deletes its own shapes.

Limits of the reconciliation, both harmless: a pending batch all of whose shapes a user
deleted in the seconds between the write and the resumption is written again; one that
had not been written but whose every shape a user or another request had already made
identically (same frame, label, points and score) is taken as written.

## Cancel and failure

`DELETE /api/lambda/requests/{id}` ends the request (failed, saying who cancelled it);
its worker notices at its next progress report (or before cleaning its next part) and
stops there, between two groups of frames, whatever part it is in. What was written
stays, as in CVAT (CVAT also writes the frames it had gathered; here the shapes detected
since the last write are dropped), and the parts not reached keep their annotations.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict

from tessera.inference.auto_annotation.documents import Batch, fingerprints, frame_shapes
from tessera.inference.auto_annotation.repository import (
    AutoAnnotationPart,
    AutoAnnotationRepository,
    AutoAnnotationRow,
)
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
    """What a request asked for besides its function and parts (the row's `params`)."""

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
class PartPlan:
    """What an attempt runs in a part: the detector's parameters, where the labels go,
    and the part's frames (in order, deleted ones left out), with the part's row as the
    plan read it."""

    part: AutoAnnotationPart
    params: DetectParams
    targets: dict[str, LabelTarget]
    frames: list[int]


@dataclass(frozen=True)
class Plan:
    """What an attempt runs: the detector, the mask conversion and cleanup, the parts
    still there (in order), and how many parts are gone."""

    detector: Detector
    conv_mask_to_poly: bool
    cleanup: bool
    parts: list[PartPlan]
    gone: int

    @property
    def frames(self) -> int:
        """The frames of every part."""
        return sum(len(part.frames) for part in self.parts)

    def done(self, rows: dict[int, AutoAnnotationPart]) -> int:
        """The frames done, by the parts' rows (by position)."""
        return sum(
            len(part.frames) - len(_remaining(part.frames, rows[part.part.position].done_through))
            for part in self.parts
        )

    def finished(self, rows: dict[int, AutoAnnotationPart]) -> bool:
        """Whether every part is done, its cleanup included."""
        return all(
            (rows[part.part.position].cleaned or not self.cleanup)
            and not _remaining(part.frames, rows[part.part.position].done_through)
            for part in self.parts
        )


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
        del payload  # everything is in the request's rows
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
                await self._settle_if_possible(row)
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
        try:
            plan = await self._plan(row)
        except (Problem, RequestFailed, httpx.HTTPError):
            await self._settle_if_possible(row)
            return  # the next attempt says what is wrong
        await self._settle_all(row, plan)
        rows = await self._rows(rq_id)
        if plan.finished(rows):
            await self.requests.finish(rq_id, message=_report(plan, rows.values()))

    async def _annotate(self, row: AutoAnnotationRow) -> str:
        plan = await self._plan(row)
        await self._settle_all(row, plan)
        rows = await self._rows(row.rq_id)
        total = plan.frames
        done = plan.done(rows)
        await self.requests.progress(row.rq_id, done / total if total else 1.0)
        for part_plan in plan.parts:
            part = rows[part_plan.part.position]
            if plan.cleanup and not part.cleaned:
                if await self.requests.status(row.rq_id) not in OPEN:
                    raise RequestEnded(row.rq_id)
                await self.annotations.import_annotations(
                    **_scope(part), document=_EMPTY, action="replace", actor_id=row.owner_id
                )
                await self.repository.set_cleaned(row.rq_id, part.position)
            remaining = _remaining(part_plan.frames, part.done_through)
            done = await self._annotate_part(row, plan, part_plan, remaining, done)
        return _report(plan, (await self._rows(row.rq_id)).values())

    async def _annotate_part(
        self,
        row: AutoAnnotationRow,
        plan: Plan,
        part_plan: PartPlan,
        frames: Sequence[int],
        done: int,
    ) -> int:
        """Annotate `frames` of a part (see the module); the request's frames done then."""
        part = part_plan.part
        batch = Batch()
        step = self.config.detect_frames
        for start in range(0, len(frames), step):
            chunk = frames[start : start + step]
            images = await self._images(part.task_id, chunk)
            found = await plan.detector.detect(images, part_plan.params)
            for frame, image, detections in zip(chunk, images, found, strict=True):
                batch.add(frame, frame_shapes(
                    detections, part_plan.targets, frame, size=image.shape[:2],
                    conv_mask_to_poly=plan.conv_mask_to_poly,
                ))  # fmt: skip
            if batch.frames >= self.config.write_frames or (
                len(batch.shapes) >= self.config.write_shapes
            ):
                await self._write(row, part, batch)
                batch = Batch()
            done += len(chunk)
            await self.requests.progress(row.rq_id, done / plan.frames)
        if batch.frames:
            await self._write(row, part, batch)
        return done

    async def _plan(self, row: AutoAnnotationRow) -> Plan:
        """The detector, and each part's label targets and frames, as they are now (the
        labels or frames may have changed since the request was accepted; a task or job
        may be gone)."""
        params = StoredParams.model_validate(row.params)
        try:
            spec = self.registry.get(row.function_id)
        except Problem as exc:
            raise RequestFailed(f"Function {row.function_id!r} is no longer served.") from exc
        detector = cast(Detector, self.runners[spec.id])
        parts = await self.repository.parts(row.rq_id)
        deleted: dict[int, set[int]] = {}
        plans = []
        for part in parts:
            try:
                target = await self.annotations.import_target(**_scope(part))
            except Problem as exc:
                if exc.status == 404 and len(parts) > 1:
                    continue  # its task or job is gone: the others go on
                raise
            targets = resolve_mapping(spec.labels, target.labels, params.mapping)
            shape_type = shape_type_for(detector.shape_types, params.shape_type, targets)
            if part.task_id not in deleted:
                meta = await self.ingest.task_meta(part.task_id)
                deleted[part.task_id] = set(meta.deleted_frames)
            plans.append(PartPlan(
                part=part, params=DetectParams(params.threshold or None, shape_type),
                targets=targets, frames=_frames(part, target, deleted[part.task_id]),
            ))  # fmt: skip
        if not plans:
            raise RequestFailed("Every task and job of the request was deleted.")
        return Plan(
            detector=detector,
            conv_mask_to_poly=params.conv_mask_to_poly,
            cleanup=params.cleanup,
            parts=plans,
            gone=len(parts) - len(plans),
        )

    async def _rows(self, rq_id: str) -> dict[int, AutoAnnotationPart]:
        """The request's parts as they are now, by position."""
        return {part.position: part for part in await self.repository.parts(rq_id)}

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

    async def _write(self, row: AutoAnnotationRow, part: AutoAnnotationPart, batch: Batch) -> None:
        """Write a batch to a part and record it (see the module: pending, append, done)."""
        assert batch.last is not None
        if batch.shapes:
            document = batch.document()
            pending = {"last": batch.last, "document": document}
            await self.repository.set_pending(row.rq_id, part.position, pending)
            await self.annotations.import_annotations(
                **_scope(part), document=orjson.dumps(document), action="append",
                actor_id=row.owner_id,
            )  # fmt: skip
        await self.repository.set_done(row.rq_id, part.position, batch.last, len(batch.shapes))

    async def _settle_all(self, row: AutoAnnotationRow, plan: Plan) -> None:
        """Settle the pending batch of each part of the plan that has one."""
        for part_plan in plan.parts:
            if part_plan.part.pending is not None:
                await self._settle(row, part_plan.part)

    async def _settle(self, row: AutoAnnotationRow, part: AutoAnnotationPart) -> None:
        """Finish recording the batch an earlier attempt was writing to a part: written if
        its shapes are stored, else written now (see the module)."""
        assert part.pending is not None
        document: dict[str, Any] = part.pending["document"]
        shapes: list[dict[str, Any]] = document.get("shapes", [])
        if shapes and not await self._stored(part.task_id, shapes):
            logger.info("auto-annotation %s: writing the batch an earlier attempt left",
                        row.rq_id)  # fmt: skip
            await self.annotations.import_annotations(
                **_scope(part), document=orjson.dumps(document), action="append",
                actor_id=row.owner_id,
            )  # fmt: skip
        else:
            logger.info("auto-annotation %s: the batch an earlier attempt left was written",
                        row.rq_id)  # fmt: skip
        await self.repository.set_done(
            row.rq_id, part.position, int(part.pending["last"]), len(shapes)
        )

    async def _settle_if_possible(self, row: AutoAnnotationRow) -> None:
        """Settle pending batches before the request fails, so that its record says what
        was written; left pending when the services cannot say (each was written whole or
        not at all either way)."""
        for part in await self.repository.parts(row.rq_id):
            if part.pending is None:
                continue
            try:
                await self._settle(row, part)
            except Exception:
                logger.warning("auto-annotation %s: its last batch could not be settled",
                               row.rq_id, exc_info=True)  # fmt: skip

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


def _frames(part: AutoAnnotationPart, target: ImportTarget, deleted: set[int]) -> list[int]:
    """A part's frames, in order, without the task's deleted frames."""
    frames: Iterable[int]
    if part.frames is not None:
        frames = sorted(frame for frame in part.frames if frame < target.size)
    elif part.job_id is not None:
        (job,) = (job for job in target.jobs if job.id == part.job_id)
        frames = job.task_frames()
    else:
        frames = range(target.size)
    return [frame for frame in frames if frame not in deleted]


def _scope(part: AutoAnnotationPart) -> dict[str, int]:
    """Where a part writes: its job, else its task."""
    return {"job_id": part.job_id} if part.job_id is not None else {"task_id": part.task_id}


def _remaining(frames: Sequence[int], done_through: int | None) -> list[int]:
    return list(frames) if done_through is None else [f for f in frames if f > done_through]


def _report(plan: Plan, rows: Iterable[AutoAnnotationPart]) -> str:
    """What a finished request did, for its `message`: the shapes written, on how many
    frames (of how many tasks, when more than one), and the parts left out."""
    shapes = sum(part.shapes_written for part in rows)
    tasks = len({part.part.task_id for part in plan.parts})
    where = f" of {tasks} tasks" if tasks > 1 else ""
    report = f"{shapes} shapes written on {plan.frames} frames{where}."
    if plan.gone:
        report += f" {plan.gone} of its tasks or jobs were deleted meanwhile and left out."
    return report


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
