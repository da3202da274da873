"""3D tasks: point clouds (PCD files, KITTI `.bin` scans) with their context images, in the
folder layouts CVAT documents ("Data formats for a 3D task"), end to end.

What is read back is compared with what was sent: PCD files byte for byte, KITTI scans as
the PCD file CVAT makes of them, context images as stored objects byte for byte and as
served JPEGs by colour.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from PIL import Image

from tessera.ingest.tables import frames, task_media
from tessera.ingest.testing import Fleet, png_bytes, zip_members, zip_of

PCD_TYPE = "image/x.point-cloud-data"


def kitti_scan(seed: int, points: int) -> bytes:
    """A KITTI velodyne scan: `points` rows of float32 x, y, z, intensity."""
    return np.random.default_rng(seed).normal(size=(points, 4)).astype("<f4").tobytes()


def cvat_pcd_of_scan(scan: bytes) -> bytes:
    """The PCD file CVAT makes of a KITTI scan (`convert_bin_to_pcd`)."""
    points = len(scan) // 16
    header = (
        "VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
        f"WIDTH {points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA binary\n"
    )
    return header.encode() + scan


def binary_pcd(seed: int, width: int, height: int = 1) -> bytes:
    """A binary PCD file of `width` x `height` points (x y z as float32)."""
    header = (
        "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {width}\nHEIGHT {height}\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {width * height}\n"
        "DATA binary\n"
    )
    body = np.random.default_rng(seed).normal(size=(width * height, 3)).astype("<f4")
    return header.encode() + body.tobytes()


def colour_of(jpeg: bytes) -> tuple[float, ...]:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    return tuple(np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1)))


def sent_colour(png: bytes) -> tuple[float, ...]:
    return tuple(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).mean(axis=(0, 1)))


def assert_close(served: tuple[float, ...], sent: tuple[float, ...]) -> None:
    assert max(abs(a - b) for a, b in zip(served, sent, strict=True)) < 4, (served, sent)


async def media_record(fleet: Fleet, task_id: int) -> tuple[Any, list[Any]]:
    async with fleet.ingest.platform.database.transaction() as session:
        record = (
            await session.execute(sa.select(task_media).where(task_media.c.task_id == task_id))
        ).one()
        rows = (
            await session.execute(
                sa.select(frames).where(frames.c.task_id == task_id).order_by(frames.c.frame)
            )
        ).all()
    return record, list(rows)


async def test_kitti_scans_from_the_share_make_a_3d_task(fleet: Fleet, tmp_path: Path) -> None:
    drive = tmp_path / "share" / "drive"
    scans = {name: kitti_scan(i, 50 + 10 * i) for i, name in enumerate(["0000", "0001", "0002"])}
    (drive / "velodyne_points" / "data").mkdir(parents=True)
    for name, scan in scans.items():
        (drive / "velodyne_points" / "data" / f"{name}.bin").write_bytes(scan)
    cameras = {
        "IMAGE_00/data/0000.png": png_bytes(1, (20, 10)),
        "IMAGE_00/data/0001.png": png_bytes(2, (20, 10)),
        "image_01/data/0000.png": png_bytes(3, (10, 20)),
    }
    for name, data in cameras.items():
        (drive / name).parent.mkdir(parents=True, exist_ok=True)
        (drive / name).write_bytes(data)
    task_id = await fleet.create_task(segment_size=2)

    request = await fleet.send_data(task_id, server_files=["drive/"], chunk_size=2)

    assert request["status"] == "finished", request["message"]
    client = fleet.ingest.client
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [(f["name"], f["width"], f["height"], f["related_files"], f["has_related_context"])
            for f in meta["frames"]] == [
        ("drive/velodyne_points/data/0000.pcd", 50, 1, 2, True),
        ("drive/velodyne_points/data/0001.pcd", 60, 1, 1, True),
        ("drive/velodyne_points/data/0002.pcd", 70, 1, 0, False),
    ]  # fmt: skip
    assert (meta["size"], meta["chunk_size"]) == (3, 2)
    task = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert (task["dimension"], task["size"], task["mode"]) == ("3d", 3, "annotation")
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert sorted((j["start_frame"], j["stop_frame"]) for j in jobs["results"]) == [(0, 1), (2, 2)]
    assert {j["dimension"] for j in jobs["results"]} == {"3d"}

    expected = [cvat_pcd_of_scan(scans[name]) for name in ("0000", "0001", "0002")]
    for quality in ("original", "compressed"):
        chunk = await fleet.get_data(
            f"/api/tasks/{task_id}/data", type="chunk", number=0, quality=quality
        )
        assert chunk.headers["content-type"] == "application/zip"
        assert zip_members(chunk.content) == {"000000.pcd": expected[0], "000001.pcd": expected[1]}
    last = await fleet.get_data(f"/api/tasks/{task_id}/data", type="chunk", number=1)
    assert zip_members(last.content) == {"000000.pcd": expected[2]}
    for number, pcd in enumerate(expected):
        frame = await fleet.get_data(f"/api/tasks/{task_id}/data", type="frame", number=number)
        assert frame.content == pcd
        assert frame.headers["content-type"] == PCD_TYPE

    context = await fleet.get_data(f"/api/tasks/{task_id}/data", type="context_image", number=0)
    assert context.headers["content-type"] == "application/zip"
    served = zip_members(context.content)
    assert sorted(served) == ["IMAGE_00/data/0000.png.jpg", "image_01/data/0000.png.jpg"]
    for camera in ("IMAGE_00/data/0000.png", "image_01/data/0000.png"):
        assert_close(colour_of(served[f"{camera}.jpg"]), sent_colour(cameras[camera]))
    none = await client.get(
        f"/api/tasks/{task_id}/data", params={"type": "context_image", "number": 2}
    )
    assert none.status_code == 404

    record, rows = await media_record(fleet, task_id)
    assert record.dimension == "3d"
    storage = fleet.ingest.platform.storage
    assert await storage.get(rows[0].object_key) == expected[0]
    stored = [await storage.get(key) for key in rows[0].related_keys]
    assert stored == [cameras["IMAGE_00/data/0000.png"], cameras["image_01/data/0000.png"]]


async def test_pcd_archive_with_related_images_and_use_cache(fleet: Fleet) -> None:
    clouds = {
        "scan/pointcloud/a.pcd": binary_pcd(1, 8, 4),
        "scan/pointcloud/b.pcd": binary_pcd(2, 5),
        "scan/pointcloud/c.pcd": binary_pcd(3, 6),
    }
    images = {
        "scan/related_images/a_pcd/front.png": png_bytes(4),
        "scan/related_images/a_pcd/back.png": png_bytes(5),
        "scan/pointcloud/b.png": png_bytes(6),
    }
    task_id = await fleet.create_task(segment_size=2)
    rq_id = await fleet.upload(
        task_id, {"scans.zip": zip_of({**clouds, **images})}, use_cache=True, chunk_size=2
    )

    request = await fleet.wait(rq_id)

    assert request["status"] == "finished", request["message"]
    client = fleet.ingest.client
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [(f["name"], f["width"], f["height"], f["related_files"]) for f in meta["frames"]] == [
        ("scan/pointcloud/a.pcd", 8, 4, 2),
        ("scan/pointcloud/b.pcd", 5, 1, 1),
        ("scan/pointcloud/c.pcd", 6, 1, 0),
    ]
    task = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert task["dimension"] == "3d"
    ordered = list(clouds.values())
    chunk = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="chunk", number=0, quality="compressed"
    )
    assert zip_members(chunk.content) == {"000000.pcd": ordered[0], "000001.pcd": ordered[1]}

    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    first = min(jobs["results"], key=lambda j: j["start_frame"])
    second = max(jobs["results"], key=lambda j: j["start_frame"])
    job_chunk = await fleet.get_data(
        f"/api/jobs/{second['id']}/data", type="chunk", index=0, quality="original"
    )
    assert zip_members(job_chunk.content) == {"000000.pcd": ordered[2]}
    context = await fleet.get_data(f"/api/jobs/{first['id']}/data", type="context_image", number=0)
    served = zip_members(context.content)
    assert sorted(served) == ["back.png.jpg", "front.png.jpg"]
    front = images["scan/related_images/a_pcd/front.png"]
    assert_close(colour_of(served["front.png.jpg"]), sent_colour(front))
    lone = await fleet.get_data(f"/api/tasks/{task_id}/data", type="context_image", number=1)
    assert list(zip_members(lone.content)) == ["b.png.jpg"]
    outside = await client.get(
        f"/api/jobs/{first['id']}/data", params={"type": "context_image", "number": 2}
    )
    assert outside.status_code == 400


async def test_a_broken_point_cloud_fails_and_leaves_no_task(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    files = {"good.pcd": binary_pcd(1, 4), "short.bin": kitti_scan(3, 2)[:20]}
    request = await fleet.wait(await fleet.upload(task_id, files))

    assert request["status"] == "failed"
    assert "short.bin" in request["message"]
    assert "multiple of 16 bytes" in request["message"]
    assert (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).status_code == 404
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert jobs["count"] == 0
    task = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert task["dimension"] == "2d"
    storage = fleet.ingest.platform.storage
    assert [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/")] == []


async def test_point_clouds_and_a_video_do_not_mix(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    request = await fleet.wait(
        await fleet.upload(task_id, {"a.pcd": binary_pcd(1, 4), "clip.mp4": b"\x00" * 64})
    )

    assert request["status"] == "failed"
    assert "clip.mp4" in request["message"]
