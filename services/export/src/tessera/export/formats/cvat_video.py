"""CVAT for video 1.1: `annotations.xml` with `<track>` elements, streamed with flat memory.

What CVAT does (cvat/apps/dataset_manager/formats/cvat.py, `dump_as_cvat_interpolation`
and `create_xml_dumper`), and so this writer:
- the meta block as in CVAT for images (with `<original_size>` for video tasks), then the
  tracks in the order of `annotations.tracks`, numbered from 0, then every plain shape as
  a track of its own, numbered on from there; no `<image>` elements;
- `<track id label source [group_id]>` with one child per frame the track has (keyframes,
  interpolated frames and outside keyframes, as the export's interpolation gives them);
- a track frame's attributes in CVAT's order: frame, keyframe, outside, occluded (neither
  on skeletons), the geometry as in CVAT for images, rotation (boxes and ellipses, only
  when not 0), z_order; then its `<attribute name>` children. `frame` is the frame's
  number in the media (`_export_tracked_shape`'s `abs_frame_id`: `start_frame + index *
  step`, so 10, 12, ... for a task cut from frame 10 with `step=2`), as `<image id>`;
- a skeleton frame holds its elements as `<points label keyframe outside occluded points>`
  (label instead of frame, no z_order), then the skeleton's attributes; a skeleton frame
  with no elements is not written at all;
- a plain shape on frame f becomes a track with the shape as a keyframe on f and, when
  `f + frame_step <= stop_frame` (a frame follows; `stop_frame` of the meta, the number
  of the task's, or a job's, last frame in the media), an outside keyframe copy on
  `f + frame_step` (a skeleton's elements likewise, each copy outside). CVAT writes the
  copy only when `f + frame_step < stop_frame`, so a shape on the frame before the last
  comes back from CVAT's reader as a track that also covers the last frame; this writer
  ends it, so that an export imported again gives the same annotations;
- `<original_size>` for image tasks too (the first frame's size): CVAT writes it only for
  video tasks, but datumaro's CVAT reader sizes every track shape by it and fails on a
  track without it; CVAT's own reader ignores it;
- no tags: CVAT's video dumper has never written them (cvat-ai/cvat#7198, open), and a
  `<tag>` outside `<image>` breaks both CVAT's and datumaro's CVAT readers.

Frames arrive in frame order, but the XML groups them by track: each track's per-frame
elements are spilled to one temporary file in chunks, indexed by (offset, length), plain
shapes to a second file in order, and the XML is assembled from them at the end. Memory
holds the open tracks' small buffers and the chunk index, not the frames.
"""

from __future__ import annotations

import asyncio
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import IO

from tessera.export.formats.cvat_xml import (
    ELEMENT_NAMES,
    ENCODING,
    ENCODING_ERRORS,
    FOOTER,
    HEADER,
    AttributeElements,
    CvatTaskMeta,
    attr,
    geometry,
    indent,
    meta_block,
)
from tessera.export.model import Dataset, ExportOptions, Shape, labels_by_id

MEMBER = "annotations.xml"
_TRACK_BUFFER_CHARS = 1 << 15  # a track's buffer is spilled past this
_TOTAL_BUFFER_CHARS = 1 << 20  # every buffer is spilled past this
_COPY_BYTES = 1 << 20
_LENGTH_BYTES = 8


async def write_cvat_video(
    dataset: Dataset,
    archive: zipfile.ZipFile,
    options: ExportOptions,
    *,
    meta: CvatTaskMeta | None = None,
) -> None:
    """Write `annotations.xml` in CVAT for video 1.1, holding one frame at a time.

    `meta` is as for CVAT for images; without `original_size`, the task gets the first
    frame's size (CVAT writes the video's size, and nothing for image tasks). `options` has
    nothing that changes this format (it has no per-frame elements to leave out).
    """
    del options
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("CVAT for video 1.1 is a 2D format; point cloud tasks have no exporter")
    meta = meta or CvatTaskMeta()
    stop_frame, frame_step = meta.last_frame(task), meta.frame_step
    renderer = _Renderer(
        {label_id: label.name for label_id, label in labels_by_id(task.labels).items()}
    )
    original_size = meta.original_size
    with (
        tempfile.TemporaryFile() as track_file,
        tempfile.TemporaryFile() as plain_file,
    ):
        spill = _TrackSpill(track_file)
        plain_count = 0
        seen = 0
        async for item in dataset.frames():
            frame = item.frame
            if original_size is None:
                original_size = (frame.width, frame.height)
            for shape in item.shapes:
                if shape.track_id is None:
                    record = renderer.plain_track(shape, frame.number, frame_step, stop_frame)
                    data = record.encode(ENCODING, ENCODING_ERRORS)
                    plain_file.write(len(data).to_bytes(_LENGTH_BYTES, "little"))
                    plain_file.write(data)
                    plain_count += 1
                else:
                    chunk = renderer.track_frame(shape, frame.number)
                    spill.add(shape.track_id, renderer.track_head(shape), chunk)
            seen += 1
            if seen % 256 == 0:
                await asyncio.sleep(0)  # a long in-memory stream must not starve the loop
        spill.flush_all()
        if original_size != meta.original_size:
            meta = replace(meta, original_size=original_size)
        with archive.open(MEMBER, "w", force_zip64=True) as member:
            member.write((HEADER + meta_block(task, meta)).encode(ENCODING, ENCODING_ERRORS))
            number_of_track = 0
            for track_id in sorted(spill.heads):
                member.write(
                    f'{indent(1)}<track id="{number_of_track}"{spill.heads[track_id]}>'.encode(
                        ENCODING, ENCODING_ERRORS
                    )
                )
                for offset, length in spill.chunks[track_id]:
                    track_file.seek(offset)
                    member.write(track_file.read(length))
                member.write(f"{indent(1)}</track>".encode(ENCODING))
                number_of_track += 1
                if number_of_track % 256 == 0:
                    await asyncio.sleep(0)
            plain_file.seek(0)
            for _ in range(plain_count):
                length = int.from_bytes(plain_file.read(_LENGTH_BYTES), "little")
                member.write(f'{indent(1)}<track id="{number_of_track}"'.encode(ENCODING))
                _copy(plain_file, member, length)
                number_of_track += 1
            member.write(FOOTER.encode(ENCODING))


def _copy(source: IO[bytes], target: IO[bytes], length: int) -> None:
    while length > 0:
        data = source.read(min(length, _COPY_BYTES))
        if not data:
            raise OSError("the spill file ended early")
        target.write(data)
        length -= len(data)


class _TrackSpill:
    """Per-track text buffers, spilled to one file as (offset, length) chunks."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._position = 0
        self._total = 0
        self.heads: dict[int, str] = {}
        self.chunks: dict[int, list[tuple[int, int]]] = {}
        self._buffers: dict[int, list[str]] = {}
        self._sizes: dict[int, int] = {}

    def add(self, track_id: int, head: Callable[[], str], chunk: str) -> None:
        if track_id not in self.heads:
            self.heads[track_id] = head()
            self.chunks[track_id] = []
            self._buffers[track_id] = []
            self._sizes[track_id] = 0
        if not chunk:
            return
        self._buffers[track_id].append(chunk)
        self._sizes[track_id] += len(chunk)
        self._total += len(chunk)
        if self._sizes[track_id] >= _TRACK_BUFFER_CHARS:
            self._flush(track_id)
        if self._total >= _TOTAL_BUFFER_CHARS:
            self.flush_all()

    def _flush(self, track_id: int) -> None:
        buffer = self._buffers[track_id]
        if not buffer:
            return
        data = "".join(buffer).encode(ENCODING, ENCODING_ERRORS)
        self._file.write(data)
        self.chunks[track_id].append((self._position, len(data)))
        self._position += len(data)
        self._total -= self._sizes[track_id]
        buffer.clear()
        self._sizes[track_id] = 0

    def flush_all(self) -> None:
        for track_id in self._buffers:
            self._flush(track_id)
        self._file.flush()


class _Renderer:
    """Renders track frames and plain-shape tracks to text."""

    def __init__(self, label_names: Mapping[int, str]) -> None:
        self._label_names = label_names
        self._labels = {label_id: attr("label", name) for label_id, name in label_names.items()}
        self._attributes = AttributeElements()

    def track_head(self, shape: Shape) -> Callable[[], str]:
        """What follows `id` in `<track>`: label, source, group_id when not 0."""

        def head() -> str:
            group = f' group_id="{shape.group}"' if shape.group else ""
            return f"{self._labels[shape.label_id]}{attr('source', shape.source)}{group}"

        return head

    def track_frame(self, shape: Shape, frame: int) -> str:
        """One frame of a track, at level 2."""
        out: list[str] = []
        self._frame(shape, frame, shape.elements, out)
        return "".join(out)

    def plain_track(self, shape: Shape, frame: int, frame_step: int, stop_frame: int) -> str:
        """A plain shape as CVAT writes it: the rest of a `<track>` after its id."""
        out = [self.track_head(shape)(), ">"]
        self._frame(shape, frame, shape.elements, out, plain=True)
        if frame + frame_step <= stop_frame:
            self._frame(
                replace(shape, outside=True),
                frame + frame_step,
                [replace(element, outside=True) for element in shape.elements],
                out,
                plain=True,
            )
        out.append(f"{indent(1)}</track>")
        return "".join(out)

    def _frame(
        self,
        shape: Shape,
        frame: int,
        elements: Sequence[Shape],
        out: list[str],
        *,
        plain: bool = False,
    ) -> None:
        name = ELEMENT_NAMES[shape.type]
        keyframe = True if plain else shape.keyframe
        if shape.type == "skeleton":
            if not elements:
                return  # CVAT opens a skeleton frame only when it has elements
            out.append(f'{indent(2)}<skeleton frame="{frame}" keyframe="{int(keyframe)}"')
        else:
            out.append(
                f'{indent(2)}<{name} frame="{frame}" keyframe="{int(keyframe)}"'
                f' outside="{int(shape.outside)}" occluded="{int(shape.occluded)}"'
            )
            out.append(geometry(shape))
        out.append(f' z_order="{shape.z_order}">')
        for element in elements:
            self._element(element, True if plain else element.keyframe, out)
        self._attributes.write(shape.attributes, 3, out)
        out.append(f"{indent(2)}</{name}>")

    def _element(self, element: Shape, keyframe: bool, out: list[str]) -> None:
        name = ELEMENT_NAMES[element.type]
        out.append(
            f"{indent(3)}<{name}{self._labels[element.label_id]}"
            f' keyframe="{int(keyframe)}" outside="{int(element.outside)}"'
            f' occluded="{int(element.occluded)}"'
        )
        out.append(geometry(element))
        out.append(">")
        self._attributes.write(element.attributes, 4, out)
        out.append(f"{indent(3)}</{name}>")
