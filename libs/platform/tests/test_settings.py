"""Settings refuse development secrets outside dev."""

import pytest
from pydantic import ValidationError

from tessera.platform.settings import PlatformSettings


def test_dev_accepts_the_defaults() -> None:
    assert PlatformSettings(env="dev").is_dev


def test_prod_refuses_every_default_secret_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TESSERA_DATABASE_URL",
        "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as error:
        PlatformSettings(env="prod")
    message = str(error.value)
    for name in (
        "TESSERA_DATABASE_URL",
        "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
    ):
        assert name in message


def test_prod_starts_with_its_own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ENV", "prod")
    monkeypatch.setenv("TESSERA_DATABASE_URL", "postgresql://svc:s3cret@db:5432/tessera")
    monkeypatch.setenv("TESSERA_BOOTSTRAP_ADMIN_PASSWORD", "also-from-a-secret")
    settings = PlatformSettings()
    assert not settings.is_dev
    assert not settings.should_migrate_on_start
    assert not settings.should_create_bucket
    assert settings.s3_access_key is None, "no keys: the default AWS credential chain (IRSA)"


def test_stream_replicas_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PlatformSettings(env="dev").nats_stream_replicas == 1
    monkeypatch.setenv("TESSERA_NATS_STREAM_REPLICAS", "3")
    assert PlatformSettings(env="dev").nats_stream_replicas == 3
    for refused in ("0", "6"):
        monkeypatch.setenv("TESSERA_NATS_STREAM_REPLICAS", refused)
        with pytest.raises(ValidationError, match="nats_stream_replicas"):
            PlatformSettings(env="dev")
