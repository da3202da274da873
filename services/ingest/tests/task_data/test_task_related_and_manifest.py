"""Context images of 2D tasks (CVAT's `related_images/<file>_<ext>/` folders) and a given
`manifest.jsonl` (image and video variants), end to end.

Context images are compared with what was sent: byte for byte as stored objects, by colour
as the JPEGs served. A manifest that disagrees with the files fails the request naming the
manifest and the file, and leaves no media behind.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tessera.ingest.media.testing import make_test_video
from tessera.ingest.media.video import index_video
from tessera.ingest.testing import Fleet, png_bytes, zip_members, zip_of


def mean_colour(data: bytes) -> tuple[float, ...]:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    return tuple(pixels.mean(axis=(0, 1)))


def assert_same_colour(served_jpeg: bytes, sent_png: bytes) -> None:
    assert Image.open(io.BytesIO(served_jpeg)).format == "JPEG"
    served, sent = mean_colour(served_jpeg), mean_colour(sent_png)
    assert max(abs(a - b) for a, b in zip(served, sent, strict=True)) < 4, (served, sent)


def image_manifest(*items: tuple[str, int, int]) -> bytes:
    """An image manifest listing (name with extension, width, height)."""
    lines: list[dict[str, Any]] = [{"version": "1.1"}, {"type": "images"}]
    for name, width, height in items:
        stem, dot, extension = name.rpartition(".")
        lines.append({"name": stem, "extension": dot + extension, "width": width,
                      "height": height})  # fmt: skip
    return "\n".join(json.dumps(line, separators=(",", ":")) for line in lines).encode() + b"\n"


async def assert_nothing_left(fleet: Fleet, task_id: int) -> None:
    assert (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).status_code == 404
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert jobs["count"] == 0
    storage = fleet.ingest.platform.storage
    assert [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/")] == []


async def test_2d_related_images_are_stored_counted_and_served(fleet: Fleet) -> None:
    frames = {"img_1.png": png_bytes(1), "img_3.png": png_bytes(3), "scene.v2.png": png_bytes(5)}
    related = {
        "related_images/img_1_png/ctx_b.png": png_bytes(2, (12, 8)),
        "related_images/img_1_png/ctx_a.png": png_bytes(4, (8, 12)),
        "related_images/scene.v2_png/left.png": png_bytes(6),
        "related_images/img_3.png/not_matching.png": png_bytes(7),
    }
    task_id = await fleet.create_task(segment_size=2)

    request = await fleet.wait(await fleet.upload(task_id, {"set.zip": zip_of(frames | related)}))

    assert request["status"] == "finished", request["message"]
    client = fleet.ingest.client
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [(f["name"], f["related_files"], f["has_related_context"]) for f in meta["frames"]] == [
        ("img_1.png", 2, True),
        ("img_3.png", 0, False),
        ("scene.v2.png", 1, True),
    ]
    chunk = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="chunk", number=0, quality="original"
    )
    assert list(zip_members(chunk.content).values()) == list(frames.values())

    context = await fleet.get_data(f"/api/tasks/{task_id}/data", type="context_image", number=0)
    assert context.headers["content-type"] == "application/zip"
    served = zip_members(context.content)
    assert sorted(served) == ["ctx_a.png.jpg", "ctx_b.png.jpg"]
    assert_same_colour(served["ctx_a.png.jpg"], related["related_images/img_1_png/ctx_a.png"])
    assert_same_colour(served["ctx_b.png.jpg"], related["related_images/img_1_png/ctx_b.png"])
    assert Image.open(io.BytesIO(served["ctx_a.png.jpg"])).size == (8, 12)
    without = await client.get(
        f"/api/tasks/{task_id}/data", params={"type": "context_image", "number": 1}
    )
    assert without.status_code == 404
    outside = await client.get(
        f"/api/tasks/{task_id}/data", params={"type": "context_image", "number": 3}
    )
    assert outside.status_code == 400

    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    second = max(jobs["results"], key=lambda j: j["start_frame"])
    by_job = await fleet.get_data(f"/api/jobs/{second['id']}/data", type="context_image", number=2)
    (entry,) = zip_members(by_job.content).items()
    assert entry[0] == "left.png.jpg"
    assert_same_colour(entry[1], related["related_images/scene.v2_png/left.png"])
    not_in_job = await client.get(
        f"/api/jobs/{second['id']}/data", params={"type": "context_image", "number": 0}
    )
    assert not_in_job.status_code == 400

    storage = fleet.ingest.platform.storage
    stored = {key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/related/")}
    assert stored == {f"tasks/{task_id}/media/related/{name}" for name in list(related)[:3]}
    for name in list(related)[:3]:
        assert await storage.get(f"tasks/{task_id}/media/related/{name}") == related[name]


async def test_a_broken_related_image_fails_naming_it(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    files = {"a.png": png_bytes(1), "related_images/a_png/bad.png": png_bytes(2)[:30]}

    request = await fleet.wait(await fleet.upload(task_id, {"set.zip": zip_of(files)}))

    assert request["status"] == "failed"
    assert "related_images/a_png/bad.png" in request["message"]
    await assert_nothing_left(fleet, task_id)


async def test_a_manifest_gives_the_predefined_order(fleet: Fleet) -> None:
    files = {"b.png": png_bytes(2), "a.png": png_bytes(1), "c.png": png_bytes(3, (16, 16))}
    manifest = image_manifest(("c.png", 16, 16), ("a.png", 32, 24), ("b.png", 32, 24))
    task_id = await fleet.create_task()

    rq_id = await fleet.upload(
        task_id, {**files, "manifest.jsonl": manifest}, sorting_method="predefined", use_cache=True
    )
    request = await fleet.wait(rq_id)

    assert request["status"] == "finished", request["message"]
    meta = (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [(f["name"], f["width"]) for f in meta["frames"]] == [
        ("c.png", 16),
        ("a.png", 32),
        ("b.png", 32),
    ]
    chunk = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="chunk", number=0, quality="original"
    )
    assert list(zip_members(chunk.content).values()) == [
        files["c.png"],
        files["a.png"],
        files["b.png"],
    ]


async def test_a_manifest_on_the_share_in_sorted_order_is_accepted(
    fleet: Fleet, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    (share / "set").mkdir()
    for i in (1, 2, 3):
        (share / "set" / f"{i}.png").write_bytes(png_bytes(i))
    (share / "manifest.jsonl").write_bytes(
        image_manifest(("set/1.png", 32, 24), ("set/2.png", 32, 24), ("set/3.png", 32, 24))
    )
    task_id = await fleet.create_task()

    request = await fleet.send_data(
        task_id, server_files=["manifest.jsonl", "set/"], use_cache=True, frame_filter="step=2"
    )

    assert request["status"] == "finished", request["message"]
    meta = (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == ["set/1.png", "set/3.png"]


@pytest.mark.parametrize(
    ("manifest", "options", "named"),
    [
        pytest.param(
            image_manifest(("a.png", 32, 24), ("b.png", 32, 24), ("d.png", 32, 24)),
            {},
            ["d.png", "listed in the manifest but not uploaded"],
            id="missing-file",
        ),
        pytest.param(
            image_manifest(("a.png", 32, 24)),
            {},
            ["b.png", "not listed in the manifest"],
            id="unlisted-file",
        ),
        pytest.param(
            image_manifest(("a.png", 32, 24), ("b.png", 24, 32)),
            {},
            ["b.png", "24x32"],
            id="wrong-size",
        ),
        pytest.param(
            image_manifest(("b.png", 32, 24), ("a.png", 32, 24)),
            {"sorting_method": "lexicographical"},
            ["a.png", "lexicographical order"],
            id="wrong-order",
        ),
        pytest.param(
            image_manifest(("a.png", 32, 24), ("b.png", 32, 24)),
            {"sorting_method": "random"},
            ["random sorting"],
            id="random-sorting",
        ),
    ],
)
async def test_a_disagreeing_manifest_fails_naming_it_and_the_file(
    fleet: Fleet, manifest: bytes, options: dict[str, Any], named: list[str]
) -> None:
    task_id = await fleet.create_task()
    files = {"a.png": png_bytes(1), "b.png": png_bytes(2), "manifest.jsonl": manifest}

    request = await fleet.wait(await fleet.upload(task_id, files, use_cache=True, **options))

    assert request["status"] == "failed"
    assert request["message"].startswith("manifest.jsonl: ")
    for part in named:
        assert part in request["message"]
    await assert_nothing_left(fleet, task_id)


async def test_two_manifests_are_refused(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    manifest = image_manifest(("a.png", 32, 24))
    files = {"a.png": png_bytes(1), "manifest.jsonl": manifest, "other.jsonl": manifest}

    request = await fleet.wait(await fleet.upload(task_id, files))

    assert request["status"] == "failed"
    assert "other.jsonl" in request["message"]
    assert "only one manifest" in request["message"]


def video_manifest(name: str, size: tuple[int, int], length: int, keyframes: Any) -> bytes:
    lines: list[dict[str, Any]] = [
        {"version": "1.1"},
        {"type": "video"},
        {"properties": {"name": name, "resolution": list(size), "length": length}},
    ]
    lines += [{"number": k.number, "pts": k.pts} for k in keyframes]
    return "\n".join(json.dumps(line, separators=(",", ":")) for line in lines).encode() + b"\n"


async def test_a_video_manifest_is_checked_against_the_video(fleet: Fleet, tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", 12, gop=4).read_bytes()
    index = index_video(tmp_path / "clip.mp4")
    wrong = video_manifest("clip.mp4", (64, 48), 20, index.keyframes)
    task_id = await fleet.create_task()

    failed = await fleet.wait(
        await fleet.upload(task_id, {"manifest.jsonl": wrong, "clip.mp4": video}, use_cache=True)
    )

    assert failed["status"] == "failed"
    assert failed["message"].startswith("manifest.jsonl: clip.mp4: ")
    assert "20 frames" in failed["message"]
    await assert_nothing_left(fleet, task_id)

    right = video_manifest("clip.mp4", (64, 48), 12, index.keyframes)
    other_task = await fleet.create_task()
    finished = await fleet.wait(
        await fleet.upload(other_task, {"manifest.jsonl": right, "clip.mp4": video}, use_cache=True)
    )
    assert finished["status"] == "finished", finished["message"]
    meta = (await fleet.ingest.client.get(f"/api/tasks/{other_task}/data/meta")).json()
    assert meta["size"] == 12
