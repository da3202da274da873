"""MOT 1.1 ("MOT sequence", ground truth), as CVAT 2.80 writes it, streamed frame by frame.

CVAT exports it through its datumaro fork (cvat/apps/dataset_manager/formats/mot.py:
`GetCVATDataExtractor`, then `dataset.export(dir, "mot_seq_gt")`), after
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`,
`CvatTaskOrJobDataExtractor`) has turned each frame into a datumaro item. The fork's
datumaro/plugins/mot_format.py (`MotSeqGtConverter`) writes the files with Python's
`csv.DictWriter`, and datumaro/components/annotation.py (`Bbox`) fixes the numbers. The
rules, and so this writer:

- two members: `gt/gt.txt` and `gt/labels.txt`; no subsets (every frame of every subset
  goes into the one `gt.txt`), no `seqinfo.ini`.
- `gt/labels.txt`: every label and skeleton point ordered by label id (CVAT's label
  table order), one name a line, joined by "\\n" with no newline after the last one.
- `gt/gt.txt`: one line per rectangle, in frame order, and within a frame in CVAT's
  order (by `z_order`, plain shapes before track shapes). Every other shape type and the
  tags are left out; a track's outside frames are left out (CVAT expands tracks to their
  visible frames only). Plain rectangles are written too. Lines end with "\\r\\n"
  (csv's `excel` dialect) and have nine fields:

  `frame, id, x, y, w, h, not_ignored, class_id, visibility`

  * `frame`: the frame's file name without its extension as an integer when it is one
    ("000042.jpg" gives 42; Python's `int()`), else 1 + the frame's position in the
    export (0 for the first frame), so a task of "frame_000000"-named video frames or of
    "img.jpg"-named images counts from 1.
  * `id`: track numbers renumbered from 1 in the order the tracks first appear in the
    file; a plain rectangle gets -1.
  * `x, y, w, h`: datumaro's `Bbox(x1, y1, x2 - x1, y2 - y1)` keeps its corners rounded
    to 2 decimals, `[round(x1), round(y1), round(x1 + w), round(y1 + h)]`, and writes
    `x`, `y` and the differences of the rounded corners, each as Python's `repr` of a
    float (so "10.0", and w "20.330000000000002" where float arithmetic gives it). A
    rotated box is written unrotated (the angle is dropped).
  * `not_ignored`: 0 when the label has a checkbox attribute `ignored` that is true,
    else 1. This is the "conf" column; CVAT's GT writer never puts a score there (the
    issue's `conf` from the shape's `score` is not what CVAT writes, so scores are not
    written).
  * `class_id`: 1 + the label's position in `labels.txt`.
  * `visibility`: the label's `visibility` attribute as a float when it has one (a
    number attribute: "0.86"), else 1.0 for a visible box and 0.0 for an occluded one.

  The issue's `frame, id, x, y, w, h, conf, -1, -1, -1` is the MOTChallenge detection
  layout; CVAT writes the nine-field GT layout above instead (class and visibility, no
  world coordinates), and so does this writer.
- images (`save_images`): `img1/<file name without extension><extension>`; see
  `image_path`.

Where this writer differs from CVAT (as the other writers do):
- a frame's position counts every frame the dataset yields, also those `annotated_only`
  leaves out (they have no lines either way), so the numbers stay those of the task;
- a project export's frames are written in the order the dataset yields them (CVAT
  groups items by subset first, which changes only the position-based frame numbers);
- a `visibility` attribute that is not a number falls back to the occluded flag, and a
  rectangle without 4 numbers is skipped (CVAT would fail the export);
- a label attribute named `track_id` on a plain rectangle is not read as a track number.

Nothing is held beyond one frame and the map of track numbers: lines are buffered up to a
few hundred KiB and written to `gt/gt.txt` as they come.
"""

from __future__ import annotations

import asyncio
import os.path
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tessera.export.formats.coco import attribute_value, round2
from tessera.export.formats.common import split_frame_name
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    TaskInfo,
    labels_by_id,
    shapes_as_cvat_writes_them,
)

GT_MEMBER: Final = "gt/gt.txt"
LABELS_MEMBER: Final = "gt/labels.txt"
IMAGE_DIR: Final = "img1"

_FLUSH_CHARS = 1 << 18
_YIELD_EVERY = 8
_PLAIN = -1
_TAIL_CACHE = 4096


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image with `save_images`: `img1/<id><ext>` for every
    subset, the id being the file name without its extension and the extension the
    name's own (a video frame, named without one, gets CVAT's ".PNG")."""
    del subset  # MOT has one sequence: all subsets share img1/
    root, ext = split_frame_name(frame)
    return f"{IMAGE_DIR}/{root}{ext}"


def image_paths(item: FrameAnnotations, task: TaskInfo) -> list[str]:
    """Every path the frame's image takes in the archive (one, for MOT)."""
    return [image_path(item.frame, item.frame.subset or task.subset or "default")]


@dataclass(frozen=True, slots=True)
class _LabelInfo:
    class_id: int
    ignored: str | None
    """The default of a checkbox attribute `ignored`, None when there is none."""
    visibility: tuple[str, str] | None
    """(input type, default) of an attribute `visibility`, None when there is none."""


def _label_infos(labels: Sequence[Label]) -> tuple[dict[int, _LabelInfo], list[str]]:
    ordered = sorted(labels_by_id(labels).values(), key=lambda label: label.id)
    infos: dict[int, _LabelInfo] = {}
    for index, label in enumerate(ordered):
        ignored = visibility = None
        for spec in label.attributes:
            if spec.name == "ignored" and spec.input_type == "checkbox":
                ignored = spec.default_value
            elif spec.name == "visibility":
                visibility = (spec.input_type, spec.default_value)
        infos[label.id] = _LabelInfo(index + 1, ignored, visibility)
    return infos, [label.name for label in ordered]


def _tail(info: _LabelInfo, occluded: bool, ignored: str | None, visible: str | None) -> str:
    """The line's `not_ignored, class_id, visibility` and its end, from the shape's
    occluded flag and its `ignored` and `visibility` attribute values (None: missing)."""
    not_ignored = 1
    if info.ignored is not None:
        not_ignored = int((ignored if ignored is not None else info.ignored).lower() != "true")
    visibility = 0.0 if occluded else 1.0
    if info.visibility is not None:
        kind, default = info.visibility
        given = attribute_value(kind, visible if visible is not None else default)
        try:
            visibility = float(given)
        except ValueError:  # text that is no number: the occluded flag decides
            visibility = 0.0 if occluded else 1.0
    return f"{not_ignored},{info.class_id},{visibility!r}\r\n"


def _frame_number(name: str, position: int) -> int:
    """datumaro's `cast(item.id, int, 1 + idx)`."""
    try:
        return int(os.path.splitext(name)[0])
    except ValueError:
        return position + 1


async def write_mot(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write MOT 1.1: `gt/gt.txt` (the boxes, frame by frame) and `gt/labels.txt`."""
    del options  # annotated_only changes no line: frames without boxes have none
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("MOT 1.1 is a 2D format; point cloud tasks have no MOT exporter")
    infos, names = _label_infos(task.labels)
    tracks: dict[int, int] = {}
    tails: dict[tuple[int, bool, str | None, str | None], str] = {}
    with archive.open(GT_MEMBER, "w", force_zip64=True) as member:
        pending: list[str] = []
        size = 0
        position = 0
        async for item in dataset.frames():
            frame = _frame_number(item.frame.name, position)
            position += 1
            for shape in shapes_as_cvat_writes_them(item.shapes):
                if shape.type != "rectangle" or len(shape.points) != 4:
                    continue
                info = infos.get(shape.label_id)
                if info is None:
                    continue
                if shape.track_id is None:
                    number = _PLAIN
                else:
                    number = tracks.get(shape.track_id, 0)
                    if not number:
                        number = tracks[shape.track_id] = len(tracks) + 1
                x0, y0, x1, y1 = (float(v) for v in shape.points)
                left, top = round2(x0), round2(y0)
                right, bottom = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
                values = shape.attributes
                key = (
                    shape.label_id,
                    shape.occluded,
                    values.get("ignored") if info.ignored is not None else None,
                    values.get("visibility") if info.visibility is not None else None,
                )
                tail = tails.get(key)
                if tail is None:
                    if len(tails) >= _TAIL_CACHE:
                        tails.clear()
                    tail = tails[key] = _tail(info, shape.occluded, key[2], key[3])
                line = f"{frame},{number},{left!r},{top!r},{right - left!r},{bottom - top!r},{tail}"
                pending.append(line)
                size += len(line)
            if size >= _FLUSH_CHARS:
                member.write("".join(pending).encode())
                pending.clear()
                size = 0
            if position % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the CPU work of a long stream must not starve the loop
        member.write("".join(pending).encode())
    with archive.open(LABELS_MEMBER, "w", force_zip64=True) as member:
        member.write("\n".join(names).encode())
