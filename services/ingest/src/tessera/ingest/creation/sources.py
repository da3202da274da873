"""Bringing a task's files into a local working folder: uploads, the share, URLs.

Every name a client gave is confined: share paths must resolve inside the share root
(symbolic links included), uploads were reduced to base names when they arrived, and
URLs are fetched by `tessera.ingest.creation.remote` with its address checks.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.remote import fetch_remote
from tessera.ingest.media.errors import MediaError
from tessera.ingest.task_data.service import CreationPlan
from tessera.platform.storage import ObjectStorage

Progress = Callable[[float], Awaitable[None]]


async def gather(
    plan: CreationPlan,
    settings: IngestSettings,
    storage: ObjectStorage,
    target: Path,
    progress: Progress,
) -> list[str]:
    """Copy the plan's files under `target`; their relative paths, in the order given."""
    await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    if plan.uploaded:
        total = sum(size for _, _, size in plan.uploaded) or 1
        done = 0
        for name, key, size in plan.uploaded:
            await storage.get_file(key, target / name)
            done += size
            await progress(done / total)
        return [name for name, _, _ in plan.uploaded]
    if plan.options.server_files:
        assert settings.share_root is not None
        return await asyncio.to_thread(
            copy_from_share,
            settings.share_root,
            plan.options.server_files,
            plan.options.server_files_exclude,
            target,
        )
    names = []
    for index, url in enumerate(plan.options.remote_files):
        names.append(await fetch_remote(url, target, settings))
        await progress((index + 1) / len(plan.options.remote_files))
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise MediaError(duplicate, "two remote files have this name")
    return names


def resolve_in_share(root: Path, entry: str) -> Path:
    """The path of a share entry; MediaError if it leaves the share or does not exist."""
    base = root.resolve()
    path = (base / entry.lstrip("/")).resolve()
    if path != base and base not in path.parents:
        raise MediaError(entry, "is outside the connected share")
    if not path.exists():
        raise MediaError(entry, "does not exist on the connected share")
    return path


def copy_from_share(root: Path, entries: list[str], exclude: list[str], target: Path) -> list[str]:
    """Copy files and folders of the share under `target`, keeping their share paths."""
    base = root.resolve()
    excluded = {resolve_in_share(root, entry) for entry in exclude}
    copied: list[str] = []
    for entry in entries:
        path = resolve_in_share(root, entry)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            real = file.resolve()
            if base not in real.parents:
                raise MediaError(str(file.relative_to(base)), "links outside the connected share")
            if real in excluded or any(parent in excluded for parent in real.parents):
                continue
            relative = real.relative_to(base).as_posix()
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, destination)
            copied.append(relative)
    if not copied:
        raise MediaError(", ".join(entries), "no files on the connected share")
    return copied
