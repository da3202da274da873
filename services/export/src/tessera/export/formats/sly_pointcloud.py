"""Sly Point Cloud Format 1.0 (Supervisely point clouds), as CVAT 2.80 writes it, streamed.

CVAT exports it (cvat/apps/dataset_manager/formats/pointcloud.py) by converting each frame
with its bindings (cvat/apps/dataset_manager/bindings.py: a point cloud item named after
the frame's file, with the attributes `frame`, `name` (the task owner's username),
`createdAt` and `updatedAt` (the task's dates), `labels` (every label as `{label_id, name,
color, type}`) and `track_id` -1; a `Cuboid3d` per 3D cuboid with the label's attributes,
`occluded`, and a track's `track_id` and `keyframe`), then running its datumaro fork's
`sly_pointcloud` converter with `allow_undeclared_attrs=True`
(datumaro/plugins/sly_pointcloud_format/converter.py and format.py). Every JSON file is
written as datumaro's `dump_json_file(indent=True)` writes it (orjson, two-space indent, no
newline at the end). The rules, and so this writer:

- One dataset, `ds0`; frames of every subset go together. Every frame of the export (only
  annotated ones with `annotated_only`), in frame order, is an item whose id is its file's
  base name without the extension (`pointcloud/000042.pcd` gives `000042`; `ItemIds` of
  kitti_raw).
- `ds0/ann/<item id>.pcd.json`: `{description: "", key, tags, objects, figures}`.
  * `tags`: the item's attributes but `frame`, `createdAt`, `updatedAt`, `track_id`
    (datumaro's special ones), so `name` (the owner) and `labels` (the label list), each
    `{key, name, value, labelerLogin: "", createdAt, updatedAt}`.
  * `objects`: one per object on the frame, `{key, classTitle (the label's name), tags,
    objects: [], figures: [], labelerLogin, createdAt, updatedAt}`; its `tags` are the
    cuboid's attributes but the special ones: the label's attributes (each one, a missing
    value taking the default; numbers as floats, checkboxes as "true"/"false"), then
    `occluded` ("true"/"false"), then for a track `keyframe`; each `{key, name, value,
    labelerLogin, createdAt, updatedAt}` (the user fields from the cuboid's attributes of
    those names, else the item's).
  * `figures`: one per cuboid (plain, or a visible frame of a track: keyframes and
    interpolated frames), `{key, objectKey, geometryType: "cuboid_3d", geometry:
    {position, rotation, dimensions: {x, y, z}}, labelerLogin, createdAt, updatedAt}`,
    coordinates as datumaro rounds them (`numpy.around(value, 2)`), angles in radians.
- `key_id_map.json`: `{tags, objects, figures, videos}`, each a map from key to number:
  the item tags (only those: object tags are not listed) numbered from 1, the objects,
  the figures, and each item's key to its frame number.
- `meta.json`: `{classes, tags, projectType: "point_clouds"}`. `classes`: every label,
  `{id (its position), title, color: "", shape: "cuboid_3d", geometry_config: {}}`.
  `tags`: every tag name, `{name, value_type, color: "", id, hotkey: "", applicable_type,
  classes: []}` plus `value` (the first value) for one first met as an item tag; numbered
  from 1 as they are registered: `occluded` and the labels' attributes first
  (`objectsOnly`), then as met (item tags `imagesOnly`, other object tags `objectsOnly`;
  a name used both ways becomes `all`); `value_type` `any_number` for numbers, else
  `any_string`, fixed by the first value.
- Images (`save_images`): the point cloud as `ds0/pointcloud/<item id>.pcd`
  (`point_cloud_path`), and each context image as `ds0/related_images/<item id>_pcd/<name>`
  with `<name>.json` beside it, `{name, meta: {sensorsData: {extrinsicMatrix: 12 zeros,
  intrinsicMatrix: 9 zeros}}}` (`context_image_members`).

Where this writer differs from CVAT:
- object identity: CVAT takes a track's index, and for a plain cuboid the number of track
  cuboids on its frame plus its position there, so unrelated cuboids of different frames
  (or a track and a plain cuboid of one frame, losing the latter's label) share an object.
  Here a track is one object across its frames and each plain cuboid an object of its
  own, numbered from 1 as they appear; figures are numbered from 1 (CVAT repeats a
  track's index); an item's number is its frame's number in the export (the task frame
  for a task; CVAT repeats task frame numbers in a project);
- keys are name-based UUIDs (version 5) of the task and a counter, so an export is
  reproducible, where CVAT draws random ones;
- the tag registry: CVAT registers the labels' attributes in the order of a Python set
  (it varies from run to run); here `occluded` then the attributes in label order. Values
  of one tag name with different types make CVAT's export fail; here the first type
  stays;
- context images are the JPEGs ingest serves for them (CVAT copies the original files),
  so they are named `<name without extension>.jpg`; two context images of a frame with
  the same name (KITTI's cameras) get `_1`, `_2`, ... (CVAT writes one over the other);
- two frames with the same base name (a project's tasks, or drives in one task) get
  distinct item ids, where CVAT writes one over the other;
- a cuboid with fewer than 9 numbers is skipped. As in CVAT, frame tags and other shape
  types are not written.

Memory: one frame's annotations, the map of tracks to objects, the tag registry, the item
ids taken (a point cloud task's frames are few); the key map's entries are spooled
(memory up to 64 KiB a section, disk past that).
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any, Final

import orjson

from tessera.export.formats.coco import round2
from tessera.export.formats.common import cvat_frames
from tessera.export.formats.cvat_xml import CvatTaskMeta
from tessera.export.formats.kitti_raw import ItemIds
from tessera.export.formats.paint import spec_values, write_member
from tessera.export.model import Dataset, ExportOptions, FrameInfo, Label, Shape, labels_by_id

META_MEMBER: Final = "meta.json"
KEY_ID_MEMBER: Final = "key_id_map.json"
ANN_MEMBER: Final = "ds0/ann/{id}.pcd.json"
POINT_CLOUD_MEMBER: Final = "ds0/pointcloud/{id}.pcd"
RELATED_DIR: Final = "ds0/related_images/{id}_pcd"
SPECIAL_ATTRS: Final = frozenset(
    {"description", "track_id", "labelerLogin", "createdAt", "updatedAt", "frame"}
)
KEY_SECTIONS: Final = ("tags", "objects", "figures", "videos")

_KEY_NAMESPACE: Final = uuid.UUID("6f1c4b0e-3d7a-5e2b-9c84-2a51d0e7b3f9")
_CUBOID_NUMBERS = 9
_AXES = ("x", "y", "z")
_INDENT = orjson.OPT_INDENT_2
_SPOOL_BYTES = 1 << 16
_COPY_BYTES = 1 << 16
_YIELD_EVERY = 8


def point_cloud_path(item: str) -> str:
    """Where an item's point cloud goes with `save_images`: `ds0/pointcloud/<id>.pcd` (one
    dataset: every subset's frames go there)."""
    return POINT_CLOUD_MEMBER.format(id=item)


def context_image_members(
    item: str, images: Sequence[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The archive members of an item's context images (`(name, data)` as ingest serves
    them, sorted by name): `ds0/related_images/<item id>_pcd/<stem><ext>` (the stem of the
    image's file name, the extension of the served name), each followed by its `.json`."""
    folder = RELATED_DIR.format(id=item)
    members: list[tuple[str, bytes]] = []
    taken: set[str] = set()
    for served, data in sorted(images, key=lambda image: image[0]):
        root, ext = posixpath.splitext(served)
        stem = posixpath.splitext(posixpath.basename(root))[0]
        name = f"{stem}{ext}"
        copy = 0
        while name in taken:
            copy += 1
            name = f"{stem}_{copy}{ext}"
        taken.add(name)
        sidecar = {
            "name": name,
            "meta": {"sensorsData": {"extrinsicMatrix": [0] * 12, "intrinsicMatrix": [0] * 9}},
        }
        members.append((f"{folder}/{name}", data))
        members.append((f"{folder}/{name}.json", orjson.dumps(sidecar, option=_INDENT)))
    return members


class _Tags:
    """The tag registry of `meta.json`, as the converter keeps it."""

    def __init__(self) -> None:
        self._tags: dict[str, dict[str, Any]] = {}

    def _register(self, name: str, applicable_type: str, *value: Any) -> dict[str, Any]:
        tag = self._tags.get(name)
        if tag is None:
            tag = self._tags[name] = {
                "name": name, "value_type": None, "color": "", "id": len(self._tags) + 1,
                "hotkey": "", "applicable_type": applicable_type, "classes": [],
            }  # fmt: skip
            if value:
                tag["value"] = value[0]
        return tag

    def declare(self, name: str) -> None:
        """A tag of the labels' attributes, before any item."""
        self._register(name, "objectsOnly")

    def item_tag(self, name: str, value: Any) -> None:
        """An item attribute met: registered with its value the first time."""
        tag = self._register(name, "imagesOnly", value)
        if tag["applicable_type"] != "imagesOnly":
            tag["applicable_type"] = "all"
        _set_type(tag, value)

    def object_tag(self, name: str, value: Any) -> None:
        """An object attribute met."""
        tag = self._register(name, "objectsOnly")
        if tag["applicable_type"] == "imagesOnly":
            tag["applicable_type"] = "all"
        _set_type(tag, value)

    def meta(self) -> list[dict[str, Any]]:
        """The tags of `meta.json`, an unused one typed `any_string`."""
        return [
            {**tag, "value_type": tag["value_type"] or "any_string"} for tag in self._tags.values()
        ]


def _set_type(tag: dict[str, Any], value: Any) -> None:
    if tag["value_type"] is None:
        tag["value_type"] = "any_number" if isinstance(value, int | float) else "any_string"


def _encode(value: Any) -> Any:
    """datumaro's `_encode_attr_value`: booleans as "true"/"false"."""
    if value is True or value is False:
        return str(value).lower()
    return value


def _xyz(values: Sequence[float]) -> dict[str, float]:
    return {axis: round2(float(value)) for axis, value in zip(_AXES, values, strict=True)}


class _KeyMap:
    """The entries of `key_id_map.json`, spooled per section (memory up to 64 KiB each,
    disk past that), each as a comma, a newline and the indented `"<key>": <number>`."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._files: dict[str, IO[bytes]] = {
            section: stack.enter_context(
                tempfile.SpooledTemporaryFile(_SPOOL_BYTES)  # noqa: SIM115 (the stack closes it)
            )
            for section in KEY_SECTIONS
        }
        self._numbers = dict.fromkeys(KEY_SECTIONS, 0)

    def add(self, section: str, key: str, number: int | None = None) -> None:
        """Add the key to the section, numbered on from 1 unless `number` is given."""
        if number is None:
            number = self._numbers[section] = self._numbers[section] + 1
        self._files[section].write(f',\n    "{key}": {number}'.encode())

    def write(self, out: IO[bytes]) -> None:
        """`key_id_map.json` into `out`, as orjson indents it."""
        out.write(b"{")
        for index, section in enumerate(KEY_SECTIONS):
            file = self._files[section]
            out.write(f'\n  "{section}": '.encode())
            if not file.tell():
                out.write(b"{}")
            else:
                out.write(b"{")
                file.seek(1)  # the first entry's comma
                while chunk := file.read(_COPY_BYTES):
                    out.write(chunk)
                out.write(b"\n  }")
            out.write(b"," if index < len(KEY_SECTIONS) - 1 else b"\n}")


class _Writer:
    """The state of one export: keys, tracks' objects, tags, the key map."""

    def __init__(self, task_id: int, labels: Sequence[Label], user: Mapping[str, str],
                 item_attributes: Mapping[str, Any], key_map: _KeyMap) -> None:  # fmt: skip
        self.labels = {label.id: label for label in labels}
        self.user = user
        self.item_attributes = item_attributes
        self.tags = _Tags()
        self.tags.declare("occluded")
        for label in labels:
            for spec in label.attributes:
                self.tags.declare(spec.name)
        self._task_id = task_id
        self._keys = 0
        self._tracks: dict[int, str] = {}
        self.key_map = key_map

    def _key(self) -> str:
        self._keys += 1
        return str(uuid.uuid5(_KEY_NAMESPACE, f"{self._task_id}/{self._keys}"))

    def item(self, frame: FrameInfo, shapes: Sequence[Shape]) -> dict[str, Any]:
        """The annotation file of one item."""
        key = self._key()
        self.key_map.add("videos", key, frame.index)
        tags = []
        for name, value in self.item_attributes.items():
            self.tags.item_tag(name, value)
            tag_key = self._key()
            tags.append({"key": tag_key, "name": name, "value": value, **self.user})
            self.key_map.add("tags", tag_key)
        objects: list[dict[str, Any]] = []
        figures: list[dict[str, Any]] = []
        on_frame: set[str] = set()
        for shape in shapes:
            label = self.labels.get(shape.label_id)
            if shape.type != "cuboid" or len(shape.points) < _CUBOID_NUMBERS or label is None:
                continue
            attributes = spec_values(label, shape.attributes)
            attributes["occluded"] = shape.occluded
            if shape.track_id is not None:
                attributes["track_id"] = shape.track_id
                attributes["keyframe"] = shape.keyframe
            user = {name: attributes.get(name, value) for name, value in self.user.items()}
            object_key = self._object_key(shape.track_id)
            if object_key not in on_frame:
                on_frame.add(object_key)
                objects.append(self._object(object_key, label, attributes, user))
            figure_key = self._key()
            self.key_map.add("figures", figure_key)
            points = shape.points
            figures.append({
                "key": figure_key, "objectKey": object_key, "geometryType": "cuboid_3d",
                "geometry": {"position": _xyz(points[0:3]), "rotation": _xyz(points[3:6]),
                             "dimensions": _xyz(points[6:9])},
                **user,
            })  # fmt: skip
        return {"description": "", "key": key, "tags": tags, "objects": objects,
                "figures": figures}  # fmt: skip

    def _object_key(self, track_id: int | None) -> str:
        """A track's object (made when the track first appears), or a new one."""
        if track_id is not None and track_id in self._tracks:
            return self._tracks[track_id]
        key = self._key()
        self.key_map.add("objects", key)
        if track_id is not None:
            self._tracks[track_id] = key
        return key

    def _object(
        self, key: str, label: Label, attributes: Mapping[str, Any], user: Mapping[str, Any]
    ) -> dict[str, Any]:
        tags = []
        for name, raw in attributes.items():
            if name in SPECIAL_ATTRS:
                continue
            value = _encode(raw)
            self.tags.object_tag(name, value)
            tags.append({"key": self._key(), "name": name, "value": value, **user})
        return {"key": key, "classTitle": label.name, "tags": tags, "objects": [],
                "figures": [], **user}  # fmt: skip


async def write_sly_pointcloud(
    dataset: Dataset,
    archive: zipfile.ZipFile,
    options: ExportOptions,
    *,
    meta: CvatTaskMeta | None = None,
) -> None:
    """Write Sly Point Cloud Format 1.0: an annotation file per item, then `meta.json` and
    `key_id_map.json`. `meta` gives the task's dates (empty without it)."""
    task = dataset.task
    if task.dimension != "3d":
        raise ValueError("Sly Point Cloud Format 1.0 takes point cloud (3D) tasks")
    labels = sorted(labels_by_id(task.labels).values(), key=lambda label: label.id)
    created = "" if meta is None or meta.created is None else str(meta.created)
    updated = "" if meta is None or meta.updated is None else str(meta.updated)
    item_attributes = {
        "name": task.owner,
        "labels": [{"label_id": index, "name": label.name, "color": label.color,
                    "type": label.type} for index, label in enumerate(labels)],
    }  # fmt: skip
    user = {"labelerLogin": "", "createdAt": created, "updatedAt": updated}
    item_ids = ItemIds()
    with contextlib.ExitStack() as stack:
        writer = _Writer(task.id, labels, user, item_attributes, _KeyMap(stack))
        async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
            annotation = writer.item(item.frame, shapes)
            path = ANN_MEMBER.format(id=item_ids(item.frame))
            write_member(archive, path, orjson.dumps(annotation, option=_INDENT))
        meta_json = {
            "classes": [{"id": index, "title": label.name, "color": "", "shape": "cuboid_3d",
                         "geometry_config": {}} for index, label in enumerate(labels)],
            "tags": writer.tags.meta(),
            "projectType": "point_clouds",
        }  # fmt: skip
        write_member(archive, META_MEMBER, orjson.dumps(meta_json, option=_INDENT))
        with archive.open(KEY_ID_MEMBER, "w", force_zip64=True) as member:
            writer.key_map.write(member)
