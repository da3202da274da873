"""Settings of the annotations service."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class AnnotationsSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`).

    Webhook deliveries are tried up to `webhook_max_attempts` times, waiting
    `webhook_retry_base_s` seconds after the first failure and twice as long after each
    next one; one attempt waits at most `webhook_timeout_s` for the receiver.
    """

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    server_name: str = "Tessera"
    server_description: str = (
        "Open annotation backend for images, video and point clouds, "
        "compatible with CVAT's REST API."
    )
    server_subtitle: str = "Annotation at scale"
    server_logo_url: str = ""
    cvat_api_version: str = "2.80.0"
    """The CVAT API version Tessera implements: its compatibility level, reported as
    `version` by `/api/server/about` (cvat-sdk 2.80 accepts `~=2.80.0` and `~=2.81.0`
    without a warning). Tessera's own release is `tessera_version` beside it."""
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_retry_base_s: float = Field(10.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
