"""`/api/server`: facts about this server."""

from fastapi import APIRouter, Request

from tessera.annotations import __version__
from tessera.annotations.config import AnnotationsSettings
from tessera.annotations.server.schemas import About

router = APIRouter(prefix="/api/server", tags=["server"])


@router.get("/about", summary="Get basic information about the server")
async def about(request: Request) -> About:
    """Name, description and version of this server."""
    settings: AnnotationsSettings = request.app.state.platform.settings
    return About(
        name=settings.server_name,
        description=settings.server_description,
        version=__version__,
        logo_url=settings.server_logo_url,
        subtitle=settings.server_subtitle,
    )
