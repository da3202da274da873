"""Settings shared by every service, read from `TESSERA_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.platform.proxying import parse_networks

DEV_DATABASE_URL = "postgresql+asyncpg://tessera:tessera@127.0.0.1:5432/tessera"
DEV_ADMIN_PASSWORD = "tessera-admin"

Environment = Literal["dev", "test", "prod"]


class DatabaseSettings(BaseSettings):
    """Only the database: what `tessera-migrate` needs."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    database_url: SecretStr = SecretStr(DEV_DATABASE_URL)
    # The password `tessera-migrate --app-role` gives the services' login role.
    app_role_password: SecretStr | None = None


class PlatformSettings(BaseSettings):
    """What every service needs to reach its dependencies.

    Outside `dev` (and `test`) the defaults of secrets are refused, so a production
    deployment cannot start with a password that is printed in this file.
    """

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    env: Environment = "prod"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: SecretStr = SecretStr(DEV_DATABASE_URL)
    database_pool_size: int = 10
    migrate_on_start: bool | None = None

    nats_url: str = "nats://127.0.0.1:4222"
    nats_token: SecretStr | None = None
    # How many JetStream servers keep a copy of each stream: 1 on a single server, 3 on
    # a three-node cluster; at most the cluster's JetStream servers (and JetStream's 5).
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Without keys, the AWS default credential chain applies (IRSA on EKS).
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str = "tessera"
    s3_create_bucket: bool | None = None

    # Peers whose X-Forwarded-Host/-Proto/-For are believed: the gateway (loopback under
    # `make run`) or the cluster's ingress. A JSON list of addresses and CIDR blocks.
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]

    bootstrap_admin_username: str = "admin"
    bootstrap_admin_email: str = "admin@localhost"
    bootstrap_admin_password: SecretStr = SecretStr(DEV_ADMIN_PASSWORD)
    bootstrap_admin_token: SecretStr | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @property
    def is_dev(self) -> bool:
        """True for the embedded single-machine setup and the test suite."""
        return self.env in ("dev", "test")

    @property
    def should_migrate_on_start(self) -> bool:
        """Services migrate their own schema at start in dev; a Job does it in Kubernetes."""
        return self.is_dev if self.migrate_on_start is None else self.migrate_on_start

    @property
    def should_create_bucket(self) -> bool:
        """The dev S3 endpoint starts empty; production buckets are made by Terraform."""
        return self.is_dev if self.s3_create_bucket is None else self.s3_create_bucket

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> PlatformSettings:
        if self.is_dev:
            return self
        defaults = {
            "TESSERA_DATABASE_URL": self.database_url.get_secret_value() == DEV_DATABASE_URL,
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD": (
                self.bootstrap_admin_password.get_secret_value() == DEV_ADMIN_PASSWORD
            ),
        }
        offending = [name for name, is_default in defaults.items() if is_default]
        if offending:
            raise ValueError(
                f"{', '.join(offending)} still hold the development default; set them, "
                "or set TESSERA_ENV=dev for a local setup"
            )
        return self


class PeerSettings(PlatformSettings):
    """For the services that call the annotations service's internal API (ingest, export,
    inference): where it is, and the administrator token they act with there."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    annotations_url: str = "http://127.0.0.1:8081"
    # The credential for other services' internal endpoints: an administrator's token
    # (the bootstrap admin's when unset).
    service_token: SecretStr | None = None

    @property
    def internal_token(self) -> str:
        """The administrator token for other services' internal endpoints."""
        token = self.service_token or self.bootstrap_admin_token
        if token is None:
            raise RuntimeError("set TESSERA_SERVICE_TOKEN (an administrator's access token)")
        return token.get_secret_value()
