"""Cloud storages as CVAT's API shows them (`CloudStorageWriteRequest`, `CloudStorageRead`).

Keys are write-only: they are encrypted into the secret the storage refers to and never
returned. Only S3 and S3-compatible endpoints are supported; `specific_attributes` is
CVAT's query string of `region`, `endpoint_url` and `prefix`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ProviderType = Literal["AWS_S3_BUCKET", "AZURE_CONTAINER", "GOOGLE_CLOUD_STORAGE"]
CredentialsType = Literal[
    "KEY_SECRET_KEY_PAIR",
    "ACCOUNT_NAME_TOKEN_PAIR",
    "KEY_FILE_PATH",
    "ANONYMOUS_ACCESS",
    "CONNECTION_STRING",
]
SUPPORTED_CREDENTIALS = ("KEY_SECRET_KEY_PAIR", "ANONYMOUS_ACCESS")
ATTRIBUTES = ("region", "endpoint_url", "prefix")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def parse_attributes(text: str) -> dict[str, str]:
    """`region=x&endpoint_url=y` as a dict; ValueError for unknown or repeated names."""
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown attribute {unknown[0]!r} (known: {', '.join(ATTRIBUTES)})")
    if len(set(names)) != len(names):
        raise ValueError("an attribute is given twice")
    return dict(pairs)


class _Storage(BaseModel):
    @field_validator("provider_type", check_fields=False)
    @classmethod
    def _s3_only(cls, value: str | None) -> str | None:
        if value is not None and value != "AWS_S3_BUCKET":
            raise ValueError("only AWS_S3_BUCKET (S3 and S3-compatible endpoints) is supported")
        return value

    @field_validator("credentials_type", check_fields=False)
    @classmethod
    def _supported_credentials(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_CREDENTIALS:
            raise ValueError(f"S3 storages take {' or '.join(SUPPORTED_CREDENTIALS)}")
        return value

    @field_validator("resource", check_fields=False)
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET.match(value):
            raise ValueError("not an S3 bucket name (3-63 lower-case letters, digits, . and -)")
        return value

    @field_validator("specific_attributes", check_fields=False)
    @classmethod
    def _attributes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        attributes = parse_attributes(value)
        endpoint = attributes.get("endpoint_url")
        if endpoint is not None and not re.match(r"^https?://[^/\s]+/?$", endpoint):
            raise ValueError("endpoint_url must be http(s)://host[:port]")
        return urlencode(attributes)

    @field_validator("manifests", check_fields=False)
    @classmethod
    def _manifests(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not m.endswith(".jsonl") or ".." in m for m in value):
            raise ValueError("manifests are .jsonl keys in the bucket")
        return value


class CloudStorageWrite(_Storage):
    """`POST /api/cloudstorages`."""

    model_config = ConfigDict(extra="ignore")

    provider_type: ProviderType
    resource: str = Field(max_length=63)
    display_name: str = Field(min_length=1, max_length=63)
    credentials_type: CredentialsType
    key: str | None = Field(default=None, max_length=1024)
    secret_key: str | None = Field(default=None, max_length=1024)
    session_token: str | None = Field(default=None, max_length=4096)
    specific_attributes: str = Field(default="", max_length=1024)
    description: str = Field(default="", max_length=4096)
    manifests: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _keys_match_type(self) -> CloudStorageWrite:
        check_keys(self.credentials_type, self.key, self.secret_key)
        return self


class CloudStoragePatch(_Storage):
    """`PATCH /api/cloudstorages/{id}`: the fields given change; keys replace the old ones."""

    model_config = ConfigDict(extra="ignore")

    provider_type: ProviderType | None = None
    resource: str | None = Field(default=None, max_length=63)
    display_name: str | None = Field(default=None, min_length=1, max_length=63)
    credentials_type: CredentialsType | None = None
    key: str | None = Field(default=None, max_length=1024)
    secret_key: str | None = Field(default=None, max_length=1024)
    session_token: str | None = Field(default=None, max_length=4096)
    specific_attributes: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=4096)
    manifests: list[str] | None = Field(default=None, max_length=100)


def check_keys(credentials_type: str, key: str | None, secret_key: str | None) -> None:
    """ValueError unless the keys fit the credentials type."""
    if credentials_type == "KEY_SECRET_KEY_PAIR" and not (key and secret_key):
        raise ValueError("KEY_SECRET_KEY_PAIR needs both key and secret_key")
    if credentials_type == "ANONYMOUS_ACCESS" and (key or secret_key):
        raise ValueError("ANONYMOUS_ACCESS takes no key or secret_key")


class StorageOwner(BaseModel):
    """The user who made the storage."""

    url: str
    id: int
    username: str
    first_name: str = ""
    last_name: str = ""


class CloudStorageRead(BaseModel):
    """A cloud storage as returned: never its keys."""

    id: int
    owner: StorageOwner
    manifests: list[str]
    provider_type: ProviderType
    resource: str
    display_name: str
    created_date: datetime
    updated_date: datetime
    credentials_type: CredentialsType
    specific_attributes: str
    description: str
    organization: int | None


class ContentEntry(BaseModel):
    """One entry of a folder listing."""

    name: str
    type: Literal["REG", "DIR"]
    mime_type: str


class ContentPage(BaseModel):
    """`GET /api/cloudstorages/{id}/content-v2`: a folder's entries and the next page's token."""

    content: list[ContentEntry]
    next: str | None
