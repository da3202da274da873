"""`GET /api/server/annotation/formats`: the formats Tessera writes (and reads), with
CVAT's fields, so that clients can offer them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from tessera.export.formats.registry import EXPORTERS, ExportFormat
from tessera.export.imports.registry import IMPORTERS, ImportFormat
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
    """One entry per format and dimension."""
    del principal
    return Formats(importers=_listed(IMPORTERS), exporters=_listed(EXPORTERS))


def _listed(formats: Iterable[ExportFormat | ImportFormat]) -> list[FormatInfo]:
    return [
        FormatInfo(
            name=found.name,
            ext=found.ext,
            version=found.version,
            enabled=True,
            dimension="3D" if dimension == "3d" else "2D",
        )
        for found in formats
        for dimension in sorted(found.dimensions)
    ]
