"""Merging the annotations of overlapping segments (jobs) into task annotations.

Follows CVAT's `ObjectManager.merge` and its Tag/Shape/TrackManager subclasses
(cvat/apps/dataset_manager/annotation.py), applied job after job in segment order
(`TaskAnnotation.init_from_db` in cvat/apps/dataset_manager/task.py):

- objects of the incoming job that start after the overlap are added as they are;
- objects inside the overlap are matched against the objects already merged, per frame
  for tags and shapes and all at once for tracks, with the Hungarian assignment
  (`scipy.optimize.linear_sum_assignment`) on cost = 1 - similarity;
- a pair is merged when its cost is at most 0.25 for tags and shapes (IoU >= 0.75) and
  0.5 for tracks; the object already merged is kept (for tracks, keyframes are united
  with the earlier job's keyframe winning on a shared frame); unmatched incoming
  objects are added; unmatched merged tracks still visible get an outside keyframe
  right after the overlap (`_modify_unmatched_object`).

Similarities: tags by label; rectangles by box IoU; polygons, ellipses, rotated
rectangles and masks by rasterised IoU; 2D cuboids by the IoU of their bounding boxes;
3D cuboids as CVAT (top-view IoU times side-view IoU); points, polylines and skeletons
by an object keypoint similarity (mean of exp(-d^2 / (2 s^2 k^2)) over corresponding
points, s^2 the area of both shapes' joint bounding box, k = 0.1, as CVAT's quality
checks use for points); tracks by 1 - mean per-frame error over the overlap, where a
frame with a shape on one side only, or outside on one side only, costs 1.

Differences from CVAT, all where CVAT's code is flagged FIXME or loses data: CVAT
scores points, polylines, ellipses, 2D cuboids, masks and skeletons 0 (never merged);
it ignores rotation; it scores two tracks with no frame in the overlap as identical;
when the incoming track starts earlier than the merged one, CVAT drops the united
track; and it does not unite skeleton elements. Here these cases are handled as above.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from tessera.geometry.interpolation import coords_array, interpolate_track
from tessera.geometry.rle import cvat_mask_to_array, from_polygons
from tessera.geometry.rle import iou as rle_iou

Obj = dict[str, Any]
Dimension = Literal["2d", "3d"]
FloatArray = npt.NDArray[np.float64]

SHAPE_IOU_THRESHOLD = 0.75
TRACK_ERROR_THRESHOLD = 0.5
OKS_SIGMA = 0.1
_RASTER_SIDE = 512
_ELLIPSE_VERTICES = 64


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    if iw <= 0 or ih <= 0 or area_a <= 0 or area_b <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / (area_a + area_b - inter))


def _bounds(xy: FloatArray) -> list[float]:
    return [
        float(xy[:, 0].min()),
        float(xy[:, 1].min()),
        float(xy[:, 0].max()),
        float(xy[:, 1].max()),
    ]


def _polygon_iou(a: FloatArray, b: FloatArray) -> float:
    """IoU of two polygons given as (n, 2) vertices, rasterised on their joint box."""
    ba, bb = _bounds(a), _bounds(b)
    if _box_iou(ba, bb) == 0.0:
        return 0.0
    x0, y0 = min(ba[0], bb[0]), min(ba[1], bb[1])
    extent = max(ba[2], bb[2]) - x0, max(ba[3], bb[3]) - y0
    # IoU does not depend on scale: rasterise at a fixed resolution so that small and
    # large shapes are measured equally finely.
    scale = _RASTER_SIDE / max(extent[0], extent[1])
    w = math.ceil(extent[0] * scale) + 1
    h = math.ceil(extent[1] * scale) + 1
    origin = np.array([x0, y0])
    rles = [from_polygons([((p - origin) * scale).reshape(-1)], h, w) for p in (a, b)]
    return float(rle_iou([rles[0]], [rles[1]], [False])[0, 0])


def _rotated_corners(points: FloatArray, rotation: float) -> FloatArray:
    xtl, ytl, xbr, ybr = points
    corners = np.array([[xtl, ytl], [xbr, ytl], [xbr, ybr], [xtl, ybr]])
    return _rotate(corners, (xtl + xbr) / 2, (ytl + ybr) / 2, rotation)


def _rotate(xy: FloatArray, cx: float, cy: float, degrees: float) -> FloatArray:
    rad = math.radians(degrees)
    c, s = math.cos(rad), math.sin(rad)
    dx, dy = xy[:, 0] - cx, xy[:, 1] - cy
    return np.stack([cx + dx * c - dy * s, cy + dx * s + dy * c], axis=1)


def _ellipse_polygon(points: FloatArray, rotation: float) -> FloatArray:
    cx, cy, right, top = points
    angles = np.linspace(0.0, 2 * math.pi, _ELLIPSE_VERTICES, endpoint=False)
    xy = np.stack([cx + (right - cx) * np.cos(angles), cy + (cy - top) * np.sin(angles)], axis=1)
    return _rotate(xy, cx, cy, rotation)


def _mask_iou(a: FloatArray, b: FloatArray) -> float:
    boxes = [np.trunc(p[-4:]).astype(np.int64) for p in (a, b)]
    x0 = int(min(boxes[0][0], boxes[1][0]))
    y0 = int(min(boxes[0][1], boxes[1][1]))
    w = int(max(boxes[0][2], boxes[1][2])) - x0 + 1
    h = int(max(boxes[0][3], boxes[1][3])) - y0 + 1
    shift = np.array([x0, y0, x0, y0], dtype=np.float64)
    masks = []
    for p in (a, b):
        local = p.copy()
        local[-4:] = np.trunc(local[-4:]) - shift
        masks.append(cvat_mask_to_array(local, h, w))
    union = np.count_nonzero(masks[0] | masks[1])
    return 0.0 if union == 0 else np.count_nonzero(masks[0] & masks[1]) / union


def _oks(a: FloatArray, b: FloatArray) -> float:
    """Keypoint similarity of corresponding (n, 2) point sets, 0 if the counts differ."""
    if a.shape != b.shape or a.shape[0] == 0:
        return 0.0
    joint = np.vstack([a, b])
    extent = joint.max(axis=0) - joint.min(axis=0)
    scale2 = max(float(extent[0] * extent[1]), 1.0)
    d2 = ((a - b) ** 2).sum(axis=1)
    return float(np.exp(-d2 / (2 * scale2 * OKS_SIGMA**2)).mean())


def _cuboid3d_similarity(a: FloatArray, b: FloatArray) -> float:
    def view(p: FloatArray, i: int, j: int) -> list[float]:
        return [p[i] - p[6 + i] / 2, p[j] - p[6 + j] / 2, p[i] + p[6 + i] / 2, p[j] + p[6 + j] / 2]

    return _box_iou(view(a, 0, 1), view(b, 0, 1)) * _box_iou(view(a, 0, 2), view(b, 0, 2))


def _skeleton_points(shape: Mapping[str, Any]) -> dict[int, FloatArray]:
    out = {}
    for element in shape.get("elements") or []:
        if not element.get("outside", False):
            pts = coords_array(element.get("points"), "skeleton element")
            out[int(element["label_id"])] = pts[:2]
    return out


def shape_similarity(
    a: Mapping[str, Any], b: Mapping[str, Any], dimension: Dimension = "2d"
) -> float:
    """Similarity in [0, 1] of two shapes in CVAT's form; 0 across labels or types."""
    if a.get("type") != b.get("type") or a.get("label_id") != b.get("label_id"):
        return 0.0
    kind = a["type"]
    if kind == "skeleton":
        ka, kb = _skeleton_points(a), _skeleton_points(b)
        common = sorted(set(ka) & set(kb))
        if not common:
            return 0.0
        return _oks(np.array([ka[k] for k in common]), np.array([kb[k] for k in common]))
    pa = coords_array(a.get("points"), "shape")
    pb = coords_array(b.get("points"), "shape")
    ra, rb = float(a.get("rotation", 0.0)), float(b.get("rotation", 0.0))
    if kind == "rectangle" and pa.size == 4 and pb.size == 4:
        if ra % 360 == 0 and rb % 360 == 0:
            return _box_iou(pa.tolist(), pb.tolist())
        return _polygon_iou(_rotated_corners(pa, ra), _rotated_corners(pb, rb))
    if kind == "ellipse" and pa.size == 4 and pb.size == 4:
        return _polygon_iou(_ellipse_polygon(pa, ra), _ellipse_polygon(pb, rb))
    if kind == "cuboid" and pa.size == 16 and pb.size == 16:
        if dimension == "3d":
            return _cuboid3d_similarity(pa, pb)
        return _box_iou(_bounds(pa.reshape(-1, 2)), _bounds(pb.reshape(-1, 2)))
    if kind == "polygon" and pa.size >= 6 and pb.size >= 6 and pa.size % 2 == pb.size % 2 == 0:
        return _polygon_iou(pa.reshape(-1, 2), pb.reshape(-1, 2))
    if kind == "mask":
        return _mask_iou(pa, pb)
    if kind in ("points", "polyline") and pa.size % 2 == pb.size % 2 == 0:
        return _oks(pa.reshape(-1, 2), pb.reshape(-1, 2))
    return 0.0


def track_similarity(
    a: Mapping[str, Any], b: Mapping[str, Any], start: int, stop: int, dimension: Dimension = "2d"
) -> float:
    """1 - mean per-frame error of two tracks on frames [start, stop] (inclusive).

    A frame where only one track has a shape, or only one is outside, costs 1; a frame
    where both have one costs 1 - shape similarity; frames where neither has one do not
    count. Tracks of different labels, or with no frame counted, score 0.
    """
    if a.get("label_id") != b.get("label_id"):
        return 0.0
    by_frame = [
        {s["frame"]: s for s in interpolate_track(t, stop, start_frame=start)} for t in (a, b)
    ]
    error = 0.0
    frames = set(by_frame[0]) | set(by_frame[1])
    for f in frames:
        sa, sb = by_frame[0].get(f), by_frame[1].get(f)
        if sa is None or sb is None or sa["outside"] != sb["outside"]:
            error += 1.0
        else:
            error += 1.0 - shape_similarity(sa, sb, dimension)
    return 0.0 if not frames else 1.0 - error / len(frames)


def _tag_similarity(a: Obj, b: Obj) -> float:
    return 1.0 if a["label_id"] == b["label_id"] else 0.0


def _overlap_similarity(a: Obj, b: Obj, start: int, stop: int, dimension: Dimension) -> float:
    return track_similarity(a, b, start, stop, dimension) if stop >= start else 0.0


def _keyframes_union(old: Obj, new: Obj) -> list[Obj]:
    by_frame = {s["frame"]: s for s in new.get("shapes", [])}
    by_frame.update({s["frame"]: s for s in old.get("shapes", [])})
    return [by_frame[f] for f in sorted(by_frame)]


def _unite_tracks(old: Obj, new: Obj) -> None:
    """Unite `new` into `old` in place; track fields from the one starting first."""
    shapes = _keyframes_union(old, new)
    first = new if new["frame"] < old["frame"] else old
    elements = {e["label_id"]: e for e in first.get("elements") or []}
    other = old if first is new else new
    for element in other.get("elements") or []:
        mine = elements.get(element["label_id"])
        if mine is None:
            elements[element["label_id"]] = element
        else:
            pair = (element, mine) if first is new else (mine, element)
            mine["shapes"] = _keyframes_union(*pair)
            mine["frame"] = min(mine["frame"], element["frame"])
    frame = min(old["frame"], new["frame"])
    if first is new:
        old.clear()
        old.update(new)
    old["shapes"] = shapes
    old["frame"] = frame
    if elements:
        old["elements"] = list(elements.values())


def _close_track(track: Obj, frame: int) -> None:
    shapes = track.get("shapes") or []
    if not shapes:
        return
    last = max(shapes, key=lambda s: s["frame"])
    if last.get("outside", False) or last["frame"] >= frame:
        return
    closing = copy.deepcopy(last)
    closing["frame"] = frame
    closing["outside"] = True
    shapes.append(closing)
    for element in track.get("elements") or []:
        _close_track(element, frame)


def _merge_kind(
    merged: list[Obj],
    *,
    incoming: list[Obj],
    start: int,
    overlap: int,
    by_frame: Callable[[list[Obj], int], dict[int, list[Obj]]],
    similarity: Callable[[Obj, Obj], float],
    max_cost: float,
    is_track: bool,
) -> None:
    boundary = start + overlap
    fresh = [o for o in incoming if o["frame"] >= boundary]
    inside = [o for o in incoming if o["frame"] < boundary]
    inside_by_frame = by_frame(inside, start)
    merged_by_frame = by_frame(merged, start)
    merged.extend(fresh)
    if not inside_by_frame or not merged_by_frame:
        if is_track:
            for group in merged_by_frame.values():
                for obj in group:
                    _close_track(obj, boundary)
        merged.extend(inside)
        return
    for frame, new_objs in inside_by_frame.items():
        old_objs = merged_by_frame.get(frame)
        if not old_objs:
            merged.extend(new_objs)
            continue
        cost = np.array([[1.0 - similarity(n, o) for o in old_objs] for n in new_objs])
        rows, cols = linear_sum_assignment(cost)
        new_left = set(range(len(new_objs)))
        old_left = set(range(len(old_objs)))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            if cost[i, j] <= max_cost:
                if is_track:
                    _unite_tracks(old_objs[j], new_objs[i])
                new_left.discard(i)
                old_left.discard(j)
        merged.extend(new_objs[i] for i in sorted(new_left))
        if is_track:
            for j in sorted(old_left):
                _close_track(old_objs[j], boundary)


def _objects_by_frame(objects: list[Obj], start: int) -> dict[int, list[Obj]]:
    out: dict[int, list[Obj]] = {}
    for obj in objects:
        if obj["frame"] >= start:
            out.setdefault(obj["frame"], []).append(obj)
    return out


def _tracks_by_frame(tracks: list[Obj], start: int) -> dict[int, list[Obj]]:
    # All tracks share one bucket; tracks that ended before the overlap are left alone.
    live = []
    for track in tracks:
        shapes = track.get("shapes") or []
        if not shapes:
            continue
        last = max(shapes, key=lambda s: s["frame"])
        if last["frame"] >= start or not last.get("outside", False):
            live.append(track)
    return {0: live} if live else {}


def _check_objects(annotations: Mapping[str, Any], key: str, where: str) -> list[Obj]:
    objects = annotations.get(key, [])
    if not isinstance(objects, Sequence) or isinstance(objects, str | bytes):
        raise ValueError(f"{where}: '{key}' must be a list")
    out = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: {key}[{i}] must be an object")
        item = copy.deepcopy(dict(obj))
        if key == "tracks":
            shapes = item.get("shapes")
            if not isinstance(shapes, list) or not shapes:
                raise ValueError(f"{where}: tracks[{i}] needs a non-empty 'shapes' list")
            frames = [s.get("frame") if isinstance(s, Mapping) else None for s in shapes]
            valid = [f for f in frames if isinstance(f, int) and not isinstance(f, bool)]
            if len(valid) != len(frames):
                raise ValueError(f"{where}: tracks[{i}] keyframes need integer frames")
            item.setdefault("frame", min(valid))
        frame = item.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
            raise ValueError(f"{where}: {key}[{i}] needs a non-negative integer 'frame'")
        if not isinstance(item.get("label_id"), int):
            raise ValueError(f"{where}: {key}[{i}] needs an integer 'label_id'")
        out.append(item)
    return out


def merge_segments(
    segments: Sequence[tuple[Mapping[str, Any], int, int]],
    *,
    dimension: Dimension = "2d",
) -> dict[str, list[Obj]]:
    """Merge per-job annotations into the task's {tags, shapes, tracks}.

    `segments` holds (annotations, start, stop) per job: annotations in CVAT's form
    ({tags, shapes, tracks}), and the job's inclusive frame range. Jobs are merged in
    order of their start frame; the overlap of a job is the part of its range already
    covered by the jobs before it. Inputs are not modified.
    """
    if dimension not in ("2d", "3d"):
        raise ValueError(f"dimension must be '2d' or '3d', got {dimension!r}")
    checked = []
    for i, segment in enumerate(segments):
        if not isinstance(segment, tuple | list) or len(segment) != 3:
            raise ValueError(f"segments[{i}] must be (annotations, start, stop)")
        annotations, start, stop = segment
        if not isinstance(annotations, Mapping):
            raise ValueError(f"segments[{i}]: annotations must be an object")
        for name, value in (("start", start), ("stop", stop)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"segments[{i}]: {name} must be a non-negative integer")
        if stop < start:
            raise ValueError(f"segments[{i}]: stop {stop} is before start {start}")
        where = f"segments[{i}]"
        objects = {k: _check_objects(annotations, k, where) for k in ("tags", "shapes", "tracks")}
        checked.append((start, stop, objects))
    checked.sort(key=lambda item: item[0])

    result: dict[str, list[Obj]] = {"tags": [], "shapes": [], "tracks": []}
    covered = -1
    for start, stop, objects in checked:
        overlap = max(0, covered - start + 1)
        end = start + overlap - 1

        _merge_kind(
            result["tags"], incoming=objects["tags"], start=start, overlap=overlap,
            by_frame=_objects_by_frame, similarity=_tag_similarity,
            max_cost=1 - SHAPE_IOU_THRESHOLD, is_track=False,
        )  # fmt: skip
        _merge_kind(
            result["shapes"], incoming=objects["shapes"], start=start, overlap=overlap,
            by_frame=_objects_by_frame, similarity=partial(shape_similarity, dimension=dimension),
            max_cost=1 - SHAPE_IOU_THRESHOLD, is_track=False,
        )  # fmt: skip
        _merge_kind(
            result["tracks"], incoming=objects["tracks"], start=start, overlap=overlap,
            by_frame=_tracks_by_frame,
            similarity=partial(_overlap_similarity, start=start, stop=end, dimension=dimension),
            max_cost=TRACK_ERROR_THRESHOLD, is_track=True,
        )  # fmt: skip
        covered = max(covered, stop)
    return result
