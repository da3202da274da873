"""`/api/server`: facts about this server."""

from fastapi import APIRouter, Request

from tessera.annotations import __version__
from tessera.annotations.config import AnnotationsSettings
from tessera.annotations.server.schemas import About

router = APIRouter(prefix="/api/server", tags=["server"])


@router.get("/about", summary="Get basic information about the server")
async def about(request: Request) -> About:
    """Name, description, the CVAT API version implemented, and Tessera's version."""
    settings: AnnotationsSettings = request.app.state.platform.settings
    return About(
        name=settings.server_name,
        description=settings.server_description,
        version=settings.cvat_api_version,
        logo_url=settings.server_logo_url,
        subtitle=settings.server_subtitle,
        tessera_version=__version__,
    )
