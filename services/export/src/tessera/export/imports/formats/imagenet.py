"""ImageNet 1.0 import, as CVAT 2.80 reads it.

CVAT's importer (cvat/apps/dataset_manager/formats/imagenet.py) reads one of two datumaro
layouts (the fork's datumaro/plugins/imagenet_txt_format.py and imagenet_format.py): the
text one when the archive's root has a `.txt` file, else the folder one. CVAT's exporter
writes the text layout without images and the folder layout with them (see
`formats/imagenet.py`).

Text layout (`ImagenetTxtExtractor`), under the folder of the shallowest `synsets.txt`:
- `synsets.txt`: one label name a line; label `i` is the `i`-th line.
- every other `.txt` file beside it is a subset's list: one image a line,
  `<image> <label indices>` (`img0.jpg 0 3`), or with the name quoted when it holds
  whitespace (`"my image".jpg 1`: the name in quotes, then the extension). Each index
  gives a tag of that label on the frame ref `<image>` (the image's name with its
  extension, as the line gives it); a line without indices gives nothing.

Folder layout (`ImagenetExtractor`): `<label>/<image>` at the archive's root, one copy of
an image per tag; `no_label/` holds the images without one. Each image gives a tag of its
folder's label on the frame ref of its path below that folder (`img0.jpg`).

`ParsedAnnotations.labels`: the names of `synsets.txt`, or the label folders, sorted.

Where the reader differs from CVAT:
- the text layout may sit in a folder of the archive (CVAT takes an archive without a
  `.txt` at its root for the folder layout, and finds nothing in it);
- the folder layout reads images deeper than `<label>/<image>` (CVAT's own export of a
  frame named `seq/img2.jpg` puts it at `<label>/seq/img2.jpg`, which CVAT does not find),
  with the label the first folder;
- blank lines are skipped (CVAT fails on them).

Hostile or malformed input fails with `ImportFailed` naming the file and line: neither
layout ("not an ImageNet upload"), a `.txt` list at the root without `synsets.txt`, more
than one quoted name on a line, an index that is not a number, negative or past
`synsets.txt` (or on a blank line of it).
"""

from __future__ import annotations

import posixpath
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.yolo import is_image, is_metadata, not_found, shallowest
from tessera.export.imports.model import ParsedAnnotations, ParsedTag

FORMAT: Final = "ImageNet 1.0"
LABELS_MEMBER: Final = "synsets.txt"
NO_LABEL_DIR: Final = "no_label"


def read_imagenet(files: ImportFiles) -> ParsedAnnotations:
    """Read an ImageNet upload: tags from its subset lists and `synsets.txt`, or from its
    label folders.

    Raises ImportFailed when the upload has neither layout, or a malformed list.
    """
    names = [name for name in files.names() if not is_metadata(name)]
    if any(posixpath.basename(name) == LABELS_MEMBER for name in names):
        return _read_lists(files, shallowest(files, LABELS_MEMBER, FORMAT))
    lists = [name for name in names if "/" not in name and name.lower().endswith(".txt")]
    if lists:
        raise not_found(FORMAT, f"{LABELS_MEMBER} (the label names of {lists[0]})")
    return _read_folders(names)


def _read_lists(files: ImportFiles, synsets: str) -> ParsedAnnotations:
    labels = [line.strip() for line in files.text(synsets).splitlines()]
    out = ParsedAnnotations(labels=[label for label in labels if label])
    root = posixpath.dirname(synsets)
    for member in files.names():
        if (
            posixpath.dirname(member) != root
            or member == synsets
            or not member.lower().endswith(".txt")
            or is_metadata(member)
        ):
            continue
        for number, line in enumerate(files.text(member).splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{member} line {number}"
            image, indices = _line(line, where)
            for index in indices:
                if not 0 <= index < len(labels) or not labels[index]:
                    raise ImportFailed(
                        f"{where}: label {index} is not one of the labels of {synsets}"
                    )
                out.tags.append(ParsedTag(label=labels[index], frame=image))
    return out


def _line(line: str, where: str) -> tuple[str, list[int]]:
    """The fork's `_parse_annotation_line`: the image's name and the label indices."""
    parts = line.split('"')
    if len(parts) > 1:
        if len(parts) != 3:
            raise ImportFailed(f"{where}: the quotes of the image's name do not pair up")
        rest = parts[2].split()
        image = parts[1] + (rest[0] if rest else "")
        given = rest[1:]
    else:
        fields = line.split()
        image, given = fields[0], fields[1:]
    indices: list[int] = []
    for value in given:
        try:
            indices.append(int(value))
        except ValueError:
            raise ImportFailed(f"{where}: the label index {value!r} is not a number") from None
    return image, indices


def _read_folders(names: list[str]) -> ParsedAnnotations:
    out = ParsedAnnotations()
    labels: set[str] = set()
    found = False
    for name in names:
        label, _, image = name.partition("/")
        if not image or not is_image(image):
            continue
        found = True
        if label != NO_LABEL_DIR:
            labels.add(label)
            out.tags.append(ParsedTag(label=label, frame=image))
    if not found:
        raise not_found(FORMAT, f"{LABELS_MEMBER} or <label>/<image>")
    out.labels = sorted(labels)
    return out
