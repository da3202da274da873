"""The README's worked example, run as it is written, against the fleet as `make run`
starts it: the shell block between `<!-- worked-example -->` markers runs under bash
after `source .tessera/env.sh` (the launcher's), in a folder of its own.

Then what it made is checked: the COCO file's text boxes against the sample images'
truth (the words a person sees), the scores of the model's boxes, the logo added by
hand, the YOLO archive, and the rendered frame's outlines where the boxes are. The
`shapes` commands that the README only mentions are checked here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from tessera.client import Client, Task
from tessera.devstack.fleet import Launcher, started_fleet

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "bin"


def worked_example() -> str:
    """The README's worked-example shell block."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- worked-example -->\n```sh\n(.*?)```\n<!-- /worked-example -->", readme, re.S
    )
    assert found, "README.md has no worked-example block"
    return found.group(1)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture(scope="module")
def fleet() -> Iterator[Launcher]:
    """`tessera-run` for this module, as `make run` starts it."""
    with started_fleet("tessera-worked-example-") as launcher:
        yield launcher


@pytest.fixture(scope="module")
def example(fleet: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the README's block ran in (from a copy of the repository's layout:
    `examples/` and `.venv` linked), with what it printed in `output.txt`."""
    folder = tmp_path_factory.mktemp("worked-example")
    (folder / "examples").symlink_to(ROOT / "examples")
    (folder / ".venv").symlink_to(Path(sys.prefix))
    (folder / ".tessera").symlink_to(fleet.state_dir)
    script = "set -euo pipefail\nsource .tessera/env.sh\n" + worked_example()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("TESSERA_", "AWS_"))
    }
    env |= {"PATH": f"{BIN}:{env['PATH']}", "HOME": str(folder), "COLUMNS": "120"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    (folder / "output.txt").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"the worked example failed:\n{done.stdout}\n{done.stderr}"
    return folder


@pytest.fixture(scope="module")
def truth(example: Path) -> dict[str, list[dict[str, Any]]]:
    """Where every word line and logo of the sample images is."""
    loaded: dict[str, list[dict[str, Any]]] = json.loads(
        (example / "signs" / "truth.json").read_text()
    )
    return loaded


@pytest.fixture(scope="module")
def coco(example: Path) -> COCO:
    """The COCO export, as pycocotools reads it."""
    return COCO(str(example / "signs-coco" / "annotations" / "instances_default.json"))


def _by_image(coco: COCO, category: str) -> dict[str, list[dict[str, Any]]]:
    (category_id,) = coco.getCatIds(catNms=[category])
    found: dict[str, list[dict[str, Any]]] = {}
    for image in coco.loadImgs(coco.getImgIds()):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], catIds=[category_id]))
        found[Path(image["file_name"]).name] = annotations
    return found


def _xyxy(annotation: dict[str, Any]) -> list[float]:
    x, y, width, height = annotation["bbox"]
    return [x, y, x + width, y + height]


def test_the_detector_found_the_words_a_person_sees(
    coco: COCO, truth: dict[str, list[dict[str, Any]]]
) -> None:
    found = _by_image(coco, "text")
    assert set(found) == set(truth)
    words = matched = 0
    for name, objects in truth.items():
        boxes = [_xyxy(annotation) for annotation in found[name]]
        for line in (obj for obj in objects if obj["label"] == "text"):
            words += 1
            matched += any(iou(line["box"], box) >= 0.5 for box in boxes)
        # Nothing the detector kept is far from every word line.
        lines = [obj["box"] for obj in objects if obj["label"] == "text"]
        for box in boxes:
            assert max(iou(box, line) for line in lines) >= 0.3, (name, box)
    assert words >= 24
    assert matched >= 0.9 * words, f"{matched} of {words} word lines found"


def test_the_models_boxes_keep_their_scores_and_the_doubtful_ones_are_gone(coco: COCO) -> None:
    scores = [
        annotation["score"]
        for annotations in _by_image(coco, "text").values()
        for annotation in annotations
    ]
    assert scores
    assert all(0.6 <= score <= 1.0 for score in scores)


def test_the_logo_added_by_hand_is_in_the_export(coco: COCO) -> None:
    logos = _by_image(coco, "logo")
    assert [len(annotations) for _, annotations in sorted(logos.items())][:2] == [1, 0]
    assert _xyxy(logos["sign_00.png"][0]) == pytest.approx([24, 24, 104, 104])


def test_the_yolo_archive_has_the_same_boxes(example: Path, coco: COCO) -> None:
    with zipfile.ZipFile(example / "signs-yolo.zip") as archive:
        names = archive.read("obj.names").decode().split()
        labels = {
            Path(name).stem: archive.read(name).decode().splitlines()
            for name in archive.namelist()
            if name.startswith("obj_train_data/") and name.endswith(".txt")
        }
    assert names == ["text", "logo"]
    by_stem = {
        Path(image["file_name"]).stem: len(coco.getAnnIds(imgIds=[image["id"]]))
        for image in coco.loadImgs(coco.getImgIds())
    }
    assert {stem: len(lines) for stem, lines in labels.items()} == by_stem
    logo_line = next(line for line in labels["sign_00"] if line.startswith("1 "))
    centre_x, centre_y, width, height = map(float, logo_line.split()[1:])
    assert (centre_x, centre_y, width, height) == pytest.approx(
        (64 / 640, 64 / 400, 80 / 640, 80 / 400), abs=1e-4
    )


def test_the_rendered_frame_outlines_the_boxes_where_they_are(example: Path, coco: COCO) -> None:
    drawn = np.asarray(Image.open(example / "frame0.png").convert("RGB")).astype(int)
    original = np.asarray(Image.open(example / "signs" / "sign_00.png").convert("RGB")).astype(int)
    assert drawn.shape == original.shape == (400, 640, 3)
    changed = np.abs(drawn - original).sum(axis=2) > 60
    (image,) = [
        image
        for image in coco.loadImgs(coco.getImgIds())
        if image["file_name"].endswith("sign_00.png")
    ]
    boxes = [
        _xyxy(annotation) for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    ]
    assert len(boxes) >= 2
    for x1, y1, x2, y2 in boxes:
        # Along the box's left and right edges, the outline's colour replaced the sign's.
        rows = slice(int(y1) + 2, int(y2) - 2)
        edge = np.concatenate([changed[rows, int(x1)], changed[rows, min(int(x2), 639)]])
        assert edge.mean() > 0.5, (x1, y1, x2, y2)
    # Far from every box (the sign's empty bottom band), nothing was drawn.
    assert not changed[330:390, 20:620].any()


def test_the_output_showed_the_steps(example: Path) -> None:
    output = (example / "output.txt").read_text()
    assert "wrote 12 images" in output
    assert "ppocr_v4_det" in output
    assert "12 images;" in output
    added = re.search(r"Added shape (\d+) \(logo, frame 0\)", output)
    assert added, output
    assert f"\n{added.group(1)}\n" in output  # its id on stdout, for scripts


# --- the shapes commands ----------------------------------------------------------------


def readme_task(client: Client) -> Task:
    """The task the README's block made (the first named signs)."""
    return min(
        (task for task in client.list_tasks(search="signs") if task.name == "signs"),
        key=lambda task: task.id,
    )


def tessera(fleet: Launcher, *args: str) -> subprocess.CompletedProcess[str]:
    """The `tessera` command with the fleet's URL and token."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")}
    env |= {"TESSERA_URL": fleet.url, "TESSERA_TOKEN": fleet.token, "COLUMNS": "150"}
    return subprocess.run(
        [str(BIN / "tessera"), *args], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_shapes_set_corrects_a_models_shape_and_it_becomes_semi_auto(
    fleet: Launcher, example: Path
) -> None:
    with Client(fleet.url, fleet.token) as client:
        task = readme_task(client)
        first = next(iter(client.list_shapes(task.id, source="auto")))
        labels = {label.name: label.id for label in client.list_labels(task_id=task.id)}
        done = tessera(fleet, "shapes", "set", str(task.id), str(first.id), "--label", "logo",
                       "--box", "10,20,110,60")  # fmt: skip
        assert done.returncode == 0, done.stderr
        (changed,) = [shape for shape in client.list_shapes(task.id) if shape.id == first.id]
        assert changed.label_id == labels["logo"]
        assert changed.points == [10, 20, 110, 60]
        assert changed.source == "semi-auto"
        assert changed.score == pytest.approx(first.score)

        listed = tessera(fleet, "shapes", "list", str(task.id), "--source", "semi-auto",
                         "--output", "json")  # fmt: skip
        assert [shape["id"] for shape in json.loads(listed.stdout)] == [first.id]

        deleted = tessera(fleet, "shapes", "delete", str(task.id), str(first.id))
        assert deleted.returncode == 0, deleted.stderr
        assert "Deleted 1 shape" in deleted.stderr
        assert all(shape.id != first.id for shape in client.list_shapes(task.id))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("add", "{task}", "--frame", "0", "--label", "tree", "--box", "1,1,5,5"),
            "no label 'tree'",
        ),
        (("add", "{task}", "--frame", "0", "--label", "logo", "--box", "5,5,1,1"), "x1 < x2"),
        (("delete", "{task}"), "select them with --source"),
        (("delete", "{task}", "999999"), "no shape 999999"),
        (("add", "{task}", "--frame", "9999", "--label", "logo", "--box", "1,1,5,5"), "frame"),
    ],
)
def test_shapes_errors_are_clear_and_exit_non_zero(
    fleet: Launcher, example: Path, args: tuple[str, ...], message: str
) -> None:
    with Client(fleet.url, fleet.token) as client:
        task = readme_task(client)
    done = tessera(fleet, "shapes", *(arg.format(task=task.id) for arg in args))
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_getting_started_python_example_runs(
    fleet: Launcher, example: Path, tmp_path: Path
) -> None:
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", guide, re.S)
        if "Client.from_config" in block
    ]
    shutil.copytree(example / "signs", tmp_path / "signs")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")}
    env |= {"TESSERA_URL": fleet.url, "TESSERA_TOKEN": fleet.token, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "signs-coco.zip") as archive:
        document = json.loads(archive.read("annotations/instances_default.json"))
    assert len(document["images"]) == 12
    assert len(document["annotations"]) >= 24
    assert (tmp_path / "frame0.png").read_bytes().startswith(b"\x89PNG")
