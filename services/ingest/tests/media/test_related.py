import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.ingest.media import MediaError
from tessera.ingest.media.related import (
    detect_related_images,
    is_in_related_folder,
    related_folder_name,
    write_context_images_chunk,
)
from tessera.ingest.media.testing import make_test_image


def test_related_folder_name_turns_only_the_last_dot() -> None:
    assert related_folder_name("a/scene.v2.png") == "scene.v2_png"
    assert related_folder_name("0001.pcd") == "0001_pcd"
    assert related_folder_name("noext") == "noext"


def test_is_in_related_folder() -> None:
    assert is_in_related_folder("related_images/1_png/a.png")
    assert is_in_related_folder("set/related_images/1_png/a.png")
    assert not is_in_related_folder("related_images.png")
    assert not is_in_related_folder("set/my_related_images/a.png")


def test_2d_context_images_are_the_direct_images_of_the_frame_folder() -> None:
    files = [
        "set/1.png",
        "set/2.jpg",
        "set/related_images/1_png/right.png",
        "set/related_images/1_png/left.jpg",
        "set/related_images/1_png/notes.txt",
        "set/related_images/1_png/deeper/x.png",
        "set/related_images/2_png/wrong_extension.png",
        "related_images/1_png/other_folder.png",
    ]

    found = detect_related_images(["set/1.png", "set/2.jpg"], files, dimension="2d")

    assert found == {
        "set/1.png": ["set/related_images/1_png/left.jpg", "set/related_images/1_png/right.png"],
        "set/2.jpg": [],
    }


def test_3d_layouts() -> None:
    files = [
        # KITTI raw: velodyne scans and camera folders beside them
        "drive/velodyne_points/data/0000.bin",
        "drive/velodyne_points/data/0001.bin",
        "drive/IMAGE_00/data/0000.png",
        "drive/IMAGE_00/data/0001.png",
        "drive/image_01/data/0000.jpg",
        "drive/calib/data/0000.png",
        # pointcloud/ with related_images/<name>_pcd/
        "scan/pointcloud/a.pcd",
        "scan/related_images/a_pcd/front.png",
        "scan/related_images/a_pcd/back.png",
        # plain: images with the cloud's stem beside it
        "flat/b.pcd",
        "flat/b.png",
        "flat/bb.png",
        # a folder named after the cloud
        "c/c.pcd",
        "c/one.png",
        "c/two.jpg",
    ]
    frames = [
        "drive/velodyne_points/data/0000.pcd",
        "drive/velodyne_points/data/0001.pcd",
        "scan/pointcloud/a.pcd",
        "flat/b.pcd",
        "c/c.pcd",
    ]

    found = detect_related_images(frames, files, dimension="3d")

    assert found == {
        "drive/velodyne_points/data/0000.pcd": [
            "drive/IMAGE_00/data/0000.png",
            "drive/image_01/data/0000.jpg",
        ],
        "drive/velodyne_points/data/0001.pcd": ["drive/IMAGE_00/data/0001.png"],
        "scan/pointcloud/a.pcd": [
            "scan/related_images/a_pcd/back.png",
            "scan/related_images/a_pcd/front.png",
        ],
        "flat/b.pcd": ["flat/b.png"],
        "c/c.pcd": ["c/one.png", "c/two.jpg"],
    }


def test_context_images_chunk_names_entries_from_their_shared_folder(tmp_path: Path) -> None:
    left = make_test_image(tmp_path / "left.png", (16, 12), color=(0, 0, 255))
    right = make_test_image(tmp_path / "right.jpg", (8, 8), color=(0, 255, 0))
    buffer = io.BytesIO()

    write_context_images_chunk(
        [("s/related_images/1_png/left.png", left), ("s/related_images/1_png/right.jpg", right)],
        buffer,
    )

    with zipfile.ZipFile(buffer) as archive:
        assert archive.namelist() == ["left.png.jpg", "right.jpg.jpg"]
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
        decoded = Image.open(io.BytesIO(archive.read("left.png.jpg")))
    assert decoded.format == "JPEG"
    assert decoded.size == (16, 12)
    pixels = np.asarray(decoded.convert("RGB"), dtype=np.int32)
    assert np.abs(pixels[-1, -1] - (0, 0, 255)).max() < 8


def test_a_lone_context_image_keeps_its_base_name(tmp_path: Path) -> None:
    path = make_test_image(tmp_path / "x.png")
    buffer = io.BytesIO()

    write_context_images_chunk([("IMAGE_00/data/0000.png", path)], buffer)

    assert zipfile.ZipFile(buffer).namelist() == ["0000.png.jpg"]


def test_a_broken_context_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"not a png")

    with pytest.raises(MediaError) as caught:
        write_context_images_chunk([("related_images/1_png/x.png", path)], io.BytesIO())

    assert caught.value.file == "related_images/1_png/x.png"
