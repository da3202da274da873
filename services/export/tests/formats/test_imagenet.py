"""ImageNet 1.0: the text files CVAT writes without images (expected lines written by hand
from CVAT's imagenet.py and its datumaro fork's `ImagenetTxtConverter`), the image paths of
CVAT's export with images, datumaro as an independent reader, and flat memory."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats import imagenet as writer
from tessera.export.formats.imagenet import image_path, image_paths, write_imagenet
from tessera.export.model import (
    AttributeSpec,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    Tag,
    TaskInfo,
)

from .support import GeneratedDataset, export_files, import_with_datumaro, label_names, peak_memory

# label ids 1..10 are tags (indices 0..9), 11 a box label (10), 12 a skeleton with point 13
TAGS = tuple(
    Label(
        index + 1,
        name,
        "tag",
        "#000000",
        (AttributeSpec(index + 1, "pose", "text", True, (), "any"),) if index == 0 else (),
    )
    for index, name in enumerate(
        ["cat", "dog", "bird", "fish", "horse", "cow", "sheep", "goat", "duck", "swan"]
    )
)
CAT, DOG, BIRD, FISH, *_, DUCK, SWAN = TAGS
BOX = Label(11, "box", "rectangle", "#ff0000")
HEAD = Label(13, "head", "points", "#aaaaaa", parent_id=12)
PERSON = Label(12, "person", "skeleton", "#123456", sublabels=(HEAD,))

TASK = TaskInfo(
    id=9,
    name="zoo",
    mode="annotation",
    dimension="2d",
    size=5,
    labels=(PERSON, BOX, *TAGS),  # listed in label id order, whatever the task's order
)

FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "my img.jpg", 64, 48),
        tags=(Tag(DOG.id), Tag(CAT.id, attributes={"pose": "sits"}), Tag(DOG.id)),
    ),
    FrameAnnotations(
        FrameInfo(1, "b.png", 64, 48), shapes=(Shape("rectangle", BOX.id, (1, 2, 3, 4)),)
    ),
    FrameAnnotations(FrameInfo(2, "dir/c.jpg", 64, 48), tags=(Tag(FISH.id), Tag(BOX.id))),
    FrameAnnotations(FrameInfo(3, "d.jpg", 64, 48), tags=(Tag(SWAN.id), Tag(DOG.id))),
    FrameAnnotations(FrameInfo(4, "e.jpg", 64, 48), tags=(Tag(DOG.id), Tag(SWAN.id))),
    FrameAnnotations(FrameInfo(5, "f.jpg", 64, 48, subset="train"), tags=(Tag(BIRD.id),)),
    FrameAnnotations(FrameInfo(6, "g.jpg", 64, 48)),
)
DATASET = InMemoryDataset(TASK, FRAMES)

# `<id><ext> <indices>`: the ids with whitespace quoted; the indices (cat 0 .. swan 9, box
# 10) in a Python set's order: {1, 0} iterates 0 1; {3, 10} iterates 10 3 (10 lands in
# slot 2 of 8); {9, 1} and {1, 9} collide in slot 1, so the first inserted comes first.
EXPECTED_DEFAULT = (
    '"my img".jpg 0 1\n'
    "b.png \n"  # a box is no tag: no labels, and the line keeps its space
    "dir/c.jpg 10 3\n"
    "d.jpg 9 1\n"
    "e.jpg 1 9\n"
    "g.jpg \n"
)
EXPECTED_TRAIN = "f.jpg 2\n"
EXPECTED_SYNSETS = "cat\ndog\nbird\nfish\nhorse\ncow\nsheep\ngoat\nduck\nswan\nbox\nperson\nhead\n"


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_imagenet, dataset, options)


def test_text_files_are_what_cvat_writes_without_images() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == ["default.txt", "train.txt", "synsets.txt"]
    assert files["default.txt"].decode() == EXPECTED_DEFAULT
    assert files["train.txt"].decode() == EXPECTED_TRAIN
    assert files["synsets.txt"].decode() == EXPECTED_SYNSETS


def test_image_paths() -> None:
    # beside the text files: datumaro's imagenet_txt image folder
    assert image_path(FRAMES[0].frame, "default") == "images/my img.jpg"
    assert image_path(FRAMES[2].frame, "train") == "images/dir/c.jpg"
    # CVAT's export with images: one copy per tag label, in the set's order, no_label/
    # without tags, and no folder of its own when the id's first folder is the label
    assert image_paths(FRAMES[0], TASK) == ["cat/my img.jpg", "dog/my img.jpg"]
    assert image_paths(FRAMES[1], TASK) == ["no_label/b.png"]
    assert image_paths(FRAMES[2], TASK) == ["box/dir/c.jpg", "fish/dir/c.jpg"]
    inside = FrameAnnotations(FrameInfo(0, "fish/x.jpg", 8, 8), tags=(Tag(FISH.id), Tag(CAT.id)))
    assert image_paths(inside, TASK) == ["cat/fish/x.jpg", "fish/x.jpg"]
    video = FrameAnnotations(FrameInfo(0, "frame_000000", 8, 8))
    assert image_path(video.frame, "default") == "images/frame_000000.PNG"
    assert image_paths(video, TASK) == ["no_label/frame_000000.PNG"]


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "imagenet_txt")
    names = label_names(dataset)
    assert names == EXPECTED_SYNSETS.split()
    items = {(item.subset, item.id): item for item in dataset}
    assert set(items) == {
        ("default", "my img"),
        ("default", "b"),
        ("default", "dir/c"),
        ("default", "d"),
        ("default", "e"),
        ("default", "g"),
        ("train", "f"),
    }
    counts = Counter(names[ann.label] for item in dataset for ann in item.annotations)
    assert counts == {"dog": 3, "cat": 1, "fish": 1, "box": 1, "swan": 2, "bird": 1}
    assert items["default", "b"].annotations == []
    assert items["default", "my img"].media.path.endswith("images/my img.jpg")


def test_annotated_only_empty_and_point_clouds() -> None:
    files = asyncio.run(_export(DATASET, ExportOptions(annotated_only=True)))
    # "b" keeps its line (it has a box), "g" has nothing and goes
    assert files["default.txt"].decode() == EXPECTED_DEFAULT.replace("g.jpg \n", "")
    empty = asyncio.run(_export(InMemoryDataset(dataclasses.replace(TASK, subset="val"), ())))
    assert empty == {"val.txt": b"", "synsets.txt": EXPECTED_SYNSETS.encode()}
    with pytest.raises(ValueError, match="2D format"):
        asyncio.run(_export(InMemoryDataset(dataclasses.replace(TASK, dimension="3d"), ())))


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 640, 480, ("a", "b")[index % 2]),
        tags=(Tag(TAGS[index % 10].id), Tag(BOX.id)),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_imagenet, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_SPOOL_BYTES", 16 << 10)
    monkeypatch.setattr(writer, "_COPY_BYTES", 8 << 10)
    _peak_memory(20)
    small, large = _peak_memory(500), _peak_memory(5000)
    assert large < small * 1.3 + (1 << 20), (small, large)
