"""A tracker's state, serialised compactly and signed so that clients cannot forge it.

CVAT's tracker API hands each object's state to the client and takes it back on the next
frame (`states` in the call, one per shape). Upstream CVAT signs what its functions
return with Django's `TimestampSigner` (salt `cvat-tracker-state:<function id>`, maximum
age 8 hours) before the client sees it; Tessera's inference service is that server, so
it signs here.

Token: base64url without padding of `payload || tag`, where `tag` is HMAC-SHA256 over
`len(context) || context || payload` with a key derived from the service's secret for
this purpose only, and `context` binds the state to its function (a state of one tracker
is refused by another). Payload, little-endian:

    u8 version (1) | u64 issued_at (Unix seconds) | u32 frame width | u32 frame height
    | 4 x f32 box x1 y1 x2 y2 | 2 x f32 velocity | u16 template width | u16 template height
    | zlib(template, uint8 grey, row-major)

With the default 48-pixel templates a token is at most about 3.2 KB of text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tessera.inference.trackers.errors import TrackerStateError

VERSION = 1
_HEADER = struct.Struct("<BQII6fHH")
_TAG_SIZE = 32
_PURPOSE = b"tessera tracker state v1"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
MAX_TEMPLATE_SIDE = 255
DEFAULT_MAX_AGE_S = 8 * 3600.0
"""As CVAT's `TRACKER_STATE_MAX_AGE`: a state older than a working day is refused."""
CLOCK_SKEW_S = 300.0

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class TrackState:
    """What a single-object tracker carries from one frame to the next.

    `box`: (x1, y1, x2, y2) on the last frame. `velocity`: the box centre's last motion
    in pixels per frame. `frame_size`: (width, height) of the frames tracked.
    `template`: the object's appearance, grey uint8 (th, tw), at most 255 on a side.
    `issued_at`: when the state was signed (Unix seconds; 0 before it is).
    """

    box: Box
    velocity: tuple[float, float]
    frame_size: tuple[int, int]
    template: npt.NDArray[np.uint8]
    issued_at: int = 0


def derive_key(secret: bytes | str) -> bytes:
    """The state-signing key derived from a service secret (at least 16 bytes), so the
    same secret can serve other purposes without the tags revealing anything about it."""
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < 16:
        raise ValueError("the tracker state secret must have at least 16 bytes")
    return hmac.new(raw, _PURPOSE, hashlib.sha256).digest()


def encode_payload(state: TrackState, issued_at: int) -> bytes:
    """The unsigned binary form of `state` (see the module's layout)."""
    template = np.ascontiguousarray(state.template, dtype=np.uint8)
    if (
        template.ndim != 2
        or not (0 < template.shape[0] <= MAX_TEMPLATE_SIDE)
        or not (0 < template.shape[1] <= MAX_TEMPLATE_SIDE)
    ):
        raise ValueError(f"template must be 2-D, 1 to {MAX_TEMPLATE_SIDE} on a side")
    th, tw = template.shape
    fw, fh = state.frame_size
    header = _HEADER.pack(VERSION, issued_at, fw, fh, *state.box, *state.velocity, tw, th)
    return header + zlib.compress(template.tobytes(), 6)


def decode_payload(payload: bytes, *, index: int | None = None) -> TrackState:
    """A state from its binary form (already authenticated); TrackerStateError if the
    version is not this one or the bytes do not hold a well-formed state."""
    if not payload:
        raise TrackerStateError("malformed", "the state is empty", index=index)
    if payload[0] != VERSION:
        raise TrackerStateError(
            "version",
            f"state format version {payload[0]} is not supported (this server writes "
            f"{VERSION}); start the track again",
            index=index,
        )
    if len(payload) <= _HEADER.size:
        raise TrackerStateError("corrupt", "the state is too short", index=index)
    _, issued_at, fw, fh, x1, y1, x2, y2, vx, vy, tw, th = _HEADER.unpack_from(payload)
    numbers = (x1, y1, x2, y2, vx, vy)
    if not all(math.isfinite(v) for v in numbers) or x2 <= x1 or y2 <= y1:
        raise TrackerStateError("corrupt", "the state holds an invalid box", index=index)
    if not (0 < tw <= MAX_TEMPLATE_SIDE and 0 < th <= MAX_TEMPLATE_SIDE and fw > 0 and fh > 0):
        raise TrackerStateError("corrupt", "the state holds invalid sizes", index=index)
    expected = tw * th
    inflater = zlib.decompressobj()
    try:
        pixels = inflater.decompress(payload[_HEADER.size :], expected)
    except zlib.error as exc:
        raise TrackerStateError("corrupt", "the state's template is corrupt", index=index) from exc
    if (
        len(pixels) != expected
        or not inflater.eof
        or inflater.unconsumed_tail
        or inflater.unused_data
    ):
        raise TrackerStateError("corrupt", "the state's template is corrupt", index=index)
    template = np.frombuffer(pixels, np.uint8).reshape(th, tw).copy()
    return TrackState(
        box=(x1, y1, x2, y2),
        velocity=(vx, vy),
        frame_size=(fw, fh),
        template=template,
        issued_at=issued_at,
    )


class TrackerStateCodec:
    """Seals tracker states into signed base64url tokens and opens them again.

    `secret`: the service's secret (bytes or text, 16 bytes or more); `previous_secrets`
    are still accepted when opening, so the secret can be rotated without breaking the
    tracks in flight. `context`: what a state is bound to (the function's id, say): a
    token sealed under another context is refused. `max_age_s`: older tokens are refused
    (None: no limit). `max_token_chars`: longer tokens are refused before any work.
    """

    def __init__(
        self,
        secret: bytes | str,
        *,
        context: str = "",
        previous_secrets: Sequence[bytes | str] = (),
        max_age_s: float | None = DEFAULT_MAX_AGE_S,
        max_token_chars: int = 8192,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = [derive_key(secret), *(derive_key(s) for s in previous_secrets)]
        encoded = context.encode()
        if len(encoded) > 0xFFFF:
            raise ValueError("the tracker state context is too long")
        self._context = struct.pack("<H", len(encoded)) + encoded
        self.max_age_s = max_age_s
        self.max_token_chars = max_token_chars
        self._clock = clock

    def _tag(self, key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, self._context + payload, hashlib.sha256).digest()

    def seal(self, state: TrackState) -> str:
        """The signed token of `state`, stamped with the current time."""
        payload = encode_payload(state, int(self._clock()))
        token = base64.urlsafe_b64encode(payload + self._tag(self._keys[0], payload))
        text = token.rstrip(b"=").decode("ascii")
        if len(text) > self.max_token_chars:
            raise ValueError(
                f"a sealed state of {len(text)} characters exceeds max_token_chars "
                f"{self.max_token_chars}; use smaller templates"
            )
        return text

    def open(self, token: object, *, index: int | None = None) -> TrackState:
        """The state sealed in `token`; TrackerStateError (naming `states[index]`) if it is
        not a string, too long, not base64url, truncated, altered, sealed with another
        key or context, of another version, corrupt, or too old."""
        if not isinstance(token, str):
            raise TrackerStateError("malformed", "a state must be a string", index=index)
        if len(token) > self.max_token_chars:
            raise TrackerStateError(
                "oversized",
                f"the state has {len(token)} characters, more than {self.max_token_chars}",
                index=index,
            )
        if not _BASE64URL.fullmatch(token) or len(token) % 4 == 1:
            raise TrackerStateError("malformed", "the state is not base64url text", index=index)
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise TrackerStateError(
                "malformed", "the state is not base64url text", index=index
            ) from exc
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            # Non-canonical text (stray bits in the last character) is not what we wrote.
            raise TrackerStateError("malformed", "the state is not base64url text", index=index)
        if len(raw) <= _TAG_SIZE:
            raise TrackerStateError("malformed", "the state is truncated", index=index)
        payload, tag = raw[:-_TAG_SIZE], raw[-_TAG_SIZE:]
        # Every key is tried, whichever matches, so the time taken says nothing of which.
        matches = [hmac.compare_digest(self._tag(key, payload), tag) for key in self._keys]
        if not any(matches):
            raise TrackerStateError(
                "signature",
                "the state's signature does not match: it was altered, truncated, or made "
                "by another server or function",
                index=index,
            )
        state = decode_payload(payload, index=index)
        if self.max_age_s is not None:
            now = self._clock()
            age = now - state.issued_at
            if age > self.max_age_s or age < -CLOCK_SKEW_S:
                raise TrackerStateError(
                    "expired",
                    "the state has expired; start the track again",
                    index=index,
                )
        return state
