"""Settings of the export service."""

from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class ExportSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`)."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")
