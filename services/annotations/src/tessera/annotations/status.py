"""CVAT's derived `status` of jobs, tasks and projects."""

from collections.abc import Iterable
from typing import Literal

Status = Literal["annotation", "validation", "completed"]


def job_status(stage: str, state: str) -> Status:
    """A job is `completed` once accepted, in `annotation` while annotated, else `validation`."""
    if stage == "annotation":
        return "annotation"
    if stage == "acceptance" and state == "completed":
        return "completed"
    return "validation"


def combined_status(statuses: Iterable[str] | None) -> Status:
    """The status of a task from its jobs' (or a project from its tasks'): the least advanced."""
    present = set(statuses or ())
    if not present or "annotation" in present:
        return "annotation"
    if "validation" in present:
        return "validation"
    return "completed"
