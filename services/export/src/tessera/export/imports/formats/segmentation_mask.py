"""Segmentation mask 1.1 (CVAT's importer "Segmentation mask 1.1").

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/mask.py) with the same datumaro
`voc` importer as PASCAL VOC (then `import_dm_annotations`), without the PASCAL VOC
importer's additions (no label map made from the task, no flat layout), so this reader is
`tessera.export.imports.formats.voc.read_voc_dataset` without flat XMLs; that module's
docstring has the layout and every rule. What CVAT's Segmentation mask export holds, and
so what this reads from it:

- `labelmap.txt`: `name:r,g,b::` per class (the task's labels with their colours, and a
  `background` coloured 0,0,0); its names, but the background's, go to
  `ParsedAnnotations.labels`. Without it, PASCAL VOC's own classes and colours are used,
  as datumaro does.
- `ImageSets/Segmentation/<subset>.txt`: the items of each subset.
- `SegmentationObject/<id>.png` (instance k in VOC's colour k) and
  `SegmentationClass/<id>.png` (each pixel its class's colour): one mask per instance,
  labelled by its pixels' class; the class PNG alone gives one mask per class but the
  background. Frame refs are the item ids (with the extension of an image of that id in
  `JPEGImages/`, when there is one).
- Whatever else a VOC dataset holds (Main lists, `Annotations/*.xml`, class lists) is
  read as the PASCAL VOC reader reads it, as CVAT's `voc` importer does.

Masks keep their instance numbers as groups only where two shapes of a frame share one
(CVAT's bindings), so the masks of a Segmentation mask export come back ungrouped: the
export had merged each group into one mask. With `conv_mask_to_poly` the matcher turns
the masks into polygons afterwards. Where the reader differs from CVAT is in
`tessera.export.imports.formats.voc`'s docstring.
"""

from __future__ import annotations

from typing import Final

from tessera.export.imports.files import ImportFiles
from tessera.export.imports.formats.voc import read_voc_dataset
from tessera.export.imports.model import ParsedAnnotations

FORMAT: Final = "Segmentation mask 1.1"


def read_segmentation_mask(files: ImportFiles) -> ParsedAnnotations:
    """Read a Segmentation mask 1.1 upload (see the module's docstring)."""
    return read_voc_dataset(files, FORMAT, flat_xml=False)
