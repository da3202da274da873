"""cvat-sdk's high-level `Client` against the whole fleet, started as `make run` starts it.

One fleet for the module: `tessera-run` in a subprocess (`tessera.devstack.fleet`),
driven through the gateway's port by `cvat_sdk.core.client.Client` with
`check_server_version=True` and `Config(allow_unsupported_server=False)`, logged in
with the admin's personal access token from the launcher's state directory. The SDK
is used as it is, with CVAT's paths (trailing slashes included): a project with a
label of every type, a task made from local PNG and JPEG files with `segment_size` and
`overlap`, list filters, jobs, and annotations of every shape type, a track and tags
written with PUT and PATCH and read back.

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
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from cvat_sdk.core.proxies.annotations import (  # type: ignore[import-untyped]
    AnnotationUpdateAction,
)
from cvat_sdk.core.proxies.tasks import ResourceType  # type: ignore[import-untyped]
from PIL import Image
from pycocotools.coco import COCO
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.response import BaseHTTPResponse

from tessera.devstack.fleet import Launcher, fleet_folder
from tessera.devstack.servers import free_port
from tessera.geometry import polygons_to_mask

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
    with fleet_folder("tessera-cvat-client-") as base:
        launcher = Launcher(base / "state", free_port())
        try:
            launcher.start()
            yield launcher
        finally:
            launcher.kill()


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
