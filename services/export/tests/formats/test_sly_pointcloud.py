"""Sly Point Cloud Format 1.0: the annotation files, key map and meta CVAT writes for a point
cloud task (the expected files are what the `_SuperviselyPointCloudDumper` of CVAT's
datumaro fork writes for the drive as CVAT's bindings hand it over, with keys numbered in
order of appearance; the tag registry is in this writer's order, and the pedestrian is
object 3 where CVAT's numbering would give it another's number), datumaro as an
independent reader, annotated_only, the point cloud and context image layout, and flat
memory."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats.cvat_xml import CvatTaskMeta
from tessera.export.formats.registry import PointCloudLayout, exporter_named
from tessera.export.formats.sly_pointcloud import write_sly_pointcloud
from tessera.export.model import ExportOptions, FrameAnnotations, InMemoryDataset, Shape

from .support import (
    DRIVE,
    DRIVE_CAR,
    DRIVE_TASK,
    GOLDEN,
    GeneratedDataset,
    cuboid,
    drive_frame,
    export_files,
    import_with_datumaro,
    label_and_type_counts,
    label_names,
    peak_memory,
    street_task,
)

META = CvatTaskMeta(
    created=datetime(2024, 5, 6, 10, 0, 0, 123456, tzinfo=UTC),
    updated=datetime(2024, 5, 7, 11, 30, tzinfo=UTC),
)
ANN = [f"ds0/ann/{index:010d}.pcd.json" for index in range(4)]
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def _export(
    dataset: Any, options: ExportOptions | None = None, meta: CvatTaskMeta | None = META
) -> dict[str, bytes]:
    async def write(dataset: Any, archive: zipfile.ZipFile, options: ExportOptions) -> None:
        await write_sly_pointcloud(dataset, archive, options, meta=meta)

    return await export_files(write, dataset, options)


def _numbered_keys(files: dict[str, bytes], names: list[str]) -> dict[str, bytes]:
    """The files with each key (a UUID) replaced by `<K n>`, numbered in order of
    appearance through the files in the order given."""
    numbers: dict[bytes, int] = {}

    def number(match: re.Match[bytes]) -> bytes:
        return b"<K%d>" % numbers.setdefault(match.group(0), len(numbers) + 1)

    return {name: _UUID.sub(number, files[name]) for name in names}


def test_files_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DRIVE))

    assert list(files) == [*ANN, "meta.json", "key_id_map.json"]
    numbered = _numbered_keys(files, [*ANN, "key_id_map.json"])
    assert numbered[ANN[0]] == (GOLDEN / "sly_pointcloud_ann_0000000000.pcd.json").read_bytes()
    assert numbered[ANN[2]] == (GOLDEN / "sly_pointcloud_ann_0000000002.pcd.json").read_bytes()
    assert numbered["key_id_map.json"] == (GOLDEN / "sly_pointcloud_key_id_map.json").read_bytes()
    assert files["meta.json"] == (GOLDEN / "sly_pointcloud_meta.json").read_bytes()
    # frame 1: the track's interpolated frame (not a keyframe), its object's key kept
    one = json.loads(numbered[ANN[1]])
    assert [(o["key"], o["classTitle"]) for o in one["objects"]] == [("<K9>", "car")]
    assert {t["name"]: t["value"] for t in one["objects"][0]["tags"]}["keyframe"] == "false"
    assert [f["objectKey"] for f in one["figures"]] == ["<K9>"]
    # frame 3: only the track's outside frame, so an empty item with its tags
    three = json.loads(numbered[ANN[3]])
    assert (three["objects"], three["figures"]) == ([], [])
    assert [tag["name"] for tag in three["tags"]] == ["name", "labels"]


def test_keys_are_distinct_uuids_and_the_export_is_reproducible() -> None:
    files = asyncio.run(_export(DRIVE))

    keys = [key for name in ANN for key in _UUID.findall(files[name])]
    declared = {
        key for name in ANN for data in [json.loads(files[name])] for key in
        [data["key"]]
        + [tag["key"] for tag in data["tags"]]
        + [o["key"] for o in data["objects"]]
        + [t["key"] for o in data["objects"] for t in o["tags"]]
        + [f["key"] for f in data["figures"]]
    }  # fmt: skip
    assert len(declared) == 42  # the track's object appears on 3 frames, under one key
    assert all(str(uuid.UUID(key)) == key for key in declared)
    assert {key.decode() for key in keys} == declared
    assert asyncio.run(_export(DRIVE)) == files


def test_dates_are_empty_without_the_meta_block() -> None:
    files = asyncio.run(_export(DRIVE, meta=None))

    first = json.loads(files[ANN[0]])
    assert {(tag["createdAt"], tag["updatedAt"]) for tag in first["tags"]} == {("", "")}
    assert {(f["createdAt"], f["updatedAt"]) for f in first["figures"]} == {("", "")}


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(DRIVE))

    dataset = import_with_datumaro(files, tmp_path, "sly_pointcloud")

    assert label_names(dataset) == ["car", "pedestrian", "rain"]
    assert label_and_type_counts(dataset) == {
        ("car", "cuboid_3d"): 4,
        ("pedestrian", "cuboid_3d"): 1,
    }
    items = {item.id: item for item in dataset}
    assert sorted(items) == ["0000000000", "0000000001", "0000000002", "0000000003"]
    assert [items[name].attributes["frame"] for name in sorted(items)] == [0, 1, 2, 3]
    assert items["0000000000"].attributes["name"] == "alice"
    names = label_names(dataset)
    found = {
        (item.id, names[ann.label], tuple(ann.position), tuple(ann.rotation), tuple(ann.scale),
         ann.attributes["track_id"], ann.attributes["occluded"])
        for item in dataset
        for ann in item.annotations
    }  # fmt: skip
    assert found == {
        ("0000000000", "car", (1.0, 2.68, -0.0), (0.1, -0.2, 3.14), (4.5, 1.9, 1.6), 1, True),
        ("0000000000", "car", (10.0, -2.5, 0.8), (0.0, 0.0, 1.57), (4.2, 1.8, 1.5), 2, False),
        ("0000000001", "car", (11.0, -2.25, 0.8), (0.0, 0.0, 1.6), (4.2, 1.8, 1.5), 2, False),
        ("0000000002", "car", (12.0, -2.0, 0.8), (0.0, 0.0, 1.63), (4.4, 1.8, 1.5), 2, False),
        ("0000000002", "pedestrian", (5.0, 5.0, 0.9), (0.0, 0.0, 0.0), (0.6, 0.7, 1.8), 3, False),
    }
    plain = next(ann for ann in items["0000000000"].annotations if ann.attributes["track_id"] == 1)
    assert {name: plain.attributes[name] for name in ("color", "parked", "speed")} == {
        "color": "blue", "parked": False, "speed": 12.5,
    }  # fmt: skip


def test_annotated_only() -> None:
    files = asyncio.run(_export(DRIVE, ExportOptions(annotated_only=True)))

    assert list(files) == [*ANN[:3], "meta.json", "key_id_map.json"]
    assert list(json.loads(files["key_id_map.json"])["videos"].values()) == [0, 1, 2]


def test_point_clouds_and_context_images_go_where_cvat_puts_them() -> None:
    exporter = exporter_named("Sly Point Cloud Format 1.0")
    assert exporter is not None
    assert exporter.dimensions == {"3d"}
    layout = exporter.image_layout()
    assert isinstance(layout, PointCloudLayout)
    item = FrameAnnotations(drive_frame(7))
    served = [
        ("image_01/data/0000000007.png.jpg", b"right"),
        ("IMAGE_00/data/0000000007.png.jpg", b"left"),
        ("front.png.jpg", b"front"),
    ]

    assert layout.paths(item, DRIVE_TASK, "default") == ["ds0/pointcloud/0000000007.pcd"]
    members = layout.context_members(item.frame, served)

    folder = "ds0/related_images/0000000007_pcd"
    assert [path for path, _ in members] == [
        f"{folder}/0000000007.jpg", f"{folder}/0000000007.jpg.json",
        f"{folder}/front.jpg", f"{folder}/front.jpg.json",
        f"{folder}/0000000007_1.jpg", f"{folder}/0000000007_1.jpg.json",
    ]  # fmt: skip
    assert [data for path, data in members if not path.endswith(".json")] == [
        b"left",
        b"front",
        b"right",
    ]
    assert members[1][1] == (
        b'{\n  "name": "0000000007.jpg",\n  "meta": {\n    "sensorsData": {\n'
        b'      "extrinsicMatrix": [\n' + b"        0,\n" * 11 + b"        0\n      ],\n"
        b'      "intrinsicMatrix": [\n' + b"        0,\n" * 8 + b"        0\n      ]\n"
        b"    }\n  }\n}"
    )


def test_refuses_2d_tasks() -> None:
    with pytest.raises(ValueError, match="3D"):
        asyncio.run(_export(InMemoryDataset(street_task(), ())))


def _cuboids(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        drive_frame(index),
        tuple(
            Shape("cuboid", DRIVE_CAR.id, cuboid((index, k, 0.5), (0, 0, 0.1), (4, 2, 1.5)),
                  track_id=k if k else None, attributes={"speed": str(index)})
            for k in range(3)
        ),
    )  # fmt: skip


def _peak_memory(frames: int) -> int:
    async def write(dataset: Any, archive: zipfile.ZipFile, options: ExportOptions) -> None:
        await write_sly_pointcloud(dataset, archive, options, meta=META)

    return peak_memory(write, GeneratedDataset(DRIVE_TASK, frames, _cuboids))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(10)
    small, large = _peak_memory(100), _peak_memory(1000)
    assert large < small * 1.3 + (1 << 20), (small, large)
