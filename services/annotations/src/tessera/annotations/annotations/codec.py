"""Rows to CVAT's JSON objects and back, and the chunked JSON document writer.

Objects leave in CVAT's response form (`LabeledImage`, `LabeledShape`, `LabeledTrack`,
`TrackedShape` of cvat-sdk): attributes the row does not hold are filled in as CVAT
does on read (the label's defaults; on keyframes the previous keyframe's values).
Tags and shapes arrive as JSON text made by PostgreSQL and pass through untouched when
complete; track rows (one per keyframe) are assembled into tracks here. Readers hand
objects on in batches (one per fetched batch of rows), so that the per-object work in
Python stays a list comprehension.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import orjson

from tessera.annotations.annotations.repository import Record
from tessera.annotations.annotations.validation import LabelCatalog

Obj = dict[str, Any]
Item = str | Obj  # JSON text of an object, or the object
CHUNK_OBJECTS = 5000


def _attributes(
    ids: list[int], values: list[str], defaults: list[tuple[int, str]] | list[Obj]
) -> list[Obj]:
    out = [{"spec_id": i, "value": v} for i, v in zip(ids, values, strict=True)]
    if len(out) < len(defaults):
        present = set(ids)
        for default in defaults:
            spec_id, value = (
                (default["spec_id"], default["value"]) if isinstance(default, dict) else default
            )
            if spec_id not in present:
                out.append({"spec_id": spec_id, "value": value})
    return out


def complete(row: Record, catalog: LabelCatalog) -> Item:
    """A tag or shape row of `repository.TAGS_SQL` / `SHAPES_SQL` as its JSON text, or as
    an object with the attributes it lacks filled in (skeletons are always checked)."""
    label_id, stored, text = row[2], row[3], row[4]
    if stored >= 0 and stored >= len(catalog.defaults(label_id, None)):
        return str(text)
    obj: Obj = orjson.loads(text)
    for part in (obj, *obj.get("elements", ())):
        part["attributes"] = _attributes(
            [a["spec_id"] for a in part["attributes"]],
            [a["value"] for a in part["attributes"]],
            catalog.defaults(part["label_id"], None),
        )
    return obj


def complete_all(rows: list[Record], catalog: LabelCatalog) -> list[Item]:
    """`complete` of each row of a batch; rows that hold every attribute stay text."""
    specs = {label: len(catalog.defaults(label, None)) for label in {row[2] for row in rows}}
    # A skeleton's count is -1, below every label's: skeletons always go to `complete`.
    return [row[4] if row[3] >= specs[row[2]] else complete(row, catalog) for row in rows]


class TrackAssembler:
    """Tracks from rows of `repository.TRACKS_SQL` (one row per keyframe)."""

    def __init__(self, catalog: LabelCatalog) -> None:
        self.catalog = catalog
        self.root: Obj | None = None
        self.current: Obj | None = None
        self.root_job = 0
        self.mutable_defaults: list[Obj] | list[tuple[int, str]] = []

    def _track(self, r: Record) -> Obj:
        return {
            "id": r[1],
            "frame": r[4],
            "label_id": r[3],
            "group": r[5],
            "source": r[6],
            "shapes": [],
            "attributes": _attributes(r[7], r[8], self.catalog.defaults(r[3], False)),
        }

    def feed(self, rows: Iterable[Record]) -> Iterator[tuple[int, Obj]]:
        """Complete tracks (with their job id) as the rows allow; call `flush` at the end."""
        for r in rows:
            if self.current is None or self.current["id"] != r[1]:
                track = self._track(r)
                self.mutable_defaults = self.catalog.defaults(r[3], True)
                if r[2] is not None and self.root is not None and self.root["id"] == r[2]:
                    self.root["elements"].append(track)
                else:
                    if self.root is not None:
                        yield self.root_job, self.root
                    track["elements"] = []
                    self.root, self.root_job = track, r[0]
                self.current = track
            attributes = _attributes(r[17], r[18], self.mutable_defaults)
            self.mutable_defaults = attributes
            self.current["shapes"].append(
                {
                    "type": r[11],
                    "occluded": r[12],
                    "outside": r[13],
                    "z_order": r[14],
                    "rotation": r[15],
                    "points": r[16],
                    "id": r[9],
                    "frame": r[10],
                    "attributes": attributes,
                }
            )

    def flush(self) -> Iterator[tuple[int, Obj]]:
        """The last track, if any."""
        if self.root is not None:
            yield self.root_job, self.root
            self.root = self.current = None


def attribute_arrays(attributes: list[Obj]) -> tuple[list[int], list[str]]:
    """(spec ids, values) as the parallel array columns store them."""
    return [a["spec_id"] for a in attributes], [a["value"] for a in attributes]


def as_object(item: Item) -> Obj:
    """The object an item stands for."""
    return orjson.loads(item) if isinstance(item, str) else item


async def json_document(
    version: int,
    tags: AsyncIterator[list[Item]],
    shapes: AsyncIterator[list[Item]],
    tracks: AsyncIterator[list[Item]],
) -> AsyncIterator[bytes]:
    """CVAT's `LabeledData` JSON, one chunk per batch of at most CHUNK_OBJECTS objects."""
    yield b'{"version":%d,"tags":[' % version
    for index, (name, batches) in enumerate((("tags", tags), ("shapes", shapes),
                                             ("tracks", tracks))):  # fmt: skip
        if index:
            yield b'],"%s":[' % name.encode()
        separator = ""
        async for batch in batches:
            for start in range(0, len(batch), CHUNK_OBJECTS):
                texts = [
                    item if isinstance(item, str) else orjson.dumps(item).decode()
                    for item in batch[start : start + CHUNK_OBJECTS]
                ]
                yield (separator + ",".join(texts)).encode()
                separator = ","
    yield b'],"intervals":[]}'
