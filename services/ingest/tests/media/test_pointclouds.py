import struct
from pathlib import Path

import numpy as np
import pytest

from tessera.ingest.media import (
    MediaError,
    PointCloudInfo,
    is_pointcloud_name,
    read_pointcloud_info,
)

HEADER = """# .PCD v0.7 - Point Cloud Data file format
VERSION 0.7
FIELDS x y z rgb
SIZE 4 4 4 4
TYPE F F F U
COUNT 1 1 1 1
WIDTH {width}
HEIGHT {height}
VIEWPOINT 0 0 0 1 0 0 0
POINTS {points}
DATA {data}
"""


def pcd(
    path: Path, data: str, body: bytes, *, width: int = 3, height: int = 1, points: int = 3
) -> Path:
    header = HEADER.format(width=width, height=height, points=points, data=data)
    path.write_bytes(header.encode() + body)
    return path


def test_is_pointcloud_name() -> None:
    assert is_pointcloud_name("scan/0001.PCD")
    assert is_pointcloud_name("0001.bin")
    assert not is_pointcloud_name("0001.ply")


def test_ascii_pcd(tmp_path: Path) -> None:
    path = pcd(tmp_path / "a.pcd", "ascii", b"0 0 0 1\n1.5 2 3 4\n\n-1 -2 -3 5\n")

    assert read_pointcloud_info(path) == PointCloudInfo(3, 3, 1, ("x", "y", "z", "rgb"))


def test_binary_pcd_organised(tmp_path: Path) -> None:
    body = np.zeros((2, 3, 4), dtype=np.float32).tobytes()
    path = pcd(tmp_path / "b.pcd", "binary", body, width=3, height=2, points=6)

    assert read_pointcloud_info(path) == PointCloudInfo(6, 3, 2, ("x", "y", "z", "rgb"))


def test_binary_compressed_pcd(tmp_path: Path) -> None:
    body = struct.pack("<II", 10, 48) + bytes(10)
    path = pcd(tmp_path / "c.pcd", "binary_compressed", body)

    assert read_pointcloud_info(path).points == 3


@pytest.mark.parametrize(
    ("data", "body", "kwargs", "reason"),
    [
        ("binary", bytes(47), {}, "truncated: 48 bytes of points expected, 47 left"),
        ("ascii", b"0 0 0 1\n1 1 1 1\n", {}, "declares 3 points but holds 2"),
        ("ascii", b"0 0 0 1\n1 1 1\n2 2 2 2\n", {}, "point 1 has 3 values, expected 4"),
        ("binary", bytes(48), {"points": 4}, "POINTS 4 is not WIDTH 3 x HEIGHT 1"),
        ("lzma", b"", {}, "unknown DATA 'lzma'"),
        (
            "binary_compressed",
            struct.pack("<II", 10, 40) + bytes(10),
            {},
            "the compressed block holds 40 bytes, the header implies 48",
        ),
        (
            "binary_compressed",
            struct.pack("<II", 10, 48) + bytes(9),
            {},
            "truncated: 10 bytes of points expected, 9 left",
        ),
    ],
)
def test_inconsistent_pcd(
    tmp_path: Path, data: str, body: bytes, kwargs: dict[str, int], reason: str
) -> None:
    path = pcd(tmp_path / "bad.pcd", data, body, **kwargs)

    with pytest.raises(MediaError) as caught:
        read_pointcloud_info(path)

    assert str(caught.value) == f"bad.pcd: not a valid PCD file ({reason})"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"", "the header ends before its DATA line"),
        (b"VERSION 0.7\nFIELDS x y\n", "the header ends before its DATA line"),
        (b"FIELDS x y\nSIZE 4\nTYPE F F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n", "SIZE has 1 values"),
        (b"FIELDS x\nSIZE 4\nTYPE F\nWIDTH one\nHEIGHT 1\nDATA ascii\n", "WIDTH must be integers"),
        (
            b"FIELDS x\nSIZE 3\nTYPE F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n",
            "field 'x' has an invalid TYPE F with SIZE 3",
        ),
        (b"FIELDS x\nTYPE F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n", "the header has no SIZE"),
        (b"\xff\xfe garbage\n", "the header is not ASCII text"),
        (b"# comment\n" * 70, "no DATA line within 64 header lines"),
    ],
)
def test_bad_pcd_header(tmp_path: Path, header: bytes, reason: str) -> None:
    path = tmp_path / "bad.pcd"
    path.write_bytes(header)

    with pytest.raises(MediaError, match=rf"^bad\.pcd: not a valid PCD file \({reason}"):
        read_pointcloud_info(path)


def test_kitti_bin(tmp_path: Path) -> None:
    path = tmp_path / "000001.bin"
    path.write_bytes(np.zeros((5, 4), dtype=np.float32).tobytes())

    assert read_pointcloud_info(path) == PointCloudInfo(5, 5, 1, ("x", "y", "z", "intensity"))


@pytest.mark.parametrize("size", [0, 17, 30])
def test_kitti_bin_of_wrong_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "000001.bin"
    path.write_bytes(bytes(size))

    with pytest.raises(
        MediaError, match=rf"^000001\.bin: .* multiple of 16 bytes, this one has {size}$"
    ):
        read_pointcloud_info(path)


def test_missing_or_unsupported(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^gone\.pcd: file not found$"):
        read_pointcloud_info(tmp_path / "gone.pcd")
    with pytest.raises(MediaError, match=r"^gone\.bin: file not found$"):
        read_pointcloud_info(tmp_path / "gone.bin")
    with pytest.raises(MediaError, match=r"^cloud\.ply: unsupported point cloud extension"):
        read_pointcloud_info(tmp_path / "cloud.ply")
