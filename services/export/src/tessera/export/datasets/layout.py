"""What a dataset import makes of an upload once its format's reader has read it: the
tasks (one per subset), the images each takes and the names they get there, and the
annotations of each.

Items: the reader's (`ParsedAnnotations.items`: frame ref, subset, image member where it
knows it); an item whose member the reader does not give is looked up among the upload's
images (`ImageIndex.find`: the image whose path without extension is the ref's, or ends
with it after a "/"; one of the same extension first, then one whose exact path it is,
then one in a folder named after the subset). A reader that lists no items (a format
whose files do not list their images) has the images its annotations name, with every
other image of their folders, as items of no subset.

Subsets: an item's subset, "default" when it has none (as datumaro names it); a subset
is a task of that name and `subset`. Its media are its items' images, each once (two
items of one image are one frame), named as CVAT names them (`media_names`): their
paths below the root common to the items' images once the items' ids are cut off.

Annotations go to the subset their shape or tag carries, on the frame of the item their
ref names there (a number: the image that the file's `frame_names` gives it, or
`frame_<n>`; a `Position`: the task's frame at that place, matched later); a track's
shapes split by subset into a track per subset. Each frame ref becomes the task file name
of its image (`SubsetPlan.annotations`); once ingest has made the task, `number_frames`
turns them into the task's frame numbers.

An item without an image, or an annotation on no item's image, fails the import (CVAT
cannot match such an item to a frame of the task it makes, and fails too).
"""

from __future__ import annotations

import posixpath
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.yolo import is_image, is_metadata
from tessera.export.imports.model import (
    FrameRef,
    ParsedAnnotations,
    ParsedItem,
    ParsedShape,
    ParsedTrack,
    Position,
)
from tessera.platform.contracts.ingest import VIDEO_FRAME_NAME

DEFAULT_SUBSET = "default"
"""The subset of an item that has none (datumaro's `DEFAULT_SUBSET_NAME`)."""
MAX_SUBSET = 64
"""The longest subset name a task takes."""
BACKGROUND = "background"
"""The label CVAT drops, rather than refusing the import, when the project lacks it."""
_EXAMPLES = 5
_COPY_BLOCK = 2**20
_ZIP64_FROM = 2**31


def subset_of(raw: str) -> str:
    """The task (and subset) name of a reader's subset."""
    return raw.strip() or DEFAULT_SUBSET


def _normal(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/")


def _key(ref: str) -> str:
    """A ref as it is looked up among images: normalised, without an image extension."""
    path = _normal(ref)
    return posixpath.splitext(path)[0] if is_image(path) else path


def _stem(member: str) -> str:
    return posixpath.splitext(member)[0]


def _examples(values: Iterable[str]) -> str:
    listed = list(values)
    more = f" and {len(listed) - _EXAMPLES} more" if len(listed) > _EXAMPLES else ""
    return ", ".join(listed[:_EXAMPLES]) + more


class ImageIndex:
    """The images of an upload (members with an image's extension, macOS metadata left
    out), found by the refs a file gives."""

    def __init__(self, files: ImportFiles) -> None:
        self._files = files
        self.members = [name for name in files.names() if is_image(name) and not is_metadata(name)]
        self._by_name: dict[str, list[str]] = {}
        for member in self.members:
            self._by_name.setdefault(posixpath.basename(_stem(member)), []).append(member)
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def candidates(self, ref: str, subset: str = "") -> list[str]:
        """The images `ref` may name, the likeliest first (see the module's docstring)."""
        key = _key(ref)
        found = [
            member
            for member in self._by_name.get(posixpath.basename(key), ())
            if _stem(member) == key or _stem(member).endswith("/" + key)
        ]
        extension = posixpath.splitext(_normal(ref))[1].lower()
        if len(found) > 1 and extension:
            found = [m for m in found if m.lower().endswith(extension)] or found
        if len(found) > 1:
            found = [m for m in found if _stem(m) == key] or found
        if len(found) > 1 and subset:
            found = [m for m in found if subset in m.split("/")[:-1]] or found
        return found

    def find(self, ref: str, subset: str = "") -> str | None:
        """The one image `ref` names (preferring the subset's folder), or None."""
        found = self.candidates(ref, subset)
        return found[0] if len(found) == 1 else None

    def size(self, ref: str) -> tuple[int, int] | None:
        """(width, height) of the image `ref` names, when it names one, or several of one
        size (a reader of coordinates relative to the image asks; its header is read)."""
        sizes = {self._size_of(member) for member in self.candidates(ref)}
        if len(sizes) != 1:
            return None
        return sizes.pop()

    def _size_of(self, member: str) -> tuple[int, int] | None:
        if member not in self._sizes:
            try:
                with self._files.open(member) as stream, Image.open(stream) as image:
                    self._sizes[member] = image.size
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                    Image.DecompressionBombError):  # fmt: skip
                self._sizes[member] = None
        return self._sizes[member]


@dataclass
class SubsetPlan:
    """One task to make: its name (and subset), its images (task file name -> the upload's
    member, in item order) and its annotations, their frames the task file names."""

    name: str
    media: dict[str, str]
    annotations: ParsedAnnotations = field(default_factory=ParsedAnnotations)


def dataset_labels(parsed: ParsedAnnotations) -> list[str]:
    """The labels of a dataset, in order: those it declares, then any other its shapes,
    tags and tracks use."""
    names = dict.fromkeys(parsed.labels)
    for objects in (parsed.shapes, parsed.tags, parsed.tracks):
        names.update(dict.fromkeys(obj.label for obj in objects))
    return list(names)


def drop_label(parsed: ParsedAnnotations, label: str) -> None:
    """Leave a label out of the dataset, with its annotations."""
    parsed.labels = [name for name in parsed.labels if name != label]
    parsed.shapes = [shape for shape in parsed.shapes if shape.label != label]
    parsed.tags = [tag for tag in parsed.tags if tag.label != label]
    parsed.tracks = [track for track in parsed.tracks if track.label != label]


def plan(parsed: ParsedAnnotations, images: ImageIndex, files: ImportFiles) -> list[SubsetPlan]:
    """The tasks to make of the dataset, in the order of their subsets' first items;
    ImportFailed for an item without an image, an annotation on no item, a subset name a
    task does not take, or a dataset without images."""
    items = parsed.items or _items_of_annotations(parsed, images)
    where: dict[tuple[str, str], str] = {}
    members: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for item in items:
        subset = subset_of(item.subset)
        image = item.image if item.image is not None and item.image in files else None
        member = image or images.find(item.name, item.subset)
        if member is None:
            missing.append(f"{item.name!r} of subset {subset!r}")
            continue
        where.setdefault((subset, item.name), member)
        members.setdefault(subset, {}).setdefault(member, item.name)
    if missing:
        raise ImportFailed(
            f"The archive has no image (or more than one) for {len(missing)} items of the "
            f"dataset: {_examples(missing)}. A dataset import makes tasks of the items' "
            "images, so each item needs its own."
        )
    if not members:
        raise ImportFailed("The archive has no images of the dataset to make tasks of.")
    long = [subset for subset in members if len(subset) > MAX_SUBSET]
    if long:
        raise ImportFailed(
            f"The subset {long[0][:80]!r} has a name longer than {MAX_SUBSET} characters, "
            "which a task's subset cannot have."
        )
    plans = {subset: SubsetPlan(subset, media_names(named)) for subset, named in members.items()}
    names = {
        subset: {member: name for name, member in found.media.items()}
        for subset, found in plans.items()
    }
    _Placer(parsed, images, where, names, plans).place()
    return list(plans.values())


def _items_of_annotations(parsed: ParsedAnnotations, images: ImageIndex) -> list[ParsedItem]:
    """Items for a reader that lists none: the images the annotations name, and every other
    image of their folders, of no subset."""
    named: set[str] = set()
    for ref, subset in _refs(parsed):
        if isinstance(ref, Position):
            continue
        member = images.find(_named(ref, parsed), subset)
        if member is not None:
            named.add(member)
    folders = {posixpath.dirname(member) for member in named}
    return [
        ParsedItem(member, "", member)
        for member in images.members
        if posixpath.dirname(member) in folders
    ]


def _refs(parsed: ParsedAnnotations) -> Iterable[tuple[FrameRef, str]]:
    for shape in parsed.shapes:
        yield shape.frame, shape.subset
    for tag in parsed.tags:
        yield tag.frame, tag.subset
    for track in parsed.tracks:
        for part in (track, *track.elements):
            for shape in part.shapes:
                yield shape.frame, shape.subset


def _named(ref: str | int, parsed: ParsedAnnotations) -> str:
    """The image name a frame ref gives: a number's from the file's `frame_names`, else as
    CVAT names a video's frames."""
    if isinstance(ref, int):
        return parsed.frame_names.get(ref) or VIDEO_FRAME_NAME.format(ref)
    return ref


def media_names(named: Mapping[str, str]) -> dict[str, str]:
    """Task file names of a subset's images (member -> the name of an item of it), as
    CVAT's `add_task` names them: the image paths below the root common to every item
    whose image path ends with its id (the item's name without an image extension), that
    id cut off; a name -> member map, in the items' order. Names that would collide keep
    their whole paths."""
    prefixes: set[str] = set()
    for member, name in named.items():
        item_id, stem = _key(name), _stem(member)
        if item_id and (stem == item_id or stem.endswith("/" + item_id)):
            prefixes.add(stem[: len(stem) - len(item_id)].rstrip("/"))
    root = posixpath.commonpath(sorted(prefixes)) if prefixes else ""
    cut = f"{root}/" if root else ""
    names = {(member[len(cut) :] if member.startswith(cut) else member): member for member in named}
    if len(names) < len(named):
        return {member: member for member in named}
    return names


class _Placer:
    """Puts each annotation in its subset's plan, on its task file name."""

    def __init__(
        self,
        parsed: ParsedAnnotations,
        images: ImageIndex,
        where: Mapping[tuple[str, str], str],
        names: Mapping[str, Mapping[str, str]],
        plans: Mapping[str, SubsetPlan],
    ) -> None:
        self._parsed = parsed
        self._images = images
        self._where = where
        self._names = names
        self._plans = plans
        self._unplaced: dict[str, None] = {}

    def place(self) -> None:
        parsed = self._parsed
        for shape in parsed.shapes:
            subset = self._put(shape)
            if subset is not None:
                self._plans[subset].annotations.shapes.append(shape)
        for tag in parsed.tags:
            at = self._frame(tag.frame, tag.subset)
            if at is not None:
                tag.frame = at[1]
                self._plans[at[0]].annotations.tags.append(tag)
        for track in parsed.tracks:
            for subset, part in self._split(track).items():
                self._plans[subset].annotations.tracks.append(part)
        if self._unplaced:
            raise ImportFailed(
                f"Annotations of {len(self._unplaced)} frames are on no image of the "
                f"dataset's items: {_examples(self._unplaced)}."
            )
        for found in self._plans.values():
            found.annotations.labels = list(parsed.labels)

    def _put(self, shape: ParsedShape) -> str | None:
        """Move the shape (and its elements) to its task file name; its subset."""
        at = self._frame(shape.frame, shape.subset)
        if at is None:
            return None
        subset, frame = at
        shape.frame = frame
        for element in shape.elements:
            element.frame = frame
        return subset

    def _split(self, track: ParsedTrack) -> dict[str, ParsedTrack]:
        """A track's shapes by subset, each part a track of its own."""
        parts: dict[str, ParsedTrack] = {}
        for shape in track.shapes:
            subset = self._put(shape)
            if subset is None:
                continue
            if subset not in parts:
                parts[subset] = ParsedTrack(
                    track.label, [], track.group, dict(track.attributes), [], track.source
                )
            parts[subset].shapes.append(shape)
        for element in track.elements:
            pieces: dict[str, list[ParsedShape]] = {}
            for shape in element.shapes:
                subset = self._put(shape)
                if subset is not None:
                    pieces.setdefault(subset, []).append(shape)
            for subset, shapes in pieces.items():
                if subset in parts:
                    parts[subset].elements.append(
                        ParsedTrack(element.label, shapes, element.group,
                                    dict(element.attributes), [], element.source)
                    )  # fmt: skip
        return parts

    def _frame(self, ref: FrameRef, raw_subset: str) -> tuple[str, FrameRef] | None:
        """(subset, the task file name or `Position`) of a frame ref; None, remembered,
        when it is on no image of the subset's items."""
        subset = subset_of(raw_subset)
        names = self._names.get(subset)
        if names is not None:
            if isinstance(ref, Position):
                return subset, ref
            name = _named(ref, self._parsed)
            member = self._where.get((subset, name)) or self._images.find(name, raw_subset)
            if member is not None and member in names:
                return subset, names[member]
        self._unplaced[f"{ref} of subset {subset!r}"] = None
        return None


def number_frames(annotations: ParsedAnnotations, numbers: Mapping[str, int]) -> None:
    """Turn the task file names of a plan's annotations into the task's frame numbers
    (ingest's names, in frame order); ImportFailed for a name the task lacks."""

    def number(ref: FrameRef) -> FrameRef:
        if not isinstance(ref, str):
            return ref
        found = numbers.get(ref)
        if found is None:
            raise ImportFailed(f"The task made of the dataset has no frame named {ref!r}.")
        return found

    for shape in annotations.shapes:
        shape.frame = number(shape.frame)
        for element in shape.elements:
            element.frame = shape.frame
    for tag in annotations.tags:
        tag.frame = number(tag.frame)
    for track in annotations.tracks:
        for part in (track, *track.elements):
            for shape in part.shapes:
                shape.frame = number(shape.frame)


def write_media(files: ImportFiles, plan: SubsetPlan, target: Path) -> Path:
    """A zip archive of the plan's images under their task file names (stored: images do
    not shrink); `target`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name, member in plan.media.items():
            large = files.size(member) >= _ZIP64_FROM
            try:
                with (
                    files.open(member) as source,
                    archive.open(name, "w", force_zip64=large) as out,
                ):
                    shutil.copyfileobj(source, out, _COPY_BLOCK)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ImportFailed(f"The archive member {member!r} is damaged: {exc}") from None
    return target
