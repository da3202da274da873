"""Running dataset imports into projects (the `RequestHandler` of the dataset queue).

An import copies the archive (uploaded, or an object of a cloud storage: see
`tessera.export.sources`) into a temporary folder and reads it completely with the
format's reader, which asks image sizes of the archive's images where it needs them. It
then checks the dataset's labels against the project's (CVAT's rules: see the package's
docstring) and places every item and annotation in its subset's task (`layout.plan`);
nothing is made before all of that has passed. Then, in order: the project's labels when
it had none; per subset, the task (through the annotations service), its media (a zip of
the subset's images attached through ingest, waited for) and its annotations, matched to
the new task's frames and labels and written all or nothing.

A failure deletes the tasks and labels made so far and fails the request saying why; a
failure of a service (5xx, a broken connection) does the same, then leaves the request to
another attempt. What an attempt has made is also recorded in the service's bucket as it
is made, so that an attempt cut short (the replica died) is undone before the next one
(`clear`). The uploaded archive is deleted once the request has ended.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from tessera.export import sources
from tessera.export.attach import MediaFailed, attach_and_wait
from tessera.export.datasets import layout
from tessera.export.datasets.layout import ImageIndex, SubsetPlan
from tessera.export.datasets.schemas import DatasetImportParams, ProjectFacts
from tessera.export.imports import steps
from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.matching import Matched, Matcher
from tessera.export.imports.model import ParsedAnnotations
from tessera.export.imports.registry import ImportFormat, ReadContext, importer_named
from tessera.export.imports.registry import skeleton_points as skeleton_points_of
from tessera.platform.collector import gc_paused
from tessera.platform.contracts.annotations import ImportWritten, SnapshotLabel
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestEnded
from tessera.platform.storage import ObjectNotFound

logger = logging.getLogger(__name__)

MADE_PREFIX = "datasets/made/"
"""Where an attempt records the tasks and labels it made (`{rq_id}.json`)."""
MEDIA_OPTIONS = {
    "image_quality": "70",
    "use_zip_chunks": "true",
    "use_cache": "false",
    "sorting_method": "lexicographical",
}
"""The data options of a dataset's task, as CVAT's `add_task` sets them."""
STARTED = "Dataset import has been started..."
CREATING = "Task from dataset is being created..."
"""The progress messages of CVAT's dataset import."""

_TRANSIENT = (httpx.HTTPError, BotoCoreError, ClientError, OSError)
_READ = 0.1  # of the progress, once the archive is read and planned
_MEDIA, _ANNOTATIONS = 0.8, 0.2  # of a subset's share


class DatasetImportRunner(sources.FileRequestRunner):
    """Runs dataset import requests."""

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Import, ending the request finished (with its report) or failed, saying why."""
        params = DatasetImportParams.model_validate(payload["params"])
        source = sources.source_of(payload)
        try:
            await self.requests.start(rq_id)
            message = await self._import(rq_id, params, payload)
        except RequestEnded:
            logger.info("dataset import %s was cancelled", rq_id)
        except (ImportFailed, sources.SourceMissing) as exc:
            await self.requests.fail(rq_id, str(exc) or type(exc).__name__)
        except Problem as problem:
            if problem.status >= 500:
                raise  # another attempt, by this worker or another
            await self.requests.fail(
                rq_id, f"The dataset could not be imported: {problem.summary()}"
            )
        except _TRANSIENT:
            raise
        except Exception as exc:
            logger.exception("dataset import %s failed", rq_id)
            await self.requests.fail(
                rq_id, f"The dataset import failed: {type(exc).__name__}: {exc}"
            )
        else:
            await self.requests.finish(rq_id, message=message)
        await sources.forget(source, self.storage)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Delete what an attempt cut short made (as it recorded it)."""
        del payload
        made = await _Made.load(self, rq_id)
        await made.undo()

    async def _import(
        self, rq_id: str, params: DatasetImportParams, payload: dict[str, Any]
    ) -> str:
        importer = importer_named(params.format)
        if importer is None:
            raise ImportFailed(f"Tessera no longer reads {params.format}.")
        project = ProjectFacts.model_validate(payload["project"])
        if project.dimension not in importer.dimensions:
            raise ImportFailed(
                f"{importer.name} does not take datasets of {project.dimension.upper()} projects."
            )
        await self.requests.progress(rq_id, 0.0, STARTED)
        labels = await self.annotations.project_labels(params.project_id)
        with tempfile.TemporaryDirectory(prefix="dataset-") as directory:
            scratch = Path(directory)
            path = scratch / "upload"
            await sources.fetch(
                sources.source_of(payload), path, storage=self.storage, ingest=self.ingest
            )
            if not await asyncio.to_thread(zipfile.is_zipfile, path):
                raise ImportFailed(
                    "A dataset import takes a zip archive of the dataset with its images."
                )
            with ImportFiles(path, params.filename) as files:
                images = ImageIndex(files)
                plans, created = await asyncio.to_thread(
                    gc_paused()(_read), importer, files, images, labels
                )
                await self.requests.progress(rq_id, _READ, CREATING)
                made = _Made(self, rq_id)
                try:
                    run = _Run(
                        self, rq_id, params=params, payload=payload, project=project,
                        importer=importer, made=made,
                    )  # fmt: skip
                    return await run.make(files, scratch, plans, created)
                except BaseException:
                    await made.undo()
                    raise


def _read(
    importer: ImportFormat, files: ImportFiles, images: ImageIndex, labels: list[SnapshotLabel]
) -> tuple[list[SubsetPlan], list[str]]:
    """The dataset read and planned, and the labels to make of it (those of a project
    without any); ImportFailed for what CVAT refuses (see the package's docstring)."""
    context = ReadContext(images.size, skeleton_points_of(labels))
    parsed = importer.read(files, context)
    if context.missing:
        examples = ", ".join(repr(name) for name in dict.fromkeys(context.missing))
        raise ImportFailed(
            f"The archive has no image (or several of different sizes) for {examples}, "
            f"whose coordinates {importer.name} gives relative to the image's size."
        )
    created = _check_labels(parsed, labels)
    return layout.plan(parsed, images, files), created


def _check_labels(parsed: ParsedAnnotations, labels: list[SnapshotLabel]) -> list[str]:
    """The labels to give a project without any (the dataset's); for a project with
    labels, none, after dropping a "background" label it lacks (ImportFailed for any
    other label it lacks, as CVAT)."""
    wanted = layout.dataset_labels(parsed)
    if not labels:
        return wanted
    known = {label.name for label in labels} | {
        sub.name for label in labels for sub in label.sublabels
    }
    missing = [name for name in wanted if name not in known]
    if layout.BACKGROUND in missing:
        layout.drop_label(parsed, layout.BACKGROUND)
        missing.remove(layout.BACKGROUND)
    if missing:
        others = ", ".join(f'"{name}"' for name in missing[1:6])
        also = f" (nor {others})" if others else ""
        raise ImportFailed(
            f'Target project does not have label with name "{missing[0]}"{also}: add the '
            "dataset's labels to the project, or import it into a project without labels."
        )
    return []


@dataclass
class _Summary:
    """What was made of one subset, for the request's message."""

    name: str
    task_id: int
    images: int
    written: ImportWritten | None
    matched: Matched

    def describe(self) -> str:
        stored = steps.stored(self.written) if self.written else "no annotations"
        return f"{self.name!r} (task {self.task_id}: {self.images} images; {stored})"


class _Run:
    """The making half of one attempt: labels, then each subset's task, media and
    annotations."""

    def __init__(
        self,
        runner: DatasetImportRunner,
        rq_id: str,
        *,
        params: DatasetImportParams,
        payload: dict[str, Any],
        project: ProjectFacts,
        importer: ImportFormat,
        made: _Made,
    ) -> None:
        self.annotations = runner.annotations
        self.ingest = runner.ingest
        self.requests = runner.requests
        self.rq_id = rq_id
        self.params = params
        self.actor_id: int = payload["actor_id"]
        self.project = project
        self.importer = importer
        self.made = made

    async def make(
        self, files: ImportFiles, scratch: Path, plans: list[SubsetPlan], created: list[str]
    ) -> str:
        """Make everything; the request's report."""
        if created:
            await self._labels(created)
        summaries = []
        share = (1.0 - _READ) / len(plans)
        for index, plan in enumerate(plans):
            low = _READ + index * share
            await self.requests.progress(self.rq_id, low, CREATING)
            summaries.append(await self._subset(files, scratch, plan, low, share))
        await self.made.forget()
        return _report(summaries, created)

    async def _labels(self, names: list[str]) -> None:
        """Give the project (which has none) the dataset's labels, as CVAT does: of type
        "any", colours picked, no attributes."""
        body = [{"name": name, "type": "any", "color": ""} for name in names]
        await self.annotations.add_project_labels(self.params.project_id, body)
        found = await self.annotations.project_labels(self.params.project_id)
        await self.made.labels([label.id for label in found if label.name in set(names)])

    async def _subset(
        self, files: ImportFiles, scratch: Path, plan: SubsetPlan, low: float, share: float
    ) -> _Summary:
        owner = self.project.owner_id if self.project.owner_id is not None else self.actor_id
        body = {
            "name": plan.name,
            "subset": plan.name,
            "project_id": self.params.project_id,
            "owner_id": owner,
        }
        task_id = await self.annotations.create_object("task", body, self.project.organization_id)
        await self.made.task(task_id)
        archive = await asyncio.to_thread(layout.write_media, files, plan, scratch / "media.zip")

        async def progress(fraction: float) -> None:
            await self.requests.progress(self.rq_id, low + share * _MEDIA * fraction, CREATING)

        try:
            await attach_and_wait(self.ingest, task_id, archive, MEDIA_OPTIONS, progress)
        except MediaFailed as failed:
            raise ImportFailed(
                f"The images of subset {plan.name!r} could not be made into the task's media: "
                f"{failed}"
            ) from None
        written, matched = await self._annotate(task_id, plan)
        await self.requests.progress(self.rq_id, low + share, CREATING)
        return _Summary(plan.name, task_id, len(plan.media), written, matched)

    async def _annotate(
        self, task_id: int, plan: SubsetPlan
    ) -> tuple[ImportWritten | None, Matched]:
        """Match the subset's annotations to the new task and write them."""
        target = await self.annotations.import_target(task_id=task_id)
        meta = await self.ingest.task_meta(task_id)
        frames = await asyncio.to_thread(steps.task_frames, target, meta)
        numbers = {name: number for number, name in enumerate(frames.names)}
        await asyncio.to_thread(layout.number_frames, plan.annotations, numbers)
        matcher = Matcher(
            target.labels, frames, conv_mask_to_poly=self.params.conv_mask_to_poly,
            tracks_listed_per_frame=self.importer.tracks_listed_per_frame,
        )  # fmt: skip
        matched = await asyncio.to_thread(gc_paused()(matcher.match), plan.annotations)
        if not any(matched.document.values()):
            return None, matched
        document = await asyncio.to_thread(
            orjson.dumps, {"version": target.version, **matched.document}
        )
        written = await self.annotations.import_annotations(
            task_id=task_id, document=document, action="replace", actor_id=self.actor_id
        )
        return written, matched


def _report(summaries: list[_Summary], created: list[str]) -> str:
    """What the import made and what it left out, for the request's message."""
    tasks = ", ".join(summary.describe() for summary in summaries)
    report = f"Imported {len(summaries)} tasks: {tasks}."
    if created:
        report += f" The project's labels were made of the dataset's: {', '.join(created)}."
    left = [
        f"{summary.name!r}: {steps.left_out(summary.matched)}"
        for summary in summaries
        if summary.matched.skipped
    ]
    if left:
        report += f" Left out: {'; '.join(left)}."
    return report


@dataclass
class _Made:
    """The tasks and labels an attempt made, recorded in the bucket as they are made."""

    runner: DatasetImportRunner
    rq_id: str
    tasks: list[int] = field(default_factory=list)
    label_ids: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{MADE_PREFIX}{self.rq_id}.json"

    @classmethod
    async def load(cls, runner: DatasetImportRunner, rq_id: str) -> _Made:
        """What an earlier attempt recorded (nothing, if it recorded nothing)."""
        made = cls(runner, rq_id)
        try:
            recorded = orjson.loads(await runner.storage.get(made.key))
        except ObjectNotFound:
            return made
        made.tasks = [int(task) for task in recorded.get("tasks", [])]
        made.label_ids = [int(label) for label in recorded.get("labels", [])]
        return made

    async def task(self, task_id: int) -> None:
        self.tasks.append(task_id)
        await self._save()

    async def labels(self, label_ids: list[int]) -> None:
        self.label_ids.extend(label_ids)
        await self._save()

    async def _save(self) -> None:
        record = {"tasks": self.tasks, "labels": self.label_ids}
        await self.runner.storage.put(
            self.key, orjson.dumps(record), content_type="application/json"
        )

    async def forget(self) -> None:
        """The attempt has finished: what it made stays."""
        await self.runner.storage.delete(self.key)

    async def undo(self) -> None:
        """Delete what was made (newest first), then the record; failures are logged, not
        raised (the import's own failure is the one to report)."""
        await asyncio.shield(self._undo())

    async def _undo(self) -> None:
        annotations = self.runner.annotations
        try:
            for task_id in reversed(self.tasks):
                await annotations.delete_object("task", task_id)
            for label_id in self.label_ids:
                await annotations.delete_label(label_id)
            if self.tasks or self.label_ids:
                logger.info(
                    "dataset import %s: deleted tasks %s and labels %s it made",
                    self.rq_id, self.tasks, self.label_ids,
                )  # fmt: skip
            await self.runner.storage.delete(self.key)
        except Exception:
            logger.exception("dataset import %s could not delete what it made", self.rq_id)
