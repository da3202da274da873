"""Trackers: follow boxes from frame to frame (CVAT's `tracker` functions).

They run in the inference service on the CPU (see `services/inference/models/README.md`).
The state of each object travels through the client, signed by the server::

    codec = TrackerStateCodec(settings_secret, context="tracker-template")
    answer = track(rgb, shapes=[[10, 20, 60, 80]], states=None, codec=codec)
    answer.to_cvat()   # {"shapes": [[10.0, 20.0, 60.0, 80.0]], "states": ["<base64url>"]}
    answer = track(next_rgb, answer.shapes, answer.states, codec=codec)

Bad input raises `TrackerInputError` (a ValueError naming `image`, `shapes` or `states`);
a forged, altered, truncated, oversized, expired or foreign state `TrackerStateError`.
"""

from tessera.inference.trackers.api import (
    MAX_COORD,
    MAX_SHAPES,
    TemplateTrackerFunction,
    TrackResult,
    check_shape,
    check_tracker_image,
    track,
)
from tessera.inference.trackers.errors import StateProblem, TrackerInputError, TrackerStateError
from tessera.inference.trackers.state import (
    DEFAULT_MAX_AGE_S,
    TrackerStateCodec,
    TrackState,
    decode_payload,
    derive_key,
    encode_payload,
)
from tessera.inference.trackers.template import TemplateTracker, TemplateTrackerParams

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "MAX_COORD",
    "MAX_SHAPES",
    "StateProblem",
    "TemplateTracker",
    "TemplateTrackerFunction",
    "TemplateTrackerParams",
    "TrackResult",
    "TrackState",
    "TrackerInputError",
    "TrackerStateCodec",
    "TrackerStateError",
    "check_shape",
    "check_tracker_image",
    "decode_payload",
    "derive_key",
    "encode_payload",
    "track",
]
