"""MOTS PNG 1.0, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it (cvat/apps/dataset_manager/formats/mots.py) by keeping only the frames of
tracks (`KeepTracks`: annotations with a `track_id`), running them, as
cvat/apps/dataset_manager/bindings.py converts them, through `RotatedBoxesToPolygons`,
`polygons_to_masks`, `boxes_to_masks` and `merge_instance_segments`, then
`dataset.export(dir, "mots_png")`: its datumaro fork's datumaro/plugins/mots_format.py
(`MotsPngConverter`, `MotsPath`) with datumaro/util/mask_tools.py (`merge_masks`) writes
it. The rules, and so this writer:

- Per subset (the frame's subset, else the task's, else `default`), `<subset>/instances/`
  holds a PNG per frame with a mask and `labels.txt`: the names of every label of the
  task, skeleton points included, by label id, joined by newlines (no final newline);
  written after the frames. A label's class is its position in that list plus 1.
- Masks: only frames of tracks are kept (plain shapes and tags are not written); their
  boxes (upright or rotated), polygons, masks and ellipses become masks, and shapes
  sharing a non-zero group one mask (the union, with the largest member's label, track and
  z_order; paint.py has every rule).
- `<subset>/instances/<id>.png` (`<id>` the frame's file name without its extension), for
  each frame with a mask: 16-bit grayscale, each mask painted in z_order (later over
  earlier, nothing erased) with `1000 * class + n`, n the instance of its track; 0 where
  no mask is. Frames are all the task's frames, or only annotated ones with
  `annotated_only`; frames without a mask get no PNG.

Where this writer differs from CVAT:
- the instance n: CVAT writes a track's position in the task's track list (0, 1, ...);
  the dataset carries track ids, not that list, so this writer numbers the tracks 0, 1,
  ... in the order they first appear in the frames (every track, whatever its shapes, so
  the numbers are those of CVAT's list whenever tracks were created in frame order).
- values MOTS cannot hold fail the export with a ValueError: a 1001st track painted (n
  would reach the next class), or a class whose values pass 65535 (its label past the
  65th); CVAT writes wrapped values then.
- ellipse pixels are those whose centres lie inside; shapes CVAT would fail the export on
  are skipped (paint.py); with no frame at all the task's subset still gets `labels.txt`.

Images (`save_images`) go to `<subset>/images/<id><ext>` (`.jpg` without an extension;
`image_path`). Nothing is held beyond one frame but the track numbers (one per track).
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Mapping, Sequence
from typing import Final

from tessera.export.formats.paint import (
    PAINTED,
    Segment,
    all_labels,
    frame_segments,
    gray_png,
    lookup,
    paint,
    split_name,
    write_member,
)
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameInfo,
    Shape,
    shapes_as_cvat_writes_them,
)

INSTANCES_MEMBER: Final = "{subset}/instances/{id}.png"
LABELS_MEMBER: Final = "{subset}/instances/labels.txt"
DEFAULT_SUBSET: Final = "default"
DEFAULT_IMAGE_EXT: Final = ".jpg"
MAX_INSTANCES: Final = 1000

_YIELD_EVERY = 4


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image: `<subset>/images/<id><ext>`."""
    stem, ext = split_name(frame)
    return f"{subset}/images/{stem}{ext or DEFAULT_IMAGE_EXT}"


async def write_mots(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write MOTS PNG 1.0: `<subset>/instances/<id>.png` and `labels.txt` per subset."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("MOTS PNG is a 2D format; point cloud tasks have no MOTS masks")
    labels = all_labels(task.labels)
    classes = {label.id: index + 1 for index, label in enumerate(labels)}
    tracks: dict[int, int] = {}
    subsets: dict[str, None] = {}
    frames = 0
    async for item in dataset.frames():
        for shape in item.shapes:
            if shape.track_id is not None:
                tracks.setdefault(shape.track_id, len(tracks))
        shapes = shapes_as_cvat_writes_them(item.shapes)
        if options.annotated_only and not shapes and not item.tags:
            continue
        frame = item.frame
        subset = frame.subset or task.subset or DEFAULT_SUBSET
        subsets.setdefault(subset)
        frames += 1
        if frames % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        tracked = [s for s in shapes if s.track_id is not None and s.type in PAINTED]
        if not tracked:
            continue
        png = await asyncio.to_thread(_render, tracked, frame, classes, tracks)
        if png is not None:
            stem, _ = split_name(frame)
            write_member(archive, INSTANCES_MEMBER.format(subset=subset, id=stem), png)
    names = "\n".join(label.name for label in labels).encode()
    for subset in subsets or {task.subset or DEFAULT_SUBSET: None}:
        write_member(archive, LABELS_MEMBER.format(subset=subset), names)


def _render(
    shapes: Sequence[Shape], frame: FrameInfo, classes: Mapping[int, int], tracks: Mapping[int, int]
) -> bytes | None:
    segments = frame_segments(shapes, frame.height, frame.width)
    if not segments:
        return None
    index, order = paint(segments, frame.height, frame.width)
    values = [0, *(_value(segment, classes, tracks) for segment in order)]
    return gray_png(lookup(index, values), 16)


def _value(segment: Segment, classes: Mapping[int, int], tracks: Mapping[int, int]) -> int:
    track_id = segment.shape.track_id
    instance = tracks[track_id] if track_id is not None else 0
    if instance >= MAX_INSTANCES:
        raise ValueError(
            f"MOTS PNG numbers at most {MAX_INSTANCES} tracks; track {track_id} is number "
            f"{instance + 1}"
        )
    value = MAX_INSTANCES * classes.get(segment.label_id, 0) + instance
    if value > 0xFFFF:
        raise ValueError(
            f"MOTS PNG is 16-bit; label {segment.label_id} (class "
            f"{classes.get(segment.label_id, 0)}) gives instance values past 65535"
        )
    return value
