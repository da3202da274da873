"""CVAT's lambda functions: the registry's functions, and their online calls.

An online call of a detector, as CVAT's server runs one:

1. the caller's right to see the task (or the job, and then its task) is asked of the
   annotations service with their own credentials; `frame` must be one of the task's
   frames (of the job's, with a job);
2. the task's labels (its project's, in a project) and the call's `mapping` give each
   model label its task label (`mapping.resolve_mapping`; a wrong mapping is a 400);
3. the frame's original image from ingest, decoded (EXIF orientation applied, as frames
   are shown and annotated; one that does not decode is a 422);
4. the function's detector on it (its model on Triton, through the batcher: calls that
   arrive together share a batch);
5. the detections as CVAT's annotations body in the task's labels (`results`).

Nothing is stored: CVAT's UI adds the answer to the job itself. Triton unreachable or
the model not ready answers 503 (`tessera.inference.triton.errors`).

An interactor or a tracker call takes steps 1 and 3 alike (labels play no part), then
runs the function on a worker thread (`interactive`): an interactor answers CVAT's
`{mask, points, bounds}`, a tracker `{shapes, states}` with each state signed for that
function; input the function refuses is a 400 naming the field (`body.pos_points[2]`,
`body.states[0]`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
from fastapi import Request, Response

from tessera.inference.detectors.detection import Detection, Detector, DetectParams
from tessera.inference.functions import interactive
from tessera.inference.functions.interactive import Interactor, Tracker
from tessera.inference.functions.mapping import LabelTarget, resolve_mapping, shape_type_for
from tessera.inference.functions.registry import FunctionRegistry, FunctionSpec
from tessera.inference.functions.results import detector_result
from tessera.inference.functions.schemas import DetectorResult, OnlineCall
from tessera.inference.images import decode_rgb
from tessera.inference.problems import body_field
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.errors import Problem


@dataclass(frozen=True)
class CallTarget:
    """The task frame an online call runs on (its task's labels, after the caller's
    access was checked)."""

    task_id: int
    frame: int
    targets: Mapping[str, LabelTarget]


class Functions:
    """The registry's functions, and their online calls for callers who may see the task.
    `tracker_secret` (and the `previous_tracker_secrets` still accepted) signs the
    trackers' states; needed when the registry has trackers."""

    def __init__(
        self,
        registry: FunctionRegistry,
        runners: Mapping[str, object],
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        tracker_secret: str | None = None,
        previous_tracker_secrets: Sequence[str] = (),
    ) -> None:
        self.registry = registry
        self.runners = runners
        self.annotations = annotations
        self.ingest = ingest
        self.state_codecs = interactive.state_codecs(
            registry, tracker_secret, previous_tracker_secrets
        )

    def list(self) -> list[dict[str, Any]]:
        """Every function, as CVAT lists them."""
        return [spec.to_cvat() for spec in self.registry]

    def get(self, function_id: str) -> dict[str, Any]:
        """One function as CVAT describes it; 404 for an unknown id."""
        return self.registry.get(function_id).to_cvat()

    async def call(
        self, request: Request, function_id: str, body: OnlineCall
    ) -> DetectorResult | Response:
        """An online call (see the module); 404 for an unknown function, 400 naming the
        field at fault, 422 for a frame that does not decode, 503 when Triton or the
        model is not there. An interactor's or tracker's answer is JSON already."""
        spec = self.registry.get(function_id)
        if spec.kind == "interactor":
            return await self._interact(request, spec, body)
        if spec.kind == "tracker":
            return await self._track(request, spec, body)
        if spec.kind != "detector":
            raise Problem(501, f"Online calls of {spec.kind} functions are not served yet.")
        detector = cast(Detector, self.runners[spec.id])
        target = await self._target(request, spec, body)
        shape_type = shape_type_for(detector.shape_types, body.shape_type, target.targets)
        if not target.targets:
            return DetectorResult()  # no model label goes anywhere in this task
        image = await self._image(target.task_id, target.frame)
        left, top, image = _crop(image, body.roi)
        threshold = body.threshold or None  # 0 is "the function's own", as in CVAT
        (found,) = await detector.detect([image], DetectParams(threshold, shape_type))
        if left or top:
            found = [_shifted(detection, left, top) for detection in found]
        return detector_result(found, target.targets, target.frame)

    async def _interact(self, request: Request, spec: FunctionSpec, body: OnlineCall) -> Response:
        """An interactor on the call's frame: `{mask, points, bounds}`."""
        interactor = cast(Interactor, self.runners[spec.id])
        image = await self._image(*await self._task_frame(request, spec, body))
        answer = await asyncio.to_thread(
            interactive.interact,
            interactor, image, body.pos_points, body.neg_points, body.obj_bbox,
        )  # fmt: skip
        return Response(answer, media_type="application/json")

    async def _track(self, request: Request, spec: FunctionSpec, body: OnlineCall) -> Response:
        """A tracker on the call's frame: `{shapes, states}`, the states signed."""
        tracker = cast(Tracker, self.runners[spec.id])
        codec = self.state_codecs[spec.id]
        image = await self._image(*await self._task_frame(request, spec, body))
        answer = await asyncio.to_thread(
            interactive.track, tracker, codec, image, body.shapes, body.states
        )
        return Response(answer, media_type="application/json")

    async def _target(self, request: Request, spec: FunctionSpec, body: OnlineCall) -> CallTarget:
        """The call's task and frame, checked against what the caller may see, and where
        the model's labels go in that task."""
        task_id, frame = await self._task_frame(request, spec, body)
        labels = await self.annotations.import_target(task_id=task_id)
        if labels.dimension != "2d":
            raise body_field(400, "task", f"function {spec.id!r} runs on 2D frames, not 3D tasks")
        targets = resolve_mapping(spec.labels, labels.labels, body.mapping)
        return CallTarget(task_id, frame, targets)

    async def _task_frame(
        self, request: Request, spec: FunctionSpec, body: OnlineCall
    ) -> tuple[int, int]:
        """The call's task and frame, checked against what the caller may see (a task's
        frames, or a job's). A task of 3D frames is refused here when the call names no
        job; through a job its frames do not decode (422)."""
        if body.frame is None:
            raise body_field(400, "frame", f"function {spec.id!r} needs a frame")
        if body.job is not None:
            job = await self.annotations.job_access(request, body.job)
            if body.task is not None and body.task != job.task_id:
                raise body_field(400, "task", f"job {body.job} is not a job of task {body.task}")
            if body.frame not in job.task_frames():
                raise body_field(
                    400, "frame", f"frame {body.frame} is not a frame of job {body.job}"
                )
            task_id = job.task_id
        elif body.task is not None:
            task = await self.annotations.task_access(request, body.task)
            if not 0 <= body.frame < task.size:
                frames = f"0..{task.size - 1}" if task.size else "none"
                raise body_field(
                    400, "frame", f"frame {body.frame} is outside the task's frames ({frames})"
                )
            if task.dimension != "2d":
                raise body_field(
                    400, "task", f"function {spec.id!r} runs on 2D frames, not 3D tasks"
                )
            task_id = task.task_id
        else:
            raise body_field(400, "task", "give the task (or the job) the frame belongs to")
        return task_id, body.frame

    async def _image(self, task_id: int, frame: int) -> np.ndarray:
        """The frame's original image, decoded to RGB; 422 when it does not decode."""
        data, _ = await self.ingest.original_frame(task_id, frame)
        image = await asyncio.to_thread(decode_rgb, data)
        if image is None:
            raise body_field(
                422, "frame", f"frame {frame} of task {task_id} is not a decodable image"
            )
        return image


def _crop(image: np.ndarray, roi: Sequence[float] | None) -> tuple[int, int, np.ndarray]:
    """The part of the image in `roi` ([xtl, ytl, xbr, ybr], whole pixels around it) and
    its offset; the whole image without one."""
    if roi is None:
        return 0, 0, image
    height, width = image.shape[:2]
    left, top = max(0, math.floor(roi[0])), max(0, math.floor(roi[1]))
    right, bottom = min(width, math.ceil(roi[2])), min(height, math.ceil(roi[3]))
    if right - left < 1 or bottom - top < 1:
        raise body_field(400, "roi", f"the region {list(roi)} holds no pixel of the frame")
    return left, top, image[top:bottom, left:right]


def _shifted(detection: Detection, dx: int, dy: int) -> Detection:
    """A detection made on a crop, in the whole frame's pixels."""
    points = list(detection.points)
    pairs = slice(len(points) - 4, len(points)) if detection.type == "mask" else slice(None)
    moved = points[pairs]
    points[pairs] = [v + (dy if i % 2 else dx) for i, v in enumerate(moved)]
    elements = tuple(_shifted(element, dx, dy) for element in detection.elements)
    return replace(detection, points=tuple(points), elements=elements)
