import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tessera.ingest.media import MediaError, read_pointcloud_info
from tessera.ingest.media.pointclouds import kitti_to_pcd, pcd_name, write_pointcloud_chunk

CVAT_KITTI_HEADER = (
    b"VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
    b"WIDTH 3\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 3\nDATA binary\n"
)


def test_pcd_name() -> None:
    assert pcd_name("drive/velodyne_points/data/0000.bin") == "drive/velodyne_points/data/0000.pcd"
    assert pcd_name("a.BIN") == "a.pcd"
    assert pcd_name("a.pcd") == "a.pcd"


def test_a_kitti_scan_becomes_cvats_binary_pcd(tmp_path: Path) -> None:
    points = np.arange(12, dtype="<f4").reshape(3, 4) * 1.5
    source = tmp_path / "0000.bin"
    source.write_bytes(points.tobytes())

    info = kitti_to_pcd(source, tmp_path / "0000.pcd")

    written = (tmp_path / "0000.pcd").read_bytes()
    assert written == CVAT_KITTI_HEADER + points.tobytes()
    assert (info.points, info.width, info.height) == (3, 3, 1)
    assert read_pointcloud_info(tmp_path / "0000.pcd") == info


def test_a_truncated_kitti_scan_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "0000.bin"
    source.write_bytes(bytes(20))

    with pytest.raises(MediaError) as caught:
        kitti_to_pcd(source, tmp_path / "0000.pcd")

    assert caught.value.file == "0000.bin"
    assert not (tmp_path / "0000.pcd").exists()


def test_pointcloud_chunk_stores_the_files_unchanged(tmp_path: Path) -> None:
    first, second = tmp_path / "b.pcd", tmp_path / "a.pcd"
    first.write_bytes(b"first cloud")
    second.write_bytes(b"second cloud")
    buffer = io.BytesIO()

    write_pointcloud_chunk([first, second], buffer)

    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == ["000000.pcd", "000001.pcd"]
        assert archive.read("000000.pcd") == b"first cloud"
        assert archive.read("000001.pcd") == b"second cloud"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
