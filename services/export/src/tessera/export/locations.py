"""Where a request's archive goes, or its file comes from, when the caller names no
`location`: the object's default storage, as CVAT decides it.

CVAT (`get_location_configuration` in `cvat/apps/engine/location.py`, called by its
exporters and importers in `cvat/apps/engine/background.py` and
`cvat/apps/redis_handler/background.py`): an explicit `location` wins (with
`location=cloud_storage`, `cloud_storage_id` names the storage); without one, an export
or a backup goes to the object's `target_storage` and an import (of annotations, or of a
project's dataset) comes from its `source_storage` (a job's are its task's; a task's
own, never its project's: CVAT's UI copies the project's into a task it creates, the
server does not), and to or from the caller's files (`local`) when it has none. A
restore has no object yet, so it is local unless asked otherwise. A default storage that
is a cloud storage gives its `cloud_storage_id` (400 when it has none), and the caller
must see that storage as with an explicit one (CVAT prefixes its 403 with "A cloud
storage is selected as the default location"); the object's key is the request's
`filename` (an export's generated name when none is given; an import needs one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from tessera.export.exports.schemas import Location
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.errors import Problem, bad_request

StorageField = Literal["target_storage", "source_storage"]
StorageOwner = Literal["project", "task"]


@dataclass(frozen=True)
class Chosen:
    """The location of a request: the caller's (`default` None) or the default storage
    it came from (its description, for messages)."""

    location: Location
    cloud_storage_id: int | None = None
    default: str | None = None


async def choose(
    annotations: AnnotationsClient,
    request: Request,
    *,
    location: Location | None,
    cloud_storage_id: int | None,
    owner: StorageOwner,
    owner_id: int,
    field: StorageField,
) -> Chosen:
    """The request's own `location` (and `cloud_storage_id`), or else the default
    storage `field` of the project or task `owner_id` (one the caller sees); 400 for a
    default cloud storage without its id."""
    if location is not None:
        return Chosen(location, cloud_storage_id)
    storages = await annotations.default_storages(request, owner, owner_id)
    storage = getattr(storages, field)
    described = f"the {field} of {owner} {owner_id}"
    if storage is None or storage.location == "local":
        return Chosen("local", default=described)
    if storage.cloud_storage_id is None:
        raise bad_request(
            f"No location was given and {described} is a cloud storage without a "
            "cloud_storage_id; give location (and cloud_storage_id), or set the storage's "
            "cloud_storage_id.",
            "location",
        )
    return Chosen("cloud_storage", storage.cloud_storage_id, described)


def storage_id_of(chosen: Chosen) -> int:
    """The cloud storage of a `cloud_storage` location; 400 naming `cloud_storage_id`
    when the caller gave location=cloud_storage without it."""
    if chosen.cloud_storage_id is None:
        raise bad_request(
            "cloud_storage_id is required with location=cloud_storage", "cloud_storage_id"
        )
    return chosen.cloud_storage_id


async def check_cloud_storage(ingest: IngestClient, request: Request, chosen: Chosen) -> int:
    """The cloud storage of a `cloud_storage` location (`storage_id_of`), which the caller
    must see (their 403 or 404, as ingest answers it, naming the default storage it came
    from)."""
    storage_id = storage_id_of(chosen)
    try:
        await ingest.check_cloud_storage(request, storage_id)
    except Problem as problem:
        if chosen.default is None or problem.status >= 500:
            raise
        raise Problem(
            problem.status,
            f"A cloud storage is selected as the default location ({chosen.default} is "
            f"cloud storage {storage_id}): {problem.detail}",
            title=problem.title,
            errors=problem.errors,
        ) from None
    return storage_id
