"""Schemas of `/api/server`."""

from pydantic import BaseModel


class About(BaseModel):
    """What `GET /api/server/about` returns, as CVAT does."""

    name: str
    description: str
    version: str
    logo_url: str
    subtitle: str
