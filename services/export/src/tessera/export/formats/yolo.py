"""YOLO 1.1 (Darknet), as CVAT 2.80 writes it, streamed one frame at a time; and the pieces
the Ultralytics YOLO writers (`formats/ultralytics.py`) share with it.

CVAT exports it through its datumaro fork (cvat/apps/dataset_manager/formats/yolo.py:
`_export_yolo` -> `_export_common`, i.e. `GetCVATDataExtractor` then
`dataset.export(dir, "yolo")` with datumaro's defaults, the `data/` path prefix on), after
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`) has turned each frame
into a datumaro item. The fork's datumaro/plugins/yolo_format/converter.py (`YoloConverter`)
writes the files and datumaro/components/annotation.py (`Bbox`, `_Shape`) fixes the values.
CVAT's docs: docs.cvat.ai, "Export formats" > "YOLO". The rules, and so this writer:

- Subsets: the frame's subset, else the task's, else `default`; `default` is written as
  `train` (datumaro's `YoloPath.DEFAULT_SUBSET_NAME`). A subset named `backup`, `classes`
  or `names` cannot be written (the fork raises); this writer raises ValueError.
- Members, for every frame (only annotated ones with `annotated_only`) in frame order:
  `obj_<subset>_data/<id>.txt`, where `<id>` is the frame's name without its extension (it
  keeps the name's folders), written even when it has no line. Per subset, `<subset>.txt`
  lists `data/obj_<subset>_data/<id><ext>` one a line, in frame order (`<ext>` is the
  name's extension, `.jpg` when it has none). `obj.names` has one label name a line;
  `obj.data` is `classes = <n>`, then `<subset> = data/<subset>.txt` for each subset in the
  order the subsets first appear, then `names = data/obj.names` and `backup = backup/`.
  With no frame at all there is no subset: only `obj.names` and `obj.data` are written.
- Classes: the labels without a parent (skeleton points excluded), ordered by label id,
  numbered from 0 in that order (the fork's `_labels_to_save` / `_map_labels_for_save`).
- Lines: only rectangles, one `<class> <cx> <cy> <w> <h>` line each, in CVAT's shape order
  (by `z_order`, plain shapes before track shapes; a track's outside frames are left out),
  tags first (which write nothing). A rectangle whose rotation is not a multiple of 360
  degrees (`rotation % 360 > 1e-5`) is left out, as the fork leaves it out (cvat#8322:
  YOLO 1.1 has no angle; use Ultralytics YOLO Oriented Bounding Boxes). Polygons,
  polylines, points, ellipses, masks, cuboids and skeletons write nothing.
- Values: the box's corners are first rounded to 2 decimals as datumaro stores them
  (`Bbox(x0, y0, x1 - x0, y1 - y0)` keeps `[x0, y0, x0 + w, y0 + h]` through
  `numpy.around`); then `cx = (x0 + x1) / 2 / W`, `cy = (y0 + y1) / 2 / H`,
  `w = (x1 - x0) / W`, `h = (y1 - y0) / H`, each printed `%.6f` (not clipped: a box that
  leaves the frame gives values outside [0, 1], as in CVAT). A frame without a size gets no
  lines.
- With `save_images`, CVAT puts each image next to its label file:
  `obj_<subset>_data/<id><ext>` (`image_path_yolo`).

Where this writer differs from CVAT, on purpose:
- `obj.names` lists the labels the class numbers count (labels without a parent), so
  `classes` and the names agree with the lines. The fork lists every label there, skeleton
  points included and duplicate names collapsed, while numbering the lines without the
  points, so in a task with skeletons every class after a skeleton's points names the wrong
  label (cvat#8090, still open); a task without skeletons gets the same file either way.
- Inputs CVAT would fail the export on are skipped: a box without 4 numbers.

Nothing is held beyond one frame: each frame's label file is written as the frame comes,
and the subset lists are spooled (in memory up to a few MiB, on disk past that) until the
end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os.path
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Final

from tessera.export.formats import common
from tessera.export.formats.coco import round2
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    Shape,
    TaskInfo,
)

DEFAULT_SUBSET: Final = "default"
"""The subset of a frame that has none (nor its task), as the other writers name it."""
YOLO_DEFAULT_SUBSET: Final = "train"
"""What datumaro's YOLO writers call the `default` subset."""
DEFAULT_IMAGE_EXT: Final = ".jpg"
YOLO_IMAGE_PATH: Final = "obj_{subset}_data/{name}"
"""Where CVAT puts a frame's image with `save_images` (`name` is `<id><ext>`)."""
YOLO_LABELS_PATH: Final = "obj_{subset}_data/{stem}.txt"
YOLO_LIST_ENTRY: Final = "data/obj_{subset}_data/{name}"
RESERVED_SUBSETS: Final = frozenset({"backup", "classes", "names"})

_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20
_YIELD_EVERY = 8
_ROTATION_EPSILON = 0.00001


# --- shared by the YOLO family -------------------------------------------------------------


def yolo_subset(subset: str) -> str:
    """The subset folder datumaro's YOLO writers use: `default` (or none) becomes `train`."""
    return YOLO_DEFAULT_SUBSET if not subset or subset == DEFAULT_SUBSET else subset


def item_stem_and_ext(name: str) -> tuple[str, str]:
    """datumaro's item id of a frame (its name without the extension, folders kept) and the
    image extension its files get (the name's, `.jpg` when it has none)."""
    stem, ext = os.path.splitext(name)
    return stem, ext or DEFAULT_IMAGE_EXT


def frame_subset(frame: FrameInfo, task: TaskInfo) -> str:
    """The frame's subset as every writer names it (`default` when neither says)."""
    return frame.subset or task.subset or DEFAULT_SUBSET


def check_subset(subset: str, reserved: Iterable[str], format_name: str) -> None:
    if subset in reserved:
        raise ValueError(
            f"can't export the subset {subset!r} in {format_name}: the word is reserved there"
        )


def top_labels(labels: Sequence[Label]) -> list[Label]:
    """The labels the YOLO formats number: those without a parent, by label id."""
    return sorted(
        (label for label in labels if label.parent_id is None), key=lambda label: label.id
    )


def number(value: float) -> str:
    """A coordinate as datumaro's YOLO writers print it (`%.6f`)."""
    return f"{value:.6f}"


def rounded_box(points: Sequence[float]) -> tuple[float, float, float, float] | None:
    """A CVAT rectangle's corners as datumaro's `Bbox` stores them: `[x0, y0, x0 + w,
    y0 + h]` rounded to 2 decimals (None for a box without 4 numbers)."""
    if len(points) != 4:
        return None
    x0, y0, x1, y1 = (float(v) for v in points)
    return round2(x0), round2(y0), round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))


def yolo_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """datumaro's `_make_yolo_bbox`: centre and size of [x0, y0, x1, y1], normalised."""
    x0, y0, x1, y1 = box
    return (
        (x0 + x1) / 2 / width,
        (y0 + y1) / 2 / height,
        (x1 - x0) / width,
        (y1 - y0) / height,
    )


def is_rotated(shape: Shape) -> bool:
    """Whether the fork's plain detection writers leave the rectangle out."""
    return float(shape.rotation) % 360.0 > _ROTATION_EPSILON


def cvat_frames(
    dataset: Dataset, options: ExportOptions
) -> AsyncIterator[tuple[FrameAnnotations, list[Shape]]]:
    """Each frame to write with its shapes in CVAT's order, yielding to the event loop every
    few frames (the CPU work of a long stream must not starve it)."""
    return common.cvat_frames(dataset, options, yield_every=_YIELD_EVERY)


def write_member(archive: zipfile.ZipFile, path: str, content: bytes) -> None:
    with archive.open(path, "w", force_zip64=True) as member:
        member.write(content)


@dataclass
class _Spool:
    file: IO[bytes]
    count: int = 0


class Spools:
    """Byte chunks per key (a subset), in spooled temporary files, written out at the end;
    keys keep the order they first came in."""

    def __init__(self, stack: contextlib.ExitStack, separator: bytes = b"") -> None:
        self._stack = stack
        self._separator = separator
        self._spools: dict[str, _Spool] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._spools

    def subsets(self) -> list[str]:
        """The keys, in the order they first came in."""
        return list(self._spools)

    def open(self, key: str) -> None:
        """Start the key's spool, empty, if it has none."""
        if key not in self._spools:
            # closed by the writer's ExitStack, which ruff cannot see through `self`
            spooled = tempfile.SpooledTemporaryFile(_SPOOL_BYTES)  # noqa: SIM115
            file = self._stack.enter_context(spooled)
            self._spools[key] = _Spool(file)

    def add(self, key: str, chunk: bytes) -> None:
        self.open(key)
        spool = self._spools[key]
        if spool.count and self._separator:
            spool.file.write(self._separator)
        spool.file.write(chunk)
        spool.count += 1

    async def write(
        self, archive: zipfile.ZipFile, key: str, path: str, head: bytes = b"", tail: bytes = b""
    ) -> None:
        file = self._spools[key].file
        file.seek(0)
        with archive.open(path, "w", force_zip64=True) as member:
            member.write(head)
            while chunk := file.read(_COPY_BYTES):
                member.write(chunk)
                await asyncio.sleep(0)
            member.write(tail)


# --- YOLO 1.1 ------------------------------------------------------------------------------


def image_path_yolo(frame: FrameInfo, subset: str) -> str:
    """Where CVAT's YOLO 1.1 puts the frame's image with `save_images`
    (`subset` as the other writers name it: `default` becomes `train`)."""
    stem, ext = item_stem_and_ext(frame.name)
    return YOLO_IMAGE_PATH.format(subset=yolo_subset(subset), name=stem + ext)


async def write_yolo(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write YOLO 1.1: `obj.data`, `obj.names`, `<subset>.txt` and
    `obj_<subset>_data/<id>.txt` for each frame."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("YOLO 1.1 is a 2D format: point cloud tasks cannot be written in it")
    labels = top_labels(task.labels)
    classes = {label.id: index for index, label in enumerate(labels)}
    with contextlib.ExitStack() as stack:
        lists = Spools(stack)
        async for item, shapes in cvat_frames(dataset, options):
            frame = item.frame
            subset = yolo_subset(frame_subset(frame, task))
            check_subset(subset, RESERVED_SUBSETS, "YOLO 1.1")
            stem, ext = item_stem_and_ext(frame.name)
            lines = _box_lines(shapes, classes, frame.width, frame.height)
            write_member(
                archive, YOLO_LABELS_PATH.format(subset=subset, stem=stem), "".join(lines).encode()
            )
            entry = YOLO_LIST_ENTRY.format(subset=subset, name=stem + ext)
            lists.add(subset, entry.encode() + b"\n")
        for subset in lists.subsets():
            await lists.write(archive, subset, f"{subset}.txt")
        names = "".join(f"{label.name}\n" for label in labels)
        write_member(archive, "obj.names", names.encode())
        data = [f"classes = {len(labels)}\n"]
        data += [f"{subset} = data/{subset}.txt\n" for subset in lists.subsets()]
        data += ["names = data/obj.names\n", "backup = backup/\n"]
        write_member(archive, "obj.data", "".join(data).encode())


def _box_lines(
    shapes: Sequence[Shape], classes: dict[int, int], width: int, height: int
) -> list[str]:
    if width <= 0 or height <= 0:
        return []
    lines = []
    for shape in shapes:
        index = classes.get(shape.label_id)
        if shape.type != "rectangle" or index is None or is_rotated(shape):
            continue
        box = rounded_box(shape.points)
        if box is None:
            continue
        values = " ".join(number(v) for v in yolo_box(box, width, height))
        lines.append(f"{index} {values}\n")
    return lines
