"""Settings of the ingest service."""

from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class IngestSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`)."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")
