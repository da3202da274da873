"""Point clouds: PCD files (ASCII and binary) and KITTI ``.bin`` scans; their task chunks."""

import shutil
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError

POINTCLOUD_EXTENSIONS = frozenset({".pcd", ".bin"})

# The media type CVAT serves a point cloud frame with (its ``media.mimetypes``).
POINTCLOUD_MEDIA_TYPE = "image/x.point-cloud-data"

_KITTI_PCD_HEADER = (
    "VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
    "WIDTH {points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA binary\n"
)
# A fixed entry time keeps chunks byte-for-byte reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# A KITTI scan is a bare sequence of float32 x, y, z, intensity.
_KITTI_FIELDS = ("x", "y", "z", "intensity")
_KITTI_POINT_BYTES = 16

_MAX_HEADER_LINES = 64
_MAX_HEADER_LINE_BYTES = 4096
_SIZES_BY_TYPE = {"I": (1, 2, 4, 8), "U": (1, 2, 4, 8), "F": (4, 8)}


@dataclass(frozen=True)
class PointCloudInfo:
    """What a point cloud's header says, once checked against its data."""

    points: int
    width: int
    height: int
    fields: tuple[str, ...]


def is_pointcloud_name(name: str) -> bool:
    """Whether ``name`` has one of `POINTCLOUD_EXTENSIONS` (case-insensitive)."""
    return PurePosixPath(name).suffix.lower() in POINTCLOUD_EXTENSIONS


def read_pointcloud_info(path: StrPath) -> PointCloudInfo:
    """Read and check the point cloud at ``path``.

    ``.pcd``: the header (``FIELDS``, ``SIZE``, ``TYPE``, ``COUNT``, ``WIDTH``, ``HEIGHT``,
    ``POINTS``, ``DATA``) must be consistent, and the data must hold the points it declares:
    one line of the right number of values per point for ``ascii``, at least ``POINTS`` times
    the point size in bytes for ``binary``, and the declared compressed block for
    ``binary_compressed`` (not decompressed). ``.bin``: a positive multiple of 16 bytes. Raises
    `MediaError` otherwise.
    """
    file = Path(path)
    name = file.name
    suffix = file.suffix.lower()
    if suffix not in POINTCLOUD_EXTENSIONS:
        raise MediaError(name, f"unsupported point cloud extension {file.suffix!r}")
    try:
        if suffix == ".bin":
            return _kitti_info(name, file.stat().st_size)
        with file.open("rb") as stream:
            return _Pcd(name, stream).read()
    except FileNotFoundError:
        raise MediaError(name, "file not found") from None


def pcd_name(name: str) -> str:
    """The name a point cloud has in a task: a KITTI ``.bin`` scan becomes ``.pcd``, as in CVAT."""
    path = PurePosixPath(name)
    return str(path.with_suffix(".pcd")) if path.suffix.lower() == ".bin" else name


def kitti_to_pcd(source: StrPath, target: StrPath) -> PointCloudInfo:
    """Write the KITTI scan at ``source`` as a binary PCD at ``target``; what it holds.

    The header is the one CVAT writes when it converts ``.bin`` scans (``convert_bin_to_pcd``
    in ``cvat/apps/engine/media_extractors.py``): fields ``x y z intensity`` as 4-byte floats,
    ``WIDTH`` the number of points, ``HEIGHT 1``. The points follow as the scan stores them
    (little-endian float32, which is what CVAT writes back after reading them). Raises
    `MediaError` for a scan that is not a positive multiple of 16 bytes.
    """
    source_path = Path(source)
    try:
        info = _kitti_info(source_path.name, source_path.stat().st_size)
    except FileNotFoundError:
        raise MediaError(source_path.name, "file not found") from None
    header = _KITTI_PCD_HEADER.format(points=info.points).encode("ascii")
    with source_path.open("rb") as scan, Path(target).open("wb") as out:
        out.write(header)
        shutil.copyfileobj(scan, out)
    return info


def write_pointcloud_chunk(paths: Iterable[StrPath], out: BinaryIO) -> None:
    """Write CVAT's chunk of a 3D task to ``out``: a ZIP with stored entries.

    Entry ``i`` is ``f"{i:06d}.pcd"`` holding the bytes of the ``i``-th PCD file unchanged,
    as CVAT's ``ZipChunkWriter`` and ``ZipCompressedChunkWriter`` write point clouds for both
    qualities.
    """
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, path in enumerate(paths):
            entry = zipfile.ZipInfo(f"{index:06d}.pcd", date_time=_ZIP_DATE)
            entry.external_attr = 0o644 << 16
            with Path(path).open("rb") as source, archive.open(entry, "w") as target:
                shutil.copyfileobj(source, target)


def _kitti_info(name: str, size: int) -> PointCloudInfo:
    if size == 0 or size % _KITTI_POINT_BYTES:
        raise MediaError(
            name, f"a KITTI scan is a positive multiple of 16 bytes, this one has {size}"
        )
    points = size // _KITTI_POINT_BYTES
    return PointCloudInfo(points=points, width=points, height=1, fields=_KITTI_FIELDS)


class _Pcd:
    def __init__(self, name: str, stream: BinaryIO) -> None:
        self._name = name
        self._stream = stream

    def read(self) -> PointCloudInfo:
        header = self._header()
        fields = tuple(self._values(header, "FIELDS"))
        count = len(fields)
        sizes = self._integers(header, "SIZE", count)
        types = self._values(header, "TYPE", count)
        counts = self._integers(header, "COUNT", count) if "COUNT" in header else [1] * count
        for field, size, kind, repeat in zip(fields, sizes, types, counts, strict=True):
            if size not in _SIZES_BY_TYPE.get(kind, ()):
                raise self._error(f"field {field!r} has an invalid TYPE {kind} with SIZE {size}")
            if repeat <= 0:
                raise self._error(f"field {field!r} has an invalid COUNT {repeat}")
        (width,) = self._integers(header, "WIDTH", 1)
        (height,) = self._integers(header, "HEIGHT", 1)
        (points,) = self._integers(header, "POINTS", 1) if "POINTS" in header else [width * height]
        if width < 0 or height < 1 or points != width * height:
            raise self._error(f"POINTS {points} is not WIDTH {width} x HEIGHT {height}")
        (data,) = self._values(header, "DATA", 1)
        point_bytes = sum(size * repeat for size, repeat in zip(sizes, counts, strict=True))
        if data == "ascii":
            self._check_ascii(points, sum(counts))
        elif data == "binary":
            self._check_bytes(points * point_bytes)
        elif data == "binary_compressed":
            self._check_compressed(points * point_bytes)
        else:
            raise self._error(f"unknown DATA {data!r}")
        return PointCloudInfo(points=points, width=width, height=height, fields=fields)

    def _header(self) -> dict[str, list[str]]:
        header: dict[str, list[str]] = {}
        for _ in range(_MAX_HEADER_LINES):
            raw = self._stream.readline(_MAX_HEADER_LINE_BYTES)
            if not raw:
                raise self._error("the header ends before its DATA line")
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                raise self._error("the header is not ASCII text") from None
            if not line or line.startswith("#"):
                continue
            key, *values = line.split()
            header[key.upper()] = values
            if key.upper() == "DATA":
                return header
        raise self._error(f"no DATA line within {_MAX_HEADER_LINES} header lines")

    def _values(self, header: dict[str, list[str]], key: str, count: int = 0) -> list[str]:
        values = header.get(key)
        if not values:
            raise self._error(f"the header has no {key}")
        if count and len(values) != count:
            raise self._error(f"{key} has {len(values)} values, expected {count}")
        return values

    def _integers(self, header: dict[str, list[str]], key: str, count: int) -> list[int]:
        try:
            return [int(value) for value in self._values(header, key, count)]
        except ValueError:
            raise self._error(f"{key} must be integers") from None

    def _check_ascii(self, points: int, values_per_point: int) -> None:
        lines = 0
        for raw in self._stream:
            tokens = raw.split()
            if not tokens:
                continue
            lines += 1
            if len(tokens) != values_per_point:
                raise self._error(
                    f"point {lines - 1} has {len(tokens)} values, expected {values_per_point}"
                )
        if lines != points:
            raise self._error(f"declares {points} points but holds {lines}")

    def _check_bytes(self, expected: int) -> None:
        available = self._remaining()
        if available < expected:
            raise self._error(f"truncated: {expected} bytes of points expected, {available} left")

    def _check_compressed(self, uncompressed: int) -> None:
        sizes = self._stream.read(8)
        if len(sizes) < 8:
            raise self._error("truncated: the compressed block has no size header")
        compressed_size, declared_uncompressed = struct.unpack("<II", sizes)
        if declared_uncompressed != uncompressed:
            raise self._error(
                f"the compressed block holds {declared_uncompressed} bytes, "
                f"the header implies {uncompressed}"
            )
        self._check_bytes(compressed_size)

    def _remaining(self) -> int:
        position = self._stream.tell()
        end = self._stream.seek(0, 2)
        self._stream.seek(position)
        return end - position

    def _error(self, reason: str) -> MediaError:
        return MediaError(self._name, f"not a valid PCD file ({reason})")
