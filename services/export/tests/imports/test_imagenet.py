"""ImageNet 1.0 import: our writer's text archives and CVAT's image folders read back,
datasets laid out by hand, and hostile or wrong uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tessera.export.formats.imagenet import image_paths, write_imagenet
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.imagenet import read_imagenet
from tessera.export.imports.model import ParsedAnnotations
from tessera.export.model import (
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    Tag,
    TaskInfo,
)

from ..formats.support import export_files
from .support import upload, zipped

CAT = Label(1, "cat", "tag", "#ff0000")
DOG = Label(2, "dog", "tag", "#00ff00")
BOX = Label(3, "box", "rectangle", "#0000ff")
TASK = TaskInfo(
    id=1, name="pets", mode="annotation", dimension="2d", size=5, labels=(DOG, CAT, BOX)
)
FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "img0.jpg", 10, 10),
        shapes=(Shape("rectangle", BOX.id, (1, 1, 2, 2)),),
        tags=(Tag(CAT.id), Tag(DOG.id)),
    ),
    FrameAnnotations(FrameInfo(1, "img1.png", 10, 10)),
    FrameAnnotations(FrameInfo(2, "my image.jpg", 10, 10, "Test"), tags=(Tag(DOG.id),)),
    FrameAnnotations(FrameInfo(3, "seq/img3", 10, 10), tags=(Tag(CAT.id),)),
)
DATASET = InMemoryDataset(TASK, FRAMES)


def tags(parsed: ParsedAnnotations) -> list[tuple[object, str]]:
    return sorted((tag.frame, tag.label) for tag in parsed.tags)


def test_round_trip_of_the_text_layout(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_imagenet, DATASET))
    parsed = read_imagenet(files_of(zipped(files), "imagenet.zip", tmp_path))
    assert parsed.labels == ["cat", "dog", "box"]  # synsets.txt, by label id
    assert tags(parsed) == [
        ("img0.jpg", "cat"),
        ("img0.jpg", "dog"),
        ("my image.jpg", "dog"),  # written quoted
        ("seq/img3.PNG", "cat"),  # a video frame's name gets CVAT's ".PNG"
    ]
    assert not parsed.shapes


def test_round_trip_of_cvats_image_folders(tmp_path: Path) -> None:
    """CVAT with images writes only the images, a copy per tag label."""
    members: dict[str, bytes | str] = {
        path: b"\xff\xd8" for item in FRAMES for path in image_paths(item, TASK)
    }
    parsed = read_imagenet(upload(members, tmp_path))
    assert parsed.labels == ["cat", "dog"]
    assert tags(parsed) == [
        ("img0.jpg", "cat"),
        ("img0.jpg", "dog"),
        ("my image.jpg", "dog"),
        ("seq/img3.PNG", "cat"),
    ]


def test_text_layout_by_hand(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "ds/synsets.txt": "n01440764\nn01443537\r\nn01484850\n",
        "ds/train.txt": "a.JPEG 0\r\n\nb.JPEG 2 1\n  c.JPEG\n",
        "ds/val.txt": '"x y".png 1\n',
        "ds/images/a.JPEG": b"",
        "ds/notes/readme.txt": "not a list",
    }
    parsed = read_imagenet(upload(members, tmp_path))
    assert parsed.labels == ["n01440764", "n01443537", "n01484850"]
    assert tags(parsed) == [
        ("a.JPEG", "n01440764"),
        ("b.JPEG", "n01443537"),
        ("b.JPEG", "n01484850"),
        ("x y.png", "n01443537"),
    ]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"README.md": "x"}, r"not an ImageNet 1\.0 upload: no synsets\.txt or <label>/<image>"),
        ({"train.txt": "a.jpg 0\n"}, r"no synsets\.txt \(the label names of train\.txt\) found"),
        ({"synsets.txt": "a\n", "train.txt": "a.jpg 1\n"}, r"train\.txt line 1: label 1 is not"),
        ({"synsets.txt": "a\n", "train.txt": "\na.jpg -1\n"}, r"train\.txt line 2: label -1"),
        ({"synsets.txt": "\nb\n", "train.txt": "a.jpg 0\n"}, r"label 0 is not one of the labels"),
        ({"synsets.txt": "a\n", "train.txt": "a.jpg x\n"}, r"the label index 'x' is not a number"),
        ({"synsets.txt": "a\n", "train.txt": '"a"b".jpg 0\n'}, "quotes .* do not pair up"),
        ({"synsets.txt": "a\n", "train.txt": b"a.jpg 0\xfe\n"}, r"train\.txt is not UTF-8 text"),
    ],
)
def test_wrong_uploads(tmp_path: Path, members: dict[str, bytes | str], message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        read_imagenet(upload(members, tmp_path))
