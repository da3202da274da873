"""Settings of the inference service."""

from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class InferenceSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`)."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")
