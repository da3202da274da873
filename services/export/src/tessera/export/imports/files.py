"""The files of an uploaded annotation file, read defensively.

An upload is a zip archive or a single file (an XML, JSON or text file, as CVAT accepts
for some formats). `ImportFiles` lists and reads its members by normalised POSIX path;
a single file is an archive of one member, under its own name. Nothing is extracted to
disk. Hostile uploads fail with `ImportFailed` before any of them is read:

- a member path that is absolute, climbs out of the archive (`..`) or names a drive;
- more than `Limits.members` members, or members that would inflate past
  `Limits.total_bytes` in all, or one that inflates more than `Limits.ratio` times;
- reading never returns more than a member's declared size (zipfile stops there and
  checks the CRC), so a member that lies about its size fails instead of flooding memory.

XML is parsed with defusedxml (`parse_xml`, `iterparse_xml`): no DTDs, entities or
external references. JSON is parsed with orjson (`load_json`); malformed documents fail
with the member's name.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element

import orjson
from defusedxml import ElementTree as SafeElementTree  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]


class ImportFailed(ValueError):
    """The upload cannot be imported; the message says why, for the request's result."""


@dataclass(frozen=True)
class Limits:
    """How much an upload may hold once inflated."""

    members: int = 1_000_000
    total_bytes: int = 16 << 30
    ratio: int = 1_000
    """Largest inflation of one member (bytes out per byte in), past its first MiB."""


DEFAULT_LIMITS = Limits()
_SMALL = 1 << 20


def _normalised(name: str) -> str:
    """The member's path as readers look it up; ImportFailed for a path that leaves the
    archive."""
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ImportFailed(f"The archive member {name!r} has an absolute path.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ImportFailed(f"The archive member {name!r} points outside the archive.")
    return "/".join(parts)


class ImportFiles:
    """The members of an upload (see the module's docstring)."""

    def __init__(self, path: Path, filename: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self._path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, zipfile.ZipInfo | None] = {}
        if zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self._check(self._zip.infolist(), limits)
        else:
            base = filename.replace("\\", "/").rsplit("/", 1)[-1]
            self._members[_normalised(base or "annotations")] = None

    def _check(self, infos: list[zipfile.ZipInfo], limits: Limits) -> None:
        if len(infos) > limits.members:
            raise ImportFailed(f"The archive has more than {limits.members} members.")
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            name = _normalised(info.filename)
            total += info.file_size
            if info.file_size > _SMALL and info.file_size > limits.ratio * max(
                info.compress_size, 1
            ):
                raise ImportFailed(
                    f"The archive member {info.filename!r} inflates {info.file_size} bytes "
                    f"from {info.compress_size}: refused as a zip bomb."
                )
            self._members[name] = info
        if total > limits.total_bytes:
            raise ImportFailed(
                f"The archive inflates to {total} bytes, more than {limits.total_bytes}."
            )

    def close(self) -> None:
        """Close the archive."""
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ImportFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def names(self) -> list[str]:
        """Every member's normalised path, in archive order."""
        return list(self._members)

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def size(self, name: str) -> int:
        """A member's (declared) size in bytes."""
        info = self._info(name)
        return self._path.stat().st_size if info is None else info.file_size

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        if name not in self._members:
            raise ImportFailed(f"The upload has no file {name!r}.")
        return self._members[name]

    def open(self, name: str) -> IO[bytes]:
        """A member, to read as a stream."""
        info = self._info(name)
        if info is None:
            return self._path.open("rb")
        assert self._zip is not None
        return self._zip.open(info)

    def read(self, name: str) -> bytes:
        """A member's bytes."""
        with self.open(name) as stream:
            try:
                return stream.read()
            except (zipfile.BadZipFile, OSError) as exc:
                raise ImportFailed(f"The archive member {name!r} is damaged: {exc}") from None

    def text(self, name: str) -> str:
        """A member as UTF-8 text (a BOM is dropped)."""
        try:
            return self.read(name).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{name} is not UTF-8 text: {exc}") from None

    def load_json(self, name: str) -> Any:
        """A member parsed as JSON."""
        try:
            return orjson.loads(self.read(name))
        except orjson.JSONDecodeError as exc:
            raise ImportFailed(f"{name} is not valid JSON: {exc}") from None

    def parse_xml(self, name: str) -> Element:
        """A member parsed as XML, without DTDs or entities."""
        with self.open(name) as stream:
            return parse_xml(stream, name)

    def iterparse_xml(
        self, name: str, events: tuple[str, ...] = ("end",)
    ) -> Iterator[tuple[str, Element]]:
        """A member's XML events as it is read (for large files), without DTDs or
        entities."""
        with self.open(name) as stream:
            try:
                yield from SafeElementTree.iterparse(stream, events=events, forbid_dtd=True)
            except (SafeElementTree.ParseError, DefusedXmlException) as exc:
                raise ImportFailed(f"{name} is not XML Tessera reads: {exc}") from None

    def matching(self, suffix: str, under: str = "") -> list[str]:
        """Members under a folder (`under`, no trailing slash; "" for all) whose names end
        with `suffix` (case-insensitive), in archive order."""
        prefix = f"{under}/" if under else ""
        suffix = suffix.lower()
        return [
            name
            for name in self._members
            if name.startswith(prefix) and name.lower().endswith(suffix)
        ]


def parse_xml(stream: IO[bytes], name: str) -> Element:
    """XML from a stream, without DTDs or entities; ImportFailed naming `name` otherwise."""
    try:
        root: Element = SafeElementTree.parse(stream, forbid_dtd=True).getroot()
    except (SafeElementTree.ParseError, DefusedXmlException) as exc:
        raise ImportFailed(f"{name} is not XML Tessera reads: {exc}") from None
    return root


def files_of(data: bytes, filename: str, directory: Path) -> ImportFiles:
    """`ImportFiles` over bytes written to `directory` (for tests and small uploads)."""
    path = directory / (posixpath.basename(filename) or "upload")
    path.write_bytes(data)
    return ImportFiles(path, filename)


__all__ = ["DEFAULT_LIMITS", "ImportFailed", "ImportFiles", "Limits", "files_of", "parse_xml"]
