"""cvat-sdk's high-level `Client` against the whole fleet, started as `make run` starts it.

One fleet for the module: `tessera-run` in a subprocess (`tessera.devstack.fleet`),
driven through the gateway's port by `cvat_sdk.core.client.Client` with
`check_server_version=True` and `Config(allow_unsupported_server=False)`, logged in
with the admin's personal access token from the launcher's state directory. The SDK
is used as it is, with CVAT's paths (trailing slashes included): a project with a
label of every type, a task made from local PNG and JPEG files with `segment_size` and
`overlap`, list filters, jobs, and annotations of every shape type, a track and tags
written with PUT and PATCH and read back; `import_annotations` of COCO, YOLO and CVAT XML
files as other tools write them (each shape checked), round trips of exports through an
import, hostile files, append mode, a job's import and cvat-cli's `import-dataset`.

Every response the SDK receives is recorded at urllib3's connection pool (each hop of
a redirect too), and the last test checks that none of them names an address other
than the gateway's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import datumaro as dm  # type: ignore[import-untyped]
import httpx
import numpy as np
import pytest
from cvat_sdk import models  # type: ignore[import-untyped]
from cvat_sdk.core.client import (  # type: ignore[import-untyped]
    AccessTokenCredentials,
    Client,
    Config,
)
from cvat_sdk.core.exceptions import BackgroundRequestException  # type: ignore[import-untyped]
from cvat_sdk.core.proxies.annotations import (  # type: ignore[import-untyped]
    AnnotationUpdateAction,
)
from cvat_sdk.core.proxies.tasks import ResourceType  # type: ignore[import-untyped]
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.response import BaseHTTPResponse

from tessera.devstack.fleet import Launcher, started_fleet
from tessera.geometry import cvat_mask_to_array, polygons_to_mask

pytestmark = pytest.mark.e2e

CVAT_API_VERSION = "2.80.0"
PROJECT_NAME = "cvat-client e2e project"
TASK_NAME = "cvat-client e2e images"
OTHER_TASK_NAME = "cvat-client e2e empty"
FRAMES = 10
SEGMENT_SIZE = 4
OVERLAP = 1
# A skeleton as CVAT's label constructor writes it: three nodes, two edges.
SKELETON_SVG = (
    '<line x1="20" y1="20" x2="50" y2="50" stroke="black" data-type="edge" '
    'data-node-from="1" stroke-width="0.5" data-node-to="2"></line>'
    '<line x1="50" y1="50" x2="80" y2="20" stroke="black" data-type="edge" '
    'data-node-from="2" stroke-width="0.5" data-node-to="3"></line>'
    '<circle r="1.5" stroke="black" fill="#b3b3b3" cx="20" cy="20" stroke-width="0.1" '
    'data-type="element node" data-element-id="1" data-node-id="1" '
    'data-label-name="left"></circle>'
    '<circle r="1.5" stroke="black" fill="#b3b3b3" cx="50" cy="50" stroke-width="0.1" '
    'data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-name="middle"></circle>'
    '<circle r="1.5" stroke="black" fill="#b3b3b3" cx="80" cy="20" stroke-width="0.1" '
    'data-type="element node" data-element-id="3" data-node-id="3" '
    'data-label-name="right"></circle>'
)
SUBLABELS = ("left", "middle", "right")
LABEL_TYPES = (
    "rectangle",
    "polygon",
    "polyline",
    "points",
    "ellipse",
    "cuboid",
    "mask",
    "skeleton",
    "tag",
    "any",
)
# CVAT's mask layout: run lengths over the tight box starting with a 0-run, then the
# box [left, top, right, bottom] inclusive; here a 3x2 box at (10, 20).
MASK = [0.0, 3.0, 2.0, 1.0, 10.0, 20.0, 12.0, 21.0]


# --- every response the SDK receives ---------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One HTTP response as urllib3 handed it to cvat-sdk."""

    method: str
    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None  # None when the SDK streamed it


@dataclass
class Recorder:
    """Records each response of urllib3's connection pools: every hop of a redirect too."""

    exchanges: list[Exchange] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = HTTPConnectionPool.urlopen
        exchanges = self.exchanges

        def urlopen(
            pool: HTTPConnectionPool, method: str, url: str, *args: Any, **kwargs: Any
        ) -> BaseHTTPResponse:
            response = original(pool, method, url, *args, **kwargs)
            absolute = url if "://" in url else f"{pool.scheme}://{pool.host}:{pool.port}{url}"
            preloaded = kwargs.get("preload_content", True)
            exchanges.append(
                Exchange(
                    method=method,
                    url=absolute,
                    status=response.status,
                    headers=tuple(response.headers.items()),
                    body=response.data if preloaded else None,
                )
            )
            return response

        monkeypatch.setattr(HTTPConnectionPool, "urlopen", urlopen)


URL_FIELDS = frozenset({"url", "next", "previous", "result_url"})
HOST_PORT_URL = re.compile(r"https?://(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):\d+")


def _on_gateway(value: str, gateway: str) -> bool:
    """Whether a URL is relative or on the gateway's scheme, host and port."""
    parts, home = urlsplit(value), urlsplit(gateway)
    if not parts.scheme and not parts.netloc:
        return True
    return (parts.scheme, parts.netloc) == (home.scheme, home.netloc)


def _json_url_fields(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in URL_FIELDS and isinstance(item, str) and item:
                yield f"{path}.{key}", item
            yield from _json_url_fields(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_url_fields(item, f"{path}[{index}]")


def foreign_addresses(exchange: Exchange, gateway: str) -> list[str]:
    """What in one response names an address other than the gateway's (and the request
    itself, when a redirect led the SDK elsewhere)."""
    found = [] if _on_gateway(exchange.url, gateway) else [f"requested {exchange.url}"]
    for name, value in exchange.headers:
        if name.lower() == "location" and not _on_gateway(value, gateway):
            found.append(f"header {name}: {value}")
        found.extend(
            f"header {name}: {url}"
            for url in HOST_PORT_URL.findall(value)
            if not _on_gateway(url, gateway)
        )
    content_type = {k.lower(): v for k, v in exchange.headers}.get("content-type", "")
    textual = "json" in content_type or "xml" in content_type or content_type.startswith("text/")
    if exchange.body is None or not textual:
        return list(dict.fromkeys(found))
    text = exchange.body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        found.extend(
            f"body {where}: {url}"
            for where, url in _json_url_fields(document)
            if not _on_gateway(url, gateway)
        )
    found.extend(
        f"body: {url}" for url in HOST_PORT_URL.findall(text) if not _on_gateway(url, gateway)
    )
    return list(dict.fromkeys(found))


# --- the fleet and the SDK client ------------------------------------------------------


@pytest.fixture(scope="module")
def fleet() -> Iterator[Launcher]:
    """`tessera-run` for this module, as `make run` starts it."""
    with started_fleet("tessera-cvat-client-") as launcher:
        yield launcher


@pytest.fixture(scope="module")
def gateway(fleet: Launcher) -> str:
    """The public base URL: the gateway's port."""
    return f"http://127.0.0.1:{fleet.port}"


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """Every response cvat-sdk receives while this module runs."""
    recording = Recorder()
    with pytest.MonkeyPatch.context() as monkeypatch:
        recording.install(monkeypatch)
        yield recording


@pytest.fixture(scope="module")
def sdk(
    fleet: Launcher, gateway: str, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """cvat-sdk's `Client`: it checks the server's version (before any token) and refuses an
    unsupported one, then works with the admin's personal access token."""
    config = Config(
        allow_unsupported_server=False,
        status_check_period=0.2,
        cache_dir=tmp_path_factory.mktemp("cvat-sdk-cache"),
    )
    client = Client(gateway, config=config, check_server_version=True)
    client.login(AccessTokenCredentials(fleet.token))
    with client:
        yield client


@pytest.fixture(scope="module")
def project(sdk: Any) -> Any:
    """A project with a label of every type: attributes, and a skeleton with edges."""
    labels = [
        models.PatchedLabelRequest(
            name="rectangle",
            type="rectangle",
            color="#ff0000",
            attributes=[
                models.AttributeRequest(
                    name="make",
                    mutable=False,
                    input_type=models.InputTypeEnum("select"),
                    values=["a", "b", "c"],
                    default_value="a",
                )
            ],
        ),
        *(
            models.PatchedLabelRequest(name=kind, type=kind)
            for kind in ("polygon", "polyline", "points", "ellipse", "cuboid", "mask")
        ),
        models.PatchedLabelRequest(
            name="skeleton",
            type="skeleton",
            svg=SKELETON_SVG,
            sublabels=[models.SublabelRequest(name=name, type="points") for name in SUBLABELS],
        ),
        models.PatchedLabelRequest(
            name="tag",
            type="tag",
            attributes=[
                models.AttributeRequest(
                    name="checked",
                    mutable=False,
                    input_type=models.InputTypeEnum("checkbox"),
                    values=["false"],
                )
            ],
        ),
        models.PatchedLabelRequest(
            name="any",
            type="any",
            attributes=[
                models.AttributeRequest(
                    name="speed",
                    mutable=True,
                    input_type=models.InputTypeEnum("number"),
                    values=["0", "100", "1"],
                    default_value="0",
                )
            ],
        ),
    ]
    return sdk.projects.create(models.ProjectWriteRequest(name=PROJECT_NAME, labels=labels))


@pytest.fixture(scope="module")
def labels(project: Any) -> dict[str, Any]:
    """The project's labels by name."""
    return {label.name: label for label in project.get_labels()}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Small local images, PNG and JPEG in turn, named in frame order."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for index in range(FRAMES):
        path = folder / f"frame_{index:02d}.{'png' if index % 2 == 0 else 'jpg'}"
        Image.new("RGB", (64, 48), (index * 20, 120, 200 - index * 10)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def task(sdk: Any, project: Any, images: list[Path]) -> Any:
    """A task in the project, from local files, with segment_size and overlap."""
    return sdk.tasks.create_from_data(
        spec=models.TaskWriteRequest(
            name=TASK_NAME, project_id=project.id, segment_size=SEGMENT_SIZE, overlap=OVERLAP
        ),
        resource_type=ResourceType.LOCAL,
        resources=[str(path) for path in images],
        data_params={"image_quality": 80},
    )


@pytest.fixture(scope="module")
def other_task(sdk: Any, project: Any, task: Any) -> Any:
    """A second task of the project, without data, made after `task`."""
    return sdk.tasks.create(models.TaskWriteRequest(name=OTHER_TASK_NAME, project_id=project.id))


@pytest.fixture(scope="module")
def jobs(task: Any) -> list[Any]:
    """The task's jobs in frame order."""
    return sorted(task.get_jobs(), key=lambda job: job.start_frame)


def cvat_segments(frames: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """CVAT's segments: overlap clamped to size // 2, a segment starting every size - overlap
    frames below frames - overlap, each to size - 1 frames later or the last frame."""
    overlap = min(overlap, size // 2)
    return [
        (start, min(start + size - 1, frames - 1))
        for start in range(0, frames - overlap, size - overlap)
    ]


# --- comparing what was written with what is read -------------------------------------


def plain(value: Any) -> Any:
    """A cvat-sdk model (or a list of them) as plain data."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def canonical(annotation: dict[str, Any]) -> dict[str, Any]:
    """Without ids; elements in label order, track shapes in frame order."""
    result = {key: value for key, value in annotation.items() if key != "id"}
    if "elements" in result:
        result["elements"] = sorted(
            (canonical(element) for element in result["elements"]),
            key=lambda element: element["label_id"],
        )
    if "shapes" in result:
        result["shapes"] = sorted(
            (canonical(shape) for shape in result["shapes"]), key=lambda shape: shape["frame"]
        )
    return result


def narrowed(sent: Any, read: Any) -> Any:
    """`read` with only the keys `sent` has, recursively: server defaults do not count."""
    if isinstance(sent, dict) and isinstance(read, dict):
        return {key: narrowed(value, read.get(key)) for key, value in sent.items()}
    if isinstance(sent, list) and isinstance(read, list) and len(sent) == len(read):
        return [narrowed(s, r) for s, r in zip(sent, read, strict=True)]
    return read


def assert_read_back(sent: Any, read: Any, key: tuple[str, ...]) -> None:
    """Each sent annotation is read back, field for field, matched by `key`; nothing more."""
    wanted = {tuple(a[k] for k in key): canonical(a) for a in plain(sent)}
    got = {tuple(a[k] for k in key): canonical(a) for a in plain(read)}
    assert sorted(got) == sorted(wanted)
    for match, annotation in wanted.items():
        assert narrowed(annotation, got[match]) == annotation, match


def attribute_id(label: Any, name: str) -> int:
    spec: int = next(a.id for a in label.attributes if a.name == name)
    return spec


# --- the tests --------------------------------------------------------------------------


def test_server_about_answers_without_a_token(gateway: str) -> None:
    """cvat-sdk's `Client` reads `/api/server/about` before it has a token."""
    about = httpx.get(f"{gateway}/api/server/about", timeout=30)
    assert about.status_code == 200, (about.status_code, about.text)
    assert about.json()["version"] == CVAT_API_VERSION


def test_client_checks_the_version_and_works_with_the_access_token(sdk: Any) -> None:
    assert str(sdk.get_server_version()) == CVAT_API_VERSION
    sdk.check_server_version(fail_if_unsupported=True)
    me = sdk.users.retrieve_current_user()
    assert me.username == "admin"
    assert me.is_superuser


def test_project_has_a_label_of_every_type(project: Any, labels: dict[str, Any]) -> None:
    assert project.name == PROJECT_NAME
    assert {name: label.type for name, label in labels.items()} == {
        kind: kind for kind in LABEL_TYPES
    }
    assert labels["rectangle"].color == "#ff0000"
    assert [(a.name, str(a.input_type), a.values, a.default_value, a.mutable)
            for a in labels["rectangle"].attributes] == [
        ("make", "select", ["a", "b", "c"], "a", False)
    ]  # fmt: skip
    assert [(a.name, a.values, a.mutable) for a in labels["any"].attributes] == [
        ("speed", ["0", "100", "1"], True)
    ]
    skeleton = labels["skeleton"]
    assert [(s.name, s.type) for s in skeleton.sublabels] == [(n, "points") for n in SUBLABELS]
    node_labels = dict(re.findall(r'data-node-id="(\d+)" data-label-id="(\d+)"', skeleton.svg))
    assert node_labels == {str(n + 1): str(s.id) for n, s in enumerate(skeleton.sublabels)}
    edges = re.findall(r'data-node-from="(\d+)"[^>]*data-node-to="(\d+)"', skeleton.svg)
    assert edges == [("1", "2"), ("2", "3")]


def test_task_from_local_images_follows_segment_size_and_overlap(
    task: Any, project: Any, images: list[Path], jobs: list[Any]
) -> None:
    assert (task.name, task.project_id, task.size) == (TASK_NAME, project.id, FRAMES)
    assert (task.segment_size, task.overlap) == (SEGMENT_SIZE, OVERLAP)
    frames = task.get_frames_info()
    assert [(f.name, f.width, f.height) for f in frames] == [(p.name, 64, 48) for p in images]
    assert task.get_frame(1, quality="original").read() == images[1].read_bytes()
    assert [label.name for label in task.get_labels()] == list(LABEL_TYPES)

    expected = cvat_segments(FRAMES, SEGMENT_SIZE, OVERLAP)
    assert expected == [(0, 3), (3, 6), (6, 9)]
    assert [(j.start_frame, j.stop_frame, j.frame_count) for j in jobs] == [
        (start, stop, stop - start + 1) for start, stop in expected
    ]
    assert {(j.task_id, j.project_id, str(j.type)) for j in jobs} == {
        (task.id, project.id, "annotation")
    }


@pytest.mark.parametrize(
    ("case", "query"),
    [
        ("filter", {"filter": json.dumps({"==": [{"var": "name"}, TASK_NAME]})}),
        ("name", {"name": TASK_NAME}),
        ("search", {"search": "images"}),
        ("lookup", {"name__contains": "images"}),
    ],
)
def test_tasks_list_filters(
    sdk: Any, task: Any, other_task: Any, case: str, query: dict[str, str]
) -> None:
    """`client.tasks.list(**kwargs)` passes its keywords to `GET /api/tasks`."""
    assert [t.id for t in sdk.tasks.list(**query)] == [task.id], case


def test_tasks_list_sort(sdk: Any, project: Any, task: Any, other_task: Any) -> None:
    assert [t.id for t in sdk.tasks.list(project_id=project.id, sort="id")] == [
        task.id,
        other_task.id,
    ]
    assert [t.id for t in sdk.tasks.list(project_id=project.id, sort="-id")] == [
        other_task.id,
        task.id,
    ]
    assert [p.id for p in sdk.projects.list(filter=f'{{"==":[{{"var":"id"}},{project.id}]}}')] == [
        project.id
    ]


def every_shape(labels: dict[str, Any]) -> list[Any]:
    """A shape of every type on frames 0-2 (the first job's own frames)."""
    geometry: dict[str, tuple[int, list[float]]] = {
        "rectangle": (0, [10.0, 8.0, 30.5, 20.25]),
        "polygon": (0, [1.0, 1.0, 20.0, 1.0, 10.0, 15.5]),
        "polyline": (1, [2.0, 2.0, 12.0, 8.0, 30.0, 4.5]),
        "points": (1, [5.0, 6.0, 7.5, 8.5, 40.0, 30.0]),
        "ellipse": (2, [30.0, 20.0, 40.0, 12.0]),
        "cuboid": (2, [float(v) for v in range(10, 26)]),
        "mask": (0, MASK),
    }
    rectangle = labels["rectangle"]
    shapes = [
        models.LabeledShapeRequest(
            type=models.ShapeType(kind),
            frame=frame,
            label_id=labels[kind].id,
            points=points,
            occluded=kind == "polygon",
            z_order=index,
            rotation={"rectangle": 30.0, "ellipse": 15.0}.get(kind, 0.0),
            group=0,
            attributes=[
                models.AttributeValRequest(spec_id=attribute_id(rectangle, "make"), value="b")
            ]
            if kind == "rectangle"
            else [],
        )
        for index, (kind, (frame, points)) in enumerate(geometry.items())
    ]
    skeleton = labels["skeleton"]
    shapes.append(
        models.LabeledShapeRequest(
            type=models.ShapeType("skeleton"),
            frame=1,
            label_id=skeleton.id,
            points=[],
            attributes=[],
            elements=[
                models.SubLabeledShapeRequest(
                    type=models.ShapeType("points"),
                    frame=1,
                    label_id=sublabel.id,
                    points=[20.0 + 30 * n, 20.0 + 10 * n],
                    outside=sublabel.name == "right",
                    occluded=sublabel.name == "middle",
                    attributes=[],
                )
                for n, sublabel in enumerate(skeleton.sublabels)
            ],
        )
    )
    return shapes


def a_track(labels: dict[str, Any]) -> Any:
    """A rectangle track of the `any` label: keyframes 0 and 1, then outside at 2."""
    speed = attribute_id(labels["any"], "speed")
    keyframes = [
        (0, [0.0, 0.0, 10.0, 10.0], 0.0, False, "5"),
        (1, [4.0, 2.0, 14.0, 12.0], 10.0, False, "7"),
        (2, [8.0, 4.0, 18.0, 14.0], 20.0, True, "7"),
    ]
    return models.LabeledTrackRequest(
        frame=0,
        label_id=labels["any"].id,
        group=0,
        attributes=[],
        shapes=[
            models.TrackedShapeRequest(
                type=models.ShapeType("rectangle"),
                frame=frame,
                points=points,
                rotation=rotation,
                outside=outside,
                occluded=False,
                z_order=0,
                attributes=[models.AttributeValRequest(spec_id=speed, value=value)],
            )
            for frame, points, rotation, outside, value in keyframes
        ],
    )


def tags(labels: dict[str, Any]) -> list[Any]:
    """Tags with every attribute of their label given (read back as they are)."""
    checked = attribute_id(labels["tag"], "checked")
    speed = attribute_id(labels["any"], "speed")
    return [
        models.LabeledImageRequest(
            frame=0,
            label_id=labels["tag"].id,
            attributes=[models.AttributeValRequest(spec_id=checked, value="true")],
        ),
        models.LabeledImageRequest(
            frame=2,
            label_id=labels["any"].id,
            attributes=[models.AttributeValRequest(spec_id=speed, value="42")],
        ),
    ]


def test_job_annotations_of_every_type_put_and_read_back(
    jobs: list[Any], labels: dict[str, Any]
) -> None:
    """`job.set_annotations` (PUT /api/jobs/{id}/annotations/) and `job.get_annotations`."""
    job = jobs[0]
    sent = models.LabeledDataRequest(
        tags=tags(labels), shapes=every_shape(labels), tracks=[a_track(labels)]
    )
    job.set_annotations(sent)
    read = job.get_annotations()

    assert_read_back(sent.shapes, read.shapes, ("type", "frame"))
    assert_read_back(sent.tracks, read.tracks, ("label_id", "frame"))
    assert_read_back(sent.tags, read.tags, ("label_id", "frame"))
    rectangle = next(s for s in read.shapes if str(s.type) == "rectangle")
    assert rectangle.rotation == 30.0
    skeleton = next(s for s in read.shapes if str(s.type) == "skeleton")
    assert sorted(e.label_id for e in skeleton.elements) == sorted(
        s.id for s in labels["skeleton"].sublabels
    )
    assert [len(t.shapes) for t in read.tracks] == [3]

    again = job.get_annotations()
    assert plain(again.shapes) == plain(read.shapes)
    assert again.version == read.version


def test_job_annotations_patch_create_update_delete(
    jobs: list[Any], labels: dict[str, Any]
) -> None:
    """`job.update_annotations` (PATCH ?action=) and `job.remove_annotations(ids=...)`."""
    job = jobs[1]
    make = attribute_id(labels["rectangle"], "make")
    created = models.PatchedLabeledDataRequest(
        shapes=[
            models.LabeledShapeRequest(
                type=models.ShapeType("rectangle"),
                frame=4,
                label_id=labels["rectangle"].id,
                points=[1.0, 2.0, 3.0, 4.0],
                rotation=45.0,
                attributes=[models.AttributeValRequest(spec_id=make, value="c")],
            ),
            models.LabeledShapeRequest(
                type=models.ShapeType("polygon"),
                frame=5,
                label_id=labels["polygon"].id,
                points=[0.0, 0.0, 5.0, 0.0, 2.5, 4.0],
            ),
        ],
        tags=[models.LabeledImageRequest(frame=4, label_id=labels["tag"].id, attributes=[])],
    )
    job.update_annotations(created, action=AnnotationUpdateAction.CREATE)
    read = job.get_annotations()
    assert_read_back(created.shapes, read.shapes, ("type", "frame"))
    # An attribute the request left out is read as the label's default, as CVAT reads it.
    checked = attribute_id(labels["tag"], "checked")
    assert [(t.frame, t.label_id, [(a.spec_id, a.value) for a in t.attributes])
            for t in read.tags] == [(4, labels["tag"].id, [(checked, "false")])]  # fmt: skip

    rectangle = next(s for s in read.shapes if str(s.type) == "rectangle")
    moved = models.LabeledShapeRequest(
        id=rectangle.id,
        type=models.ShapeType("rectangle"),
        frame=4,
        label_id=labels["rectangle"].id,
        points=[11.0, 12.0, 13.0, 14.0],
        rotation=90.0,
        attributes=[models.AttributeValRequest(spec_id=make, value="a")],
    )
    job.update_annotations(models.PatchedLabeledDataRequest(shapes=[moved]))
    updated = job.get_annotations()
    rectangle = next(s for s in updated.shapes if s.id == moved.id)
    assert (rectangle.points, rectangle.rotation) == ([11.0, 12.0, 13.0, 14.0], 90.0)
    assert [(a.spec_id, a.value) for a in rectangle.attributes] == [(make, "a")]
    assert updated.version > read.version

    polygon = next(s for s in updated.shapes if str(s.type) == "polygon")
    job.remove_annotations(ids=[polygon.id])
    left = job.get_annotations()
    assert [s.id for s in left.shapes] == [rectangle.id]
    assert [t.frame for t in left.tags] == [4]


def test_task_annotations_patch_and_read(
    task: Any, jobs: list[Any], labels: dict[str, Any]
) -> None:
    """`task.update_annotations` (PATCH /api/tasks/{id}/annotations/) reaches the job that
    holds the frame, and `task.get_annotations` holds every job's annotations."""
    created = models.PatchedLabeledDataRequest(
        shapes=[
            models.LabeledShapeRequest(
                type=models.ShapeType("points"),
                frame=8,
                label_id=labels["points"].id,
                points=[3.0, 4.0],
            )
        ]
    )
    task.update_annotations(created, action=AnnotationUpdateAction.CREATE)
    of_task = task.get_annotations()
    of_last_job = jobs[2].get_annotations()
    assert_read_back(created.shapes, of_last_job.shapes, ("type", "frame"))

    of_jobs = [job.get_annotations() for job in jobs]
    assert sorted(s.id for s in of_task.shapes) == sorted(
        s.id for annotations in of_jobs for s in annotations.shapes
    )
    assert sorted(t.id for t in of_task.tags) == sorted(
        t.id for annotations in of_jobs for t in annotations.tags
    )
    assert len(of_task.tracks) == sum(len(annotations.tracks) for annotations in of_jobs)


def test_put_job_annotations_with_a_trailing_slash_answers_200(
    gateway: str, fleet: Launcher, jobs: list[Any]
) -> None:
    """CVAT's slash path answers itself, not with a redirect."""
    path = f"/api/jobs/{jobs[2].id}/annotations/"
    auth = {"Authorization": f"Bearer {fleet.token}"}
    with httpx.Client(base_url=gateway, headers=auth, timeout=30) as client:
        current = client.get(path, follow_redirects=False)
        assert current.status_code == 200, (
            current.status_code,
            current.headers.get("location"),
            current.text,
        )
        put = client.put(
            path,
            json={"version": current.json()["version"], "tags": [], "shapes": [], "tracks": []},
            follow_redirects=False,
        )
    assert put.status_code == 200, (put.status_code, put.headers.get("location"), put.text)
    assert put.json()["shapes"] == []


def test_task_export_dataset_in_coco_loads_in_pycocotools(task: Any, tmp_path: Path) -> None:
    """`task.export_dataset` (POST .../dataset/export, /api/requests polling, download of
    `result_url`) through the gateway; pycocotools reads the archive and its polygons'
    masks are our rasteriser's."""
    path = task.export_dataset("COCO 1.0", tmp_path / "coco.zip", include_images=False)
    with zipfile.ZipFile(path) as archive:
        dataset = json.loads(archive.read("annotations/instances_default.json"))
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    assert [image["file_name"] for image in dataset["images"]] == [
        f"frame_{index:02d}.{'png' if index % 2 == 0 else 'jpg'}" for index in range(FRAMES)
    ]
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) > 0
    polygons = [ann for ann in annotations if isinstance(ann["segmentation"], list)
                and ann["segmentation"]]  # fmt: skip
    assert polygons
    for ann in polygons:
        image = coco.imgs[ann["image_id"]]
        ours = polygons_to_mask(ann["segmentation"], image["height"], image["width"])
        assert np.array_equal(coco.annToMask(ann).astype(bool), ours)
    masks = [ann for ann in annotations if isinstance(ann["segmentation"], dict)]
    for ann in masks:
        assert coco.annToMask(ann).sum() == ann["area"]


@pytest.mark.parametrize(
    ("format_name", "datumaro_format"),
    [
        ("CVAT for images 1.1", "cvat"),
        ("Datumaro 1.0", "datumaro"),
        ("COCO 1.0", "coco_instances"),
        ("YOLO 1.1", "yolo"),
        ("PASCAL VOC 1.1", "voc"),
        ("MOT 1.1", "mot_seq"),
        ("Cityscapes 1.0", "cityscapes"),
    ],
)
def test_task_export_dataset_imports_in_datumaro(
    task: Any, tmp_path: Path, format_name: str, datumaro_format: str
) -> None:
    """Each format's archive, exported through the gateway, imports in datumaro with every
    frame of the task. Images are included (datumaro's readers want them) except for MOT,
    whose datumaro reader takes image names for frame numbers; datumaro 1.13's Cityscapes
    reader looks for images in `leftImg8bit/`, CVAT's layout has `imgsFine/leftImg8bit/`,
    and it reads classes from `instanceIds`."""
    path = task.export_dataset(
        format_name, tmp_path / "export.zip", include_images=datumaro_format != "mot_seq"
    )
    root = tmp_path / "export"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(root)
    skeletons = 0
    if datumaro_format == "datumaro":
        # `skeleton` is an annotation type of CVAT's datumaro fork, not of datumaro 1.13
        member = root / "annotations" / "default.json"
        content = json.loads(member.read_bytes())
        for item in content["items"]:
            kept = [ann for ann in item["annotations"] if ann["type"] != "skeleton"]
            skeletons += len(item["annotations"]) - len(kept)
            item["annotations"] = kept
        member.write_text(json.dumps(content))
        assert skeletons > 0
    if datumaro_format == "cityscapes":
        (root / "imgsFine" / "leftImg8bit").rename(root / "leftImg8bit")
        # datumaro 1.13 reads `instanceIds` as class ids (it finds only crowd masks in
        # Cityscapes' class * 1000 + n); its class map is `labelIds`, which it then reads
        for class_map in root.glob("gtFine/*/*_gtFine_labelIds.png"):
            instances = class_map.name.replace("_labelIds.png", "_instanceIds.png")
            class_map.replace(class_map.with_name(instances))
    imported = dm.Dataset.import_from(str(root), datumaro_format)
    annotated = {item.id for item in imported if item.annotations}
    if datumaro_format == "mot_seq":  # only frames with boxes are in gt.txt
        assert len(imported) == len(annotated) > 0
    else:
        assert len(imported) == FRAMES
        assert annotated
    names = {label.name for label in imported.categories()[dm.AnnotationType.label]}
    assert names <= {label.name for label in task.get_labels()} | {*SUBLABELS, "background"}


def test_task_export_in_cvat_for_video_imports_in_datumaro(
    sdk: Any, project: Any, images: list[Path], labels: dict[str, Any], tmp_path: Path
) -> None:
    """CVAT for video of a task with a track and a plain polygon (datumaro's CVAT reader
    has no skeleton tracks): the track's three frames and the polygon as a track of a
    keyframe and its outside copy."""
    made = sdk.tasks.create_from_data(
        spec=models.TaskWriteRequest(name="cvat-client e2e tracks", project_id=project.id),
        resource_type=ResourceType.LOCAL,
        resources=[str(path) for path in images[:4]],
        data_params={"image_quality": 80},
    )
    polygon = models.LabeledShapeRequest(
        type=models.ShapeType("polygon"), frame=1, label_id=labels["polygon"].id,
        points=[1.0, 1.0, 20.0, 1.0, 20.0, 20.0],
    )  # fmt: skip
    made.set_annotations(models.LabeledDataRequest(shapes=[polygon], tracks=[a_track(labels)]))
    path = made.export_dataset("CVAT for video 1.1", tmp_path / "video.zip", include_images=True)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "video")
    imported = dm.Dataset.import_from(str(tmp_path / "video"), "cvat")
    found = sorted(
        (item.id, annotation.type.name, bool(annotation.attributes.get("outside")))
        for item in imported
        for annotation in item.annotations
    )
    assert found == [  # the track turns (rotation 10 and 20) after its first frame
        ("frame_000000", "bbox", False),
        ("frame_000001", "polygon", False),
        ("frame_000001", "rotated_bbox", False),
        ("frame_000002", "polygon", True),
        ("frame_000002", "rotated_bbox", True),
    ]


def test_project_export_dataset_with_images(
    project: Any, task: Any, images: list[Path], tmp_path: Path
) -> None:
    """`project.export_dataset` writes each task with media, images included; a frame
    whose name an earlier task of its subset has is put in a folder named after its task."""
    tracks_task = next(t for t in project.get_tasks() if t.name == "cvat-client e2e tracks")
    path = project.export_dataset("Datumaro 1.0", tmp_path / "project.zip", include_images=True)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert len(names) == len(set(names))
    assert "annotations/default.json" in names
    written = sorted(name for name in names if name.startswith("images/default/"))
    assert written == sorted(
        [f"images/default/{path.name}" for path in images]
        + [f"images/default/task_{tracks_task.id}/{path.name}" for path in images[:4]]
    )


# --- annotation import (issue 12): files other tools make, round trips, hostile files --


IMPORT_WIDTH, IMPORT_HEIGHT, IMPORT_FRAMES = 48, 32, 4
IMPORT_NAMES = [f"img_{index}.png" for index in range(IMPORT_FRAMES)]


def import_labels() -> list[Any]:
    """The labels of an import task: what the files below name (COCO's categories,
    YOLO's classes, CVAT XML's labels), with an immutable and a mutable attribute."""
    return [
        models.PatchedLabelRequest(
            name="car",
            type="any",
            attributes=[
                models.AttributeRequest(
                    name="color",
                    mutable=False,
                    input_type=models.InputTypeEnum("select"),
                    values=["red", "blue"],
                    default_value="red",
                ),
                models.AttributeRequest(
                    name="parked",
                    mutable=True,
                    input_type=models.InputTypeEnum("checkbox"),
                    values=["false"],
                    default_value="false",
                ),
            ],
        ),
        models.PatchedLabelRequest(name="person", type="any"),
        models.PatchedLabelRequest(name="road", type="any"),
        models.PatchedLabelRequest(name="daytime", type="tag"),
    ]


@pytest.fixture(scope="module")
def import_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The images of every import task: PNGs named as the files below name them."""
    folder = tmp_path_factory.mktemp("import-images")
    paths = []
    for index, name in enumerate(IMPORT_NAMES):
        path = folder / name
        Image.new("RGB", (IMPORT_WIDTH, IMPORT_HEIGHT), (index * 40, 90, 160)).save(path)
        paths.append(path)
    return paths


def import_task(sdk: Any, images: list[Path], name: str) -> Any:
    """A fresh task (outside any project) with the import labels and the images."""
    return sdk.tasks.create_from_data(
        spec=models.TaskWriteRequest(name=name, labels=import_labels()),
        resource_type=ResourceType.LOCAL,
        resources=[str(path) for path in images],
        data_params={"image_quality": 80},
    )


def described(task: Any, annotation: dict[str, Any]) -> dict[str, Any]:
    """An annotation as read through the SDK, its label and attributes by name, without
    ids; a mask's points as its pixels (a bool array's bytes)."""
    labels = {label.id: label for label in task.get_labels()}
    label = labels[annotation["label_id"]]
    names = {spec.id: spec.name for spec in label.attributes}
    result = {
        key: value
        for key, value in annotation.items()
        if key not in ("id", "label_id", "attributes", "shapes", "elements")
    }
    result["label"] = label.name
    result["attributes"] = {names[a["spec_id"]]: a["value"] for a in annotation["attributes"]}
    if annotation.get("type") == "mask":
        result["points"] = mask_pixels(annotation["points"])
    if "shapes" in annotation:
        result["shapes"] = [
            {
                **{k: v for k, v in shape.items() if k not in ("id", "attributes")},
                "attributes": {names[a["spec_id"]]: a["value"] for a in shape["attributes"]},
            }
            for shape in sorted(annotation["shapes"], key=lambda shape: shape["frame"])
        ]
    return result


def mask_pixels(points: list[float]) -> list[tuple[int, int]]:
    """A CVAT mask's pixels, as (row, column) pairs."""
    pixels = cvat_mask_to_array(points, IMPORT_HEIGHT, IMPORT_WIDTH)
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(pixels), strict=True)]


def read_annotations(task: Any) -> dict[str, list[dict[str, Any]]]:
    """The task's annotations through the SDK, `described`, in a stable order."""
    data = plain(task.get_annotations())
    return {
        kind: sorted((described(task, item) for item in data[kind]), key=in_order)
        for kind in ("shapes", "tags", "tracks")
    }


def in_order(item: dict[str, Any]) -> tuple[Any, ...]:
    """Annotations by frame, label, type and points (how `read_annotations` sorts)."""
    return (item["frame"], item["label"], item.get("type", ""), repr(item.get("points")))


def shape(kind: str, frame: int, label: str, points: Any, **fields: Any) -> dict[str, Any]:
    """A shape as `described` gives it, with CVAT's defaults for what `fields` omits."""
    return {
        "type": kind, "frame": frame, "label": label, "points": points,
        "rotation": 0.0, "occluded": False, "outside": False, "z_order": 0, "group": 0,
        "source": "file", "attributes": {}, **fields,
    }  # fmt: skip


def narrowed_all(wanted: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[Any]:
    """`got` with only the keys `wanted` has (the server may add `score`, `elements`);
    `wanted` in the order of `read_annotations` (`in_order`)."""
    assert len(got) == len(wanted), (got, wanted)
    return [narrowed(w, g) for w, g in zip(wanted, got, strict=True)]


# The COCO file: as pycocotools-based tools write a ground truth with scores.
COCO_MASK = np.zeros((IMPORT_HEIGHT, IMPORT_WIDTH), np.uint8)
COCO_MASK[10:14, 20:27] = 1
COCO_MASK[12, 30] = 1


def coco_document() -> dict[str, Any]:
    rle = coco_mask.encode(np.asfortranarray(COCO_MASK))
    rle["counts"] = rle["counts"].decode("ascii")
    images = [
        {"id": 10 + index, "file_name": name, "width": IMPORT_WIDTH, "height": IMPORT_HEIGHT}
        for index, name in enumerate(IMPORT_NAMES)
    ]
    box = {"id": 1, "image_id": 10, "category_id": 1, "bbox": [2.5, 3.0, 10.0, 8.25],
           "area": 82.5, "segmentation": [], "iscrowd": 0, "score": 0.75}  # fmt: skip
    polygon = {"id": 2, "image_id": 11, "category_id": 2, "bbox": [1.0, 1.0, 19.0, 14.5],
               "area": 137.75, "iscrowd": 0,
               "segmentation": [[1.0, 1.0, 20.0, 1.0, 20.0, 15.5, 1.0, 15.5]]}  # fmt: skip
    two_parts = {"id": 3, "image_id": 11, "category_id": 2, "bbox": [25.0, 2.0, 20.0, 20.0],
                 "area": 50.0, "iscrowd": 0,
                 "segmentation": [[25.0, 2.0, 30.0, 2.0, 30.0, 7.0],
                                  [40.0, 17.0, 45.0, 17.0, 45.0, 22.0]]}  # fmt: skip
    crowd = {"id": 4, "image_id": 12, "category_id": 3, "iscrowd": 1,
             "bbox": [float(v) for v in coco_mask.toBbox(rle)],
             "area": float(coco_mask.area(rle)), "segmentation": rle}  # fmt: skip
    return {
        "info": {"description": "made by a pycocotools script", "year": 2024},
        "licenses": [],
        "images": images,
        "categories": [
            {"id": 1, "name": "car", "supercategory": ""},
            {"id": 2, "name": "person", "supercategory": ""},
            {"id": 3, "name": "road", "supercategory": ""},
        ],
        "annotations": [box, polygon, two_parts, crowd],
    }


def coco_expected() -> list[dict[str, Any]]:
    mask = [(int(r), int(c)) for r, c in zip(*np.nonzero(COCO_MASK), strict=True)]
    return [
        shape("rectangle", 0, "car", [2.5, 3.0, 12.5, 11.25], score=0.75,
              attributes={"color": "red", "parked": "false"}),
        shape("polygon", 1, "person", [1.0, 1.0, 20.0, 1.0, 20.0, 15.5, 1.0, 15.5]),
        shape("polygon", 1, "person", [25.0, 2.0, 30.0, 2.0, 30.0, 7.0], group=1),
        shape("polygon", 1, "person", [40.0, 17.0, 45.0, 17.0, 45.0, 22.0], group=1),
        shape("mask", 2, "road", mask),
    ]  # fmt: skip


def write_coco(path: Path) -> Path:
    path.write_text(json.dumps(coco_document()))
    return path


def write_yolo(path: Path) -> Path:
    """A darknet-style YOLO 1.1 zip: obj.data, obj.names, train.txt and a label file per
    image (the last image has none: no objects)."""
    lines = {
        "img_0": "0 0.25 0.5 0.25 0.5\n1 0.75 0.25 0.125 0.25\n",
        "img_1": "1 0.5 0.5 1 1\n",
        "img_2": "",
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("obj.data", "classes = 2\ntrain = data/train.txt\n"
                         "names = data/obj.names\nbackup = backup/\n")  # fmt: skip
        archive.writestr("obj.names", "car\nperson\n")
        archive.writestr(
            "train.txt", "".join(f"data/obj_train_data/{name}\n" for name in IMPORT_NAMES)
        )
        for stem, content in lines.items():
            archive.writestr(f"obj_train_data/{stem}.txt", content)
    return path


def yolo_expected() -> list[dict[str, Any]]:
    return [
        shape("rectangle", 0, "car", [6.0, 8.0, 18.0, 24.0],
              attributes={"color": "red", "parked": "false"}),
        shape("rectangle", 0, "person", [33.0, 4.0, 39.0, 12.0]),
        shape("rectangle", 1, "person", [0.0, 0.0, 48.0, 32.0]),
    ]  # fmt: skip


XML_LABELS = """
      <labels>
        <label><name>car</name><color>#ff0000</color><type>any</type><attributes>
          <attribute><name>color</name><mutable>False</mutable><input_type>select</input_type>
            <default_value>red</default_value><values>red
blue</values></attribute>
          <attribute><name>parked</name><mutable>True</mutable><input_type>checkbox</input_type>
            <default_value>false</default_value><values>false</values></attribute>
        </attributes></label>
        <label><name>person</name><color>#00ff00</color><type>any</type><attributes/></label>
        <label><name>road</name><color>#0000ff</color><type>any</type><attributes/></label>
        <label><name>daytime</name><color>#ffff00</color><type>tag</type><attributes/></label>
      </labels>"""

CVAT_IMAGES_XML = f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id><name>written by hand</name><size>4</size><mode>annotation</mode>
      <overlap>0</overlap><created>2024-05-01 10:00:00.000000+00:00</created>
      {XML_LABELS}
    </task>
    <dumped>2024-05-01 10:05:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="img_0.png" width="48" height="32">
    <box label="car" occluded="0" xtl="1.5" ytl="2" xbr="20.25" ybr="15" z_order="1" rotation="15">
      <attribute name="color">blue</attribute>
      <attribute name="parked">true</attribute>
    </box>
    <polygon label="person" occluded="1" points="1.00,1.00;10.00,1.00;10.00,10.50" z_order="0"
             group_id="1"/>
    <polyline label="person" occluded="0" points="2,30;40,30;45,5" z_order="0" group_id="1"/>
    <tag label="daytime"/>
  </image>
  <image id="1" name="img_1.png" width="48" height="32">
    <points label="road" occluded="0" points="3,4;5,6;7.5,8.25" z_order="2"/>
    <ellipse label="car" occluded="0" cx="20" cy="15" rx="6" ry="4" rotation="30" z_order="0">
      <attribute name="color">red</attribute>
      <attribute name="parked">false</attribute>
    </ellipse>
  </image>
  <image id="2" name="img_2.png" width="48" height="32">
    <mask label="road" occluded="0" rle="2, 6, 4" left="5" top="6" width="4" height="3"
          z_order="0"/>
  </image>
  <image id="3" name="img_3.png" width="48" height="32">
  </image>
</annotations>
"""


def cvat_images_expected() -> list[dict[str, Any]]:
    return [
        shape("polygon", 0, "person", [1.0, 1.0, 10.0, 1.0, 10.0, 10.5], occluded=True,
              group=1),
        shape("polyline", 0, "person", [2.0, 30.0, 40.0, 30.0, 45.0, 5.0], group=1),
        shape("rectangle", 0, "car", [1.5, 2.0, 20.25, 15.0], rotation=15.0, z_order=1,
              attributes={"color": "blue", "parked": "true"}),
        shape("ellipse", 1, "car", [20.0, 15.0, 26.0, 11.0], rotation=30.0,
              attributes={"color": "red", "parked": "false"}),
        shape("points", 1, "road", [3.0, 4.0, 5.0, 6.0, 7.5, 8.25], z_order=2),
        shape("mask", 2, "road", [(6, 7), (6, 8), (7, 5), (7, 6), (7, 7), (7, 8)]),
    ]  # fmt: skip


CVAT_VIDEO_XML = f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>8</id><name>a video, by hand</name><size>4</size><mode>interpolation</mode>
      <overlap>0</overlap><start_frame>0</start_frame><stop_frame>3</stop_frame>
      {XML_LABELS}
      <original_size><width>48</width><height>32</height></original_size>
    </task>
  </meta>
  <track id="0" label="car" source="manual">
    <box frame="0" keyframe="1" outside="0" occluded="0" xtl="2" ytl="3" xbr="12" ybr="13"
         z_order="0">
      <attribute name="color">blue</attribute>
      <attribute name="parked">false</attribute>
    </box>
    <box frame="1" keyframe="0" outside="0" occluded="0" xtl="4" ytl="3" xbr="14" ybr="13"
         z_order="0">
      <attribute name="color">blue</attribute>
      <attribute name="parked">false</attribute>
    </box>
    <box frame="2" keyframe="1" outside="0" occluded="1" xtl="6" ytl="3" xbr="16" ybr="13"
         z_order="0">
      <attribute name="color">blue</attribute>
      <attribute name="parked">true</attribute>
    </box>
    <box frame="3" keyframe="1" outside="1" occluded="1" xtl="6" ytl="3" xbr="16" ybr="13"
         z_order="0">
      <attribute name="color">blue</attribute>
      <attribute name="parked">true</attribute>
    </box>
  </track>
  <track id="1" label="person" source="manual">
    <polygon frame="1" keyframe="1" outside="0" occluded="0"
             points="20.00,20.00;30.00,20.00;25.00,28.50" z_order="1"/>
    <polygon frame="2" keyframe="1" outside="1" occluded="0"
             points="20.00,20.00;30.00,20.00;25.00,28.50" z_order="1"/>
  </track>
</annotations>
"""


def cvat_video_expected() -> list[dict[str, Any]]:
    def frame(kind: str, number: int, points: list[float], **fields: Any) -> dict[str, Any]:
        return {"type": kind, "frame": number, "points": points, "rotation": 0.0,
                "occluded": False, "outside": False, "z_order": 0, "attributes": {},
                **fields}  # fmt: skip

    box = [2.0, 3.0, 12.0, 13.0]
    moved = [6.0, 3.0, 16.0, 13.0]
    triangle = [20.0, 20.0, 30.0, 20.0, 25.0, 28.5]
    return [
        {"frame": 0, "label": "car", "group": 0, "source": "manual",
         "attributes": {"color": "blue"}, "shapes": [
            frame("rectangle", 0, box, attributes={"parked": "false"}),
            frame("rectangle", 2, moved, occluded=True, attributes={"parked": "true"}),
            frame("rectangle", 3, moved, occluded=True, outside=True,
                  attributes={"parked": "true"}),
        ]},
        {"frame": 1, "label": "person", "group": 0, "source": "manual", "attributes": {},
         "shapes": [
            frame("polygon", 1, triangle, z_order=1),
            frame("polygon", 2, triangle, z_order=1, outside=True),
        ]},
    ]  # fmt: skip


def write_text(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_import_coco_made_by_pycocotools(
    sdk: Any, import_images: list[Path], tmp_path: Path
) -> None:
    """`task.import_annotations("COCO 1.0", file.json)`: a box with a score, a polygon,
    a two-part polygon (one group) and a crowd RLE of pycocotools' compressed counts, each
    on its image; the mask's pixels are pycocotools' decode of the RLE."""
    task = import_task(sdk, import_images, "import coco")
    task.import_annotations("COCO 1.0", write_coco(tmp_path / "instances_val2017.json"))
    read = read_annotations(task)
    wanted = sorted(coco_expected(), key=in_order)
    assert narrowed_all(wanted, read["shapes"]) == wanted
    assert read["tags"] == read["tracks"] == []
    [mask] = [s for s in plain(task.get_annotations())["shapes"] if s["type"] == "mask"]
    rle = coco_document()["annotations"][3]["segmentation"]
    decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(
        cvat_mask_to_array(mask["points"], IMPORT_HEIGHT, IMPORT_WIDTH), decoded.astype(bool)
    )


def test_import_yolo_darknet_zip(sdk: Any, import_images: list[Path], tmp_path: Path) -> None:
    """A darknet-style YOLO 1.1 zip: boxes come back in pixels of each frame."""
    task = import_task(sdk, import_images, "import yolo")
    task.import_annotations("YOLO 1.1", write_yolo(tmp_path / "darknet.zip"))
    read = read_annotations(task)
    wanted = sorted(yolo_expected(), key=in_order)
    assert narrowed_all(wanted, read["shapes"]) == wanted
    assert read["tags"] == read["tracks"] == []


def test_import_cvat_for_images_xml(sdk: Any, import_images: list[Path], tmp_path: Path) -> None:
    """Hand-written CVAT for images 1.1 (importer "CVAT 1.1"): every 2D shape kind but
    cuboids and skeletons, attributes, a group, z_order, rotation, a mask and a tag."""
    task = import_task(sdk, import_images, "import cvat images")
    task.import_annotations("CVAT 1.1", write_text(tmp_path / "images.xml", CVAT_IMAGES_XML))
    read = read_annotations(task)
    wanted = sorted(cvat_images_expected(), key=in_order)
    assert narrowed_all(wanted, read["shapes"]) == wanted
    assert [(t["frame"], t["label"], t["group"], t["source"]) for t in read["tags"]] == [
        (0, "daytime", 0, "file")
    ]
    assert read["tracks"] == []


def test_import_cvat_for_video_xml(sdk: Any, import_images: list[Path], tmp_path: Path) -> None:
    """Hand-written CVAT for video 1.1: a track's keyframes (the interpolated frame is
    dropped), its outside frame, mutable attributes on the frames and the immutable one
    on the track."""
    task = import_task(sdk, import_images, "import cvat video")
    task.import_annotations("CVAT 1.1", write_text(tmp_path / "video.xml", CVAT_VIDEO_XML))
    read = read_annotations(task)
    wanted = sorted(cvat_video_expected(), key=in_order)
    assert narrowed_all(wanted, read["tracks"]) == wanted
    assert read["shapes"] == read["tags"] == []


ROUND_TRIPS = {
    "COCO 1.0": ("COCO 1.0", write_coco, "instances_val2017.json"),
    "YOLO 1.1": ("YOLO 1.1", write_yolo, "darknet.zip"),
    "CVAT for images 1.1": (
        "CVAT 1.1",
        lambda path: write_text(path, CVAT_IMAGES_XML),
        "images.xml",
    ),
    "CVAT for video 1.1": ("CVAT 1.1", lambda path: write_text(path, CVAT_VIDEO_XML), "video.xml"),
}


def export_members(path: Path) -> dict[str, bytes]:
    """An export's files, CVAT XML without its `<meta>` (ids, names, dates of its task)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, content in members.items():
        if name.endswith(".xml"):
            members[name] = content[content.index(b"</meta>") :]
    return members


@pytest.mark.parametrize("exporter", list(ROUND_TRIPS))
def test_import_round_trip_of_an_export_is_identical(
    sdk: Any, import_images: list[Path], tmp_path: Path, exporter: str
) -> None:
    """A task's export imported into a fresh task with the same images and labels exports
    to the same file, byte for byte (CVAT XML's task meta aside)."""
    importer, write, name = ROUND_TRIPS[exporter]
    source = import_task(sdk, import_images, f"round trip {exporter} source")
    source.import_annotations(importer, write(tmp_path / name))
    first = source.export_dataset(exporter, tmp_path / "first.zip", include_images=False)
    target = import_task(sdk, import_images, f"round trip {exporter} target")
    target.import_annotations(importer, first)
    second = target.export_dataset(exporter, tmp_path / "second.zip", include_images=False)

    before, after = export_members(first), export_members(second)
    assert sorted(after) == sorted(before)
    for member, content in before.items():
        assert after[member] == content, member
    # the tasks hold the same annotations; but for a score: COCO writes one only for a
    # model's shapes (source "auto"), and a shape imported without one scores 1
    imported, exported = read_annotations(target), read_annotations(source)
    for kind in ("shapes", "tags", "tracks"):
        assert len(imported[kind]) == len(exported[kind]), kind
        for ours, theirs in zip(imported[kind], exported[kind], strict=True):
            if exporter == "COCO 1.0":
                assert ours.pop("score") == 1.0
                theirs.pop("score")
            assert ours == theirs, kind


def test_import_into_a_job(sdk: Any, import_images: list[Path], tmp_path: Path) -> None:
    """`job.import_annotations` (`/api/jobs/{id}/annotations/`) puts a file naming the
    job's frames on them, and leaves the other job alone."""
    task = sdk.tasks.create_from_data(
        spec=models.TaskWriteRequest(name="import job", labels=import_labels(), segment_size=2),
        resource_type=ResourceType.LOCAL,
        resources=[str(path) for path in import_images],
        data_params={"image_quality": 80},
    )
    first, second = sorted(task.get_jobs(), key=lambda job: job.start_frame)
    assert (second.start_frame, second.stop_frame) == (2, 3)
    xml = """<annotations><version>1.1</version>
      <image id="3" name="img_3.png" width="48" height="32">
        <box label="person" occluded="0" xtl="4" ytl="5" xbr="14" ybr="15.5" z_order="0"/>
      </image></annotations>"""

    second.import_annotations("CVAT 1.1", write_text(tmp_path / "job.xml", xml))

    [box] = plain(second.get_annotations())["shapes"]
    assert (box["frame"], box["points"]) == (3, [4.0, 5.0, 14.0, 15.5])
    assert plain(first.get_annotations())["shapes"] == []
    assert [s["frame"] for s in plain(task.get_annotations())["shapes"]] == [3]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotations><version>1.1</version>
  <image id="0" name="img_0.png" width="48" height="32">
    <box label="&lol9;" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  </image>
</annotations>
"""


def test_import_of_a_hostile_file_fails_and_changes_nothing(
    sdk: Any, import_images: list[Path], tmp_path: Path
) -> None:
    """An XML billion laughs and a zip with a `../` member: the SDK's call raises (the
    request fails, saying why) and the task's annotations are as they were."""
    task = import_task(sdk, import_images, "import hostile")
    task.import_annotations("CVAT 1.1", write_text(tmp_path / "images.xml", CVAT_IMAGES_XML))
    before = read_annotations(task)
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as archive:
        archive.writestr("../../annotations.xml", CVAT_IMAGES_XML)
    bomb = tmp_path / "lolz.xml"
    bomb.write_bytes(BILLION_LAUGHS)

    for path, reason in ((bomb, "is not XML Tessera reads"), (escape, "outside the archive")):
        with pytest.raises(BackgroundRequestException, match=reason):
            task.import_annotations("CVAT 1.1", path)
        assert read_annotations(task) == before


def test_import_mode_append_keeps_the_annotations_replace_does_not(
    sdk: Any, import_images: list[Path], tmp_path: Path
) -> None:
    """`import_mode="append"` adds the file's annotations to the task's; the default
    (CVAT's "replace") replaces them."""
    task = import_task(sdk, import_images, "import append")
    task.import_annotations("YOLO 1.1", write_yolo(tmp_path / "darknet.zip"))
    coco = write_coco(tmp_path / "instances_default.json")

    task.import_annotations("COCO 1.0", coco, import_mode="append")
    appended = read_annotations(task)["shapes"]
    wanted = sorted(
        yolo_expected() + coco_expected(), key=lambda s: (s["frame"], s["label"], s["type"])
    )
    got = sorted(appended, key=lambda s: (s["frame"], s["label"], s["type"]))
    assert [(s["frame"], s["label"], s["type"]) for s in got] == [
        (s["frame"], s["label"], s["type"]) for s in wanted
    ]

    task.import_annotations("COCO 1.0", coco)
    wanted = sorted(coco_expected(), key=in_order)
    assert narrowed_all(wanted, read_annotations(task)["shapes"]) == wanted


def test_no_response_names_an_address_other_than_the_gateway(
    recorder: Recorder, gateway: str, sdk: Any, task: Any
) -> None:
    """No Location header, URL field (`url`, `next`, `previous`, `result_url`) or
    `scheme://host:port` in any response the SDK received names another address."""
    assert len(recorder.exchanges) > 10
    found = {
        f"{e.method} {e.url} -> {e.status}": problems
        for e in recorder.exchanges
        if (problems := foreign_addresses(e, gateway))
    }
    assert found == {}


def _cvat_cli(fleet: Launcher, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`cvat-cli` as a user runs it: a process of its own, with a token in its environment."""
    command = [
        str(Path(sys.prefix) / "bin" / "cvat-cli"),
        "--server-host",
        "http://127.0.0.1",
        "--server-port",
        str(fleet.port),
        *args,
    ]
    environment = {**os.environ, "CVAT_ACCESS_TOKEN": fleet.token, "HOME": str(home)}
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def test_cvat_cli_creates_and_lists_tasks(
    fleet: Launcher, images: list[Path], task: Any, tmp_path: Path
) -> None:
    """`cvat-cli task create` from local files and `task ls` go through the gateway."""
    labels = json.dumps([{"name": "car", "attributes": []}])
    created = _cvat_cli(
        fleet, tmp_path, "task", "create", "made by cvat-cli", "local",
        *(str(path) for path in images[:5]), "--labels", labels, "--segment_size", "2",
        "--completion_verification_period", "0.2",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    listed = _cvat_cli(fleet, tmp_path, "task", "ls")
    assert listed.returncode == 0, listed.stderr
    ids = [int(line) for line in listed.stdout.split()]
    assert task.id in ids
    as_json = _cvat_cli(fleet, tmp_path, "task", "ls", "--json")
    assert as_json.returncode == 0, as_json.stderr
    made = [t for t in json.loads(as_json.stdout) if t["name"] == "made by cvat-cli"]
    assert len(made) == 1
    assert made[0]["id"] in ids
    assert (made[0]["size"], made[0]["segment_size"], made[0]["overlap"]) == (5, 2, 0)
    assert made[0]["url"] == f"{fleet.url}/api/tasks/{made[0]['id']}"


def test_cvat_cli_manages_projects_and_tasks_and_downloads_frames(
    sdk: Any, fleet: Launcher, images: list[Path], tmp_path: Path
) -> None:
    """cvat-cli's `project create|ls|delete`, `task create` with `--image_quality`,
    `task frames` in both qualities and `task delete`, as processes of their own."""
    labels = json.dumps([{"name": "person", "attributes": []}])
    made = _cvat_cli(fleet, tmp_path, "project", "create", "cli project", "--labels", labels)
    assert made.returncode == 0, made.stderr
    project_id = int(made.stdout.split()[-1])
    listed = _cvat_cli(fleet, tmp_path, "project", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    (found,) = [p for p in json.loads(listed.stdout) if p["id"] == project_id]
    assert found["name"] == "cli project"
    assert [label.name for label in sdk.projects.retrieve(project_id).get_labels()] == ["person"]

    created = _cvat_cli(
        fleet, tmp_path, "task", "create", "cli frames", "local",
        *(str(path) for path in images[:3]), "--project_id", str(project_id),
        "--image_quality", "40", "--segment_size", "2",
        "--completion_verification_period", "0.2",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    task_id = int(created.stdout.split()[-1])
    task = sdk.tasks.retrieve(task_id)
    assert (task.project_id, task.size, task.image_quality) == (project_id, 3, 40)
    assert sorted((j.start_frame, j.stop_frame) for j in task.get_jobs()) == [(0, 1), (2, 2)]

    for quality in ("original", "compressed"):
        out = tmp_path / quality
        out.mkdir()
        frames = _cvat_cli(fleet, tmp_path, "task", "frames", str(task_id), "0", "2",
                           "--outdir", str(out), "--quality", quality)  # fmt: skip
        assert frames.returncode == 0, frames.stderr
        saved = sorted(path.name for path in out.iterdir())
        assert [name.rsplit(".", 1)[0] for name in saved] == [
            f"task_{task_id}_frame_000000", f"task_{task_id}_frame_000002"
        ]  # fmt: skip
        for name, source in zip(saved, (images[0], images[2]), strict=True):
            with Image.open(out / name) as got, Image.open(source) as sent:
                assert got.size == sent.size
                difference = np.abs(np.asarray(got.convert("RGB"), dtype=np.int16)
                                    - np.asarray(sent.convert("RGB"), dtype=np.int16))  # fmt: skip
                assert difference.mean() < (1 if quality == "original" else 12)

    deleted = _cvat_cli(fleet, tmp_path, "task", "delete", str(task_id))
    assert deleted.returncode == 0, deleted.stderr
    tasks = _cvat_cli(fleet, tmp_path, "task", "ls")
    assert str(task_id) not in tasks.stdout.split()
    gone = _cvat_cli(fleet, tmp_path, "project", "delete", str(project_id))
    assert gone.returncode == 0, gone.stderr
    projects = _cvat_cli(fleet, tmp_path, "project", "ls")
    assert str(project_id) not in projects.stdout.split()


def test_previews_are_jpeg_thumbnails_of_the_first_frames(
    task: Any, jobs: list[Any], images: list[Path]
) -> None:
    """cvat-sdk's `get_preview()` of a task and of its jobs, through the gateway: CVAT's
    JPEG thumbnail (at most 256 x 256, never enlarged) of the task's, or the job's, first
    frame."""
    shown = [(task.get_preview(), images[0])]
    shown += [(job.get_preview(), images[job.start_frame]) for job in jobs]
    for preview, source in shown:
        with Image.open(preview) as got, Image.open(source) as sent:
            assert got.format == "JPEG"
            assert got.size == sent.size  # 64 x 48
            difference = np.abs(np.asarray(got.convert("RGB"), dtype=np.int16)
                                - np.asarray(sent.convert("RGB"), dtype=np.int16))  # fmt: skip
            assert difference.mean() < 12, source.name


def test_a_bucket_of_the_fleets_s3_feeds_a_task_and_an_import(
    sdk: Any, fleet: Launcher, import_images: list[Path], tmp_path: Path
) -> None:
    """The fleet of `make run` lets a bucket of its own S3 (its banner's address and keys)
    be a cloud storage: a task from the bucket's images, then `location=cloud_storage`
    imports of a COCO file in the bucket, as cvat-sdk's low-level API sends them."""
    banner = re.search(r"s3 +(http://127\.0\.0\.1:\d+)", fleet.output.read_text())
    assert banner is not None
    keys = json.loads((fleet.state_dir / "secrets.json").read_text())
    bucket = boto3.client(
        "s3", endpoint_url=banner[1], region_name="us-east-1",
        aws_access_key_id=keys["s3_access_key"], aws_secret_access_key=keys["s3_secret_key"],
    )  # fmt: skip
    bucket.create_bucket(Bucket="samples")
    for path in import_images:
        bucket.put_object(Bucket="samples", Key=f"images/{path.name}", Body=path.read_bytes())
    bucket.put_object(Bucket="samples", Key="labels/coco.json",
                      Body=write_coco(tmp_path / "coco.json").read_bytes())  # fmt: skip
    storage, _ = sdk.api_client.cloudstorages_api.create(
        models.CloudStorageWriteRequest(
            provider_type="AWS_S3_BUCKET", resource="samples", display_name="samples",
            credentials_type="KEY_SECRET_KEY_PAIR", key=keys["s3_access_key"],
            secret_key=keys["s3_secret_key"],
            specific_attributes=f"endpoint_url={banner[1]}&region=us-east-1",
        )
    )  # fmt: skip
    task = sdk.tasks.create_from_data(
        spec=models.TaskWriteRequest(name="from the bucket", labels=import_labels()),
        resource_type=ResourceType.SHARE,
        resources=[f"images/{path.name}" for path in import_images],
        data_params={"cloud_storage_id": storage.id, "image_quality": 80},
    )
    assert [f.name for f in task.get_meta().frames] == [
        f"images/{path.name}" for path in import_images
    ]
    _, response = sdk.api_client.tasks_api.create_annotations(
        task.id, format="COCO 1.0", location="cloud_storage", cloud_storage_id=storage.id,
        filename="labels/coco.json", _parse_response=False,
    )  # fmt: skip
    assert response.status == 202
    rq_id = json.loads(response.data)["rq_id"]
    for _ in range(240):
        status, _ = sdk.api_client.requests_api.retrieve(rq_id)
        if str(status.status.value) in ("finished", "failed"):
            break
        time.sleep(0.25)
    assert str(status.status.value) == "finished", status.message
    wanted = sorted(coco_expected(), key=in_order)
    assert narrowed_all(wanted, read_annotations(task)["shapes"]) == wanted
    assert bucket.get_object(Bucket="samples", Key="labels/coco.json")["ContentLength"] > 0


def test_cvat_cli_exports_a_dataset_into_a_folder(
    fleet: Launcher, task: Any, tmp_path: Path
) -> None:
    """`cvat-cli task export-dataset` into a folder names the file after the server's
    Content-Disposition, as CVAT's does."""
    out = tmp_path / "out"
    out.mkdir()
    exported = _cvat_cli(
        fleet, tmp_path, "task", "export-dataset", str(task.id), str(out),
        "--format", "YOLO 1.1", "--completion_verification_period", "0.2",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    [archive] = list(out.iterdir())
    assert archive.name.startswith(f"task_{task.id}_annotations_")
    assert archive.name.endswith("_yolo_1.1.zip")
    with zipfile.ZipFile(archive) as opened:
        assert "obj.names" in opened.namelist()


def test_cvat_cli_imports_annotations_into_a_task(
    fleet: Launcher, sdk: Any, import_images: list[Path], tmp_path: Path
) -> None:
    """`cvat-cli task import-dataset <id> <file> --format "COCO 1.0"`, as a process,
    replaces the task's annotations with the file's."""
    task = import_task(sdk, import_images, "import by cvat-cli")
    task.import_annotations("YOLO 1.1", write_yolo(tmp_path / "darknet.zip"))
    coco = write_coco(tmp_path / "instances_default.json")

    imported = _cvat_cli(
        fleet, tmp_path, "task", "import-dataset", str(task.id), str(coco), "--format", "COCO 1.0"
    )

    assert imported.returncode == 0, imported.stderr
    wanted = sorted(coco_expected(), key=in_order)
    assert narrowed_all(wanted, read_annotations(task)["shapes"]) == wanted


def test_task_backup_downloads_and_restores_with_the_sdk(
    sdk: Any, task: Any, labels: dict[str, Any], tmp_path: Path
) -> None:
    """`download_backup` writes CVAT's layout; `create_from_backup` makes the same task."""
    rectangle = labels["rectangle"]
    task.update_annotations(
        models.PatchedLabeledDataRequest(
            shapes=[models.LabeledShapeRequest(
                type="rectangle", frame=1, label_id=rectangle.id, points=[1, 2, 30, 40],
                attributes=[models.AttributeValRequest(spec_id=rectangle.attributes[0].id,
                                                       value="b")])],
        ),
        action=AnnotationUpdateAction.CREATE,
    )  # fmt: skip
    path = task.download_backup(tmp_path / "task.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta = json.loads(archive.read("task.json"))
        annotations = json.loads(archive.read("annotations.json"))
    assert {"task.json", "annotations.json", "data/manifest.jsonl"} <= set(names)
    assert meta["version"] == "1.0"
    assert len(meta["jobs"]) == len(annotations) == len(task.get_jobs())

    restored = sdk.tasks.create_from_backup(path, status_check_period=0.2)

    assert restored.id != task.id
    assert (restored.name, restored.size) == (task.name, task.size)

    def ranges(owner: Any) -> list[tuple[int, int]]:
        jobs = sorted(owner.get_jobs(), key=lambda job: job.id)
        return [(job.start_frame, job.stop_frame) for job in jobs]

    def shapes(owner: Any) -> list[Any]:
        return [(s.type.value, s.frame, s.points) for s in owner.get_annotations().shapes]

    assert ranges(restored) == ranges(task)
    assert [f.name for f in restored.get_meta().frames] == [f.name for f in task.get_meta().frames]
    assert shapes(restored) == shapes(task)


def test_project_backup_restores_with_the_sdk(
    sdk: Any, project: Any, task: Any, tmp_path: Path
) -> None:
    del task  # the project needs a task with media
    path = project.download_backup(tmp_path / "project.zip")
    restored = sdk.projects.create_from_backup(path, status_check_period=0.2)
    assert restored.name == project.name
    names = [label.name for label in restored.get_labels()]
    assert names == [label.name for label in project.get_labels()]
    # as CVAT, a backup holds the tasks with media
    with_media = [t for t in project.get_tasks() if t.size]
    assert sorted(t.name for t in restored.get_tasks()) == sorted(t.name for t in with_media)


def test_cvat_cli_backs_up_a_task_and_restores_it(
    fleet: Launcher, task: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    backed_up = _cvat_cli(fleet, tmp_path, "task", "backup", str(task.id), f"{folder}/",
                          "--completion_verification_period", "0.2")  # fmt: skip
    assert backed_up.returncode == 0, backed_up.stderr
    (archive,) = folder.iterdir()
    assert archive.name.startswith(f"task_{task.id}_backup_")
    restored = _cvat_cli(fleet, tmp_path, "task", "create-from-backup", str(archive),
                         "--completion_verification_period", "0.2")  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert int(restored.stdout.split()[-1]) != task.id


def write_coco_dataset(folder: Path) -> Path:
    """A COCO 1.0 dataset with its images, as CVAT exports a project's: subsets train (two
    images) and val (one), boxes of "car"."""

    def instances(names: list[str], boxes: list[tuple[int, list[int]]]) -> str:
        return json.dumps({
            "categories": [{"id": 1, "name": "car", "supercategory": ""}],
            "images": [{"id": i, "file_name": name, "width": 48, "height": 32}
                       for i, name in enumerate(names, start=1)],
            "annotations": [{"id": i, "image_id": image, "category_id": 1, "bbox": bbox,
                             "segmentation": [], "iscrowd": 0, "area": bbox[2] * bbox[3]}
                            for i, (image, bbox) in enumerate(boxes, start=1)],
        })  # fmt: skip

    train = instances(["a.png", "b.png"], [(1, [1, 2, 10, 5]), (2, [3, 3, 4, 4])])
    val = instances(["c.png"], [(1, [5, 6, 7, 8])])
    path = folder / "coco-dataset.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("annotations/instances_train.json", train)
        archive.writestr("annotations/instances_val.json", val)
        for seed, member in enumerate(("train/a.png", "train/b.png", "val/c.png")):
            image = folder / f"image-{seed}.png"
            Image.new("RGB", (48, 32), (seed * 40, 90, 160)).save(image)
            archive.write(image, f"images/{member}")
    return path


def test_project_import_dataset_makes_a_task_per_subset(
    sdk: Any, fleet: Launcher, tmp_path: Path
) -> None:
    """`Project.import_dataset` (and `cvat-cli project import-dataset`) of a COCO dataset
    with images: a task per subset with its images and boxes; a project without labels
    gets the dataset's."""
    dataset = write_coco_dataset(tmp_path)
    project = sdk.projects.create(models.ProjectWriteRequest(
        name="cvat-client e2e dataset", labels=[models.PatchedLabelRequest(name="car")]
    ))  # fmt: skip

    project.import_dataset("COCO 1.0", dataset, status_check_period=0.2)

    tasks = sorted(project.get_tasks(), key=lambda task: task.id)
    assert [(t.name, t.subset, t.size) for t in tasks] == [("train", "train", 2), ("val", "val", 1)]
    assert [frame.name for frame in tasks[0].get_meta().frames] == ["a.png", "b.png"]
    boxes = [
        sorted((s.frame, list(s.points)) for s in task.get_annotations().shapes) for task in tasks
    ]
    assert boxes == [[(0, [1.0, 2.0, 11.0, 7.0]), (1, [3.0, 3.0, 7.0, 7.0])],
                     [(0, [5.0, 6.0, 12.0, 14.0])]]  # fmt: skip

    unlabelled = sdk.projects.create(models.ProjectWriteRequest(name="cvat-client e2e by cli"))
    imported = _cvat_cli(fleet, tmp_path, "project", "import-dataset", str(unlabelled.id),
                         str(dataset), "--format", "COCO 1.0")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert [label.name for label in unlabelled.get_labels()] == ["car"]
    assert sorted(task.name for task in unlabelled.get_tasks()) == ["train", "val"]
