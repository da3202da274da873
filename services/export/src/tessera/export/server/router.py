"""`GET /api/server/annotation/formats`: the formats Tessera writes (and reads), with
CVAT's fields, so that clients can offer them."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from tessera.export.formats.registry import EXPORTERS
from tessera.platform.auth import CurrentUser

router = APIRouter(prefix="/api/server/annotation", tags=["server"])


class FormatInfo(BaseModel):
    """CVAT's `DatasetFormat`."""

    name: str
    ext: str
    version: str
    enabled: bool
    dimension: Literal["2D", "3D"]


class Formats(BaseModel):
    """CVAT's `DatasetFormats`: importers and exporters."""

    importers: list[FormatInfo]
    exporters: list[FormatInfo]


@router.get("/formats", summary="The annotation formats Tessera imports and exports")
async def annotation_formats(principal: CurrentUser) -> Formats:
    """One entry per format and dimension; no importer exists yet."""
    del principal
    exporters = [
        FormatInfo(
            name=exporter.name,
            ext=exporter.ext,
            version=exporter.version,
            enabled=True,
            dimension="3D" if dimension == "3d" else "2D",
        )
        for exporter in EXPORTERS
        for dimension in sorted(exporter.dimensions)
    ]
    return Formats(importers=[], exporters=exporters)
