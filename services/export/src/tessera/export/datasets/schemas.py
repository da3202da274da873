"""What a project's dataset import is asked to do, as CVAT 2.80's clients ask it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class DatasetImportParams(BaseModel):
    """One dataset import: into which project, from which file (`filename`: the uploaded
    file's name, or the key of a cloud storage's object), in which format, how."""

    model_config = ConfigDict(frozen=True)

    project_id: int
    format: str
    filename: str
    conv_mask_to_poly: bool = False


class ProjectFacts(BaseModel):
    """What the import needs of the project, as the caller's access saw it at
    `Upload-Finish`: where its tasks go (its organization, None: its owner's workspace),
    who owns them, and the project's dimension."""

    model_config = ConfigDict(frozen=True)

    organization_id: int | None
    owner_id: int | None
    dimension: Literal["2d", "3d"]


class DatasetImportCreated(BaseModel):
    """The `202` answer of `Upload-Finish`: the request to poll at `/api/requests/{rq_id}`."""

    rq_id: str
