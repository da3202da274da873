"""Schemas of `/api/server`."""

from pydantic import BaseModel


class About(BaseModel):
    """What `GET /api/server/about` returns: CVAT's fields, and Tessera's own version.

    `version` is the CVAT API version this server implements (the compatibility level
    cvat-sdk checks); `tessera_version` is the Tessera release. cvat-sdk's `About` model
    keeps unknown fields, so the extra one does not break its validation.
    """

    name: str
    description: str
    version: str
    logo_url: str
    subtitle: str
    tessera_version: str
