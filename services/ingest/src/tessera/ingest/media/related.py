"""Context ("related") images of a task's frames, found by CVAT's folder layouts.

The layouts are those of CVAT's ``detect_related_images`` (``utils/dataset_manifest/utils.py``)
and its documentation ("Data formats for a 3D task"). Names are relative POSIX paths of the
task's files; only images count as context images.

2D, for the image ``<dir>/<file>``: the images directly inside
``<dir>/related_images/<file with its last "." made "_">/`` (``a/1.png`` has
``a/related_images/1_png/*``).

3D, for the point cloud ``<dir>/<stem>.<ext>``, all of:

- the other images in ``<dir>`` named ``<stem>.*`` (``data/a.pcd`` with ``data/a.png``); when
  ``<dir>`` is itself named ``<stem>``, every other image in it instead;
- the images directly inside ``<dir>/../related_images/<stem>_<ext>/``
  (``pointcloud/1.pcd`` has ``related_images/1_pcd/*``);
- for KITTI scans in ``<root>/velodyne_points/data/``, the images ``<stem>.*`` in
  ``<root>/<X>/data/`` for every folder ``<X>`` whose name holds ``image_<digit>`` in any
  case (``IMAGE_00/data/0000000000.png``).

Each frame's context images are sorted by name.
"""

import io
import posixpath
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.images import is_image_name, load_image

RELATED_IMAGES_FOLDER = "related_images"

# CVAT re-encodes context images as OpenCV does by default.
CONTEXT_IMAGE_QUALITY = 95

_CAMERA_FOLDER = re.compile(r"image_\d", re.IGNORECASE)
_VELODYNE_DATA = ("velodyne_points", "data")


def is_in_related_folder(name: str) -> bool:
    """Whether ``name`` lies in a ``related_images`` folder (it is then never a frame)."""
    return RELATED_IMAGES_FOLDER in name.split("/")[:-1]


def related_folder_name(file_name: str) -> str:
    """The folder of a file's context images: its base name with the last "." made "_"."""
    return "_".join(posixpath.basename(file_name).rsplit(".", 1))


def detect_related_images(
    frames: Sequence[str], files: Iterable[str], *, dimension: Literal["2d", "3d"]
) -> dict[str, list[str]]:
    """The context images among ``files`` of each of ``frames`` (see the module doc)."""
    images_by_folder: dict[str, list[str]] = defaultdict(list)
    for name in files:
        if is_image_name(name):
            images_by_folder[posixpath.dirname(name)].append(name)
    find = _related_2d if dimension == "2d" else _related_3d
    return {frame: sorted(set(find(frame, images_by_folder))) for frame in frames}


def write_context_images_chunk(images: Sequence[tuple[str, Path]], out: BinaryIO) -> None:
    """Write a frame's context images to ``out`` as CVAT serves them: a deflated ZIP.

    ``images`` are (task file name, local path) pairs. Each image is decoded as displayed and
    re-encoded as a JPEG at `CONTEXT_IMAGE_QUALITY`; its entry is its name relative to the
    folder all the names share, with ".jpg" appended (``related_images/1_png/left.png`` and
    ``related_images/1_png/right.png`` give ``left.png.jpg`` and ``right.png.jpg``). CVAT names
    a lone image after the shared path itself (``..jpg``); here it keeps its base name. Raises
    `MediaError` naming a bad image.
    """
    shared = posixpath.commonpath([posixpath.dirname(name) for name, _ in images])
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in images:
            try:
                image = load_image(path).convert("RGB")
            except MediaError as exc:
                raise MediaError(name, exc.reason) from None
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=CONTEXT_IMAGE_QUALITY)
            entry = posixpath.relpath(name, shared) if shared else name
            archive.writestr(f"{entry}.jpg", buffer.getvalue())


def _related_2d(frame: str, images_by_folder: dict[str, list[str]]) -> list[str]:
    folder = posixpath.dirname(frame)
    return images_by_folder.get(
        posixpath.join(folder, RELATED_IMAGES_FOLDER, related_folder_name(frame)), []
    )


def _related_3d(frame: str, images_by_folder: dict[str, list[str]]) -> list[str]:
    folder = posixpath.dirname(frame)
    stem = _stem(frame)
    siblings = [name for name in images_by_folder.get(folder, []) if name != frame]
    if posixpath.basename(folder) == stem:
        found = list(siblings)
    else:
        found = [name for name in siblings if _stem(name) == stem]
    if folder:
        related_root = posixpath.join(posixpath.dirname(folder), RELATED_IMAGES_FOLDER)
        found += images_by_folder.get(posixpath.join(related_root, related_folder_name(frame)), [])
    if tuple(folder.split("/")[-2:]) == _VELODYNE_DATA:
        root = posixpath.dirname(posixpath.dirname(folder))
        for camera_data, images in images_by_folder.items():
            camera = posixpath.dirname(camera_data)
            if (
                posixpath.basename(camera_data) == "data"
                and posixpath.dirname(camera) == root
                and _CAMERA_FOLDER.search(posixpath.basename(camera))
            ):
                found += [name for name in images if _stem(name) == stem]
    return found


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]
