"""Interactors: segment the object a user points at (CVAT's `interactor` functions).

They run in the inference service on the CPU (see `services/inference/models/README.md`).
The API is pure: decoded image and request fields in, `InteractorResult` out, bad input
as `InteractorInputError` naming the field::

    result = segment(rgb, pos_points=[[120, 80]], neg_points=[], obj_bbox=[[60, 40], [200, 150]])
    body = result.to_cvat()  # {"mask": [[0, 1, ...], ...], "points": [[x, y], ...], "bounds": ...}
    shape_points = result.cvat_mask_points()   # a CVAT `mask` shape's points
"""

from tessera.inference.interactors.grabcut import (
    DEFAULT_PARAMS,
    GrabCutInteractor,
    GrabCutParams,
    segment,
    segment_request,
)
from tessera.inference.interactors.inputs import (
    MAX_POINTS,
    InteractorInputError,
    InteractorRequest,
    check_box,
    check_image,
    check_points,
    parse_request,
)
from tessera.inference.interactors.result import InteractorResult

__all__ = [
    "DEFAULT_PARAMS",
    "MAX_POINTS",
    "GrabCutInteractor",
    "GrabCutParams",
    "InteractorInputError",
    "InteractorRequest",
    "InteractorResult",
    "check_box",
    "check_image",
    "check_points",
    "parse_request",
    "segment",
    "segment_request",
]
