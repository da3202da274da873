"""A ``manifest.jsonl`` given with a task's files, treated as CVAT's task creation treats it.

As in ``cvat/apps/engine/task.py`` (``_find_manifest_files``, ``_validate_manifest``,
``_restore_file_order_from_manifest`` and the file mapping check of ``_create_thread``): every
``.jsonl`` among the files is a manifest, never media, and at most one may be given. Its
names are relative to the root of the task's files. It selects nothing: the task takes the
files it was given, and they must be exactly the ones the manifest lists. With
``sorting_method`` "predefined" the manifest's order is the frame order; with
"lexicographical" or "natural" the files are sorted and the manifest must list them in that
order; "random" cannot be combined with a manifest. Listed image sizes must be the sizes of
the frames the task keeps, and a video manifest must describe the video given (name,
resolution, length, seekable key frames).

Every disagreement is a `MediaError` naming the manifest, then the file and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.images import ImageInfo
from tessera.ingest.media.manifest import (
    ImageManifest,
    Manifest,
    VideoManifest,
    check_manifest_against_files,
    check_video_manifest,
    read_manifest,
)
from tessera.ingest.media.sorting import sort_names
from tessera.ingest.media.video import VideoIndex

MANIFEST_SUFFIX = ".jsonl"


def split_manifest(names: list[str]) -> tuple[str | None, list[str]]:
    """(the manifest among ``names`` or None, the other names); MediaError for two or more."""
    manifests = [name for name in names if name.endswith(MANIFEST_SUFFIX)]
    if len(manifests) > 1:
        raise MediaError(manifests[1], f"only one manifest can be given, {manifests[0]} is one")
    others = [name for name in names if not name.endswith(MANIFEST_SUFFIX)]
    return (manifests[0] if manifests else None), others


@dataclass(frozen=True)
class GivenManifest:
    """A parsed manifest and its name among the task's files."""

    name: str
    manifest: Manifest

    @classmethod
    def read(cls, workdir: Path, name: str) -> GivenManifest:
        """Parse the manifest ``name`` of the files under ``workdir``."""
        try:
            return cls(name, read_manifest(workdir / name))
        except MediaError as exc:
            raise MediaError(name, exc.reason) from None

    def frame_order(self, files: list[str], sorting_method: str) -> list[str]:
        """The task's files in frame order, once checked to be the ones listed."""
        self._check(lambda: check_manifest_against_files(self.manifest, files))
        if sorting_method == "random":
            raise MediaError(self.name, "a manifest cannot be used with random sorting")
        if not isinstance(self.manifest, ImageManifest):
            return files
        listed = [item.full_name for item in self.manifest.items]
        if sorting_method == "predefined":
            return listed
        ordered = sort_names(files, sorting_method)
        for position, (name, listed_name) in enumerate(zip(ordered, listed, strict=True)):
            if name != listed_name:
                raise MediaError(
                    self.name,
                    f"{name}: is file {position} in {sorting_method} order but the manifest "
                    f"lists {listed_name} there",
                )
        return ordered

    def check_image_sizes(self, sizes: Mapping[str, ImageInfo]) -> None:
        """Check the listed sizes of the images in ``sizes`` (the frames the task keeps)."""
        if not isinstance(self.manifest, ImageManifest):
            return
        kept = ImageManifest(
            self.manifest.version,
            tuple(item for item in self.manifest.items if item.full_name in sizes),
        )
        self._check(lambda: check_manifest_against_files(kept, sizes))

    def check_video(self, index: VideoIndex) -> None:
        """Check a video manifest against the index of the video given with it."""
        if isinstance(self.manifest, VideoManifest):
            manifest = self.manifest
            self._check(lambda: check_video_manifest(manifest, index))

    def _check(self, check: Callable[[], None]) -> None:
        try:
            check()
        except MediaError as exc:
            raise MediaError(self.name, str(exc)) from None
