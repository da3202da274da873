"""`GET /api/server/share`: the folders and files of the connected share (CVAT's)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from tessera.ingest.config import IngestSettings
from tessera.ingest.share.schemas import FileInfo
from tessera.ingest.share.service import list_folder
from tessera.platform.auth import CurrentUser

router = APIRouter(prefix="/api/server", tags=["share"])


@router.get("/share", summary="List a folder of the connected share")
async def list_share(
    request: Request,
    user: CurrentUser,
    directory: Annotated[str, Query(max_length=4096, description="folder to list")] = "/",
    search: Annotated[str | None, Query(max_length=1024, description="name prefix")] = None,
) -> list[FileInfo]:
    """Sub-folders, then files, of `directory` (a path inside the share)."""
    settings: IngestSettings = request.app.state.platform.settings
    return await asyncio.to_thread(list_folder, settings.share_root, directory, search)
