"""Settings of the ingest service."""

from pathlib import Path
from typing import Self

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PeerSettings

DEV_SECRETS_KEY = "tessera development secrets key"  # refused outside dev


class IngestSettings(PeerSettings):
    """Environment: `TESSERA_*` (see `PeerSettings`; the annotations service is asked who
    may do what and told the jobs of a new task) and the ingest-specific values below."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    # Local working space for media being prepared; one folder per request, removed after.
    scratch_dir: Path = Path("/tmp/tessera-ingest")
    # The connected share (`server_files`); none when unset.
    share_root: Path | None = None
    # Largest file one upload may carry, and largest total of one task's media.
    max_upload_bytes: int = 25 * 2**30
    max_task_bytes: int = 100 * 2**30
    # Archives: at most this many files, and an entry may expand at most this many times.
    max_archive_files: int = 1_000_000
    max_archive_ratio: int = 200
    # Remote files (`remote_files`): addresses in these networks may be fetched even though
    # they are loopback, private, link-local or otherwise internal; size and time limits.
    remote_allowed_networks: tuple[str, ...] = ()
    # Cloud storage endpoints (`host:port` of their `endpoint_url`) allowed although they
    # are internal: `make run` names its embedded S3, and only it (not all of loopback).
    cloud_storage_allowed_endpoints: tuple[str, ...] = ()
    remote_max_bytes: int = 4 * 2**30
    remote_timeout_s: float = 60.0
    # Chunks made on first request (`use_cache`) are kept until their total passes this.
    chunk_cache_bytes: int = 10 * 2**30
    # Parallel workers for decoding and encoding media.
    media_workers: int = 2
    # Task creations one replica runs at once (taken from the shared JetStream queue).
    creation_workers: int = 2
    # Passphrase of the key that encrypts cloud storage credentials in the database.
    secrets_key: SecretStr = SecretStr(DEV_SECRETS_KEY)
    # Objects read at once from a cloud storage while a task is created.
    cloud_concurrency: int = 16

    @model_validator(mode="after")
    def _refuse_default_secrets_key(self) -> Self:
        if not self.is_dev and self.secrets_key.get_secret_value() == DEV_SECRETS_KEY:
            raise ValueError(
                "TESSERA_SECRETS_KEY still holds the development default; set it, "
                "or set TESSERA_ENV=dev for a local setup"
            )
        return self
