"""Safe extraction of uploaded archives (zip and tar, plain or compressed)."""

import contextlib
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

# macOS archivers add these; CVAT skips them too (files_to_ignore in media_extractors.py).
_JUNK_DIRECTORIES = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store", "._.DS_Store"})

_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_BLOCK = 1 << 20


def is_archive_name(name: str) -> bool:
    """Whether ``name`` ends with one of `ARCHIVE_SUFFIXES` (case-insensitive)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_archive(
    path: StrPath, dest_dir: StrPath, *, max_total_bytes: int, max_files: int, max_ratio: float
) -> list[str]:
    """Extract the archive at ``path`` into ``dest_dir`` and return the files it wrote.

    Supported: ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``. The result
    lists extracted regular files as POSIX paths relative to ``dest_dir``, in archive order;
    directories are created as needed, and macOS junk (``__MACOSX/``, ``.DS_Store``) is skipped.

    Refused with `MediaError` naming the archive and the entry: absolute paths, ``..``
    components, symbolic and hard links, devices and FIFOs, duplicate entries, entries that
    would overwrite an existing file; more than ``max_files`` files; more than
    ``max_total_bytes`` uncompressed bytes, or more than ``max_ratio`` times the archive's own
    size. Byte limits are checked against declared sizes before extraction where the format
    declares them (zip) and against the bytes actually written in any case, so a header that
    lies cannot get past them. On any error everything this call created is removed.
    """
    archive = Path(path)
    name = archive.name
    if not is_archive_name(name):
        raise MediaError(name, "unsupported archive type")
    try:
        archive_size = archive.stat().st_size
    except FileNotFoundError:
        raise MediaError(name, "file not found") from None
    writer = _Writer(
        name,
        Path(dest_dir),
        max_total_bytes=max_total_bytes,
        max_files=max_files,
        max_ratio=max_ratio,
        archive_size=archive_size,
    )
    try:
        if name.lower().endswith(".zip"):
            _extract_zip(archive, writer)
        else:
            _extract_tar(archive, writer)
    except MediaError:
        writer.rollback()
        raise
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        zlib.error,
        lzma.LZMAError,
        EOFError,
        OSError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as exc:
        # RuntimeError: an encrypted zip entry; NotImplementedError: an unsupported zip
        # compression method; the others: a corrupt or truncated archive.
        writer.rollback()
        # An OSError's text carries server paths; its strerror does not.
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        detail = detail or type(exc).__name__
        if writer.current_entry is None:
            raise MediaError(name, f"corrupt or unsupported archive ({detail})") from None
        raise writer.error(
            writer.current_entry, f"corrupt or unsupported data ({detail})"
        ) from None
    return writer.files


def _extract_zip(archive: Path, writer: "_Writer") -> None:
    with zipfile.ZipFile(archive) as zf:
        entries = zf.infolist()
        writer.check_declared((entry.filename, entry.file_size) for entry in entries)
        for entry in entries:
            relative = writer.relative_name(entry.filename)
            if relative is None:
                continue
            kind = _zip_kind(entry)
            if kind == "directory":
                writer.add_directory(relative)
            elif kind == "file":
                with zf.open(entry) as source:
                    writer.add_file(relative, source)
            else:
                raise writer.error(relative, f"{kind} entries are not allowed")


def _zip_kind(entry: zipfile.ZipInfo) -> str:
    if entry.is_dir():
        return "directory"
    mode = entry.external_attr >> 16
    # Only archivers on Unix (create_system 3) record a file type in the high bits.
    if entry.create_system != 3 or stat.S_IFMT(mode) in (0, stat.S_IFREG):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return _special_kind(mode)


def _special_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    return "special file"


def _extract_tar(archive: Path, writer: "_Writer") -> None:
    # Stream mode ("r|*") reads the compressed data once, front to back, and never seeks.
    with tarfile.open(archive, mode="r|*") as tf:
        for member in tf:
            relative = writer.relative_name(member.name)
            if relative is None:
                continue
            if member.isdir():
                writer.add_directory(relative)
            elif member.isreg():
                writer.check_declared([(member.name, member.size)])
                source = tf.extractfile(member)
                if source is None:
                    raise writer.error(relative, "unreadable entry")
                with source:
                    writer.add_file(relative, source)
            else:
                raise writer.error(relative, f"{_tar_kind(member)} entries are not allowed")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.isdev():
        return "FIFO" if member.isfifo() else "device"
    return "special file"


class _Writer:
    """Writes entries under the destination, keeps the limits and can undo its work."""

    def __init__(
        self,
        archive_name: str,
        dest: Path,
        *,
        max_total_bytes: int,
        max_files: int,
        max_ratio: float,
        archive_size: int,
    ) -> None:
        self._archive_name = archive_name
        self._dest = dest
        self._max_total_bytes = max_total_bytes
        self._max_files = max_files
        self._max_ratio = max_ratio
        self._max_bytes_by_ratio = max_ratio * max(archive_size, 1)
        self._created: list[Path] = []
        self._declared_bytes = 0
        self._declared_files = 0
        self._written_bytes = 0
        self._seen: set[str] = set()
        self.files: list[str] = []
        # The entry being written, so that a failure while reading it can name it.
        self.current_entry: str | None = None
        self._make_directories(dest, ".")
        self._dest_real = os.path.realpath(dest)

    def error(self, entry: str, reason: str) -> MediaError:
        return MediaError(self._archive_name, f"entry {entry!r}: {reason}")

    def relative_name(self, raw: str) -> str | None:
        """The entry's safe relative POSIX path, or None for an entry to skip."""
        name = raw.replace("\\", "/")
        if "\0" in name:
            raise self.error(raw, "the name contains a NUL character")
        if name.startswith("/") or _DRIVE.match(name):
            raise self.error(raw, "absolute paths are not allowed")
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.error(raw, "'..' components are not allowed")
        if not parts or _JUNK_DIRECTORIES.intersection(parts) or parts[-1] in _JUNK_FILES:
            return None
        return "/".join(parts)

    def check_declared(self, entries: Iterable[tuple[str, int]]) -> None:
        """Check the sizes that entry headers declare against the limits, before writing."""
        for entry, size in entries:
            if entry.endswith("/"):
                continue
            self._declared_files += 1
            self._declared_bytes += size
            self._check_limits(
                entry, self._declared_files, self._declared_bytes, "declared sizes add up to"
            )

    def add_directory(self, relative: str) -> None:
        self._claim(relative)
        self._make_directories(self._dest / relative, relative)
        self.current_entry = None

    def add_file(self, relative: str, source: IO[bytes]) -> None:
        self._claim(relative)
        target = self._dest / relative
        self._make_directories(target.parent, relative)
        if not os.path.realpath(target).startswith(self._dest_real + os.sep):
            raise self.error(relative, "the path leaves the destination directory")
        try:
            output = target.open("xb")
        except FileExistsError:
            raise self.error(relative, "a file of that name already exists") from None
        except OSError as exc:
            raise self.error(relative, f"cannot create the file ({exc.strerror})") from None
        self._created.append(target)
        with output:
            while block := source.read(_COPY_BLOCK):
                output.write(block)
                self._written_bytes += len(block)
                self._check_limits(
                    relative, len(self.files) + 1, self._written_bytes, "extracted data is"
                )
        self.files.append(relative)
        self.current_entry = None

    def rollback(self) -> None:
        """Remove every file and directory this writer created, newest first."""
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
        self._created.clear()
        self.files.clear()

    def _claim(self, relative: str) -> None:
        if relative in self._seen:
            raise self.error(relative, "duplicate entry")
        self._seen.add(relative)
        self.current_entry = relative

    def _check_limits(self, entry: str, files: int, total_bytes: int, what: str) -> None:
        if files > self._max_files:
            raise self.error(entry, f"the archive holds more than {self._max_files} files")
        if total_bytes > self._max_total_bytes:
            raise self.error(entry, f"{what} more than {self._max_total_bytes} bytes")
        if total_bytes > self._max_bytes_by_ratio:
            raise self.error(
                entry, f"{what} more than {self._max_ratio:g} times the archive's own size"
            )

    def _make_directories(self, directory: Path, entry: str) -> None:
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        if not current.is_dir():
            raise self.error(entry, "a file stands where a directory is needed")
        for path in reversed(missing):
            try:
                path.mkdir()
            except OSError as exc:
                raise self.error(entry, f"cannot create a directory ({exc.strerror})") from None
            self._created.append(path)
