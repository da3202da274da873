"""Settings of the inference service."""

from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PlatformSettings


class InferenceSettings(PlatformSettings):
    """Environment: `TESSERA_*` (see `PlatformSettings`), and where Triton is."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    # `host:port` (gRPC, as the chart passes it), `grpc://`, `http://` or `https://`.
    triton_url: str = "127.0.0.1:8001"
    # Each call to Triton; transient failures are retried with exponential backoff.
    triton_timeout_s: float = 30.0
    triton_retries: int = 3
