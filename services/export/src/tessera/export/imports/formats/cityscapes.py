"""Cityscapes 1.0 (CVAT's importer "Cityscapes 1.0").

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/cityscapes.py) by writing a
`label_colors.txt` of the task's labels when the archive has none, reading it with its
datumaro fork's `cityscapes` importer (datumaro/plugins/cityscapes_format.py:
`CityscapesImporter`, `CityscapesExtractor`, `parse_label_map`) and handing the items to
cvat/apps/dataset_manager/bindings.py (`import_dm_annotations`). The layout and what is
read, as there:

- `gtFine/<subset>/**/<id>_gtFine_instanceIds.png` (`gtFine/` at the archive's top or
  one folder down; `<id>` may hold folders, such as Cityscapes' cities): a grayscale PNG
  (16-bit as CVAT and Cityscapes write it) whose pixel value v is `class * 1000 +
  instance` for an instance, or the class id alone for a crowd or stuff region. Each
  distinct value is one mask of its class, with the attribute `is_crowd` ("true" for
  values under 1000, else "false"). A subset holding `*_gtFine_labelTrainIds.png` files
  is read from those instead (values are train ids, all crowd regions; 255, Cityscapes'
  "ignore", is no object), as datumaro does.
- `label_colors.txt` beside `gtFine/` (CVAT writes it): a line `r g b name` per class,
  the class id being the line's place (from 0); a line of one word is a class without a
  colour. Its names, but the background's (the first coloured 0 0 0, else the one named
  `background`), go to `ParsedAnnotations.labels`. Without it, Cityscapes' own label ids
  (datumaro's `CITYSCAPES_LABEL_MAP`; its train ids for labelTrainIds files) name the
  classes.
- Frame refs: the id plus the extension of its image
  `imgsFine/leftImg8bit/<subset>/<id>_leftImg8bit.<ext>` when the archive has one, else
  the id alone.

Where the reader differs from CVAT:
- without `label_colors.txt`, CVAT names the classes after the task's labels (background
  first, then the labels by id); the reader has no task and takes Cityscapes' own ids.
- masks of the background class (value 0 with CVAT's `label_colors.txt`, "unlabeled"
  with Cityscapes' ids) are no objects: datumaro makes a mask of the unpainted pixels,
  which CVAT's bindings then store or fail on.
- a class name with spaces is the rest of its line (datumaro keeps its first word).
- malformed input fails with `ImportFailed` naming the file: a label colour that is not
  three numbers 0-255, a line of 3 words, a name defined twice, a PNG that is not a
  grayscale PNG, a class id past the classes, a PNG declaring more than
  `MAX_PNG_PIXELS` pixels (refused from its header, before decoding).

Memory: one PNG at a time, decoded, split into masks (CVAT's run lengths) and dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.voc import (
    gray_pixels,
    image_exts,
    is_macos_metadata,
    parse_colour,
    read_png,
    value_masks,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedShape

FORMAT: Final = "Cityscapes 1.0"
INSTANCES_PER_CLASS: Final = 1000

_INSTANCE_SUFFIX: Final = "_gtFine_instanceIds.png"
_TRAIN_SUFFIX: Final = "_gtFine_labelTrainIds.png"
_TRAIN_IGNORE: Final = 255
_MASK = re.compile(r"^(?P<root>(?:[^/]+/)?)gtFine/(?P<subset>[^/]+)/(?P<path>.+)$")

# fmt: off
CITYSCAPES_CLASSES: Final = (
    "unlabeled", "egovehicle", "rectificationborder", "outofroi", "static", "dynamic",
    "ground", "road", "sidewalk", "parking", "railtrack", "building", "wall", "fence",
    "guardrail", "bridge", "tunnel", "pole", "polegroup", "trafficlight", "trafficsign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "caravan",
    "trailer", "train", "motorcycle", "bicycle", "licenseplate",
)
"""Cityscapes' label ids (datumaro's `CITYSCAPES_LABEL_MAP`), 0 being "unlabeled"."""
TRAIN_CLASSES: Final = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "trafficlight", "trafficsign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle", "background",
)
"""Cityscapes' train ids (datumaro's `TRAIN_CITYSCAPES_LABEL_MAP`)."""
# fmt: on


@dataclass(frozen=True)
class ClassMap:
    """The classes of a `label_colors.txt` (Cityscapes, KITTI), by class id."""

    names: tuple[str, ...]
    background: int | None
    """The class whose masks are no objects."""
    declared: tuple[str, ...]
    """The names the file declares, without the background (none for a default map)."""


def parse_label_colors(text: str, name: str) -> ClassMap:
    """`label_colors.txt`: `r g b name` lines (or `name` alone), class ids by line, as
    datumaro's `parse_label_map` of Cityscapes and KITTI reads them; ImportFailed for a
    colour that is not three numbers 0-255, a line of 3 words, a name defined twice."""
    names: list[str] = []
    black: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}, line {number}"
        words = line.split(maxsplit=3)
        if len(words) == 3:
            raise ImportFailed(f"{where}: expected 'r g b name' (or a name alone): {line!r}.")
        if len(words) > 3:
            colour = parse_colour(" ".join(words[:3]), None, where)
            label = words[3]
            if colour == (0, 0, 0) and black is None:
                black = label
        else:
            label = words[0]
        if label in names:
            raise ImportFailed(f"{where}: the label {label!r} is defined twice.")
        names.append(label)
    background_name = black or ("background" if "background" in names else None)
    background = names.index(background_name) if background_name is not None else None
    return ClassMap(
        names=tuple(names),
        background=background,
        declared=tuple(n for n in names if n != background_name),
    )


def class_name(classes: ClassMap, index: int, name: str) -> str:
    """The name of class `index`; ImportFailed naming the PNG when there is no such class."""
    if not 0 <= index < len(classes.names):
        raise ImportFailed(
            f"{name} has pixels of class {index}, past the {len(classes.names)} classes of "
            "its label map."
        )
    return classes.names[index]


def read_cityscapes(files: ImportFiles) -> ParsedAnnotations:
    """Read a Cityscapes 1.0 upload (see the module's docstring)."""
    found = [
        (match, name)
        for name in files.names()
        if (match := _MASK.match(name))
        and name.endswith((_INSTANCE_SUFFIX, _TRAIN_SUFFIX))
        and not is_macos_metadata(name)
    ]
    if not found:
        raise ImportFailed(
            f"this is not a {FORMAT} upload: no gtFine/<subset>/*{_INSTANCE_SUFFIX} found."
        )
    root = min((match.group("root") for match, _ in found), key=len)
    colors_name = f"{root}label_colors.txt"
    declared = (
        parse_label_colors(files.text(colors_name), colors_name) if colors_name in files else None
    )
    result = ParsedAnnotations(labels=list(declared.declared) if declared else [])
    subsets: dict[str, list[tuple[str, str]]] = {}
    for match, name in found:
        if match.group("root") == root:
            subsets.setdefault(match.group("subset"), []).append((match.group("path"), name))
    for subset, members in subsets.items():
        train = any(path.endswith(_TRAIN_SUFFIX) for path, _ in members)
        suffix = _TRAIN_SUFFIX if train else _INSTANCE_SUFFIX
        classes = declared or ClassMap(
            names=TRAIN_CLASSES if train else CITYSCAPES_CLASSES,
            background=None if train else 0,
            declared=(),
        )
        images = image_exts(files, f"{root}imgsFine/leftImg8bit/{subset}", "_leftImg8bit")
        for path, name in members:
            if path.endswith(suffix):
                item_id = path[: -len(suffix)]
                ref = item_id + images.get(item_id, "")
                result.shapes += _masks(files, name, ref, classes, train=train)
    return result


def _masks(
    files: ImportFiles, name: str, ref: str, classes: ClassMap, *, train: bool
) -> Sequence[ParsedShape]:
    values = gray_pixels(read_png(files, name), name)
    shapes = []
    for value, points in value_masks(values, (_TRAIN_IGNORE,) if train else ()):
        crowd = value < INSTANCES_PER_CLASS
        index = value if crowd else value // INSTANCES_PER_CLASS
        if index == classes.background:
            continue
        shapes.append(
            ParsedShape(
                type="mask",
                label=class_name(classes, index, name),
                points=points,
                frame=ref,
                attributes={"is_crowd": "true" if crowd else "false"},
            )
        )
    return shapes
