"""MOT 1.1 import ("MOT sequence" ground truth), as CVAT 2.80 reads it.

CVAT imports it with `Dataset.import_from(dir, "mot_seq")` (the datumaro fork's
datumaro/plugins/mot_format.py, `MotSeqExtractor`) and then builds the tracks itself
(cvat/apps/dataset_manager/formats/mot.py, `_import_to_task`). The layout (as
`formats/mot.py` writes it, and as MOTChallenge sequences are laid out):

- `gt/gt.txt` (at any depth; the shallowest one): CSV lines
  `frame, id, x, y, w, h, not_ignored, class, visibility` (further fields ignored).
  `frame` counts from 1; `x, y, w, h` are the box's left, top, width and height in
  pixels; `not_ignored` ("conf" in MOTChallenge's detection files) is 0 for an ignored
  box; `class` counts from 1 in `gt/labels.txt`; `visibility` is the visible fraction.
  Empty `not_ignored` and `visibility` read as 1.
- `gt/labels.txt`: one class name a line (trailing blank lines dropped); without it,
  MOTChallenge's classes (`pedestrian`, `person on vehicle`, `car`, ...), as the fork does.
- `img1/`, `seqinfo.ini`: images and image facts, not read.

What is read: every line as a rectangle `[x, y, x + w, y + h]` of its class's label on the
frame `Position(frame - 1)`, occluded when `visibility <= 0` (the fork's
occlusion threshold), with the attributes CVAT gives it: `visibility` (the number as
Python prints a float, "1.0") and `ignored` ("true" when `not_ignored` is 0, else
"false"; CVAT writes Python's "True"/"False"). No score: these are ground-truth files.
Lines with `id > 0` are tracks, one per id (labelled by its first line's class), the
others plain shapes. A track's shapes are its lines sorted by frame, each a keyframe (CVAT
makes every line a keyframe). The outside keyframes CVAT adds (on the frame after each
frame followed by a gap, and after the last frame when that is in the task or job) are
the matcher's to add, as it does for every format that lists a track frame by frame
(`tracks_listed_per_frame`): it knows where the task ends.
`ParsedAnnotations.labels` are the names of `gt/labels.txt`.

The frame column is a frame's place among the exported frames, counted from 1 (CVAT's
writer gives `1 + position` to frames not named by a number, as video frames are), not
its number in the media: CVAT reads it as the task frame `frame - 1`, plus the job's
start frame for a job import (`int(item.id) - 1 + instance_data.start`, then
`abs_frame_id`), whatever the task's `start_frame` and step. A `Position` says so; the
matcher adds the job's start.

Where the reader differs from CVAT:
- a track with two lines on one frame fails (CVAT stores both keyframes);
- a line without a class, or with class -1 or 0, fails with a message (CVAT fails with a
  TypeError on a missing class and takes class 0 for the last label);
- `not_ignored` or `visibility` that is not a number fails (the fork reads it as 1);
- numbers written as integral floats ("3.0") are read for frame, id and class (the fork
  fails).

Hostile or malformed input fails with `ImportFailed` naming the file and line: no
`gt/gt.txt` ("not a MOT 1.1 upload"), more than one sequence, a line of fewer than 6
fields, a frame below 1, non-numeric or non-finite numbers, coordinates past
`tessera.geometry.MAX_COORD`, a class not in `gt/labels.txt`, CSV the csv module refuses.
"""

from __future__ import annotations

import csv
import io
import itertools
import posixpath
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.yolo import finite, integer, is_metadata, not_found
from tessera.export.imports.model import ParsedAnnotations, ParsedShape, ParsedTrack, Position
from tessera.geometry import MAX_COORD

FORMAT: Final = "MOT 1.1"
GT_MEMBER: Final = "gt/gt.txt"
LABELS_FILE: Final = "labels.txt"
DEFAULT_LABELS: Final = (
    "pedestrian",
    "person on vehicle",
    "car",
    "bicycle",
    "motorbike",
    "non motorized vehicle",
    "static person",
    "distractor",
    "occluder",
    "occluder on the ground",
    "occluder full",
    "reflection",
)
"""The fork's `MotLabel`: MOTChallenge's classes, for a sequence without labels.txt."""

_MIN_FIELDS = 6


def read_mot(files: ImportFiles) -> ParsedAnnotations:
    """Read a MOT 1.1 upload: `gt/gt.txt`'s boxes as tracks and shapes.

    Raises ImportFailed when the upload has no `gt/gt.txt` or a malformed one.
    """
    gt = _gt_member(files)
    labels_member = posixpath.join(posixpath.dirname(gt), LABELS_FILE)
    if labels_member in files:
        names = [line.strip() for line in files.text(labels_member).splitlines()]
        while names and not names[-1]:
            names.pop()
        source = labels_member
    else:
        names, source = list(DEFAULT_LABELS), "MOTChallenge's classes"
    out = ParsedAnnotations(labels=[name for name in names if name])
    tracks: dict[int, ParsedTrack] = {}
    rows = csv.reader(io.StringIO(files.text(gt)))
    try:
        for row in rows:
            where = f"{gt} line {rows.line_num}"
            fields = [field.strip() for field in row]
            if not any(fields):
                continue
            number, shape = _box(fields, names, where, source)
            if number > 0:
                tracks.setdefault(number, ParsedTrack(shape.label, [])).shapes.append(shape)
            else:
                out.shapes.append(shape)
    except csv.Error as exc:
        raise ImportFailed(f"{gt} line {rows.line_num} is not CSV Tessera reads: {exc}") from None
    for number, track in tracks.items():
        track.shapes = _keyframes(track.shapes, gt, number)
        out.tracks.append(track)
    return out


def _gt_member(files: ImportFiles) -> str:
    found = [
        name
        for name in files.names()
        if (name == GT_MEMBER or name.endswith(f"/{GT_MEMBER}")) and not is_metadata(name)
    ]
    if not found:
        raise not_found(FORMAT, GT_MEMBER)
    depth = min(name.count("/") for name in found)
    top = [name for name in found if name.count("/") == depth]
    if len(top) > 1:
        raise ImportFailed(
            f"the upload holds more than one {GT_MEMBER} ({', '.join(top[:3])}): upload one "
            "sequence at a time"
        )
    return top[0]


def _box(fields: list[str], names: list[str], where: str, source: str) -> tuple[int, ParsedShape]:
    """A line's track id and its box (`source` names where the classes come from)."""
    if len(fields) < _MIN_FIELDS:
        raise ImportFailed(
            f"{where}: {len(fields)} fields, where a box has at least 6 (frame, id, x, y, w, h)"
        )
    frame = integer(fields[0], where, "frame")
    if frame < 1:
        raise ImportFailed(f"{where}: frame {frame}, where MOT frames count from 1")
    number = integer(fields[1], where, "track id")
    x, y, w, h = (finite(fields[i], where, what) for i, what in enumerate("xywh", start=2))
    points = [x, y, x + w, y + h]
    if not all(abs(v) <= MAX_COORD for v in points):
        raise ImportFailed(f"{where}: the box's coordinates are out of range")
    confidence = _optional(fields, 6, where, "not_ignored flag")
    visibility = _optional(fields, 8, where, "visibility")
    given = fields[7] if len(fields) > 7 else ""
    if not given:
        raise ImportFailed(f"{where}: no class (the 8th field)")
    index = integer(given, where, "class")
    if not 1 <= index <= len(names) or not names[index - 1]:
        raise ImportFailed(f"{where}: class {index} is not one of {source} (counted from 1)")
    shape = ParsedShape(
        "rectangle",
        names[index - 1],
        points,
        frame=Position(frame - 1),
        occluded=visibility <= 0,
        attributes={
            "visibility": str(visibility),
            "ignored": "true" if confidence == 0 else "false",
        },
    )
    return number, shape


def _optional(fields: list[str], index: int, where: str, what: str) -> float:
    """A number the line may leave out or empty (1 then, as the fork reads it)."""
    if len(fields) <= index or not fields[index]:
        return 1.0
    return finite(fields[index], where, what)


def _keyframes(shapes: list[ParsedShape], gt: str, number: int) -> list[ParsedShape]:
    """A track's lines sorted by frame; ImportFailed for two on one frame."""
    ordered = sorted(shapes, key=_position)
    for before, after in itertools.pairwise(ordered):
        if before.frame == after.frame:
            raise ImportFailed(
                f"{gt}: track {number} has two boxes on frame {_position(after) + 1}"
            )
    return ordered


def _position(shape: ParsedShape) -> int:
    frame = shape.frame
    return frame.index if isinstance(frame, Position) else 0
