"""Browsing the connected share: one folder at a time, never outside the share's root."""

from __future__ import annotations

from pathlib import Path

from tessera.ingest.creation.sources import resolve_in_share
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.kinds import media_kind
from tessera.ingest.share.schemas import FileInfo
from tessera.platform.errors import NotFound, Problem


def list_folder(root: Path | None, directory: str, search: str | None) -> list[FileInfo]:
    """The folder's sub-folders then files, each by name; `search` keeps names starting
    with it. Entries that are links leading outside the share are left out."""
    if root is None:
        raise NotFound("No share is connected to this server.")
    try:
        folder = resolve_in_share(root, directory)
    except MediaError as exc:
        raise NotFound(f"{directory}: {exc.reason}") from exc
    if not folder.is_dir():
        raise Problem(
            400,
            f"{directory} is not a folder of the share",
            errors=[{"field": "query.directory", "message": "not a folder"}],
        )
    base = root.resolve()
    folders: list[FileInfo] = []
    files: list[FileInfo] = []
    for entry in folder.iterdir():
        if search and not entry.name.startswith(search):
            continue
        real = entry.resolve()
        if base not in real.parents:
            continue
        if real.is_dir():
            folders.append(FileInfo(name=entry.name, type="DIR", mime_type="DIR"))
        elif real.is_file():
            files.append(FileInfo(name=entry.name, type="REG", mime_type=media_kind(entry.name)))
    return sorted(folders, key=lambda f: f.name) + sorted(files, key=lambda f: f.name)
