"""COCO RLE kernels of `tessera.geometry.rle` against pycocotools, measured in one run.

Masks are realistic: a few filled discs, ellipses and slanted polygons on a 1920x1080
frame (random noise is reported too, as the worst case for run-length encoding).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from pycocotools import mask as coco

from tessera.geometry import rle

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python -m benchmarks.run geometry_rle"


def _shapes_mask(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.uint8]:
    """A C-ordered mask with 2-5 filled discs, ellipses and triangles."""
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.bool_)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        size = rng.uniform(0.05, 0.25) * min(h, w)
        kind = int(rng.integers(3))
        if kind == 0:
            mask |= (xx - cx) ** 2 + (yy - cy) ** 2 < size**2
        elif kind == 1:
            a = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
            v = (yy - cy) * np.cos(a) - (xx - cx) * np.sin(a)
            mask |= (u / size) ** 2 + (v / (0.4 * size)) ** 2 < 1
        else:
            ang = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2])
            px, py = cx + size * np.cos(ang), cy + size * np.sin(ang)
            inside = np.ones((h, w), np.bool_)
            for i in range(3):
                j = (i + 1) % 3
                inside &= (px[j] - px[i]) * (yy - py[i]) - (py[j] - py[i]) * (xx - px[i]) > 0
            mask |= inside
    return mask.astype(np.uint8)


def _polygons(rng: np.random.Generator, h: int, w: int) -> list[list[float]]:
    """1-3 star-shaped polygons of 20-60 vertices."""
    out = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(20, 61))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.05, 0.2, n) * min(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        out.append(
            np.column_stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)]).ravel().tolist()
        )
    return out


def _median(fn: Callable[[], Any], repeat: int, number: int = 1) -> float:
    """Median seconds per call over `repeat` rounds of `number` calls, after a warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))


def _alternating(fn: Callable[[], Any], threads: int, rounds: int) -> tuple[float, float]:
    """Median seconds of `fn` on `threads` threads and on one, measured in alternation so
    that load from other processes falls on both alike."""
    fn()
    times: dict[int, list[float]] = {threads: [], 1: []}
    try:
        for _ in range(rounds):
            for n in (threads, 1):
                numba.set_num_threads(n)
                start = time.perf_counter()
                fn()
                times[n].append(time.perf_counter() - start)
    finally:
        numba.set_num_threads(threads)
    return float(np.median(times[threads])), float(np.median(times[1]))


def _cycle(items: list[Any], fn: Callable[[Any], Any]) -> Callable[[], None]:
    """A callable running `fn` over every item once."""

    def run() -> None:
        for item in items:
            fn(item)

    return run


_COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import numpy as np
from tessera.geometry import rle
t1 = time.perf_counter()
m = np.zeros((64, 48), np.uint8); m[5:20, 7:30] = 1
r = rle.encode(m); rle.encode(np.asfortranarray(m)); rle.decode(r); rle.area(r); rle.to_bbox(r)
rle.merge([r, r]); rle.iou([r], [r], [0]); rle.iou([[0, 0, 1, 1]], [[0, 0, 2, 2]], [0])
rle.from_polygons([[1, 1, 30, 2, 20, 40]], 64, 48); rle.encode_batch(np.stack([m, m]))
rle.rle_to_cvat_mask(r); rle.cvat_mask_to_rle(rle.array_to_cvat_mask(m), 64, 48)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_calls": t2 - t1}))
"""


def _compile_costs() -> tuple[dict[str, float], dict[str, float]]:
    """Import and first-call seconds in fresh processes: empty cache, then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def _row(task: str, ours: float, ref: float, ref_name: str, goal: float | None) -> str:
    ratio = ref / ours
    verdict = "(no goal)" if goal is None else ("met" if ratio >= goal else "**not met**")
    goal_text = "-" if goal is None else f">= {goal:g}x"
    return (
        f"| {task} | {ours * 1e3:.3f} ms | {ref * 1e3:.3f} ms ({ref_name}) | "
        f"{ratio:.2f}x | {goal_text} | {verdict} |"
    )


def run() -> str:
    """Measure and return the Markdown section."""
    rng = np.random.default_rng(2024)
    h, w = 1080, 1920
    masks = [_shapes_mask(rng, h, w) for _ in range(8)]
    noise = [(rng.random((h, w)) < 0.5).astype(np.uint8) for _ in range(2)]
    rles = [coco.encode(np.asfortranarray(m)) for m in masks]
    for m, r in zip(masks, rles, strict=True):
        assert rle.encode(m)["counts"] == r["counts"]
    rows = []

    ours = _median(_cycle(masks, rle.encode), 15) / len(masks)
    ref = _median(_cycle(masks, lambda m: coco.encode(np.asfortranarray(m))), 15) / len(masks)
    rows.append(_row("encode 1920x1080, C order", ours, ref, "encode(asfortranarray)", 3.0))
    ours = _median(_cycle(noise, rle.encode), 5) / len(noise)
    ref = _median(_cycle(noise, lambda m: coco.encode(np.asfortranarray(m))), 5) / len(noise)
    rows.append(_row("encode 1920x1080 noise (50%)", ours, ref, "encode(asfortranarray)", None))
    fmasks = [np.asfortranarray(m) for m in masks]
    ours = _median(_cycle(fmasks, rle.encode), 15) / len(masks)
    ref = _median(_cycle(fmasks, coco.encode), 15) / len(masks)
    rows.append(_row("encode 1920x1080, Fortran order", ours, ref, "encode", None))

    ours = _median(_cycle(rles, rle.decode), 15) / len(rles)
    ref = _median(_cycle(rles, coco.decode), 15) / len(rles)
    rows.append(_row("decode 1920x1080", ours, ref, "decode", 1.5))

    stack = np.stack([_shapes_mask(rng, 480, 640) for _ in range(32)] * 8)
    threads = numba.get_num_threads()
    load = os.getloadavg()[0]
    parallel, serial = _alternating(lambda: rle.encode_batch(stack), threads, 11)
    rows.append(
        _row(f"encode_batch 256x480x640, {threads} threads", parallel, serial, "1 thread", 1.8)
    )
    ref = _median(_cycle(list(stack), lambda m: coco.encode(np.asfortranarray(m))), 3)
    rows.append(_row("encode_batch 256x480x640", parallel, ref, "encode loop", None))

    polys = [_polygons(rng, h, w) for _ in range(50)]
    ours = _median(_cycle(polys, lambda p: rle.from_polygons(p, h, w)), 15) / len(polys)
    ref = _median(_cycle(polys, lambda p: coco.merge(coco.frPyObjects(p, h, w))), 15) / len(polys)
    rows.append(_row("from_polygons 1-3 x 20-60 vertices", ours, ref, "merge(frPyObjects)", 1.0))

    dt = [rle.from_polygons(p, h, w) for p in polys]
    gt = [rle.from_polygons(_polygons(rng, h, w), h, w) for _ in range(50)]
    crowd = [i % 5 == 0 for i in range(50)]
    ours = _median(lambda: rle.iou(dt, gt, crowd), 15)
    ref = _median(lambda: coco.iou(dt, gt, crowd), 15)
    rows.append(_row("iou 50x50 RLEs", ours, ref, "iou", 1.0))
    boxes_d, boxes_g = rng.uniform(0, 500, (200, 4)), rng.uniform(0, 500, (200, 4))
    ours = _median(lambda: rle.iou(boxes_d, boxes_g, crowd * 4), 15)
    ref = _median(lambda: coco.iou(boxes_d, boxes_g, crowd * 4), 15)
    rows.append(_row("iou 200x200 boxes", ours, ref, "iou", 1.0))

    cold, warm = _compile_costs()
    lines = [
        "## geometry_rle: COCO RLE kernels vs pycocotools",
        "",
        f"Medians per call; ratio = reference time / ours (higher is better). "
        f"{threads} threads available to Numba; load average {load:.2f} when the batch "
        "was timed (other processes on the machine compete with the parallel run).",
        "",
        "| task | ours | reference | ratio | goal | result |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "First use in a fresh process (import, then the first call of every public RLE "
        "function, which loads or compiles its kernels):",
        "",
        "| NUMBA_CACHE_DIR | import | first calls |",
        "|---|---|---|",
        f"| empty (compiles) | {cold['import']:.2f} s | {cold['first_calls']:.2f} s |",
        f"| warm (loads from disk) | {warm['import']:.2f} s | {warm['first_calls']:.2f} s |",
        "",
        f"Reproduce: `{COMMAND}`",
        "",
    ]
    return "\n".join(lines)
