"""LabelMe 3.0 (CVAT's importer "LabelMe 3.0").

CVAT 2.80 imports it (cvat/apps/dataset_manager/formats/labelme.py) by reading the
archive with its datumaro fork's `label_me` importer (datumaro/plugins/labelme_format.py:
`LabelMeImporter`, `LabelMeExtractor`) and handing the items to
cvat/apps/dataset_manager/bindings.py (`import_dm_annotations`). The layout and what is
read, as there:

- every `*.xml` in the archive (in path order) is an image's annotation; one in a folder
  belongs to the subset named by its first folder, whose `Masks/` holds its mask PNGs
  (`Masks/` at the top for XMLs at the top). The image is `<folder>/<filename>` of the
  XML (its `folder` and `filename`; the XML's own path without `.xml` when `filename`
  is missing): that path is the frame ref. `imagesize` (`nrows`, `ncols`) is the size
  the mask PNGs must have.
- each `<object>` (`id`, `name`, `deleted`, `occluded`, `parts`, `attributes`, then its
  geometry) that is not deleted (`deleted` 1) is:
  * with `<type>bounding_box</type>` and a `<polygon>`: a rectangle over its points'
    extent, stored as datumaro stores a box ([x, y, x + w, y + h] rounded to 2
    decimals);
  * with a `<polygon>` (`<pt><x/><y/></pt>` points, 3 or more): a polygon, its
    coordinates rounded to 2 decimals;
  * with a `<segm>`: a mask, the pixels of `Masks/<mask>` that are not black and
    transparent (any channel non-zero; a grayscale PNG's non-zero pixels);
  * with neither: nothing (as datumaro).
  The polygon's or segm's `username` is the attribute `username` (CVAT keeps it, "" when
  empty). `occluded` "yes" makes the shape occluded.
- `attributes`: "name=value" pairs separated by commas, escaped as LabelMe and datumaro
  escape them (`\\,` `\\=` `\\"` `\\\\`); a value "true"/"false" (any case) is a flag, a
  double-quoted value is the text inside, a name without "=" is a true flag. As CVAT's
  bindings take them, `rotation` is the shape's rotation, `occluded` and `outside`
  flags leave the attributes, a known `source` (auto, semi-auto, manual, file) is the
  shape's source; `track_id` is dropped (LabelMe is not one of CVAT's track formats, so
  frames of tracks come back as plain shapes, keeping their `keyframe` attribute).
- groups: a part tree (`hasparts` ids on the root object, `ispartof` on its parts) is
  one group, numbered as datumaro numbers them; then, as CVAT's bindings do, groups of
  a single shape are dropped and the rest renumbered 1, 2, ... on each frame.
- Points, polylines, skeletons, cuboids and tags are not in the format.

Where the reader differs from CVAT:
- an object without `id` takes its place among the objects (datumaro fails on it).
- a grayscale mask PNG is read (non-zero pixels); datumaro fails on it. A mask whose
  PNG is not the XML's `imagesize` fails (CVAT would store it as it is).
- boolean attribute values are "true"/"false" (CVAT's `str` gives "True"/"False").
- malformed input fails with `ImportFailed` naming the file and object: XML that does
  not parse or is not an `<annotation>`, an object without a name, a
  polygon of fewer than 3 points, coordinates that are not finite (or beyond
  `tessera.geometry.MAX_COORD`), ids and parts that are not numbers, a missing mask
  PNG, a mask PNG declaring more than `MAX_PNG_PIXELS` pixels (refused from its
  header), part trees that name missing objects.

Memory: one XML and one mask PNG at a time; each PNG is decoded, turned into CVAT's run
lengths and dropped.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element

import numpy as np

from tessera.export.formats.coco import round2
from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.voc import (
    Pixels,
    bool_text,
    box_points,
    check_size,
    coordinate,
    cvat_attributes,
    cvat_groups,
    is_macos_metadata,
    natural_key,
    read_png,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedShape
from tessera.geometry import array_to_cvat_mask

FORMAT: Final = "LabelMe 3.0"
MASKS_DIR: Final = "Masks"

_IMPORT_ESCAPES: Final = (
    ("\\=", "%%{eq}%%"),
    ('\\"', "%%{doublequote}%%"),
    ("\\,", "%%{comma}%%"),
    ("\\\\", "%%{backslash}%%"),
)
_EXPORT_ESCAPES: Final = (("\\", "\\\\"), ("=", "\\="), ('"', '\\"'), (",", "\\,"))


def read_labelme(files: ImportFiles) -> ParsedAnnotations:
    """Read a LabelMe 3.0 upload (see the module's docstring)."""
    names = sorted(
        (
            name
            for name in files.names()
            if name.lower().endswith(".xml") and not is_macos_metadata(name)
        ),
        key=natural_key,
    )
    if not names:
        raise ImportFailed(f"this is not a {FORMAT} upload: no *.xml annotation found.")
    result = ParsedAnnotations()
    for name in names:
        result.shapes += _read_xml(files, name)
    return result


@dataclass
class _Object:
    id: int
    shape: ParsedShape | None
    """None for a deleted object (it still takes part in the part trees)."""
    children: list[int] = field(default_factory=list)
    root: bool = False


def _read_xml(files: ImportFiles, name: str) -> list[ParsedShape]:
    root = files.parse_xml(name)
    if root.tag != "annotation":
        raise ImportFailed(f"{name} is not a LabelMe annotation: its root is <{root.tag}>.")
    subset, _, rest = name.partition("/")
    if not rest:
        subset, rest = "", name
    filename = root.findtext("filename") or ""
    folder = root.findtext("folder") or ""
    ref = posixpath.join(folder, filename) if filename else posixpath.splitext(rest)[0]
    size = _image_size(root, name)
    masks = f"{subset}/{MASKS_DIR}" if subset else MASKS_DIR
    objects: list[_Object] = []
    for index, element in enumerate(root.iter("object")):
        where = f"{name}, object {index + 1}"
        objects.append(_object(files, element, where, index, _Image(ref, masks, size)))
    _assign_groups(objects, name)
    shapes = [obj.shape for obj in objects if obj.shape is not None]
    cvat_groups(shapes)
    return shapes


def _image_size(root: Element, name: str) -> tuple[int, int] | None:
    element = root.find("imagesize")
    if element is None:
        return None
    values = []
    for tag in ("ncols", "nrows"):
        text = element.findtext(tag)
        try:
            values.append(int(text or ""))
        except ValueError:
            raise ImportFailed(f"{name}: <imagesize>/<{tag}> is not a number: {text!r}.") from None
    return (values[0], values[1])


@dataclass(frozen=True)
class _Image:
    ref: str
    masks: str
    """The folder of its mask PNGs."""
    size: tuple[int, int] | None


def _object(files: ImportFiles, element: Element, where: str, index: int, image: _Image) -> _Object:
    obj = _Object(id=_int(element.findtext("id"), f"{where}: <id>", default=index), shape=None)
    parts = element.find("parts")
    if parts is not None:
        children = _ids(parts.findtext("hasparts"), f"{where}: <hasparts>")
        parents = _ids(parts.findtext("ispartof"), f"{where}: <ispartof>")
        obj.children = children
        obj.root = bool(children) and not parents
    deleted = element.findtext("deleted")
    if deleted and _int(deleted, f"{where}: <deleted>", default=0):
        return obj
    ref = image.ref
    label = element.findtext("name")
    if not label:
        raise ImportFailed(f"{where} has no <name>.")
    attributes = dict(_attributes(element.findtext("attributes") or ""))
    attributes["occluded"] = bool_text(element.findtext("occluded") == "yes")
    polygon = element.find("polygon")
    segm = element.find("segm")
    if polygon is not None:
        attributes["username"] = polygon.findtext("username") or ""
        points = _points(polygon, where)
        if element.findtext("type") == "bounding_box":
            if not points:
                raise ImportFailed(f"{where} is a bounding box without points.")
            xs, ys = points[0::2], points[1::2]
            shape = ParsedShape(
                type="rectangle",
                label=label,
                points=box_points(min(xs), min(ys), max(xs), max(ys)),
                frame=ref,
            )
        else:
            if len(points) < 6:
                raise ImportFailed(f"{where} is a polygon of {len(points) // 2} points, not 3.")
            rounded = [round2(value) for value in points]
            shape = ParsedShape(type="polygon", label=label, points=rounded, frame=ref)
    elif segm is not None:
        attributes["username"] = segm.findtext("username") or ""
        mask_name = segm.findtext("mask")
        if not mask_name:
            raise ImportFailed(f"{where} has a <segm> without <mask>.")
        path = posixpath.normpath(posixpath.join(image.masks, mask_name))
        if path not in files:
            raise ImportFailed(f"{where}: its mask {path} is not in the upload.")
        pixels = _mask_pixels(files, path)
        check_size(path, pixels, image.size, "its XML's <imagesize>")
        if not pixels.any():
            return obj  # an empty mask is no shape
        points = [float(v) for v in array_to_cvat_mask(pixels)]
        shape = ParsedShape(type="mask", label=label, points=points, frame=ref)
    else:
        return obj  # no geometry: datumaro makes nothing of it
    attributes.pop("track_id", None)
    cvat_attributes(shape, attributes, where)
    obj.shape = shape
    return obj


def _mask_pixels(files: ImportFiles, name: str) -> Pixels:
    image = read_png(files, name)
    if image.mode in ("RGB", "RGBA", "LA", "L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image)
    else:
        pixels = np.asarray(image.convert("RGBA"))
    found: Pixels = np.asarray(pixels.any(axis=2) if pixels.ndim == 3 else pixels != 0)
    return found


def _points(polygon: Element, where: str) -> list[float]:
    points = []
    for number, point in enumerate(polygon.iter("pt"), 1):
        points.append(coordinate(point.findtext("x"), f"{where}: point {number}'s <x>"))
        points.append(coordinate(point.findtext("y"), f"{where}: point {number}'s <y>"))
    return points


def _int(text: str | None, where: str, *, default: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise ImportFailed(f"{where} is not a whole number: {text!r}.") from None


def _ids(text: str | None, where: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ImportFailed(f"{where} is not a list of object ids: {text!r}.") from None


def _assign_groups(objects: list[_Object], name: str) -> None:
    """datumaro's part trees: each root object (with parts, part of nothing) starts a
    group that its parts, and theirs, join."""
    by_id = {obj.id: obj for obj in objects}
    groups: dict[int, int] = {}
    roots = list(dict.fromkeys(obj.id for obj in objects if obj.root))
    group = 0
    pending = list(roots)
    while pending:
        obj_id = pending.pop()
        if obj_id in groups:
            continue
        obj = by_id.get(obj_id)
        if obj is None:
            raise ImportFailed(f"{name}: a part tree names object {obj_id}, which is not there.")
        if obj_id in roots:
            group += 1
        groups[obj_id] = group
        pending.extend(obj.children)
    for obj in objects:
        if obj.shape is not None:
            obj.shape.group = groups.get(obj.id, 0)


def _attributes(text: str) -> Iterator[tuple[str, str]]:
    """datumaro's `_parse_attributes` of an `<attributes>` text, values as CVAT stores
    them (flags "true"/"false")."""
    for pair in (part.strip() for part in _replace(text, _IMPORT_ESCAPES).split(",")):
        if not pair:
            continue
        if "=" not in pair:
            yield _unescape(pair), "true"
            continue
        key, value = pair.split("=", 1)
        if value.lower() in ("true", "false"):
            yield _unescape(key), value.lower()
            continue
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        yield _unescape(key), _unescape(value)


def _replace(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for pattern, substitute in escapes:
        text = text.replace(pattern, substitute)
    return text


def _unescape(text: str) -> str:
    for pattern, substitute in _IMPORT_ESCAPES:
        text = text.replace(substitute, pattern)
    for pattern, substitute in _EXPORT_ESCAPES:
        text = text.replace(substitute, pattern)
    return text
