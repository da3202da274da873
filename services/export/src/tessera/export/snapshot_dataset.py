"""The annotations service's snapshot stream as a writer's `Dataset`, in flat memory.

    async with client.snapshot(task_id=task_id) as snapshot:
        dataset = SnapshotDataset(snapshot.header, snapshot, frames)
        await write_coco(dataset, archive, options)

`frames` are the task's frames (names and sizes from ingest's data meta), a sequence
indexed by task frame number. A task's snapshot yields every task frame; a job's yields
the job's frames; `excluded` frames (the task's deleted frames) are left out, with
whatever is on them.

The snapshot comes in frame order (tags and shapes by frame, tracks by their first frame).
`SnapshotDataset.frames` holds only the tags and shapes of frames not yet emitted and, for
each active track, a lazy iterator over its expanded frames
(`tessera.geometry.iter_interpolated_shapes`, CVAT's semantics, up to the stop frame of the
job that holds the track). A frame is emitted as soon as an item with a greater frame is
read (no later item can add to it), or when the stream ends. Items are pulled from the
stream only as frames are asked for.

A track's shapes carry its position among the tracks read (0, 1, ... in the stream's
order: by first frame, then id) as `track_id`, as CVAT numbers a task's tracks, rather
than its id, which differs from task to task: so an export imported into another task
and exported again gives the same file.

Attributes are converted from `{spec_id, value}` to values keyed by the attribute's name;
ids that are not in the label's spec (stale rows) are dropped. Track frames carry the
left keyframe's (mutable) attributes then the track's (immutable) ones, as CVAT writes them.

Overlapping jobs: a task's snapshot carries an object once per job that stores it. Objects
are deduplicated by `(kind, id)`: the first copy read is kept. Limitations: unlike the
task's annotations GET (`tessera.geometry.merge.merge_segments`), objects of different ids
are never matched by similarity, and a track stored by several jobs under one id keeps the
first copy read (the one starting earliest), expanded up to the stop frame of that copy's
job; keyframes that only a later job's copy holds are not united into it.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from tessera.export.model import (
    AttributeSpec,
    FrameAnnotations,
    FrameInfo,
    InputType,
    Label,
    LabelType,
    Shape,
    ShapeType,
    Source,
    Tag,
    TaskInfo,
)
from tessera.geometry.interpolation import (
    MaskMode,
    interpolate_linear_tracks,
    interpolate_poly_tracks,
    iter_interpolated_shapes,
)
from tessera.platform.clients.annotations import SnapshotItem
from tessera.platform.contracts.annotations import SnapshotHeader, SnapshotLabel

_LABEL_TYPES = frozenset(get_args(LabelType))
_INPUT_TYPES = frozenset(get_args(InputType))
_SHAPE_TYPES = frozenset(get_args(ShapeType))
_SOURCES = frozenset(get_args(Source))

Obj = Mapping[str, Any]


def convert_label(label: SnapshotLabel) -> Label:
    """A snapshot label (with its attribute specs and skeleton sublabels) as a `Label`."""
    if label.type not in _LABEL_TYPES:
        raise ValueError(f"label {label.id}: unknown type {label.type!r}")
    specs = []
    for spec in label.attributes:
        if spec.input_type not in _INPUT_TYPES:
            raise ValueError(f"attribute {spec.id}: unknown input type {spec.input_type!r}")
        specs.append(
            AttributeSpec(
                id=spec.id,
                name=spec.name,
                input_type=cast(InputType, spec.input_type),
                mutable=spec.mutable,
                values=tuple(spec.values),
                default_value=spec.default_value,
            )
        )
    return Label(
        id=label.id,
        name=label.name,
        type=cast(LabelType, label.type),
        color=label.color,
        attributes=tuple(specs),
        sublabels=tuple(convert_label(sub) for sub in label.sublabels),
        svg=label.svg,
        parent_id=label.parent_id,
    )


def task_info(header: SnapshotHeader) -> TaskInfo:
    """The snapshot's task with its labels converted."""
    task = header.task
    mode: Literal["annotation", "interpolation"] = (
        "interpolation" if task.mode == "interpolation" else "annotation"
    )
    dimension: Literal["2d", "3d"] = "3d" if task.dimension == "3d" else "2d"
    return TaskInfo(
        id=task.id,
        name=task.name,
        mode=mode,
        dimension=dimension,
        size=task.size,
        labels=tuple(convert_label(label) for label in header.labels),
        subset=task.subset,
        project_name=task.project_name,
        owner=task.owner or "",
    )


def _spec_names(labels: Sequence[Label]) -> dict[int, dict[int, str]]:
    found: dict[int, dict[int, str]] = {}
    for label in labels:
        found[label.id] = {spec.id: spec.name for spec in label.attributes}
        found.update(_spec_names(label.sublabels))
    return found


@dataclass(frozen=True, slots=True)
class _Converter:
    """CVAT's JSON objects to the model's shapes and tags."""

    specs: Mapping[int, Mapping[int, str]]

    def attributes(self, label_id: int, raw: object) -> dict[str, str]:
        names = self.specs.get(label_id, {})
        out: dict[str, str] = {}
        for attr in cast(Sequence[Obj], raw or ()):
            name = names.get(attr["spec_id"])
            if name is not None and name not in out:
                out[name] = str(attr["value"])
        return out

    def shape(self, obj: Obj, *, track: Obj | None = None) -> Shape:
        kind = obj["type"]
        if kind not in _SHAPE_TYPES:
            raise ValueError(f"unknown shape type {kind!r}")
        source = (track or obj).get("source", "manual")
        label_id = int(obj["label_id"])
        score = (track or obj).get("score")
        return Shape(
            type=kind,
            label_id=label_id,
            points=list(obj["points"]),
            id=None if track is not None else obj.get("id"),
            rotation=float(obj.get("rotation") or 0.0),
            occluded=bool(obj.get("occluded", False)),
            outside=bool(obj.get("outside", False)),
            z_order=int(obj.get("z_order") or 0),
            group=int(obj.get("group") or 0),
            source=source if source in _SOURCES else "manual",
            attributes=self.attributes(label_id, obj.get("attributes")),
            elements=tuple(self.shape(e, track=track) for e in obj.get("elements") or ()),
            score=None if score is None else float(score),
            track_id=None if track is None else track.get("id"),
            keyframe=bool(obj.get("keyframe", True)),
        )

    def tag(self, obj: Obj) -> Tag:
        label_id = int(obj["label_id"])
        source = obj.get("source", "manual")
        score = obj.get("score")
        return Tag(
            label_id=label_id,
            id=obj.get("id"),
            group=int(obj.get("group") or 0),
            source=source if source in _SOURCES else "manual",
            attributes=self.attributes(label_id, obj.get("attributes")),
            score=None if score is None else float(score),
        )


@dataclass(slots=True)
class _Pending:
    """What the stream gave for one frame not yet emitted."""

    shapes: list[Shape] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    seen: set[tuple[str, int]] = field(default_factory=set)


def emitted_frames(header: SnapshotHeader, size: int, excluded: Collection[int]) -> list[int]:
    """The task frames a snapshot's dataset emits, in order: all `size` frames of a task,
    or a job's own, less the `excluded` (deleted) ones."""
    numbers: Iterable[int]
    if header.scope == "job":
        numbers = sorted({f for job in header.jobs for f in job.task_frames()})
    else:
        numbers = range(size)
    left_out = frozenset(excluded)
    return [f for f in numbers if 0 <= f < size and f not in left_out]


class SnapshotDataset:
    """A `Dataset` over a snapshot's header and items and the task's frames.

    `frames()` reads the items once, as it goes; it can be iterated once.
    """

    def __init__(
        self,
        header: SnapshotHeader,
        items: AsyncIterable[SnapshotItem],
        frames: Sequence[FrameInfo],
        *,
        excluded: Collection[int] = (),
        mask_mode: MaskMode = "repeat",
    ) -> None:
        self._header = header
        self._excluded = frozenset(excluded)
        self._items = items
        self._frames = frames
        self._mask_mode: MaskMode = mask_mode
        self._task = task_info(header)
        self._convert = _Converter(_spec_names(self._task.labels))
        self._stops = {job.id: job.stop_frame for job in header.jobs}
        self._used = False

    @property
    def task(self) -> TaskInfo:
        """The task, with its labels."""
        return self._task

    def frame_numbers(self) -> Iterator[int]:
        """The task frames emitted, in order: all of a task's, or a job's own, less the
        excluded (deleted) ones."""
        return iter(emitted_frames(self._header, len(self._frames), self._excluded))

    def _track_shapes(self, track: Obj, start: int, stop: int) -> Iterator[tuple[int, Shape]]:
        """The track's (frame, shape) on [start, stop]: boxes, ellipses, cuboids, polygons
        and polylines from the batch kernels, window by window; other tracks (points,
        masks, skeletons) through the per-frame expansion."""
        batch = _batch_track(track)
        if batch is not None:
            return batch.shapes(self._convert, track, start, stop)
        return (
            (int(shape["frame"]), self._convert.shape(shape, track=track))
            for shape in iter_interpolated_shapes(
                track, stop, start_frame=start, mask_mode=self._mask_mode
            )
        )

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        """Every frame, annotated or not, in frame order."""
        if self._used:
            raise RuntimeError("a SnapshotDataset's frames can be read once")
        self._used = True
        numbers = self.frame_numbers()
        upcoming = next(numbers, None)
        pending: dict[int, _Pending] = {}
        # (next frame, sequence, cursor, its shape there): the active tracks, by next frame
        active: list[tuple[int, int, Iterator[tuple[int, Shape]], Shape]] = []
        seen_tracks: set[int] = set()
        sequence = 0
        ordinal = 0
        last = -1

        def emit(frame: int) -> FrameAnnotations:
            got = pending.pop(frame, None)
            shapes = list(got.shapes) if got else []
            on_frame: list[tuple[int, Shape]] = []
            while active and active[0][0] <= frame:
                at, seq, cursor, shape = heapq.heappop(active)
                if at == frame:
                    on_frame.append((seq, shape))
                following = next(cursor, None)
                if following is not None:
                    heapq.heappush(active, (following[0], seq, cursor, following[1]))
            on_frame.sort(key=lambda pair: pair[0])
            shapes += [shape for _, shape in on_frame]
            return FrameAnnotations(self._frames[frame], shapes, got.tags if got else ())

        async for item in self._items:
            data = item.data
            frame = int(data["frame"])
            if frame < last:
                raise ValueError(f"snapshot out of frame order: frame {frame} after {last}")
            last = frame
            while upcoming is not None and upcoming < frame:
                yield emit(upcoming)
                upcoming = next(numbers, None)
            object_id = data.get("id")
            if item.kind == "track":
                if object_id is not None:
                    if object_id in seen_tracks:
                        continue
                    seen_tracks.add(object_id)
                stop = self._stops.get(item.job_id, len(self._frames) - 1)
                if frame > stop:
                    continue
                # Shapes carry the track's position in the stream, as CVAT numbers tracks.
                cursor = self._track_shapes({**data, "id": ordinal}, frame, stop)
                ordinal += 1
                head = next(cursor, None)
                if head is not None:
                    heapq.heappush(active, (head[0], sequence, cursor, head[1]))
                    sequence += 1
                continue
            if upcoming != frame:
                continue  # a frame that is not emitted (outside the job's frames)
            slot = pending.setdefault(frame, _Pending())
            if object_id is not None:
                key = (item.kind, int(object_id))
                if key in slot.seen:
                    continue
                slot.seen.add(key)
            if item.kind == "tag":
                slot.tags.append(self._convert.tag(data))
            else:
                slot.shapes.append(self._convert.shape(data))
        while upcoming is not None:
            yield emit(upcoming)
            upcoming = next(numbers, None)


_LINEAR_KINDS = frozenset({"rectangle", "ellipse", "cuboid"})
_POLY_KINDS = frozenset({"polygon", "polyline"})
_WINDOW_FRAMES = 64

Row = tuple[int, list[float], float, bool, bool]
"""(frame, points, rotation, outside, keyframe) of one frame of a track."""


@dataclass(frozen=True, slots=True)
class _BatchTrack:
    """A track the batch kernels expand: its kind, keyframe frames, rotations and
    `outside` flags, and its keyframes as stored (for their attributes, `occluded` and
    `z_order`)."""

    kind: ShapeType
    frames: npt.NDArray[np.int64]
    rotation: npt.NDArray[np.float64]
    outside: npt.NDArray[np.bool_]
    keyframes: Sequence[Obj]

    def rows(self, start: int, stop: int) -> Iterator[Row]:
        """The track's frames on [start, stop] (a window), from the batch kernel."""
        raise NotImplementedError

    def shapes(
        self, convert: _Converter, track: Obj, start: int, stop: int
    ) -> Iterator[tuple[int, Shape]]:
        """(frame, shape) on [start, stop], as `iter_interpolated_shapes` gives them,
        expanded over windows of frames (a window's arrays at a time)."""
        label_id = int(track["label_id"])
        given = track.get("source", "manual")
        source = cast(Source, given if given in _SOURCES else "manual")
        score = None if track.get("score") is None else float(track["score"])
        kind, group, track_id = self.kind, int(track.get("group") or 0), track.get("id")
        left = [
            (bool(kf.get("occluded", False)), int(kf.get("z_order") or 0),
             convert.attributes(label_id, attributes))
            for kf, attributes in zip(
                self.keyframes, _carried_attributes(self.keyframes, track), strict=True
            )
        ]  # fmt: skip
        starts = self.frames.tolist()
        last = starts[-1] if self.outside[-1] else stop
        for window in range(max(start, int(track.get("frame", 0))), min(last, stop) + 1,
                            _WINDOW_FRAMES):  # fmt: skip
            for frame, points, rotation, outside, keyframe in self.rows(
                window, min(window + _WINDOW_FRAMES - 1, stop)
            ):
                occluded, z_order, attributes = left[bisect.bisect_right(starts, frame) - 1]
                # positional: Shape's fields in order (a slotted dataclass's fastest init)
                yield frame, Shape(
                    kind, label_id, points, None, rotation, occluded, outside, z_order, group,
                    source, attributes, (), score, track_id, keyframe,
                )  # fmt: skip

    def _around(self, start: int, stop: int) -> tuple[int, int]:
        """The keyframes that decide frames start..stop: from the last one at or before
        `start` to the first one at or after `stop` (a window needs no others)."""
        first = max(int(np.searchsorted(self.frames, start, side="right")) - 1, 0)
        last = int(np.searchsorted(self.frames, stop, side="left")) + 1
        return first, min(last, len(self.frames))


@dataclass(frozen=True, slots=True)
class _LinearTrack(_BatchTrack):
    """A track of boxes, ellipses or cuboids (`interpolate_linear_tracks`)."""

    points: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))

    def rows(self, start: int, stop: int) -> Iterator[Row]:
        """The track's frames on [start, stop], from `interpolate_linear_tracks`."""
        lo, hi = self._around(start, stop)
        found = interpolate_linear_tracks(
            [0, hi - lo], self.frames[lo:hi], self.points[lo:hi], stop,
            rotation=self.rotation[lo:hi], outside=self.outside[lo:hi], start_frame=start,
        )  # fmt: skip
        columns = np.flatnonzero(found.present[0])
        return zip(
            (columns + start).tolist(),
            found.points[0, columns].tolist(),
            found.rotation[0, columns].tolist(),
            found.outside[0, columns].tolist(),
            found.keyframe[0, columns].tolist(),
            strict=True,
        )


@dataclass(frozen=True, slots=True)
class _PolyTrack(_BatchTrack):
    """A track of polygons or polylines (`interpolate_poly_tracks`)."""

    vertex_offsets: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, np.int64))
    coords: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))

    def rows(self, start: int, stop: int) -> Iterator[Row]:
        """The track's frames on [start, stop], from `interpolate_poly_tracks`."""
        lo, hi = self._around(start, stop)
        first, last = self.vertex_offsets[lo], self.vertex_offsets[hi]
        found = interpolate_poly_tracks(
            [0, hi - lo], self.frames[lo:hi], self.vertex_offsets[lo : hi + 1] - first,
            self.coords[first:last], stop, closed=self.kind == "polygon",
            outside=self.outside[lo:hi], start_frame=start,
        )  # fmt: skip
        columns = np.flatnonzero(found.present[0])
        frames = columns + start
        flat = found.coords.reshape(-1)
        begins = (2 * found.first[0, columns]).tolist()
        sizes = (2 * found.count[0, columns]).tolist()
        # A polygon keeps the rotation of the keyframe at or before each frame.
        left = np.searchsorted(self.frames, frames, side="right") - 1
        return zip(
            frames.tolist(),
            [flat[b : b + n].tolist() for b, n in zip(begins, sizes, strict=True)],
            self.rotation[left].tolist(),
            found.outside[0, columns].tolist(),
            found.keyframe[0, columns].tolist(),
            strict=True,
        )


def _batch_track(track: Obj) -> _BatchTrack | None:
    """The track as a batch kernel takes it, or None when the per-frame expansion must
    handle it (another shape type, elements, or keyframes a kernel would refuse)."""
    keyframes = sorted(track.get("shapes") or (), key=lambda kf: kf.get("frame", 0))
    if not keyframes or track.get("elements"):
        return None
    kinds = {kf.get("type") for kf in keyframes}
    if len(kinds) != 1 or not kinds <= _LINEAR_KINDS | _POLY_KINDS:
        return None
    kind = cast(ShapeType, kinds.pop())
    try:
        frames = np.array([kf["frame"] for kf in keyframes], dtype=np.int64)
        rotation = np.array([kf.get("rotation") or 0.0 for kf in keyframes], np.float64)
        if kind in _POLY_KINDS:
            sizes = [len(kf["points"]) for kf in keyframes]
            coords = np.array([v for kf in keyframes for v in kf["points"]], dtype=np.float64)
            points = np.zeros((0, 4))
        else:
            points = np.array([kf["points"] for kf in keyframes], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if frames.ndim != 1 or (np.diff(frames) <= 0).any() or (frames < 0).any():
        return None
    outside = np.array([bool(kf.get("outside", False)) for kf in keyframes], dtype=np.bool_)
    if kind in _POLY_KINDS:
        if coords.ndim != 1 or min(sizes) < 2 or any(size % 2 for size in sizes):
            return None
        if not (np.isfinite(coords).all() and np.isfinite(rotation).all()):
            return None
        offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(np.array(sizes) // 2, out=offsets[1:])
        coords = coords.reshape(-1, 2)
        return _PolyTrack(kind, frames, rotation, outside, keyframes, offsets, coords)
    if (
        points.ndim != 2
        or points.shape[1] != (16 if kind == "cuboid" else 4)
        or not (np.isfinite(points).all() and np.isfinite(rotation).all())
    ):
        return None
    return _LinearTrack(kind, frames, rotation, outside, keyframes, points)


def _carried_attributes(keyframes: Sequence[Obj], track: Obj) -> list[list[Obj]]:
    """Each keyframe's attributes as a frame of the track carries them: its own, then the
    mutable ones of the keyframes before it that it does not set, then the track's."""
    carried: list[list[Obj]] = []
    for keyframe in keyframes:
        own = list(keyframe.get("attributes") or ())
        if carried:
            given = {attribute["spec_id"] for attribute in own}
            own += [a for a in carried[-1] if a["spec_id"] not in given]
        carried.append(own)
    return [attributes + list(track.get("attributes") or ()) for attributes in carried]
