"""Errors of a tracker call, each a ValueError naming the request field at fault."""

from __future__ import annotations

from typing import Literal

StateProblem = Literal[
    "malformed", "oversized", "signature", "version", "expired", "frame_size", "corrupt"
]


class TrackerInputError(ValueError):
    """A field of a tracker call (`image`, `shapes`, `states`) is malformed.

    `field` names it; `index` is the shape or state at fault, when there is one.
    """

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


class TrackerStateError(TrackerInputError):
    """A tracker state was not made by this server for this function, was altered,
    truncated, is too large, too old, of another format version, or for a frame of
    another size. `problem` says which; the service answers 400 (CVAT answers "Invalid or
    expired tracker state"), and the client starts the track again without a state.
    """

    def __init__(self, problem: StateProblem, message: str, *, index: int | None = None) -> None:
        where = f"states[{index}]" if index is not None else "state"
        super().__init__("states", f"{where}: {message}", index=index)
        self.problem: StateProblem = problem
