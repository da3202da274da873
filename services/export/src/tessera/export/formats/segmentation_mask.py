"""Segmentation mask 1.1, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it (cvat/apps/dataset_manager/formats/mask.py) by running the frames, as
cvat/apps/dataset_manager/bindings.py converts them, through `RotatedBoxesToPolygons`,
`polygons_to_masks`, `boxes_to_masks` and `merge_instance_segments`, then
`dataset.export(dir, "voc_segmentation", apply_colormap=True,
label_map=make_colormap(task))`: its datumaro fork's
datumaro/plugins/voc_format/converter.py (`VocSegmentationConverter`, the segmentation
task of `VocConverter`) and format.py (`VocLabelMap`) write it. The rules, and so this
writer:

- `labelmap.txt` (written last): `# label:color_rgb:parts:actions`, then `name:r,g,b::`
  per class: CVAT's `make_colormap` (every label of the task, skeleton points included,
  with their colours, and a `background` coloured 0,0,0 unless a label is named so)
  sorted by name, as the converter sorts a label map given as a dict (so `background` is
  where it sorts, not necessarily first). The background class is the first class
  coloured 0,0,0 in that order, else the one named `background`.
- Masks: boxes (upright or rotated), polygons, masks and ellipses become masks; shapes
  sharing a non-zero group become one mask (the union, with the largest member's label
  and z_order); masks are painted in z_order (paint.py has every rule). Each frame with a
  mask gets `SegmentationClass/<id>.png` (each pixel its class's colour; unpainted pixels
  the background class's) and `SegmentationObject/<id>.png` (instance k, the k-th mask in
  z_order, in PASCAL VOC's colour k; masks of the background class erase, 0 is black).
  `<id>` is the frame's file name without its extension. Frames without a mask get
  neither: polylines, points, skeletons, cuboids and tags are not written.
- `ImageSets/Segmentation/<subset>.txt` (the frame's subset, else the task's, else
  `default`): the ids, one a line in frame order, of the frames with a mask and of the
  frames with nothing on them (no tag and no shape CVAT converts; `VocConverter` lists
  both); not written when it would be empty. Frames are all the task's frames, or only
  annotated ones with `annotated_only`.

Where this writer differs from CVAT: each PNG is an 8-bit palette image whose pixels decode
to the RGB values CVAT writes (see paint.py); ellipse pixels are those whose centres lie
inside; shapes CVAT would fail the export on are skipped (paint.py).

Images (`save_images`) go to `JPEGImages/<id><ext>` (`.jpg` without one; `image_path`).
Nothing is held beyond one frame: the lists are spooled, PNGs written as frames come.
"""

from __future__ import annotations

import zipfile
from typing import Final

from tessera.export.formats.common import cvat_frames
from tessera.export.formats.paint import (
    Spools,
    colormap_label_map,
    split_name,
    write_member,
)
from tessera.export.formats.voc import (
    CLASS_MEMBER,
    LABELMAP_MEMBER,
    OBJECT_MEMBER,
    SEGMENTATION_LIST,
    ClassOf,
    has_annotations,
    labelmap_txt,
    render,
)
from tessera.export.formats.voc import image_path as voc_image_path
from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameInfo,
    labels_by_id,
)

DEFAULT_SUBSET: Final = "default"
_YIELD_EVERY = 4


def image_path(frame: FrameInfo, subset: str) -> str:
    """Where CVAT puts the frame's image: `JPEGImages/<id><ext>`, whatever the subset."""
    return voc_image_path(frame, subset)


async def write_segmentation_mask(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Segmentation mask 1.1: class and instance PNGs, their list and label map."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("Segmentation mask is a 2D format; point cloud tasks have no masks")
    label_map = colormap_label_map(task.labels, background_first=False)
    classes = ClassOf(label_map, labels_by_id(task.labels))
    with Spools() as lists:
        async for item, shapes in cvat_frames(dataset, options, yield_every=_YIELD_EVERY):
            frame = item.frame
            subset = frame.subset or task.subset or DEFAULT_SUBSET
            stem, _ = split_name(frame)
            pngs = await render(shapes, frame, classes, polygons=True, boxes=True)
            if pngs is not None:
                write_member(archive, CLASS_MEMBER.format(id=stem), pngs[0])
                write_member(archive, OBJECT_MEMBER.format(id=stem), pngs[1])
                lists.add(subset, stem)
            elif not has_annotations(item, shapes):
                lists.add(subset, stem)
        for subset in lists:
            with archive.open(
                SEGMENTATION_LIST.format(subset=subset), "w", force_zip64=True
            ) as member:
                lists.copy_to(subset, member)
    write_member(archive, LABELMAP_MEMBER, labelmap_txt(label_map))
