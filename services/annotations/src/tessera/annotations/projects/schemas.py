"""Schemas of `/api/projects` (CVAT's ProjectRead and ProjectWriteRequest)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tessera.annotations.labels.schemas import LabelRequest
from tessera.annotations.users.schemas import BasicUser


def _url_or_empty(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL or empty")
    if any(character.isspace() for character in value):
        raise ValueError("must not contain whitespace")
    return value


UrlOrEmpty = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_url_or_empty)
]
ObjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class StorageRequest(BaseModel):
    """Where exported or imported datasets go by default."""

    location: Literal["local", "cloud_storage"] = "local"
    cloud_storage_id: int | None = None


class Storage(BaseModel):
    """A default storage as read."""

    location: Literal["local", "cloud_storage"]
    cloud_storage_id: int | None


class WithStorages(BaseModel):
    """The default dataset storages that a project or task request may set."""

    target_storage: StorageRequest | None = None
    source_storage: StorageRequest | None = None

    def storage_values(self) -> dict[str, Any]:
        """The storages this request sets, as column values (an explicit null clears one)."""
        return {
            name: None if value is None else value.model_dump()
            for name in ("target_storage", "source_storage")
            if name in self.model_fields_set
            for value in [getattr(self, name)]
        }


class CountLink(BaseModel):
    """A link to a list, with its length."""

    count: int
    url: str


class Link(BaseModel):
    """A link to a list."""

    url: str


class ProjectCreate(WithStorages):
    """A new project with its labels."""

    name: ObjectName
    labels: list[LabelRequest] = Field(default_factory=list)
    owner_id: int | None = None
    assignee_id: int | None = None
    bug_tracker: UrlOrEmpty = ""


class ProjectUpdate(WithStorages):
    """A partial update of a project; `labels` are merged into the project's labels."""

    name: ObjectName | None = None
    labels: list[LabelRequest] = Field(default_factory=list)
    owner_id: int | None = None
    assignee_id: int | None = None
    bug_tracker: UrlOrEmpty | None = None


class Project(BaseModel):
    """A project as read."""

    url: str
    id: int
    name: str
    owner: BasicUser | None
    assignee: BasicUser | None
    assignee_updated_date: datetime | None
    guide_id: int | None = None
    bug_tracker: str
    task_subsets: list[str]
    created_date: datetime
    updated_date: datetime
    status: Literal["annotation", "validation", "completed"]
    dimension: str | None
    organization: int | None
    organization_id: int | None
    target_storage: Storage | None
    source_storage: Storage | None
    tasks: CountLink
    labels: Link
