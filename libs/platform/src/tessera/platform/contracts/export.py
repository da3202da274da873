"""The export service's events as other services consume them.

`export.finished`, on the EXPORT stream, says that an export request ended: `finished`
(its archive is ready: downloadable at `result_url`, or written into a cloud storage) or
`failed` (`message` says why; its deliveries spent, or a fault of the request itself).
It is committed with the request's status change, once per request; a request cancelled
by its owner publishes none (`export.requests.updated` tells of it). The stream also
carries the export work queue's `export.requested`, which its own durable consumer takes
(filtered to that subject); a consumer of `export.finished` filters to this subject.

The annotations service's webhooks send it as `finish:export`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

EXPORT_STREAM = "EXPORT"
EXPORT_FINISHED = "export.finished"


class ExportFinished(BaseModel):
    """The payload of `export.finished`.

    `task_id`, `project_id` and `job_id` place the exported object (a job's task and
    project, a task's project; null where there is none) and `organization_id` is its
    organization, all as they were when the export was asked for. `result_url` is the
    download's absolute URL on the address the export was asked at (null for a failure or
    an archive written into a cloud storage); `filename` is the download's file name, or
    the object's key in the cloud storage.
    """

    rq_id: str
    status: Literal["finished", "failed"]
    message: str | None
    format: str
    target: Literal["project", "task", "job"]
    task_id: int | None
    project_id: int | None
    job_id: int | None
    organization_id: int | None
    result_url: str | None
    location: Literal["local", "cloud_storage"]
    cloud_storage_id: int | None
    filename: str | None
