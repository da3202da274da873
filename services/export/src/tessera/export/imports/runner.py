"""Running annotation imports (the `RequestHandler` of the import work queue).

An import reads the file (uploaded into the service's bucket, or an object of a cloud
storage read through ingest: `tessera.export.sources`) into a temporary file, parses
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
import logging
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from tessera.export import sources
from tessera.export.imports import steps
from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.matching import Matcher
from tessera.export.imports.registry import ReadContext, importer_named, skeleton_points
from tessera.export.imports.schemas import ImportParams
from tessera.platform.collector import gc_paused
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestEnded

logger = logging.getLogger(__name__)

_TRANSIENT = (httpx.HTTPError, BotoCoreError, ClientError, OSError)
_READ, _MATCHED = 0.5, 0.7  # of the progress, once the file is read and matched


class ImportRunner(sources.FileRequestRunner):
    """Runs import requests."""

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
            await self._fail(rq_id, payload, problem.summary())
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
        """Delete an uploaded file before its import ends: once the request has ended,
        the caller may upload the next file under the same name (its row goes at the
        caller's next Upload-Start). A cloud storage's object stays."""
        await sources.forget(sources.source_of(payload), self.storage)

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
        frames = await asyncio.to_thread(steps.task_frames, target, meta)
        context = ReadContext(steps.sizes(frames), skeleton_points(target.labels))
        with tempfile.TemporaryDirectory(prefix="import-") as directory:
            path = Path(directory) / "upload"
            source = sources.source_of(payload)
            try:
                await sources.fetch(source, path, storage=self.storage, ingest=self.ingest)
            except sources.SourceMissing as missing:
                raise ImportFailed(str(missing)) from None
            with ImportFiles(path, params.filename) as files:
                parsed = await asyncio.to_thread(gc_paused()(importer.read), files, context)
        await self.requests.progress(rq_id, _READ)
        matcher = await asyncio.to_thread(
            Matcher, target.labels, frames, conv_mask_to_poly=params.conv_mask_to_poly,
            tracks_listed_per_frame=importer.tracks_listed_per_frame,
        )  # fmt: skip
        matcher.frames_not_found(context.missing)
        matched = await asyncio.to_thread(gc_paused()(matcher.match), parsed, strict=params.strict)
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
        return steps.report(written, matched, params.mode)
