"""Settings of the inference service."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PeerSettings

# The function registry shipped with the service (`TESSERA_FUNCTIONS_FILE` overrides it).
DEFAULT_FUNCTIONS_FILE = Path(__file__).with_name("functions.toml")


class InferenceSettings(PeerSettings):
    """Environment: `TESSERA_*` (see `PeerSettings`: the annotations service is asked who
    may see which task and what its labels are), where ingest and Triton are, and the
    functions this replica serves."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    # The ingest service, asked for the frames the functions run on.
    ingest_url: str = "http://127.0.0.1:8082"

    # `host:port` (gRPC, as the chart passes it), `grpc://`, `http://` or `https://`.
    triton_url: str = "127.0.0.1:8001"
    # Each call to Triton; transient failures are retried with exponential backoff.
    triton_timeout_s: float = 30.0
    triton_retries: int = 3
    # Frames from concurrent callers wait this long for others to share a batch with,
    # and at most this many batches per model are at Triton at once.
    batch_linger_s: float = Field(default=0.005, ge=0)
    batch_max_in_flight: int = Field(default=2, ge=1)

    # The function registry (TOML): the functions, their labels, models and code.
    functions_file: Path = DEFAULT_FUNCTIONS_FILE
