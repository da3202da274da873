"""MOTS PNG 1.0 (CVAT's importer "MOTS PNG 1.0").

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/mots.py) by reading the archive
with its datumaro fork's `mots` importer (datumaro/plugins/mots_format.py:
`MotsImporter`, `MotsPngExtractor`), then building tracks itself (`_import_to_task`): each
object of a frame is a keyframe of the track of its track id. The layout and what is
read, as there:

- `instances/` at the archive's top (one subset), else `<subset>/instances/` per subset:
  a grayscale PNG per frame, `instances/<id>.png` (`<id>` may hold folders), 16-bit as
  CVAT writes it, whose pixel value v is `1000 * class + instance` (0: no object). Each
  distinct value but 0 is the mask of one object on that frame, and a keyframe (visible,
  not occluded) of the track of that object.
- `instances/labels.txt`: the label names, one a line (blank lines skipped); class c is
  the c-th (from 1). Class 10, where there are fewer than 10 labels, is MOTS' "ignored"
  region: label `ignored`, z_order 1. The names go to `ParsedAnnotations.labels`.
- Frame refs: the id plus the extension of its image `images/<id>.<ext>` beside
  `instances/` when the archive has one, else the id alone (CVAT's frame matching then
  also takes an id that is a number as the frame number).
- Tracks: one per object, in the order they first appear, each with its label, its masks
  in frame order (natural order of the ids), every one a keyframe. CVAT then closes each
  gap between a track's frames, and its end, with an outside frame: that needs the
  task's frames (frame step, stop frame) and is left to the matcher.

Where the reader differs from CVAT:
- the tracks are masks: CVAT imports only polygons (its masks, converted by
  `conv_mask_to_poly`, which is on by default; with it off CVAT imports nothing). The
  matcher converts masks with `conv_mask_to_poly`.
- a track is one object value (class and instance) of one subset; CVAT keys its tracks
  by the instance number alone, so two objects of different classes with the same
  instance number would be one track there, labelled by the first.
- without `labels.txt`, classes are MOTS' own (1 car, 2 pedestrian, 10 ignored);
  datumaro shifts its default list so that class 1 would read "background".
- malformed input fails with `ImportFailed` naming the file: a PNG that is not grayscale,
  a class past the labels, a PNG declaring more than `MAX_PNG_PIXELS` pixels (refused
  from its header, before decoding).

Memory: one PNG at a time, decoded, split into masks (CVAT's run lengths) and dropped;
the masks themselves are the result.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.voc import (
    gray_pixels,
    image_exts,
    is_macos_metadata,
    natural_key,
    read_png,
    value_masks,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedShape, ParsedTrack

FORMAT: Final = "MOTS PNG 1.0"
MAX_INSTANCES: Final = 1000
IGNORED_CLASS: Final = 10

_MASKS_DIR: Final = "instances"
_LABELS: Final = "labels.txt"
_MOTS_CLASSES: Final = {1: "car", 2: "pedestrian", IGNORED_CLASS: "ignored"}


def read_mots(files: ImportFiles) -> ParsedAnnotations:
    """Read a MOTS PNG 1.0 upload (see the module's docstring)."""
    sources = _sources(files)
    if not sources:
        raise ImportFailed(
            f"this is not a {FORMAT} upload: no instances/*.png nor <subset>/instances/*.png found."
        )
    result = ParsedAnnotations()
    tracks: dict[tuple[str, int], ParsedTrack] = {}
    for source, pngs in sources.items():
        folder = f"{source}/{_MASKS_DIR}" if source else _MASKS_DIR
        labels_name = f"{folder}/{_LABELS}"
        labels: list[str] | None = None
        if labels_name in files:
            labels = [line.strip() for line in files.text(labels_name).splitlines()]
            labels = [label for label in labels if label]
            result.labels += [label for label in labels if label not in result.labels]
        images = image_exts(files, f"{source}/images" if source else "images")
        for name in sorted(pngs, key=natural_key):
            item_id = posixpath.splitext(name[len(folder) + 1 :])[0]
            ref = item_id + images.get(item_id, "")
            for value, shape in _objects(files, name, ref, labels):
                track = tracks.get((source, value))
                if track is None:
                    track = tracks[(source, value)] = ParsedTrack(label=shape.label, shapes=[])
                track.shapes.append(shape)
    result.tracks = list(tracks.values())
    return result


def _sources(files: ImportFiles) -> dict[str, list[str]]:
    """The PNGs of each source folder holding `instances/` ("" for `instances/` at the
    top, which is then the only one), as datumaro's `MotsImporter` finds them."""
    sources: dict[str, list[str]] = {}
    top = f"{_MASKS_DIR}/"
    at_top = any(name.startswith(top) for name in files.names())
    for name in files.names():
        if at_top:
            source, inside = "", name.startswith(top)
        else:
            source, _, rest = name.partition("/")
            inside = rest.startswith(top)
        if not inside:
            continue
        pngs = sources.setdefault(source, [])
        if name.endswith(".png") and not is_macos_metadata(name):
            pngs.append(name)
    return sources


def _objects(
    files: ImportFiles, name: str, ref: str, labels: Sequence[str] | None
) -> list[tuple[int, ParsedShape]]:
    values = gray_pixels(read_png(files, name), name)
    found = []
    for value, points in value_masks(values, (0,)):
        class_id = value // MAX_INSTANCES
        if class_id == 0:
            continue
        z_order = 0
        if labels is None:
            label = _MOTS_CLASSES.get(class_id)
            if label is None:
                raise ImportFailed(
                    f"{name} has pixels of class {class_id}; without {_MASKS_DIR}/{_LABELS}, "
                    "MOTS' classes are 1 (car), 2 (pedestrian) and 10 (ignored)."
                )
            z_order = 1 if class_id == IGNORED_CLASS else 0
        elif class_id == IGNORED_CLASS and len(labels) < IGNORED_CLASS:
            label, z_order = _MOTS_CLASSES[IGNORED_CLASS], 1
        elif class_id <= len(labels):
            label = labels[class_id - 1]
        else:
            raise ImportFailed(
                f"{name} has pixels of class {class_id}, past the {len(labels)} labels of "
                f"its {_LABELS}."
            )
        shape = ParsedShape(type="mask", label=label, points=points, frame=ref, z_order=z_order)
        found.append((value, shape))
    return found
