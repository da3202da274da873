"""Restoring backups (the `RequestHandler` of the restore work queue): an uploaded backup
archive, in CVAT's layout (`tessera.export.backups`), made again into a new task or
project of the user who uploaded it.

The archive is read into a temporary file: from the service's bucket where it was
uploaded, or from a cloud storage through ingest (`tessera.export.sources`). A task is made
through the annotations service (its fields and labels, none in a project, and the
segment size and overlap of its jobs); its media is the archive's `data/` (the files
under their names, context images in their `related_images/` folders, and the manifest,
which ingest checks them against), packed into a zip that ingest unpacks as CVAT unpacks
an uploaded archive, with the data options of `task.json`. Once ingest has made the media
and the jobs, the task takes the backup's deleted frames (`PATCH data/meta`, as CVAT's
restore sets them after making the media), and each job the status and the annotations
of its backed-up counterpart (in id order, as CVAT pairs them). Jobs of other kinds
(CVAT's ground truth and consensus replica jobs, which Tessera does not have) and an
annotation guide are left out, and the finished request's message names each. A project
is made with its labels, then each `task_<i>/` in turn, in order of `i`, into it.

A restore that fails deletes what it made, and the request fails saying why; it is not
tried again. An uploaded archive is deleted once the request has ended; an object of a
cloud storage is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from tessera.export.attach import MediaFailed, attach_and_wait
from tessera.export.backups import layout
from tessera.export.backups.layout import BackupInvalid
from tessera.export.sources import (
    CloudObject,
    FileRequestRunner,
    SourceMissing,
    Uploaded,
    fetch,
    forget,
    source_of,
)
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestEnded

logger = logging.getLogger(__name__)

RestoreKind = Literal["task", "project"]
_TASK_FOLDER = re.compile(r"task_(\d+)/")
_MEDIA_FILES_SKIPPED = frozenset({"index.json"})  # CVAT's index of the manifest, rebuilt

Report = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RestoreParams:
    """A queued restore: of what kind, where the archive is (uploaded, or an object of a
    cloud storage), who asked and where the new object goes (their organization, None:
    their own workspace)."""

    kind: RestoreKind
    source: Uploaded | CloudObject
    user_id: int
    organization_id: int | None


class RestoreRunner(FileRequestRunner):
    """Runs restore requests."""

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Restore, ending the request finished (`result_id`: the new task or project) or
        failed, saying why."""
        params = RestoreParams(
            payload["kind"], source_of(payload), payload["actor_id"],
            payload.get("organization_id"),
        )  # fmt: skip
        try:
            await self.requests.start(rq_id)
            made, message = await self._restore(rq_id, params)
        except RequestEnded:
            logger.info("restore %s was cancelled", rq_id)
        except (
            BackupInvalid,
            SourceMissing,
            zipfile.BadZipFile,
            KeyError,
            orjson.JSONDecodeError,
        ) as exc:
            await self.requests.fail(rq_id, _reason(exc))
        except Problem as problem:
            await self.requests.fail(
                rq_id, f"The backup could not be restored: {problem.summary()}"
            )
        except Exception as exc:
            logger.exception("restore %s failed", rq_id)
            await self.requests.fail(rq_id, f"The restore failed: {type(exc).__name__}: {exc}")
        else:
            await self.requests.finish(rq_id, result_id=made, message=message)
        await forget(params.source, self.storage)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Nothing to clear: a failed attempt deletes what it made."""
        del rq_id, payload

    async def _restore(self, rq_id: str, params: RestoreParams) -> tuple[int, str]:
        """Make the backed-up object again; its id, and what the request's message says of
        what was left out ("" for nothing)."""

        async def report(fraction: float) -> None:
            await self.requests.progress(rq_id, fraction)

        with tempfile.TemporaryDirectory(prefix="restore-") as directory:
            path = Path(directory) / "backup.zip"
            await fetch(params.source, path, storage=self.storage, ingest=self.ingest)
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                if ("project.json" in names) != (params.kind == "project"):
                    found = "a project" if "project.json" in names else "a task"
                    raise BackupInvalid(
                        f"The file is {found} backup: restore it as one "
                        f"(POST /api/{'projects' if found == 'a project' else 'tasks'}/backup)."
                    )
                restore = _Restore(self, archive, Path(directory), params, report)
                if params.kind == "project":
                    made = await restore.project()
                else:
                    made = await restore.task("", None, 0.0, 1.0)
                return made, restore.report_left_out()


class _Restore:
    """One restore: what it has made so far, deleted if it fails."""

    def __init__(
        self,
        runner: RestoreRunner,
        archive: zipfile.ZipFile,
        scratch: Path,
        params: RestoreParams,
        report: Report,
    ) -> None:
        self.annotations = runner.annotations
        self.ingest = runner.ingest
        self.archive = archive
        self.scratch = scratch
        self.params = params
        self.report = report
        self.left_out: list[str] = []

    def report_left_out(self) -> str:
        """The request's message: what of the backup was not restored ("" for nothing)."""
        if not self.left_out:
            return ""
        return "Restored without what Tessera does not have: " + "; ".join(self.left_out) + "."

    def _json(self, member: str) -> Any:
        try:
            return orjson.loads(self.archive.read(member))
        except KeyError:
            raise BackupInvalid(f"The backup has no {member}.") from None

    async def project(self) -> int:
        """The project, then its tasks; the project's id."""
        meta = self._json("project.json")
        layout.check_version(meta, "project.json")
        body = layout.project_to_create(meta, self.params.user_id)
        guide = layout.annotation_guide(set(self.archive.namelist()), "")
        self.left_out += [guide] if guide else []
        project_id = await self.annotations.create_object(
            "project", body, self.params.organization_id
        )
        try:
            folders = sorted(
                {m.group(0) for n in self.archive.namelist() if (m := _TASK_FOLDER.match(n))},
                key=lambda folder: int(folder[5:-1]),
            )
            for index, folder in enumerate(folders):
                share = 1 / len(folders)
                await self.task(folder, project_id, index * share, share)
        except BaseException:
            await _quietly(self.annotations.delete_object("project", project_id))
            raise
        return project_id

    async def task(self, folder: str, project_id: int | None, low: float, share: float) -> int:
        """The task of the backup's `folder` (`""` or `task_<i>/`), into `project_id`; its
        id. Progress goes from `low` by `share`."""
        meta = self._json(f"{folder}task.json")
        layout.check_version(meta, f"{folder}task.json")
        backed_up = self._json(f"{folder}annotations.json")
        elements = layout.job_annotations(meta, backed_up)
        options = layout.data_options(meta.get("data", {}))
        deleted = layout.deleted_frames(meta.get("data", {}))
        body = layout.task_to_create(meta, self.params.user_id, project_id)
        left_out = layout.left_out(meta, backed_up, set(self.archive.namelist()), folder)
        task_id = await self.annotations.create_object("task", body, self.params.organization_id)
        try:
            media = await asyncio.to_thread(self._media, folder)
            await self.report(low + 0.1 * share)
            try:
                await attach_and_wait(
                    self.ingest, task_id, media, options,
                    lambda done: self.report(low + 0.1 * share + 0.7 * share * done),
                )  # fmt: skip
            except MediaFailed as exc:
                raise BackupInvalid(f"The media could not be restored: {exc}") from None
            if deleted:
                await self.ingest.set_deleted_frames(task_id, deleted)
            await self._jobs(task_id, layout.annotation_jobs(meta), elements, low + 0.8 * share,
                             0.2 * share)  # fmt: skip
        except BaseException:
            await _quietly(self.annotations.delete_object("task", task_id))
            raise
        self.left_out += left_out
        return task_id

    def _media(self, folder: str) -> Path:
        """The files of the backup's `{folder}data/` as a zip archive of their own, under
        their names (on a thread: the files are copied)."""
        prefix = f"{folder}data/"
        target = self.scratch / "media.zip"
        count = 0
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as media:
            for info in self.archive.infolist():
                name = info.filename[len(prefix) :]
                if not info.filename.startswith(prefix) or info.is_dir():
                    continue
                if name in _MEDIA_FILES_SKIPPED:
                    continue
                with self.archive.open(info) as source, media.open(name, "w") as out:
                    shutil.copyfileobj(source, out, 2**20)
                count += 1
        if not count:
            raise BackupInvalid(f"The backup has no media in {prefix}.")
        return target

    async def _jobs(
        self,
        task_id: int,
        backed_up: list[dict[str, Any]],
        elements: list[Any],
        low: float,
        share: float,
    ) -> None:
        """Each new job's status and annotations, from its backed-up counterpart."""
        target = await self.annotations.import_target(task_id=task_id)
        jobs = sorted(target.jobs, key=lambda job: job.id)
        if len(jobs) != len(backed_up):
            raise BackupInvalid(
                f"The restored media makes {len(jobs)} jobs, the backup lists {len(backed_up)}."
            )
        ids = layout.LabelIds(target.labels)
        for number, (job, meta, element) in enumerate(
            zip(jobs, backed_up, elements, strict=True), start=1
        ):
            change = layout.job_change(str(meta.get("status", "annotation")))
            if change is not None:
                await self.annotations.update_job(job.id, change)
            document = layout.job_document(element, ids)
            if any(document.values()):
                await self.annotations.import_annotations(
                    job_id=job.id, document=orjson.dumps(document), action="replace",
                    actor_id=self.params.user_id,
                )  # fmt: skip
            await self.report(low + share * number / len(jobs))


async def _quietly(cleanup: Awaitable[None]) -> None:
    """Undo what a failed restore made, logging (not raising) a failure to."""
    try:
        await asyncio.shield(cleanup)
    except Exception:
        logger.exception("a failed restore could not delete what it made")


def _reason(exc: Exception) -> str:
    if isinstance(exc, zipfile.BadZipFile):
        return "The file is not a zip archive of a backup."
    if isinstance(exc, KeyError):
        return f"The backup lacks {exc}."
    if isinstance(exc, orjson.JSONDecodeError):
        return f"The backup holds malformed JSON: {exc}"
    return str(exc)
