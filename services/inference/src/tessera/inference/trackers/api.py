"""CVAT's tracker call as a pure function: an image, boxes and signed states in, boxes
and new signed states out.

CVAT's UI calls a tracker twice per object (cvat-ui `tools-control.tsx`): first on the
frame where the box was drawn, `{"frame": f - 1, "shapes": [[x1, y1, x2, y2], ...]}`
with no states, keeping only the `states` of the answer; then on each next frame
`{"frame": f, "shapes": [...], "states": [...]}`, taking `shapes[i]` as the box of object
i on frame f and `states[i]` for the next call. It sends a state only while the box it
holds is the one the tracker returned (an edited box is sent again without state), so
a state's own box is the one tracked from; `shapes[i]` of a call with a state is only
checked. The lambda manager passes `states` as `[]` when absent; a `null` state is an
object starting a track.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.inference.trackers.errors import TrackerInputError, TrackerStateError
from tessera.inference.trackers.state import Box, TrackerStateCodec, TrackState
from tessera.inference.trackers.template import TemplateTracker, TemplateTrackerParams

ImageArray = npt.NDArray[np.uint8]

MAX_SHAPES = 256
"""Most objects one call may track."""
MAX_COORD = 1e6
"""Largest coordinate magnitude a shape may have."""


@dataclass(frozen=True, slots=True)
class TrackResult:
    """The answer to a tracker call: one box, signed state and score per shape.

    `scores[i]` is the match's correlation in [-1, 1] for a tracked object, None for one
    that starts its track on this frame; below the tracker's `min_score` the object was
    lost and its box left where it was.
    """

    shapes: list[list[float]]
    states: list[str]
    scores: list[float | None]

    def to_cvat(self) -> dict[str, Any]:
        """CVAT's tracker answer: `{"shapes": [[x1, y1, x2, y2], ...], "states": [...]}`."""
        return {"shapes": self.shapes, "states": self.states}


def check_tracker_image(image: object) -> ImageArray:
    """`image` as an RGB (H, W, 3) or grey (H, W) uint8 array; TrackerInputError if not."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TrackerInputError("image", "image must be a decoded uint8 numpy array")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise TrackerInputError(
            "image",
            f"image must be (height, width, 3) RGB or (height, width) grey, got "
            f"{tuple(image.shape)}",
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise TrackerInputError("image", "image is empty")
    return np.ascontiguousarray(image)


def check_shape(shape: object, index: int, width: int, height: int, min_side: float) -> Box:
    """A CVAT rectangle's points [x1, y1, x2, y2] as a box with x1 < x2, y1 < y2 that
    overlaps the image; TrackerInputError naming `shapes[index]` otherwise."""
    where = f"shapes[{index}]"
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence | np.ndarray):
        raise TrackerInputError("shapes", f"{where} must be [x1, y1, x2, y2]", index=index)
    values = list(shape)
    if len(values) != 4 or any(
        isinstance(v, bool) or not isinstance(v, Real | np.integer | np.floating) for v in values
    ):
        raise TrackerInputError(
            "shapes", f"{where} must be a rectangle's four numbers [x1, y1, x2, y2]", index=index
        )
    ax, ay, bx, by = (float(v) for v in values)
    if not all(math.isfinite(v) for v in (ax, ay, bx, by)):
        raise TrackerInputError("shapes", f"{where} is not finite", index=index)
    if max(abs(ax), abs(ay), abs(bx), abs(by)) > MAX_COORD:
        raise TrackerInputError(
            "shapes", f"{where} has coordinates beyond ±{MAX_COORD:g}", index=index
        )
    x1, x2, y1, y2 = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
    if x2 - x1 < min_side or y2 - y1 < min_side:
        raise TrackerInputError(
            "shapes",
            f"{where} of {x2 - x1:g}x{y2 - y1:g} is too small to track "
            f"(each side needs {min_side:g} pixels or more)",
            index=index,
        )
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise TrackerInputError(
            "shapes", f"{where} lies outside the {width}x{height} image", index=index
        )
    return x1, y1, x2, y2


def _clip_box(box: Box, width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 - cx1 < 1.0 or cy2 - cy1 < 1.0:  # gone out of the frame: say where it went
        cx1, cy1, cx2, cy2 = x1, y1, x2, y2
    return [round(v, 2) for v in (cx1, cy1, cx2, cy2)]


def track(
    image: object,
    shapes: object,
    states: object,
    *,
    codec: TrackerStateCodec,
    tracker: TemplateTracker | None = None,
    max_shapes: int = MAX_SHAPES,
) -> TrackResult:
    """Answer CVAT's tracker call on one frame.

    `image`: the decoded frame, RGB uint8. `shapes`: one [x1, y1, x2, y2] per object.
    `states`: None or a list (no longer than `shapes`) of None or tokens from an earlier
    answer of this function (`codec` holds the key and the function's context).
    Objects without a state start their track here (their box is returned as given);
    the others are tracked from their state's box. Every input is checked before any is
    tracked: TrackerInputError (TrackerStateError for a state) names the field and index.
    Returned boxes are clipped to the frame; the states keep the unclipped boxes.
    """
    engine = tracker or TemplateTracker()
    frame = check_tracker_image(image)
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if isinstance(shapes, str | bytes | dict) or not isinstance(shapes, Sequence):
        raise TrackerInputError("shapes", "shapes must be a list of [x1, y1, x2, y2]")
    if len(shapes) > max_shapes:
        raise TrackerInputError("shapes", f"{len(shapes)} shapes in one call, at most {max_shapes}")
    if states is None:
        states = []
    if isinstance(states, str | bytes | dict) or not isinstance(states, Sequence):
        raise TrackerInputError("states", "states must be a list of states or nulls")
    if len(states) > len(shapes):
        raise TrackerInputError(
            "states", f"{len(states)} states for {len(shapes)} shapes: one state per shape"
        )
    min_side = engine.params.min_box_side
    boxes = [check_shape(s, i, width, height, min_side) for i, s in enumerate(shapes)]
    opened: list[TrackState | None] = []
    for i in range(len(boxes)):
        token = states[i] if i < len(states) else None
        if token is None:
            opened.append(None)
            continue
        state = codec.open(token, index=i)
        if state.frame_size != (width, height):
            sw, sh = state.frame_size
            raise TrackerStateError(
                "frame_size",
                f"the state was made on a {sw}x{sh} frame, this frame is {width}x{height}; "
                "start the track again",
                index=i,
            )
        opened.append(state)

    out_shapes: list[list[float]] = []
    out_states: list[str] = []
    scores: list[float | None] = []
    for box, prior in zip(boxes, opened, strict=True):
        score: float | None = None
        if prior is None:
            new_state = engine.init(frame, box)
        else:
            new_state, matched = engine.update(frame, prior)
            score = round(matched, 4)
        out_shapes.append(_clip_box(new_state.box, width, height))
        out_states.append(codec.seal(new_state))
        scores.append(score)
    return TrackResult(shapes=out_shapes, states=out_states, scores=scores)


class TemplateTrackerFunction:
    """The tracker as a registry entry (`entry =
    "tessera.inference.trackers:TemplateTrackerFunction"`, `model = "cpu"`): made once
    with the function's `options` (TemplateTrackerParams' fields), then called per
    request with the codec that holds the service's secret and the function's id."""

    def __init__(self, *, options: Mapping[str, Any] | None = None, infer: object = None) -> None:
        del infer  # runs in the service's process, no Triton model
        self.tracker = TemplateTracker(TemplateTrackerParams.from_options(options or {}))

    def __call__(
        self, image: object, shapes: object, states: object, *, codec: TrackerStateCodec
    ) -> TrackResult:
        return track(image, shapes, states, codec=codec, tracker=self.tracker)
