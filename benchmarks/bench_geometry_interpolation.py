"""Track interpolation: Numba batch kernels against a plain-Python implementation.

Workloads: 1,000 rectangle tracks over 300 frames (4 keyframes each, some outside) and
1,000 polygon tracks of 64 vertices with 3 keyframes each, over 300 frames. The
reference below is the same algorithm (CVAT's semantics) written in plain Python, as a
straightforward implementation would be; both outputs are compared to 1e-6 in the run.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from tessera.geometry.interpolation import (
    LinearTracks,
    PolyTracks,
    interpolate_linear_tracks,
    interpolate_poly_tracks,
)

N_TRACKS = 1000
STOP = 299
VERTICES = 64
GOAL = 100.0
COMMAND = "python -m benchmarks.run geometry_interpolation"

Keyframe = tuple[int, list[float], float, bool]
T = TypeVar("T")


def _rect_tracks(rng: np.random.Generator) -> list[list[Keyframe]]:
    tracks = []
    for _ in range(N_TRACKS):
        frames = np.sort(rng.choice(np.arange(0, 320), size=4, replace=False))
        track = []
        for j, f in enumerate(frames):
            x, y = rng.uniform(0, 1800, 2)
            w, h = rng.uniform(5, 200, 2)
            outside = bool(j == 2 and rng.random() < 0.3)
            track.append((int(f), [x, y, x + w, y + h], float(rng.uniform(0, 360)), outside))
        tracks.append(track)
    return tracks


def _poly_tracks(rng: np.random.Generator) -> list[list[Keyframe]]:
    angles = np.linspace(0, 2 * np.pi, VERTICES, endpoint=False)
    tracks = []
    for _ in range(N_TRACKS):
        frames = [
            int(rng.integers(0, 20)),
            int(rng.integers(130, 170)),
            int(rng.integers(280, 300)),
        ]
        cx, cy = rng.uniform(200, 1600, 2)
        track = []
        for f in frames:
            radius = rng.uniform(40, 80) * (1 + 0.2 * rng.standard_normal(VERTICES)).clip(0.3)
            xy = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
            track.append((f, xy.reshape(-1).tolist(), 0.0, False))
            cx, cy = cx + rng.uniform(-100, 100), cy + rng.uniform(-100, 100)
        tracks.append(track)
    return tracks


def _ref_rect(tracks: list[list[Keyframe]]) -> list[list[tuple[list[float], float] | None]]:
    out = []
    for track in tracks:
        frames: list[tuple[list[float], float] | None] = [None] * (STOP + 1)
        for k, (f0, p0, r0, outside) in enumerate(track):
            if f0 > STOP:
                break
            frames[f0] = (p0, r0)
            if outside:
                continue
            if k + 1 < len(track):
                f1, p1, r1, _ = track[k + 1]
                dr = ((r1 - r0 + 180.0) % 360.0) - 180.0
                for f in range(f0 + 1, min(f1, STOP + 1)):
                    t = (f - f0) / (f1 - f0)
                    pts = [a + (b - a) * t for a, b in zip(p0, p1, strict=True)]
                    frames[f] = (pts, (r0 + dr * t + 360.0) % 360.0)
            else:
                for f in range(f0 + 1, STOP + 1):
                    frames[f] = (p0, r0)
        out.append(frames)
    return out


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = a[0] - b[0], a[1] - b[1]
    return math.sqrt(dx * dx + dy * dy)


def _ref_length(xy: list[tuple[float, float]], first: int, last: int) -> float:
    total = 0.0
    for i in range(first + 1, last + 1):
        total += _dist(xy[i], xy[i - 1])
    return total


def _ref_positions(xy: list[tuple[float, float]]) -> list[float]:
    total = _ref_length(xy, 0, len(xy) - 1)
    out = [0.0]
    acc = 0.0
    for i in range(1, len(xy)):
        acc += _dist(xy[i], xy[i - 1])
        out.append(acc / total if total else 0.0)
    return out


def _ref_nearest(value: float, curve: list[float]) -> int:
    best, best_d = 0, abs(value - curve[0])
    for i in range(1, len(curve)):
        d = abs(value - curve[i])
        if d < best_d:
            best, best_d = i, d
    return best


def _ref_poly_pair(
    p0: list[float], p1: list[float], f0: int, f1: int, frames: list[list[float] | None]
) -> None:
    left = [(p0[i], p0[i + 1]) for i in range(0, len(p0), 2)]
    right = [(p1[i], p1[i + 1]) for i in range(0, len(p1), 2)]
    left.append(left[0])
    right.append(right[0])
    lpos, rpos = _ref_positions(left), _ref_positions(right)
    lists = [[_ref_nearest(v, rpos)] for v in lpos]
    taken = {m[0] for m in lists}
    for j, v in enumerate(rpos):
        if j not in taken:
            lists[_ref_nearest(v, lpos)].append(j)
    for m in lists:
        m.sort()
    pairs = [(i, j) for i, m in enumerate(lists) for j in m]
    index = []
    acc = 0
    for m in lists:
        index.append(acc)
        acc += len(m)
    segments: list[tuple[int, int, float]] = []
    opened: int | None = None
    for i in range(len(left) + 1):
        single = i < len(left) and len(lists[i]) == 1
        if single and opened is not None and lists[i][0] == lists[opened][0]:
            continue
        if opened is not None:
            span = i - opened
            segments.append(
                (index[opened], index[i - 1], _ref_length(left, opened, i - 1) / (2 * span))
            )
            opened = None
        if i == len(left):
            break
        if single:
            opened = i
        else:
            a, b = lists[i][0], lists[i][-1]
            segments.append(
                (
                    index[i],
                    index[i] + len(lists[i]) - 1,
                    _ref_length(right, a, b) / (2 * (b - a + 1)),
                )
            )
    for f in range(f0 + 1, min(f1, STOP + 1)):
        t = (f - f0) / (f1 - f0)
        pts = [
            (
                left[i][0] + (right[j][0] - left[i][0]) * t,
                left[i][1] + (right[j][1] - left[i][1]) * t,
            )
            for i, j in pairs
        ]
        reduced: list[tuple[float, float]] = []
        for first, last, thr in segments:
            if first == last:
                reduced.append(pts[first])
                continue
            kept = [pts[first]]
            anchor = first
            for k in range(first + 1, last):
                if _dist(pts[anchor], pts[k]) >= thr:
                    kept.append(pts[k])
                    anchor = k
            kept.append(pts[last])
            head, tail = pts[first], pts[last]
            if len(kept) == 2 and _dist(head, tail) < thr:
                kept = [((head[0] + tail[0]) / 2, (head[1] + tail[1]) / 2)]
            reduced.extend(kept)
        frames[f] = [c for p in reduced[:-1] for c in p]


def _ref_poly(tracks: list[list[Keyframe]]) -> list[list[list[float] | None]]:
    out = []
    for track in tracks:
        frames: list[list[float] | None] = [None] * (STOP + 1)
        for k, (f0, p0, _, _) in enumerate(track):
            frames[f0] = p0
            if k + 1 < len(track):
                _ref_poly_pair(p0, track[k + 1][1], f0, track[k + 1][0], frames)
            else:
                for f in range(f0 + 1, STOP + 1):
                    frames[f] = p0
        out.append(frames)
    return out


def _flatten(tracks: list[list[Keyframe]], width: int | None) -> dict[str, Any]:
    counts = [len(t) for t in tracks]
    kfs = [kf for t in tracks for kf in t]
    arrays: dict[str, Any] = {
        "track_offsets": np.concatenate([[0], np.cumsum(counts)]),
        "frames": np.array([kf[0] for kf in kfs]),
        "outside": np.array([kf[3] for kf in kfs]),
    }
    if width is not None:
        arrays["points"] = np.array([kf[1] for kf in kfs])
        arrays["rotation"] = np.array([kf[2] for kf in kfs])
    else:
        sizes = [len(kf[1]) // 2 for kf in kfs]
        arrays["vertex_offsets"] = np.concatenate([[0], np.cumsum(sizes)])
        arrays["coords"] = np.concatenate([np.reshape(kf[1], (-1, 2)) for kf in kfs])
    return arrays


def _check_rect(got: LinearTracks, ref: list[list[tuple[list[float], float] | None]]) -> None:
    for tr, frames in enumerate(ref):
        for f, item in enumerate(frames):
            if item is None:
                assert not got.present[tr, f], (tr, f)
                continue
            assert got.present[tr, f], (tr, f)
            np.testing.assert_allclose(got.points[tr, f], item[0], atol=1e-6, rtol=0)
            assert abs(got.rotation[tr, f] - item[1]) <= 1e-6, (tr, f)


def _check_poly(got: PolyTracks, ref: list[list[list[float] | None]]) -> None:
    for tr, frames in enumerate(ref):
        for f, item in enumerate(frames):
            if item is None:
                assert got.count[tr, f] < 0, (tr, f)
                continue
            np.testing.assert_allclose(got.vertices(tr, f).reshape(-1), item, atol=1e-6, rtol=0)


def _median(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _row(name: str, ref_s: float, fast_s: float) -> str:
    ratio = ref_s / fast_s
    met = "yes" if ratio >= GOAL else "no"
    return (
        f"| {name} | {ref_s * 1e3:.1f} ms | {fast_s * 1e3:.2f} ms | {ratio:.0f}x "
        f"| >= {GOAL:.0f}x | {met} |"
    )


_COLD_SCRIPT = """
import time
import numpy as np
t0 = time.perf_counter()
from tessera.geometry.interpolation import interpolate_linear_tracks, interpolate_poly_tracks
t1 = time.perf_counter()
interpolate_linear_tracks([0, 2], [0, 9], np.zeros((2, 4)), 20)
t2 = time.perf_counter()
interpolate_poly_tracks([0, 2], [0, 9], [0, 3, 7], np.ones((7, 2)), 20, closed=True)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _first_calls(cache_dir: str) -> list[float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run(
        [sys.executable, "-c", _COLD_SCRIPT], env=env, check=True, capture_output=True, text=True
    )
    return [float(v) for v in done.stdout.split()]


def run() -> str:
    """Measure both workloads and return the Markdown section."""
    rng = np.random.default_rng(7)
    rects, polys = _rect_tracks(rng), _poly_tracks(rng)
    rect_in, poly_in = _flatten(rects, 4), _flatten(polys, None)

    def rect_fast() -> LinearTracks:
        return interpolate_linear_tracks(stop_frame=STOP, **rect_in)

    def poly_fast() -> PolyTracks:
        return interpolate_poly_tracks(stop_frame=STOP, closed=True, **poly_in)

    with tempfile.TemporaryDirectory() as cache_dir:
        cold = _first_calls(cache_dir)
        warm = _first_calls(cache_dir)
    rect_fast_s, rect_out = _median(rect_fast, 7)
    rect_ref_s, rect_ref = _median(lambda: _ref_rect(rects), 5)
    _check_rect(rect_out, rect_ref)
    poly_fast_s, poly_out = _median(poly_fast, 7)
    poly_ref_s, poly_ref = _median(lambda: _ref_poly(polys), 3)
    _check_poly(poly_out, poly_ref)
    rows = [
        _row("1,000 rectangle tracks x 300 frames", rect_ref_s, rect_fast_s),
        _row(
            "1,000 polygon tracks (64 vertices, 3 keyframes) x 300 frames", poly_ref_s, poly_fast_s
        ),
    ]
    return "\n".join(
        [
            "## Track interpolation (tessera.geometry.interpolation)",
            "",
            "Batch kernels (`interpolate_linear_tracks`, `interpolate_poly_tracks`) against the",
            "same algorithm in plain Python; outputs checked equal to 1e-6 in the same run.",
            "Medians of 7 runs (Numba) and 5 / 3 runs (reference).",
            "",
            "| workload | plain Python | Numba | ratio | goal | met? |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "First calls in a fresh process (import, rectangle batch, polygon batch):",
            f"empty kernel cache {cold[0]:.2f} s + {cold[1]:.2f} s + {cold[2]:.2f} s"
            " (JIT compile);",
            f"cache filled {warm[0]:.2f} s + {warm[1]:.2f} s + {warm[2]:.2f} s (load from disk).",
            "",
            f"Reproduce: `{COMMAND}`",
            "",
        ]
    )
