"""Market-1501 1.0, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it through its datumaro fork (cvat/apps/dataset_manager/formats/
market1501.py: `GetCVATDataExtractor`, the `LabelAttrToAttr` transform with the label
"market-1501", then `dataset.export(dir, "market1501")`), after
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`) has turned each
frame into a datumaro item. The fork's datumaro/plugins/market1501_format.py
(`Market1501Converter`) writes the list. The rules, and so this writer:

- the annotations are image names: a frame's identity comes from its tag of the
  top-level label `market-1501` (CVAT's docs: attributes `query` checkbox, `person_id`
  number, `camera_id` number; `track_id`, `frame_id`, `bbox_id` are read too). Only a
  frame with exactly one such tag takes its attributes (every attribute of the label's
  spec, missing values taking the default; numbers as floats, checkboxes as booleans, the
  rest as text). Other tags and all shapes are not written.
- one member per subset (the frame's subset, else the task's, else `default`),
  `images_<subset>.txt`: one line per frame (every frame, only annotated ones with
  `annotated_only`), in frame order, "\\n"-terminated: the path the image takes,
  `<folder>/<name><ext>`:
  * folder: `query` when the `query` attribute is true (a text value is read as attrs'
    `to_bool` reads it: "true", "yes", "1", ...), else `bounding_box_<subset>`;
  * name: the frame's file name without its extension (the id; folders kept), unless the
    id does not already read as a Market-1501 name (`^(-?\\d+)_c(\\d+)s(\\d+)_(\\d+)_(\\d+)`)
    and `person_id` is set (not empty, not 0): then the id's folder plus
    `{person_id}_c{camera_id + 1}s{track_id}_{frame_id:06d}_{bbox_id:02d}`, with
    `camera_id` 0, `track_id` 1, `bbox_id` 0 and `frame_id` 0 when missing, each read
    with Python's `int()`. `person_id` is written as Python prints the value: a number
    attribute gives "1.0" (CVAT's bindings make every number attribute a float), a text
    attribute "0001". `frame_id` is 0 whenever the label has no such attribute: datumaro
    means to count frames per person and camera but looks them up under another key, so
    two frames of one person and camera get the same name (both written, as CVAT does).
  * ext: the name's own extension (a video frame, named without one, gets CVAT's ".PNG").
- images (`save_images`): exactly at the listed path; see `image_paths` (and
  `image_path`, the path of a frame without Market-1501 attributes).

Where this writer differs from CVAT (as the other writers do): with no frame at all the
task's subset file is still written, empty (CVAT writes nothing); an attribute value
`int()` cannot read takes the default, and a `query` text that is no boolean reads as
false (CVAT would fail the export).

Nothing is held beyond one frame: each subset's lines are spooled (in memory up to a few
MiB, on disk past that) and its member is written from the spool at the end.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tessera.export.formats.coco import attribute_value
from tessera.export.formats.common import split_frame_name, write_subset_lists
from tessera.export.model import (
    AttributeSpec,
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    TaskInfo,
)

MARKET_LABEL: Final = "market-1501"
LIST_MEMBER: Final = "images_{subset}.txt"
BBOX_DIR: Final = "bounding_box_{subset}"
QUERY_DIR: Final = "query"
DEFAULT_SUBSET: Final = "default"
NAME_PATTERN: Final = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)(.*)")
"""A Market-1501 image name: person, camera, sequence (track), frame, box, the rest."""

_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20
_YIELD_EVERY = 32
_TRUE: Final = frozenset({"true", "t", "yes", "y", "on", "1"})


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _path(frame: FrameInfo, subset: str, attributes: Mapping[str, Any]) -> str:
    """datumaro's image path for an item with these (converted) attributes."""
    root, ext = split_frame_name(frame)
    query = attributes.get("query")
    if isinstance(query, str):
        query = query.lower() in _TRUE
    folder = QUERY_DIR if query else BBOX_DIR.format(subset=subset)
    name = root
    person = attributes.get("person_id")
    if person and not NAME_PATTERN.fullmatch(root):
        camera = _as_int(attributes.get("camera_id", 0), 0) + 1
        track = _as_int(attributes.get("track_id", 1), 1)
        box = _as_int(attributes.get("bbox_id", 0), 0)
        number = _as_int(attributes.get("frame_id", 0), 0)
        name = posixpath.join(
            posixpath.dirname(root), f"{person}_c{camera}s{track}_{number:06d}_{box:02d}"
        )
    return f"{folder}/{name}{ext}"


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the image of a frame without Market-1501 attributes:
    `bounding_box_<subset>/<id><ext>` (`image_paths` reads the frame's tag)."""
    return _path(frame, subset, {})


class _Market:
    """The `market-1501` label's id and attribute specs, if the task has that label."""

    def __init__(self, labels: Sequence[Label]) -> None:
        label = next((label for label in labels if label.name == MARKET_LABEL), None)
        self.label_id = label.id if label is not None else None
        self.specs: tuple[AttributeSpec, ...] = label.attributes if label is not None else ()

    def attributes(self, item: FrameAnnotations) -> dict[str, Any]:
        """`LabelAttrToAttr`: the attributes of the frame's one `market-1501` tag."""
        if self.label_id is None:
            return {}
        tags = [tag for tag in item.tags if tag.label_id == self.label_id]
        if len(tags) != 1:
            return {}
        given = tags[0].attributes
        return {
            spec.name: attribute_value(spec.input_type, given.get(spec.name, spec.default_value))
            for spec in self.specs
        }


def image_paths(item: FrameAnnotations, task: TaskInfo) -> list[str]:
    """Every path the frame's image takes in the archive (one: the line of its list)."""
    subset = item.frame.subset or task.subset or DEFAULT_SUBSET
    return [_path(item.frame, subset, _Market(task.labels).attributes(item))]


async def write_market1501(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Market-1501 1.0: `images_<subset>.txt`, one image path a line, per subset."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError(
            "Market-1501 1.0 is a 2D format; point cloud tasks have no Market-1501 exporter"
        )
    market = _Market(task.labels)
    await write_subset_lists(
        dataset,
        archive,
        options,
        member=LIST_MEMBER,
        line=lambda item, subset: f"{_path(item.frame, subset, market.attributes(item))}\n",
        default_subset=DEFAULT_SUBSET,
        spool_bytes=_SPOOL_BYTES,
        copy_bytes=_COPY_BYTES,
        yield_every=_YIELD_EVERY,
    )
