"""Track interpolation with CVAT's semantics (DESIGN.md, "Tracks and interpolation").

A track holds keyframes only; these functions produce the shape on every frame up to the
job's stop frame, in CVAT's shape form. The behaviour follows CVAT's server-side
`TrackManager.get_interpolated_shapes` (cvat/apps/dataset_manager/annotation.py):

- every keyframe in range is emitted, outside ones included (flagged `outside`), as CVAT
  does: an outside keyframe marks the end of a visible run for exporters;
- between a visible keyframe and the next one, frames are generated from the left
  keyframe (occluded, z_order, attributes) with interpolated geometry; after an outside
  keyframe nothing is generated until the next keyframe; after the last keyframe a
  visible shape repeats up to the stop frame;
- rectangle, ellipse, cuboid and the skeleton shape itself: linear per number, rotation
  along the shorter arc; points: linear only when both keyframes hold exactly one point
  (CVAT's `points_interpolation`), otherwise the left keyframe repeats, whatever the
  counts; polygon, polyline: CVAT's arc-length vertex matching and thinning;
- skeleton elements are sub-tracks interpolated on the parent's frames with their
  outside shapes kept (the parent controls visibility); a parent frame whose elements are
  all outside is dropped, as in CVAT's `TrackManager.to_shapes`;
- mutable attributes missing on a keyframe are carried from the keyframe before it;
  track-level attributes are appended on every frame;
- frames before the track's own `frame` are not emitted (CVAT filters on it).

Differences from CVAT: keyframes on the same frame raise ValueError (CVAT asserts),
keyframes of different types raise ValueError (CVAT raises NotImplementedError), and a
rotation difference of exactly 180 degrees turns by -180 (CVAT's `find_angle_diff`
turns by +1 degree there, a bug). Mask tracks, which CVAT cannot interpolate, repeat
the left keyframe by default; `mask_mode="sdf"` interpolates signed distance fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tessera.geometry import _interp_kernels as _k
from tessera.geometry.rle import array_to_cvat_mask, cvat_mask_to_array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Shape = dict[str, Any]
MaskMode = Literal["repeat", "sdf"]

SHAPE_TYPES = frozenset(
    {"rectangle", "ellipse", "cuboid", "points", "polygon", "polyline", "mask", "skeleton"}
)
_FIXED_SIZES = {"rectangle": 4, "ellipse": 4, "cuboid": 16}
_LINEAR_TYPES = frozenset({"rectangle", "ellipse", "cuboid", "skeleton"})
_POLY_TYPES = frozenset({"polygon", "polyline"})
_CHUNK_FRAMES = 256


@dataclass(frozen=True, slots=True)
class _Keyframe:
    frame: int
    points: FloatArray
    rotation: float
    outside: bool
    occluded: bool
    z_order: int
    attributes: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Track:
    type: str
    label_id: int
    frame: int
    group: int | None
    source: str
    attributes: list[dict[str, Any]]
    keyframes: list[_Keyframe]
    elements: list[_Track]


@dataclass(frozen=True, slots=True)
class _Frame:
    frame: int
    left: _Keyframe
    points: FloatArray
    rotation: float
    keyframe: bool
    outside: bool


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _int_field(obj: Mapping[str, Any], key: str, where: str, minimum: int | None = None) -> int:
    value = obj.get(key)
    if not _is_int(value):
        raise ValueError(f"{where}: '{key}' must be an integer, got {value!r}")
    number = int(value)  # type: ignore[arg-type]
    if minimum is not None and number < minimum:
        raise ValueError(f"{where}: '{key}' must be >= {minimum}, got {number}")
    return number


def _bool_field(obj: Mapping[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{where}: '{key}' must be a boolean, got {value!r}")
    return bool(value)


def _attributes(obj: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    value = obj.get("attributes", [])
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"{where}: 'attributes' must be a list of {{spec_id, value}}")
    out = []
    seen = set()
    for attr in value:
        if not isinstance(attr, Mapping):
            raise ValueError(f"{where}: attribute {attr!r} is not an object")
        spec = _int_field(attr, "spec_id", f"{where} attribute")
        if not isinstance(attr.get("value"), str):
            raise ValueError(f"{where}: attribute {spec} 'value' must be a string")
        if spec in seen:
            raise ValueError(f"{where}: attribute spec_id {spec} given twice")
        seen.add(spec)
        out.append({"spec_id": spec, "value": attr["value"]})
    return out


def coords_array(points: object, where: str) -> FloatArray:
    """Validate a flat list of finite numbers and return it as a float64 array."""
    try:
        raw = np.asarray(points)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: 'points' must be a flat list of numbers") from exc
    if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iuf"):
        raise ValueError(f"{where}: 'points' must be a flat list of numbers")
    arr = np.ascontiguousarray(raw, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: 'points' contains NaN or infinity")
    return arr


def _check_points(shape_type: str, pts: FloatArray, where: str) -> None:
    size = pts.shape[0]
    expected = _FIXED_SIZES.get(shape_type)
    if expected is not None and size != expected:
        raise ValueError(f"{where}: a {shape_type} needs {expected} numbers, got {size}")
    if (shape_type in _POLY_TYPES or shape_type == "points") and (size == 0 or size % 2):
        raise ValueError(f"{where}: a {shape_type} needs an even, non-zero count, got {size}")
    if shape_type == "mask":
        _check_mask(pts, where)


def _check_mask(pts: FloatArray, where: str) -> None:
    # As CVAT: box bounds are truncated to ints and runs may stop short of the box's end.
    if pts.shape[0] < 5:
        raise ValueError(f"{where}: a mask needs run lengths and [left, top, right, bottom]")
    runs = pts[:-4]
    if not np.array_equal(runs, np.floor(runs)) or (pts < 0).any():
        raise ValueError(f"{where}: mask run lengths and box must be non-negative integers")
    left, top, right, bottom = (int(v) for v in pts[-4:])
    if right < left or bottom < top:
        raise ValueError(f"{where}: mask box has right < left or bottom < top")
    if runs.sum() > (right - left + 1) * (bottom - top + 1):
        raise ValueError(f"{where}: mask run lengths cover more than the box")


def _parse_track(track: object, where: str, element: bool = False) -> _Track:
    if not isinstance(track, Mapping):
        raise ValueError(f"{where}: a track must be an object")
    shapes = track.get("shapes")
    if not isinstance(shapes, Sequence) or isinstance(shapes, str | bytes):
        raise ValueError(f"{where}: 'shapes' must be a list of keyframes")
    group = track.get("group", 0)
    if group is not None and not _is_int(group):
        raise ValueError(f"{where}: 'group' must be an integer or null")
    source = track.get("source", "manual")
    if not isinstance(source, str):
        raise ValueError(f"{where}: 'source' must be a string")
    label_id = _int_field(track, "label_id", where)
    track_frame = _int_field(track, "frame", where, 0) if "frame" in track else 0
    keyframes: list[_Keyframe] = []
    types = set()
    frames_seen: set[int] = set()
    for i, shape in enumerate(shapes):
        kw = f"{where} keyframe {i}"
        if not isinstance(shape, Mapping):
            raise ValueError(f"{kw}: must be an object")
        shape_type = shape.get("type")
        if shape_type not in SHAPE_TYPES:
            raise ValueError(f"{kw}: unknown 'type' {shape_type!r}")
        if element and shape_type != "points":
            raise ValueError(f"{kw}: skeleton elements must be 'points' shapes")
        types.add(shape_type)
        frame = _int_field(shape, "frame", kw, 0)
        if frame in frames_seen:
            raise ValueError(f"{where}: two keyframes on frame {frame}")
        frames_seen.add(frame)
        pts = coords_array(shape.get("points"), kw)
        _check_points(shape_type, pts, kw)
        rotation = shape.get("rotation", 0.0)
        if not isinstance(rotation, int | float | np.integer | np.floating) or isinstance(
            rotation, bool
        ):
            raise ValueError(f"{kw}: 'rotation' must be a number")
        if not math.isfinite(rotation):
            raise ValueError(f"{kw}: 'rotation' must be finite")
        z_order = _int_field(shape, "z_order", kw) if "z_order" in shape else 0
        keyframes.append(
            _Keyframe(
                frame=frame,
                points=pts,
                rotation=float(rotation),
                outside=_bool_field(shape, "outside", kw),
                occluded=_bool_field(shape, "occluded", kw),
                z_order=z_order,
                attributes=_attributes(shape, kw),
            )
        )
    if len(types) > 1:
        raise ValueError(f"{where}: keyframes mix shape types {sorted(types)}")
    shape_type = types.pop() if types else "points"
    if shape_type in _LINEAR_TYPES and len({kf.points.shape[0] for kf in keyframes}) > 1:
        raise ValueError(f"{where}: {shape_type} keyframes differ in their number of points")
    keyframes.sort(key=lambda kf: kf.frame)
    carried: list[_Keyframe] = []
    for kf in keyframes:
        extra = []
        if carried:
            own = {a["spec_id"] for a in kf.attributes}
            extra = [dict(a) for a in carried[-1].attributes if a["spec_id"] not in own]
        carried.append(
            _Keyframe(
                kf.frame,
                kf.points,
                kf.rotation,
                kf.outside,
                kf.occluded,
                kf.z_order,
                kf.attributes + extra,
            )
        )
    raw_elements = track.get("elements") or []
    if not isinstance(raw_elements, Sequence) or isinstance(raw_elements, str | bytes):
        raise ValueError(f"{where}: 'elements' must be a list of tracks")
    if raw_elements and (element or shape_type != "skeleton"):
        raise ValueError(f"{where}: only skeleton tracks have elements")
    elements = [
        _parse_track(e, f"{where} element {i}", element=True) for i, e in enumerate(raw_elements)
    ]
    return _Track(
        type=shape_type,
        label_id=label_id,
        frame=track_frame,
        group=None if group is None else int(group),
        source=source,
        attributes=_attributes(track, where),
        keyframes=carried,
        elements=elements,
    )


def _between(
    shape_type: str,
    *,
    left: _Keyframe,
    right: _Keyframe,
    lo: int,
    hi: int,
    mask_mode: MaskMode,
) -> Iterator[_Frame]:
    n_left = left.points.shape[0]
    if shape_type in _LINEAR_TYPES or (
        shape_type == "points" and n_left == 2 and right.points.shape[0] == 2
    ):
        for fa in range(lo, hi, _CHUNK_FRAMES):
            fb = min(fa + _CHUNK_FRAMES, hi)
            pts, rot = _k.lerp_frames(
                left.points, right.points, left.rotation, right.rotation,
                left.frame, right.frame, fa, fb,
            )  # fmt: skip
            for row in range(fb - fa):
                yield _Frame(fa + row, left, pts[row], float(rot[row]), False, left.outside)
    elif shape_type in _POLY_TYPES:
        closed = shape_type == "polygon"
        lp = _closed(left.points, closed)
        rp = _closed(right.points, closed)
        plan = _k.poly_plan(lp, rp)
        for fa in range(lo, hi, _CHUNK_FRAMES):
            fb = min(fa + _CHUNK_FRAMES, hi)
            coords, counts = _k.poly_frames(lp, rp, *plan, left.frame, right.frame, fa, fb, closed)
            flat = coords.reshape(-1)
            pos = 0
            for row in range(fb - fa):
                end = pos + 2 * int(counts[row])
                yield _Frame(fa + row, left, flat[pos:end], left.rotation, False, left.outside)
                pos = end
    elif shape_type == "mask" and mask_mode == "sdf":
        yield from _sdf_frames(left, right, lo, hi)
    else:
        for f in range(lo, hi):
            yield _Frame(f, left, left.points, left.rotation, False, left.outside)


def _closed(points: FloatArray, closed: bool) -> FloatArray:
    xy = points.reshape(-1, 2)
    return np.ascontiguousarray(np.vstack([xy, xy[:1]]) if closed else xy)


def _sdf_frames(left: _Keyframe, right: _Keyframe, lo: int, hi: int) -> Iterator[_Frame]:
    lbox = left.points[-4:].astype(np.int64)
    rbox = right.points[-4:].astype(np.int64)
    # One pixel of background around the union of both boxes keeps the distances exact
    # without decoding the whole frame: the result stays inside the union.
    x0 = int(min(lbox[0], rbox[0])) - 1
    y0 = int(min(lbox[1], rbox[1])) - 1
    width = int(max(lbox[2], rbox[2])) - x0 + 2
    height = int(max(lbox[3], rbox[3])) - y0 + 2
    shift = np.array([x0, y0, x0, y0], dtype=np.float64)

    def local(kf: _Keyframe) -> BoolArray:
        pts = kf.points.copy()
        pts[-4:] -= shift
        return np.asarray(cvat_mask_to_array(pts.tolist(), height, width), dtype=np.bool_)

    lmask = local(left)
    rmask = local(right)
    if not lmask.any() or not rmask.any():
        for f in range(lo, hi):
            yield _Frame(f, left, left.points, left.rotation, False, left.outside)
        return
    lsdf = signed_distance(lmask)
    rsdf = signed_distance(rmask)
    for f in range(lo, hi):
        t = (f - left.frame) / (right.frame - left.frame)
        inside = (lsdf + (rsdf - lsdf) * t) > 0
        if not inside.any():
            continue
        pts = np.asarray(array_to_cvat_mask(inside), dtype=np.float64)
        pts[-4:] += shift
        yield _Frame(f, left, pts, left.rotation, False, left.outside)


def signed_distance(mask: npt.ArrayLike) -> FloatArray:
    """Signed Euclidean distance field of a 2D boolean mask, in pixels.

    Positive inside (distance to the nearest background pixel), negative outside (minus
    the distance to the nearest foreground pixel). A mask with no foreground (or no
    background) gives -inf (+inf) where the other kind of pixel is missing.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.dtype != np.bool_:
        raise ValueError("mask must be a 2D boolean array")
    arr = np.ascontiguousarray(arr)
    inside = np.sqrt(_k.squared_distance_to(~arr))
    outside = np.sqrt(_k.squared_distance_to(arr))
    return np.where(arr, inside, -outside)


def _iter_raw(
    track: _Track, start: int, stop: int, include_outside: bool, mask_mode: MaskMode
) -> Iterator[_Frame]:
    lo_bound = max(start, track.frame)
    kfs = track.keyframes
    for i, kf in enumerate(kfs):
        if kf.frame > stop:
            return
        if kf.frame >= lo_bound:
            yield _Frame(kf.frame, kf, kf.points, kf.rotation, True, kf.outside)
        if kf.outside and not include_outside:
            continue
        lo = max(kf.frame + 1, lo_bound)
        if i + 1 < len(kfs):
            nxt = kfs[i + 1]
            yield from _between(
                track.type, left=kf, right=nxt, lo=lo, hi=min(nxt.frame, stop + 1),
                mask_mode=mask_mode,
            )  # fmt: skip
        else:
            for f in range(lo, stop + 1):
                yield _Frame(f, kf, kf.points, kf.rotation, False, kf.outside)


def _emit(track: _Track, item: _Frame, elements: list[Shape]) -> Shape:
    return {
        "type": track.type,
        "frame": item.frame,
        "label_id": track.label_id,
        "group": track.group,
        "source": track.source,
        "points": item.points.tolist(),
        "rotation": item.rotation,
        "occluded": item.left.occluded,
        "outside": item.outside,
        "z_order": item.left.z_order,
        "attributes": [dict(a) for a in item.left.attributes] + [dict(a) for a in track.attributes],
        "keyframe": item.keyframe,
        "elements": elements,
    }


def _check_range(stop_frame: int, start_frame: int, mask_mode: str) -> None:
    if not _is_int(stop_frame) or stop_frame < 0:
        raise ValueError(f"stop_frame must be a non-negative integer, got {stop_frame!r}")
    if not _is_int(start_frame) or not 0 <= start_frame <= stop_frame:
        raise ValueError(f"start_frame must be an integer in [0, stop_frame], got {start_frame!r}")
    if mask_mode not in ("repeat", "sdf"):
        raise ValueError(f"mask_mode must be 'repeat' or 'sdf', got {mask_mode!r}")


def iter_interpolated_shapes(
    track: Mapping[str, Any],
    stop_frame: int,
    *,
    start_frame: int = 0,
    mask_mode: MaskMode = "repeat",
) -> Iterator[Shape]:
    """Yield the track's shape frame by frame on [start_frame, stop_frame] (inclusive).

    `track` is a track in CVAT's JSON form. Shapes come in CVAT's shape form with a
    `keyframe` flag, in frame order; frames with no shape are skipped. Validation errors
    are raised before the first shape is yielded. At most one chunk of frames between two
    keyframes is held in memory.
    """
    _check_range(stop_frame, start_frame, mask_mode)
    parsed = _parse_track(track, "track")
    return _iter_shapes(parsed, int(start_frame), int(stop_frame), mask_mode)


def _iter_shapes(track: _Track, start: int, stop: int, mask_mode: MaskMode) -> Iterator[Shape]:
    if track.type != "skeleton" or not track.elements:
        for item in _iter_raw(track, start, stop, False, mask_mode):
            yield _emit(track, item, [])
        return
    cursors = [_iter_raw(e, start, stop, True, mask_mode) for e in track.elements]
    pending: list[_Frame | None] = [next(c, None) for c in cursors]
    for item in _iter_raw(track, start, stop, False, mask_mode):
        elements = []
        for j, cursor in enumerate(cursors):
            head = pending[j]
            while head is not None and head.frame < item.frame:
                head = next(cursor, None)
            pending[j] = head
            if head is not None and head.frame == item.frame:
                elements.append(_emit(track.elements[j], head, []))
        if elements and all(e["outside"] for e in elements):
            continue
        yield _emit(track, item, elements)


def interpolate_track(
    track: Mapping[str, Any],
    stop_frame: int,
    *,
    start_frame: int = 0,
    mask_mode: MaskMode = "repeat",
) -> list[Shape]:
    """All shapes of `track` on [start_frame, stop_frame]; see `iter_interpolated_shapes`."""
    return list(
        iter_interpolated_shapes(track, stop_frame, start_frame=start_frame, mask_mode=mask_mode)
    )


@dataclass(frozen=True)
class LinearTracks:
    """Per-frame geometry of many tracks, from `interpolate_linear_tracks`.

    Arrays are indexed [track, frame - start_frame]. `points` and `rotation` are NaN
    where `present` is False; `keyframe` and `outside` follow CVAT's shape fields.
    """

    start_frame: int
    points: FloatArray
    rotation: FloatArray
    present: BoolArray
    keyframe: BoolArray
    outside: BoolArray


@dataclass(frozen=True)
class PolyTracks:
    """Per-frame vertices of many polygon or polyline tracks, from `interpolate_poly_tracks`.

    The vertices of track `i` on frame `f` are
    `coords[first[i, f - start_frame] : first[...] + count[...]]` (shape (n, 2));
    `count` is -1 where no shape exists. `coords` may hold unused rows between frames.
    """

    start_frame: int
    coords: FloatArray
    first: IntArray
    count: IntArray
    keyframe: BoolArray
    outside: BoolArray

    @property
    def present(self) -> BoolArray:
        """Whether each (track, frame) has a shape."""
        return self.count >= 0

    def vertices(self, track: int, frame: int) -> FloatArray:
        """The (n, 2) vertices of `track` on `frame`; empty where there is no shape."""
        col = frame - self.start_frame
        n = int(self.count[track, col])
        if n < 0:
            return np.empty((0, 2))
        begin = int(self.first[track, col])
        return self.coords[begin : begin + n]


def _batch_common(
    track_offsets: npt.ArrayLike,
    frames: npt.ArrayLike,
    outside: npt.ArrayLike | None,
    stop_frame: int,
    start_frame: int,
) -> tuple[IntArray, IntArray, BoolArray]:
    _check_range(stop_frame, start_frame, "repeat")
    offsets = np.asarray(track_offsets)
    frm = np.asarray(frames)
    if offsets.ndim != 1 or offsets.size < 1 or offsets.dtype.kind not in "iu":
        raise ValueError("track_offsets must be a 1D integer array of n_tracks + 1 entries")
    if frm.ndim != 1 or (frm.size and frm.dtype.kind not in "iu"):
        raise ValueError("frames must be a 1D integer array")
    offsets = offsets.astype(np.int64)
    frm = np.ascontiguousarray(frm, dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != frm.size or (np.diff(offsets) < 0).any():
        raise ValueError("track_offsets must rise from 0 to len(frames)")
    if (frm < 0).any():
        raise ValueError("frames must be non-negative")
    owner = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    same_track = owner[1:] == owner[:-1]
    if (np.diff(frm)[same_track] <= 0).any():
        raise ValueError("keyframe frames must strictly increase within each track")
    out = np.zeros(frm.size, np.bool_) if outside is None else np.asarray(outside)
    if out.shape != frm.shape or out.dtype != np.bool_:
        raise ValueError("outside must be a boolean array shaped like frames")
    return offsets, frm, np.ascontiguousarray(out)


def interpolate_linear_tracks(
    track_offsets: npt.ArrayLike,
    frames: npt.ArrayLike,
    points: npt.ArrayLike,
    stop_frame: int,
    *,
    rotation: npt.ArrayLike | None = None,
    outside: npt.ArrayLike | None = None,
    start_frame: int = 0,
) -> LinearTracks:
    """Interpolate many tracks of a fixed-size shape at once (rectangles: 4 numbers).

    Keyframes of all tracks are concatenated: track `i` owns rows
    `track_offsets[i]:track_offsets[i + 1]` of `frames` (strictly increasing within a
    track), `points` (n_keyframes, D), `rotation` and `outside`. Semantics are those of
    `interpolate_track` for rectangles, ellipses, cuboids and single points.
    """
    offsets, frm, out = _batch_common(track_offsets, frames, outside, stop_frame, start_frame)
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[0] != frm.size or (pts.size and pts.dtype.kind not in "iuf"):
        raise ValueError("points must be a numeric (n_keyframes, D) array")
    pts = np.ascontiguousarray(pts, dtype=np.float64)
    rot = np.zeros(frm.size) if rotation is None else np.asarray(rotation)
    if rot.shape != frm.shape or (rot.size and rot.dtype.kind not in "iuf"):
        raise ValueError("rotation must be a numeric array shaped like frames")
    rot = np.ascontiguousarray(rot, dtype=np.float64)
    if not (np.isfinite(pts).all() and np.isfinite(rot).all()):
        raise ValueError("points and rotation must be finite")
    n_tracks = offsets.size - 1
    n_frames = stop_frame - start_frame + 1
    res_pts = np.empty((n_tracks, n_frames, pts.shape[1]))
    res_rot = np.empty((n_tracks, n_frames))
    present = np.empty((n_tracks, n_frames), np.bool_)
    key = np.empty((n_tracks, n_frames), np.bool_)
    res_out = np.empty((n_tracks, n_frames), np.bool_)
    _k.linear_batch(
        offsets, frm, pts, rot, out, int(start_frame), res_pts, res_rot, present, key, res_out,
    )  # fmt: skip
    return LinearTracks(int(start_frame), res_pts, res_rot, present, key, res_out)


def interpolate_poly_tracks(
    track_offsets: npt.ArrayLike,
    frames: npt.ArrayLike,
    vertex_offsets: npt.ArrayLike,
    coords: npt.ArrayLike,
    stop_frame: int,
    *,
    closed: bool,
    outside: npt.ArrayLike | None = None,
    start_frame: int = 0,
) -> PolyTracks:
    """Interpolate many polygon (`closed=True`) or polyline tracks at once.

    Keyframes are laid out as in `interpolate_linear_tracks`; keyframe `k` has vertices
    `coords[vertex_offsets[k]:vertex_offsets[k + 1]]` of the (n_vertices, 2) array.
    """
    offsets, frm, out = _batch_common(track_offsets, frames, outside, stop_frame, start_frame)
    voff = np.asarray(vertex_offsets)
    xy = np.asarray(coords)
    if voff.ndim != 1 or voff.size != frm.size + 1 or voff.dtype.kind not in "iu":
        raise ValueError("vertex_offsets must be a 1D integer array of n_keyframes + 1 entries")
    if xy.ndim != 2 or xy.shape[1] != 2 or (xy.size and xy.dtype.kind not in "iuf"):
        raise ValueError("coords must be a numeric (n_vertices, 2) array")
    voff = np.ascontiguousarray(voff, dtype=np.int64)
    if voff[0] != 0 or voff[-1] != xy.shape[0] or (np.diff(voff) < 1).any():
        raise ValueError("vertex_offsets must rise from 0 to len(coords), one vertex or more each")
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    if not np.isfinite(xy).all():
        raise ValueError("coords must be finite")
    if not isinstance(closed, bool):
        raise ValueError("closed must be a boolean")
    start, stop = int(start_frame), int(stop_frame)
    n_tracks, n_frames = offsets.size - 1, stop - start + 1
    sizes = np.empty(n_tracks, np.int64)
    no_table = np.empty((0, 0), np.int64)
    args = (offsets, frm, voff, xy, out, start, stop, closed)
    bases = np.zeros(n_tracks, np.int64)
    _k.poly_batch(*args, False, bases, np.empty((0, 2)), no_table, no_table, sizes)
    np.cumsum(sizes[:-1], out=bases[1:])
    res = np.empty((int(sizes.sum()), 2))
    first = np.zeros((n_tracks, n_frames), np.int64)
    count = np.full((n_tracks, n_frames), -1, np.int64)
    _k.poly_batch(*args, True, bases, res, first, count, sizes)
    key = np.zeros((n_tracks, n_frames), np.bool_)
    res_out = np.zeros((n_tracks, n_frames), np.bool_)
    owner = np.repeat(np.arange(n_tracks), np.diff(offsets))
    cols = frm - start
    keep = (cols >= 0) & (cols < n_frames)
    key[owner[keep], cols[keep]] = True
    res_out[owner[keep], cols[keep]] = out[keep]
    return PolyTracks(start, res, first, count, key, res_out)
