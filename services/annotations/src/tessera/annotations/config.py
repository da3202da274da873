"""Settings of the annotations service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class AnnotationsSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`)."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    server_name: str = "Tessera"
    server_description: str = (
        "Open annotation backend for images, video and point clouds, "
        "compatible with CVAT's REST API."
    )
    server_subtitle: str = "Annotation at scale"
    server_logo_url: str = ""
