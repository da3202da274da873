"""Serve the Triton model repository on this machine: a real Triton on the CPU.

Runs with the local Triton's own interpreter (`.venv-triton/bin/python`: `nvidia-pytriton`
pins numpy<2, the workspace needs numpy>=2.2), so it imports no `tessera` package.

The production Triton loads `services/inference/models/` (from S3) with its ONNX Runtime
backend. The Triton server inside the `nvidia-pytriton` wheel carries only the Python
backend, so it cannot load that repository as it is; this launcher reads the same
folder instead: for every `<model>/config.pbtxt` it opens the newest `<version>/model.onnx`
in ONNX Runtime and binds it to pytriton with the names, data types, shapes,
`max_batch_size` and dynamic batcher written in `config.pbtxt`, after checking that the
ONNX graph agrees with them. Clients see the same KServe v2 endpoints, model names,
tensors and batching as in production.

    .venv-triton/bin/python services/inference/triton/serve.py \\
        --http-port 8000 --grpc-port 8001 [--metrics-port 8002] [--model ppocr_v4_det]

It listens on 127.0.0.1 only, keeps its workspace in a temporary folder that it removes
on exit, and stops within a few seconds on SIGTERM or SIGINT (`--exit-timeout` bounds the
wait for requests in flight).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

REPOSITORY = Path(__file__).resolve().parent.parent / "models"
LOGGER = logging.getLogger("tessera-triton")

# Triton's TYPE_* names -> NumPy; ONNX Runtime's tensor type names -> NumPy.
TRITON_DTYPES: dict[int, type[np.generic]] = {
    mc.TYPE_BOOL: np.bool_,
    mc.TYPE_UINT8: np.uint8,
    mc.TYPE_UINT16: np.uint16,
    mc.TYPE_UINT32: np.uint32,
    mc.TYPE_UINT64: np.uint64,
    mc.TYPE_INT8: np.int8,
    mc.TYPE_INT16: np.int16,
    mc.TYPE_INT32: np.int32,
    mc.TYPE_INT64: np.int64,
    mc.TYPE_FP16: np.float16,
    mc.TYPE_FP32: np.float32,
    mc.TYPE_FP64: np.float64,
}
ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(bool)": np.bool_,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}
ONNX_PLATFORMS = {"onnxruntime_onnx"}
ONNX_BACKENDS = {"onnxruntime"}
SUN_PATH_MAX = 108


class RepositoryError(Exception):
    """The model repository cannot be served as it is."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as `config.pbtxt` declares it (dims without the batch axis)."""

    name: str
    dtype: type[np.generic]
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the repository: its configuration and the ONNX file to serve."""

    name: str
    version: int
    onnx_path: Path
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_queue_delay_us: int
    preferred_batch_sizes: tuple[int, ...]
    dynamic_batching: bool


def read_config(path: Path) -> mc.ModelConfig:
    """Parse a `config.pbtxt` with Triton's own protobuf schema (unknown fields fail)."""
    config = mc.ModelConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as exc:
        raise RepositoryError(f"{path}: {exc}") from exc
    return config


def _tensors(path: Path, entries: Sequence[Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for entry in entries:
        if entry.data_type not in TRITON_DTYPES:
            raise RepositoryError(
                f"{path}: {entry.name}: {mc.DataType.Name(entry.data_type)} is not supported here"
            )
        if entry.reshape.shape:
            raise RepositoryError(f"{path}: {entry.name}: `reshape` is not supported here")
        specs.append(TensorSpec(entry.name, TRITON_DTYPES[entry.data_type], tuple(entry.dims)))
    return tuple(specs)


def load_spec(model_dir: Path) -> ModelSpec:
    """The spec of the model in `model_dir`, from its `config.pbtxt` and newest version."""
    config_path = model_dir / "config.pbtxt"
    config = read_config(config_path)
    name = config.name or model_dir.name
    if name != model_dir.name:
        raise RepositoryError(f"{config_path}: name {name!r} differs from its folder")
    if config.platform not in ONNX_PLATFORMS and config.backend not in ONNX_BACKENDS:
        raise RepositoryError(
            f"{config_path}: only ONNX Runtime models are served locally "
            f"(platform {config.platform!r}, backend {config.backend!r})"
        )
    versions = sorted(
        int(child.name)
        for child in model_dir.iterdir()
        if child.is_dir() and child.name.isdigit() and (child / "model.onnx").is_file()
    )
    if not versions:
        raise RepositoryError(
            f"{model_dir}: no <version>/model.onnx; `make install` builds them "
            "(services/inference/triton/build_models.py)"
        )
    version = versions[-1]
    batching = config.dynamic_batching
    return ModelSpec(
        name=name,
        version=version,
        onnx_path=model_dir / str(version) / (config.default_model_filename or "model.onnx"),
        max_batch_size=config.max_batch_size,
        inputs=_tensors(config_path, config.input),
        outputs=_tensors(config_path, config.output),
        max_queue_delay_us=batching.max_queue_delay_microseconds,
        preferred_batch_sizes=tuple(batching.preferred_batch_size),
        dynamic_batching=config.HasField("dynamic_batching"),
    )


def discover(repository: Path, only: Sequence[str] = ()) -> list[ModelSpec]:
    """Every model folder of the repository (those named in `only`, when given)."""
    folders = sorted(p for p in repository.iterdir() if (p / "config.pbtxt").is_file())
    names = {p.name for p in folders}
    missing = [name for name in only if name not in names]
    if missing:
        raise RepositoryError(f"{repository}: no model {', '.join(missing)}")
    return [load_spec(p) for p in folders if not only or p.name in only]


def check_session(spec: ModelSpec, session: ort.InferenceSession) -> None:
    """Fail unless the ONNX graph has exactly the tensors that `config.pbtxt` declares."""
    batch = 1 if spec.max_batch_size > 0 else 0
    for kind, declared, actual in (
        ("input", spec.inputs, session.get_inputs()),
        ("output", spec.outputs, session.get_outputs()),
    ):
        by_name = {arg.name: arg for arg in actual}
        if set(by_name) != {t.name for t in declared}:
            raise RepositoryError(
                f"{spec.name}: config.pbtxt {kind}s {sorted(t.name for t in declared)}, "
                f"the ONNX graph has {sorted(by_name)}"
            )
        for tensor in declared:
            arg = by_name[tensor.name]
            if ORT_DTYPES.get(arg.type) is not tensor.dtype:
                raise RepositoryError(
                    f"{spec.name}: {tensor.name} is {arg.type} in the graph, "
                    f"{np.dtype(tensor.dtype).name} in config.pbtxt"
                )
            shape = list(arg.shape)[batch:]
            if len(arg.shape) != len(tensor.dims) + batch or any(
                dim != -1 and isinstance(got, int) and got != dim
                for dim, got in zip(tensor.dims, shape, strict=True)
            ):
                raise RepositoryError(
                    f"{spec.name}: {tensor.name} has shape {arg.shape} in the graph, "
                    f"dims {list(tensor.dims)} (max_batch_size {spec.max_batch_size}) "
                    "in config.pbtxt"
                )


def make_infer(
    spec: ModelSpec, session: ort.InferenceSession
) -> Callable[[list[Mapping[str, np.ndarray]]], list[dict[str, np.ndarray]]]:
    """pytriton's inference callable: Triton's batch of requests through ONNX Runtime.

    Triton's dynamic batcher hands over several requests at once; requests whose inputs
    have the same shapes run as one ONNX Runtime call (images of one size batch together).
    """
    output_names = [t.name for t in spec.outputs]
    input_names = [t.name for t in spec.inputs]

    def infer(requests: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        results: list[dict[str, np.ndarray]] = [{} for _ in requests]
        groups: dict[tuple[tuple[int, ...], ...], list[int]] = {}
        for index, request in enumerate(requests):
            key = tuple(tuple(request[name].shape) for name in input_names)
            groups.setdefault(key, []).append(index)
        for indices in groups.values():
            feed = {
                name: np.concatenate([requests[i][name] for i in indices])
                if len(indices) > 1
                else requests[indices[0]][name]
                for name in input_names
            }
            outputs = session.run(output_names, feed)
            sizes = [len(requests[i][input_names[0]]) for i in indices]
            for name, value in zip(output_names, outputs, strict=True):
                if not spec.max_batch_size:
                    results[indices[0]][name] = value
                    continue
                start = 0
                for i, size in zip(indices, sizes, strict=True):
                    results[i][name] = value[start : start + size]
                    start += size
        return results

    return infer


def open_session(spec: ModelSpec, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime session for the model, checked against its configuration."""
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    session = ort.InferenceSession(str(spec.onnx_path), sess_options=options, providers=providers)
    check_session(spec, session)
    return session


def check_socket_paths(workspace: Path, specs: Sequence[ModelSpec]) -> None:
    """pytriton puts Unix sockets named after the models in its workspace; their paths
    must fit in `sun_path` (108 bytes), so the workspace must not be deep."""
    longest = max(len(f"{spec.name}_0_0-server.sock") for spec in specs)
    if len(str(workspace)) + 1 + longest >= SUN_PATH_MAX:
        raise RepositoryError(
            f"the workspace {workspace} is too deep for pytriton's Unix sockets "
            f"({SUN_PATH_MAX} bytes at most); give a shorter --workspace or TMPDIR"
        )


def python_libdir() -> str:
    """The folder of this interpreter's `libpython`, which the Python backend stub links."""
    return str(sysconfig.get_config_var("LIBDIR"))


@dataclass
class Options:
    """Command-line options."""

    repository: Path
    http_port: int
    grpc_port: int
    metrics_port: int
    models: list[str]
    threads: int
    workspace: Path | None
    exit_timeout_s: int
    log_verbose: int


def parse_args(argv: Sequence[str] | None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, default=0, help="0: no metrics endpoint")
    parser.add_argument("--model", dest="models", action="append", default=[])
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all)")
    parser.add_argument(
        "--workspace",
        type=Path,
        help="a short folder for the workspace, which holds Unix sockets (default: TMPDIR)",
    )
    parser.add_argument("--exit-timeout", dest="exit_timeout_s", type=int, default=1)
    parser.add_argument("--log-verbose", type=int, default=0)
    return Options(**vars(parser.parse_args(argv)))


class Stopper:
    """Turns SIGTERM and SIGINT into one `Triton.stop()` call, from a thread."""

    def __init__(self) -> None:
        self.triton: Any = None
        self.requested = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        LOGGER.info("signal %d: stopping", signum)
        self.requested.set()
        if self.triton is not None:
            threading.Thread(target=self.triton.stop, daemon=True).start()


def serve(options: Options) -> int:
    """Start Triton with every model and block until it stops."""
    specs = discover(options.repository, options.models)
    if not specs:
        raise RepositoryError(f"{options.repository}: no model to serve")
    sessions = {spec.name: open_session(spec, options.threads) for spec in specs}
    # Imported only now: pytriton takes seconds to import, and a repository that cannot
    # be served should say so at once.
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: PLC0415
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig  # noqa: PLC0415

    stopper = Stopper()
    signal.signal(signal.SIGTERM, stopper)
    signal.signal(signal.SIGINT, stopper)
    with tempfile.TemporaryDirectory(prefix="tsr-triton-", dir=options.workspace) as workspace_dir:
        workspace = Path(workspace_dir) / "w"
        check_socket_paths(workspace, specs)
        # The Python backend stub inherits this environment (pytriton copies os.environ).
        libdir = python_libdir()
        ld_path = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in ld_path.split(":"):
            os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{ld_path}" if ld_path else libdir

        config = TritonConfig(
            http_address="127.0.0.1",
            http_port=options.http_port,
            grpc_address="127.0.0.1",
            grpc_port=options.grpc_port,
            allow_metrics=options.metrics_port > 0,
            metrics_address="127.0.0.1" if options.metrics_port > 0 else None,
            metrics_port=options.metrics_port or None,
            allow_gpu_metrics=False,
            exit_timeout_secs=options.exit_timeout_s,
            strict_readiness=True,
            log_verbose=options.log_verbose,
        )
        # Loopback only, and the production Triton restricts no endpoint either (the
        # inference service reads statistics and uses the repository API there).
        security = TritonSecurityConfig(restricted_endpoints=[])
        triton = Triton(config=config, workspace=workspace, security_config=security)
        stopper.triton = triton
        for spec in specs:
            triton.bind(
                model_name=spec.name,
                model_version=spec.version,
                infer_func=make_infer(spec, sessions[spec.name]),
                inputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.dims) for t in spec.inputs],
                outputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.dims) for t in spec.outputs],
                config=ModelConfig(
                    batching=spec.max_batch_size > 0,
                    max_batch_size=max(spec.max_batch_size, 1),
                    batcher=DynamicBatcher(
                        max_queue_delay_microseconds=spec.max_queue_delay_us,
                        preferred_batch_size=list(spec.preferred_batch_sizes) or None,
                    ),
                ),
                strict=True,
            )
            if spec.max_batch_size and not spec.dynamic_batching:
                LOGGER.warning(
                    "%s: config.pbtxt has no dynamic_batching; pytriton batches anyway", spec.name
                )
            LOGGER.info(
                "model %s version %d from %s (max_batch_size %d)",
                spec.name,
                spec.version,
                spec.onnx_path,
                spec.max_batch_size,
            )
        if stopper.requested.is_set():
            return 0
        try:
            triton.serve(monitoring_period_s=0.5)
        finally:
            triton.stop()
            remove_shared_memory(os.getpid())
    return 0


def remove_shared_memory(pid: int) -> None:
    """Remove the Python backend's shared-memory region of the Triton that `pid` started.

    pytriton names it `pytrtion<pid>-...`; with a short exit timeout Triton leaves before
    the backend stub frees it, and each would keep 4 MiB of /dev/shm.
    """
    for region in Path("/dev/shm").glob(f"pytrtion{pid}-*"):
        region.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = parse_args(argv)
    try:
        return serve(options)
    except RepositoryError as exc:
        print(f"serve.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
