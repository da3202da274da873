"""COCO run-length encoding, byte-compatible with pycocotools, and CVAT's mask layout.

A COCO RLE is `{"size": [h, w], "counts": ...}`: run lengths over the image flattened in
column-major (Fortran) order, starting with a run of zeros (possibly empty). `counts` is
either the compressed string (`bytes` from this module; `str` accepted) or a list of ints
("uncompressed"). Every function takes either form; outputs equal pycocotools' byte for byte.
Masks are 2-D bool or uint8 arrays in C or Fortran order; any nonzero byte is foreground.

The encoder never transposes a C-ordered mask. A pixel starts a new run exactly when it
differs from its predecessor in column-major order, which for every row but the first is
the pixel above it: so runs are found by comparing consecutive rows (contiguous memory,
64 bytes at a time), counted per column, and the positions scattered into column order.

CVAT stores a mask shape as `points = runs + [left, top, right, bottom]`: run lengths in
row-major order over the box (inclusive pixel bounds), starting with a run of zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, overload

import numba
import numpy as np
import numpy.typing as npt

from tessera.geometry._jit import kernel, parallel_kernel
from tessera.geometry._validate import (
    MAX_COORD,
    MAX_PIXELS,
    BoolArray,
    ByteArray,
    FloatArray,
    IntArray,
    as_coords,
    as_int_list,
    as_mask,
    as_numbers,
    check_size,
)


class CompressedRLE(TypedDict):
    """COCO RLE with the compressed counts string, as pycocotools returns it."""

    size: list[int]
    counts: bytes


class UncompressedRLE(TypedDict):
    """COCO RLE with counts as a list of run lengths."""

    size: list[int]
    counts: list[int]


RLELike = Mapping[str, Any]
"""Any `{"size": [h, w], "counts": bytes | str | list[int]}` mapping."""

Frame = tuple[int, int, int, int]
"""(top, left, h, w): where a C-ordered box sits in an h x w image."""

Packed = tuple[IntArray, IntArray, IntArray]
"""Run lengths of several RLEs concatenated, their offsets (n + 1), and sizes (n, 2)."""

_CHUNK = 64
_MAX_COORD = MAX_COORD
_MAX_PIXELS = MAX_PIXELS
_DENSE = 32
_MAX_CHARS = 7
_ERRORS = {
    1: "has a character outside '0'..'o'",
    2: "ends in the middle of a number",
    3: "decodes to a negative or too large run length",
}


# --- kernels: encoding -------------------------------------------------------------------


@kernel
def _top_change(m: ByteArray, x: int, wraps: bool) -> bool:
    """Whether box column x starts a run at its first row.

    Its predecessor is the pixel above the box (background), or, when the box spans the
    full height, the last pixel of the previous column.
    """
    prev = False
    if wraps and x > 0:
        prev = m[m.shape[0] - 1, x - 1] != 0
    return bool((m[0, x] != 0) != prev)


@kernel
def _bottom_exit(m: ByteArray, x: int, frame: Frame, wraps: bool) -> int:
    """Position of the run change just below box column x, or -1 when there is none."""
    top, left, h, w = frame
    bh, bw = m.shape
    if m[bh - 1, x] == 0 or (wraps and x + 1 < bw):
        return -1
    p = (left + x) * h + top + bh
    return p if p < h * w else -1


@kernel
def _change_total(m: ByteArray, frame: Frame) -> int:
    """Number of run changes of the box `m` placed at (top, left) in an h x w image."""
    top, _, h, _ = frame
    bh, bw = m.shape
    wraps = top == 0 and bh == h
    total = 0
    for x in range(bw):
        total += _top_change(m, x, wraps) + (_bottom_exit(m, x, frame, wraps) >= 0)
    for y in range(1, bh):
        row = 0
        for x in range(bw):
            row += (m[y - 1, x] != 0) != (m[y, x] != 0)
        total += row
    return total


@kernel
def _fill_box(m: ByteArray, frame: Frame, out: IntArray) -> None:
    """Write the sorted column-major positions of all run changes of box `m` into `out`.

    `out` holds `_change_total` items. Rows are compared 64 bytes at a time and only
    blocks with a change are walked pixel by pixel; changes are recorded in row order
    with their column, then sorted by column (counting sort, stable).
    """
    top, left, h, _ = frame
    bh, bw = m.shape
    wraps = top == 0 and bh == h
    cap = out.shape[0] + 1
    cols = np.empty(cap, np.int32)
    pos = np.empty(cap, np.int64)
    per_col = np.zeros(bw, np.int64)
    k = 0
    for x in range(bw):
        if _top_change(m, x, wraps) and k < cap:
            cols[k] = x
            pos[k] = (left + x) * h + top
            k += 1
    dense = out.shape[0] * _DENSE > bh * bw
    nchunks = (bw + _CHUNK - 1) // _CHUNK
    for y in range(1, bh):
        base = left * h + top + y
        for c in range(nchunks):
            lo = c * _CHUNK
            hi = min(lo + _CHUNK, bw)
            acc = np.uint8(1)
            if hi - lo == _CHUNK:
                acc = np.uint8(0)
                for x in range(lo, lo + _CHUNK):
                    acc |= m[y - 1, x] ^ m[y, x]
            if not acc:
                continue
            for x in range(lo, hi):
                d = (m[y - 1, x] != 0) != (m[y, x] != 0)
                if dense:
                    # Branch-free: always write, advance only on a change (one spare slot).
                    k = min(k, cap - 1)
                    cols[k] = x
                    pos[k] = base + x * h
                    k += d
                elif d and k < cap:
                    cols[k] = x
                    pos[k] = base + x * h
                    k += 1
    for x in range(bw):
        p = _bottom_exit(m, x, frame, wraps)
        if p >= 0 and k < cap:
            cols[k] = x
            pos[k] = p
            k += 1
    k = min(k, out.shape[0])
    for i in range(k):
        per_col[cols[i]] += 1
    start = 0
    for x in range(bw):
        start, per_col[x] = start + per_col[x], start
    for i in range(k):
        out[per_col[cols[i]]] = pos[i]
        per_col[cols[i]] += 1


@kernel
def _box_changes(m: ByteArray, frame: Frame) -> IntArray:
    """Sorted positions where runs change, for the C-ordered box `m` placed by `frame`."""
    if m.shape[0] == 0 or m.shape[1] == 0:
        return np.zeros(0, np.int64)
    out = np.empty(_change_total(m, frame), np.int64)
    _fill_box(m, frame, out)
    return out


@kernel
def _flat_changes(s: ByteArray) -> IntArray:
    """Sorted positions where runs change in the column-major pixel sequence `s`."""
    n = s.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    total = int(s[0] != 0)
    for i in range(1, n):
        total += (s[i] != 0) != (s[i - 1] != 0)
    out = np.empty(total + 1, np.int64)
    k = int(s[0] != 0)
    out[0] = 0
    dense = total * _DENSE > n
    for c in range((n + _CHUNK - 2) // _CHUNK):
        lo = 1 + c * _CHUNK
        hi = min(lo + _CHUNK, n)
        acc = np.uint8(0)
        if hi - lo == _CHUNK:
            for i in range(lo, lo + _CHUNK):
                acc |= s[i - 1] ^ s[i]
        else:
            acc = np.uint8(1)
        if acc:
            for i in range(lo, hi):
                d = (s[i] != 0) != (s[i - 1] != 0)
                if dense:
                    # Branch-free: the slot after the last change is spare.
                    out[k] = i
                    k += d
                elif d:
                    out[k] = i
                    k += 1
    return out[:total]


@kernel
def _changes_to_counts(pos: IntArray, n: int) -> IntArray:
    """Run lengths from the sorted positions where runs change."""
    k = pos.shape[0]
    out = np.empty(k + 1, np.int64)
    prev = 0
    for i in range(k):
        out[i] = pos[i] - prev
        prev = pos[i]
    out[k] = n - prev
    return out


@kernel
def _string_length(counts: IntArray) -> int:
    """Bytes `_write_string` needs for `counts`."""
    p = 0
    for i in range(counts.shape[0]):
        x = counts[i] - counts[i - 2] if i > 2 else counts[i]
        p += 1
        while not (-16 <= x < 16):
            x >>= 5
            p += 1
    return p


@kernel
def _write_string(counts: IntArray, out: ByteArray) -> int:
    """COCO's compressed counts: LEB128-like, 5 bits a char, offset by '0'.

    From the fourth count on, each value is the difference to the count two before it.
    Returns the number of bytes written; `out` must hold `_string_length(counts)`, at
    most `_MAX_CHARS` bytes a count (35 bits cover a signed difference of 32-bit counts).
    """
    p = 0
    for i in range(counts.shape[0]):
        x = counts[i] - counts[i - 2] if i > 2 else counts[i]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out[p] = c + 48
            p += 1
    return p


@kernel
def _counts_to_string(counts: IntArray) -> ByteArray:
    """The compressed counts string of `counts`."""
    out = np.empty(_string_length(counts), np.uint8)
    _write_string(counts, out)
    return out


@parallel_kernel
def _encode_stack(
    ms: ByteArray, compressed: bool
) -> tuple[IntArray, IntArray, ByteArray, IntArray, IntArray]:
    """Encode each mask of a C-ordered (N, H, W) stack, in parallel over masks.

    Two parallel passes only (count, then fill), so that a busy core stalls few joins.
    Returns the run lengths concatenated with their offsets, and, when compressed, the
    strings in slots of `_MAX_CHARS` bytes per count, with slot offsets and lengths.
    """
    nm, h, w = ms.shape
    npix = h * w
    totals = np.zeros(nm, np.int64)
    for i in numba.prange(nm):
        if h > 0 and w > 0:
            totals[i] = _change_total(ms[i], (0, 0, h, w))
    coff = np.zeros(nm + 1, np.int64)
    soff = np.zeros(nm + 1, np.int64)
    for i in range(nm):
        coff[i + 1] = coff[i] + totals[i] + 1
        soff[i + 1] = soff[i] + (_MAX_CHARS * (totals[i] + 1) if compressed else 0)
    counts = np.empty(coff[nm], np.int64)
    strings = np.empty(soff[nm], np.uint8)
    lengths = np.zeros(nm, np.int64)
    for i in numba.prange(nm):
        last = coff[i + 1] - 1
        if h > 0 and w > 0:
            _fill_box(ms[i], (0, 0, h, w), counts[coff[i] : last])
        # Run lengths overwrite their own positions in place, from the end backwards.
        counts[last] = npix - (counts[last - 1] if last > coff[i] else 0)
        for j in range(last - 1, coff[i], -1):
            counts[j] -= counts[j - 1]
        if compressed:
            lengths[i] = _write_string(
                counts[coff[i] : coff[i + 1]], strings[soff[i] : soff[i + 1]]
            )
    return counts, coff, strings, soff, lengths


# --- kernels: decoding and run-length algebra ----------------------------------------------


@kernel
def _string_to_counts(s: ByteArray) -> tuple[IntArray, int]:
    """Parse a compressed counts string; the int is 0 or an `_ERRORS` key."""
    n = s.shape[0]
    out = np.empty(n, np.int64)
    m = 0
    p = 0
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                return out[:0], 2
            c = int(s[p]) - 48
            if c < 0 or c > 63:
                return out[:0], 1
            if k > 7:
                return out[:0], 3
            x |= (c & 0x1F) << (5 * k)
            more = (c & 0x20) != 0
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if m > 2:
            x += out[m - 2]
        if x < 0 or x > MAX_PIXELS:
            return out[:0], 3
        out[m] = x
        m += 1
    return out[:m], 0


@kernel
def _decode_counts(counts: IntArray, n: int) -> ByteArray:
    """The column-major pixel sequence of `counts` (clipped to n pixels)."""
    out = np.empty(n, np.uint8)
    p = 0
    v = 0
    for i in range(counts.shape[0]):
        e = min(p + counts[i], n)
        out[p:e] = v
        p = e
        v ^= 1
    out[p:] = 0
    return out


@kernel
def _merge_two(a: IntArray, b: IntArray, intersect: bool) -> IntArray:
    """Union or intersection of two run-length lists over the same pixels.

    Walks both lists run by run the way pycocotools' rleMerge does, so that even lists
    with empty runs in the middle give the same counts.
    """
    cap = a.shape[0] + b.shape[0] + 1
    out = np.empty(cap, np.int64)
    ca = a[0]
    cb = b[0]
    v = False
    va = False
    vb = False
    m = 0
    ia = 1
    ib = 1
    cc = 0
    ct = 1
    while ct > 0 and m < cap:
        c = min(ca, cb)
        cc += c
        ct = 0
        ca -= c
        if ca == 0 and ia < a.shape[0]:
            ca = a[ia]
            ia += 1
            va = not va
        ct += ca
        cb -= c
        if cb == 0 and ib < b.shape[0]:
            cb = b[ib]
            ib += 1
            vb = not vb
        ct += cb
        vp = v
        v = (va and vb) if intersect else (va or vb)
        if v != vp or ct == 0:
            out[m] = cc
            m += 1
            cc = 0
    return out[:m]


@kernel
def _merge_many(counts: IntArray, offs: IntArray, intersect: bool) -> IntArray:
    """Fold `_merge_two` over the lists counts[offs[i]:offs[i + 1]], left to right."""
    acc = counts[offs[0] : offs[1]].copy()
    for i in range(1, offs.shape[0] - 1):
        acc = _merge_two(acc, counts[offs[i] : offs[i + 1]], intersect)
    return acc


@kernel
def _area(counts: IntArray) -> int:
    total = 0
    for j in range(1, counts.shape[0], 2):
        total += counts[j]
    return total


@kernel
def _bbox(counts: IntArray, h: int, w: int) -> FloatArray:
    """[x, y, width, height] as pycocotools' rleToBbox computes it.

    A run of ones that spans two columns makes the box full height.
    """
    out = np.zeros(4)
    m = (counts.shape[0] // 2) * 2
    if m == 0 or h == 0:
        return out
    xs = w
    ys = h
    xe = 0
    ye = 0
    cc = 0
    xp = 0
    for j in range(m):
        cc += counts[j]
        t = cc - j % 2
        y = t % h
        x = (t - y) // h
        if j % 2 == 0:
            xp = x
        elif xp < x:
            ys = 0
            ye = h - 1
        xs = min(xs, x)
        xe = max(xe, x)
        ys = min(ys, y)
        ye = max(ye, y)
    out[0] = xs
    out[1] = ys
    out[2] = xe - xs + 1
    out[3] = ye - ys + 1
    return out


@kernel
def _box_iou(dt: FloatArray, gt: FloatArray, crowd: ByteArray) -> FloatArray:
    """IoU of [x, y, w, h] boxes; for crowd ground truth the union is the detection."""
    nd = dt.shape[0]
    ng = gt.shape[0]
    out = np.zeros((nd, ng))
    for g in range(ng):
        ga = gt[g, 2] * gt[g, 3]
        for d in range(nd):
            da = dt[d, 2] * dt[d, 3]
            iw = min(dt[d, 2] + dt[d, 0], gt[g, 2] + gt[g, 0]) - max(dt[d, 0], gt[g, 0])
            if iw <= 0:
                continue
            ih = min(dt[d, 3] + dt[d, 1], gt[g, 3] + gt[g, 1]) - max(dt[d, 1], gt[g, 1])
            if ih <= 0:
                continue
            inter = iw * ih
            union = da if crowd[g] else da + ga - inter
            # Products of subnormal sizes can vanish: 0/0 is NaN in pycocotools too.
            out[d, g] = inter / union if union != 0 else np.nan
    return out


@kernel
def _rle_iou(dts: Packed, gts: Packed, crowd: ByteArray) -> FloatArray:
    """IoU of run-length masks, screened by their boxes as pycocotools' rleIou does.

    Pairs whose boxes overlap but whose image sizes differ get -1.
    """
    dc, doff, dsize = dts
    gc, goff, gsize = gts
    nd = doff.shape[0] - 1
    ng = goff.shape[0] - 1
    db = np.empty((nd, 4))
    gb = np.empty((ng, 4))
    for d in range(nd):
        db[d] = _bbox(dc[doff[d] : doff[d + 1]], dsize[d, 0], dsize[d, 1])
    for g in range(ng):
        gb[g] = _bbox(gc[goff[g] : goff[g + 1]], gsize[g, 0], gsize[g, 1])
    out = _box_iou(db, gb, crowd)
    for g in range(ng):
        b = gc[goff[g] : goff[g + 1]]
        for d in range(nd):
            if out[d, g] <= 0:
                continue
            if dsize[d, 0] != gsize[g, 0] or dsize[d, 1] != gsize[g, 1]:
                out[d, g] = -1
                continue
            a = dc[doff[d] : doff[d + 1]]
            ca = a[0]
            cb = b[0]
            ia = 1
            ib = 1
            va = False
            vb = False
            inter = 0
            union = 0
            ct = 1
            while ct > 0:
                c = min(ca, cb)
                if va or vb:
                    union += c
                    if va and vb:
                        inter += c
                ct = 0
                ca -= c
                if ca == 0 and ia < a.shape[0]:
                    ca = a[ia]
                    ia += 1
                    va = not va
                ct += ca
                cb -= c
                if cb == 0 and ib < b.shape[0]:
                    cb = b[ib]
                    ib += 1
                    vb = not vb
                ct += cb
            if inter == 0:
                union = 1
            elif crowd[g]:
                union = _area(a)
            out[d, g] = inter / union
    return out


# --- kernels: polygons ---------------------------------------------------------------------


@kernel
def _edge_uv(t: int, xs: int, ys: int, s: float, steep: bool) -> tuple[int, int]:
    """Point t of an upsampled edge, computed exactly as pycocotools' rleFrPoly does."""
    if steep:
        return int(xs + s * t + 0.5), t + ys
    return t + xs, int(ys + s * t + 0.5)


@kernel
def _past(t: int, b: int, x0: int, s: float, rising: bool) -> bool:
    """Whether point t of a steep edge lies past column boundary b (b to b + 1)."""
    u = int(x0 + s * t + 0.5)
    return u >= b + 1 if rising else u <= b


@kernel
def _poly_changes(xy: FloatArray, h: int, w: int, out: IntArray) -> int:
    """Column-major positions where the polygon's fill toggles, unsorted.

    pycocotools scales by 5, walks every edge point by point, and records a toggle where
    the walk crosses the centre of a pixel column (upsampled x from 5k+2 to 5k+3), at the
    first pixel row below the crossing. Along one edge x moves monotonically by at most 1
    a step, so each column centre is crossed exactly once if at all; this computes each
    crossing from the line instead of walking, so polygons far outside cost no more.
    With `out` empty, only counts the toggles.
    """
    nv = xy.shape[0] // 2
    k = 0
    for j in range(nv):
        j1 = (j + 1) % nv
        x0 = int(5.0 * xy[2 * j] + 0.5)
        y0 = int(5.0 * xy[2 * j + 1] + 0.5)
        x1 = int(5.0 * xy[2 * j1] + 0.5)
        y1 = int(5.0 * xy[2 * j1 + 1] + 0.5)
        dx = abs(x1 - x0)
        dy = abs(y1 - y0)
        if dx == 0 and dy == 0:
            continue
        steep = dx < dy
        if (not steep and x0 > x1) or (steep and y0 > y1):
            x0, y0, x1, y1 = x1, y1, x0, y0
        span = dy if steep else dx
        s = (x1 - x0) / dy if steep else (y1 - y0) / dx
        u_first = _edge_uv(0, x0, y0, s, steep)[0]
        u_last = _edge_uv(span, x0, y0, s, steep)[0]
        rising = u_last >= u_first
        umin = min(u_first, u_last)
        umax = max(u_first, u_last)
        kmin = max(0, -((2 - umin) // 5))
        kmax = min(w - 1, (umax - 3) // 5)
        if kmax < kmin:
            continue
        if out.shape[0] == 0:
            k += kmax - kmin + 1
            continue
        for col in range(kmin, kmax + 1):
            b = 5 * col + 2
            if not steep:
                t = b + 1 - x0
            else:
                # First t past the crossing: estimate from the line, then settle it with
                # the exact (monotone) formula.
                t = min(max(math.floor((b + 0.5 - x0) / s) + 1, 1), span)
                while t > 1 and _past(t - 1, b, x0, s, rising):
                    t -= 1
                while t < span and not _past(t, b, x0, s, rising):
                    t += 1
            v = min(_edge_uv(t - 1, x0, y0, s, steep)[1], _edge_uv(t, x0, y0, s, steep)[1])
            yd = (v + 0.5) / 5.0 - 0.5
            yd = min(max(yd, 0.0), float(h))
            out[k] = col * h + int(np.ceil(yd))
            k += 1
    return k


@kernel
def _toggles_to_counts(pos: IntArray, n: int) -> IntArray:
    """Run lengths from sorted toggle positions; toggles at one position cancel in pairs."""
    k = pos.shape[0] + 1
    a = _changes_to_counts(pos, n)
    out = np.empty(k, np.int64)
    out[0] = a[0]
    m = 1
    j = 1
    while j < k:
        if a[j] > 0:
            out[m] = a[j]
            m += 1
            j += 1
        else:
            j += 1
            if j < k:
                out[m - 1] += a[j]
                j += 1
    return out[:m]


@kernel
def _polygon_toggles(xy: FloatArray, h: int, w: int) -> IntArray:
    """Sorted toggle positions of one polygon."""
    out = np.empty(_poly_changes(xy, h, w, np.empty(0, np.int64)), np.int64)
    if out.shape[0]:
        _poly_changes(xy, h, w, out)
    out.sort()
    return out


@kernel
def _polygons_counts(xy: FloatArray, offs: IntArray, h: int, w: int) -> IntArray:
    """Union of the polygons xy[offs[i]:offs[i + 1]], merged one by one like pycocotools."""
    n = h * w
    acc = np.full(1, n, np.int64)
    for i in range(offs.shape[0] - 1):
        counts = _toggles_to_counts(_polygon_toggles(xy[offs[i] : offs[i + 1]], h, w), n)
        acc = counts if i == 0 else _merge_two(acc, counts, False)
    return acc


@kernel
def _counts_of_each(
    pos: IntArray, offs: IntArray, n: int, toggles: bool
) -> tuple[IntArray, IntArray, IntArray]:
    """Run lengths over n pixels of each sorted list pos[offs[i]:offs[i + 1]], of toggles
    (shifted by i * (n + 1), as `_polygons_toggles` gives them; toggles at one position
    cancel in pairs, as in `_toggles_to_counts`) or of changes (`_changes_to_counts`),
    concatenated, with their offsets and areas."""
    n_items = offs.shape[0] - 1
    # A list of k positions gives at most k + 1 runs.
    counts = np.empty(pos.shape[0] + n_items, np.int64)
    starts = np.zeros(n_items + 1, np.int64)
    areas = np.zeros(n_items, np.int64)
    write = 0
    for i in range(n_items):
        shift = i * (n + 1) if toggles else 0
        prev = 0
        merge = False
        first = write
        for j in range(offs[i], offs[i + 1] + 1):
            at = pos[j] - shift if j < offs[i + 1] else n
            run = at - prev
            prev = at
            if j == offs[i]:
                counts[write] = run
                write += 1
            elif merge:
                counts[write - 1] += run
                merge = False
            elif toggles and run == 0:
                merge = True
            else:
                counts[write] = run
                write += 1
        starts[i + 1] = write
        for j in range(first + 1, write, 2):
            areas[i] += counts[j]
    return counts[:write], starts, areas


@kernel
def _boxes_of_each(counts: IntArray, offs: IntArray, h: int, w: int) -> FloatArray:
    """`_bbox` of each run-length list counts[offs[i]:offs[i + 1]]."""
    boxes = np.empty((offs.shape[0] - 1, 4))
    for i in range(offs.shape[0] - 1):
        boxes[i] = _bbox(counts[offs[i] : offs[i + 1]], h, w)
    return boxes


@kernel
def _polygons_toggles(xy: FloatArray, offs: IntArray, h: int, w: int) -> tuple[IntArray, IntArray]:
    """The toggle positions of every polygon xy[offs[i]:offs[i + 1]], unsorted, each
    polygon's shifted by i * (h * w + 1) so that one sort of them all keeps every
    polygon's apart and in order; and their offsets."""
    n_polys = offs.shape[0] - 1
    starts = np.zeros(n_polys + 1, np.int64)
    for i in range(n_polys):
        poly = xy[offs[i] : offs[i + 1]]
        starts[i + 1] = starts[i] + _poly_changes(poly, h, w, np.empty(0, np.int64))
    toggles = np.empty(starts[n_polys], np.int64)
    for i in range(n_polys):
        if starts[i + 1] > starts[i]:
            mine = toggles[starts[i] : starts[i + 1]]
            _poly_changes(xy[offs[i] : offs[i + 1]], h, w, mine)
            mine += i * (h * w + 1)
    return toggles, starts


@kernel
def _batch_problem(values: FloatArray, offs: IntArray, minimum: int, step: int) -> tuple[int, int]:
    """(0, -1) when `offs` rises from 0 to len(values) by at least `minimum`, in multiples
    of `step`, and every value is finite and within MAX_COORD; else (code, index): 1
    offsets that do not start at 0 or end at the length, 2 item `index` too short, 3 item
    `index` not a multiple of `step`, 4 value `index` not finite or too large."""
    if offs.shape[0] < 1 or offs[0] != 0 or offs[offs.shape[0] - 1] != values.shape[0]:
        return 1, -1
    for i in range(offs.shape[0] - 1):
        size = offs[i + 1] - offs[i]
        if size < minimum:
            return 2, i
        if size % step:
            return 3, i
    for j in range(values.shape[0]):
        if not abs(values[j]) <= _MAX_COORD:
            return 4, j
    return 0, -1


# --- kernels: CVAT masks -------------------------------------------------------------------


@kernel
def _runs_to_box(runs: IntArray, bh: int, bw: int) -> ByteArray:
    """Row-major runs (zeros first) as a C-ordered (bh, bw) box; runs fit the box."""
    flat = np.zeros(bh * bw, np.uint8)
    p = 0
    for i in range(runs.shape[0]):
        e = min(p + runs[i], flat.shape[0])
        if i % 2:
            flat[p:e] = 1
        p = e
    return flat.reshape(bh, bw)


@kernel
def _masks_problem(values: FloatArray, offs: IntArray, h: int, w: int) -> tuple[int, int]:
    """(0, -1) when every CVAT mask values[offs[i]:offs[i + 1]] (checked by
    `_batch_problem` already) holds whole, non-negative numbers, a box inside the h x w
    image and runs that fit it; else (code, mask index): 5 a number not whole or negative
    or beyond 2**32 - 1, 6 the box outside the image, 7 runs overflowing the box."""
    for i in range(offs.shape[0] - 1):
        total = 0.0
        for j in range(offs[i], offs[i + 1]):
            v = values[j]
            if v < 0 or v != math.floor(v) or v > _MAX_PIXELS:
                return 5, i
            total += v
        end = offs[i + 1]
        left, top, right, bottom = (
            values[end - 4],
            values[end - 3],
            values[end - 2],
            values[end - 1],
        )
        if not (left <= right < w and top <= bottom < h):
            return 6, i
        if total - left - top - right - bottom > (right - left + 1) * (bottom - top + 1):
            return 7, i
    return 0, -1


@kernel
def _mask_changes(values: FloatArray, h: int, w: int, out: IntArray) -> int:
    """The sorted column-major positions where runs change in the h x w image of the CVAT
    mask `values` (checked by `_masks_problem`), written into `out`; with `out`
    empty, only their number. Returns that number.

    Works from the runs, never from pixels: each row's foreground is a list of intervals,
    and a pixel differs from the one above it exactly where the XOR of two consecutive
    rows' intervals is set, found by merging their boundaries. Changes at the box's top
    and below its bottom follow `_top_change` and `_bottom_exit`. Changes are found row
    by row and put in column order by a stable counting sort on their column, as in
    `_fill_box`. Cost: the runs, the box's rows and columns, and the changes themselves.
    """
    end = values.shape[0]
    left, top = int(values[end - 4]), int(values[end - 3])
    bw = int(values[end - 2]) - left + 1
    bh = int(values[end - 1]) - top + 1
    size = bh * bw
    n_runs = end - 4
    # The foreground runs cut at row ends: (row, first column, column past the last).
    cap = bh + n_runs + 1
    piece_row = np.empty(cap, np.int64)
    piece_a = np.empty(cap, np.int64)
    piece_b = np.empty(cap, np.int64)
    k = 0
    p = 0
    for j in range(n_runs):
        length = int(values[j])
        if j % 2 and length > 0:
            a = p
            b = min(p + length, size)
            while a < b:
                r = a // bw
                e = min(b, (r + 1) * bw)
                piece_row[k] = r
                piece_a[k] = a - r * bw
                piece_b[k] = e - r * bw
                k += 1
                a = e
        p += length
        if p >= size:
            break
    row_first = np.zeros(bh + 1, np.int64)
    for i in range(k):
        row_first[piece_row[i] + 1] += 1
    for r in range(bh):
        row_first[r + 1] += row_first[r]
    first_row = np.zeros(bw, np.uint8)
    last_row = np.zeros(bw, np.uint8)
    for i in range(row_first[0], row_first[1]):
        first_row[piece_a[i] : piece_b[i]] = 1
    for i in range(row_first[bh - 1], row_first[bh]):
        last_row[piece_a[i] : piece_b[i]] = 1
    wraps = top == 0 and bh == h
    counting = out.shape[0] == 0
    total = 0
    cols = np.empty(0, np.int32)
    pos = np.empty(0, np.int64)
    if not counting:
        cols = np.empty(out.shape[0], np.int32)
        pos = np.empty(out.shape[0], np.int64)
    for x in range(bw):
        before = np.uint8(1) if wraps and x > 0 and last_row[x - 1] else np.uint8(0)
        if first_row[x] != before:
            if not counting:
                cols[total] = x
                pos[total] = (left + x) * h + top
            total += 1
    for y in range(1, bh):
        # Merge the boundaries of rows y - 1 and y; the XOR is set after odd counts.
        i, i_end = row_first[y - 1], row_first[y]
        j, j_end = row_first[y], row_first[y + 1]
        ui = 0  # which boundary of piece i (0: start, 1: end)
        uj = 0
        odd = False
        last = 0
        base = left * h + top + y
        while i < i_end or j < j_end:
            bi = (piece_a[i] if ui == 0 else piece_b[i]) if i < i_end else bw + 1
            bj = (piece_a[j] if uj == 0 else piece_b[j]) if j < j_end else bw + 1
            at = min(bi, bj)
            if odd:
                if counting:
                    total += at - last
                else:
                    for x in range(last, at):
                        cols[total] = x
                        pos[total] = base + x * h
                        total += 1
            odd = not odd
            last = at
            if bi <= bj:
                ui += 1
                if ui == 2:
                    ui = 0
                    i += 1
            else:
                uj += 1
                if uj == 2:
                    uj = 0
                    j += 1
    for x in range(bw):
        if last_row[x] == 0 or (wraps and x + 1 < bw):
            continue
        below = (left + x) * h + top + bh
        if below < h * w:
            if not counting:
                cols[total] = x
                pos[total] = below
            total += 1
    if counting:
        return total
    per_col = np.zeros(bw + 1, np.int64)
    for i in range(total):
        per_col[cols[i] + 1] += 1
    for x in range(bw):
        per_col[x + 1] += per_col[x]
    for i in range(total):
        out[per_col[cols[i]]] = pos[i]
        per_col[cols[i]] += 1
    return total


@kernel
def _masks_counts(
    values: FloatArray, offs: IntArray, h: int, w: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Image run lengths of each CVAT mask values[offs[i]:offs[i + 1]] (runs, then
    [left, top, right, bottom]; checked by `_masks_problem`), concatenated, with their
    offsets and areas (`_mask_changes` of each)."""
    n_masks = offs.shape[0] - 1
    change_starts = np.zeros(n_masks + 1, np.int64)
    none = np.empty(0, np.int64)
    for i in range(n_masks):
        found = _mask_changes(values[offs[i] : offs[i + 1]], h, w, none)
        change_starts[i + 1] = change_starts[i] + found
    changes = np.empty(change_starts[n_masks], np.int64)
    for i in range(n_masks):
        mine = changes[change_starts[i] : change_starts[i + 1]]
        if mine.shape[0]:
            _mask_changes(values[offs[i] : offs[i + 1]], h, w, mine)
    return _counts_of_each(changes, change_starts, h * w, False)


@kernel
def _box_to_runs(m: ByteArray) -> IntArray:
    """Row-major run lengths of a 2-D array, starting with a (possibly empty) zero run."""
    bh, bw = m.shape
    out = np.empty(bh * bw + 1, np.int64)
    k = 0
    run = 0
    v = False
    for y in range(bh):
        for x in range(bw):
            p = m[y, x] != 0
            if p != v:
                out[k] = run
                k += 1
                run = 0
                v = p
            run += 1
    out[k] = run
    return out[: k + 1]


@kernel
def _tight_box(m: ByteArray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the nonzero pixels, inclusive; top = -1 if none."""
    bh, bw = m.shape
    top = -1
    bottom = -1
    left = bw
    right = -1
    for y in range(bh):
        row = m[y]
        first = -1
        last = -1
        for x in range(bw):
            if row[x] != 0:
                if first < 0:
                    first = x
                last = x
        if first >= 0:
            if top < 0:
                top = y
            bottom = y
            left = min(left, first)
            right = max(right, last)
    return top, left, bottom, right


@kernel
def _counts_extent(counts: IntArray, h: int) -> tuple[int, int, int, int]:
    """Exact (top, left, bottom, right) of the ones of a run-length list; top = -1 if none."""
    top = h
    bottom = -1
    left = -1
    right = -1
    p = 0
    for i in range(counts.shape[0]):
        c = counts[i]
        if i % 2 and c > 0:
            x0 = p // h
            y0 = p % h
            x1 = (p + c - 1) // h
            y1 = (p + c - 1) % h
            if left < 0:
                left = x0
            right = x1
            if x1 > x0:
                top = 0
                bottom = h - 1
            else:
                top = min(top, y0)
                bottom = max(bottom, y1)
        p += c
    if left < 0:
        return -1, -1, -1, -1
    return top, left, bottom, right


@kernel
def _counts_to_box(counts: IntArray, h: int, frame: Frame) -> ByteArray:
    """Crop the ones of a column-major run-length list (h rows) to the C-ordered box
    `frame` = (top, left, box height, box width)."""
    top, left, bh, bw = frame
    box = np.zeros((bh, bw), np.uint8)
    p = 0
    for i in range(counts.shape[0]):
        c = counts[i]
        if i % 2:
            q = p
            while q < p + c:
                x = q // h
                y = q % h
                e = min(p + c - q, h - y)
                bx = x - left
                if 0 <= bx < bw:
                    for yy in range(max(y, top), min(y + e, top + bh)):
                        box[yy - top, bx] = 1
                q += e
        p += c
    return box


# --- public API ----------------------------------------------------------------------------


def _compressed(counts: IntArray, h: int, w: int) -> CompressedRLE:
    return {"size": [h, w], "counts": _counts_to_string(counts).tobytes()}


def _finish(pos: IntArray, h: int, w: int, compressed: bool) -> CompressedRLE | UncompressedRLE:
    counts = _changes_to_counts(pos, h * w)
    if compressed:
        return _compressed(counts, h, w)
    return {"size": [h, w], "counts": counts.tolist()}


def _changes(m: ByteArray) -> IntArray:
    h, w = m.shape
    if m.flags.f_contiguous and not m.flags.c_contiguous:
        return _flat_changes(m.T.reshape(-1))
    return _box_changes(np.ascontiguousarray(m), (0, 0, h, w))


@overload
def encode(mask: npt.NDArray[Any], *, compressed: Literal[True] = ...) -> CompressedRLE: ...
@overload
def encode(mask: npt.NDArray[Any], *, compressed: Literal[False]) -> UncompressedRLE: ...
@overload
def encode(mask: npt.NDArray[Any], *, compressed: bool) -> CompressedRLE | UncompressedRLE: ...
def encode(mask: npt.NDArray[Any], *, compressed: bool = True) -> CompressedRLE | UncompressedRLE:
    """Encode a 2-D bool or uint8 mask (C or Fortran order) as a COCO RLE.

    Equals `pycocotools.mask.encode(np.asfortranarray(mask))` byte for byte (with nonzero
    bytes read as 1). With `compressed=False`, counts is a list of run lengths instead.
    C-ordered masks are read in place, without a transposed copy.
    """
    m = as_mask(mask)
    return _finish(_changes(m), m.shape[0], m.shape[1], compressed)


@overload
def encode_batch(
    masks: npt.NDArray[Any], *, compressed: Literal[True] = ...
) -> list[CompressedRLE]: ...
@overload
def encode_batch(
    masks: npt.NDArray[Any], *, compressed: Literal[False]
) -> list[UncompressedRLE]: ...
@overload
def encode_batch(
    masks: npt.NDArray[Any], *, compressed: bool
) -> list[CompressedRLE] | list[UncompressedRLE]: ...
def encode_batch(
    masks: npt.NDArray[Any], *, compressed: bool = True
) -> list[CompressedRLE] | list[UncompressedRLE]:
    """Encode an (N, H, W) stack of bool or uint8 masks, masks in parallel on all cores.

    Returns one RLE per mask, each equal to `encode(masks[i])`. A stack that is not
    C-contiguous is copied once.
    """
    ms = np.ascontiguousarray(as_mask(masks, "masks", ndim=3))
    n, h, w = ms.shape
    counts, coff, strings, soff, lengths = _encode_stack(ms, compressed)
    if compressed:
        raw = strings.tobytes()
        packed: list[CompressedRLE] = [
            {"size": [h, w], "counts": raw[soff[i] : soff[i] + lengths[i]]} for i in range(n)
        ]
        return packed
    listed: list[UncompressedRLE] = [
        {"size": [h, w], "counts": counts[coff[i] : coff[i + 1]].tolist()} for i in range(n)
    ]
    return listed


def _unpack(rle: object, name: str = "rle") -> tuple[int, int, IntArray]:
    """(h, w, run lengths) of an RLE in either form, checked against its size."""
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"{name} must be a mapping with 'size' and 'counts'")
    size = rle["size"]
    if not isinstance(size, Sequence | np.ndarray) or len(size) != 2:
        raise ValueError(f"{name}['size'] must be [h, w], got {size!r}")
    h, w = check_size(size[0], size[1])
    raw = rle["counts"]
    if isinstance(raw, str):
        try:
            raw = raw.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"{name}['counts'] {_ERRORS[1]}") from None
    if isinstance(raw, bytes | bytearray):
        counts, err = _string_to_counts(np.frombuffer(raw, np.uint8))
        if err:
            raise ValueError(f"{name}['counts'] {_ERRORS[err]}")
    else:
        counts = as_int_list(raw, f"{name}['counts']")
    if counts.shape[0] == 0:
        counts = np.zeros(1, np.int64)
    total = int(counts.sum())
    if total != h * w:
        raise ValueError(f"{name}['counts'] cover {total} pixels, but size {h}x{w} has {h * w}")
    return h, w, counts


def _pack(rles: Sequence[RLELike], name: str) -> tuple[IntArray, IntArray, IntArray]:
    """Concatenated run lengths, their offsets, and an (n, 2) array of sizes."""
    if isinstance(rles, Mapping | str | bytes) or not isinstance(rles, Sequence):
        raise ValueError(f"{name} must be a list of RLEs")
    parts = [_unpack(r, f"{name}[{i}]") for i, r in enumerate(rles)]
    sizes = np.array([(h, w) for h, w, _ in parts], np.int64).reshape(-1, 2)
    offs = np.zeros(len(parts) + 1, np.int64)
    offs[1:] = np.cumsum([c.shape[0] for _, _, c in parts])
    counts = np.concatenate([c for _, _, c in parts]) if parts else np.zeros(0, np.int64)
    return counts, offs, sizes


def to_counts(rle: RLELike) -> UncompressedRLE:
    """The same RLE with counts as a list of run lengths (pycocotools' uncompressed form)."""
    h, w, counts = _unpack(rle)
    return {"size": [h, w], "counts": counts.tolist()}


def compress(rle: RLELike) -> CompressedRLE:
    """The same RLE with the compressed counts string, as `frPyObjects` gives for a list."""
    h, w, counts = _unpack(rle)
    return _compressed(counts, h, w)


def decode(rle: RLELike) -> ByteArray:
    """The (h, w) uint8 mask of an RLE, in Fortran order like `pycocotools.mask.decode`."""
    h, w, counts = _unpack(rle)
    return _decode_counts(counts, h * w).reshape(w, h).T


def area(rle: RLELike) -> int:
    """Number of foreground pixels."""
    return int(_area(_unpack(rle)[2]))


def to_bbox(rle: RLELike) -> FloatArray:
    """[x, y, width, height] of the foreground as float64, like `pycocotools.mask.toBbox`.

    As in pycocotools, a run that wraps from one column into the next makes the box span
    the full height; an empty mask gives zeros.
    """
    h, w, counts = _unpack(rle)
    return _bbox(counts, h, w)


def merge(rles: Sequence[RLELike], intersect: bool = False) -> CompressedRLE:
    """Union (or intersection) of RLEs of one size, like `pycocotools.mask.merge`."""
    counts, offs, sizes = _pack(rles, "rles")
    if sizes.shape[0] == 0:
        raise ValueError("rles must hold at least one RLE")
    if (sizes != sizes[0]).any():
        raise ValueError(f"rles must all have the same size, got {np.unique(sizes, axis=0)}")
    h, w = (int(v) for v in sizes[0])
    return _compressed(_merge_many(counts, offs, bool(intersect)), h, w)


def _as_boxes(boxes: object, name: str) -> FloatArray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr.reshape(1, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} boxes must be [x, y, w, h] rows, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} boxes must be finite (no NaN or inf)")
    return np.ascontiguousarray(arr)


def _is_boxes(objs: object) -> bool:
    if isinstance(objs, np.ndarray):
        return True
    return isinstance(objs, Sequence) and all(
        isinstance(o, Sequence | np.ndarray) and not isinstance(o, str | bytes) and len(o) == 4
        for o in objs
    )


def iou(
    dt: Sequence[RLELike] | Sequence[Sequence[float]] | FloatArray,
    gt: Sequence[RLELike] | Sequence[Sequence[float]] | FloatArray,
    iscrowd: Sequence[bool] | Sequence[int] | npt.NDArray[Any],
) -> FloatArray:
    """IoU matrix of shape (len(dt), len(gt)), like `pycocotools.mask.iou`.

    dt and gt are both lists of RLEs, or both [x, y, w, h] boxes (a list or an (N, 4)
    array). For a crowd ground truth the union is the detection's area. RLE pairs whose
    boxes overlap but whose sizes differ get -1, as in pycocotools. Empty inputs give an
    empty (len(dt), len(gt)) matrix (pycocotools returns []).
    """
    crowd = np.asarray(iscrowd).astype(np.uint8, copy=False).reshape(-1)
    nd, ng = len(dt), len(gt)
    if crowd.shape[0] != ng:
        raise ValueError(f"iscrowd must hold one flag per gt ({ng}), got {crowd.shape[0]}")
    if nd == 0 or ng == 0:
        return np.zeros((nd, ng))
    dt_boxes, gt_boxes = _is_boxes(dt), _is_boxes(gt)
    if dt_boxes != gt_boxes:
        raise ValueError("dt and gt must both be RLEs or both be boxes")
    if dt_boxes:
        return _box_iou(_as_boxes(dt, "dt"), _as_boxes(gt, "gt"), crowd)
    return _rle_iou(_pack(dt, "dt"), _pack(gt, "gt"), crowd)  # type: ignore[arg-type]


def from_polygons(
    polygons: Sequence[Sequence[float] | FloatArray], h: int, w: int
) -> CompressedRLE:
    """Rasterise polygons `[x0, y0, x1, y1, ...]` into one RLE (their union).

    Equals `pycocotools.mask.merge(pycocotools.mask.frPyObjects(polygons, h, w))`:
    pixel (col, row) covers [col, col + 1] x [row, row + 1] and is set when its centre
    is inside; each polygon is filled even-odd. Parts outside the image are clipped. An
    empty list gives an empty mask.
    """
    h, w = check_size(h, w)
    if isinstance(polygons, np.ndarray) or not isinstance(polygons, Sequence):
        raise ValueError("polygons must be a list of flat coordinate lists")
    flat = [as_coords(p, f"polygons[{i}]") for i, p in enumerate(polygons)]
    offs = np.zeros(len(flat) + 1, np.int64)
    offs[1:] = np.cumsum([p.shape[0] for p in flat])
    xy = np.concatenate(flat) if flat else np.zeros(0)
    return _compressed(_polygons_counts(xy, offs, h, w), h, w)


@dataclass(frozen=True)
class CountsBatch:
    """Uncompressed RLEs of many masks over one h x w image, concatenated.

    Mask `i` has the run lengths `counts[offsets[i]:offsets[i + 1]]` (what COCO's
    uncompressed `counts` holds) and `areas[i]` pixels (`area`).
    """

    height: int
    width: int
    counts: IntArray
    offsets: IntArray
    areas: IntArray

    def boxes(self) -> FloatArray:
        """Each mask's [x, y, width, height], as `to_bbox` gives it, in an (n, 4) array."""
        return _boxes_of_each(self.counts, self.offsets, self.height, self.width)

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def counts_of(self, index: int) -> IntArray:
        """The run lengths of mask `index` (a view)."""
        return self.counts[self.offsets[index] : self.offsets[index + 1]]


_BATCH_PROBLEMS = {
    2: "has {size} numbers, fewer than {minimum}",
    3: "has an odd count of numbers ({size})",
}
_MASK_PROBLEMS = {
    5: "holds a number that is not a whole number in 0..2**32 - 1",
    6: "has its box [{box}] outside the {w}x{h} image",
    7: "has runs covering more pixels than its box",
}


def _batch(
    values: npt.ArrayLike, offsets: npt.ArrayLike, minimum: int, step: int
) -> tuple[FloatArray, IntArray]:
    """The flat numbers and item offsets of a batch, checked: offsets from 0 to the end,
    items of at least `minimum` numbers in multiples of `step`, numbers finite and within
    +-MAX_COORD."""
    flat = np.ascontiguousarray(values, dtype=np.float64)
    offs = np.ascontiguousarray(offsets)
    if flat.ndim != 1:
        raise ValueError(f"values must be flat, got shape {flat.shape}")
    if offs.ndim != 1 or offs.dtype.kind not in "iu":
        raise ValueError("offsets must be a 1D integer array of n + 1 entries")
    offs = offs.astype(np.int64, copy=False)
    code, index = _batch_problem(flat, offs, minimum, step)
    if code == 1:
        raise ValueError(f"offsets must run from 0 to {flat.shape[0]}")
    if code in _BATCH_PROBLEMS:
        size = int(offs[index + 1] - offs[index])
        problem = _BATCH_PROBLEMS[code].format(size=size, minimum=minimum)
        raise ValueError(f"item {index} {problem}")
    if code == 4:
        raise ValueError(f"values[{index}] is not finite or beyond +-{MAX_COORD:g}")
    return flat, offs


def polygons_to_counts(
    coords: npt.ArrayLike, offsets: npt.ArrayLike, h: int, w: int
) -> CountsBatch:
    """Rasterise each polygon `coords[offsets[i]:offsets[i + 1]]` (flat x, y pairs) on its
    own, as `from_polygons([polygon], h, w)` does, in one call.

    For the many polygons of one image (a frame's, in an export) this is one kernel call
    instead of one per polygon, and one numpy sort of all their toggles (several times
    faster than a sort inside the kernel).
    """
    h, w = check_size(h, w)
    xy, offs = _batch(coords, offsets, 2, 2)
    toggles, starts = _polygons_toggles(xy, offs, h, w)
    toggles.sort()
    return CountsBatch(h, w, *_counts_of_each(toggles, starts, h * w, True))


def from_bbox(bbox: Sequence[float] | FloatArray, h: int, w: int) -> CompressedRLE:
    """The RLE of an [x, y, width, height] box, like `frPyObjects([bbox], h, w)[0]`."""
    x, y, bw, bh = as_numbers(bbox, "bbox", 4)
    if bw < 0 or bh < 0:
        raise ValueError(f"bbox width and height must be non-negative, got {bw}, {bh}")
    return from_polygons([[x, y, x, y + bh, x + bw, y + bh, x + bw, y]], h, w)


def _cvat_parts(points: object, h: int, w: int) -> tuple[IntArray, int, int, int, int]:
    """(runs, left, top, right, bottom) of a CVAT mask, checked against an h x w image."""
    values = as_numbers(points, "points")
    if values.shape[0] < 5:
        raise ValueError("points must hold run lengths followed by [left, top, right, bottom]")
    left, top, right, bottom = (int(v) for v in values[-4:])
    if not (0 <= left <= right < w and 0 <= top <= bottom < h):
        raise ValueError(
            f"mask box [{left}, {top}, {right}, {bottom}] must lie inside the {w}x{h} image"
        )
    runs = as_int_list(values[:-4], "points runs")
    area_ = (right - left + 1) * (bottom - top + 1)
    if int(runs.sum()) > area_:
        raise ValueError(f"runs cover {int(runs.sum())} pixels, more than the box's {area_}")
    return runs, left, top, right, bottom


def cvat_mask_to_array(points: Sequence[float] | FloatArray, h: int, w: int) -> BoolArray:
    """The (h, w) bool mask of a CVAT mask shape's points (C order).

    `points = runs + [left, top, right, bottom]`; box bounds are truncated to ints as
    CVAT does; runs may stop short of the box's end (the rest is background).
    """
    h, w = check_size(h, w)
    runs, left, top, right, bottom = _cvat_parts(points, h, w)
    out = np.zeros((h, w), np.bool_)
    box = _runs_to_box(runs, bottom - top + 1, right - left + 1)
    out[top : bottom + 1, left : right + 1] = box.view(np.bool_)
    return out


def cvat_mask_to_rle(points: Sequence[float] | FloatArray, h: int, w: int) -> CompressedRLE:
    """COCO RLE over the whole h x w image of a CVAT mask shape's points."""
    h, w = check_size(h, w)
    runs, left, top, right, bottom = _cvat_parts(points, h, w)
    box = _runs_to_box(runs, bottom - top + 1, right - left + 1)
    return _compressed(_changes_to_counts(_box_changes(box, (top, left, h, w)), h * w), h, w)


def cvat_masks_to_counts(
    points: npt.ArrayLike, offsets: npt.ArrayLike, h: int, w: int
) -> CountsBatch:
    """The image RLEs of many CVAT mask shapes of one h x w image, in one call: mask `i`
    has the points `points[offsets[i]:offsets[i + 1]]` (runs, then [left, top, right,
    bottom]); each gives what `cvat_mask_to_rle` gives it, uncompressed.

    Raises ValueError (naming the mask) for what `cvat_mask_to_rle` refuses: numbers
    that are not whole and non-negative, a box outside the image, runs that overflow it.
    """
    h, w = check_size(h, w)
    values, offs = _batch(points, offsets, 5, 1)
    code, index = _masks_problem(values, offs, h, w)
    if code:
        box = ", ".join(str(int(v)) for v in values[offs[index + 1] - 4 : offs[index + 1]])
        raise ValueError(f"mask {index} " + _MASK_PROBLEMS[code].format(box=box, w=w, h=h))
    return CountsBatch(h, w, *_masks_counts(values, offs, h, w))


def array_to_cvat_mask(mask: npt.NDArray[Any]) -> list[int]:
    """CVAT mask points (runs over the tight box, then [left, top, right, bottom]).

    Raises ValueError for an empty mask, which CVAT cannot store.
    """
    m = as_mask(mask)
    top, left, bottom, right = _tight_box(m)
    if top < 0:
        raise ValueError("mask is empty; CVAT mask shapes need at least one pixel")
    runs = _box_to_runs(m[top : bottom + 1, left : right + 1])
    return [*runs.tolist(), left, top, right, bottom]


def rle_to_cvat_mask(rle: RLELike) -> list[int]:
    """CVAT mask points of a COCO RLE. Raises ValueError for an empty mask."""
    h, _, counts = _unpack(rle)
    top, left, bottom, right = _counts_extent(counts, h)
    if top < 0:
        raise ValueError("rle is empty; CVAT mask shapes need at least one pixel")
    box = _counts_to_box(counts, h, (top, left, bottom - top + 1, right - left + 1))
    return [*_box_to_runs(box).tolist(), left, top, right, bottom]
