"""Where the clients find the URL and token of `tessera login`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.client.client import AsyncClient, Client
from tessera.client.config import ConfigError


def test_from_config_takes_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("TESSERA_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("TESSERA_TOKEN", "secret-token")
    with Client.from_config() as client:
        assert (client.url, client.token) == ("http://127.0.0.1:8080", "secret-token")
        assert client.http.headers["Authorization"] == "Bearer secret-token"
    assert isinstance(AsyncClient.from_config(), AsyncClient)


def test_from_config_without_a_login_says_how(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("TESSERA_URL", raising=False)
    monkeypatch.delenv("TESSERA_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="tessera login"):
        Client.from_config()
