"""The export formats Tessera writes, by CVAT's names: `GET /api/server/annotation/formats`
lists them and `?format=` picks one.

Each format is a writer (`async def write(dataset, archive, options)`), the task
dimensions it takes, and where an original image goes in the archive when the user asks
for `save_images` (the format's own layout, an `ImageLayout` made for each export: some
formats copy an image into a folder per tag, and name copies apart as they go; a point
cloud format's `PointCloudLayout` also places the frame's context images). The CVAT
XML formats (and Sly Point Cloud, for the task's dates) also get the task's meta block
(`CvatTaskMeta`) that the export service fills.
"""

from __future__ import annotations

import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tessera.export.formats import (
    cityscapes,
    coco,
    datumaro,
    imagenet,
    kitti,
    kitti_raw,
    labelme,
    market1501,
    mot,
    mots,
    segmentation_mask,
    sly_pointcloud,
    ultralytics,
    voc,
    yolo,
)
from tessera.export.formats.cvat_images import write_cvat_images
from tessera.export.formats.cvat_video import write_cvat_video
from tessera.export.formats.cvat_xml import CvatTaskMeta
from tessera.export.formats.kitti_raw import ItemIds
from tessera.export.model import Dataset, ExportOptions, FrameAnnotations, FrameInfo, TaskInfo

Dimension = Literal["2d", "3d"]
Writer = Callable[[Dataset, zipfile.ZipFile, ExportOptions], Awaitable[None]]
ContextImages = Sequence[tuple[str, bytes]]
"""A frame's context images as ingest serves them: `(name, data)`."""


class ImageLayout(Protocol):
    """Where an export's images go in its archive, asked frame by frame in write order."""

    def paths(self, item: FrameAnnotations, task: TaskInfo, subset: str) -> list[str]:
        """The archive paths of the frame's image (several where the format copies an
        image into each of its tags' folders)."""

    def close(self) -> None:
        """Release what the layout holds."""


class CvatWriter(Protocol):
    """A CVAT XML writer: a writer that also takes the task's meta block."""

    async def __call__(
        self,
        dataset: Dataset,
        archive: zipfile.ZipFile,
        options: ExportOptions,
        *,
        meta: CvatTaskMeta | None = None,
    ) -> None:
        """Write the archive's members."""


@dataclass(frozen=True)
class ExportFormat:
    """One exporter as `/api/server/annotation/formats` lists it, and how it writes."""

    name: str
    version: str
    image_layout: Callable[[], ImageLayout]
    writer: Writer | None = None
    cvat_writer: CvatWriter | None = None
    dimensions: frozenset[Dimension] = frozenset({"2d"})
    ext: str = "ZIP"

    def writer_for(self, meta: CvatTaskMeta) -> Writer:
        """The writer, given the meta block when the format writes one."""
        if self.writer is not None:
            return self.writer
        cvat_writer = self.cvat_writer
        assert cvat_writer is not None

        async def write(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
            await cvat_writer(dataset, archive, options, meta=meta)

        return write


@dataclass(frozen=True)
class _OnePath:
    """One path per frame, from the frame and its subset."""

    path: Callable[[FrameInfo, str], str]

    def paths(self, item: FrameAnnotations, task: TaskInfo, subset: str) -> list[str]:
        del task
        return [self.path(item.frame, subset)]

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class _ByTags:
    """Paths that depend on the frame's tags (`image_paths(item, task)` of the format)."""

    image_paths: Callable[[FrameAnnotations, TaskInfo], list[str]]

    def paths(self, item: FrameAnnotations, task: TaskInfo, subset: str) -> list[str]:
        del subset
        return self.image_paths(item, task)

    def close(self) -> None:
        """Nothing to release."""


class _Classification:
    """Ultralytics classification: copies per tag, names made unique as they are used."""

    def __init__(self) -> None:
        self._layout = ultralytics.ClassificationLayout()

    def paths(self, item: FrameAnnotations, task: TaskInfo, subset: str) -> list[str]:
        return ultralytics.image_paths_ultralytics_classification(
            self._layout, item, subset, task.labels
        )

    def close(self) -> None:
        self._layout.close()


class PointCloudLayout:
    """A point cloud format's layout: each frame's point cloud file, and the archive
    members its context images make (`context_members`), under item ids made unique as
    frames are named (`kitti_raw.ItemIds`)."""

    def __init__(
        self,
        cloud_path: Callable[[str], str],
        context_members: Callable[[str, ContextImages], list[tuple[str, bytes]]],
    ) -> None:
        self._ids = ItemIds()
        self._cloud_path = cloud_path
        self._context_members = context_members

    def paths(self, item: FrameAnnotations, task: TaskInfo, subset: str) -> list[str]:
        del task, subset
        return [self._cloud_path(self._ids(item.frame))]

    def context_members(self, frame: FrameInfo, images: ContextImages) -> list[tuple[str, bytes]]:
        """The archive members (path, content) of the frame's context images."""
        return self._context_members(self._ids(frame), images)

    def close(self) -> None:
        """Nothing to release."""


def _one(path: Callable[[FrameInfo, str], str]) -> Callable[[], ImageLayout]:
    return lambda: _OnePath(path)


def _by_tags(paths: Callable[[FrameAnnotations, TaskInfo], list[str]]) -> Callable[[], ImageLayout]:
    return lambda: _ByTags(paths)


def _by_subset(root: str) -> Callable[[], ImageLayout]:
    return _one(lambda frame, subset: f"{root}/{subset}/{frame.name}")


def _flat(root: str) -> Callable[[], ImageLayout]:
    return _one(lambda frame, subset: f"{root}/{frame.name}")


def _point_clouds(
    cloud_path: Callable[[str], str],
    context_members: Callable[[str, ContextImages], list[tuple[str, bytes]]],
) -> Callable[[], ImageLayout]:
    return lambda: PointCloudLayout(cloud_path, context_members)


EXPORTERS: tuple[ExportFormat, ...] = (
    ExportFormat("CVAT for images 1.1", "1.1", _flat("images"), cvat_writer=write_cvat_images),
    ExportFormat("CVAT for video 1.1", "1.1", _flat("images"), cvat_writer=write_cvat_video),
    ExportFormat("COCO 1.0", "1.0", _by_subset("images"), coco.write_coco),
    ExportFormat("COCO Keypoints 1.0", "1.0", _by_subset("images"), coco.write_coco_keypoints),
    ExportFormat("Datumaro 1.0", "1.0", _by_subset("images"), datumaro.write_datumaro),
    ExportFormat("YOLO 1.1", "1.1", _one(yolo.image_path_yolo), yolo.write_yolo),
    ExportFormat("Ultralytics YOLO Detection 1.0", "1.0",
                 _one(ultralytics.image_path_ultralytics), ultralytics.write_ultralytics_detection),
    ExportFormat("Ultralytics YOLO Segmentation 1.0", "1.0",
                 _one(ultralytics.image_path_ultralytics),
                 ultralytics.write_ultralytics_segmentation),
    ExportFormat("Ultralytics YOLO Pose 1.0", "1.0",
                 _one(ultralytics.image_path_ultralytics), ultralytics.write_ultralytics_pose),
    ExportFormat("Ultralytics YOLO Oriented Bounding Boxes 1.0", "1.0",
                 _one(ultralytics.image_path_ultralytics), ultralytics.write_ultralytics_obb),
    ExportFormat("Ultralytics YOLO Classification 1.0", "1.0", _Classification,
                 ultralytics.write_ultralytics_classification),
    ExportFormat("PASCAL VOC 1.1", "1.1", _one(voc.image_path), voc.write_voc),
    ExportFormat("Segmentation mask 1.1", "1.1", _one(segmentation_mask.image_path),
                 segmentation_mask.write_segmentation_mask),
    ExportFormat("Cityscapes 1.0", "1.0", _one(cityscapes.image_path),
                 cityscapes.write_cityscapes),
    ExportFormat("MOT 1.1", "1.1", _by_tags(mot.image_paths), mot.write_mot),
    ExportFormat("MOTS PNG 1.0", "1.0", _one(mots.image_path), mots.write_mots),
    ExportFormat("KITTI 1.0", "1.0", _one(kitti.image_path), kitti.write_kitti),
    ExportFormat("LabelMe 3.0", "3.0", _by_tags(labelme.image_paths), labelme.write_labelme),
    ExportFormat("ImageNet 1.0", "1.0", _by_tags(imagenet.image_paths), imagenet.write_imagenet),
    ExportFormat("Market-1501 1.0", "1.0", _by_tags(market1501.image_paths),
                 market1501.write_market1501),
    ExportFormat("Kitti Raw Format 1.0", "1.0",
                 _point_clouds(kitti_raw.point_cloud_path, kitti_raw.context_image_members),
                 kitti_raw.write_kitti_raw, dimensions=frozenset({"3d"})),
    ExportFormat("Sly Point Cloud Format 1.0", "1.0",
                 _point_clouds(sly_pointcloud.point_cloud_path,
                               sly_pointcloud.context_image_members),
                 cvat_writer=sly_pointcloud.write_sly_pointcloud, dimensions=frozenset({"3d"})),
)  # fmt: skip

_BY_NAME = {exporter.name.casefold(): exporter for exporter in EXPORTERS}


def exporter_named(name: str) -> ExportFormat | None:
    """The exporter of that CVAT name (any letter case), or None."""
    return _BY_NAME.get(name.strip().casefold())
