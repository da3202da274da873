"""Online calls of interactors and trackers: the CPU work of one call, and its errors as
problems naming the call's fields.

An interactor call (`pos_points`, `neg_points`, optional `obj_bbox`, as CVAT 2.80's
lambda manager passes them on) answers CVAT's `{"mask", "points", "bounds"}`
(`InteractorResult.to_cvat()`); a tracker call (`shapes`, `states`) answers
`{"shapes", "states"}` (`TrackResult.to_cvat()`), each state signed by this service for
this function (`TrackerStateCodec`, made once per function with the service's
`tracker_state_secret`, the function's id as context). Where upstream CVAT answers "Invalid
or expired tracker state", this one says which state and why (`problem`).

The work (the model, the answer made JSON) runs on a worker thread: a mask of a large
object is a few million numbers, not to be built on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import orjson

from tessera.inference.functions.registry import FunctionRegistry
from tessera.inference.interactors import InteractorInputError, InteractorResult
from tessera.inference.trackers import (
    TrackerInputError,
    TrackerStateCodec,
    TrackerStateError,
    TrackResult,
)
from tessera.platform.errors import Problem


class Interactor(Protocol):
    """An interactor function's code (`GrabCutInteractor`): a decoded RGB frame and the
    call's points in, the object out; `InteractorInputError` for bad points."""

    def __call__(
        self, image: np.ndarray, pos_points: object, neg_points: object, obj_bbox: object = None
    ) -> InteractorResult: ...


class Tracker(Protocol):
    """A tracker function's code (`TemplateTrackerFunction`): a decoded RGB frame, the
    call's boxes and states in, the new boxes and signed states out; `TrackerInputError`
    (`TrackerStateError` for a state) for bad input."""

    def __call__(
        self, image: object, shapes: object, states: object, *, codec: TrackerStateCodec
    ) -> TrackResult: ...


def state_codecs(
    registry: FunctionRegistry, secret: str | None, previous_secrets: Sequence[str] = ()
) -> dict[str, TrackerStateCodec]:
    """A state codec for each tracker of the registry, bound to its id; ValueError when
    there are trackers and no secret to sign their states with."""
    trackers = [spec.id for spec in registry if spec.kind == "tracker"]
    if trackers and not secret:
        raise ValueError(
            f"the trackers {', '.join(trackers)} need a secret to sign their states "
            "(TESSERA_TRACKER_STATE_SECRET)"
        )
    return {
        function_id: TrackerStateCodec(
            secret or "", context=function_id, previous_secrets=list(previous_secrets)
        )
        for function_id in trackers
    }


def interact(
    interactor: Interactor,
    image: np.ndarray,
    pos_points: object,
    neg_points: object,
    obj_bbox: object,
) -> bytes:
    """The interactor on a frame, its answer as JSON (CVAT's `{mask, points, bounds}`);
    a 400 problem naming the field of bad input. Blocking: run it on a thread."""
    try:
        result = interactor(image, pos_points, neg_points, obj_bbox)
    except InteractorInputError as exc:
        raise input_problem(exc.field, str(exc), exc.index) from exc
    return orjson.dumps(result.to_cvat())


def track(
    tracker: Tracker,
    codec: TrackerStateCodec,
    image: np.ndarray,
    shapes: object,
    states: object,
) -> bytes:
    """The tracker on a frame, its answer as JSON (CVAT's `{shapes, states}`); a 400
    problem naming the field (`states[i]` and what is wrong with it, for a state that
    does not open). Blocking: run it on a thread."""
    try:
        result = tracker(image, shapes, states, codec=codec)
    except TrackerStateError as exc:
        raise state_problem(exc) from exc
    except TrackerInputError as exc:
        raise input_problem(exc.field, str(exc), exc.index) from exc
    return orjson.dumps(result.to_cvat())


def input_problem(field: str, message: str, index: int | None) -> Problem:
    """400 naming `body.<field>` (`body.<field>[index]` for one item of a list); the
    modules' `image` is the call's `frame`."""
    name = "frame" if field == "image" else field
    where = f"body.{name}" + (f"[{index}]" if index is not None else "")
    detail = message[0].upper() + message[1:] + "."
    return Problem(400, detail, errors=[{"field": where, "message": message}])


def state_problem(exc: TrackerStateError) -> Problem:
    """400 naming the state at fault (`body.states[i]`) and the kind of fault
    (`problem`: signature, expired, malformed, ...): the client starts that object's track
    again without a state."""
    where = "body.states" + (f"[{exc.index}]" if exc.index is not None else "")
    message = str(exc)
    error: dict[str, Any] = {"field": where, "message": message, "problem": exc.problem}
    return Problem(400, f"Invalid or expired tracker state: {message}.", errors=[error])
