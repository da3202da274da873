"""The Triton model repository: configurations the production Triton can load, ONNX files
built deterministically from pinned wheels, and a local launcher that refuses a
configuration its model does not match."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tessera.devstack.servers import free_port, source_root

ROOT = source_root()
REPOSITORY = ROOT / "services" / "inference" / "models"
TRITON_DIR = ROOT / "services" / "inference" / "triton"
TRITON_PYTHON = ROOT / ".venv-triton" / "bin" / "python"
CONFIGS = sorted(REPOSITORY.glob("*/config.pbtxt"))


def triton_python() -> str:
    if not TRITON_PYTHON.exists():
        pytest.fail(f"{TRITON_PYTHON} is missing: run `make install`")
    return str(TRITON_PYTHON)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_configuration_is_one_the_onnx_runtime_backend_serves(path: Path) -> None:
    config = text_format.Parse(path.read_text(), mc.ModelConfig())
    assert config.name == path.parent.name
    assert config.platform == "onnxruntime_onnx" or config.backend == "onnxruntime"
    assert config.max_batch_size > 0
    assert config.HasField("dynamic_batching")
    assert not config.instance_group, "leave the device to Triton (GPU in production, CPU here)"
    images = [t for t in config.input if len(t.dims) == 3 and t.dims[-1] == 3]
    assert images, "an image input [height, width, 3]"
    assert all(t.data_type == mc.TYPE_UINT8 for t in images), "images travel as uint8"
    assert (path.parent / "1" / "model.onnx").is_file(), "`make install` builds the model"


def test_models_are_built_deterministically(tmp_path: Path) -> None:
    for config in CONFIGS:
        (tmp_path / config.parent.name).mkdir()
        shutil.copy(config, tmp_path / config.parent.name / "config.pbtxt")
    build = [triton_python(), str(TRITON_DIR / "build_models.py")]
    subprocess.run([*build, "--repository", str(tmp_path)], check=True, capture_output=True)
    for config in CONFIGS:
        built = (tmp_path / config.parent.name / "1" / "model.onnx").read_bytes()
        assert built == (config.parent / "1" / "model.onnx").read_bytes()
    checked = subprocess.run([*build, "--check"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def _serve(repository: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            triton_python(),
            str(TRITON_DIR / "serve.py"),
            "--repository",
            str(repository),
            "--http-port",
            str(free_port()),
            "--grpc-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_launcher_refuses_a_configuration_that_the_model_does_not_match(tmp_path: Path) -> None:
    source = REPOSITORY / "ppocr_v4_det"
    model = tmp_path / "ppocr_v4_det"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.onnx").symlink_to(source / "1" / "model.onnx")
    config = (source / "config.pbtxt").read_text()

    (model / "config.pbtxt").write_text(config.replace("TYPE_UINT8", "TYPE_FP32", 1))
    refused = _serve(tmp_path)
    assert refused.returncode == 2
    assert "images is tensor(uint8) in the graph, float32 in config.pbtxt" in refused.stderr

    (model / "config.pbtxt").write_text(config.replace("dims: [ -1, -1, 3 ]", "dims: [ -1, 3 ]"))
    refused = _serve(tmp_path)
    assert refused.returncode == 2
    assert "images has shape" in refused.stderr

    (model / "config.pbtxt").write_text(config.replace("max_batch_size", "max_batch_sise"))
    refused = _serve(tmp_path)
    assert refused.returncode == 2
    assert "max_batch_sise" in refused.stderr

    (model / "config.pbtxt").write_text(config)
    (model / "1" / "model.onnx").unlink()
    refused = _serve(tmp_path)
    assert refused.returncode == 2
    assert "make install" in refused.stderr
