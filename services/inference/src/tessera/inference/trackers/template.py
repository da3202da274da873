"""A single-object tracker by template matching: normalised cross-correlation of the
object's grey template in a search window around its predicted place, at a few scales.

Chosen over OpenCV's `TrackerMIL` (present in this build): MIL keeps a boosted classifier
whose state cannot be taken out of the object and given to the client, so a stateless
service would have to re-train it from the first frame on every call; it also yields no
scale. Template matching is deterministic, needs no weights, and its whole state is the
template (at most `template_side` pixels a side, so the signed state stays small), the
box and the motion.

One step (`update`): predict the centre from the last motion; for each scale factor, warp
a window `search` box-sizes wider than the box on each side into template pixels (with
anti-aliasing when shrinking); correlate (`TM_CCOEFF_NORMED`); refine the peak to sub-
pixel precision with a parabola; keep the scale with the best correlation less
`scale_penalty` per unit of |ln scale|. Below `min_score` the object counts as lost and
the box stays where it was. Above `update_score` the template drifts towards the new
appearance by `update_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from tessera.inference.trackers.state import MAX_TEMPLATE_SIDE, Box, TrackState

Gray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class TemplateTrackerParams:
    """Tuning of the template-matching tracker."""

    template_side: int = 48
    search: float = 1.0
    scales: tuple[float, ...] = (0.96, 1.0, 1.04)
    scale_penalty: float = 0.5
    min_score: float = 0.3
    update_rate: float = 0.1
    update_score: float = 0.7
    min_box_side: float = 4.0

    def __post_init__(self) -> None:
        checks = {
            "template_side": 8 <= self.template_side <= MAX_TEMPLATE_SIDE,
            "search": 0.1 <= self.search <= 4.0,
            "scales": bool(self.scales) and all(0.5 <= s <= 2.0 for s in self.scales),
            "scale_penalty": self.scale_penalty >= 0.0,
            "min_score": -1.0 <= self.min_score <= 1.0,
            "update_rate": 0.0 <= self.update_rate <= 1.0,
            "update_score": -1.0 <= self.update_score <= 1.0,
            "min_box_side": self.min_box_side >= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"TemplateTrackerParams out of range: {', '.join(bad)}")
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TemplateTrackerParams:
        """Params from a registry entry's `options` table; ValueError naming an unknown
        key or a value of the wrong type."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown tracker options: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in options.items():
            if name == "scales":
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                ):
                    raise ValueError("tracker option scales must be a list of numbers")
                values[name] = tuple(float(v) for v in value)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"tracker option {name} must be a number")
            elif known[name] == "int":
                if not isinstance(value, int):
                    raise ValueError(f"tracker option {name} must be a whole number")
                values[name] = value
            else:
                values[name] = float(value)
        return cls(**values)


def _gray_crop(
    image: ImageArray, x0: int, y0: int, x1: int, y1: int
) -> tuple[ImageArray, int, int]:
    """Grey pixels of [x0, x1) x [y0, y1) clipped to the image (at least one pixel, the
    nearest, when the region lies outside it), and the crop's origin."""
    h, w = image.shape[:2]
    cx0 = min(max(x0, 0), w - 1)
    cy0 = min(max(y0, 0), h - 1)
    cx1 = max(min(x1, w), cx0 + 1)
    cy1 = max(min(y1, h), cy0 + 1)
    sub = image[cy0:cy1, cx0:cx1]
    gray = cv2.cvtColor(sub, cv2.COLOR_RGB2GRAY) if sub.ndim == 3 else np.ascontiguousarray(sub)
    return np.asarray(gray), cx0, cy0


class _Patch:
    """The grey neighbourhood of a point, ready for sampling windows at `k` template
    pixels per image pixel or more: shrunk by area averaging to twice that resolution
    when it is much finer (which also bounds the memory a large box takes), then
    smoothed against aliasing. Outside the image, windows repeat its edge."""

    def __init__(
        self, image: ImageArray, cx: float, cy: float, half_w: float, half_h: float, *, k: float
    ) -> None:
        x0, y0 = math.floor(cx - half_w) - 2, math.floor(cy - half_h) - 2
        x1, y1 = math.ceil(cx + half_w) + 3, math.ceil(cy + half_h) + 3
        gray, self.ox, self.oy = _gray_crop(image, x0, y0, x1, y1)
        ch, cw = gray.shape
        self.px = self.py = 1.0
        if k < 0.5:
            size = (max(1, round(cw * 2 * k)), max(1, round(ch * 2 * k)))
            gray = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))
            self.px, self.py = size[0] / cw, size[1] / ch
        smooth = gray.astype(np.float32)
        remaining = k / min(self.px, self.py)
        if remaining < 1.0:  # anti-aliasing before shrinking
            sigma = 0.5 * math.sqrt(1.0 / (remaining * remaining) - 1.0)
            smooth = np.asarray(cv2.GaussianBlur(smooth, (0, 0), sigma), np.float32)
        self.gray = smooth

    def window(self, cx: float, cy: float, kx: float, ky: float, size: tuple[int, int]) -> Gray:
        """`size` (width, height) template pixels centred on image point (cx, cy), at
        `kx`, `ky` template pixels per image pixel."""
        ww, wh = size
        px, py = self.px, self.py
        matrix = np.array(
            [
                [px / kx, 0.0, (cx - self.ox) * px + (0.5 - ww / 2) * px / kx - 0.5],
                [0.0, py / ky, (cy - self.oy) * py + (0.5 - wh / 2) * py / ky - 0.5],
            ]
        )
        warped = cv2.warpAffine(
            self.gray,
            matrix,
            size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return np.asarray(warped, np.float32)


def _peak(response: Gray) -> tuple[float, float, float]:
    """(u, v, score) of the response's maximum, refined to sub-pixel by parabolas."""
    _, score, _, (u, v) = cv2.minMaxLoc(response)
    du = dv = 0.0
    rh, rw = response.shape
    if 0 < u < rw - 1:
        a, b, c = response[v, u - 1], response[v, u], response[v, u + 1]
        den = a - 2 * b + c
        if den < 0:
            du = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    if 0 < v < rh - 1:
        a, b, c = response[v - 1, u], response[v, u], response[v + 1, u]
        den = a - 2 * b + c
        if den < 0:
            dv = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return u + du, v + dv, float(score)


class TemplateTracker:
    """Tracks one box per `TrackState`; pure functions of the image and the state."""

    def __init__(self, params: TemplateTrackerParams | None = None) -> None:
        self.params = params or TemplateTrackerParams()

    def template_size(self, box: Box) -> tuple[int, int]:
        """(width, height) of the template for `box`: its size, shrunk to fit
        `template_side` (never enlarged)."""
        bw, bh = box[2] - box[0], box[3] - box[1]
        k = min(1.0, self.params.template_side / max(bw, bh))
        return max(4, round(bw * k)), max(4, round(bh * k))

    def init(self, image: ImageArray, box: Box) -> TrackState:
        """The state of an object in `box` (x1, y1, x2, y2) on `image`."""
        h, w = image.shape[:2]
        tw, th = self.template_size(box)
        template = self._sample(image, box, (tw, th))
        return TrackState(
            box=box,
            velocity=(0.0, 0.0),
            frame_size=(w, h),
            template=np.clip(np.rint(template), 0, 255).astype(np.uint8),
        )

    def _sample(self, image: ImageArray, box: Box, size: tuple[int, int]) -> Gray:
        x1, y1, x2, y2 = box
        tw, th = size
        kx, ky = tw / (x2 - x1), th / (y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        patch = _Patch(image, cx, cy, (x2 - x1) / 2, (y2 - y1) / 2, k=min(kx, ky))
        return patch.window(cx, cy, kx, ky, size)

    def update(self, image: ImageArray, state: TrackState) -> tuple[TrackState, float]:
        """The state on the next frame `image`, and the match's score in [-1, 1]."""
        p = self.params
        template = state.template.astype(np.float32)
        th, tw = template.shape
        x1, y1, x2, y2 = state.box
        bw, bh = x2 - x1, y2 - y1
        pcx = (x1 + x2) / 2 + state.velocity[0]
        pcy = (y1 + y2) / 2 + state.velocity[1]
        kx0, ky0 = tw / bw, th / bh
        size = (round(tw * (1 + 2 * p.search)), round(th * (1 + 2 * p.search)))
        if float(template.std()) < 1e-3:
            return self._lost(state), 0.0
        reach = max(p.scales) * (1 + 2 * p.search) / 2
        patch = _Patch(image, pcx, pcy, bw * reach, bh * reach, k=min(kx0, ky0) / max(p.scales))
        best: tuple[float, float, float, float, float] | None = None  # adjusted, score, cx, cy, f
        for f in p.scales:
            kx, ky = kx0 / f, ky0 / f
            window = patch.window(pcx, pcy, kx, ky, size)
            matched = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
            response = np.nan_to_num(
                np.asarray(matched, np.float32), nan=-1.0, posinf=-1.0, neginf=-1.0
            )
            u, v, score = _peak(response)
            cx = pcx + (u + tw / 2 - size[0] / 2) / kx
            cy = pcy + (v + th / 2 - size[1] / 2) / ky
            adjusted = score - p.scale_penalty * abs(math.log(f))
            if best is None or adjusted > best[0]:
                best = (adjusted, score, cx, cy, f)
        assert best is not None
        _, score, cx, cy, f = best
        if score < p.min_score:
            return self._lost(state), score
        nw, nh = bw * f, bh * f
        box = (cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2)
        old_cx, old_cy = (x1 + x2) / 2, (y1 + y2) / 2
        if p.update_rate > 0 and score >= p.update_score:
            fresh = self._sample(image, box, (tw, th))
            template = (1 - p.update_rate) * template + p.update_rate * fresh
        new_state = TrackState(
            box=box,
            velocity=(cx - old_cx, cy - old_cy),
            frame_size=state.frame_size,
            template=np.clip(np.rint(template), 0, 255).astype(np.uint8),
        )
        return new_state, score

    @staticmethod
    def _lost(state: TrackState) -> TrackState:
        return TrackState(
            box=state.box,
            velocity=(0.0, 0.0),
            frame_size=state.frame_size,
            template=state.template,
        )
