"""Where `tessera login` keeps the server's URL and the token, and how they are found.

The file is `$XDG_CONFIG_HOME/tessera/config.toml` (or, without `XDG_CONFIG_HOME`, the
user's application folder: `~/.config/tessera` on Linux), readable by its owner only
(0600, in a 0700 folder). `TESSERA_URL` and `TESSERA_TOKEN` override what it holds;
`TESSERA_CONFIG` names another file.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import typer

URL_VARIABLE = "TESSERA_URL"
TOKEN_VARIABLE = "TESSERA_TOKEN"
CONFIG_VARIABLE = "TESSERA_CONFIG"
APP_NAME = "tessera"


class ConfigError(Exception):
    """No URL or token to use, or a config file that cannot be read."""


@dataclass(frozen=True)
class Credentials:
    """A server and the token to use there (either may be missing)."""

    url: str | None = None
    token: str | None = None


def config_path() -> Path:
    """The config file of the current user."""
    if explicit := os.environ.get(CONFIG_VARIABLE):
        return Path(explicit)
    if xdg := os.environ.get("XDG_CONFIG_HOME"):
        return Path(xdg) / APP_NAME / "config.toml"
    return Path(typer.get_app_dir(APP_NAME)) / "config.toml"


def load(path: Path | None = None) -> Credentials:
    """What the config file holds (nothing if there is none)."""
    path = path or config_path()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return Credentials()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    url, token = document.get("url"), document.get("token")
    return Credentials(
        url if isinstance(url, str) else None, token if isinstance(token, str) else None
    )


def save(credentials: Credentials, path: Path | None = None) -> Path:
    """Write the config file, readable by its owner only; its path."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [
        "# Written by `tessera login`. TESSERA_URL and TESSERA_TOKEN override these.",
        *(
            f"{key} = {json.dumps(value, ensure_ascii=False)}"  # a TOML basic string
            for key, value in (("url", credentials.url), ("token", credentials.token))
            if value is not None
        ),
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as sink:
        os.fchmod(sink.fileno(), 0o600)
        sink.write("\n".join(lines) + "\n")
    return path


def forget(path: Path | None = None) -> bool:
    """Delete the config file; whether there was one."""
    path = path or config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(url: str | None = None, token: str | None = None) -> Credentials:
    """The URL and token to use: those given, else `TESSERA_URL`/`TESSERA_TOKEN`, else
    the config file's."""
    stored = load() if url is None or token is None else Credentials()
    return Credentials(
        url or os.environ.get(URL_VARIABLE) or stored.url,
        token or os.environ.get(TOKEN_VARIABLE) or stored.token,
    )


def resolve_credentials() -> tuple[str, str]:
    """The URL and token to use, both required; `ConfigError` saying how to log in."""
    found = resolve()
    if not found.url or not found.token:
        raise ConfigError(
            "Not logged in: run `tessera login URL` or set TESSERA_URL and TESSERA_TOKEN."
        )
    return found.url, found.token
