"""Settings of the export service."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tessera.platform.settings import PeerSettings


class ExportSettings(PeerSettings):
    """Environment: `TESSERA_*` (see `PeerSettings`: the annotations service is asked who
    may export what and streams the annotations) and the export-specific values below."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    # The ingest service, asked for frame names, sizes and original images.
    ingest_url: str = "http://127.0.0.1:8082"
    # Exports one replica writes at once (taken from the shared JetStream queue).
    export_workers: int = Field(default=2, ge=1)
    # Archives are kept under this prefix of the service's bucket for this long after
    # they were made (or last reused), then deleted.
    export_prefix: str = "exports/"
    export_lifetime_s: int = Field(default=24 * 3600, ge=60)
    # How often a replica looks for expired archives.
    expiry_interval_s: float = Field(default=300.0, gt=0)
    # zlib level of the archive's annotation files (1: fastest; images are stored as they are).
    archive_compression_level: int = Field(default=1, ge=0, le=9)
    # Imports one replica runs at once, and the largest file an import takes.
    import_workers: int = Field(default=2, ge=1)
    import_max_bytes: int = Field(default=8 * 2**30, ge=1)
    # Backup restores one replica runs at once, and the largest backup archive it takes.
    restore_workers: int = Field(default=1, ge=1)
    backup_max_bytes: int = Field(default=25 * 2**30, ge=1)
    # Dataset imports into projects one replica runs at once, and the largest dataset
    # archive (its images included) one takes.
    dataset_workers: int = Field(default=1, ge=1)
    dataset_max_bytes: int = Field(default=25 * 2**30, ge=1)
