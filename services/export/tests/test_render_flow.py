"""A frame rendered with its annotations, through the real services: a task made from an
image on the share, annotations with a track put through the annotations service, the
render of a frame between the track's keyframes read from the export service."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from tessera.devstack.testing import Enrol

from .conftest import ExportFleet

GREY, RED, BLUE = (90, 90, 90), (255, 0, 0), (0, 0, 255)
LABELS = [{"name": "car", "color": "#ff0000"}, {"name": "person", "color": "#0000ff"}]


async def made_task(fleet: ExportFleet, frames: int, **fields: Any) -> int:
    """A task of `frames` grey 200 x 150 PNG frames on the share; its id."""
    created = await fleet.annotations.post(
        "/api/tasks", json={"name": "render", "labels": LABELS, **fields}
    )
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    folder = fleet.share / f"task{task_id}"
    folder.mkdir()
    for index in range(frames):
        Image.new("RGB", (200, 150), GREY).save(folder / f"f{index}.png")
    sent = await fleet.ingest.post(
        f"/api/tasks/{task_id}/data/",
        json={"image_quality": 90, "server_files": [f"task{task_id}/"]},
    )
    assert sent.status_code == 202, sent.text
    ended = await fleet.wait(fleet.ingest, sent.json()["rq_id"])
    assert ended["status"] == "finished", ended
    return task_id


def picture(data: bytes, kind: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == kind
        assert image.size == (200, 150)
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def close(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> bool:
    return bool(np.all(np.abs(pixel - np.array(colour)) <= tolerance))


async def test_a_frame_between_keyframes_shows_the_track_where_it_is(
    export_fleet: ExportFleet, enrol: Enrol
) -> None:
    task_id = await made_task(export_fleet, 3)
    labels = await export_fleet.labels(task_id)
    car, person = labels["car"], labels["person"]
    await export_fleet.put_annotations(task_id, {
        "shapes": [{"type": "rectangle", "frame": 1, "label_id": car,
                    "points": [20, 60, 80, 120], "attributes": []}],
        "tags": [{"frame": 1, "label_id": car, "attributes": []}],
        "tracks": [{"frame": 0, "label_id": person, "attributes": [], "shapes": [
            {"type": "rectangle", "frame": 0, "points": [100, 20, 140, 60], "attributes": []},
            {"type": "rectangle", "frame": 2, "points": [140, 80, 180, 120],
             "attributes": []},
        ]}],
    })  # fmt: skip
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/frames/1/render"

    answer = await client.get(path, params={"labels": "false", "outline_width": 2})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert f'filename="task_{task_id}_frame_000001.png"' in answer.headers["content-disposition"]
    pixels = picture(answer.content, "PNG")
    assert close(pixels[60, 50], RED)  # the box's top edge
    assert close(pixels[90, 20], RED)
    assert close(pixels[90, 50], GREY)
    # the track halfway between (100, 20, 140, 60) and (140, 80, 180, 120)
    assert close(pixels[50, 140], BLUE)  # its top edge
    assert close(pixels[70, 120], BLUE)  # its left edge
    assert close(pixels[90, 160], BLUE)  # its bottom edge
    assert close(pixels[20, 120], GREY)  # not where the keyframes are
    assert close(pixels[100, 160], GREY)
    assert close(pixels[2, 2], (24, 24, 24))  # the tag, listed in the corner

    zero = await client.get(f"/api/tasks/{task_id}/frames/0/render", params={"labels": "false"})
    first = picture(zero.content, "PNG")
    assert close(first[20, 120], BLUE)  # the first keyframe
    assert close(first[60, 50], GREY)  # the box is on frame 1 only

    (job,) = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()[
        "results"
    ]
    jpeg = await client.get(
        f"/api/jobs/{job['id']}/frames/1/render",
        params={"format": "jpeg", "quality": 95, "labels": "false", "outline_width": 4},
    )
    assert jpeg.status_code == 200, jpeg.text
    assert jpeg.headers["content-type"] == "image/jpeg"
    pixels = picture(jpeg.content, "JPEG")
    assert close(pixels[50, 140], BLUE, 40)
    assert close(pixels[60, 50], RED, 40)

    small = await client.get(path, params={"max_size": 100})
    with Image.open(io.BytesIO(small.content)) as image:
        assert image.size == (100, 75)

    for wrong, params in (
        (f"/api/tasks/{task_id}/frames/3/render", {}),
        (f"/api/jobs/{job['id']}/frames/5/render", {}),
        (path, {"quality": 80}),  # quality goes with jpeg
    ):
        refused = await client.get(wrong, params=params)
        assert refused.status_code == 400, (wrong, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get(path, params={"format": "gif"})).status_code == 422
    assert (await client.get(f"/api/tasks/{task_id + 1000}/frames/0/render")).status_code == 404

    eve = await enrol(export_fleet.export, "eve")
    for seen in (path, f"/api/jobs/{job['id']}/frames/1/render"):
        assert (await eve.client.get(seen)).status_code in (403, 404)
        assert (await export_fleet.export.anonymous.get(seen)).status_code == 401


async def test_a_task_without_data_has_nothing_to_render(export_fleet: ExportFleet) -> None:
    created = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "bare", "labels": LABELS}
    )
    task_id = created.json()["id"]
    answer = await export_fleet.export.client.get(f"/api/tasks/{task_id}/frames/0/render")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
