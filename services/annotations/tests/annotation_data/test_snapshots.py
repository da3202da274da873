"""The internal snapshot of a task's or a job's annotations (export's read): its header
matches the task, objects come in frame order and equal the annotations GET, a job's has
only its objects, only administrators read it, the shared client reads it back over a
socket and refuses a cut stream, and the read is one consistent snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tessera.annotations.app import create_app
from tessera.annotations.snapshots import repository as snapshot_sql
from tessera.annotations.snapshots import service as snapshots
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    serve_in_thread,
    settings_for,
)
from tessera.platform.clients.annotations import (
    AnnotationsClient,
    SnapshotIncomplete,
    SnapshotItem,
)
from tessera.platform.contracts.annotations import SnapshotEnd, SnapshotHeader
from tessera.platform.errors import Problem

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task
LAB = {"X-Organization": "lab"}
KIND_ORDER = {"tag": 0, "shape": 1, "track": 2}
MASK = [0.0, 3.0, 2.0, 1.0, 10.0, 20.0, 12.0, 21.0]
SVG = (
    '<line x1="10" y1="10" x2="50" y2="50" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="1" '
    'data-label-name="head"></circle><circle r="1.5" cx="50" cy="50" data-node-id="2" '
    'data-label-name="tail"></circle>'
)
LABELS: list[dict[str, Any]] = [
    {"name": "car", "color": "#ff0000", "attributes": [
        {"name": "color", "mutable": False, "input_type": "select", "values": ["red", "blue"]},
        {"name": "speed", "mutable": True, "input_type": "number", "values": ["0", "100", "5"]},
        {"name": "note", "mutable": True, "input_type": "text", "values": []},
    ]},
    {"name": "flag", "type": "tag"},
    {"name": "body", "type": "skeleton", "svg": SVG, "sublabels": [
        {"name": "head", "type": "points", "attributes": [
            {"name": "visible", "mutable": True, "input_type": "checkbox", "values": ["true"]}]},
        {"name": "tail", "type": "points"},
    ]},
]  # fmt: skip


@dataclass
class Built:
    """A task in a project of organization `lab`, with two jobs of annotations."""

    project_id: int
    organization_id: int
    task_id: int
    job_ids: list[int]
    labels: dict[str, int]
    specs: dict[str, int]


async def build(client: httpx.AsyncClient) -> Built:
    """Through the API, as the admin: the organization, the project with `LABELS`, a task
    of 10 frames in two jobs (0-4, 5-9), and annotations of every kind in both."""

    async def ok(response: Awaitable[httpx.Response], status: int = 201) -> Any:
        answer = await response
        assert answer.status_code == status, answer.text
        return answer.json()

    contact = {"email": "lab@example.com"}
    org = await ok(client.post("/api/organizations", json={"slug": "lab", "contact": contact}))
    project = await ok(client.post("/api/projects", headers=LAB,
                                   json={"name": "zoo", "labels": LABELS}))  # fmt: skip
    task = await ok(client.post("/api/tasks", headers=LAB, json={
        "name": "day 1", "project_id": project["id"], "subset": "train", "segment_size": 5,
        "bug_tracker": "https://example.com/bugs/1", "image_quality": 80,
    }))  # fmt: skip
    segments = {"size": 10, "media_type": "image", "chunk_size": 5,
                "segments": [{"start_frame": 0, "stop_frame": 4},
                             {"start_frame": 5, "stop_frame": 9}]}  # fmt: skip
    made = await ok(client.post(f"/api/internal/tasks/{task['id']}/segments", json=segments))
    listed = await ok(
        client.get("/api/labels", headers=LAB, params={"project_id": project["id"]}), 200
    )
    labels: dict[str, int] = {}
    specs: dict[str, int] = {}
    for label in listed["results"]:
        for part in (label, *label["sublabels"]):
            labels[part["name"]] = part["id"]
            specs |= {a["name"]: a["id"] for a in part["attributes"]}
    built = Built(project["id"], org["id"], task["id"], [j["id"] for j in made["jobs"]],
                  labels, specs)  # fmt: skip
    first, second = built.job_ids
    await ok(client.put(f"/api/jobs/{first}/annotations", headers=LAB,
                        json=first_job(built)), 200)  # fmt: skip
    await ok(client.put(f"/api/jobs/{second}/annotations", headers=LAB,
                        json=second_job(built)), 200)  # fmt: skip
    return built


def car_attributes(b: Built) -> list[dict[str, Any]]:
    """Every attribute of `car` (a text with a newline, which NDJSON must escape)."""
    return [{"spec_id": b.specs["color"], "value": "blue"},
            {"spec_id": b.specs["speed"], "value": "10"},
            {"spec_id": b.specs["note"], "value": "a note\nwith a newline"}]  # fmt: skip


def car(b: Built, kind: str, frame: int, points: list[float], **extra: Any) -> dict[str, Any]:
    """A `car` shape with every attribute (its stored text passes through untouched)."""
    return {"type": kind, "label_id": b.labels["car"], "frame": frame, "points": points,
            "attributes": car_attributes(b), **extra}  # fmt: skip


def keyframes(kind: str, frames: list[int], points: list[float]) -> list[dict[str, Any]]:
    """Keyframes on `frames`, the last one outside."""
    return [{"type": kind, "frame": f, "points": points, "outside": f == frames[-1],
             "attributes": []} for f in frames]  # fmt: skip


def first_job(b: Built) -> dict[str, Any]:
    """Frames 0-4: two tags, shapes of six types and a skeleton, a track, a skeleton track."""
    head, tail = b.labels["head"], b.labels["tail"]
    return {
        "tags": [{"label_id": b.labels["flag"], "frame": 3},
                 {"label_id": b.labels["car"], "frame": 4, "attributes": car_attributes(b)}],
        "shapes": [
            car(b, "polygon", 0, [0.0, 0.0, 10.0, 0.0, 5.0, 8.0]),
            car(b, "rectangle", 1, [1.5, 2.5, 30.0, 40.25], rotation=15.5, occluded=True,
                z_order=3, group=2, source="auto", score=0.5),
            car(b, "polyline", 1, [0.0, 0.0, 10.0, 5.0, 20.0, 0.0]),
            car(b, "points", 1, [4.0, 4.0, 8.0, 8.0], outside=True),
            car(b, "ellipse", 2, [50.0, 50.0, 70.0, 40.0], rotation=30.0),
            {"type": "skeleton", "label_id": b.labels["body"], "frame": 2, "points": [],
             "elements": [
                 {"type": "points", "label_id": head, "frame": 2, "points": [1.0, 2.0],
                  "attributes": [{"spec_id": b.specs["visible"], "value": "false"}]},
                 {"type": "points", "label_id": tail, "frame": 2, "points": [3.0, 4.0],
                  "outside": True},
             ]},
            car(b, "mask", 4, MASK, source="semi-auto"),
        ],
        "tracks": [
            {"label_id": b.labels["car"], "frame": 0, "group": 1,
             "attributes": [{"spec_id": b.specs["color"], "value": "red"}],
             "shapes": keyframes("rectangle", [0, 3], [1.0, 1.0, 5.0, 5.0])},
            {"label_id": b.labels["body"], "frame": 1,
             "shapes": keyframes("skeleton", [1, 4], []),
             "elements": [{"label_id": head, "frame": 1,
                           "shapes": keyframes("points", [1, 4], [1.0, 1.0])},
                          {"label_id": tail, "frame": 1,
                           "shapes": keyframes("points", [1, 4], [2.0, 2.0])}]},
        ],
    }  # fmt: skip


def second_job(b: Built) -> dict[str, Any]:
    """Frames 5-9: a tag, a cuboid, a rectangle lacking attributes (the read fills in
    their defaults), a polygon track."""
    return {
        "tags": [{"label_id": b.labels["flag"], "frame": 7}],
        "shapes": [
            car(b, "cuboid", 5, [float(i) for i in range(16)]),
            {"type": "rectangle", "label_id": b.labels["car"], "frame": 9,
             "points": [0.0, 0.0, 1.0, 1.0]},
        ],
        "tracks": [{"label_id": b.labels["car"], "frame": 6,
                    "shapes": keyframes("polygon", [6, 8], [0.0, 0.0, 4.0, 0.0, 2.0, 3.0])}],
    }  # fmt: skip


@dataclass
class Read:
    """A snapshot read whole: header, objects as (kind, job id, object), end."""

    header: SnapshotHeader
    objects: list[tuple[str, int, dict[str, Any]]]
    end: SnapshotEnd

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The objects of one kind, in stream order."""
        return [obj for k, _, obj in self.objects if k == kind]


def parse(body: bytes) -> Read:
    """An NDJSON snapshot body, checked to be header, objects, end, each line one object."""
    assert body.endswith(b"\n")
    lines = [orjson.loads(line) for line in body.split(b"\n")[:-1]]
    assert list(lines[0]) == ["header"]
    assert list(lines[-1]) == ["end"]
    objects = []
    for line in lines[1:-1]:
        kind, job_id = next(iter(line)), line["job_id"]
        assert list(line) == [kind, "job_id"]
        assert kind in KIND_ORDER
        objects.append((kind, job_id, line[kind]))
    return Read(SnapshotHeader.model_validate(lines[0]["header"]), objects,
                SnapshotEnd.model_validate(lines[-1]["end"]))  # fmt: skip


def in_frame_order(objects: list[tuple[str, int, dict[str, Any]]]) -> bool:
    """Frame order; on one frame tags, then shapes, then tracks."""
    keys = [(obj["frame"], KIND_ORDER[kind]) for kind, _, obj in objects]
    return keys == sorted(keys)


async def snapshot_of(client: httpx.AsyncClient, path: str) -> Read:
    """GET a snapshot, checked to be 200 NDJSON."""
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return parse(answer.content)


async def test_task_snapshot_has_the_task_then_every_object_in_frame_order(
    open_service: OpenService,
) -> None:
    async with open_service("annotations") as svc:
        b = await build(svc.client)
        read = await snapshot_of(svc.client, f"/api/internal/tasks/{b.task_id}/snapshot")

        task = (await svc.client.get(f"/api/tasks/{b.task_id}", headers=LAB)).json()
        header = read.header
        assert (header.scope, header.version) == ("task", 2)
        shown = header.task.model_dump()
        for field in ("id", "name", "status", "mode", "dimension", "size", "subset",
                      "bug_tracker", "project_id", "project_name", "organization_id",
                      "segment_size", "overlap", "image_quality", "start_frame", "stop_frame",
                      "frame_filter", "data_chunk_size"):  # fmt: skip
            assert shown[field] == task[field], field
        assert (header.task.owner, header.task.assignee) == ("admin", None)
        assert (header.task.project_name, header.task.organization_id) == ("zoo", b.organization_id)
        assert (header.task.size, header.task.subset, header.task.image_quality) == (
            10,
            "train",
            80,
        )
        assert (header.task.compressed_chunk_type, header.task.media_type) == ("imageset", "image")

        params = {"project_id": b.project_id}
        listed = await svc.client.get("/api/labels", headers=LAB, params=params)
        labels = listed.json()["results"]
        fields = ("id", "name", "color", "type", "svg")
        assert [label.model_dump(include=set(fields)) for label in header.labels] == [
            {k: label[k] for k in fields} for label in labels
        ]
        for shown_label, label in zip(header.labels, labels, strict=True):
            assert [a.model_dump() for a in shown_label.attributes] == label["attributes"]
            assert [(s.id, s.name, s.type, s.parent_id) for s in shown_label.sublabels] == [
                (s["id"], s["name"], s["type"], label["id"]) for s in label["sublabels"]
            ]
            for sublabel, expected in zip(shown_label.sublabels, label["sublabels"], strict=True):
                assert [a.model_dump() for a in sublabel.attributes] == expected["attributes"]
        body = next(label for label in header.labels if label.type == "skeleton")
        assert f'data-label-id="{b.labels["head"]}"' in body.svg
        assert {a.name: a.values for a in header.labels[0].attributes} == {
            "color": ["red", "blue"], "speed": ["0", "100", "5"], "note": [],
        }  # fmt: skip
        assert [(j.id, j.type, j.start_frame, j.stop_frame, j.frames, j.version)
                for j in header.jobs] == [(b.job_ids[0], "annotation", 0, 4, None, 1),
                                          (b.job_ids[1], "annotation", 5, 9, None, 1)]  # fmt: skip

        assert in_frame_order(read.objects)
        assert [(kind, obj["frame"]) for kind, _, obj in read.objects] == [
            ("shape", 0), ("track", 0), ("shape", 1), ("shape", 1), ("shape", 1),
            ("track", 1), ("shape", 2), ("shape", 2), ("tag", 3), ("tag", 4), ("shape", 4),
            ("shape", 5), ("track", 6), ("tag", 7), ("shape", 9),
        ]  # fmt: skip
        got = (await svc.client.get(f"/api/tasks/{b.task_id}/annotations", headers=LAB)).json()
        assert read.of("tag") == got["tags"]
        assert read.of("shape") == got["shapes"]
        assert read.of("track") == got["tracks"]
        assert read.end == SnapshotEnd(
            tags=len(got["tags"]), shapes=len(got["shapes"]), tracks=len(got["tracks"])
        )
        assert read.end == SnapshotEnd(tags=3, shapes=9, tracks=3)
        skeleton = next(s for s in read.of("shape") if s["type"] == "skeleton")
        assert [e["label_id"] for e in skeleton["elements"]] == [b.labels["head"], b.labels["tail"]]
        track = next(t for t in read.of("track") if t["label_id"] == b.labels["body"])
        assert [len(e["shapes"]) for e in track["elements"]] == [2, 2]
        assert [k["frame"] for k in track["shapes"]] == [1, 4]
        filled = read.of("shape")[-1]  # the rectangle stored without attributes
        assert {a["spec_id"]: a["value"] for a in filled["attributes"]} == {
            b.specs["color"]: "red", b.specs["speed"]: "0", b.specs["note"]: "",
        }  # fmt: skip
        first = [obj["frame"] for _, job, obj in read.objects if job == b.job_ids[0]]
        assert len(first) == 2 + 7 + 2
        assert set(first) <= set(range(5))


async def test_job_snapshot_has_only_the_jobs_objects(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        b = await build(svc.client)
        for job_id in b.job_ids:
            read = await snapshot_of(svc.client, f"/api/internal/jobs/{job_id}/snapshot")
            got = (await svc.client.get(f"/api/jobs/{job_id}/annotations", headers=LAB)).json()
            assert (read.header.scope, read.header.version) == ("job", got["version"])
            assert [job.id for job in read.header.jobs] == [job_id]
            assert read.header.task.id == b.task_id
            assert [label.name for label in read.header.labels] == ["car", "flag", "body"]
            assert {job for _, job, _ in read.objects} == {job_id}
            assert in_frame_order(read.objects)
            assert (read.of("tag"), read.of("shape"), read.of("track")) == (
                got["tags"], got["shapes"], got["tracks"],
            )  # fmt: skip
            assert read.end == SnapshotEnd(
                tags=len(got["tags"]), shapes=len(got["shapes"]), tracks=len(got["tracks"])
            )


async def test_only_administrators_read_snapshots(
    open_service: OpenService, enrol: Enrol, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        alice = await enrol(svc, "alice")
        own = await alice.client.post(
            "/api/tasks", json={"name": "mine", "labels": [{"name": "a"}]}
        )
        assert own.status_code == 201, own.text
        seed = await seed_task(svc)
        for path in (f"/api/internal/tasks/{own.json()['id']}/snapshot",
                     f"/api/internal/tasks/{seed.task_id}/snapshot",
                     f"/api/internal/jobs/{seed.job_ids[0]}/snapshot"):  # fmt: skip
            refused = await alice.client.get(path)
            assert refused.status_code == 403, path
            assert refused.headers["content-type"] == "application/problem+json"
            assert (await svc.anonymous.get(path)).status_code == 401
        for path in (f"/api/internal/tasks/{seed.task_id + 1000}/snapshot",
                     f"/api/internal/jobs/{seed.job_ids[0] + 1000}/snapshot"):  # fmt: skip
            missing = await svc.client.get(path)
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
        empty = await snapshot_of(svc.client, f"/api/internal/tasks/{own.json()['id']}/snapshot")
        assert (empty.header.jobs, empty.objects) == ([], [])
        assert empty.end == SnapshotEnd(tags=0, shapes=0, tracks=0)
        assert empty.header.task.owner == "alice"


async def test_overlapping_jobs_give_each_jobs_objects(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (8, 17)], overlap=2)
        car = seed.labels["car"]
        rect = [0.0, 0.0, 10.0, 10.0]
        track = {"label_id": car, "frame": 2, "shapes": [
            {"type": "rectangle", "frame": 2, "points": rect},
            {"type": "rectangle", "frame": 14, "points": [12.0, 0.0, 22.0, 10.0]},
        ]}  # fmt: skip
        put = await svc.client.put(f"/api/tasks/{seed.task_id}/annotations", json={
            "tags": [{"label_id": seed.labels["flag"], "frame": 9}],
            "shapes": [{"type": "rectangle", "label_id": car, "frame": f, "points": rect}
                       for f in (1, 8, 15)],
            "tracks": [track],
        })  # fmt: skip
        assert put.status_code == 200, put.text
        merged = put.json()
        assert (len(merged["tags"]), len(merged["shapes"]), len(merged["tracks"])) == (1, 3, 1)

        read = await snapshot_of(svc.client, f"/api/internal/tasks/{seed.task_id}/snapshot")
        first, second = seed.job_ids
        assert [(j.start_frame, j.stop_frame) for j in read.header.jobs] == [(0, 9), (8, 17)]
        assert read.header.task.overlap == 2
        body = next(label for label in read.header.labels if label.name == "body")
        assert [s.name for s in body.sublabels] == ["head", "tail"]
        assert [(kind, job, obj["frame"]) for kind, job, obj in read.objects] == [
            ("shape", first, 1), ("track", first, 2), ("shape", first, 8),
            ("shape", second, 8), ("track", second, 8), ("tag", first, 9), ("tag", second, 9),
            ("shape", second, 15),
        ]  # fmt: skip
        per_job = [
            (await svc.client.get(f"/api/jobs/{j}/annotations")).json() for j in seed.job_ids
        ]
        for kind, key in (("tag", "tags"), ("shape", "shapes"), ("track", "tracks")):
            ids = sorted(obj["id"] for k, _, obj in read.objects if k == kind)
            assert ids == sorted(obj["id"] for doc in per_job for obj in doc[key])
        assert read.end == SnapshotEnd(tags=2, shapes=4, tracks=2)


async def test_a_failure_after_the_header_ends_the_stream_with_an_error_line(
    open_service: OpenService, seed_task: SeedTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        shape = {"type": "rectangle", "label_id": seed.labels["sign"], "frame": 1,
                 "points": [0.0, 0.0, 1.0, 1.0]}  # fmt: skip
        put = await svc.client.put(f"/api/jobs/{seed.job_ids[0]}/annotations",
                                   json={"shapes": [shape]})  # fmt: skip
        assert put.status_code == 200, put.text

        def broken(*_: Any) -> Any:
            raise RuntimeError("the rows could not be read")

        monkeypatch.setattr(snapshots, "complete_all", broken)
        answer = await svc.client.get(f"/api/internal/jobs/{seed.job_ids[0]}/snapshot")
        assert answer.status_code == 200  # the header was out before the failure
        lines = [orjson.loads(line) for line in answer.content.splitlines()]
        assert [list(line) for line in lines] == [["header"], ["error"]]
        assert "the rows could not be read" in lines[-1]["error"]["detail"]


async def test_a_snapshot_cancelled_while_reading_returns_its_connection_clean(
    open_service: OpenService, seed_task: SeedTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette cancels a streamed response whose client went away at every await until
    it returns (anyio's cancel scopes): the transaction must still end, and the
    connection go back to the pool outside of it."""
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        shapes = [{"type": "rectangle", "label_id": seed.labels["sign"], "frame": f % 10,
                   "points": [0.0, 0.0, 1.0, 1.0]} for f in range(20)]  # fmt: skip
        put = await svc.client.put(f"/api/jobs/{seed.job_ids[0]}/annotations",
                                   json={"shapes": shapes})  # fmt: skip
        assert put.status_code == 200, put.text
        reading = asyncio.Event()
        fetch = snapshot_sql.Cursors.fetch

        async def stalled(self: snapshot_sql.Cursors, index: int) -> list[Any]:
            rows = await fetch(self, index)
            reading.set()  # a slow fetch, which the client's departure interrupts
            await self.conn.fetchval("SELECT pg_sleep(30)")
            return rows

        with monkeypatch.context() as patched:
            patched.setattr(snapshot_sql.Cursors, "fetch", stalled)
            for _ in range(3):
                reading.clear()
                lines = snapshots.snapshot(svc.platform.database, "job", seed.job_ids[0])
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as group:
                        group.start_soon(drain, lines)
                        await reading.wait()
                        scope.cancel()
                await lines.aclose()

        async with svc.platform.database.engine.connect() as connection:
            open_transactions = await connection.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
            ))  # fmt: skip
        assert open_transactions == 0
        for _ in range(8):  # more than the pool holds: every connection serves again
            read = await snapshot_of(svc.client, f"/api/internal/jobs/{seed.job_ids[0]}/snapshot")
            assert read.end == SnapshotEnd(tags=0, shapes=20, tracks=0)


async def drain(lines: AsyncIterator[bytes]) -> None:
    """Read a stream to its end."""
    async for _ in lines:
        pass


async def test_a_snapshot_sees_none_of_a_write_committed_while_it_streams(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 49), (50, 99)])
        car, flag = seed.labels["car"], seed.labels["flag"]

        def document(frames: range, shapes: int, tags: int, x: float) -> dict[str, Any]:
            n = len(frames)
            return {
                "shapes": [{"type": "rectangle", "label_id": car, "frame": frames[i % n],
                            "points": [x, float(i), x + 1.0, i + 1.0]} for i in range(shapes)],
                "tags": [{"label_id": flag, "frame": frames[i % n]} for i in range(tags)],
                "tracks": [{"label_id": car, "frame": f, "shapes": [
                    {"type": "rectangle", "frame": f, "points": [x, 0.0, 1.0, 1.0]},
                    {"type": "rectangle", "frame": f + 1, "points": [x, 0.0, 1.0, 1.0],
                     "outside": True}]} for f in frames[:-1:7]],
            }  # fmt: skip

        old = [document(range(0, 50), 12_000, 6_000, 1.0), document(range(50, 100), 3_000, 0, 1.0)]
        for job_id, body in zip(seed.job_ids, old, strict=True):
            put = await svc.client.put(f"/api/jobs/{job_id}/annotations", json=body)
            assert put.status_code == 200, put.text

        lines = snapshots.snapshot(svc.platform.database, "task", seed.task_id)
        head = await anext(lines)
        first = await anext(lines)  # the first batch is out; the cursors are part-way
        assert head.startswith(b'{"header":')
        assert first.count(b"\n") > 0

        # Replace every annotation of both jobs in one transaction, and commit.
        triangle = [2.0, 0.0, 3.0, 0.0, 3.0, 1.0]
        new = {"shapes": [{"type": "polygon", "label_id": car, "frame": f, "points": triangle}
                          for f in range(100)]}  # fmt: skip
        put = await svc.client.put(f"/api/tasks/{seed.task_id}/annotations", json=new)
        assert put.status_code == 200, put.text
        assert put.json()["version"] == 4

        read = parse(head + first + b"".join([chunk async for chunk in lines]))
        assert read.header.version == 2
        assert [job.version for job in read.header.jobs] == [1, 1]
        assert in_frame_order(read.objects)
        tracks = len(range(0, 49, 7)) + len(range(50, 99, 7))
        assert read.end == SnapshotEnd(tags=6_000, shapes=15_000, tracks=tracks)
        assert len(read.objects) == 6_000 + 15_000 + tracks
        assert all(obj["points"][0] == 1.0 for k, _, obj in read.objects if k == "shape")
        assert all(k != "shape" or obj["type"] == "rectangle" for k, _, obj in read.objects)

        after = await snapshot_of(svc.client, f"/api/internal/tasks/{seed.task_id}/snapshot")
        assert after.header.version == 4
        assert after.end == SnapshotEnd(tags=0, shapes=100, tracks=0)
        assert {obj["type"] for obj in after.of("shape")} == {"polygon"}


async def test_the_shared_client_reads_a_snapshot_over_a_socket(
    service_settings: dict[str, Any],
) -> None:
    app = create_app(settings_for("annotations", **service_settings))
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as admin:
            b = await build(admin)
            got = (await admin.get(f"/api/tasks/{b.task_id}/annotations", headers=LAB)).json()
        client = AnnotationsClient(url, ADMIN_TOKEN)
        try:
            async with client.snapshot(task_id=b.task_id) as snapshot:
                assert snapshot.header.task.id == b.task_id
                assert [job.id for job in snapshot.header.jobs] == b.job_ids
                items = [item async for item in snapshot]
            assert snapshot.end == SnapshotEnd(tags=3, shapes=9, tracks=3)
            assert all(isinstance(item, SnapshotItem) for item in items)
            assert [item.data for item in items if item.kind == "shape"] == got["shapes"]
            assert [item.data for item in items if item.kind == "track"] == got["tracks"]
            assert [item.data for item in items if item.kind == "tag"] == got["tags"]

            async with client.snapshot(job_id=b.job_ids[1]) as snapshot:
                items = [item async for item in snapshot]
            assert {item.job_id for item in items} == {b.job_ids[1]}
            assert snapshot.end == SnapshotEnd(tags=1, shapes=2, tracks=1)

            # Left early: the stream is closed, and the service serves the next one.
            async with client.snapshot(task_id=b.task_id) as snapshot:
                async for _ in snapshot:
                    break
            assert snapshot.end is None

            with pytest.raises(Problem) as missing:
                async with client.snapshot(task_id=b.task_id + 1000):
                    pass
            assert missing.value.status == 404
            with pytest.raises(TypeError):
                async with client.snapshot(task_id=1, job_id=1):
                    pass
        finally:
            await client.close()
        stranger = AnnotationsClient(url, "tsr_not-a-real-token")
        try:
            with pytest.raises(Problem) as refused:
                async with stranger.snapshot(task_id=b.task_id):
                    pass
            assert refused.value.status == 401
        finally:
            await stranger.close()


HEADER = {
    "scope": "job", "version": 1, "labels": [],
    "jobs": [{"id": 1, "type": "annotation", "start_frame": 0, "stop_frame": 0,
              "frames": None, "version": 1}],
    "task": {
        "id": 1, "name": "t", "status": "annotation", "mode": "annotation", "dimension": "2d",
        "media_type": None, "size": 1, "subset": "", "bug_tracker": "", "project_id": None,
        "project_name": None, "organization_id": None, "owner": None, "assignee": None,
        "segment_size": 0, "overlap": None, "image_quality": 70, "start_frame": 0,
        "stop_frame": None, "frame_filter": "", "data_chunk_size": None,
        "compressed_chunk_type": None, "original_chunk_type": None,
        "created_date": "2026-01-01T00:00:00Z", "updated_date": "2026-01-01T00:00:00Z",
    },
}  # fmt: skip
SHAPE = {"type": "rectangle", "frame": 0, "label_id": 1, "points": [0.0, 0.0, 1.0, 1.0]}


def ndjson(*lines: dict[str, Any]) -> bytes:
    """Lines of a snapshot body."""
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "before its header"),
        (ndjson({"header": HEADER}, {"shape": SHAPE, "job_id": 1}), "without its end line"),
        (ndjson({"header": HEADER}, {"shape": SHAPE, "job_id": 1})
         + b'{"end":{"tags":0,"shapes":1,"tracks":0}}', "without its end line"),
        (ndjson({"header": HEADER}, {"error": {"detail": "The snapshot failed: boom"}}),
         "The snapshot failed: boom"),
        (ndjson({"header": HEADER}, {"shape": SHAPE, "job_id": 1},
                {"end": {"tags": 0, "shapes": 2, "tracks": 0}}), "read"),
        (ndjson({"header": HEADER}, {"end": {"tags": 0, "shapes": 0, "tracks": 0}},
                {"shape": SHAPE, "job_id": 1}), "after the end line"),
    ],
)  # fmt: skip
async def test_the_client_refuses_a_snapshot_without_its_end(body: bytes, message: str) -> None:
    client = AnnotationsClient("http://annotations", ADMIN_TOKEN)
    await client.close()
    client._http = httpx.AsyncClient(  # an answer as a proxy that cut the stream gives it
        base_url="http://annotations",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)),
    )
    try:
        with pytest.raises(SnapshotIncomplete, match=message):
            async with client.snapshot(job_id=1) as snapshot:
                assert [item.data async for item in snapshot] == [SHAPE]
    finally:
        await client.close()


async def test_the_client_refuses_a_stream_cut_on_the_socket() -> None:
    app = FastAPI()

    @app.get("/api/internal/jobs/{job_id}/snapshot")
    async def cut(job_id: int) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield ndjson({"header": HEADER}, {"shape": SHAPE, "job_id": job_id})
            raise RuntimeError("the service died")

        return StreamingResponse(body(), media_type="application/x-ndjson")

    with serve_in_thread(app) as url:
        client = AnnotationsClient(url, ADMIN_TOKEN)
        try:
            seen: list[dict[str, Any]] = []
            with pytest.raises(SnapshotIncomplete, match="broke"):
                async with client.snapshot(job_id=1) as snapshot:
                    async for item in snapshot:
                        seen.append(item.data)
            assert seen == [SHAPE]
        finally:
            await client.close()
