"""Task and project backups end to end, in CVAT's backup layout: annotations and ingest on
sockets, the export service's queue, worker, archive upload and download."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from PIL import Image

from tessera.devstack.testing import Stack
from tessera.export.backups import layout
from tessera.ingest.media.manifest import write_video_manifest
from tessera.ingest.media.testing import make_test_video
from tessera.ingest.media.video import index_video
from tessera.ingest.testing import png_bytes
from tessera.platform.contracts.annotations import SnapshotLabel

from .conftest import ExportFleet
from .test_import_flow import cloud_bucket

SVG = (
    '<line x1="10" y1="10" x2="50" y2="50" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="1" '
    'data-label-name="head"></circle><circle r="1.5" cx="50" cy="50" data-node-id="2" '
    'data-label-name="tail"></circle>'
)
LABELS: list[dict[str, Any]] = [
    {"name": "car", "color": "#ff0000", "type": "any", "attributes": [
        {"name": "model", "mutable": False, "input_type": "select", "values": ["a", "b"],
         "default_value": "a"},
        {"name": "speed", "mutable": True, "input_type": "number", "values": ["0", "120", "5"],
         "default_value": "0"},
    ]},
    {"name": "sign", "color": "#00ff00", "type": "polygon", "attributes": []},
    {"name": "flag", "color": "#0000ff", "type": "tag", "attributes": [
        {"name": "kind", "mutable": False, "input_type": "text", "values": [],
         "default_value": ""},
    ]},
    {"name": "body", "color": "#ffff00", "type": "skeleton", "svg": SVG, "attributes": [],
     "sublabels": [
         {"name": "head", "color": "#ff00ff", "type": "points", "attributes": [
             {"name": "visible", "mutable": False, "input_type": "checkbox",
              "values": ["true"], "default_value": "true"},
         ]},
         {"name": "tail", "color": "#00ffff", "type": "points", "attributes": []},
     ]},
]  # fmt: skip


def _ids(labels: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """Label (and sublabel) ids and attribute spec ids, by name."""
    label_ids: dict[str, int] = {}
    spec_ids: dict[str, int] = {}
    for label in labels:
        label_ids[label["name"]] = label["id"]
        spec_ids.update({spec["name"]: spec["id"] for spec in label["attributes"]})
        sub_labels, sub_specs = _ids(label.get("sublabels", []))
        label_ids.update(sub_labels)
        spec_ids.update(sub_specs)
    return label_ids, spec_ids


async def _labels(fleet: ExportFleet, **scope: int) -> list[dict[str, Any]]:
    found = await fleet.annotations.get("/api/labels", params={**scope, "page_size": 100})
    assert found.status_code == 200, found.text
    return [label for label in found.json()["results"] if not label["has_parent"]]


def _annotations(labels: dict[str, int], specs: dict[str, int]) -> dict[str, Any]:
    """Shapes of several types (a skeleton with its points), a track of a box, tags."""
    car, sign, flag, body = labels["car"], labels["sign"], labels["flag"], labels["body"]

    def attribute(name: str, value: str) -> dict[str, Any]:
        return {"spec_id": specs[name], "value": value}

    return {
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": car, "points": [1, 2, 11, 12],
             "rotation": 30.0, "z_order": 2, "group": 1,
             "attributes": [attribute("model", "b"), attribute("speed", "40")]},
            {"type": "polygon", "frame": 1, "label_id": sign, "occluded": True,
             "points": [5, 5, 20, 5, 20, 20, 5, 20], "attributes": [], "source": "auto"},
            {"type": "skeleton", "frame": 2, "label_id": body, "points": [], "attributes": [],
             "elements": [
                 {"type": "points", "frame": 2, "label_id": labels["head"], "points": [3, 4],
                  "attributes": [attribute("visible", "false")]},
                 {"type": "points", "frame": 2, "label_id": labels["tail"], "points": [9, 9],
                  "outside": True, "attributes": []},
             ]},
        ],
        "tags": [
            {"frame": 0, "label_id": flag, "attributes": [attribute("kind", "start")]},
            {"frame": 2, "label_id": flag, "attributes": [attribute("kind", "end")]},
        ],
        "tracks": [
            {"frame": 0, "label_id": car, "attributes": [attribute("model", "a")], "shapes": [
                {"type": "rectangle", "frame": 0, "points": [0, 0, 10, 10],
                 "attributes": [attribute("speed", "10")]},
                {"type": "rectangle", "frame": 1, "points": [10, 10, 20, 20], "outside": True,
                 "attributes": [attribute("speed", "20")]},
            ]},
        ],
    }  # fmt: skip


async def _backup(
    fleet: ExportFleet, plural: str, object_id: int
) -> tuple[dict[str, Any], httpx.Response, zipfile.ZipFile]:
    """Back up a task or project as cvat-sdk does: the request, the download, the archive."""
    path = f"/api/{plural}/{object_id}/backup/export"
    ended = await fleet.wait(fleet.export.client, await fleet.start(path, lightweight="false"))
    assert ended["status"] == "finished", ended
    url = httpx.URL(ended["result_url"])
    downloaded = await fleet.export.client.get(url.path, params=url.params)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"] == "application/zip"
    return ended, downloaded, zipfile.ZipFile(io.BytesIO(downloaded.content))


def _without_ids(obj: Any) -> Any:
    """An annotation as `annotations.json` keeps it: no ids, no scores."""
    if isinstance(obj, list):
        return [_without_ids(item) for item in obj]
    if isinstance(obj, dict):
        return {k: _without_ids(v) for k, v in obj.items() if k not in ("id", "score")}
    return obj


def _from_backup(obj: Any, labels: dict[str, int], specs: dict[str, int]) -> Any:
    """An object of `annotations.json` with label and attribute names back to ids."""
    if isinstance(obj, list):
        return [_from_backup(item, labels, specs) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _from_backup(v, labels, specs) for k, v in obj.items() if k != "label"}
    if "label" in obj:
        out["label_id"] = labels[obj["label"]]
    if "name" in obj and "value" in obj:
        out = {"spec_id": specs[obj["name"]], "value": obj["value"]}
    return out


async def test_task_backup_has_cvats_layout_and_round_trips_the_annotations(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(
        frames=3, labels=LABELS, segment_size=2, bug_tracker="https://bugs.example/1",
        subset="train",
    )  # fmt: skip
    label_ids, spec_ids = _ids(await _labels(export_fleet, task_id=task_id))
    await export_fleet.put_annotations(task_id, _annotations(label_ids, spec_ids))

    ended, downloaded, archive = await _backup(export_fleet, "tasks", task_id)

    assert ended["operation"]["type"] == "export:backup"
    assert ended["operation"]["format"] is None
    assert ended["operation"]["task_id"] == task_id
    assert f"/api/tasks/{task_id}/backup/download?rq_id=" in ended["result_url"]
    disposition = downloaded.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="task_{task_id}_backup_')
    names = [f"data/task{task_id}/f{index}.png" for index in range(3)]
    assert archive.namelist() == [
        *names, "data/manifest.jsonl", "task.json", "annotations.json"
    ]  # fmt: skip
    for index, name in enumerate(names):
        assert archive.read(name) == png_bytes(index, (40, 30))
        assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
    manifest = [orjson.loads(line) for line in archive.read("data/manifest.jsonl").splitlines()]
    assert manifest == [
        {"version": "1.1"},
        {"type": "images"},
        *({"name": f"task{task_id}/f{index}", "extension": ".png", "width": 40, "height": 30}
          for index in range(3)),
    ]  # fmt: skip

    task = orjson.loads(archive.read("task.json"))
    expected_labels = [
        {key: label.get(key, default) for key, default in
         (("name", None), ("color", None), ("attributes", []), ("type", None), ("svg", ""),
          ("sublabels", []))}
        for label in LABELS
    ]  # fmt: skip
    expected_labels[3]["sublabels"] = [
        {"svg": "", "sublabels": [], **sub} for sub in LABELS[3]["sublabels"]
    ]
    # the points are named, as CVAT's backups name them; their order as stored
    body_svg = task["labels"][3].pop("svg")
    del expected_labels[3]["svg"]
    assert 'data-label-name="head"' in body_svg
    assert 'data-label-name="tail"' in body_svg
    assert "data-label-id" not in body_svg
    assert task == {
        "name": "export task",
        "bug_tracker": "https://bugs.example/1",
        "status": "annotation",
        "subset": "train",
        "labels": expected_labels,
        "version": "1.0",
        "data": {
            "chunk_size": 72, "image_quality": 70, "start_frame": 0, "stop_frame": 2,
            "storage_method": "file_system", "sorting_method": "lexicographical",
            "chunk_type": "imageset", "deleted_frames": [], "storage": "local",
        },
        "jobs": [
            {"status": "annotation", "type": "annotation", "start_frame": 0, "stop_frame": 1},
            {"status": "annotation", "type": "annotation", "start_frame": 2, "stop_frame": 2},
        ],
    }  # fmt: skip

    backed_up = orjson.loads(archive.read("annotations.json"))
    jobs = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    job_ids = sorted(job["id"] for job in jobs["results"])
    assert len(backed_up) == len(job_ids) == 2
    for job_id, element in zip(job_ids, backed_up, strict=True):
        stored = await export_fleet.annotations.get(f"/api/jobs/{job_id}/annotations")
        assert stored.status_code == 200, stored.text
        expected = _without_ids(stored.json())
        expected.pop("intervals", None)
        assert sorted(element) == ["shapes", "tags", "tracks", "version"]
        assert _from_backup(element, label_ids, spec_ids) == expected
    # CVAT's form of an object: labels and attributes by name, nothing but its keys
    first_job = backed_up[0]
    box = next(shape for shape in first_job["shapes"] if shape["type"] == "rectangle")
    assert box == {
        "type": "rectangle", "occluded": False, "outside": False, "z_order": 2,
        "rotation": 30.0, "points": [1.0, 2.0, 11.0, 12.0], "frame": 0, "group": 1,
        "source": "manual", "attributes": [{"value": "b", "name": "model"},
                                           {"value": "40", "name": "speed"}],
        "elements": [], "label": "car",
    }  # fmt: skip
    skeleton = next(shape for shape in backed_up[1]["shapes"] if shape["type"] == "skeleton")
    assert [element["label"] for element in skeleton["elements"]] == ["head", "tail"]
    assert skeleton["elements"][0]["attributes"] == [{"value": "false", "name": "visible"}]
    (track,) = first_job["tracks"]
    assert track["label"] == "car"
    assert track["attributes"] == [{"value": "a", "name": "model"}]
    assert [shape["attributes"] for shape in track["shapes"]] == [
        [{"value": "10", "name": "speed"}], [{"value": "20", "name": "speed"}]
    ]  # fmt: skip
    assert all("label" not in shape and "id" not in shape for shape in track["shapes"])
    assert [tag["attributes"] for tag in first_job["tags"]] == [[{"value": "start",
                                                                  "name": "kind"}]]  # fmt: skip


async def test_a_backup_is_reused_until_the_task_changes_and_is_not_a_dataset(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(frames=1)

    first, _, _ = await _backup(export_fleet, "tasks", task_id)
    await _backup(export_fleet, "tasks", task_id)
    assert len(await _object_keys(export_fleet)) == 1  # the second reused the first's archive
    car = (await export_fleet.labels(task_id))["car"]
    await export_fleet.put_annotations(task_id, {"tags": [
        {"frame": 0, "label_id": car, "attributes": []}
    ]})  # fmt: skip
    _, _, tagged = await _backup(export_fleet, "tasks", task_id)
    jobs = await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})
    (job,) = jobs.json()["results"]
    moved = await export_fleet.annotations.patch(
        f"/api/jobs/{job['id']}", json={"stage": "acceptance", "state": "completed"}
    )
    assert moved.status_code == 200, moved.text
    _, _, accepted = await _backup(export_fleet, "tasks", task_id)

    assert len(await _object_keys(export_fleet)) == 3
    (element,) = orjson.loads(tagged.read("annotations.json"))
    assert element["tags"] == [
        {"frame": 0, "group": 0, "source": "manual", "attributes": [], "label": "car"}
    ]  # fmt: skip
    assert [job["status"] for job in orjson.loads(tagged.read("task.json"))["jobs"]] == [
        "annotation"
    ]
    assert [job["status"] for job in orjson.loads(accepted.read("task.json"))["jobs"]] == [
        "completed"
    ]
    as_dataset = await export_fleet.export.client.get(
        f"/api/tasks/{task_id}/dataset/download", params={"rq_id": first["id"]}
    )
    assert as_dataset.status_code == 404


async def _object_keys(fleet: ExportFleet) -> set[str]:
    async with fleet.export.platform.database.transaction() as session:
        found = await session.scalars(
            sa.text("SELECT DISTINCT object_key FROM export.exports WHERE object_key IS NOT NULL")
        )
        return set(found)


async def test_video_task_backup_holds_the_video_and_its_manifest(
    export_fleet: ExportFleet,
) -> None:
    created = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "video", "labels": [{"name": "car"}]}
    )
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    folder = export_fleet.share / f"video{task_id}"
    folder.mkdir()
    video = make_test_video(folder / "clip.mp4", 12, (64, 48), gop=4)
    sent = await export_fleet.ingest.post(
        f"/api/tasks/{task_id}/data/",
        json={"image_quality": 70, "server_files": [f"video{task_id}/clip.mp4"],
              "frame_filter": "step=2", "use_cache": True},
    )  # fmt: skip
    assert sent.status_code == 202, sent.text
    assert (await export_fleet.wait(export_fleet.ingest, sent.json()["rq_id"]))["status"] == (
        "finished"
    )

    _, _, archive = await _backup(export_fleet, "tasks", task_id)

    assert archive.read(f"data/video{task_id}/clip.mp4") == video.read_bytes()
    lines = [orjson.loads(line) for line in archive.read("data/manifest.jsonl").splitlines()]
    assert lines[:3] == [
        {"version": "1.1"},
        {"type": "video"},
        {"properties": {"name": "clip.mp4", "resolution": [64, 48], "length": 12}},
    ]
    assert [line["number"] for line in lines[3:]] == [0, 4, 8]
    data = orjson.loads(archive.read("task.json"))["data"]
    assert data == {
        "chunk_size": data["chunk_size"], "image_quality": 70, "start_frame": 0,
        "stop_frame": 10, "frame_filter": "step=2", "storage_method": "cache",
        "sorting_method": "lexicographical", "chunk_type": "video", "deleted_frames": [],
        "storage": "local",
    }  # fmt: skip
    assert orjson.loads(archive.read("annotations.json")) == [
        {"version": 0, "tags": [], "shapes": [], "tracks": []}
    ]


async def test_project_backup_holds_its_tasks(export_fleet: ExportFleet) -> None:
    project = await export_fleet.annotations.post(
        "/api/projects",
        json={"name": "zoo", "bug_tracker": "https://bugs.example/zoo", "labels": LABELS},
    )
    assert project.status_code == 201, project.text
    project_id: int = project.json()["id"]
    empty = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "no media", "project_id": project_id}
    )
    assert empty.status_code == 201, empty.text
    first = await export_fleet.create_task(frames=2, project_id=project_id, labels=[])
    second = await export_fleet.create_task(frames=1, project_id=project_id, labels=[])
    label_ids, spec_ids = _ids(await _labels(export_fleet, project_id=project_id))
    await export_fleet.put_annotations(second, {"tags": [
        {"frame": 0, "label_id": label_ids["flag"], "attributes": []}
    ]})  # fmt: skip

    ended, downloaded, archive = await _backup(export_fleet, "projects", project_id)

    assert ended["operation"]["type"] == "export:backup"
    assert ended["operation"]["project_id"] == project_id
    assert f"/api/projects/{project_id}/backup/download?rq_id=" in ended["result_url"]
    assert downloaded.headers["content-disposition"].startswith(
        f'attachment; filename="project_{project_id}_backup_'
    )
    meta = orjson.loads(archive.read("project.json"))
    assert {key: meta[key] for key in ("name", "bug_tracker", "status", "version")} == {
        "name": "zoo", "bug_tracker": "https://bugs.example/zoo", "status": "annotation",
        "version": "1.0",
    }  # fmt: skip
    assert [label["name"] for label in meta["labels"]] == ["car", "sign", "flag", "body"]
    # the task without media is left out, and counted (CVAT's numbering)
    assert archive.namelist() == [
        "project.json",
        f"task_1/data/task{first}/f0.png", f"task_1/data/task{first}/f1.png",
        "task_1/data/manifest.jsonl", "task_1/task.json", "task_1/annotations.json",
        f"task_2/data/task{second}/f0.png",
        "task_2/data/manifest.jsonl", "task_2/task.json", "task_2/annotations.json",
    ]  # fmt: skip
    assert orjson.loads(archive.read("task_2/task.json"))["labels"] == meta["labels"]
    (element,) = orjson.loads(archive.read("task_2/annotations.json"))
    assert _from_backup(element["tags"], label_ids, spec_ids) == [
        {"frame": 0, "group": 0, "source": "manual", "attributes": [
            {"spec_id": spec_ids["kind"], "value": ""}
        ], "label_id": label_ids["flag"]}
    ]  # fmt: skip


@pytest.mark.parametrize("plural", ["tasks", "projects"])
async def test_backup_of_an_unknown_object_is_404(export_fleet: ExportFleet, plural: str) -> None:
    started = await export_fleet.export.client.post(f"/api/{plural}/987654/backup/export")

    assert started.status_code == 404, started.text


# -- restoring ---------------------------------------------------------------------------


async def _restore(fleet: ExportFleet, plural: str, data: bytes) -> dict[str, Any]:
    """Restore a backup as cvat-sdk's `create_from_backup` does (Upload-Start, a TUS upload,
    Upload-Finish); the request once it has ended."""
    client = fleet.export.client
    path = f"/api/{plural}/backup/"
    started = await client.post(path, params={"filename": "b.zip"}, headers={"Upload-Start": ""})
    assert started.status_code == 202, started.text
    metadata = f"filename {base64.b64encode(b'b.zip').decode()}"
    created = await client.post(
        path,
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                 "Upload-Metadata": metadata},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    appended = await client.patch(
        httpx.URL(created.headers["Location"]).path,
        content=data,
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert appended.status_code == 204, appended.text
    finished = await client.post(
        path, params={"filename": created.headers["Upload-Filename"]},
        headers={"Upload-Finish": ""},
    )  # fmt: skip
    assert finished.status_code == 202, finished.text
    return await fleet.wait(client, finished.json()["rq_id"])


def _members(archive: zipfile.ZipFile) -> dict[str, bytes]:
    """The archive's members, its JSON members parsed, job versions left out."""
    found: dict[str, Any] = {}
    for name in archive.namelist():
        found[name] = archive.read(name)
        if name.endswith("annotations.json"):
            found[name] = [{**job, "version": None} for job in orjson.loads(found[name])]
        elif name.endswith(".json"):
            found[name] = orjson.loads(found[name])
    return found


async def test_a_backup_restores_into_a_task_that_backs_up_the_same(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(
        frames=3, labels=LABELS, segment_size=2, bug_tracker="https://bugs.example/1",
        subset="train",
    )  # fmt: skip
    label_ids, spec_ids = _ids(await _labels(export_fleet, task_id=task_id))
    await export_fleet.put_annotations(task_id, _annotations(label_ids, spec_ids))
    jobs = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    last = max(job["id"] for job in jobs["results"])
    moved = await export_fleet.annotations.patch(
        f"/api/jobs/{last}", json={"stage": "acceptance", "state": "completed"}
    )
    assert moved.status_code == 200, moved.text
    _, downloaded, original = await _backup(export_fleet, "tasks", task_id)

    ended = await _restore(export_fleet, "tasks", downloaded.content)

    assert ended["status"] == "finished", ended
    assert ended["operation"]["type"] == "import:backup"
    restored_id = ended["result_id"]
    assert restored_id != task_id
    restored = (await export_fleet.annotations.get(f"/api/tasks/{restored_id}")).json()
    assert restored["owner"]["username"] == "admin"
    assert restored["size"] == 3
    _, _, again = await _backup(export_fleet, "tasks", restored_id)
    assert _members(again) == _members(original)
    uploads = await _object_keys_under(export_fleet, "backups/")
    assert uploads == set()  # the uploaded archive is gone once restored


async def _object_keys_under(fleet: ExportFleet, prefix: str) -> set[str]:
    storage = fleet.export.platform.storage
    return {key async for key, _ in storage.list_keys(prefix)}


async def test_a_project_backup_restores_with_its_tasks(export_fleet: ExportFleet) -> None:
    project = await export_fleet.annotations.post(
        "/api/projects", json={"name": "zoo", "labels": LABELS}
    )
    assert project.status_code == 201, project.text
    project_id: int = project.json()["id"]
    first = await export_fleet.create_task(frames=3, project_id=project_id, labels=[])
    await export_fleet.create_task(frames=1, project_id=project_id, labels=[])
    label_ids, spec_ids = _ids(await _labels(export_fleet, project_id=project_id))
    await export_fleet.put_annotations(first, _annotations(label_ids, spec_ids))
    _, downloaded, original = await _backup(export_fleet, "projects", project_id)

    ended = await _restore(export_fleet, "projects", downloaded.content)

    assert ended["status"] == "finished", ended
    restored_id = ended["result_id"]
    tasks = await export_fleet.annotations.get("/api/tasks", params={"project_id": restored_id})
    assert [task["name"] for task in tasks.json()["results"]] == ["export task", "export task"]
    _, _, again = await _backup(export_fleet, "projects", restored_id)
    assert _members(again) == _members(original)


async def test_a_task_backup_restores_from_a_cloud_storage_object(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """`POST /api/tasks/backup/?location=cloud_storage&cloud_storage_id=&filename=`, as
    cvat-sdk's `create_backup` sends it: no upload, the worker reads the object, which
    stays in the bucket."""
    task_id = await export_fleet.create_task(frames=2)
    _, downloaded, original = await _backup(export_fleet, "tasks", task_id)
    bucket = await cloud_bucket(export_fleet, stack)
    bucket.put("backups/task.zip", downloaded.content)
    client = export_fleet.export.client
    cloud: dict[str, Any] = {
        "location": "cloud_storage", "cloud_storage_id": bucket.storage_id,
        "filename": "backups/task.zip",
    }  # fmt: skip

    started = await client.post("/api/tasks/backup/", params=cloud)

    assert started.status_code == 202, started.text
    ended = await export_fleet.wait(client, started.json()["rq_id"])
    assert ended["status"] == "finished", ended
    assert ended["operation"]["type"] == "import:backup"
    restored_id = ended["result_id"]
    assert restored_id != task_id
    _, _, again = await _backup(export_fleet, "tasks", restored_id)
    assert _members(again) == _members(original)
    assert bucket.keys() == {"backups/task.zip"}  # the caller's object stays

    missing = await client.post("/api/tasks/backup/", params={**cloud, "filename": "no.zip"})
    assert missing.status_code == 202, missing.text
    failed = await export_fleet.wait(client, missing.json()["rq_id"])
    assert failed["status"] == "failed", failed
    assert "'no.zip' of cloud storage" in failed["message"], failed
    for left_out in ("cloud_storage_id", "filename"):
        query = {name: value for name, value in cloud.items() if name != left_out}
        refused = await client.post("/api/projects/backup/", params=query)
        assert refused.status_code == 400, (left_out, refused.text)
        assert refused.json()["errors"][0]["field"] == f"query.{left_out}"
    unknown = await client.post(
        "/api/tasks/backup/", params={**cloud, "cloud_storage_id": bucket.storage_id + 99}
    )
    assert unknown.status_code == 404, unknown.text


async def test_a_backup_of_the_other_kind_or_not_a_backup_fails_and_leaves_nothing(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(frames=1)
    _, downloaded, _ = await _backup(export_fleet, "tasks", task_id)
    before = (await export_fleet.annotations.get("/api/tasks")).json()["count"]

    as_project = await _restore(export_fleet, "projects", downloaded.content)
    garbage = await _restore(export_fleet, "tasks", b"not a zip")
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("task.json", orjson.dumps({"version": "1.0", "name": "x", "jobs": [
            {"start_frame": 0, "stop_frame": 0, "status": "annotation", "type": "annotation"}
        ], "labels": [{"name": "car"}], "data": {"image_quality": 70}}))  # fmt: skip
        archive.writestr("annotations.json", b"[[]]")
    no_media = await _restore(export_fleet, "tasks", broken.getvalue())

    assert as_project["status"] == "failed"
    assert "task backup" in as_project["message"]
    assert garbage["status"] == "failed"
    assert "not a zip archive" in garbage["message"]
    assert no_media["status"] == "failed"
    assert "no media" in no_media["message"]
    assert (await export_fleet.annotations.get("/api/tasks")).json()["count"] == before


# A backup as CVAT 2.x writes it (cvat/apps/engine/backup.py: `TaskExporter`), made by hand.
CVAT_SVG = (
    '<line x1="30" y1="30" x2="60" y2="60" stroke="black" data-type="edge" data-node-from="1" '
    'data-node-to="2"></line><circle r="0.75" cx="30" cy="30" stroke="black" fill="#b3b3b3" '
    'data-type="element node" data-element-id="1" data-node-id="1" data-label-name="nose">'
    '</circle><circle r="0.75" cx="60" cy="60" stroke="black" fill="#b3b3b3" '
    'data-type="element node" data-element-id="2" data-node-id="2" data-label-name="neck">'
    "</circle>"
)
CVAT_LABELS: list[dict[str, Any]] = [
    {"name": "car", "color": "#fa3253", "attributes": [
        {"name": "color", "mutable": False, "input_type": "select", "default_value": "red",
         "values": ["red", "blue"]},
        {"name": "moving", "mutable": True, "input_type": "checkbox", "default_value": "false",
         "values": ["false"]},
    ], "type": "any", "svg": "", "sublabels": []},
    {"name": "person", "color": "#33ddff", "attributes": [], "type": "skeleton", "svg": CVAT_SVG,
     "sublabels": [
         {"name": "nose", "color": "#d12345", "attributes": [], "type": "points", "svg": "",
          "sublabels": []},
         {"name": "neck", "color": "#1243ab", "attributes": [], "type": "points", "svg": "",
          "sublabels": []},
     ]},
    {"name": "weather", "color": "#aabbcc", "attributes": [], "type": "tag", "svg": "",
     "sublabels": []},
]  # fmt: skip


def _shape(kind: str, frame: int, points: list[float], **extra: Any) -> dict[str, Any]:
    return {"type": kind, "occluded": False, "outside": False, "z_order": 0, "rotation": 0.0,
            "points": points, "frame": frame, "attributes": [], **extra}  # fmt: skip


def _cvat_annotations() -> list[dict[str, Any]]:
    """Two jobs' annotations: tags, a box, a skeleton, a skeleton track, a box track."""

    def labelled(label: str, **fields: Any) -> dict[str, Any]:
        return {"group": 0, "source": "manual", **fields, "label": label}

    moving_blue_car = [{"value": "blue", "name": "color"}, {"value": "true", "name": "moving"}]
    return [
        {"version": 4, "tags": [
            labelled("weather", frame=0, attributes=[]),
        ], "shapes": [
            labelled("car", **_shape("rectangle", 0, [1.0, 2.0, 11.0, 12.0],
                                     attributes=moving_blue_car), elements=[]),
            labelled("person", **_shape("skeleton", 1, []), elements=[
                labelled("nose", **_shape("points", 1, [3.0, 4.0])),
                labelled("neck", **_shape("points", 1, [5.0, 9.0], outside=True)),
            ]),
        ], "tracks": [
            labelled("person", frame=0, attributes=[], shapes=[
                _shape("skeleton", 0, []),
            ], elements=[
                labelled("nose", frame=0, attributes=[], shapes=[
                    _shape("points", 0, [1.0, 1.0]), _shape("points", 1, [2.0, 2.0]),
                ]),
                labelled("neck", frame=0, attributes=[], shapes=[
                    _shape("points", 0, [3.0, 3.0]), _shape("points", 1, [4.0, 4.0],
                                                            outside=True),
                ]),
            ]),
        ]},
        {"version": 1, "tags": [], "shapes": [], "tracks": [
            labelled("car", frame=2, attributes=[{"value": "red", "name": "color"}], shapes=[
                _shape("rectangle", 2, [0.0, 0.0, 5.0, 5.0],
                       attributes=[{"value": "false", "name": "moving"}]),
                _shape("rectangle", 3, [2.0, 2.0, 7.0, 7.0], outside=True,
                       attributes=[{"value": "true", "name": "moving"}]),
            ], elements=[]),
        ]},
    ]  # fmt: skip


def _cvat_task_backup() -> bytes:
    """An image task's backup as CVAT writes it: four PNGs, their manifest and its index,
    task.json and annotations.json."""
    task = {
        "name": "made by cvat", "bug_tracker": "", "status": "annotation", "subset": "",
        "labels": CVAT_LABELS, "version": "1.0",
        "data": {"chunk_size": 72, "image_quality": 70, "start_frame": 0, "stop_frame": 3,
                 "storage_method": "cache", "sorting_method": "lexicographical",
                 "chunk_type": "imageset", "deleted_frames": [], "storage": "local"},
        "jobs": [
            {"status": "annotation", "type": "annotation", "start_frame": 0, "stop_frame": 1},
            {"status": "completed", "type": "annotation", "start_frame": 2, "stop_frame": 3},
        ],
    }  # fmt: skip
    manifest = [{"version": "1.1"}, {"type": "images"}] + [
        {"name": f"img_{i}", "extension": ".png", "width": 40, "height": 30} for i in range(4)
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(4):
            archive.writestr(f"data/img_{index}.png", png_bytes(index, (40, 30)))
        archive.writestr("data/manifest.jsonl", b"\n".join(map(orjson.dumps, manifest)) + b"\n")
        archive.writestr("data/index.json", b'{"0":31,"1":97,"2":163,"3":229}')
        archive.writestr("task.json", orjson.dumps(task))
        archive.writestr("annotations.json", orjson.dumps(_cvat_annotations()))
    return buffer.getvalue()


async def test_a_backup_made_by_cvat_restores_with_its_skeletons_tracks_and_tags(
    export_fleet: ExportFleet,
) -> None:
    ended = await _restore(export_fleet, "tasks", _cvat_task_backup())

    assert ended["status"] == "finished", ended
    task_id = ended["result_id"]
    task = (await export_fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert (task["name"], task["size"], task["segment_size"], task["overlap"]) == (
        "made by cvat",
        4,
        2,
        0,
    )
    meta = (await export_fleet.ingest.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [frame["name"] for frame in meta["frames"]] == [f"img_{i}.png" for i in range(4)]
    original = await export_fleet.ingest.get(
        f"/api/tasks/{task_id}/data", params={"type": "frame", "number": 3,
                                             "quality": "original"},
    )  # fmt: skip
    assert original.content == png_bytes(3, (40, 30))
    _, _, backup = await _backup(export_fleet, "tasks", task_id)
    meta_json = orjson.loads(backup.read("task.json"))
    assert meta_json["labels"] == CVAT_LABELS
    assert [job["status"] for job in meta_json["jobs"]] == ["annotation", "completed"]
    restored = [{**job, "version": None} for job in orjson.loads(backup.read("annotations.json"))]
    assert restored == [{**job, "version": None} for job in _cvat_annotations()]


async def test_a_video_backup_made_by_cvat_restores(
    export_fleet: ExportFleet, tmp_path: Path
) -> None:
    video = make_test_video(tmp_path / "clip.mp4", 12, (64, 48), gop=4)
    manifest = io.StringIO()
    write_video_manifest(manifest, index_video(video), "clip.mp4")
    task = {
        "name": "a video", "bug_tracker": "", "status": "annotation", "subset": "",
        "labels": CVAT_LABELS[:1], "version": "1.0",
        "data": {"chunk_size": 36, "image_quality": 70, "start_frame": 0, "stop_frame": 10,
                 "frame_filter": "step=2", "storage_method": "cache",
                 "sorting_method": "lexicographical", "chunk_type": "video",
                 "deleted_frames": [], "storage": "local"},
        "jobs": [{"status": "annotation", "type": "annotation", "start_frame": 0,
                  "stop_frame": 5}],
    }  # fmt: skip
    track = _cvat_annotations()[1]["tracks"][0]
    track = {**track, "frame": 1, "shapes": [{**shape, "frame": shape["frame"] - 1}
                                             for shape in track["shapes"]]}  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/clip.mp4", video.read_bytes())
        archive.writestr("data/manifest.jsonl", manifest.getvalue())
        archive.writestr("task.json", orjson.dumps(task))
        archive.writestr("annotations.json", orjson.dumps(
            [{"version": 2, "tags": [], "shapes": [], "tracks": [track]}]
        ))  # fmt: skip

    ended = await _restore(export_fleet, "tasks", buffer.getvalue())

    assert ended["status"] == "finished", ended
    task_id = ended["result_id"]
    meta = (await export_fleet.ingest.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert (meta["size"], meta["start_frame"], meta["stop_frame"], meta["frame_filter"]) == (
        6,
        0,
        10,
        "step=2",
    )
    _, _, backup = await _backup(export_fleet, "tasks", task_id)
    assert backup.read("data/clip.mp4") == video.read_bytes()
    (element,) = orjson.loads(backup.read("annotations.json"))
    assert element["tracks"] == [track]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"storage": "cloud_storage"}, "lightweight"),
        ({"storage": "local", "custom_segments": True}, "chosen files"),
        ({"storage": "local", "validation_layout": {"mode": "gt_pool"}}, "chosen files"),
    ],
)
def test_backups_tessera_cannot_restore_are_refused(data: dict[str, Any], says: str) -> None:
    with pytest.raises(layout.BackupInvalid, match=says):
        layout.data_options(data)


def test_annotations_of_other_jobs_are_left_out_and_names_must_match() -> None:
    task = {"jobs": [{"type": "annotation"}, {"type": "ground_truth"}, {}]}
    elements = [{"tags": [1]}, {"tags": [2]}, {"tags": [3]}]

    assert layout.job_annotations(task, elements) == [{"tags": [1]}, {"tags": [3]}]
    with pytest.raises(layout.BackupInvalid, match="holds 2 jobs"):
        layout.job_annotations(task, elements[:2])
    ids = layout.LabelIds([SnapshotLabel(id=1, name="car", color="", type="any", attributes=[])])
    with pytest.raises(layout.BackupInvalid, match="'bus'"):
        layout.job_document({"tags": [{"label": "bus", "frame": 0, "attributes": []}]}, ids)
    with pytest.raises(layout.BackupInvalid, match="'color'"):
        layout.job_document(
            {"tags": [{"label": "car", "frame": 0, "attributes": [{"name": "color",
                                                                   "value": "red"}]}]},
            ids,
        )  # fmt: skip


# -- context images and deleted frames ---------------------------------------------------


def _jpeg_bytes(seed: int, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, seed * 30 % 256, 50)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _colour(image: bytes) -> tuple[tuple[int, int], tuple[int, ...]]:
    """An image's size and the colour of its pixel (3, 3)."""
    decoded = Image.open(io.BytesIO(image)).convert("RGB")
    pixel = decoded.getpixel((3, 3))
    assert isinstance(pixel, tuple)
    return decoded.size, tuple(int(value) for value in pixel)


async def _served_context_images(fleet: ExportFleet, task_id: int, number: int) -> dict[str, bytes]:
    """Frame `number`'s context images as ingest serves them (CVAT's `type=context_image`)."""
    served = await fleet.ingest.get(
        f"/api/tasks/{task_id}/data", params={"type": "context_image", "number": number}
    )
    assert served.status_code == 200, served.text
    with zipfile.ZipFile(io.BytesIO(served.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_context_images_and_deleted_frames_back_up_and_restore(
    export_fleet: ExportFleet,
) -> None:
    created = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "with context", "labels": LABELS, "segment_size": 2}
    )
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    folder = f"ctx{task_id}"
    frames = {f"{folder}/f{index}.png": png_bytes(index, (40, 30)) for index in range(3)}
    related = {
        f"{folder}/related_images/f0_png/left.png": png_bytes(7, (20, 10)),
        f"{folder}/related_images/f0_png/right.jpg": _jpeg_bytes(1, (16, 16)),
        f"{folder}/related_images/f2_png/top.png": png_bytes(9, (10, 20)),
    }
    for name, content in {**frames, **related}.items():
        (export_fleet.share / name).parent.mkdir(parents=True, exist_ok=True)
        (export_fleet.share / name).write_bytes(content)
    sent = await export_fleet.ingest.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": [f"{folder}/"]}
    )
    assert sent.status_code == 202, sent.text
    made = await export_fleet.wait(export_fleet.ingest, sent.json()["rq_id"])
    assert made["status"] == "finished", made
    label_ids, spec_ids = _ids(await _labels(export_fleet, task_id=task_id))
    await export_fleet.put_annotations(task_id, _annotations(label_ids, spec_ids))
    deleted = await export_fleet.ingest.patch(
        f"/api/tasks/{task_id}/data/meta", json={"deleted_frames": [1]}
    )
    assert deleted.status_code == 200, deleted.text

    _, downloaded, original = await _backup(export_fleet, "tasks", task_id)

    # CVAT's layout: each image's context images in its related_images/<name>_<ext>/
    # folder, as they were given, listed in the manifest; the deleted frames in task.json
    assert original.namelist() == [
        f"data/{folder}/f0.png",
        f"data/{folder}/related_images/f0_png/left.png",
        f"data/{folder}/related_images/f0_png/right.jpg",
        f"data/{folder}/f1.png",
        f"data/{folder}/f2.png",
        f"data/{folder}/related_images/f2_png/top.png",
        "data/manifest.jsonl", "task.json", "annotations.json",
    ]  # fmt: skip
    for name, content in {**frames, **related}.items():
        assert original.read(f"data/{name}") == content
    manifest = [orjson.loads(line) for line in original.read("data/manifest.jsonl").splitlines()]
    assert [line.get("meta") for line in manifest[2:]] == [
        {"related_images": list(related)[:2]},
        None,
        {"related_images": list(related)[2:]},
    ]
    assert orjson.loads(original.read("task.json"))["data"]["deleted_frames"] == [1]

    ended = await _restore(export_fleet, "tasks", downloaded.content)

    assert ended["status"] == "finished", ended
    assert ended["message"] == ""  # nothing left out
    restored_id = ended["result_id"]
    meta = (await export_fleet.ingest.get(f"/api/tasks/{restored_id}/data/meta")).json()
    assert meta["deleted_frames"] == [1]
    assert [frame["related_files"] for frame in meta["frames"]] == [2, 0, 1]
    for number in (0, 2):
        restored_images = await _served_context_images(export_fleet, restored_id, number)
        assert restored_images == await _served_context_images(export_fleet, task_id, number)
    assert sorted(await _served_context_images(export_fleet, restored_id, 0)) == [
        "left.png.jpg", "right.jpg.jpg"
    ]  # fmt: skip
    # the same files, manifest, deleted frames, jobs and annotations (frame 1's too)
    _, _, again = await _backup(export_fleet, "tasks", restored_id)
    assert _members(again) == _members(original)
    first_job = orjson.loads(again.read("annotations.json"))[0]
    assert {shape["frame"] for shape in first_job["shapes"]} == {0, 1}  # 1 is deleted


def _cvat_backup_with_context_and_ground_truth() -> tuple[bytes, dict[str, bytes]]:
    """A backup as CVAT 2.x writes it of an image task with context images (its upload
    folder's `related_images/`, listed in the manifest's `meta`), deleted frames, a ground
    truth job of frames 0 and 2 (CVAT's `validation_mode: "gt"`: its own job, after the
    annotation jobs) and an annotation guide; and the context images by path in `data/`."""
    related = {
        "related_images/img_0_png/cam_left.png": png_bytes(11, (24, 12)),
        "related_images/img_0_png/cam_right.png": png_bytes(12, (12, 24)),
        "related_images/img_2_png/cam_left.jpg": _jpeg_bytes(3, (20, 20)),
    }
    task = {
        "name": "cvat with context", "bug_tracker": "", "status": "annotation", "subset": "",
        "labels": CVAT_LABELS, "version": "1.0",
        "data": {"chunk_size": 72, "image_quality": 70, "start_frame": 0, "stop_frame": 3,
                 "storage_method": "cache", "sorting_method": "lexicographical",
                 "chunk_type": "imageset", "deleted_frames": [3, 1], "storage": "local"},
        "jobs": [
            {"status": "annotation", "type": "annotation", "start_frame": 0, "stop_frame": 1},
            {"status": "completed", "type": "annotation", "start_frame": 2, "stop_frame": 3},
            {"status": "annotation", "type": "ground_truth", "start_frame": 0,
             "stop_frame": 2, "frames": [0, 2]},
        ],
    }  # fmt: skip
    by_image = {0: list(related)[:2], 2: list(related)[2:]}
    manifest = [{"version": "1.1"}, {"type": "images"}] + [
        {"name": f"img_{i}", "extension": ".png", "width": 40, "height": 30,
         **({"meta": {"related_images": by_image[i]}} if i in by_image else {})}
        for i in range(4)
    ]  # fmt: skip
    ground_truth = {"version": 0, "tags": [
        {"frame": 2, "group": 0, "source": "manual", "attributes": [], "label": "weather"}
    ], "shapes": [], "tracks": []}  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(4):
            archive.writestr(f"data/img_{index}.png", png_bytes(index, (40, 30)))
            for name in by_image.get(index, []):
                archive.writestr(f"data/{name}", related[name])
        archive.writestr("data/manifest.jsonl", b"\n".join(map(orjson.dumps, manifest)) + b"\n")
        archive.writestr("data/index.json", b'{"0":31,"1":97,"2":163,"3":229}')
        archive.writestr("task.json", orjson.dumps(task))
        archive.writestr("annotations.json", orjson.dumps([*_cvat_annotations(), ground_truth]))
        archive.writestr("annotation_guide.md", b"# Cars\n![](assets/cars.png)\n")
        archive.writestr("assets/cars.png", png_bytes(20))
    return buffer.getvalue(), related


async def test_a_cvat_backup_restores_its_context_images_and_deleted_frames(
    export_fleet: ExportFleet,
) -> None:
    data, related = _cvat_backup_with_context_and_ground_truth()

    ended = await _restore(export_fleet, "tasks", data)

    assert ended["status"] == "finished", ended
    assert ended["message"] == (
        "Restored without what Tessera does not have: the ground truth job of frames 0, 2 "
        "with 1 annotation; the annotation guide annotation_guide.md with 1 asset."
    )
    task_id = ended["result_id"]
    meta = (await export_fleet.ingest.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert meta["deleted_frames"] == [1, 3]
    assert [frame["related_files"] for frame in meta["frames"]] == [2, 0, 1, 0]
    jobs = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert [job["type"] for job in jobs["results"]] == ["annotation", "annotation"]
    for job in jobs["results"]:
        job_meta = await export_fleet.ingest.get(f"/api/jobs/{job['id']}/data/meta")
        assert job_meta.json()["deleted_frames"] == [job["stop_frame"]]  # 1, then 3
    served = await _served_context_images(export_fleet, task_id, 0)
    assert sorted(served) == ["cam_left.png.jpg", "cam_right.png.jpg"]
    for name, image in served.items():  # JPEGs of the given images (CVAT's re-encoding)
        given = _colour(related[f"related_images/img_0_png/{name.removesuffix('.jpg')}"])
        assert _colour(image)[0] == given[0]
        assert max(abs(a - b) for a, b in zip(_colour(image)[1], given[1], strict=True)) <= 3
    _, _, backup = await _backup(export_fleet, "tasks", task_id)
    for name, content in related.items():
        assert backup.read(f"data/{name}") == content
    given_manifest = zipfile.ZipFile(io.BytesIO(data)).read("data/manifest.jsonl")
    assert backup.read("data/manifest.jsonl").splitlines() == given_manifest.splitlines()
    meta_json = orjson.loads(backup.read("task.json"))
    assert meta_json["data"]["deleted_frames"] == [1, 3]
    assert [job["type"] for job in meta_json["jobs"]] == ["annotation", "annotation"]
    restored = [{**job, "version": None} for job in orjson.loads(backup.read("annotations.json"))]
    assert restored == [{**job, "version": None} for job in _cvat_annotations()]


def test_deleted_frames_and_what_is_left_out_are_read_from_task_json() -> None:
    assert layout.deleted_frames({"deleted_frames": [4, 2, 4]}) == [2, 4]
    assert layout.deleted_frames({}) == []
    for bad in ([1, "2"], [-1], [True], "1"):
        with pytest.raises(layout.BackupInvalid, match="deleted_frames"):
            layout.deleted_frames({"deleted_frames": bad})
    task = {"jobs": [
        {"type": "annotation"},
        {"type": "consensus_replica", "start_frame": 0, "stop_frame": 9},
        {"type": "ground_truth", "start_frame": 0, "stop_frame": 40, "frames": list(range(12))},
    ]}  # fmt: skip
    elements = [{"tags": [1]}, {"tags": [1], "shapes": [2, 3]}, {}]
    assert layout.left_out(task, elements, {"task_1/annotation_guide.md"}, "task_1/") == [
        "task_1/the consensus replica job of frames 0-9 with 3 annotations",
        "task_1/the ground truth job of frames 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (12 frames) "
        "with 0 annotations",
        "the annotation guide task_1/annotation_guide.md with 0 assets",
    ]
