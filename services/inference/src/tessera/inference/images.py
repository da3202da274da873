"""Decoding the frames the inference service reads from ingest."""

from __future__ import annotations

import cv2
import numpy as np


def decode_rgb(data: bytes) -> np.ndarray | None:
    """An encoded image as uint8 RGB [H, W, 3] (turned as its EXIF orientation says,
    grey and 16-bit images converted); None when it does not decode."""
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    if decoded is None or decoded.size == 0:
        return None
    rgb: np.ndarray = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return rgb
