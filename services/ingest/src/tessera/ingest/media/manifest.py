"""CVAT's ``manifest.jsonl``, in its image and video variants.

The format is the one ``utils/dataset_manifest/core.py`` in CVAT writes and validates: JSON
objects one a line, compact separators. Images::

    {"version":"1.1"}
    {"type":"images"}
    {"name":"sub/img1","extension":".jpg","width":720,"height":405,"meta":{...},"checksum":"..."}

``name`` is the path relative to the data root without the extension; ``width`` and ``height``
are as displayed (after EXIF orientation); ``meta`` (related images) and ``checksum`` (MD5 of the
decoded pixels) are optional. Video::

    {"version":"1.1"}
    {"type":"video"}
    {"properties":{"name":"video.mp4","resolution":[1280,720],"length":778}}
    {"number":0,"pts":0,"checksum":"17bb40d76887b56fe8213c6fded3d540"}

with one line per seekable key frame after the header.
"""

import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO, TypeVar

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.images import ImageInfo
from tessera.ingest.media.video import VideoIndex

MANIFEST_NAME = "manifest.jsonl"
MANIFEST_VERSION = "1.1"
_READABLE_VERSIONS = frozenset({"1.0", "1.1"})

_T = TypeVar("_T")


@dataclass(frozen=True)
class ImageManifestItem:
    """One image of an image manifest."""

    name: str
    extension: str
    width: int | None = None
    height: int | None = None
    meta: dict[str, Any] | None = None
    checksum: str | None = None

    @property
    def full_name(self) -> str:
        """The file's relative POSIX path: ``name`` plus ``extension``."""
        return self.name + self.extension

    @classmethod
    def for_file(
        cls,
        relative_path: str,
        info: ImageInfo | None = None,
        *,
        meta: dict[str, Any] | None = None,
        checksum: str | None = None,
    ) -> "ImageManifestItem":
        """The item of the file at ``relative_path`` (POSIX, relative to the data root)."""
        stem, extension = posixpath.splitext(relative_path)
        return cls(
            name=stem,
            extension=extension,
            width=info.width if info else None,
            height=info.height if info else None,
            meta=meta,
            checksum=checksum,
        )


@dataclass(frozen=True)
class ImageManifest:
    """A parsed image manifest."""

    version: str
    items: tuple[ImageManifestItem, ...]


@dataclass(frozen=True)
class ManifestKeyFrame:
    """One key frame line of a video manifest."""

    number: int
    pts: int
    checksum: str | None = None


@dataclass(frozen=True)
class VideoManifest:
    """A parsed video manifest."""

    version: str
    name: str
    width: int
    height: int
    length: int
    keyframes: tuple[ManifestKeyFrame, ...]


Manifest = ImageManifest | VideoManifest


def read_manifest(source: StrPath | Iterable[str]) -> Manifest:
    """Parse and validate a manifest given as a path, or as its lines.

    Blank lines are skipped, as CVAT does. Checked: the version (1.0 or 1.1) and type lines;
    for images, the field types, both or neither of width and height, and no file listed
    twice; for video, the properties line (a name, a resolution of two positive integers and a
    positive length), at least one key frame, key frame numbers that increase and lie below
    the length. Raises `MediaError` naming the manifest and the line.
    """
    if isinstance(source, str | os.PathLike):
        file_name = Path(source).name
        try:
            with open(source, encoding="utf-8") as stream:
                return _Parser(file_name).parse(stream)
        except FileNotFoundError:
            raise MediaError(file_name, "file not found") from None
        except UnicodeDecodeError:
            raise MediaError(file_name, "not UTF-8 text") from None
    return _Parser(MANIFEST_NAME).parse(source)


def write_image_manifest(out: TextIO, items: Iterable[ImageManifestItem]) -> None:
    """Write an image manifest of ``items``, in order, to ``out``."""
    _write_line(out, {"version": MANIFEST_VERSION})
    _write_line(out, {"type": "images"})
    for item in items:
        line: dict[str, Any] = {"name": item.name, "extension": item.extension}
        if item.width is not None and item.height is not None:
            line["width"] = item.width
            line["height"] = item.height
        if item.meta is not None:
            line["meta"] = item.meta
        if item.checksum is not None:
            line["checksum"] = item.checksum
        _write_line(out, line)


def write_video_manifest(out: TextIO, index: VideoIndex, name: str) -> None:
    """Write the manifest of the video file ``name`` (a base name), indexed as ``index``."""
    _write_line(out, {"version": MANIFEST_VERSION})
    _write_line(out, {"type": "video"})
    _write_line(
        out,
        {
            "properties": {
                "name": name,
                "resolution": [index.width, index.height],
                "length": index.frame_count,
            }
        },
    )
    for key in index.keyframes:
        _write_line(out, {"number": key.number, "pts": key.pts, "checksum": key.checksum})


def check_manifest_against_files(
    manifest: Manifest, files: Iterable[str] | Mapping[str, ImageInfo]
) -> None:
    """Check that the uploaded ``files`` are the ones ``manifest`` lists.

    ``files`` are relative POSIX paths; given as a mapping to their `ImageInfo`, the sizes are
    compared too wherever the manifest has one. For an image manifest, in manifest order, each
    listed file must be among ``files`` and have the listed size; then each of ``files`` must
    be listed. For a video manifest, ``files`` must be the one video whose base name the
    manifest records. Raises `MediaError` naming the file of the first disagreement.
    """
    sizes = files if isinstance(files, Mapping) else None
    names = list(files)
    if isinstance(manifest, VideoManifest):
        _check_video_files(manifest, names, sizes)
        return
    present = set(names)
    for item in manifest.items:
        if item.full_name not in present:
            raise MediaError(item.full_name, "listed in the manifest but not uploaded")
        if sizes is not None and item.width is not None and item.height is not None:
            _check_size(item.full_name, sizes[item.full_name], item.width, item.height)
    listed = {item.full_name for item in manifest.items}
    for name in names:
        if name not in listed:
            raise MediaError(name, "uploaded but not listed in the manifest")


def check_video_manifest(manifest: VideoManifest, index: VideoIndex) -> None:
    """Check a video manifest against the index of the video it came with.

    The resolution and length must agree, and every key frame the manifest lists must be one
    that ``index`` found seekable, with the same number and pts (CVAT seeks to each listed pts
    to check the same). Checksums are not compared: they depend on FFmpeg's colour conversion.
    Raises `MediaError` naming the video.
    """
    name = manifest.name
    if (manifest.width, manifest.height) != (index.width, index.height):
        raise MediaError(
            name,
            f"the manifest says {manifest.width}x{manifest.height} "
            f"but the video is {index.width}x{index.height}",
        )
    if manifest.length != index.frame_count:
        raise MediaError(
            name,
            f"the manifest says {manifest.length} frames but the video has {index.frame_count}",
        )
    seekable = {key.number: key.pts for key in index.keyframes}
    for key in manifest.keyframes:
        if seekable.get(key.number) != key.pts:
            raise MediaError(
                name,
                f"the manifest's key frame {key.number} (pts {key.pts}) "
                "is not a seekable key frame of the video",
            )


def _check_video_files(
    manifest: VideoManifest, names: list[str], sizes: Mapping[str, ImageInfo] | None
) -> None:
    for name in names:
        if PurePosixPath(name).name != manifest.name:
            raise MediaError(name, f"uploaded but the manifest describes {manifest.name!r}")
    if not names:
        raise MediaError(manifest.name, "listed in the manifest but not uploaded")
    if len(names) > 1:
        raise MediaError(names[1], "a video manifest describes one video only")
    if sizes is not None:
        _check_size(names[0], sizes[names[0]], manifest.width, manifest.height)


def _check_size(name: str, info: ImageInfo, width: int, height: int) -> None:
    if (info.width, info.height) != (width, height):
        raise MediaError(
            name, f"is {info.width}x{info.height} but the manifest says {width}x{height}"
        )


def _write_line(out: TextIO, value: dict[str, Any]) -> None:
    out.write(json.dumps(value, separators=(",", ":")))
    out.write("\n")


class _Parser:
    def __init__(self, file_name: str) -> None:
        self._file_name = file_name
        self._line_number = 0

    def parse(self, lines: Iterable[str]) -> Manifest:
        objects = self._objects(lines)
        version = self._field(next(objects, None), "version", str)
        if version not in _READABLE_VERSIONS:
            raise self._error(f"unsupported version {version!r}")
        kind = self._field(next(objects, None), "type", str)
        if kind == "images":
            return ImageManifest(version, self._image_items(objects))
        if kind == "video":
            return self._video(version, objects)
        raise self._error(f"unknown type {kind!r}; expected 'images' or 'video'")

    def _image_items(self, objects: Iterator[dict[str, Any]]) -> tuple[ImageManifestItem, ...]:
        items: list[ImageManifestItem] = []
        seen: set[str] = set()
        for line in objects:
            name = self._field(line, "name", str)
            extension = self._field(line, "extension", str)
            width = self._optional(line, "width", int)
            height = self._optional(line, "height", int)
            if (width is None) != (height is None):
                raise self._error("'width' and 'height' go together")
            if width is not None and height is not None and (width <= 0 or height <= 0):
                raise self._error(f"invalid size {width}x{height}")
            item = ImageManifestItem(
                name=name,
                extension=extension,
                width=width,
                height=height,
                meta=self._optional(line, "meta", dict),
                checksum=self._optional(line, "checksum", str),
            )
            if item.full_name in seen:
                raise self._error(f"{item.full_name!r} is listed twice")
            seen.add(item.full_name)
            items.append(item)
        return tuple(items)

    def _video(self, version: str, objects: Iterator[dict[str, Any]]) -> VideoManifest:
        properties = self._field(next(objects, None), "properties", dict)
        name = self._field(properties, "name", str)
        resolution = self._field(properties, "resolution", list)
        if len(resolution) != 2 or not all(_is_int(v) and v > 0 for v in resolution):
            raise self._error(f"invalid resolution {resolution!r}")
        length = self._field(properties, "length", int)
        if length <= 0:
            raise self._error(f"invalid length {length}")
        keyframes: list[ManifestKeyFrame] = []
        for line in objects:
            key = ManifestKeyFrame(
                number=self._field(line, "number", int),
                pts=self._field(line, "pts", int),
                checksum=self._optional(line, "checksum", str),
            )
            if not 0 <= key.number < length:
                raise self._error(f"key frame {key.number} is outside frames 0..{length - 1}")
            if keyframes and key.number <= keyframes[-1].number:
                raise self._error(f"key frame {key.number} does not follow {keyframes[-1].number}")
            keyframes.append(key)
        if not keyframes:
            raise self._error("no key frames")
        return VideoManifest(version, name, resolution[0], resolution[1], length, tuple(keyframes))

    def _objects(self, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
        for text in lines:
            self._line_number += 1
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise self._error(f"not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise self._error("not a JSON object")
            yield value

    def _field(self, line: dict[str, Any] | None, key: str, kind: type[_T]) -> _T:
        if line is None:
            raise self._error(f"ends before its {key!r} line")
        value = line.get(key)
        if value is None:
            raise self._error(f"{key!r} is required")
        return self._typed(key, value, kind)

    def _optional(self, line: dict[str, Any], key: str, kind: type[_T]) -> _T | None:
        value = line.get(key)
        return None if value is None else self._typed(key, value, kind)

    def _typed(self, key: str, value: object, kind: type[_T]) -> _T:
        if not isinstance(value, kind) or (kind is int and not _is_int(value)):
            raise self._error(f"{key!r} must be {_KIND_NAMES[kind]}")
        return value

    def _error(self, reason: str) -> MediaError:
        if not self._line_number:
            return MediaError(self._file_name, f"empty manifest: {reason}")
        return MediaError(self._file_name, f"line {self._line_number}: {reason}")


_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "an object",
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
