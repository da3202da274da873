"""Settings of the inference service."""

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PeerSettings

# The function registry shipped with the service (`TESSERA_FUNCTIONS_FILE` overrides it).
DEFAULT_FUNCTIONS_FILE = Path(__file__).with_name("functions.toml")
# Signs the trackers' states in dev and tests; refused outside them.
DEV_TRACKER_STATE_SECRET = "tessera development tracker state secret"
StateSecret = Annotated[SecretStr, Field(min_length=16)]


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

    # Auto-annotation requests (`POST /api/lambda/requests`, tessera.inference.
    # auto_annotation): how many this replica runs at once (0: none, an API-only replica),
    # the frames given to the detector at once, and how often shapes are written (after
    # this many frames, or once this many shapes wait). A request whose worker stopped,
    # died or met a transient failure (Triton, a peer service) is tried this many times,
    # this long apart, then fails saying why.
    auto_annotation_workers: int = Field(default=1, ge=0)
    auto_annotation_detect_frames: int = Field(default=8, ge=1, le=256)
    auto_annotation_write_frames: int = Field(default=32, ge=1)
    auto_annotation_write_shapes: int = Field(default=2000, ge=1)
    auto_annotation_max_deliveries: int = Field(default=3, ge=1)
    auto_annotation_retry_delay_s: float = Field(default=5.0, ge=0)

    # The secret (16+ characters) that signs the state a tracker hands its client, so
    # that clients cannot forge one; states signed with a previous secret (a JSON list)
    # are still taken, so the secret can be rotated without breaking tracks in flight.
    tracker_state_secret: StateSecret = SecretStr(DEV_TRACKER_STATE_SECRET)
    tracker_state_previous_secrets: list[StateSecret] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refuse_default_tracker_secret(self) -> Self:
        if not self.is_dev and self.tracker_state_secret.get_secret_value() == (
            DEV_TRACKER_STATE_SECRET
        ):
            raise ValueError(
                "TESSERA_TRACKER_STATE_SECRET still holds the development default; set it, "
                "or set TESSERA_ENV=dev for a local setup"
            )
        return self
