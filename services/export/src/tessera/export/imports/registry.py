"""The formats Tessera imports, by CVAT's importer names: `GET /api/server/annotation/formats`
lists them and an import's `?format=` picks one (case-insensitive, as CVAT matches).

Each importer is a reader (`tessera.export.imports.formats`) of the upload's files and,
for the formats that need something of the task (YOLO's coordinates are relative to the
image; Ultralytics Pose names no points), a `ReadContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tessera.export.formats.coco import skeleton_graph
from tessera.export.imports.files import ImportFiles
from tessera.export.imports.formats import (
    cityscapes,
    coco,
    cvat_xml,
    datumaro,
    imagenet,
    kitti,
    labelme,
    market1501,
    mot,
    mots,
    segmentation_mask,
    ultralytics,
    voc,
    yolo,
)
from tessera.export.imports.model import ParsedAnnotations
from tessera.export.snapshot_dataset import convert_label
from tessera.platform.contracts.annotations import SnapshotLabel
from tessera.platform.errors import bad_request

Dimension = Literal["2d", "3d"]
FrameSizes = Callable[[str], tuple[int, int] | None]
"""An image path as a file names it -> the task frame's (width, height), None if none."""


@dataclass
class ReadContext:
    """What a reader may ask of the task: frame sizes by the names a file gives (the
    names the task does not have are kept, for the import's report) and the point
    names of its skeletons, in the order of their svg."""

    sizes: FrameSizes
    skeleton_points: Mapping[str, Sequence[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def frame_size(self, name: str) -> tuple[int, int] | None:
        """The frame's size, remembering names that match no frame."""
        size = self.sizes(name)
        if size is None:
            self.missing.append(name)
        return size


def skeleton_points(labels: Sequence[SnapshotLabel]) -> dict[str, list[str]]:
    """Each skeleton label's point names, in the order of its svg (CVAT's)."""
    return {
        label.name: list(skeleton_graph(convert_label(label))[0])
        for label in labels
        if label.type == "skeleton"
    }


Reader = Callable[[ImportFiles, ReadContext], ParsedAnnotations]


@dataclass(frozen=True)
class ImportFormat:
    """One importer as `/api/server/annotation/formats` lists it, and how it reads."""

    name: str
    version: str
    read: Reader
    ext: str = "ZIP"
    dimensions: frozenset[Dimension] = frozenset({"2d"})
    tracks_listed_per_frame: bool = True
    """Whether the format lists a track's every frame (CVAT infers the keyframes, as for
    every format datumaro reads) rather than its keyframes (CVAT XML)."""


def _files_only(reader: Callable[[ImportFiles], ParsedAnnotations]) -> Reader:
    """A reader that needs nothing of the task."""

    def read(files: ImportFiles, context: ReadContext) -> ParsedAnnotations:
        del context
        return reader(files)

    return read


def _sized(reader: Callable[[ImportFiles, FrameSizes], ParsedAnnotations]) -> Reader:
    """A reader of coordinates relative to the image."""

    def read(files: ImportFiles, context: ReadContext) -> ParsedAnnotations:
        return reader(files, context.frame_size)

    return read


def _pose(files: ImportFiles, context: ReadContext) -> ParsedAnnotations:
    return ultralytics.read_ultralytics_pose(
        files, context.frame_size, skeleton_points=context.skeleton_points
    )


IMPORTERS: tuple[ImportFormat, ...] = (
    ImportFormat("CVAT 1.1", "1.1", _files_only(cvat_xml.read_cvat), ext="XML, ZIP",
                 tracks_listed_per_frame=False),
    ImportFormat("COCO 1.0", "1.0", _files_only(coco.read_coco), ext="JSON, ZIP"),
    ImportFormat("COCO Keypoints 1.0", "1.0", _files_only(coco.read_coco_keypoints),
                 ext="JSON, ZIP"),
    ImportFormat("Datumaro 1.0", "1.0", _files_only(datumaro.read_datumaro), ext="JSON, ZIP"),
    ImportFormat("YOLO 1.1", "1.1", _sized(yolo.read_yolo)),
    ImportFormat("Ultralytics YOLO Detection 1.0", "1.0",
                 _sized(ultralytics.read_ultralytics_detection)),
    ImportFormat("Ultralytics YOLO Segmentation 1.0", "1.0",
                 _sized(ultralytics.read_ultralytics_segmentation)),
    ImportFormat("Ultralytics YOLO Pose 1.0", "1.0", _pose),
    ImportFormat("Ultralytics YOLO Oriented Bounding Boxes 1.0", "1.0",
                 _sized(ultralytics.read_ultralytics_obb)),
    ImportFormat("Ultralytics YOLO Classification 1.0", "1.0",
                 _files_only(ultralytics.read_ultralytics_classification)),
    ImportFormat("PASCAL VOC 1.1", "1.1", _files_only(voc.read_voc)),
    ImportFormat("Segmentation mask 1.1", "1.1",
                 _files_only(segmentation_mask.read_segmentation_mask)),
    ImportFormat("Cityscapes 1.0", "1.0", _files_only(cityscapes.read_cityscapes)),
    ImportFormat("MOT 1.1", "1.1", _files_only(mot.read_mot)),
    ImportFormat("MOTS PNG 1.0", "1.0", _files_only(mots.read_mots)),
    ImportFormat("KITTI 1.0", "1.0", _files_only(kitti.read_kitti)),
    ImportFormat("LabelMe 3.0", "3.0", _files_only(labelme.read_labelme)),
    ImportFormat("ImageNet 1.0", "1.0", _files_only(imagenet.read_imagenet)),
    ImportFormat("Market-1501 1.0", "1.0", _files_only(market1501.read_market1501)),
)  # fmt: skip

_BY_NAME = {importer.name.casefold(): importer for importer in IMPORTERS}


def importer_named(name: str) -> ImportFormat | None:
    """The importer of that name (case-insensitive), if Tessera has it."""
    return _BY_NAME.get(name.strip().casefold())


def known_format(name: str) -> str:
    """The importer's own name for the format a request names (400 naming `format` for
    one Tessera does not read)."""
    importer = importer_named(name)
    if importer is None:
        raise bad_request(
            f"Unknown import format {name!r}; GET /api/server/annotation/formats lists the "
            "importers.",
            "format",
        )
    return importer.name
