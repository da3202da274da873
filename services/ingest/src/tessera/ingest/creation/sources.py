"""Bringing a task's files into a local working folder: uploads, the share, URLs and
cloud storages.

Every name a client gave is confined: share paths must resolve inside the share root
(symbolic links included), uploads were reduced to base names when they arrived, URLs
are fetched by `tessera.ingest.creation.remote` with its address checks, and bucket keys
that could leave the working folder (`..`, absolute) are refused.
"""

from __future__ import annotations

import asyncio
import fnmatch
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath

from tessera.ingest.cloud_storages.bucket import CloudBucket, ObjectInfo
from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.remote import fetch_remote
from tessera.ingest.creation.together import all_or_cancel
from tessera.ingest.media.errors import MediaError
from tessera.ingest.task_data.schemas import DataRequest
from tessera.ingest.task_data.service import CreationPlan
from tessera.platform.storage import ObjectStorage

Progress = Callable[[float], Awaitable[None]]


async def gather(
    plan: CreationPlan,
    *,
    settings: IngestSettings,
    storage: ObjectStorage,
    clouds: CloudStorages,
    target: Path,
    progress: Progress,
) -> list[str]:
    """Copy the plan's files under `target`; their relative paths, in the order given."""
    await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    if plan.options.cloud_storage_id is not None:
        async with clouds.bucket(plan.options.cloud_storage_id) as bucket:
            return await copy_from_cloud(bucket, plan.options, settings, target, progress)
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


async def list_cloud_files(
    bucket: CloudBucket, entries: list[str], exclude: list[str], pattern: str | None
) -> list[ObjectInfo]:
    """The objects named by `entries` (keys, or folders ending with "/" taken whole),
    less `exclude` (keys or folders) and names not matching the glob `pattern`."""
    listed: dict[str, ObjectInfo] = {}
    for entry in entries:
        if entry == "" or entry.endswith("/"):
            async for info in bucket.list_all(entry):
                listed.setdefault(info.key, info)
        else:
            listed.setdefault(entry, await bucket.head(entry))
    folders = tuple(e for e in exclude if e.endswith("/"))
    chosen = [
        info
        for key, info in listed.items()
        if key not in exclude
        and not key.startswith(folders or ("\0",))
        and (pattern is None or fnmatch.fnmatchcase(PurePosixPath(key).name, pattern))
    ]
    if not chosen:
        raise MediaError(bucket.location(", ".join(entries)), "no files in the bucket match")
    return chosen


def cloud_path(target: Path, key: str) -> Path:
    """Where an object is copied under `target`; MediaError for a key that would leave it."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        raise MediaError(key, "this object key cannot be a file name (absolute or with ..)")
    return target.joinpath(*parts)


async def copy_from_cloud(
    bucket: CloudBucket,
    options: DataRequest,
    settings: IngestSettings,
    target: Path,
    progress: Progress,
) -> list[str]:
    """Copy the chosen objects under `target`, several at a time; their keys."""
    objects = await list_cloud_files(
        bucket, options.server_files, options.server_files_exclude, options.filename_pattern
    )
    total = sum(info.size for info in objects)
    if total > settings.max_task_bytes:
        raise MediaError(
            bucket.location(", ".join(options.server_files)),
            f"the files add up to {total} bytes, over the limit of {settings.max_task_bytes}",
        )
    paths = [cloud_path(target, info.key) for info in objects]
    for folder in {path.parent for path in paths}:
        folder.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(settings.cloud_concurrency)
    done = 0

    async def copy(info: ObjectInfo, path: Path) -> None:
        nonlocal done
        async with semaphore:
            await bucket.download(info, path)
        done += info.size
        await progress(done / (total or 1))

    await all_or_cancel(copy(i, p) for i, p in zip(objects, paths, strict=True))
    return [info.key for info in objects]
