"""Market-1501 1.0 import, as CVAT 2.80 reads it.

CVAT imports it with `Dataset.import_from(dir, "market1501")` (the datumaro fork's
datumaro/plugins/market1501_format.py, `Market1501Extractor`), then turns each item's
attributes into a tag of the label `market-1501` (cvat/apps/dataset_manager/formats/
market1501.py, `AttrToLabelAttr`). The annotations are the image names. The layout, at the
archive's root (as `formats/market1501.py` writes it, and as the Market-1501 dataset is
laid out):

- `images_<subset>.txt`: one image path a line (`bounding_box_test/0001_c1s1_001051_00.jpg`,
  `query/0001_c2s3_000111_00.jpg`);
- `bounding_box_<subset>/` and `query*/` folders of images (read when the upload holds
  the images).

What is read: each image path, once (a path both listed and present as an image is read
once, the lists first). Its item id is the path without its first folder and extension;
when the file name reads as a Market-1501 name, `<person>_c<camera>s<track>_<frame>_<box>`
then anything, the image gets a tag `market-1501` with the attributes `person_id` (as
written, "0001"), `camera_id` (the camera number less 1, as CVAT counts cameras from 0),
`track_id`, `frame_id`, `bbox_id` (as numbers, "151") and `query` ("true" for an image in
`query/`, else "false"); anything after the box number replaces the name in the item id
(the fork's custom names). An image whose name does not read so gets no tag. The frame
ref is the item id with the image's extension (`0001_c1s1_001051_00.jpg`).
`ParsedAnnotations.labels` is `["market-1501"]`.

Where the reader differs from CVAT:
- `query` is "true" for a listed path in `query/` too (the fork sets it only for images
  found in the `query/` folder, so a list-only upload, which is what CVAT exports without
  images, loses it);
- checkbox values are "true"/"false" (CVAT writes Python's "True"/"False");
- a list path without a folder is read as a name at the root (the fork fails), blank
  lines are skipped, and only `images_*.txt` lists are read (the fork reads any
  `images_*` file).

Hostile or malformed input fails with `ImportFailed` naming the file and line: no list
nor image folder ("not a Market-1501 upload"), an absolute path or one leaving the
upload, numbers too long to read.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.yolo import is_image, is_metadata, not_found
from tessera.export.imports.model import ParsedAnnotations, ParsedTag

FORMAT: Final = "Market-1501 1.0"
MARKET_LABEL: Final = "market-1501"
LIST_PREFIX: Final = "images_"
BBOX_PREFIX: Final = "bounding_box_"
QUERY_DIR: Final = "query"
NAME_PATTERN: Final = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)(.*)")
"""A Market-1501 image name: person, camera, sequence (track), frame, box, the rest."""


def read_market1501(files: ImportFiles) -> ParsedAnnotations:
    """Read a Market-1501 upload: a `market-1501` tag per image whose name carries a
    person, camera, track, frame and box.

    Raises ImportFailed when the upload has no list or image folder, or a malformed path.
    """
    names = [name for name in files.names() if not is_metadata(name)]
    lists = [
        name
        for name in names
        if "/" not in name and name.startswith(LIST_PREFIX) and name.lower().endswith(".txt")
    ]
    images = [
        name
        for name in names
        if "/" in name and name.startswith((BBOX_PREFIX, QUERY_DIR)) and is_image(name)
    ]
    if not lists and not images:
        raise not_found(FORMAT, f"{LIST_PREFIX}<subset>.txt, {BBOX_PREFIX}<subset>/ or query/")
    out = ParsedAnnotations(labels=[MARKET_LABEL])
    seen: set[str] = set()

    def add(path: str, where: str) -> None:
        tag = _tag(path, where)
        if tag is not None and str(tag.frame) not in seen:
            seen.add(str(tag.frame))
            out.tags.append(tag)

    for member in lists:
        for number, line in enumerate(files.text(member).splitlines(), start=1):
            if line.strip():
                add(line.strip(), f"{member} line {number}")
    for name in images:
        add(name, name)
    return out


def _tag(path: str, where: str) -> ParsedTag | None:
    """The tag of one image path (None for a path without a Market-1501 name)."""
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        raise ImportFailed(f"{where}: the image path {path!r} is absolute or leads out")
    stem, ext = posixpath.splitext(normal)
    folder, _, item = stem.partition("/")
    if not item:
        folder, item = "", stem
    match = NAME_PATTERN.search(posixpath.basename(item))
    if match is None:
        return None
    person, camera, track, frame, box, custom = match.groups()
    if custom:
        item = posixpath.join(posixpath.dirname(item), custom)
    try:
        attributes = {
            "person_id": person,
            "camera_id": str(int(camera) - 1),
            "track_id": str(int(track)),
            "frame_id": str(int(frame)),
            "bbox_id": str(int(box)),
        }
    except ValueError:
        raise ImportFailed(f"{where}: the numbers of {path!r} are too long") from None
    attributes["query"] = "true" if folder.startswith(QUERY_DIR) else "false"
    return ParsedTag(label=MARKET_LABEL, frame=item + ext, attributes=attributes)
