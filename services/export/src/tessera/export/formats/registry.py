"""The export formats Tessera writes, by CVAT's names: `GET /api/server/annotation/formats`
lists them and `?format=` picks one.

Each format is a writer (`async def write(dataset, archive, options)`), the task
dimensions it takes, and where an original image goes in the archive when the user asks
for `save_images` (the format's own layout). The CVAT XML formats also get the task's
meta block (`CvatTaskMeta`) that the export service fills.
"""

from __future__ import annotations

import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from tessera.export.formats.coco import write_coco, write_coco_keypoints
from tessera.export.formats.cvat_images import write_cvat_images
from tessera.export.formats.cvat_video import write_cvat_video
from tessera.export.formats.cvat_xml import CvatTaskMeta
from tessera.export.formats.datumaro import write_datumaro
from tessera.export.model import Dataset, ExportOptions, FrameInfo

Dimension = Literal["2d", "3d"]
Writer = Callable[[Dataset, zipfile.ZipFile, ExportOptions], Awaitable[None]]
ImagePath = Callable[[FrameInfo, str], str]


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
    image_path: ImagePath
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


def _by_subset(root: str) -> ImagePath:
    def path(frame: FrameInfo, subset: str) -> str:
        return f"{root}/{subset}/{frame.name}"

    return path


def _flat(root: str) -> ImagePath:
    def path(frame: FrameInfo, subset: str) -> str:
        del subset
        return f"{root}/{frame.name}"

    return path


EXPORTERS: tuple[ExportFormat, ...] = (
    ExportFormat("CVAT for images 1.1", "1.1", _flat("images"), cvat_writer=write_cvat_images),
    ExportFormat("CVAT for video 1.1", "1.1", _flat("images"), cvat_writer=write_cvat_video),
    ExportFormat("COCO 1.0", "1.0", _by_subset("images"), write_coco),
    ExportFormat("COCO Keypoints 1.0", "1.0", _by_subset("images"), write_coco_keypoints),
    ExportFormat("Datumaro 1.0", "1.0", _by_subset("images"), write_datumaro),
)  # fmt: skip

_BY_NAME = {exporter.name.casefold(): exporter for exporter in EXPORTERS}


def exporter_named(name: str) -> ExportFormat | None:
    """The exporter of that CVAT name (any letter case), or None."""
    return _BY_NAME.get(name.strip().casefold())
