"""ImageNet 1.0, as CVAT 2.80 writes it without images, streamed one frame at a time.

CVAT's exporter (cvat/apps/dataset_manager/formats/imagenet.py) picks one of two datumaro
formats by `save_images`:

- with images, "imagenet" (the fork's datumaro/plugins/imagenet_format.py,
  `ImagenetConverter`): no annotation file at all, only the images, one copy in a folder
  per tag label, `<label>/<id><ext>`, or `no_label/<id><ext>` for a frame without tags
  (when the id's first folder already is the label's name, the copy goes to `<id><ext>`);
  subsets are ignored. `image_paths` gives these paths.
- without images, "imagenet_txt" (datumaro/plugins/imagenet_txt_format.py,
  `ImagenetTxtConverter`): text files, which is what this writer writes.

The text layout (the docs' "if we keep only annotation": `<subset>.txt`, `synsets.txt`):

- `<subset>.txt` per subset (the frame's subset, else the task's, else `default`), one
  line per frame (every frame, only annotated ones with `annotated_only`), in frame
  order: `<id><ext> <label indices>`, "\\n"-terminated. The id is the file name without
  its extension, quoted (`"my image".jpg`) when it holds whitespace; the extension is the
  name's own (a video frame, named without one, gets CVAT's ".PNG"). The indices are the
  positions in `synsets.txt` of the frame's tags' labels, each once, space-separated, in
  the order a Python set of them iterates (as datumaro writes them); a frame without tags
  gets an empty list, so its line ends with a space (`img.jpg \\n`). Only tags count:
  shapes are not written.
- `synsets.txt`: every label and skeleton point ordered by label id (CVAT's label table
  order), each name followed by "\\n".
- images (`save_images`) in this layout would go to `images/<id><ext>` (datumaro's
  imagenet_txt image folder, where its reader looks); see `image_path`.

Where this writer differs from CVAT: with no frame at all the task's subset file is still
written, empty (CVAT writes only `synsets.txt`), as the other writers here do.

Nothing is held beyond one frame: each subset's lines are spooled (in memory up to a few
MiB, on disk past that) and its member is written from the spool at the end.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from typing import Final

from tessera.export.formats.common import split_frame_name, write_subset_lists
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    TaskInfo,
    labels_by_id,
)

SUBSET_MEMBER: Final = "{subset}.txt"
LABELS_MEMBER: Final = "synsets.txt"
IMAGE_DIR: Final = "images"
NO_LABEL_DIR: Final = "no_label"
DEFAULT_SUBSET: Final = "default"

_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20
_YIELD_EVERY = 32


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where the frame's image goes beside this writer's text files: `images/<id><ext>`
    (datumaro's imagenet_txt layout; CVAT itself, asked for images, writes the folder
    layout of `image_paths` and no text files)."""
    del subset  # one images/ folder for every subset's list
    root, ext = split_frame_name(frame)
    return f"{IMAGE_DIR}/{root}{ext}"


def image_paths(item: FrameAnnotations, task: TaskInfo) -> list[str]:
    """CVAT's ImageNet with `save_images`: one copy of the image per tag label,
    `<label>/<id><ext>`, or `no_label/<id><ext>` without tags (`<id><ext>` when the
    id's first folder is the label's name already)."""
    ordered = _ordered(task.labels)
    index = {label.id: position for position, label in enumerate(ordered)}
    root, ext = split_frame_name(item.frame)
    parts = root.split("/")
    found = {index[tag.label_id] for tag in item.tags if tag.label_id in index}
    folders = [ordered[position].name for position in found] or [NO_LABEL_DIR]
    paths = []
    for folder in folders:
        if len(parts) > 1 and parts[0] == folder:
            paths.append(f"{root}{ext}")
        else:
            paths.append(f"{folder}/{root}{ext}")
    return paths


def _ordered(labels: Sequence[Label]) -> list[Label]:
    return sorted(labels_by_id(labels).values(), key=lambda label: label.id)


def _line(item: FrameAnnotations, index: Mapping[int, int]) -> str:
    root, ext = split_frame_name(item.frame)
    name = f'"{root}"' if len(root.split()) > 1 else root
    # datumaro collects the indices in a set and writes them in its iteration order
    found = {index[tag.label_id] for tag in item.tags if tag.label_id in index}
    return f"{name}{ext} {' '.join(str(position) for position in found)}\n"


async def write_imagenet(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write ImageNet 1.0 as CVAT does without images: `<subset>.txt` and `synsets.txt`."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("ImageNet 1.0 is a 2D format; point cloud tasks have no ImageNet exporter")
    ordered = _ordered(task.labels)
    index = {label.id: position for position, label in enumerate(ordered)}
    await write_subset_lists(
        dataset,
        archive,
        options,
        member=SUBSET_MEMBER,
        line=lambda item, _subset: _line(item, index),
        default_subset=DEFAULT_SUBSET,
        spool_bytes=_SPOOL_BYTES,
        copy_bytes=_COPY_BYTES,
        yield_every=_YIELD_EVERY,
    )
    with archive.open(LABELS_MEMBER, "w", force_zip64=True) as member:
        member.write("".join(f"{label.name}\n" for label in ordered).encode())
