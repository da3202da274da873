"""Numba kernels behind `tessera.geometry.interpolation`.

The polygon kernels reproduce CVAT's `interpolate_position`
(cvat/apps/dataset_manager/annotation.py) operation for operation, so that the floating
point results agree: same summation order for arc lengths, `a + (b - a) * t` for every
lerp, first index on ties when searching the nearest arc position.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from tessera.geometry._jit import kernel, parallel_kernel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@kernel
def angle_diff(left: float, right: float) -> float:
    """Signed rotation from `left` to `right` in degrees along the shorter arc, in [-180, 180)."""
    return ((right - left + 180.0) % 360.0) - 180.0


@kernel
def lerp_frames(
    p0: FloatArray, p1: FloatArray, r0: float, r1: float, f0: int, f1: int, fa: int, fb: int
) -> tuple[FloatArray, FloatArray]:
    """Points and rotation on frames [fa, fb) between keyframes at f0 and f1."""
    n = fb - fa
    dim = p0.shape[0]
    pts = np.empty((n, dim))
    rot = np.empty(n)
    dr = angle_diff(r0, r1)
    span = f1 - f0
    for row in range(n):
        t = (fa + row - f0) / span
        for d in range(dim):
            pts[row, d] = p0[d] + (p1[d] - p0[d]) * t
        rot[row] = (r0 + dr * t + 360.0) % 360.0
    return pts, rot


@kernel
def _curve_length(pts: FloatArray, first: int, last: int) -> float:
    length = 0.0
    for i in range(first + 1, last + 1):
        dx = pts[i, 0] - pts[i - 1, 0]
        dy = pts[i, 1] - pts[i - 1, 1]
        length += math.sqrt(dx * dx + dy * dy)
    return length


@kernel
def _arc_positions(pts: FloatArray) -> FloatArray:
    # A curve of zero length gets all positions 0; CVAT divides by zero there and gets
    # NaN, which its nearest search resolves to index 0, the same matching as zeros.
    n = pts.shape[0]
    out = np.zeros(n)
    total = _curve_length(pts, 0, n - 1)
    if total == 0.0:
        return out
    acc = 0.0
    for i in range(1, n):
        dx = pts[i, 0] - pts[i - 1, 0]
        dy = pts[i, 1] - pts[i - 1, 1]
        acc += math.sqrt(dx * dx + dy * dy)
        out[i] = acc / total
    return out


@kernel
def _nearest(value: float, curve: FloatArray) -> int:
    # `curve` is non-decreasing, so the first index at minimal distance is either the
    # first element equal to the largest value below `value`, or the first at or above it.
    lo = 0
    hi = curve.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if curve[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return 0
    below = lo - 1
    while below > 0 and curve[below - 1] == curve[below]:
        below -= 1
    if lo == curve.shape[0]:
        return below
    if curve[lo] - value < value - curve[below]:
        return lo
    return below


@kernel
def poly_plan(
    left: FloatArray, right: FloatArray
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """Vertex matching of two polylines, independent of the interpolation offset.

    Returns (pair_left, pair_right): the matched vertex pairs in output order, and
    (seg_first, seg_last, seg_threshold): the runs of pairs thinned together on each frame.
    """
    n = left.shape[0]
    m = right.shape[0]
    lpos = _arc_positions(left)
    rpos = _arc_positions(right)
    first_match = np.empty(n, np.int64)
    matched = np.zeros(m, np.bool_)
    for i in range(n):
        first_match[i] = _nearest(lpos[i], rpos)
        matched[first_match[i]] = True
    count = np.ones(n, np.int64)
    owner = np.full(m, -1, np.int64)
    for j in range(m):
        if not matched[j]:
            owner[j] = _nearest(rpos[j], lpos)
            count[owner[j]] += 1
    start = np.zeros(n, np.int64)
    for i in range(1, n):
        start[i] = start[i - 1] + count[i - 1]
    total = start[n - 1] + count[n - 1]
    pair_left = np.empty(total, np.int64)
    pair_right = np.empty(total, np.int64)
    fill = start.copy()
    for j in range(m):
        if owner[j] >= 0:
            pair_right[fill[owner[j]]] = j
            fill[owner[j]] += 1
    for i in range(n):
        # Unmatched right vertices were written in ascending order; insert the first match.
        k = fill[i]
        while k > start[i] and pair_right[k - 1] > first_match[i]:
            pair_right[k] = pair_right[k - 1]
            k -= 1
        pair_right[k] = first_match[i]
        for k in range(start[i], start[i] + count[i]):
            pair_left[k] = i

    seg_first = np.empty(total, np.int64)
    seg_last = np.empty(total, np.int64)
    seg_threshold = np.zeros(total)
    n_seg = 0
    opened = -1
    for i in range(n + 1):
        closes_run = i == n or count[i] > 1
        if not closes_run and opened >= 0 and pair_right[start[i]] == pair_right[start[opened]]:
            continue
        if opened >= 0:
            seg_first[n_seg] = start[opened]
            seg_last[n_seg] = start[i - 1]
            if seg_first[n_seg] != seg_last[n_seg]:
                span = i - opened
                seg_threshold[n_seg] = _curve_length(left, opened, i - 1) / (2 * span)
            n_seg += 1
            opened = -1
        if i == n:
            break
        if count[i] == 1:
            opened = i
        else:
            r_first = pair_right[start[i]]
            r_last = pair_right[start[i] + count[i] - 1]
            seg_first[n_seg] = start[i]
            seg_last[n_seg] = start[i] + count[i] - 1
            span = r_last - r_first + 1
            seg_threshold[n_seg] = _curve_length(right, r_first, r_last) / (2 * span)
            n_seg += 1
    return pair_left, pair_right, seg_first[:n_seg], seg_last[:n_seg], seg_threshold[:n_seg]


@kernel
def _poly_frame_into(
    left: FloatArray,
    right: FloatArray,
    pair_left: IntArray,
    pair_right: IntArray,
    seg_first: IntArray,
    seg_last: IntArray,
    seg_threshold: FloatArray,
    t: float,
    drop_last: bool,
    tmp: FloatArray,
    out: FloatArray,
    pos: int,
) -> int:
    for k in range(pair_left.shape[0]):
        a = pair_left[k]
        b = pair_right[k]
        tmp[k, 0] = left[a, 0] + (right[b, 0] - left[a, 0]) * t
        tmp[k, 1] = left[a, 1] + (right[b, 1] - left[a, 1]) * t
    w = pos
    for s in range(seg_first.shape[0]):
        first = seg_first[s]
        last = seg_last[s]
        out[w, 0] = tmp[first, 0]
        out[w, 1] = tmp[first, 1]
        w += 1
        if first == last:
            continue
        thr = seg_threshold[s]
        kept = first
        pushed = 1
        for k in range(first + 1, last):
            dx = tmp[kept, 0] - tmp[k, 0]
            dy = tmp[kept, 1] - tmp[k, 1]
            if math.sqrt(dx * dx + dy * dy) >= thr:
                out[w, 0] = tmp[k, 0]
                out[w, 1] = tmp[k, 1]
                w += 1
                pushed += 1
                kept = k
        out[w, 0] = tmp[last, 0]
        out[w, 1] = tmp[last, 1]
        w += 1
        if pushed == 1:
            dx = tmp[first, 0] - tmp[last, 0]
            dy = tmp[first, 1] - tmp[last, 1]
            if math.sqrt(dx * dx + dy * dy) < thr:
                w -= 2
                out[w, 0] = (tmp[first, 0] + tmp[last, 0]) / 2
                out[w, 1] = (tmp[first, 1] + tmp[last, 1]) / 2
                w += 1
    if drop_last and w > pos:
        w -= 1
    return w - pos


@kernel
def poly_frames(
    left: FloatArray,
    right: FloatArray,
    pair_left: IntArray,
    pair_right: IntArray,
    seg_first: IntArray,
    seg_last: IntArray,
    seg_threshold: FloatArray,
    f0: int,
    f1: int,
    fa: int,
    fb: int,
    drop_last: bool,
) -> tuple[FloatArray, IntArray]:
    """Vertices on frames [fa, fb) between keyframes at f0 and f1, with a plan from `poly_plan`.

    `left` and `right` already carry the closing vertex for polygons (`drop_last`).
    Returns the vertices of all frames stacked, and the vertex count of each frame.
    """
    n = fb - fa
    k = pair_left.shape[0]
    tmp = np.empty((k, 2))
    out = np.empty((n * k, 2))
    counts = np.empty(n, np.int64)
    pos = 0
    span = f1 - f0
    for row in range(n):
        t = (fa + row - f0) / span
        c = _poly_frame_into(
            left, right, pair_left, pair_right, seg_first, seg_last, seg_threshold,
            t, drop_last, tmp, out, pos,
        )  # fmt: skip
        counts[row] = c
        pos += c
    return out[:pos], counts


@kernel
def _mark_keyframe(
    row: int, col: int, is_outside: bool, present: BoolArray, key: BoolArray, out: BoolArray
) -> None:
    present[row, col] = True
    key[row, col] = True
    out[row, col] = is_outside


@parallel_kernel
def linear_batch(
    track_offsets: IntArray,
    frames: IntArray,
    points: FloatArray,
    rotation: FloatArray,
    outside: BoolArray,
    start: int,
    stop: int,
    out_points: FloatArray,
    out_rotation: FloatArray,
    present: BoolArray,
    key: BoolArray,
    out_outside: BoolArray,
) -> None:
    """Fill the (track, frame - start) rows of the outputs, NaN / False where no shape."""
    dim = points.shape[1]
    for tr in numba.prange(track_offsets.shape[0] - 1):
        out_points[tr] = np.nan
        out_rotation[tr] = np.nan
        present[tr] = False
        key[tr] = False
        out_outside[tr] = False
        a = track_offsets[tr]
        b = track_offsets[tr + 1]
        for k in range(a, b):
            f0 = frames[k]
            if f0 > stop:
                break
            if f0 >= start:
                col = f0 - start
                out_points[tr, col, :] = points[k]
                out_rotation[tr, col] = rotation[k]
                _mark_keyframe(tr, col, outside[k], present, key, out_outside)
            if outside[k]:
                continue
            lo = max(f0 + 1, start)
            if k + 1 < b:
                f1 = frames[k + 1]
                hi = min(f1, stop + 1)
                dr = angle_diff(rotation[k], rotation[k + 1])
                for f in range(lo, hi):
                    t = (f - f0) / (f1 - f0)
                    col = f - start
                    for d in range(dim):
                        out_points[tr, col, d] = points[k, d] + (points[k + 1, d] - points[k, d]) * t
                    out_rotation[tr, col] = (rotation[k] + dr * t + 360.0) % 360.0
                    present[tr, col] = True
            else:
                for f in range(lo, stop + 1):
                    col = f - start
                    out_points[tr, col, :] = points[k]
                    out_rotation[tr, col] = rotation[k]
                    present[tr, col] = True


@kernel
def _closed(pts: FloatArray, close: bool) -> FloatArray:
    if not close:
        return pts
    out = np.empty((pts.shape[0] + 1, 2))
    out[:-1] = pts
    out[-1] = pts[0]
    return out


@kernel
def _poly_track(
    frames: IntArray,
    vertex_offsets: IntArray,
    coords: FloatArray,
    outside: BoolArray,
    a: int,
    b: int,
    start: int,
    stop: int,
    closed: bool,
    write: bool,
    base: int,
    out_coords: FloatArray,
    first: IntArray,
    count: IntArray,
    row: int,
) -> int:
    # One track, keyframes a..b-1. With `write` False only the space needed is counted
    # (an upper bound: thinning only removes vertices); with `write` True the vertices go
    # to out_coords from `base` and the frame table (first, count) is filled.
    pos = base
    for k in range(a, b):
        f0 = frames[k]
        if f0 > stop:
            break
        kp = coords[vertex_offsets[k] : vertex_offsets[k + 1]]
        nk = kp.shape[0]
        if f0 >= start:
            if write:
                out_coords[pos : pos + nk] = kp
                first[row, f0 - start] = pos
                count[row, f0 - start] = nk
            pos += nk
        if outside[k]:
            continue
        lo = max(f0 + 1, start)
        hi = stop + 1
        if k + 1 < b:
            hi = min(frames[k + 1], stop + 1)
        if lo >= hi:
            continue
        if k + 1 == b:
            for f in range(lo, hi):
                if write:
                    out_coords[pos : pos + nk] = kp
                    first[row, f - start] = pos
                    count[row, f - start] = nk
                pos += nk
            continue
        f1 = frames[k + 1]
        left = _closed(kp, closed)
        right = _closed(coords[vertex_offsets[k + 1] : vertex_offsets[k + 2]], closed)
        pl, pr, sf, sl, st = poly_plan(left, right)
        if not write:
            pos += (hi - lo) * pl.shape[0]
            continue
        tmp = np.empty((pl.shape[0], 2))
        for f in range(lo, hi):
            t = (f - f0) / (f1 - f0)
            c = _poly_frame_into(left, right, pl, pr, sf, sl, st, t, closed, tmp, out_coords, pos)
            first[row, f - start] = pos
            count[row, f - start] = c
            pos += c
    return pos - base


@parallel_kernel
def poly_batch_sizes(
    track_offsets: IntArray,
    frames: IntArray,
    vertex_offsets: IntArray,
    coords: FloatArray,
    outside: BoolArray,
    start: int,
    stop: int,
    closed: bool,
) -> IntArray:
    """Upper bound of the vertices each track produces on [start, stop]."""
    n_tracks = track_offsets.shape[0] - 1
    sizes = np.zeros(n_tracks, np.int64)
    dummy_coords = np.empty((0, 2))
    dummy_table = np.empty((0, 0), np.int64)
    for tr in numba.prange(n_tracks):
        sizes[tr] = _poly_track(
            frames, vertex_offsets, coords, outside, track_offsets[tr], track_offsets[tr + 1],
            start, stop, closed, False, 0, dummy_coords, dummy_table, dummy_table, tr,
        )  # fmt: skip
    return sizes


@parallel_kernel
def poly_batch_fill(
    track_offsets: IntArray,
    frames: IntArray,
    vertex_offsets: IntArray,
    coords: FloatArray,
    outside: BoolArray,
    start: int,
    stop: int,
    closed: bool,
    bases: IntArray,
    out_coords: FloatArray,
    first: IntArray,
    count: IntArray,
) -> None:
    """Write each track's vertices from bases[track]; frames without a shape keep count -1."""
    for tr in numba.prange(track_offsets.shape[0] - 1):
        _poly_track(
            frames, vertex_offsets, coords, outside, track_offsets[tr], track_offsets[tr + 1],
            start, stop, closed, True, bases[tr], out_coords, first, count, tr,
        )  # fmt: skip


_FAR = 1e30


@kernel
def _edt_1d(f: FloatArray, n: int, out: FloatArray, v: IntArray, z: FloatArray) -> None:
    # Felzenszwalb & Huttenlocher's lower envelope of the parabolas (x - q)^2 + f[q].
    # Pixels with no target carry _FAR instead of inf so that the arithmetic stays finite.
    k = 0
    v[0] = 0
    z[0] = -np.inf
    z[1] = np.inf
    for q in range(1, n):
        while True:
            p = v[k]
            s = ((f[q] + q * q) - (f[p] + p * p)) / (2.0 * (q - p))
            if s > z[k]:
                break
            k -= 1
        k += 1
        v[k] = q
        z[k] = s
        z[k + 1] = np.inf
    k = 0
    for q in range(n):
        while z[k + 1] < q:
            k += 1
        d = q - v[k]
        out[q] = d * d + f[v[k]]


@kernel
def squared_distance_to(targets: BoolArray) -> FloatArray:
    """Squared Euclidean distance from every pixel to the nearest True pixel (inf if none)."""
    h, w = targets.shape
    size = max(h, w)
    f = np.empty(size)
    line = np.empty(size)
    v = np.empty(size, np.int64)
    z = np.empty(size + 1)
    cols = np.empty((h, w))
    for x in range(w):
        for y in range(h):
            f[y] = 0.0 if targets[y, x] else _FAR
        _edt_1d(f, h, line, v, z)
        for y in range(h):
            cols[y, x] = line[y]
    out = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            f[x] = cols[y, x]
        _edt_1d(f, w, line, v, z)
        for x in range(w):
            out[y, x] = np.inf if line[x] >= _FAR else line[x]
    return out
