"""A project's dataset import end to end, as cvat-sdk's `Project.import_dataset` sends it:
Upload-Start, a TUS upload and Upload-Finish to `/api/projects/{id}/dataset/`; a task per
subset with the subset's images and annotations, the project's labels made of the
dataset's when it has none, and nothing left behind by an import that fails."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import httpx
import orjson
import pytest

from tessera.devstack.testing import Stack
from tessera.export.datasets.runner import MADE_PREFIX, DatasetImportRunner
from tessera.ingest.testing import png_bytes

from .conftest import ExportFleet
from .test_export_flow import _user_token
from .test_import_flow import cloud_bucket, service_state_of

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE = (40, 30)


async def upload_dataset(
    client: httpx.AsyncClient, project_id: int, data: bytes, filename: str, **params: Any
) -> str:
    """The three steps of cvat-sdk's `import_dataset`; the request's id."""
    path = f"/api/projects/{project_id}/dataset/"
    query = {"filename": filename, **params}
    started = await client.post(path, params=query, headers={"Upload-Start": ""})
    assert started.status_code == 202, started.text
    metadata = f"filename {base64.b64encode(filename.encode()).decode()}"
    created = await client.post(
        path,
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                 "Upload-Metadata": metadata},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    location = httpx.URL(created.headers["Location"])
    appended = await client.patch(
        location.path,
        content=data,
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert appended.status_code == 204, appended.text
    query["filename"] = created.headers["Upload-Filename"]
    finished = await client.post(path, params=query, headers={"Upload-Finish": ""})
    assert finished.status_code == 202, finished.text
    rq_id: str = finished.json()["rq_id"]
    return rq_id


def coco_file(images: list[str], annotations: list[dict[str, Any]], categories: list[str]) -> bytes:
    """A COCO instances file: images by file name (ids from 1), categories by name."""
    return orjson.dumps({
        "categories": [{"id": i, "name": n, "supercategory": ""}
                       for i, n in enumerate(categories, start=1)],
        "images": [{"id": i, "file_name": n, "width": SIZE[0], "height": SIZE[1]}
                   for i, n in enumerate(images, start=1)],
        "annotations": [{"id": i, "iscrowd": 0, "attributes": {}, **a}
                        for i, a in enumerate(annotations, start=1)],
    })  # fmt: skip


def box(image_id: int, category_id: int, bbox: list[float]) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "segmentation": []}


def polygon(image_id: int, category_id: int, points: list[float]) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": [0, 0, 1, 1],
            "segmentation": [points]}  # fmt: skip


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CATEGORIES = ["car", "person"]
TRAIN = coco_file(
    ["a.png", "sub/b.png"],
    [box(1, 1, [1, 2, 10, 5]), polygon(2, 2, [1, 1, 20, 1, 20, 15]), box(2, 1, [3, 3, 4, 4])],
    CATEGORIES,
)
VAL = coco_file(["c.png"], [box(1, 2, [5, 6, 7, 8])], CATEGORIES)


def coco_dataset(**extra: bytes) -> bytes:
    """A COCO 1.0 dataset with images, as CVAT exports a project: train (two images, one
    in a folder) and val (one image, and one without annotations)."""
    return zipped({
        "annotations/instances_train.json": TRAIN,
        "annotations/instances_val.json": coco_file(
            ["c.png", "d.png"], [box(1, 2, [5, 6, 7, 8])], CATEGORIES
        ),
        "images/train/a.png": png_bytes(1, SIZE),
        "images/train/sub/b.png": png_bytes(2, SIZE),
        "images/val/c.png": png_bytes(3, SIZE),
        "images/val/d.png": png_bytes(4, SIZE),
        **extra,
    })  # fmt: skip


async def create_project(fleet: ExportFleet, labels: list[str]) -> int:
    body = {"name": "dataset project", "labels": [{"name": name} for name in labels]}
    created = await fleet.annotations.post("/api/projects", json=body)
    assert created.status_code == 201, created.text
    project_id: int = created.json()["id"]
    return project_id


async def project_tasks(fleet: ExportFleet, project_id: int) -> list[dict[str, Any]]:
    found = await fleet.annotations.get(
        "/api/tasks", params={"project_id": project_id, "page_size": "all"}
    )
    assert found.status_code == 200, found.text
    tasks: list[dict[str, Any]] = found.json()["results"]
    return sorted(tasks, key=lambda task: task["id"])


async def project_labels(fleet: ExportFleet, project_id: int) -> dict[str, dict[str, Any]]:
    found = await fleet.annotations.get("/api/labels", params={"project_id": project_id})
    return {label["name"]: label for label in found.json()["results"]}


async def frame_names(fleet: ExportFleet, task_id: int) -> list[str]:
    meta = await fleet.ingest.get(f"/api/tasks/{task_id}/data/meta")
    assert meta.status_code == 200, meta.text
    return [frame["name"] for frame in meta.json()["frames"]]


async def stored_shapes(fleet: ExportFleet, task_id: int) -> list[tuple[Any, ...]]:
    """(frame, label name, type, points) of a task's shapes, in order."""
    labels = await fleet.annotations.get("/api/labels", params={"task_id": task_id})
    names = {label["id"]: label["name"] for label in labels.json()["results"]}
    found = (await fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert (found["tracks"], found["tags"]) == ([], [])
    return sorted(
        (s["frame"], names[s["label_id"]], s["type"], s["points"]) for s in found["shapes"]
    )


EXPECTED_TRAIN = [
    (0, "car", "rectangle", [1.0, 2.0, 11.0, 7.0]),
    (1, "car", "rectangle", [3.0, 3.0, 7.0, 7.0]),
    (1, "person", "polygon", [1.0, 1.0, 20.0, 1.0, 20.0, 15.0]),
]
EXPECTED_VAL = [(0, "person", "rectangle", [5.0, 6.0, 12.0, 14.0])]


async def test_coco_subsets_become_tasks_with_their_images_and_annotations(
    export_fleet: ExportFleet,
) -> None:
    project_id = await create_project(export_fleet, ["car", "person"])
    client = export_fleet.export.client
    # the train file also names a "background" category the project lacks: CVAT drops it
    with_background = coco_file(
        ["a.png", "sub/b.png"],
        [box(1, 1, [1, 2, 10, 5]), polygon(2, 2, [1, 1, 20, 1, 20, 15]),
         box(2, 1, [3, 3, 4, 4]), box(1, 3, [0, 0, 2, 2])],
        [*CATEGORIES, "background"],
    )  # fmt: skip
    archive = coco_dataset(**{"annotations/instances_train.json": with_background})

    rq_id = await upload_dataset(client, project_id, archive, "dataset.zip", format="COCO 1.0")
    ended = await export_fleet.wait(client, rq_id, timeout_s=120)

    assert ended["status"] == "finished", ended
    assert ended["operation"]["type"] == "import:dataset"
    assert ended["operation"]["target"] == "project"
    assert ended["operation"]["project_id"] == project_id
    assert ended["operation"]["format"] == "COCO 1.0"
    assert ended["result_id"] is None
    assert ended["message"].startswith("Imported 2 tasks: 'train'"), ended
    train, val = await project_tasks(export_fleet, project_id)
    assert (train["name"], train["subset"], train["size"]) == ("train", "train", 2)
    assert (val["name"], val["subset"], val["size"]) == ("val", "val", 2)
    assert await frame_names(export_fleet, train["id"]) == ["a.png", "sub/b.png"]
    assert await frame_names(export_fleet, val["id"]) == ["c.png", "d.png"]
    assert await stored_shapes(export_fleet, train["id"]) == EXPECTED_TRAIN
    assert await stored_shapes(export_fleet, val["id"]) == EXPECTED_VAL
    assert sorted(await project_labels(export_fleet, project_id)) == ["car", "person"]

    # one dataset import per project at a time: a second one waits for the first's end
    again = await upload_dataset(client, project_id, VAL_ONLY, "val.zip", format="COCO 1.0")
    assert (await export_fleet.wait(client, again, timeout_s=120))["status"] == "finished"
    assert len(await project_tasks(export_fleet, project_id)) == 3


VAL_ONLY = zipped({
    "annotations/instances_val.json": VAL,
    "images/val/c.png": png_bytes(3, SIZE),
})  # fmt: skip


async def test_a_project_without_labels_gets_the_datasets(export_fleet: ExportFleet) -> None:
    project_id = await create_project(export_fleet, [])
    client = export_fleet.export.client

    rq_id = await upload_dataset(
        client, project_id, coco_dataset(), "dataset.zip", format="coco 1.0"
    )
    ended = await export_fleet.wait(client, rq_id, timeout_s=120)

    assert ended["status"] == "finished", ended
    assert "labels were made of the dataset's: car, person" in ended["message"]
    labels = await project_labels(export_fleet, project_id)
    assert sorted(labels) == ["car", "person"]
    assert {label["type"] for label in labels.values()} == {"any"}
    assert all(label["attributes"] == [] for label in labels.values())
    train, val = await project_tasks(export_fleet, project_id)
    assert await stored_shapes(export_fleet, train["id"]) == EXPECTED_TRAIN
    assert await stored_shapes(export_fleet, val["id"]) == EXPECTED_VAL


async def test_a_label_the_project_lacks_fails_and_makes_nothing(
    export_fleet: ExportFleet,
) -> None:
    project_id = await create_project(export_fleet, ["car"])
    client = export_fleet.export.client

    rq_id = await upload_dataset(
        client, project_id, coco_dataset(), "dataset.zip", format="COCO 1.0"
    )
    ended = await export_fleet.wait(client, rq_id, timeout_s=120)

    assert ended["status"] == "failed", ended
    assert 'Target project does not have label with name "person"' in ended["message"]
    assert await project_tasks(export_fleet, project_id) == []
    assert sorted(await project_labels(export_fleet, project_id)) == ["car"]


async def test_a_hostile_or_broken_archive_leaves_nothing_behind(
    export_fleet: ExportFleet,
) -> None:
    project_id = await create_project(export_fleet, [])
    client = export_fleet.export.client
    escape = zipped({
        "annotations/instances_train.json": TRAIN,
        "../../images/train/a.png": png_bytes(1, SIZE),
    })  # fmt: skip
    no_image = coco_dataset()
    no_image = zipped({
        name: zipfile.ZipFile(io.BytesIO(no_image)).read(name)
        for name in zipfile.ZipFile(io.BytesIO(no_image)).namelist()
        if name != "images/val/d.png"
    })  # fmt: skip
    # val's image is no image: its task fails in ingest after train's task was made
    broken = coco_dataset(**{"images/val/c.png": b"not a png"})

    for data, reason in (
        (escape, "points outside the archive"),
        (b"{}", "takes a zip archive"),
        (no_image, "no image (or more than one) for 1 items of the dataset: 'd.png'"),
        (broken, "could not be made into the task's media"),
    ):
        rq_id = await upload_dataset(client, project_id, data, "dataset.zip", format="COCO 1.0")
        ended = await export_fleet.wait(client, rq_id, timeout_s=120)
        assert ended["status"] == "failed", ended
        assert reason in ended["message"], ended["message"]
        assert await project_tasks(export_fleet, project_id) == []
        assert await project_labels(export_fleet, project_id) == {}

    # a replica that died mid-import left a task: the next attempt's `clear` deletes it
    left = {"name": "train", "project_id": project_id}
    made = await export_fleet.annotations.post("/api/tasks", json=left)
    assert made.status_code == 201, made.text
    state = service_state_of(export_fleet)
    storage = export_fleet.export.platform.storage
    runner = DatasetImportRunner(
        storage, annotations=state.datasets.annotations, ingest=state.datasets.ingest,
        requests=state.requests,
    )  # fmt: skip
    record = {"tasks": [made.json()["id"]], "labels": []}
    await storage.put(f"{MADE_PREFIX}interrupted.json", orjson.dumps(record))
    await runner.clear("interrupted", {})
    await runner.clear("never-started", {})
    assert await project_tasks(export_fleet, project_id) == []


async def test_bad_requests_are_refused(export_fleet: ExportFleet) -> None:
    project_id = await create_project(export_fleet, ["car"])
    client = export_fleet.export.client
    path = f"/api/projects/{project_id}/dataset/"

    unknown = await client.post(
        path, params={"format": "Nope 1.0", "filename": "a.zip"}, headers={"Upload-Finish": ""}
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "query.format"
    missing = await client.post(
        path, params={"format": "COCO 1.0", "filename": "never.zip"},
        headers={"Upload-Finish": ""},
    )  # fmt: skip
    assert missing.status_code == 422
    nowhere = await client.post(
        "/api/projects/999999/dataset/", params={"format": "COCO 1.0"},
        headers={"Upload-Start": ""},
    )  # fmt: skip
    assert nowhere.status_code == 404

    # a user who sees the project (through a task of theirs in it) but may not change it
    token = await _user_token(export_fleet, "dataset-onlooker")
    as_user = {"Authorization": f"Bearer {token}", "Upload-Start": ""}
    me = (await export_fleet.annotations.get("/api/users/self", headers=as_user)).json()["id"]
    query = {"format": "COCO 1.0", "filename": "a.zip"}
    hidden = await client.post(path, params=query, headers=as_user)
    assert hidden.status_code == 404, hidden.text
    theirs = {"name": "theirs", "project_id": project_id, "owner_id": me}
    assert (await export_fleet.annotations.post("/api/tasks", json=theirs)).status_code == 201
    refused = await client.post(path, params=query, headers=as_user)
    assert refused.status_code == 403, refused.text


async def test_a_dataset_in_a_cloud_storage_is_imported_and_stays(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """`location=cloud_storage&cloud_storage_id=&filename=`: one POST, no upload; the
    worker reads the object through ingest and leaves it in the bucket."""
    project_id = await create_project(export_fleet, ["car", "person"])
    bucket = await cloud_bucket(export_fleet, stack)
    bucket.put("datasets/coco.zip", coco_dataset())
    client = export_fleet.export.client

    started = await client.post(f"/api/projects/{project_id}/dataset/", params={
        "format": "COCO 1.0", "location": "cloud_storage", "cloud_storage_id": bucket.storage_id,
        "filename": "datasets/coco.zip",
    })  # fmt: skip
    assert started.status_code == 202, started.text
    ended = await export_fleet.wait(client, started.json()["rq_id"], timeout_s=120)

    assert ended["status"] == "finished", ended
    train, val = await project_tasks(export_fleet, project_id)
    assert await stored_shapes(export_fleet, train["id"]) == EXPECTED_TRAIN
    assert await stored_shapes(export_fleet, val["id"]) == EXPECTED_VAL
    assert bucket.keys() == {"datasets/coco.zip"}
