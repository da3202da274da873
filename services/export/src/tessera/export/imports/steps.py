"""Steps that the requests writing annotations read from a file share: an import into a
task or a job (`tessera.export.imports.runner`) and a project's dataset import
(`tessera.export.datasets.runner`). What a task's frames are to the matcher, the frame
sizes a reader may ask for, and how a request reports what it stored or why it was
refused."""

from __future__ import annotations

import functools

from tessera.export.imports.matching import Matched, Matcher, TaskFrames
from tessera.export.imports.registry import FrameSizes
from tessera.export.imports.schemas import ImportMode
from tessera.platform.contracts.annotations import ImportTarget, ImportWritten
from tessera.platform.contracts.ingest import DataMeta


def task_frames(target: ImportTarget, meta: DataMeta) -> TaskFrames:
    """The task's frame names and sizes, and which frames take annotations: not deleted,
    and the job's own for a job import."""
    frames = meta.frame_sizes()
    excluded = frozenset(meta.deleted_frames)
    own: frozenset[int] | None = None
    if target.scope == "job":
        own = frozenset(f for job in target.jobs for f in job.task_frames())

    def allowed(number: int) -> bool:
        return number not in excluded and (own is None or number in own)

    return TaskFrames(
        [frame.name for frame in frames],
        allowed,
        [(frame.width, frame.height) for frame in frames],
        start=meta.start_frame,
        step=meta.frame_step,
        first=target.jobs[0].start_frame if target.scope == "job" else 0,
    )


def sizes(frames: TaskFrames) -> FrameSizes:
    """Frame sizes by the frame names a file gives, matched as frames are; the index is
    built when a reader first asks (on its thread; most readers never do)."""
    index = functools.cache(lambda: Matcher.frame_index(frames))

    def size(name: str) -> tuple[int, int] | None:
        number = index().number(name)
        return None if number is None else frames.sizes[number]

    return size


def stored(written: ImportWritten) -> str:
    """What a write stored: "N tags, N shapes and N tracks"."""
    return f"{written.tags} tags, {written.shapes} shapes and {written.tracks} tracks"


def left_out(matched: Matched) -> str:
    """What matching left out, and why ("" when nothing)."""
    return "; ".join(
        f"{skip.count} x {skip.reason} ({', '.join(skip.examples)})" for skip in matched.skipped
    )


def report(written: ImportWritten, matched: Matched, mode: ImportMode) -> str:
    """What an import stored and what it left out, for the request's message."""
    replaced = f", replacing {written.deleted} objects" if mode == "replace" else ""
    message = f"Imported {stored(written)}{replaced}."
    if matched.skipped:
        message += f" Left out: {left_out(matched)}."
    return message
