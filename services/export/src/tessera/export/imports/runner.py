"""Running annotation imports (the `RequestHandler` of the import work queue).

An import reads the uploaded file from the service's bucket into a temporary file, parses
it completely with the format's reader, matches it to the task (frames by ingest's
names, labels and attributes by the annotations service's import target) and hands the
whole document to the annotations service, which stores it all or nothing. Nothing is
written before the file has been read and matched to the end.

The document carries the annotations' version read before matching: the store refuses
it (409) if the annotations changed meanwhile, by someone else or by an earlier attempt
of this import that stored it but died before finishing the request. Either way the
request fails saying so, rather than writing twice. The request's `message` reports
what was stored and what was left out, and why.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.matching import Matched, Matcher, TaskFrames
from tessera.export.imports.registry import (
    FrameSizes,
    ReadContext,
    importer_named,
    skeleton_points,
)
from tessera.export.imports.schemas import ImportParams
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.annotations import ImportTarget, ImportWritten
from tessera.platform.contracts.ingest import DataMeta
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestEnded, RequestStore
from tessera.platform.storage import ObjectNotFound, ObjectStorage

logger = logging.getLogger(__name__)

_TRANSIENT = (httpx.HTTPError, BotoCoreError, ClientError, OSError)
_READ, _MATCHED = 0.5, 0.7  # of the progress, once the file is read and matched


class ImportRunner:
    """Runs import requests."""

    def __init__(
        self,
        storage: ObjectStorage,
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        requests: RequestStore,
    ) -> None:
        self.storage = storage
        self.annotations = annotations
        self.ingest = ingest
        self.requests = requests

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Import, ending the request finished (with its report) or failed, saying why."""
        params = ImportParams.model_validate(payload["params"])
        try:
            await self.requests.start(rq_id)
            message = await self._import(rq_id, params, payload)
        except RequestEnded:
            logger.info("import %s was cancelled", rq_id)
            return
        except ImportFailed as exc:
            await self._fail(rq_id, payload, str(exc))
            return
        except Problem as problem:
            if problem.status >= 500:
                raise
            await self._fail(rq_id, payload, _refusal(problem))
            return
        except _TRANSIENT:
            raise  # another attempt, by this worker or another
        except Exception as exc:
            logger.exception("import %s failed", rq_id)
            await self._fail(rq_id, payload, f"The import failed: {type(exc).__name__}: {exc}")
            return
        await self._forget_file(payload)
        await self.requests.finish(rq_id, message=message)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Nothing to clear: an attempt writes in one transaction of the annotations
        service, and a later attempt's version check refuses to write again."""
        del rq_id, payload

    async def _fail(self, rq_id: str, payload: dict[str, Any], message: str) -> None:
        await self._forget_file(payload)
        await self.requests.fail(rq_id, message)

    async def _forget_file(self, payload: dict[str, Any]) -> None:
        """Delete the uploaded file before its import ends: once the request has ended,
        the caller may upload the next file under the same name (its row goes at the
        caller's next Upload-Start)."""
        await self.storage.delete(payload["object_key"])

    async def _import(self, rq_id: str, params: ImportParams, payload: dict[str, Any]) -> str:
        importer = importer_named(params.format)
        if importer is None:
            raise ImportFailed(f"Tessera no longer reads {params.format}.")
        scope = {f"{params.target}_id": params.target_id}
        target = await self.annotations.import_target(**scope)
        if target.dimension not in importer.dimensions:
            raise ImportFailed(f"{importer.name} does not take {target.dimension.upper()} tasks.")
        meta = await self.ingest.task_meta(target.task_id)
        # Work in proportion to the task or the file runs on a thread, not the event loop
        # (a 200k-frame task's frame index takes seconds).
        frames = await asyncio.to_thread(_task_frames, target, meta)
        context = ReadContext(_sizes(frames), skeleton_points(target.labels))
        with tempfile.TemporaryDirectory(prefix="import-") as directory:
            path = Path(directory) / "upload"
            try:
                await self.storage.get_file(payload["object_key"], path)
            except ObjectNotFound:
                raise ImportFailed(
                    "The uploaded file is gone: an interrupted attempt of this import ended "
                    "with it; check the annotations and import the file again if needed."
                ) from None
            with ImportFiles(path, params.filename) as files:
                parsed = await asyncio.to_thread(importer.read, files, context)
        await self.requests.progress(rq_id, _READ)
        matcher = await asyncio.to_thread(
            Matcher, target.labels, frames, conv_mask_to_poly=params.conv_mask_to_poly,
            tracks_listed_per_frame=importer.tracks_listed_per_frame,
        )  # fmt: skip
        matcher.frames_not_found(context.missing)
        matched = await asyncio.to_thread(matcher.match, parsed, strict=params.strict)
        await self.requests.progress(rq_id, _MATCHED)
        document = await asyncio.to_thread(
            orjson.dumps, {"version": target.version, **matched.document}
        )
        try:
            written = await self.annotations.import_annotations(
                **scope, document=document, action=params.mode, actor_id=payload["actor_id"]
            )
        except Problem as problem:
            if problem.status == 409:
                raise ImportFailed(
                    "The annotations changed while the file was being imported (or an "
                    "interrupted attempt of this import had already stored it); check them "
                    "and import again if needed."
                ) from problem
            raise
        return _report(written, matched, params)


def _task_frames(target: ImportTarget, meta: DataMeta) -> TaskFrames:
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
        [frame.name for frame in frames], allowed, [(frame.width, frame.height) for frame in frames]
    )


def _sizes(frames: TaskFrames) -> FrameSizes:
    """Frame sizes by the frame names a file gives, matched as frames are; the index is
    built when a reader first asks (on its thread; most readers never do)."""
    index = functools.cache(lambda: Matcher.frame_index(frames))

    def size(name: str) -> tuple[int, int] | None:
        number = index().number(name)
        return None if number is None else frames.sizes[number]

    return size


def _refusal(problem: Problem) -> str:
    """A service's refusal as the request's message, with the fields it names."""
    named = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.errors[:5])
    return f"{problem.detail} {named}".strip()


def _report(written: ImportWritten, matched: Matched, params: ImportParams) -> str:
    """What the import stored and what it left out, for the request's message."""
    stored = f"{written.tags} tags, {written.shapes} shapes and {written.tracks} tracks"
    replaced = f", replacing {written.deleted} objects" if params.mode == "replace" else ""
    report = f"Imported {stored}{replaced}."
    if matched.skipped:
        left = "; ".join(
            f"{skip.count} x {skip.reason} ({', '.join(skip.examples)})" for skip in matched.skipped
        )
        report += f" Left out: {left}."
    return report
