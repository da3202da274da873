"""YOLO 1.1 (Darknet) import, as CVAT 2.80 reads it; and the pieces the Ultralytics YOLO
readers (`imports/formats/ultralytics.py`) share with it.

CVAT imports it through its datumaro fork (cvat/apps/dataset_manager/formats/yolo.py:
`_import_yolo` -> `_import_common`, then `Dataset.import_from(dir, "yolo", image_info=...)`
and bindings.py's `import_dm_annotations`); the fork's datumaro/plugins/yolo_format
(`YoloExtractor`) reads the files. The layout (as `formats/yolo.py` writes it):

- `obj.data`: `key = value` lines (`classes = 2`, `train = data/train.txt`,
  `names = data/obj.names`, `backup = backup/`); every key but `classes`, `names` and
  `backup` is a subset whose value is its image list. Paths drop a leading `data/` and are
  relative to the folder holding `obj.data` (found at any depth; the shallowest one).
- `obj.names` (where `names` points, `obj.names` beside `obj.data` when it does not say):
  one class name a line, blank lines skipped; class `i` is the `i`-th name.
- `<subset>.txt`: one image path a line (`data/obj_train_data/img0.jpg`); the image's
  label file is the same path with `.txt` for its extension
  (`obj_train_data/img0.txt`), holding one `<class> <cx> <cy> <w> <h>` line per box, all
  four normalised to the image's width and height.

What is read: for each image listed by a subset (each label file once), its boxes as
rectangles `[(cx - w/2) W, (cy - h/2) H, (cx + w/2) W, (cy + h/2) H]`, on the frame ref
CVAT's item id gives: the listed path without `data/`, its first folder
(`obj_train_data/`) and its extension ("seq/img2" for `data/obj_train_data/seq/img2.jpg`).
`ParsedAnnotations.labels` are the names of `obj.names`; `ParsedAnnotations.items` every
image a subset lists (its frame ref, the subset, its member), and shapes carry the subset
of the list that named their image first.

Frame sizes: the normalised numbers need the image's size, which the files do not give
(CVAT looks each label file's frame up in the task, `image_info`). So every reader of the
YOLO family takes `frame_sizes` (`FrameSizes`, its second argument, as the registry's
readers take the task's frame sizes): the frame ref above -> (width, height) of the task
frame it names, or None when the task has no such frame. It is asked once per label file
that has at least one line. When it answers None, the file's lines are still checked (a
malformed file fails either way) but give no shape: the caller that answered None knows
those refs and reports them as frames the task does not have (the reader cannot put
shapes without coordinates in `ParsedAnnotations` for the matcher to count).

Where the reader differs from CVAT:
- an image whose label file is not in the upload has no boxes (CVAT fails the import;
  Darknet and Ultralytics read it as an image without objects);
- `obj.data` without `names` falls back to `obj.names` beside it (CVAT fails);
- a class number written as an integral float ("1.0") is read (CVAT fails).

Hostile or malformed input fails with `ImportFailed` naming the file and line: no
`obj.data` or no `obj.names` ("not a YOLO 1.1 upload"), a subset list the upload lacks, an
absolute image path or one leaving the upload, a line without exactly 5 fields, a class
that is not a number or not in `obj.names`, coordinates that are not finite numbers or
that scale past `tessera.geometry.MAX_COORD`.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.model import ParsedAnnotations, ParsedItem, ParsedShape
from tessera.geometry import MAX_COORD

FORMAT: Final = "YOLO 1.1"

FrameSizes = Callable[[str], tuple[int, int] | None]
"""A frame ref (an image path without its extension, as the YOLO readers give it) to the
(width, height) of the task frame it names, or None when the task has none."""

LineReader = Callable[[list[str], str, float, float], ParsedShape]
"""Turns a label file line's fields into a shape: (fields, where, width, height), where
`where` names the file and line for error messages."""

_CONFIG = "obj.data"
_NAMES = "obj.names"
_RESERVED: Final = frozenset({"backup", "classes", "names"})
_CONFIG_LINE = re.compile(r"^\s*(\w+)\s*=\s*(.+)$")
_DATA_PREFIX = "data/"
_LABELS_EXT = ".txt"
_IMAGE_EXTENSIONS: Final = frozenset((
    ".jpg", ".jpeg", ".jpe", ".jp2", ".png", ".bmp", ".dib", ".tif", ".tiff", ".tga", ".webp",
    ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".pfm",
))  # fmt: skip
"""What datumaro's `find_images` takes for an image, by extension (any case)."""


def read_yolo(files: ImportFiles, frame_sizes: FrameSizes) -> ParsedAnnotations:
    """Read a YOLO 1.1 upload: boxes of the images its subset lists name.

    `frame_sizes` gives each frame's size (see the module's docstring). Raises
    ImportFailed when the upload is not YOLO 1.1 or is malformed.
    """
    config_member = shallowest(files, _CONFIG, FORMAT)
    root = posixpath.dirname(config_member)
    config = _config(files.text(config_member))
    names_member = member_in(root, localize(config.get("names", _NAMES)))
    if names_member is None or names_member not in files:
        raise ImportFailed(
            f"{not_an_upload(FORMAT)}: no {names_member or config['names']} found "
            f"(the class names {config_member} points to)"
        )
    labels = [line.strip() for line in files.text(names_member).splitlines() if line.strip()]
    out = ParsedAnnotations(labels=list(labels))
    classes = dict(enumerate(labels))
    read_line = box_reader(classes, names_member)
    seen: set[str] = set()
    for subset, value in config.items():
        if subset in _RESERVED:
            continue
        list_member = member_in(root, localize(value))
        if list_member is None or list_member not in files:
            raise ImportFailed(
                f"{config_member} names the {subset!r} image list {value.strip()!r}, "
                "which the upload does not have"
            )
        for number, line in enumerate(files.text(list_member).splitlines(), start=1):
            image = localize(line)
            if not image or image == ".":
                continue
            label_member = member_in(root, posixpath.splitext(image)[0] + _LABELS_EXT)
            if label_member is None:
                raise ImportFailed(
                    f"{list_member} line {number}: the image path {line.strip()!r} is absolute "
                    "or leads out of the upload"
                )
            out.items.append(ParsedItem(_item_id(image), subset, member_in(root, image)))
            if label_member in seen or label_member not in files:
                continue
            seen.add(label_member)
            read_label_file(
                files,
                label_member,
                _item_id(image),
                read_line=read_line,
                frame_sizes=frame_sizes,
                out=out,
                subset=subset,
            )
    return out


def _config(text: str) -> dict[str, str]:
    """obj.data's `key = value` lines (others ignored, a later key replacing an earlier)."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        match = _CONFIG_LINE.match(line)
        if match:
            config[match.group(1)] = match.group(2)
    return config


def _item_id(image: str) -> str:
    """CVAT's item id of a listed image: without its first folder and its extension."""
    parts = image.split("/")
    path = "/".join(parts[1:]) if len(parts) > 1 else image
    return posixpath.splitext(path)[0]


# --- shared by the YOLO family -------------------------------------------------------------


def not_an_upload(format_name: str) -> str:
    """The start of a wrong upload's failure: "this is not a <format> upload" ("an" before
    a vowel)."""
    article = "an" if format_name[:1].lower() in "aeiou" else "a"
    return f"this is not {article} {format_name} upload"


def not_found(format_name: str, what: str) -> ImportFailed:
    """The failure of an upload that lacks the format's defining file."""
    return ImportFailed(f"{not_an_upload(format_name)}: no {what} found")


def is_metadata(name: str) -> bool:
    """Whether a member is macOS archive metadata (`__MACOSX/`, `._*`), never data."""
    return name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._")


def is_image(name: str) -> bool:
    """Whether a member's extension is one of an image (as datumaro's `find_images`)."""
    return posixpath.splitext(name)[1].lower() in _IMAGE_EXTENSIONS


def shallowest(files: ImportFiles, basename: str, format_name: str) -> str:
    """The member named `basename` nearest the archive's root; ImportFailed when there is
    none, or more than one at that depth."""
    found = [
        name
        for name in files.names()
        if posixpath.basename(name) == basename and not is_metadata(name)
    ]
    if not found:
        raise not_found(format_name, basename)
    depth = min(name.count("/") for name in found)
    top = [name for name in found if name.count("/") == depth]
    if len(top) > 1:
        raise ImportFailed(
            f"the upload holds more than one {basename} ({', '.join(top[:3])}): upload one "
            f"{format_name} dataset at a time"
        )
    return top[0]


def localize(path: str) -> str:
    """A path as the fork's YOLO readers take it: normalised, `\\` as `/`, without a
    leading `data/`."""
    normal = posixpath.normpath(path.strip().replace("\\", "/")) if path.strip() else ""
    return normal[len(_DATA_PREFIX) :] if normal.startswith(_DATA_PREFIX) else normal


def member_in(root: str, path: str) -> str | None:
    """The member name of `path` relative to the folder `root`; None for an absolute path
    or one that leads out of the upload."""
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None
    joined = posixpath.normpath(posixpath.join(root, path)) if root else path
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def label_lines(files: ImportFiles, member: str) -> Iterator[tuple[str, list[str]]]:
    """(where, fields) of each line of a label file that has any, `where` naming the file
    and the line."""
    for number, line in enumerate(files.text(member).splitlines(), start=1):
        fields = line.split()
        if fields:
            yield f"{member} line {number}", fields


def read_label_file(
    files: ImportFiles,
    member: str,
    ref: str,
    *,
    read_line: LineReader,
    frame_sizes: FrameSizes,
    out: ParsedAnnotations,
    subset: str = "",
) -> None:
    """Add the shapes of one label file on frame `ref` (of `subset`) to `out` (see the
    module's docstring for a frame without a size)."""
    lines = list(label_lines(files, member))
    if not lines:
        return
    size = frame_sizes(ref)
    valid = size is not None and size[0] > 0 and size[1] > 0
    width, height = size if size is not None and valid else (1, 1)
    shapes = [read_line(fields, where, width, height) for where, fields in lines]
    if valid:
        for shape in shapes:
            shape.frame = ref
            shape.subset = subset
        out.shapes.extend(shapes)


def integer(value: str, where: str, what: str) -> int:
    """A whole number, also written as an integral float ("1.0")."""
    try:
        return int(value)
    except ValueError:
        pass
    number = finite(value, where, what)
    if not number.is_integer():
        raise ImportFailed(f"{where}: the {what} {value!r} is not a whole number")
    return int(number)


def finite(value: str, where: str, what: str) -> float:
    """A finite number; ImportFailed naming `where` and `what` otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise ImportFailed(f"{where}: the {what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ImportFailed(f"{where}: the {what} {value!r} is not a finite number")
    return number


def scaled(values: Sequence[str], where: str, width: float, height: float) -> list[float]:
    """Normalised x, y, x, y, ... fields times the frame's width and height."""
    out = []
    for index, value in enumerate(values):
        axis = "x" if index % 2 == 0 else "y"
        number = finite(value, where, f"{axis} coordinate") * (width if axis == "x" else height)
        if not abs(number) <= MAX_COORD:
            raise ImportFailed(f"{where}: the {axis} coordinate {value!r} is out of range")
        out.append(number)
    return out


def class_label(value: str, classes: Mapping[int, str], where: str, source: str) -> str:
    """The label name of a line's class number; ImportFailed when `source` (the file that
    declares the classes) has no such class."""
    number = integer(value, where, "class")
    name = classes.get(number)
    if name is None:
        raise ImportFailed(f"{where}: class {number} is not one of the classes of {source}")
    return name


def box_reader(classes: Mapping[int, str], source: str) -> LineReader:
    """The reader of `<class> <cx> <cy> <w> <h>` lines (YOLO 1.1, Ultralytics Detection)."""

    def read(fields: list[str], where: str, width: float, height: float) -> ParsedShape:
        if len(fields) != 5:
            raise ImportFailed(
                f"{where}: {len(fields)} fields, where a box has 5 (class, x centre, y centre, "
                "width, height)"
            )
        label = class_label(fields[0], classes, where, source)
        cx, cy, w, h = scaled(fields[1:], where, width, height)
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        return ParsedShape(type="rectangle", label=label, points=box)

    return read
