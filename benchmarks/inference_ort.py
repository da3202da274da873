"""Direct ONNX Runtime for `bench_inference`: the reference the Triton path is measured
against, in a process of its own.

Runs with the local Triton's interpreter (`.venv-triton/bin/python`: ONNX Runtime and
`onnx` are installed there, not in the workspace) and imports no `tessera` package. It
opens sessions exactly as the local Triton does (`serve.py`'s `load_spec` and
`open_session`: the same ONNX file, the same session options and threads), so the only
difference left between the two sides is the way to the model. Timing happens here,
around `session.run` alone; the frames are loaded into memory before the clock starts.

One JSON command a line on stdin, one JSON answer a line on stdout:

    {"op": "fp32_variant", "folder": DIR}       the shipped FP32 graph as model DIR
    {"op": "open", "name": N, "folder": DIR}    a session on the model in DIR
    {"op": "run", "name": N, "frames": NPY, "batch": 8, "start": 0, "count": 0 (all),
     "save": NPY or null}
                                                 -> {"seconds": s, "requests": n}
    {"op": "quit"}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TRITON_DIR = Path(__file__).resolve().parent.parent / "services" / "inference" / "triton"
# build_models.py: the pinned wheel's ONNX file, its SHA-256 checked; serve.py: sessions
# opened as the local Triton opens them.
sys.path.insert(0, str(TRITON_DIR))

from build_models import RECIPES  # type: ignore[import-not-found]  # noqa: E402
from serve import load_spec, open_session  # type: ignore[import-not-found]  # noqa: E402

FP32_CONFIG = """# PP-OCRv4's DBNet as it ships (FP32 NCHW in, FP32 map out), for benchmarks.
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch_size}
input [
  {{
    name: "images"
    data_type: TYPE_FP32
    dims: [ 3, -1, -1 ]
  }}
]
output [
  {{
    name: "probability"
    data_type: TYPE_FP32
    dims: [ 1, -1, -1 ]
  }}
]
dynamic_batching {{
  preferred_batch_size: [ {preferred} ]
  max_queue_delay_microseconds: {delay_us}
}}
"""


def fp32_variant(folder: Path, like: Path) -> dict[str, Any]:
    """The detector's ONNX file as the wheel ships it, with its tensors renamed (`x` ->
    `images`, `sigmoid_0.tmp_0` -> `probability`, by Identity nodes that ONNX Runtime
    removes), as model `folder.name`, batched like the model in `like`."""
    import onnx  # noqa: PLC0415  # only this command needs it
    from onnx import helper  # noqa: PLC0415

    (recipe,) = (r for r in RECIPES if r.name == "ppocr_v4_det")
    model = onnx.load_model_from_string(recipe.source.read())
    graph = model.graph
    (inner_input,) = graph.input
    (inner_output,) = graph.output
    graph.node.insert(0, helper.make_node("Identity", ["images"], [inner_input.name]))
    graph.node.append(helper.make_node("Identity", [inner_output.name], ["probability"]))
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(
            "images", onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"]
        )
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(
            "probability", onnx.TensorProto.FLOAT, ["batch", 1, "height", "width"]
        )
    )
    onnx.checker.check_model(model, full_check=True)
    spec = load_spec(like)
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "1" / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
    (folder / "config.pbtxt").write_text(
        FP32_CONFIG.format(
            name=folder.name,
            max_batch_size=spec.max_batch_size,
            preferred=", ".join(str(size) for size in spec.preferred_batch_sizes),
            delay_us=spec.max_queue_delay_us,
        )
    )
    return {"source": f"{recipe.source.package}=={recipe.source.version} {recipe.source.path}"}


class Worker:
    """The sessions and the frames loaded so far."""

    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}
        self.frames: dict[str, np.ndarray] = {}

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "fp32_variant":
            return fp32_variant(Path(command["folder"]), Path(command["like"]))
        if op == "open":
            spec = load_spec(Path(command["folder"]))
            session = open_session(spec, int(command.get("threads", 0)))
            self.sessions[command["name"]] = (spec, session)
            return {"providers": session.get_providers()}
        if op == "run":
            return self.run(command)
        raise ValueError(f"unknown op {op!r}")

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        """Every frame through the session in batches of `batch`, timed around `run`."""
        spec, session = self.sessions[command["name"]]
        path = command["frames"]
        if path not in self.frames:
            self.frames[path] = np.ascontiguousarray(np.load(path))
        frames = self.frames[path]
        (input_name,) = (t.name for t in spec.inputs)
        output_names = [t.name for t in spec.outputs]
        batch = int(command["batch"])
        first = int(command.get("start") or 0)
        end = first + int(command.get("count") or len(frames) - first)
        outputs = []
        started = time.perf_counter()
        for start in range(first, end, batch):
            feed = {input_name: frames[start : min(start + batch, end)]}
            outputs.append(session.run(output_names, feed)[0])
        seconds = time.perf_counter() - started
        if command.get("save"):
            np.save(command["save"], np.concatenate(outputs))
        return {"seconds": seconds, "requests": len(outputs), "frames": end - first}


def main() -> int:
    worker = Worker()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        try:
            answer = worker.handle(command)
        except Exception as exc:  # the benchmark raises it on its side
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
