"""Matching what a file holds (`ParsedAnnotations`) to a task: frames, labels, attributes.

The result is the annotations service's document (CVAT's LabeledData: `tags`, `shapes`,
`tracks` with `label_id` and `spec_id`), which it stores all or nothing, and a report of
what was left out and why. CVAT's rules:

- frames: a number is the frame's number in the media, as CVAT's exports write it
  (`<image id>`, a track's `frame`): `start_frame + task frame * step` (CVAT's
  `rel_frame_id`; a number between two frames of the step matches nothing); a
  `Position` (MOT's frame column) is the task frame of that number, counted from the
  job's start frame for a job import (CVAT's `instance_data.start`); a name matches the
  task frame of the same path without its extension (a video's frames are named by
  their numbers in the video, `frame_000010`, ...), else the one whose file name
  (without directories and extension) is the same, when only one frame has it, else
  (CVAT's last resort, `match_dm_item`) the task frame of the number the name is
  (`000005`, `frame_000005`: CVAT takes it as a number in the task, not in the media).
  Deleted frames, and frames outside the job for a job import, match nothing.
- labels by exact name; a skeleton's points by their sublabel's name. A shape type the
  label does not take (a box of a polygon label) is left out.
- attributes by name in the label's spec; a value the spec refuses is left out (the
  shape keeps its other values); names not in the spec are left out. On tracks, the
  label's immutable attributes go on the track, the mutable ones on the keyframes.
- `source` is what the reader found in the file ("file" when it says nothing); a
  `score` outside [0, 1] is dropped; rotations are brought into [0, 360).
- `conv_mask_to_poly` turns each mask into polygons (its outer boundaries, on pixel
  corners), as CVAT's option does.
- tracks: from a format that lists keyframes (CVAT XML), the shapes marked keyframes;
  from one that lists every frame of a track (`tracks_listed_per_frame`: COCO,
  Datumaro, MOT...), the keyframes CVAT infers (`_validate_track_shapes`): the first
  visible frame, every change of visibility, every shape the file marks a keyframe, an
  outside keyframe after each gap and after the last visible frame.

Every left-out object or value is counted under its reason with a few examples
(`Skipped`); with `strict`, any of them fails the import instead (`ImportFailed`),
except attribute names a label lacks, which are only reported.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.export.imports.files import ImportFailed
from tessera.export.imports.model import (
    FrameRef,
    ParsedAnnotations,
    ParsedShape,
    ParsedTag,
    ParsedTrack,
    Position,
)
from tessera.geometry import cvat_mask_to_array, mask_to_polygons
from tessera.platform.contracts.annotations import SnapshotAttribute, SnapshotLabel

Obj = dict[str, Any]
_EXAMPLES = 5
_NO_FRAME = "a frame the task does not have (or deleted, or outside the job)"


@dataclass
class Skipped:
    """How many objects or values one reason left out, with a few examples; `strict`
    says whether a strict import fails on them (attributes a label lacks do not fail
    it: formats carry their own, such as VOC's `difficult`, and CVAT ignores them)."""

    reason: str
    strict: bool = True
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        """Count one more, keeping the first few examples."""
        self.count += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(example)


@dataclass
class Matched:
    """The document to store, what it holds, and what was left out."""

    document: Obj
    skipped: list[Skipped]

    @property
    def counts(self) -> dict[str, int]:
        """Top-level objects of each kind in the document."""
        return {kind: len(self.document[kind]) for kind in ("tags", "shapes", "tracks")}


@dataclass(frozen=True)
class TaskFrames:
    """The frames of the import's target: each task frame's name, the frames that take
    annotations (not deleted; the job's own for a job import), their sizes, how the
    media numbers them and where a job's frames start."""

    names: Sequence[str]
    allowed: Callable[[int], bool]
    sizes: Sequence[tuple[int, int]]
    """(width, height) of each task frame."""
    start: int = 0
    """The number in the media of task frame 0: the task's `DataMeta.start_frame`."""
    step: int = 1
    """Between two task frames' numbers in the media: the task's `DataMeta.frame_step`."""
    first: int = 0
    """The task frame that `Position(0)` is: the job's `start_frame` for a job import."""


class FrameIndex:
    """Frame refs to task frame numbers, as CVAT matches them."""

    def __init__(self, frames: TaskFrames) -> None:
        self._frames = frames
        self._by_path: dict[str, int] = {}
        by_stem: dict[str, list[int]] = {}
        for number, name in enumerate(frames.names):
            path = _without_extension(_normal(name))
            self._by_path.setdefault(path, number)
            by_stem.setdefault(posixpath.basename(path), []).append(number)
        self._by_stem = {stem: found[0] for stem, found in by_stem.items() if len(found) == 1}

    def number(self, ref: FrameRef) -> int | None:
        """The task frame `ref` names, or None."""
        number: int | None
        if isinstance(ref, int):
            frames = self._frames
            after, between = divmod(ref - frames.start, frames.step)
            number = None if between else self._in_task(after)
        elif isinstance(ref, Position):
            number = self._in_task(self._frames.first + ref.index)
        else:
            path = _without_extension(_normal(ref))
            number = self._by_path.get(path)
            if number is None:
                number = self._by_stem.get(posixpath.basename(path))
            if number is None:
                number = self._numbered(posixpath.basename(path))
        if number is None or not self._frames.allowed(number):
            return None
        return number

    def takes(self, number: int) -> bool:
        """Whether task frame `number` is one the import may annotate."""
        return self._in_task(number) is not None and self._frames.allowed(number)

    def _in_task(self, number: int) -> int | None:
        return number if 0 <= number < len(self._frames.names) else None

    def _numbered(self, stem: str) -> int | None:
        """CVAT's last resort: a name that is a number (`000005`, or `frame_000005` as
        video frames are named) is that frame."""
        digits = stem.removeprefix("frame_")
        if not digits.isdigit():
            return None
        number = int(digits)
        return number if number < len(self._frames.names) else None


def _normal(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/")


def _without_extension(path: str) -> str:
    root, extension = posixpath.splitext(path)
    return root if extension else path


class _Labels:
    """The task's labels by name, and their specs by attribute name."""

    def __init__(self, labels: Sequence[SnapshotLabel]) -> None:
        self.by_name = {label.name: label for label in labels if label.parent_id is None}
        self.specs = {
            label.id: {spec.name: spec for spec in label.attributes}
            for top in labels
            for label in (top, *top.sublabels)
        }

    def sublabel(self, skeleton: SnapshotLabel, name: str) -> SnapshotLabel | None:
        return next((sub for sub in skeleton.sublabels if sub.name == name), None)


def _accepts(spec: SnapshotAttribute, value: str) -> str | None:
    """The value as stored when the spec takes it (checkboxes in lower case), else None."""
    if spec.input_type in ("select", "radio"):
        return value if value in spec.values else None
    if spec.input_type == "checkbox":
        lowered = value.strip().lower()
        return lowered if lowered in ("true", "false") else None
    if spec.input_type == "number":
        try:
            number = float(value)
            low, high, step = (float(v) for v in spec.values[:3])
        except ValueError:
            return None
        inside = low <= number <= high and math.isfinite(number)
        on_step = step <= 0 or math.isclose((number - low) / step, round((number - low) / step))
        return value if inside and on_step else None
    return value


class Matcher:
    """Builds the document of one import (see the module's docstring)."""

    def __init__(
        self,
        labels: Sequence[SnapshotLabel],
        frames: TaskFrames,
        *,
        conv_mask_to_poly: bool = False,
        tracks_listed_per_frame: bool = False,
    ) -> None:
        self._labels = _Labels(labels)
        self._frames = FrameIndex(frames)
        self._per_frame = tracks_listed_per_frame
        self._sizes = frames.sizes
        self._conv_mask_to_poly = conv_mask_to_poly
        self._skipped: dict[str, Skipped] = {}

    @staticmethod
    def frame_index(frames: TaskFrames) -> FrameIndex:
        """The index that matches frame refs to `frames`, as a match does."""
        return FrameIndex(frames)

    def match(self, parsed: ParsedAnnotations, *, strict: bool = False) -> Matched:
        """The document for `parsed`; with `strict`, ImportFailed at the first thing left
        out."""
        for name in parsed.labels:
            if name not in self._labels.by_name:
                self._skip("a label the task does not have", name)
        document: Obj = {
            "tags": [tag for tag in map(self._tag, parsed.tags) if tag is not None],
            "shapes": [obj for shape in parsed.shapes for obj in self._shape(shape)],
            "tracks": [track for track in map(self._track, parsed.tracks) if track is not None],
        }
        skipped = list(self._skipped.values())
        fatal = [skip for skip in skipped if skip.strict]
        if strict and fatal:
            first = fatal[0]
            raise ImportFailed(
                f"strict import: {first.count} left out as {first.reason} "
                f"(e.g. {', '.join(first.examples)})"
            )
        return Matched(document, skipped)

    def frames_not_found(self, refs: Iterable[str]) -> None:
        """Report frames a reader found no task frame for (it left their annotations
        out: YOLO needs a frame's size to read them)."""
        for ref in refs:
            self._skip(_NO_FRAME, ref)

    def _skip(self, reason: str, example: str, *, strict: bool = True) -> None:
        self._skipped.setdefault(reason, Skipped(reason, strict)).add(example)

    # -- frames and labels

    def _frame(self, ref: FrameRef) -> int | None:
        number = self._frames.number(ref)
        if number is None:
            self._skip(_NO_FRAME, str(ref))
        return number

    def _label(self, name: str, kind: str) -> SnapshotLabel | None:
        label = self._labels.by_name.get(name)
        if label is None:
            self._skip("a label the task does not have", name)
            return None
        if label.type not in ("any", kind):
            self._skip("a shape type its label does not take", f"{kind} of {label.type} {name}")
            return None
        return label

    def _attributes(
        self, label: SnapshotLabel, values: Mapping[str, str], mutable: bool | None
    ) -> list[Obj]:
        specs = self._labels.specs.get(label.id, {})
        out = []
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None:
                self._skip(
                    "an attribute its label does not have", f"{name} of {label.name}", strict=False
                )
                continue
            if mutable is not None and spec.mutable != mutable:
                continue  # the other level of the track carries it
            stored = _accepts(spec, str(value))
            if stored is None:
                self._skip(
                    "an attribute value outside its spec", f"{name}={value!r} of {label.name}"
                )
                continue
            out.append({"spec_id": spec.id, "value": stored})
        return out

    # -- objects

    def _tag(self, tag: ParsedTag) -> Obj | None:
        frame = self._frame(tag.frame)
        label = self._label(tag.label, "tag") if frame is not None else None
        if frame is None or label is None:
            return None
        return {
            "frame": frame,
            "label_id": label.id,
            "group": tag.group,
            "source": tag.source,
            "attributes": self._attributes(label, tag.attributes, None),
        }

    def _geometry(self, shape: ParsedShape) -> Obj:
        obj: Obj = {
            "type": shape.type,
            "points": [float(v) for v in shape.points],
            "occluded": shape.occluded,
            "outside": shape.outside,
            "z_order": shape.z_order,
            "rotation": shape.rotation % 360.0,
        }
        if shape.score is not None and 0.0 <= shape.score <= 1.0:
            obj["score"] = shape.score
        return obj

    def _shape(self, shape: ParsedShape) -> Iterable[Obj]:
        frame = self._frame(shape.frame)
        label = self._label(shape.label, _kind_for_label(shape, self._conv_mask_to_poly))
        if frame is None or label is None:
            return []
        base: Obj = {
            **self._geometry(shape),
            "frame": frame,
            "label_id": label.id,
            "group": shape.group,
            "source": shape.source,
            "attributes": self._attributes(label, shape.attributes, None),
        }
        if shape.type == "skeleton":
            base["elements"] = self._elements(label, shape.elements, frame)
            return [base]
        if shape.type == "mask" and self._conv_mask_to_poly:
            return self._polygons_of(base, frame)
        return [base]

    def _elements(
        self, skeleton: SnapshotLabel, elements: Sequence[ParsedShape], frame: int
    ) -> list[Obj]:
        out = []
        used: set[int] = set()
        for element in elements:
            sublabel = self._labels.sublabel(skeleton, element.label)
            if sublabel is None or sublabel.id in used:
                self._skip("a skeleton point its skeleton does not have", element.label)
                continue
            used.add(sublabel.id)
            out.append({
                **self._geometry(element),
                "type": "points",
                "frame": frame,
                "label_id": sublabel.id,
                "group": 0,
                "source": element.source,
                "attributes": self._attributes(sublabel, element.attributes, None),
            })  # fmt: skip
        return out

    def _polygons_of(self, mask: Obj, frame: int) -> list[Obj]:
        width, height = self._sizes[frame]
        pixels = cvat_mask_to_array(mask["points"], height, width)
        rings = [ring for ring in mask_to_polygons(pixels) if _signed_area(ring) > 0]
        return [{**mask, "type": "polygon", "points": ring.tolist()} for ring in rings]

    def _track(self, track: ParsedTrack) -> Obj | None:
        if not track.shapes:
            return None
        kind = track.shapes[0].type
        label = self._label(track.label, kind)
        if label is None:
            return None
        keyframes = self._keyframes(label, track.shapes)
        if not keyframes:
            return None
        immutable = {**track.shapes[0].attributes, **track.attributes}
        out: Obj = {
            "frame": keyframes[0]["frame"],
            "label_id": label.id,
            "group": track.group,
            "source": track.source,
            "attributes": self._attributes(label, immutable, False),
            "shapes": keyframes,
            "elements": [],
        }
        if kind == "skeleton":
            out["elements"] = [
                element
                for element in (self._element_track(label, e) for e in track.elements)
                if element is not None
            ]
        return out

    def _keyframes(self, label: SnapshotLabel, shapes: Sequence[ParsedShape]) -> list[Obj]:
        placed = sorted(
            ((frame, shape) for shape in shapes if (frame := self._frame(shape.frame)) is not None),
            key=lambda pair: pair[0],
        )
        if self._per_frame:
            kept = self._inferred_keyframes(placed)
        else:  # an interpolated frame: the keyframes around it make it again
            kept = [(frame, shape, shape.outside) for frame, shape in placed if shape.keyframe]
        by_frame: dict[int, Obj] = {}
        for frame, shape, outside in kept:
            keyframe = {
                **self._geometry(shape),
                "frame": frame,
                "outside": outside,
                "attributes": self._attributes(label, shape.attributes, True),
            }
            keyframe.pop("score", None)
            by_frame[frame] = keyframe
        return [by_frame[frame] for frame in sorted(by_frame)]

    def _inferred_keyframes(
        self, placed: Sequence[tuple[int, ParsedShape]]
    ) -> list[tuple[int, ParsedShape, bool]]:
        """CVAT's keyframes of a track listed frame by frame: (frame, shape, outside)."""
        kept: list[tuple[int, ParsedShape, bool]] = []
        previous: tuple[int, ParsedShape] | None = None
        for frame, shape in placed:
            was_visible = previous is not None and not previous[1].outside
            visible = not shape.outside
            gap = previous is not None and was_visible and previous[0] + 1 < frame
            if previous is not None and gap:
                kept.append((previous[0] + 1, previous[1], True))
            if was_visible != visible or (visible and (gap or shape.keyframe)):
                kept.append((frame, shape, shape.outside))
            previous = (frame, shape)
        if previous is not None and not previous[1].outside:
            after = previous[0] + 1
            if self._frames.takes(after):
                kept.append((after, previous[1], True))
        return kept

    def _element_track(self, skeleton: SnapshotLabel, track: ParsedTrack) -> Obj | None:
        sublabel = self._labels.sublabel(skeleton, track.label)
        if sublabel is None:
            self._skip("a skeleton point its skeleton does not have", track.label)
            return None
        keyframes = self._keyframes(sublabel, track.shapes)
        if not keyframes:
            return None
        return {
            "frame": keyframes[0]["frame"],
            "label_id": sublabel.id,
            "group": 0,
            "source": track.source,
            "attributes": self._attributes(sublabel, track.attributes, False),
            "shapes": keyframes,
        }


def _kind_for_label(shape: ParsedShape, conv_mask_to_poly: bool) -> str:
    """The shape type the label must take: a mask turned into polygons is a polygon."""
    return "polygon" if shape.type == "mask" and conv_mask_to_poly else shape.type


def _signed_area(ring: npt.NDArray[np.float64]) -> float:
    """The shoelace area of a flat ring (positive for outer boundaries, y down)."""
    xs, ys = ring[0::2], ring[1::2]
    return 0.5 * float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))
