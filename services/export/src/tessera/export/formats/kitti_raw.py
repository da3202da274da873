"""Kitti Raw Format 1.0 (the cuboids of point cloud tasks), as CVAT 2.80 writes it, streamed.

CVAT exports it (cvat/apps/dataset_manager/formats/velodynepoint.py) by converting each
frame with its bindings (cvat/apps/dataset_manager/bindings.py: a point cloud item named
after the frame's file, a `Cuboid3d` per 3D cuboid with the track's `track_id` and
`keyframe` as attributes), removing every `track_id` attribute (`RemoveTrackingInformation`)
and running its datumaro fork's `kitti_raw` converter with `reindex=True`
(datumaro/plugins/kitti_raw_format/converter.py and format.py). The rules, and so this
writer:

- Items: every frame of the export (only annotated ones with `annotated_only`), in frame
  order, numbered from 0 (`reindex`); an item's id is its file's base name without the
  extension (`velodyne_points/data/0000000042.pcd` gives `0000000042`; `ItemIds`). One
  subset: frames of every subset go together, as datumaro writes it.
- `frame_list.txt`: a line `<number> <item id>` per item.
- `tracklet_labels.xml`: boost serialization XML (`<boost_serialization version="9"
  signature="serialization::archive">`, `<tracklets>` with `<count>` and `<item_version>`
  1). As the track ids are removed, every cuboid of every frame (a plain cuboid, or one
  visible frame of a track: keyframes and interpolated frames, not the outside ones) is a
  tracklet of its own, with one pose. The converter numbers them -1, -2, ... as it meets
  them and writes them sorted by that number: so in the reverse order, the last cuboid of
  the last frame first. A tracklet is `objectType` (the label's name), `h`, `w`, `l` (the
  cuboid's scale y, x and z), `first_frame` (the item's number), `poses` (`<count>` 1,
  `<item_version>` 0, the pose), `finished` 1. The pose: `tx ty tz` (position), `rx ry rz`
  (rotation, radians), `state` 2 (labelled), `occlusion` (1, partly, for an occluded
  shape, else 0), `occlusion_kf` (1 on a track's keyframe, else 0), `truncation` 0 (in
  image), and `amt_occlusion`, `amt_border_l`, `amt_border_r`, `amt_occlusion_kf`,
  `amt_border_kf` -1. Numbers are datumaro's (`numpy.around(value, 2)`) as Python writes
  floats. The first tracklet, its poses and its pose carry boost's class headers
  (`version`, `tracking_level`, `class_id` 1, 2 and 3); the others are bare `<item>` and
  `<poses>`. Two-space indentation, elements on their own lines, no newline at the end.
- No attributes (CVAT does not pass `allow_attrs`), no tags, no other shape types.
- Images (`save_images`): the point cloud as `velodyne_points/data/<item id>.pcd`
  (`point_cloud_path`) and the frame's context images, sorted by name, the i-th as
  `image_<i, 2 digits>/data/<item id><ext>` (`context_image_members`).

Where this writer differs from CVAT: a label attribute `occlusion` or `truncation` makes
CVAT's export fail (its converter looks the value up among the enums' numbers); here a
value naming a state (case-insensitive: `occlusion_unset`, `visible`, `partly`, `fully`;
`truncation_unset`, `in_image`, `truncated`, `out_image`, `behind_image`, as datumaro
documents them) sets the field, and any other value leaves the default. Context images
are the JPEGs ingest serves for them (CVAT copies the original files), so they keep the
`.jpg` extension. Two frames with the same base name (a project's tasks, or drives in
one task) get distinct item ids (`ItemIds`), where CVAT writes one over the other. A
cuboid with fewer than 9 numbers is skipped.

Memory: `frame_list.txt` is written as frames come, each tracklet is spooled (memory up
to 256 KiB, disk past that) with only its length kept, and the XML is assembled from
the spool, backwards, at the end; the item ids taken are kept (a point cloud task's frames
are few).
"""

from __future__ import annotations

import array
import asyncio
import posixpath
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from tessera.export.formats.coco import round2
from tessera.export.formats.common import cvat_frames
from tessera.export.formats.cvat_xml import text
from tessera.export.formats.paint import spec_values
from tessera.export.model import Dataset, ExportOptions, FrameInfo, Label, Shape, labels_by_id

FRAME_LIST_MEMBER: Final = "frame_list.txt"
TRACKLETS_MEMBER: Final = "tracklet_labels.xml"
POINT_CLOUD_DIR: Final = "velodyne_points/data"
CAMERA_DIR: Final = "image_{index:02d}/data"

OCCLUSION_STATES: Final = {"occlusion_unset": -1, "visible": 0, "partly": 1, "fully": 2}
TRUNCATION_STATES: Final = {
    "truncation_unset": -1, "in_image": 0, "truncated": 1, "out_image": 2, "behind_image": 99,
}  # fmt: skip

_HEADER = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    "<!DOCTYPE boost_serialization>\n"
    '<boost_serialization version="9" signature="serialization::archive">\n'
    '<tracklets version="0" tracking_level="0" class_id="0">\n'
    "  <count>{count}</count>\n"
    "  <item_version>1</item_version>"
)
_FOOTER = "\n</tracklets>\n</boost_serialization>"
_TRACKLET_HEAD = '<item version="1" tracking_level="0" class_id="1">'
_POSES_HEAD = '<poses version="0" tracking_level="0" class_id="2">'
_POSE_HEAD = '<item version="1" tracking_level="0" class_id="3">'
_STATE_LABELLED = 2
_UNKNOWN = -1
_CUBOID_NUMBERS = 9
_SPOOL_BYTES = 1 << 18
_FLUSH_CHARS = 1 << 16
_COPY_BYTES = 1 << 16
_YIELD_EVERY = 16


class ItemIds:
    """Item ids as CVAT names point cloud items, the file's base name without the
    extension (`velodyne_points/data/0000000042.pcd` gives `0000000042`), made unique in
    the order frames are named: a name already taken gets `_1`, `_2`, ... (CVAT writes
    such items over each other). A frame keeps the id it got first."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._by_frame: dict[int, str] = {}

    def __call__(self, frame: FrameInfo) -> str:
        """The frame's item id."""
        found = self._by_frame.get(frame.index)
        if found is not None:
            return found
        stem = posixpath.splitext(posixpath.basename(frame.name))[0]
        name, copy = stem, 0
        while name in self._taken:
            copy += 1
            name = f"{stem}_{copy}"
        self._taken.add(name)
        self._by_frame[frame.index] = name
        return name


def point_cloud_path(item: str) -> str:
    """Where an item's point cloud goes with `save_images`: `velodyne_points/data/<id>.pcd`
    (one subset: every subset's frames go there)."""
    return f"{POINT_CLOUD_DIR}/{item}.pcd"


def context_image_members(
    item: str, images: Sequence[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The archive members of an item's context images (`(name, data)` as ingest serves
    them): sorted by name, the i-th as `image_<i, 2 digits>/data/<item id><ext>`, `ext`
    being the served name's."""
    return [
        (f"{CAMERA_DIR.format(index=index)}/{item}{posixpath.splitext(name)[1]}", data)
        for index, (name, data) in enumerate(sorted(images, key=lambda image: image[0]))
    ]


@dataclass(frozen=True, slots=True)
class _Tracklet:
    """One cuboid as a one-pose tracklet."""

    label: str
    numbers: tuple[float, ...]  # position, rotation, scale, rounded as datumaro does
    frame: int
    occlusion: int
    keyframe: bool
    truncation: int

    def render(self, *, first: bool) -> str:
        """The `<item>` of `<tracklets>`, headers and all when it is written first."""
        tx, ty, tz, rx, ry, rz, sx, sy, sz = self.numbers
        return (
            f"\n  {_TRACKLET_HEAD if first else '<item>'}"
            f"\n    <objectType>{text(self.label)}</objectType>"
            f"\n    <h>{sy}</h>\n    <w>{sx}</w>\n    <l>{sz}</l>"
            f"\n    <first_frame>{self.frame}</first_frame>"
            f"\n    {_POSES_HEAD if first else '<poses>'}"
            "\n      <count>1</count>\n      <item_version>0</item_version>"
            f"\n      {_POSE_HEAD if first else '<item>'}"
            f"\n        <tx>{tx}</tx>\n        <ty>{ty}</ty>\n        <tz>{tz}</tz>"
            f"\n        <rx>{rx}</rx>\n        <ry>{ry}</ry>\n        <rz>{rz}</rz>"
            f"\n        <state>{_STATE_LABELLED}</state>"
            f"\n        <occlusion>{self.occlusion}</occlusion>"
            f"\n        <occlusion_kf>{int(self.keyframe)}</occlusion_kf>"
            f"\n        <truncation>{self.truncation}</truncation>"
            f"\n        <amt_occlusion>{_UNKNOWN}</amt_occlusion>"
            f"\n        <amt_border_l>{_UNKNOWN}</amt_border_l>"
            f"\n        <amt_border_r>{_UNKNOWN}</amt_border_r>"
            f"\n        <amt_occlusion_kf>{_UNKNOWN}</amt_occlusion_kf>"
            f"\n        <amt_border_kf>{_UNKNOWN}</amt_border_kf>"
            "\n      </item>\n    </poses>\n    <finished>1</finished>\n  </item>"
        )


class _Spool:
    """Tracklets in the order met, all but the last spooled with their lengths, written
    back last first."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._lengths = array.array("Q")
        self._last: _Tracklet | None = None

    def add(self, tracklet: _Tracklet) -> None:
        """Take the next tracklet met."""
        if self._last is not None:
            data = self._last.render(first=False).encode()
            self._file.write(data)
            self._lengths.append(len(data))
        self._last = tracklet

    async def write_xml(self, out: IO[bytes]) -> None:
        """Write `tracklet_labels.xml` into `out`."""
        count = len(self._lengths) + (self._last is not None)
        out.write(_HEADER.format(count=count).encode())
        if self._last is not None:
            out.write(self._last.render(first=True).encode())
        end = self._file.tell()
        pending = bytearray()
        for length in reversed(self._lengths):
            end -= length
            self._file.seek(end)
            pending += self._file.read(length)
            if len(pending) >= _COPY_BYTES:
                out.write(pending)
                pending.clear()
                await asyncio.sleep(0)
        out.write(pending)
        out.write(_FOOTER.encode())


def _state(value: Any, states: Mapping[str, int], default: int) -> int:
    """The state a label attribute's value names (any case), else `default`."""
    if isinstance(value, str):
        return states.get(value.lower(), default)
    return default


def _tracklet(shape: Shape, label: Label, frame: int) -> _Tracklet:
    values = spec_values(label, shape.attributes)
    occluded = 1 if shape.occluded else 0
    return _Tracklet(
        label=label.name,
        numbers=tuple(round2(float(value)) for value in shape.points[:_CUBOID_NUMBERS]),
        frame=frame,
        occlusion=_state(values.get("occlusion"), OCCLUSION_STATES, occluded),
        keyframe=shape.track_id is not None and shape.keyframe,
        truncation=_state(values.get("truncation"), TRUNCATION_STATES, 0),
    )


async def write_kitti_raw(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Kitti Raw Format 1.0: `frame_list.txt`, then `tracklet_labels.xml`."""
    task = dataset.task
    if task.dimension != "3d":
        raise ValueError("Kitti Raw Format 1.0 takes point cloud (3D) tasks")
    labels = labels_by_id(task.labels)
    item_ids = ItemIds()
    with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as file:
        spool = _Spool(file)
        with archive.open(FRAME_LIST_MEMBER, "w", force_zip64=True) as member:
            lines: list[str] = []
            size = 0
            number = 0
            async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
                line = f"{number} {item_ids(item.frame)}\n"
                lines.append(line)
                size += len(line)
                for shape in shapes:
                    label = labels.get(shape.label_id)
                    if shape.type != "cuboid" or len(shape.points) < _CUBOID_NUMBERS or not label:
                        continue
                    spool.add(_tracklet(shape, label, number))
                number += 1
                if size >= _FLUSH_CHARS:
                    member.write("".join(lines).encode())
                    lines.clear()
                    size = 0
            member.write("".join(lines).encode())
        with archive.open(TRACKLETS_MEMBER, "w", force_zip64=True) as member:
            await spool.write_xml(member)
