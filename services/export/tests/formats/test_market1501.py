"""Market-1501 1.0: the image lists CVAT writes (expected lines written by hand from CVAT's
market1501.py, its `LabelAttrToAttr` transform and its datumaro fork's
`Market1501Converter`), datumaro as an independent reader, and flat memory."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats import market1501 as writer
from tessera.export.formats.market1501 import image_path, image_paths, write_market1501
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

from .support import GeneratedDataset, export_files, import_with_datumaro, peak_memory

# the label CVAT's docs and tests give: query (here a select, as in CVAT's tests),
# camera_id and person_id numbers
MARKET = Label(
    1,
    "market-1501",
    "tag",
    "#000000",
    (
        AttributeSpec(1, "query", "select", False, ("True", "False"), "False"),
        AttributeSpec(2, "camera_id", "number", False, ("0", "5", "1"), "0"),
        AttributeSpec(3, "person_id", "number", False, ("0", "2000", "1"), "0"),
    ),
)
PERSON = Label(2, "person", "rectangle", "#ff0000")

TASK = TaskInfo(
    id=4, name="reid", mode="annotation", dimension="2d", size=9, labels=(MARKET, PERSON)
)


def _market(**values: str) -> Tag:
    return Tag(MARKET.id, attributes=values)


FRAMES = (
    # already a Market-1501 name: kept
    FrameAnnotations(
        FrameInfo(0, "0001_c2s1_000015_00.jpg", 64, 128),
        tags=(_market(person_id="1", camera_id="1"),),
    ),
    FrameAnnotations(
        FrameInfo(1, "0002_c1s1_000020_01.jpg", 64, 128), tags=(_market(query="True"),)
    ),
    # renamed: person_id a number (so "7.0"), camera_id + 1, track 1, frame 0, box 0
    FrameAnnotations(
        FrameInfo(2, "cam/img.jpg", 64, 128),
        tags=(_market(query="True", camera_id="2", person_id="7"),),
    ),
    FrameAnnotations(FrameInfo(3, "b.png", 64, 128)),
    FrameAnnotations(
        FrameInfo(4, "c.jpg", 64, 128),
        shapes=(Shape("rectangle", PERSON.id, (1, 2, 3, 4)),),
        tags=(_market(person_id="12"),),
    ),
    # two market-1501 tags: neither is read
    FrameAnnotations(
        FrameInfo(5, "d.jpg", 64, 128), tags=(_market(person_id="5"), _market(person_id="6"))
    ),
    # person 0 is no person: the name stays
    FrameAnnotations(FrameInfo(6, "e.jpg", 64, 128), tags=(_market(camera_id="3"),)),
    FrameAnnotations(
        FrameInfo(7, "f.jpg", 64, 128, subset="test"),
        tags=(_market(person_id="3", camera_id="4"),),
    ),
    FrameAnnotations(FrameInfo(8, "frame_000008", 64, 128), tags=(_market(person_id="2"),)),
)
DATASET = InMemoryDataset(TASK, FRAMES)

EXPECTED_DEFAULT = (
    "bounding_box_default/0001_c2s1_000015_00.jpg\n"
    "query/0002_c1s1_000020_01.jpg\n"
    "query/cam/7.0_c3s1_000000_00.jpg\n"
    "bounding_box_default/b.png\n"
    "bounding_box_default/12.0_c1s1_000000_00.jpg\n"
    "bounding_box_default/d.jpg\n"
    "bounding_box_default/e.jpg\n"
    "bounding_box_default/2.0_c1s1_000000_00.PNG\n"  # a video frame: CVAT's ".PNG"
)
EXPECTED_TEST = "bounding_box_test/3.0_c5s1_000000_00.jpg\n"


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_market1501, dataset, options)


def test_lists_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == ["images_default.txt", "images_test.txt"]
    assert files["images_default.txt"].decode() == EXPECTED_DEFAULT
    assert files["images_test.txt"].decode() == EXPECTED_TEST
    # the images go exactly where the lists say
    listed = [line for content in files.values() for line in content.decode().splitlines()]
    assert [path for item in FRAMES for path in image_paths(item, TASK)] == [
        *listed[:7],
        listed[8],
        listed[7],
    ]
    assert image_path(FRAMES[2].frame, "default") == "bounding_box_default/cam/img.jpg"


def test_text_and_checkbox_attributes() -> None:
    label = Label(
        1,
        "market-1501",
        "tag",
        "#000000",
        (
            AttributeSpec(1, "query", "checkbox", False, ("false",), "false"),
            AttributeSpec(2, "camera_id", "text", False, (), "0"),
            AttributeSpec(3, "person_id", "text", False, (), ""),
            AttributeSpec(4, "track_id", "number", False, ("1", "9", "1"), "1"),
            AttributeSpec(5, "frame_id", "number", False, ("0", "999", "1"), "0"),
            AttributeSpec(6, "bbox_id", "number", False, ("0", "9", "1"), "0"),
        ),
    )
    task = dataclasses.replace(TASK, labels=(label,))

    def tagged(**values: str) -> FrameAnnotations:
        return FrameAnnotations(FrameInfo(0, "x.jpg", 8, 8), tags=(Tag(1, attributes=values),))

    # text values are written as given, numbers read with int()
    full = tagged(query="true", camera_id="1", person_id="0042", track_id="3", frame_id="17")
    assert image_paths(full, task) == ["query/0042_c2s3_000017_00.jpg"]
    # a camera int() cannot read takes its default, 0 (CVAT would fail the export)
    assert image_paths(tagged(camera_id="x", person_id="5", bbox_id="2"), task) == [
        "bounding_box_default/5_c1s1_000000_02.jpg"
    ]
    assert image_paths(tagged(), task) == ["bounding_box_default/x.jpg"]  # no person


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "market1501")
    items = {(item.subset, item.id): item for item in dataset}
    assert len(items) == 9
    # the ids are the listed paths without the folder and extension
    assert set(items) == {
        ("default", "0001_c2s1_000015_00"),
        ("default", "0002_c1s1_000020_01"),
        ("default", "cam/7.0_c3s1_000000_00"),
        ("default", "b"),
        ("default", "12.0_c1s1_000000_00"),
        ("default", "d"),
        ("default", "e"),
        ("default", "2.0_c1s1_000000_00"),
        ("test", "3.0_c5s1_000000_00"),
    }
    first = items["default", "0001_c2s1_000015_00"].attributes
    assert first == {
        "person_id": "0001",
        "camera_id": 1,
        "track_id": 1,
        "frame_id": 15,
        "bbox_id": 0,
        "query": False,
    }
    # a float person id is no Market-1501 name to datumaro (nor to CVAT's importer)
    assert items["default", "12.0_c1s1_000000_00"].attributes == {}


def test_annotated_only_empty_and_point_clouds() -> None:
    files = asyncio.run(_export(DATASET, ExportOptions(annotated_only=True)))
    assert files["images_default.txt"].decode() == EXPECTED_DEFAULT.replace(
        "bounding_box_default/b.png\n", ""
    )
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert empty == {"images_default.txt": b""}
    with pytest.raises(ValueError, match="2D format"):
        asyncio.run(_export(InMemoryDataset(dataclasses.replace(TASK, dimension="3d"), ())))


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 64, 128, ("train", "test")[index % 2]),
        tags=(_market(person_id=str(index), camera_id=str(index % 6)),),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_market1501, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_SPOOL_BYTES", 16 << 10)
    monkeypatch.setattr(writer, "_COPY_BYTES", 8 << 10)
    _peak_memory(20)
    small, large = _peak_memory(500), _peak_memory(5000)
    assert large < small * 1.3 + (1 << 20), (small, large)
