"""Ingest's `data/meta` as other services read it: a task's frames, named and numbered as
CVAT names and numbers them (`frame_<number in the video>`, `start_frame + i * step`)."""

from __future__ import annotations

import pytest

from tessera.platform.contracts.ingest import DataMeta, FrameMeta


def meta(size: int, frames: list[FrameMeta], start: int = 0, frame_filter: str = "") -> DataMeta:
    return DataMeta(
        chunks_updated_date="2026-01-01T00:00:00+00:00", chunk_size=36, size=size,
        image_quality=70, start_frame=start, stop_frame=start + (size - 1) * 2,
        frame_filter=frame_filter, frames=frames, deleted_frames=[], included_frames=None,
        storage="local", cloud_storage_id=None,
    )  # fmt: skip


def frame(name: str) -> FrameMeta:
    return FrameMeta(width=64, height=48, name=name, related_files=0, has_related_context=False)


@pytest.mark.parametrize(
    ("frame_filter", "step"),
    [("", 1), ("step=2", 2), ("step = 15", 15), ("step=0", 1), ("every=3", 1)],
)
def test_the_step_is_cvats(frame_filter: str, step: int) -> None:
    assert meta(1, [frame("a.png")], frame_filter=frame_filter).frame_step == step


def test_a_videos_frames_are_named_by_their_number_in_the_video() -> None:
    video = meta(4, [frame("clip.mp4")], start=10, frame_filter="step=2")
    assert [video.source_frame(i) for i in range(4)] == [10, 12, 14, 16]
    assert [f.name for f in video.frame_sizes()] == [
        "frame_000010", "frame_000012", "frame_000014", "frame_000016",
    ]  # fmt: skip
    assert [f.name for f in video.frame_sizes(".png", offset=100)][:2] == [
        "frame_000110.png",
        "frame_000112.png",
    ]
    assert {(f.width, f.height) for f in video.frame_sizes()} == {(64, 48)}
    plain = meta(2, [frame("clip.mp4")])
    assert [f.name for f in plain.frame_sizes()] == ["frame_000000", "frame_000001"]


def test_an_image_tasks_frames_keep_their_names() -> None:
    images = meta(2, [frame("b/1.png"), frame("a/2.jpg")], start=4, frame_filter="step=3")
    assert [f.name for f in images.frame_sizes(".png")] == ["b/1.png", "a/2.jpg"]
    assert [images.source_frame(i) for i in range(2)] == [4, 7]
