"""PASCAL VOC 1.1 (CVAT's importer "PASCAL VOC 1.1"), and the PNG mask reading that the
Segmentation mask, Cityscapes, KITTI and MOTS readers share.

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/pascal_voc.py) by extracting the
archive, writing a `labelmap.txt` of the task's labels when there is none, moving every
`*.xml` into `Annotations/` with a `ImageSets/Main/train.txt` listing them when there is
no `Annotations/` folder (a "flat" upload), then reading it with its datumaro fork's
`voc` importer (datumaro/plugins/voc_format/importer.py, extractor.py, format.py), which
merges what the VOC tasks find, and handing the items to
cvat/apps/dataset_manager/bindings.py (`import_dm_annotations`). The layout and what is
read, as there:

- The dataset's root is the shallowest folder (up to 3 levels down) holding a list
  `ImageSets/<Main|Segmentation|Layout|Action>/<subset>.txt` (a name without "_"). Each
  list names its subset's items, one id a line (blank and `#` lines skipped; a Layout
  id may be in double quotes, else its first word). An item is its (subset, id): one id
  in two subsets is two items, both matched to the frame.
- `labelmap.txt` (`name:r,g,b:parts:actions` lines, `#` comments): the classes in its
  order, then the parts (sorted); colours map PNG pixels to classes (with no colour at
  all, class k takes PASCAL VOC's colour k). Its names go to `ParsedAnnotations.labels`,
  but for the background class (the first coloured 0,0,0, else the one named
  `background`). Without the file, PASCAL VOC's own classes and colours are used.
- Items of Main, Layout and Action lists: `Annotations/<id>.xml`, each `<object>` a
  rectangle: `name`, `bndbox` (`xmin`, `ymin`, `xmax`, `ymax`; stored as datumaro stores
  a box, [x, y, x + w, y + h] rounded to 2 decimals), `difficult`, `truncated`,
  `occluded` (0 or 1, absent is 0: attributes "true"/"false", `occluded` the flag),
  `pose` (an attribute), `point` (an attribute "(x, y)"), `actions` (each child a 0/1
  attribute; the label map's actions of the class default to "false") and
  `<attributes><attribute><name/><value/></attribute></attributes>` (text attributes).
  Of those attributes, as CVAT's bindings take them: `rotation` is the box's rotation,
  `occluded` and `outside` are flags, `source` (auto, semi-auto, manual, file) is the
  shape's source, and a box with both `track_id` and `keyframe` is a frame of the track
  of that `track_id` (shapes in item order, `keyframe` kept as an attribute as CVAT
  does; CVAT's closing of a track's gaps with outside frames needs the task's frames and
  is the matcher's); the rest stay attributes. An object's `<part>`s (`name`, `bndbox`)
  are rectangles of their part's label, in the object's group, on items of a Layout
  list; an item only in a Layout list keeps the objects with parts, only in an Action
  list those with actions.
- Items of Main lists: tags from `ImageSets/Main/<class>_<subset>.txt` (lines
  `<id> <1|0|-1>`, 1 meaning the item has the class; every such list is read, where
  datumaro reads those of the label map's classes and the matcher reports the others).
- Items of Segmentation lists: `SegmentationObject/<id>.png` (instance k in VOC's colour
  k; 0 is none) gives one mask per instance, labelled by the class its pixels have in
  `SegmentationClass/<id>.png` (the highest class when they have several);
  `SegmentationClass/<id>.png` alone gives one mask per class. Grayscale PNGs hold the
  indices themselves.
- Groups: datumaro groups object k's box (and parts) as k and mask instance k as k;
  CVAT's bindings keep only the groups of more than one shape on a frame, renumbered 1,
  2, ... there. So a box and a mask of the same object number share a group.
- Frame refs: the item id plus the extension of the XML's `filename` (or of the image in
  `JPEGImages/` of that id), else the id alone. Each item goes to
  `ParsedAnnotations.items` (with its `JPEGImages/` image, when there is one), its shapes
  and tags carry its subset.
- Flat uploads (no `Annotations/` folder under the root, or no root at all): every XML
  is the annotation of an item of subset "train" named by its file name (a repeated
  name fails, as moving the files does in CVAT).

Where the reader differs from CVAT:
- without `labelmap.txt`, CVAT makes the task's labels the classes (coloured by VOC's
  colours in the task's label order); the reader has no task and uses PASCAL VOC's
  classes instead, which only matters for PNG colours and class lists.
- a VOC folder inside the archive (`voc/Annotations/...`) is read as the dataset it is;
  CVAT, finding no `Annotations/` at the archive's top, reads its XMLs flat.
- masks of the background class are not objects (datumaro makes one of the unpainted
  pixels of class-only PNGs, which CVAT then fails on or stores).
- malformed input fails with `ImportFailed` naming the file and what is wrong: XML that
  does not parse or is not an `<annotation>`, a missing `name` or coordinate, numbers
  that are not finite (or beyond `tessera.geometry.MAX_COORD`), flags other than 0/1, a
  PNG colour the label map lacks, a class index past the classes, PNGs whose size
  differs from each other or from the XML's `size`, PNGs declaring more than
  `MAX_PNG_PIXELS` pixels (refused from their header, before decoding), label maps with
  a colour that is not three numbers 0-255.
- an empty `<pose>` or attribute `<value>` is "" (CVAT stores "None"); boolean
  attribute values are "true"/"false" (CVAT's `str` gives "True"/"False").

Memory: one item's XML and one item's PNGs at a time; each PNG is decoded, split into
masks (CVAT's run lengths) and dropped.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import struct
from collections import Counter
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from xml.etree.ElementTree import Element

import numpy as np
import numpy.typing as npt
from PIL import Image

from tessera.export.formats.coco import round2
from tessera.export.formats.paint import Rgb, voc_colormap
from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.model import (
    ParsedAnnotations,
    ParsedItem,
    ParsedShape,
    ParsedTag,
    ParsedTrack,
)
from tessera.geometry import MAX_COORD, array_to_cvat_mask

FORMAT: Final = "PASCAL VOC 1.1"

Pixels = npt.NDArray[Any]
"""A (height, width) array of integers."""

# --- PNG masks (shared with the other mask formats' readers) -----------------------------

MAX_PNG_PIXELS: Final = 89_478_485
"""Pillow's default `Image.MAX_IMAGE_PIXELS`: a PNG whose header declares more pixels is
refused as a decompression bomb before anything is decoded."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_GRAY_MODES: Final = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N"})


def read_png(files: ImportFiles, name: str) -> Image.Image:
    """The member `name` decoded as a PNG; ImportFailed for anything else, for a damaged
    file, and for a header declaring more than `MAX_PNG_PIXELS` pixels."""
    data = files.read(name)
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ImportFailed(f"{name} is not a PNG image.")
    width, height = struct.unpack(">II", data[16:24])
    if width * height > MAX_PNG_PIXELS:
        raise ImportFailed(
            f"{name} declares {width} x {height} pixels, more than {MAX_PNG_PIXELS}: "
            "refused as a decompression bomb."
        )
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        image.load()
    except Image.DecompressionBombError as exc:  # Pillow's own limit, where set lower
        raise ImportFailed(f"{name}: {exc}; refused as a decompression bomb.") from None
    except Exception as exc:  # Pillow's decoders fail on damaged files in many ways
        raise ImportFailed(f"{name} is not a PNG image Tessera reads: {exc}") from None
    return image


def gray_pixels(image: Image.Image, name: str) -> Pixels:
    """The values of a grayscale PNG (8, 16 or 32 bits; a 1-bit PNG reads 0 and 255, as
    OpenCV reads it); ImportFailed for a colour PNG."""
    if image.mode not in _GRAY_MODES:
        raise ImportFailed(f"{name} is a {image.mode} PNG where a grayscale PNG was expected.")
    if image.mode == "1":
        image = image.convert("L")
    pixels = np.asarray(image)
    return pixels.astype(pixels.dtype.newbyteorder("="), copy=False)


def indexed_pixels(image: Image.Image, name: str, colours: Mapping[Rgb, int]) -> Pixels:
    """Each pixel's index: a palette or RGB(A) PNG's colours looked up in `colours`
    (ImportFailed for a colour it lacks); a grayscale PNG's values are the indices."""
    if image.mode in _GRAY_MODES:
        return gray_pixels(image, name)
    if image.mode == "P":
        indices = np.asarray(image)
        palette = image.getpalette("RGB") or []
        table = np.zeros(256, np.int32)
        for entry in np.unique(indices).tolist():
            colour = palette[3 * entry : 3 * entry + 3]
            if len(colour) != 3:
                raise ImportFailed(f"{name} has pixels of palette entry {entry}, past its palette.")
            table[entry] = _colour_index(colours, (colour[0], colour[1], colour[2]), name)
        looked_up: Pixels = table[indices]
        return looked_up
    if image.mode not in ("RGB", "RGBA"):
        raise ImportFailed(f"{name} is a {image.mode} PNG; masks are palette, RGB or gray.")
    rgb = np.asarray(image)
    codes = rgb[..., 0].astype(np.int32) << 16
    codes |= rgb[..., 1].astype(np.int32) << 8
    codes |= rgb[..., 2]
    del rgb
    present = np.unique(codes).tolist()
    found = [
        _colour_index(colours, ((code >> 16) & 255, (code >> 8) & 255, code & 255), name)
        for code in present
    ]
    out = np.zeros(codes.shape, np.int32)
    for code, index in zip(present, found, strict=True):
        if index:
            out[codes == code] = index
    return out


def _colour_index(colours: Mapping[Rgb, int], colour: Rgb, name: str) -> int:
    index = colours.get(colour)
    if index is None:
        raise ImportFailed(f"{name} has pixels coloured {colour}, a colour of no class.")
    return index


def value_masks(values: Pixels, skip: Container[int] = ()) -> Iterator[tuple[int, list[float]]]:
    """Each distinct value of an id map (but those in `skip`), in increasing order, with
    its pixels as CVAT mask points (run lengths over the tight box, then the box)."""
    for value in np.unique(values).tolist():
        if value in skip:
            continue
        points = array_to_cvat_mask(values == value)
        yield int(value), [float(v) for v in points]


def check_size(name: str, pixels: Pixels, size: tuple[int, int] | None, source: str) -> None:
    """ImportFailed when a PNG is not the (width, height) `source` gives the image."""
    if size is not None and (pixels.shape[1], pixels.shape[0]) != size:
        raise ImportFailed(
            f"{name} is {pixels.shape[1]} x {pixels.shape[0]} pixels, but {source} gives "
            f"the image as {size[0]} x {size[1]}."
        )


def parse_colour(text: str, separator: str | None, where: str) -> Rgb:
    """ "r,g,b" (or "r g b" with `separator` None) as three numbers 0-255; ImportFailed
    naming `where` otherwise."""
    parts = text.split(separator)
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0 <= value <= 255 for value in values):
        raise ImportFailed(
            f"{where}: the colour {text.strip()!r} is not three numbers 0-255 (r, g, b)."
        )
    return (values[0], values[1], values[2])


def coordinate(text: str | None, where: str) -> float:
    """A coordinate: a finite number within `tessera.geometry.MAX_COORD`."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > MAX_COORD:
        raise ImportFailed(f"{where} is not a finite number: {text!r}.")
    return value


def box_points(left: float, top: float, right: float, bottom: float) -> list[float]:
    """A box as datumaro stores it from its corners (`Bbox(x, y, w, h)`: [x, y, x + w,
    y + h], rounded to 2 decimals), CVAT's rectangle points."""
    return [
        round2(left),
        round2(top),
        round2(left + (right - left)),
        round2(top + (bottom - top)),
    ]


def cvat_groups(shapes: Sequence[ParsedShape]) -> None:
    """CVAT's bindings on one frame's shapes: groups of a single shape become 0, the others
    1, 2, ... in increasing order of the file's group."""
    sizes = Counter(shape.group for shape in shapes if shape.group)
    kept = {
        group: index for index, group in enumerate(sorted(g for g, n in sizes.items() if n > 1), 1)
    }
    for shape in shapes:
        shape.group = kept.get(shape.group, 0)


def to_bool(value: str) -> bool | None:
    """attrs' `to_bool` as CVAT's bindings cast flags: None for a value it refuses."""
    lowered = value.lower()
    if lowered in ("true", "t", "yes", "y", "on", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "off", "0"):
        return False
    return None


def bool_text(value: bool) -> str:
    """An attribute value of a flag, as checkboxes store it."""
    return "true" if value else "false"


def natural_key(text: str) -> list[Any]:
    """Sort key with runs of digits compared as numbers ("2" before "10")."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def is_macos_metadata(name: str) -> bool:
    """macOS's archive metadata members (`__MACOSX/`, `._*`), which are no annotations."""
    return name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._")


def image_exts(files: ImportFiles, folder: str, suffix: str = "") -> dict[str, str]:
    """Extensions of the files under `folder` (no trailing slash) by their path below it,
    without extension (and without `suffix` before it)."""
    found: dict[str, str] = {}
    prefix = f"{folder}/"
    for name in files.names():
        if name.startswith(prefix) and not is_macos_metadata(name):
            stem, ext = posixpath.splitext(name[len(prefix) :])
            if suffix and stem.endswith(suffix):
                stem = stem[: -len(suffix)]
            found.setdefault(stem, ext)
    return found


# --- the label map -------------------------------------------------------------------------

# fmt: off
_VOC_CLASSES: Final = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
_VOC_PARTS: Final = ("head", "hand", "foot")
_VOC_ACTIONS: Final = (
    "other", "jumping", "phoning", "playinginstrument", "reading", "ridingbike",
    "ridinghorse", "running", "takingphoto", "usingcomputer", "walking",
)
# fmt: on


@dataclass(frozen=True)
class VocLabelMap:
    """The classes of a VOC dataset, as datumaro's `make_voc_categories` makes them."""

    names: tuple[str, ...]
    """Class names by index: the label map's, then its parts (sorted)."""
    colours: Mapping[Rgb, int]
    """Class index by PNG colour."""
    background: int | None
    """The background class's index: its masks are no objects."""
    actions: Mapping[str, tuple[str, ...]]
    declared: tuple[str, ...]
    """The names the file declares (none for the default map), without the background."""


def parse_labelmap(text: str, name: str) -> VocLabelMap:
    """`labelmap.txt`: `name:r,g,b:parts:actions` lines, as datumaro's `VocLabelMap`
    reads them; ImportFailed for a line that is not 4 fields, a name defined twice, or a
    colour that is not three numbers."""
    entries: dict[str, tuple[Rgb | None, list[str], list[str]]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        where = f"{name}, line {number}"
        if len(fields) != 4:
            raise ImportFailed(
                f"{where}: {len(fields)} ':'-separated fields where 4 "
                "(name:r,g,b:parts:actions) were expected."
            )
        label, colour_text, parts_text, actions_text = fields
        if label in entries:
            raise ImportFailed(f"{where}: the label {label!r} is defined twice.")
        colour = parse_colour(colour_text, ",", where) if colour_text else None
        parts = [part.strip() for part in parts_text.split(",")] if parts_text else []
        actions = [action.strip() for action in actions_text.split(",")] if actions_text else []
        entries[label] = (colour, parts, actions)
    return _label_map(entries, declared=True)


def default_labelmap() -> VocLabelMap:
    """PASCAL VOC's own classes (`VocLabelMap.make_default`), for uploads without a
    label map."""
    palette = voc_colormap(256)
    entries: dict[str, tuple[Rgb | None, list[str], list[str]]] = {
        name: (palette[index], [], []) for index, name in enumerate(_VOC_CLASSES)
    }
    entries["person"] = (palette[15], list(_VOC_PARTS), list(_VOC_ACTIONS))
    entries["ignored"] = (palette[255], [], [])
    return _label_map(entries, declared=False)


def _label_map(
    entries: Mapping[str, tuple[Rgb | None, list[str], list[str]]], *, declared: bool
) -> VocLabelMap:
    names = list(entries)
    parts = sorted({part for _, found, _ in entries.values() for part in found} - set(names))
    if any(colour is not None for colour, _, _ in entries.values()):
        colours = {
            colour: index
            for index, (colour, _, _) in enumerate(entries.values())
            if colour is not None
        }
        black = next((n for n, (c, _, _) in entries.items() if c == (0, 0, 0)), None)
    else:
        colours = {colour: index for index, colour in enumerate(voc_colormap(len(names)))}
        black = None
    background_name = black or ("background" if "background" in entries else None)
    background = names.index(background_name) if background_name is not None else None
    all_names = (*names, *parts)
    return VocLabelMap(
        names=all_names,
        colours=colours,
        background=background,
        actions={label: tuple(actions) for label, (_, _, actions) in entries.items()},
        declared=tuple(n for n in all_names if n != background_name) if declared else (),
    )


# --- reading -------------------------------------------------------------------------------

_LIST = re.compile(
    r"^(?P<root>(?:[^/]+/){0,3}?)ImageSets/(?P<task>Main|Segmentation|Layout|Action)/"
    r"(?P<subset>[^/_]+)\.txt$"
)
_XML_TASKS: Final = frozenset({"Main", "Layout", "Action"})


def read_voc(files: ImportFiles) -> ParsedAnnotations:
    """Read a PASCAL VOC 1.1 upload (see the module's docstring)."""
    return read_voc_dataset(files, FORMAT, flat_xml=True)


def read_voc_dataset(files: ImportFiles, format_name: str, *, flat_xml: bool) -> ParsedAnnotations:
    """Read the VOC dataset of an upload, as datumaro's `voc` importer and CVAT's bindings
    do; `flat_xml`: XMLs outside an `Annotations/` folder are items of subset "train"
    (CVAT's PASCAL VOC importer moves them there)."""
    lists = [(match, name) for name in files.names() if (match := _LIST.match(name))]
    root = min((match.group("root") for match, _ in lists), key=lambda r: r.count("/"), default="")
    lists = [(match, name) for match, name in lists if match.group("root") == root]
    flat: list[str] = []
    if flat_xml and not files.matching("", under=f"{root}Annotations".lstrip("/")):
        flat = [
            name
            for name in files.names()
            if name.lower().endswith(".xml") and not is_macos_metadata(name)
        ]
    if not lists and not flat:
        raise ImportFailed(
            f"this is not a {format_name} upload: no ImageSets/Main/<subset>.txt (nor "
            "Segmentation, Layout or Action lists) found."
        )
    labelmap_name = f"{root}labelmap.txt"
    label_map = (
        parse_labelmap(files.text(labelmap_name), labelmap_name)
        if labelmap_name in files
        else default_labelmap()
    )
    reader = _VocReader(files, root, label_map)
    for match, name in lists:
        if flat and match.group("task") == "Main" and match.group("subset") == "train" and not root:
            continue  # CVAT writes its own list of the flat XMLs over it
        reader.add_list(name, match.group("task"), match.group("subset"))
    reader.add_flat(flat)
    return reader.read()


@dataclass
class _Item:
    subset: str
    id: str
    tasks: set[str] = field(default_factory=set)
    xml: str | None = None


class _VocReader:
    def __init__(self, files: ImportFiles, root: str, label_map: VocLabelMap) -> None:
        self.files = files
        self.root = root
        self.label_map = label_map
        self.items: dict[tuple[str, str], _Item] = {}
        self.main_subsets: list[str] = []
        self.result = ParsedAnnotations(labels=list(label_map.declared))
        self.tracks: dict[str, ParsedTrack] = {}
        self.images = image_exts(files, f"{root}JPEGImages")
        self.instance_colours = {colour: index for index, colour in enumerate(voc_colormap())}

    def add_list(self, name: str, task: str, subset: str) -> None:
        for number, raw in enumerate(self.files.text(name).splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if task == "Layout":
                quoted = line.split('"')
                if len(quoted) == 3:
                    line = quoted[1]
                elif len(quoted) > 1:
                    raise ImportFailed(
                        f"{name}, line {number}: an id needs 0 or 2 double quotes: {line!r}."
                    )
                else:
                    line = line.split()[0]
            self._item(subset, line).tasks.add(task)
        if task == "Main" and subset not in self.main_subsets:
            self.main_subsets.append(subset)

    def add_flat(self, names: Sequence[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            item_id = posixpath.splitext(posixpath.basename(name))[0]
            if item_id in seen:
                raise ImportFailed(
                    f"{seen[item_id]} and {name} name the same item {item_id!r} of a flat "
                    "PASCAL VOC upload."
                )
            seen[item_id] = name
            item = self._item("train", item_id)
            item.tasks.add("Main")
            item.xml = name
        if names and "train" not in self.main_subsets:
            self.main_subsets.append("train")

    def _item(self, subset: str, item_id: str) -> _Item:
        return self.items.setdefault((subset, item_id), _Item(subset, item_id))

    def read(self) -> ParsedAnnotations:
        tags = self._class_lists()
        for (subset, item_id), item in self.items.items():
            shapes: list[ParsedShape] = []
            ref = item_id + self.images.get(item_id, "")
            xml = item.xml or f"{self.root}Annotations/{item_id}.xml"
            size: tuple[int, int] | None = None
            if item.tasks & _XML_TASKS and xml in self.files:
                ref, size, shapes = self._annotation(xml, item)
            if "Segmentation" in item.tasks:
                shapes += self._masks(item_id, ref, size, xml)
            if "Main" in item.tasks:
                for label in tags.get((subset, item_id), ()):
                    self.result.tags.append(ParsedTag(label=label, frame=ref, subset=subset))
            cvat_groups(shapes)
            for shape in shapes:
                shape.subset = subset
                self._add(shape)
            ext = self.images.get(item_id)
            image = None if ext is None else f"{self.root}JPEGImages/{item_id}{ext}"
            self.result.items.append(ParsedItem(ref, subset, image))
        self.result.tracks.extend(self.tracks.values())
        return self.result

    def _add(self, shape: ParsedShape) -> None:
        track_id = shape.attributes.pop("track_id", None)
        if track_id is None or "keyframe" not in shape.attributes:
            self.result.shapes.append(shape)
            return
        shape.keyframe = to_bool(shape.attributes["keyframe"]) is True
        track = self.tracks.get(track_id)
        if track is None:
            track = self.tracks[track_id] = ParsedTrack(
                label=shape.label, shapes=[], group=shape.group, source=shape.source
            )
        shape.group = 0
        track.shapes.append(shape)

    # -- ImageSets/Main/<class>_<subset>.txt

    def _class_lists(self) -> dict[tuple[str, str], list[str]]:
        tags: dict[tuple[str, str], list[str]] = {}
        folder = f"{self.root}ImageSets/Main/"
        for name in self.files.names():
            if not name.startswith(folder) or not name.endswith(".txt"):
                continue
            stem = name[len(folder) : -len(".txt")]
            label, _, subset = stem.rpartition("_")
            if not label or subset not in self.main_subsets or "/" in stem:
                continue
            for number, raw in enumerate(self.files.text(name).splitlines(), 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                fields = line.rsplit(maxsplit=1)
                if len(fields) != 2 or fields[1] not in ("-1", "0", "1"):
                    raise ImportFailed(
                        f"{name}, line {number}: expected '<id> <1|0|-1>', got {line!r}."
                    )
                if fields[1] == "1":
                    tags.setdefault((subset, fields[0]), []).append(label)
        return tags

    # -- Annotations/<id>.xml

    def _annotation(
        self, name: str, item: _Item
    ) -> tuple[str, tuple[int, int] | None, list[ParsedShape]]:
        root = self.files.parse_xml(name)
        if root.tag != "annotation":
            raise ImportFailed(f"{name} is not a PASCAL VOC annotation: its root is <{root.tag}>.")
        ref = item.id + self.images.get(item.id, "")
        filename = root.findtext("filename")
        if filename:
            ref = item.id + posixpath.splitext(filename)[1]
        size = _size(root, name)
        layout = "Layout" in item.tasks
        every = "Main" in item.tasks
        shapes: list[ParsedShape] = []
        for index, element in enumerate(root.iterfind("object"), 1):
            where = f"{name}, object {index}"
            obj, parts, has_actions = self._object(element, where, ref, index)
            if (
                not every
                and not (layout and parts)
                and not ("Action" in item.tasks and has_actions)
            ):
                continue
            if layout:
                shapes += parts
            shapes.append(obj)
        return ref, size, shapes

    def _object(
        self, element: Element, where: str, ref: str, index: int
    ) -> tuple[ParsedShape, list[ParsedShape], bool]:
        label = _required_text(element, "name", where)
        points = _bndbox(element, where)
        attributes: dict[str, str] = {}
        for flag in ("difficult", "truncated", "occluded"):
            attributes[flag] = bool_text(_flag(element, flag, where))
        pose = element.find("pose")
        if pose is not None:
            attributes["pose"] = pose.text or ""
        point = element.find("point")
        if point is not None:
            x = coordinate(point.findtext("x"), f"{where}: <point>/<x>")
            y = coordinate(point.findtext("y"), f"{where}: <point>/<y>")
            attributes["point"] = f"({x}, {y})"
        actions = dict.fromkeys(self.label_map.actions.get(label, ()), False)
        actions_element = element.find("actions")
        if actions_element is not None:
            for action in actions_element:
                actions[action.tag] = _flag(actions_element, action.tag, f"{where}: <actions>")
        attributes.update((action, bool_text(value)) for action, value in actions.items())
        parts = []
        for number, part in enumerate(element.findall("part"), 1):
            part_where = f"{where}, part {number}"
            parts.append(
                ParsedShape(
                    type="rectangle",
                    label=_required_text(part, "name", part_where),
                    points=_bndbox(part, part_where),
                    frame=ref,
                    group=index,
                )
            )
        extra = element.find("attributes")
        if extra is not None:
            for number, attribute in enumerate(extra.iter("attribute"), 1):
                attribute_where = f"{where}, attribute {number}"
                key = _required_text(attribute, "name", attribute_where)
                value = attribute.find("value")
                if value is None:
                    raise ImportFailed(f"{attribute_where} has no <value>.")
                attributes[key] = value.text or ""
        shape = ParsedShape(type="rectangle", label=label, points=points, frame=ref, group=index)
        cvat_attributes(shape, attributes, where)
        return shape, parts, bool(actions)

    # -- SegmentationClass/<id>.png, SegmentationObject/<id>.png

    def _masks(
        self, item_id: str, ref: str, size: tuple[int, int] | None, xml: str
    ) -> list[ParsedShape]:
        class_name = f"{self.root}SegmentationClass/{item_id}.png"
        object_name = f"{self.root}SegmentationObject/{item_id}.png"
        classes: Pixels | None = None
        if class_name in self.files:
            classes = indexed_pixels(
                read_png(self.files, class_name), class_name, self.label_map.colours
            )
            check_size(class_name, classes, size, xml)
        if object_name not in self.files:
            if classes is None:
                return []
            skip = () if self.label_map.background is None else (self.label_map.background,)
            return [
                ParsedShape(
                    type="mask", label=self._class(value, class_name), points=points, frame=ref
                )
                for value, points in value_masks(classes, skip)
            ]
        instances = indexed_pixels(
            read_png(self.files, object_name), object_name, self.instance_colours
        )
        check_size(object_name, instances, size, xml)
        if classes is None:
            raise ImportFailed(
                f"{object_name} has no {class_name} to give its instances their classes."
            )
        if classes.shape != instances.shape:
            raise ImportFailed(
                f"{object_name} is {instances.shape[1]} x {instances.shape[0]} pixels but "
                f"{class_name} is {classes.shape[1]} x {classes.shape[0]}."
            )
        shapes = []
        for instance, points in value_masks(instances, (0,)):
            value = int(classes[instances == instance].max())
            if value == self.label_map.background:
                continue
            label = self._class(value, class_name)
            shapes.append(
                ParsedShape(type="mask", label=label, points=points, frame=ref, group=instance)
            )
        return shapes

    def _class(self, index: int, name: str) -> str:
        if not 0 <= index < len(self.label_map.names):
            raise ImportFailed(
                f"{name} has pixels of class {index}, past the {len(self.label_map.names)} "
                "classes of the label map."
            )
        return self.label_map.names[index]


def cvat_attributes(shape: ParsedShape, attributes: dict[str, str], where: str) -> None:
    """Set a shape's attributes as CVAT's bindings take a datumaro annotation's: `rotation`
    (a number), `occluded` and `outside` (flags), `source` (when it names one) leave the
    attributes; `track_id` stays for the caller and `keyframe` stays too."""
    rotation = attributes.pop("rotation", None)
    if rotation is not None:
        shape.rotation = coordinate(rotation, f"{where}: the rotation")
    occluded = attributes.pop("occluded", None)
    shape.occluded = occluded is not None and to_bool(occluded) is True
    outside = attributes.pop("outside", None)
    shape.outside = outside is not None and to_bool(outside) is True
    source = attributes.get("source", "").lower()
    if source in ("auto", "semi-auto", "manual", "file"):
        del attributes["source"]
        shape.source = "auto" if source == "auto" else "file"
    shape.attributes = attributes


def _size(root: Element, name: str) -> tuple[int, int] | None:
    values = []
    for tag in ("width", "height"):
        text = root.findtext(f"size/{tag}")
        if text is None or not text.strip():
            return None
        try:
            values.append(int(text))
        except ValueError:
            raise ImportFailed(f"{name}: <size>/<{tag}> is not a whole number: {text!r}.") from None
    return (values[0], values[1]) if values[0] > 0 and values[1] > 0 else None


def _required_text(element: Element, tag: str, where: str) -> str:
    text = element.findtext(tag)
    if not text:
        raise ImportFailed(f"{where} has no <{tag}>.")
    return text


def _flag(element: Element, tag: str, where: str) -> bool:
    found = element.find(tag)
    if found is None:
        return False
    if found.text not in ("0", "1"):
        raise ImportFailed(f"{where}: <{tag}> is {found.text!r}, not 0 or 1.")
    return found.text == "1"


def _bndbox(element: Element, where: str) -> list[float]:
    box = element.find("bndbox")
    if box is None or not len(box):
        raise ImportFailed(f"{where} has no <bndbox>.")
    values = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = box.findtext(tag)
        if text is None:
            raise ImportFailed(f"{where} has no <bndbox>/<{tag}>.")
        values.append(coordinate(text, f"{where}: <bndbox>/<{tag}>"))
    left, top, right, bottom = values
    return box_points(left, top, right, bottom)
