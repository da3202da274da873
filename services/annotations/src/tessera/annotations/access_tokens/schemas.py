"""Schemas of `/api/auth/api_tokens` (CVAT's personal access tokens)."""

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator


class ApiTokenOwner(BaseModel):
    """The owner of a token, briefly."""

    id: int
    username: str


class ApiToken(BaseModel):
    """A token as listed; `value` is present only in the response that created it."""

    id: int
    name: str
    created_date: datetime
    updated_date: datetime
    expiry_date: datetime | None
    last_used_date: datetime | None
    read_only: bool
    owner: ApiTokenOwner
    value: str | None = Field(
        default=None, description="The token itself. Returned only once, when it is created."
    )


def _must_be_future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


class ApiTokenCreate(BaseModel):
    """A request to create a token."""

    name: str = Field(
        min_length=1, max_length=200, description="A free-form name; need not be unique."
    )
    expiry_date: datetime | None = Field(default=None, description="No expiry when empty.")
    read_only: bool = False

    _future_expiry = field_validator("expiry_date")(_must_be_future)


class ApiTokenUpdate(BaseModel):
    """A partial update of a token."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    expiry_date: datetime | None = None
    read_only: bool | None = None

    _future_expiry = field_validator("expiry_date")(_must_be_future)
