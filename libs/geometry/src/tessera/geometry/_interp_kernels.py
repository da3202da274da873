"""Numba kernels behind `tessera.geometry.interpolation`.

Kernels take many positional arguments: Numba has no keyword-only parameters.

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
def wrap_degrees(value: float) -> float:
    """`value % 360.0`, bit for bit, without the general modulo on the common range."""
    # Subtracting 360 from a value in [360, 720) is exact (Sterbenz), as is fmod.
    if 0.0 <= value < 360.0:
        return value
    if 360.0 <= value < 720.0:
        return value - 360.0
    return value % 360.0


@kernel
def lerp_frames(  # noqa: PLR0917
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
        rot[row] = wrap_degrees(r0 + dr * t + 360.0)
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
def _poly_frame_into(  # noqa: PLR0917
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
def poly_frames(  # noqa: PLR0917
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
def linear_batch(  # noqa: PLR0917
    track_offsets: IntArray,
    frames: IntArray,
    points: FloatArray,
    rotation: FloatArray,
    outside: BoolArray,
    start: int,
    out_points: FloatArray,
    out_rotation: FloatArray,
    present: BoolArray,
    key: BoolArray,
    out_outside: BoolArray,
) -> None:
    """Fill every (track, frame - start) cell of the outputs once, NaN / False if no shape."""
    dim = points.shape[1]
    # Serial on purpose: the work is a memory-bound fill, and a thread team only adds its
    # start-up and barrier costs. Per-element loops rather than slice assignments: each
    # slice assignment costs seconds of compilation in Numba.
    for tr in range(track_offsets.shape[0] - 1):
        a = track_offsets[tr]
        b = track_offsets[tr + 1]
        k = a
        for col in range(out_rotation.shape[1]):
            f = start + col
            while k + 1 < b and frames[k + 1] <= f:
                k += 1
            is_key = k < b and frames[k] == f
            shown = k < b and frames[k] <= f and (is_key or not outside[k])
            key[tr, col] = is_key
            present[tr, col] = shown
            out_outside[tr, col] = is_key and outside[k]
            if not shown:
                for d in range(dim):
                    out_points[tr, col, d] = np.nan
                out_rotation[tr, col] = np.nan
            elif is_key or k + 1 == b:
                for d in range(dim):
                    out_points[tr, col, d] = points[k, d]
                out_rotation[tr, col] = rotation[k]
            else:
                t = (f - frames[k]) / (frames[k + 1] - frames[k])
                for d in range(dim):
                    out_points[tr, col, d] = points[k, d] + (points[k + 1, d] - points[k, d]) * t
                dr = angle_diff(rotation[k], rotation[k + 1])
                out_rotation[tr, col] = wrap_degrees(rotation[k] + dr * t + 360.0)


@kernel
def _copy_rows(src: FloatArray, dst: FloatArray, pos: int) -> None:
    for i in range(src.shape[0]):
        dst[pos + i, 0] = src[i, 0]
        dst[pos + i, 1] = src[i, 1]


@kernel
def _closed(pts: FloatArray, close: bool) -> FloatArray:
    out = np.empty((pts.shape[0] + int(close), 2))
    _copy_rows(pts, out, 0)
    if close:
        out[-1, 0] = pts[0, 0]
        out[-1, 1] = pts[0, 1]
    return out


@kernel
def _poly_track(  # noqa: PLR0917
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
                _copy_rows(kp, out_coords, pos)
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
                    _copy_rows(kp, out_coords, pos)
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
def poly_batch(  # noqa: PLR0917
    track_offsets: IntArray,
    frames: IntArray,
    vertex_offsets: IntArray,
    coords: FloatArray,
    outside: BoolArray,
    start: int,
    stop: int,
    closed: bool,
    write: bool,
    bases: IntArray,
    out_coords: FloatArray,
    first: IntArray,
    count: IntArray,
    sizes: IntArray,
) -> None:
    """Per track: with `write` False, an upper bound of its vertices on [start, stop] into
    `sizes`; with `write` True, its vertices from `bases[track]` and its frame table."""
    for tr in numba.prange(track_offsets.shape[0] - 1):
        sizes[tr] = _poly_track(
            frames, vertex_offsets, coords, outside, track_offsets[tr], track_offsets[tr + 1],
            start, stop, closed, write, bases[tr], out_coords, first, count, tr,
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
