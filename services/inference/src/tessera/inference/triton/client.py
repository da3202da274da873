"""An async client for Triton Inference Server (KServe v2), over gRPC or HTTP.

    async with TritonClient("127.0.0.1:8001") as triton:
        model = await triton.model("ppocr_v4_det")          # ready, or ModelNotReady
        out = await triton.infer("ppocr_v4_det", {"images": frames})   # uint8 [N, H, W, 3]
        out["probability"]                                   # uint8 [N, H, W]

`url` is what `TESSERA_TRITON_URL` holds: `host:port` or `grpc://host:port` for gRPC (the
chart's `<release>-tessera-triton:8001`), `http://host:port` or `https://...` for HTTP.

- A model's readiness and configuration are checked before its first use and kept; an
  answer saying the model went away drops them, and the error says which model and why.
- Tensors go as they are: images as uint8 (normalisation is the model's job, see
  `services/inference/models/`), a quarter of the bytes of FP32.
- Every call has a timeout (`timeout_s`); transient failures (connection refused or
  reset, gRPC UNAVAILABLE or RESOURCE_EXHAUSTED, HTTP 502/503/504) are retried
  `retries` times with exponential backoff and jitter. A timeout is not retried: the
  server may still be working on it.
- `stats` counts requests, items, retries and failures (for tests); `on_request`, when
  given, hears of every inference request as it ends (model, batch size, seconds and
  `"ok"` or the error's class name), for metrics.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http.aio as http_aio
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from tessera.inference.triton.errors import (
    InferenceFailed,
    ModelNotReady,
    TritonError,
    TritonTimeout,
    TritonUnavailable,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Hears of each inference request as it ends: (model, batch size, seconds, outcome), the
# outcome "ok" or the class name of the error it raised.
RequestObserver = Callable[[str, int, float, str], None]

TRANSIENT_GRPC = {"StatusCode.UNAVAILABLE", "StatusCode.RESOURCE_EXHAUSTED"}
TRANSIENT_HTTP = {"502", "503", "504"}
# How Triton words "this model cannot take requests" (unknown, unloaded, loading).
GONE_GRPC = {"StatusCode.NOT_FOUND"}
GONE_HTTP = {"404"}
MODEL_GONE_MARKERS = ("unknown model", "is not ready", "has no available versions")
MAX_MESSAGE = 500


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model: KServe data type (`UINT8`) and dims without batch."""

    name: str
    datatype: str
    dims: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype of the tensor."""
        return np.dtype(_NUMPY_DTYPES[self.datatype])


_NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


@dataclass(frozen=True)
class ModelInfo:
    """What the client needs to know about a ready model, from Triton's configuration."""

    name: str
    version: str
    max_batch_size: int
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]

    @property
    def batches(self) -> bool:
        """True when the first axis of every tensor is the batch (max_batch_size > 0)."""
        return self.max_batch_size > 0


@dataclass(frozen=True)
class ModelStatistics:
    """Triton's counters for a model: requests taken, and executions (batches) run."""

    inference_count: int
    execution_count: int
    success_count: int
    failure_count: int


@dataclass
class ClientStats:
    """What this client has done since it was made."""

    requests: int = 0
    items: int = 0
    retries: int = 0
    failures: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


class _Transport(ABC):
    """The calls the client makes, over one protocol."""

    def __init__(self, address: str) -> None:
        self.address = address

    @abstractmethod
    async def server_ready(self, timeout_s: float) -> bool:
        """Triton's own readiness."""

    @abstractmethod
    async def model_ready(self, name: str, version: str, timeout_s: float) -> bool:
        """Whether a model (version) can take requests."""

    @abstractmethod
    async def model_metadata(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        """The model's metadata (raises for an unknown model, saying why)."""

    @abstractmethod
    async def model_config(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        """The model's configuration as JSON (`config.pbtxt` field names)."""

    @abstractmethod
    async def infer(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float,
    ) -> dict[str, np.ndarray]:
        """One inference request."""

    @abstractmethod
    async def statistics(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        """Triton's statistics of a model (`model_stats[0]`)."""

    @abstractmethod
    def is_transient(self, exc: BaseException) -> bool:
        """Whether a failure may pass if the same call is made again."""

    @abstractmethod
    def is_model_gone(self, exc: InferenceServerException) -> bool:
        """Whether Triton says the model (version) is unknown or not loaded."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class _GrpcTransport(_Transport):
    def __init__(self, address: str, *, ssl: bool = False) -> None:
        super().__init__(address)
        self.client = grpc_aio.InferenceServerClient(address, ssl=ssl)

    async def server_ready(self, timeout_s: float) -> bool:
        return bool(await self.client.is_server_ready(client_timeout=timeout_s))

    async def model_ready(self, name: str, version: str, timeout_s: float) -> bool:
        return bool(await self.client.is_model_ready(name, version, client_timeout=timeout_s))

    async def model_metadata(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.get_model_metadata(
            name, version, as_json=True, client_timeout=timeout_s
        )
        return result

    async def model_config(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result = await self.client.get_model_config(
            name, version, as_json=True, client_timeout=timeout_s
        )
        config: dict[str, Any] = result["config"]
        return config

    async def infer(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float,
    ) -> dict[str, np.ndarray]:
        tensors = []
        for input_name, array in inputs.items():
            tensor = grpc_aio.InferInput(
                input_name, list(array.shape), np_to_triton_dtype(array.dtype)
            )
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        result = await self.client.infer(
            name,
            tensors,
            model_version=version,
            outputs=[grpc_aio.InferRequestedOutput(o) for o in outputs],
            client_timeout=timeout_s,
        )
        return {o: result.as_numpy(o) for o in outputs}

    async def statistics(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result = await self.client.get_inference_statistics(
            name, version, as_json=True, client_timeout=timeout_s
        )
        stats: dict[str, Any] = result["model_stats"][0]
        return stats

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, InferenceServerException) and exc.status() in TRANSIENT_GRPC

    def is_model_gone(self, exc: InferenceServerException) -> bool:
        return exc.status() in GONE_GRPC

    async def close(self) -> None:
        await self.client.close()


class _HttpTransport(_Transport):
    """KServe v2 over HTTP. The client's own timeout is off: `asyncio.timeout` applies."""

    def __init__(self, address: str, *, ssl: bool = False) -> None:
        super().__init__(address)
        self.client = http_aio.InferenceServerClient(address, conn_timeout=None, ssl=ssl)

    async def server_ready(self, timeout_s: float) -> bool:
        return bool(await self.client.is_server_ready())

    async def model_ready(self, name: str, version: str, timeout_s: float) -> bool:
        return bool(await self.client.is_model_ready(name, version))

    async def model_metadata(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.get_model_metadata(name, version)
        return result

    async def model_config(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.get_model_config(name, version)
        return result

    async def infer(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float,
    ) -> dict[str, np.ndarray]:
        tensors = []
        for input_name, array in inputs.items():
            tensor = http_aio.InferInput(
                input_name, list(array.shape), np_to_triton_dtype(array.dtype)
            )
            tensor.set_data_from_numpy(array, binary_data=True)
            tensors.append(tensor)
        result = await self.client.infer(
            name,
            tensors,
            model_version=version,
            outputs=[http_aio.InferRequestedOutput(o, binary_data=True) for o in outputs],
        )
        return {o: result.as_numpy(o) for o in outputs}

    async def statistics(self, name: str, version: str, timeout_s: float) -> dict[str, Any]:
        result = await self.client.get_inference_statistics(name, version)
        stats: dict[str, Any] = result["model_stats"][0]
        return stats

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, aiohttp.ClientConnectionError):
            return True
        return isinstance(exc, InferenceServerException) and str(exc.status()) in TRANSIENT_HTTP

    def is_model_gone(self, exc: InferenceServerException) -> bool:
        return str(exc.status()) in GONE_HTTP

    async def close(self) -> None:
        await self.client.close()


def parse_url(url: str) -> tuple[str, str, bool]:
    """`(protocol, host:port, tls)` of a `TESSERA_TRITON_URL` value."""
    if "://" not in url:
        return "grpc", url, False
    parts = urlsplit(url)
    if not parts.netloc or parts.path.strip("/"):
        raise ValueError(f"Triton URL {url!r}: expected scheme://host:port")
    if parts.scheme not in ("grpc", "grpcs", "http", "https"):
        raise ValueError(f"Triton URL {url!r}: the scheme must be grpc, grpcs, http or https")
    return parts.scheme.removesuffix("s"), parts.netloc, parts.scheme.endswith("s")


def _transport(url: str) -> _Transport:
    """The transport for a `TESSERA_TRITON_URL` value."""
    protocol, address, tls = parse_url(url)
    if protocol == "grpc":
        return _GrpcTransport(address, ssl=tls)
    return _HttpTransport(address, ssl=tls)


def _tensor_infos(entries: Sequence[Mapping[str, Any]]) -> dict[str, TensorInfo]:
    infos = {}
    for entry in entries:
        datatype = str(entry.get("data_type", "")).removeprefix("TYPE_")
        if datatype not in _NUMPY_DTYPES:
            raise TritonError(f"tensor {entry.get('name')!r} has an unsupported type {datatype}")
        dims = tuple(int(d) for d in entry.get("dims", ()))
        infos[str(entry["name"])] = TensorInfo(str(entry["name"]), datatype, dims)
    return infos


def _message(exc: BaseException) -> str:
    text = str(exc.message() or exc) if isinstance(exc, InferenceServerException) else str(exc)
    text = text or type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


class TritonClient:
    """Async client of one Triton server; see the module's documentation."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        on_request: RequestObserver | None = None,
    ) -> None:
        parse_url(url)  # a malformed URL fails here, not at the first call
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = ClientStats()
        self.on_request = on_request
        self._transport: _Transport | None = None
        self._models: dict[tuple[str, str], ModelInfo] = {}
        self._model_locks: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def transport(self) -> _Transport:
        """The protocol client, made on first use (a gRPC channel needs a running loop)."""
        if self._transport is None:
            self._transport = _transport(self.url)
        return self._transport

    async def __aenter__(self) -> Self:
        _ = self.transport
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections; the client can be used again afterwards."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def _call(
        self, what: str, call: Callable[[float], Awaitable[T]], timeout_s: float | None = None
    ) -> T:
        """Run `call(timeout_s)` under the timeout, retrying transient failures.

        Raises `TritonTimeout`, `TritonUnavailable` (still failing after the retries),
        or the error of a failure that is not transient, as it came.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(timeout):
                    return await call(timeout)
            except Exception as exc:
                deadline = isinstance(exc, TimeoutError) or (
                    isinstance(exc, InferenceServerException)
                    and "DEADLINE_EXCEEDED" in str(exc.status())
                )
                if deadline:
                    self.stats.failures += 1
                    raise TritonTimeout(
                        f"Triton at {self.url} did not answer {what} within {timeout:g} s",
                        url=self.url,
                    ) from exc
                if not self.transport.is_transient(exc):
                    raise
                if attempt >= self.retries:
                    self.stats.failures += 1
                    raise TritonUnavailable(
                        f"Triton at {self.url} is unreachable ({what}, {attempt + 1} attempts): "
                        f"{_message(exc)}",
                        url=self.url,
                    ) from exc
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                delay *= random.uniform(0.5, 1.0)  # jitter: replicas do not retry in step
                attempt += 1
                self.stats.retries += 1
                logger.info(
                    "Triton %s: %s failed (%s); retry in %.2f s", self.url, what, exc, delay
                )
                await asyncio.sleep(delay)

    async def server_ready(self) -> bool:
        """Whether Triton answers and says it is ready (False rather than an error)."""
        try:
            return await self._call("a readiness check", self.transport.server_ready)
        except (TritonError, InferenceServerException, aiohttp.ClientError):
            return False

    async def model(self, name: str, version: str = "") -> ModelInfo:
        """The configuration of a ready model, checked with Triton on first use.

        Raises `ModelNotReady` (unknown, loading, unloaded, failed to load),
        `TritonUnavailable` or `TritonTimeout`.
        """
        key = (name, version)
        if (known := self._models.get(key)) is not None:
            return known
        async with self._model_locks.setdefault(key, asyncio.Lock()):
            if (known := self._models.get(key)) is not None:
                return known
            info = await self._check_model(name, version)
            self._models[key] = info
            return info

    async def model_ready(self, name: str, version: str = "") -> bool:
        """Whether Triton says the model can take requests now (asked every time, not
        kept: for readiness probes). Raises `TritonUnavailable` or `TritonTimeout` when
        Triton cannot be asked."""
        transport = self.transport
        try:
            return await self._call(
                f"whether {name!r} is ready", lambda t: transport.model_ready(name, version, t)
            )
        except InferenceServerException:
            return False

    def forget(self, name: str, version: str = "") -> None:
        """Drop what is known about a model, so that its next use checks it again."""
        self._models.pop((name, version), None)

    async def _check_model(self, name: str, version: str) -> ModelInfo:
        transport = self.transport
        try:
            ready = await self._call(
                f"whether {name!r} is ready", lambda t: transport.model_ready(name, version, t)
            )
            if not ready:
                reason = await self._not_ready_reason(name, version)
                raise ModelNotReady(name, reason, version=version, url=self.url)
            config = await self._call(
                f"the configuration of {name!r}",
                lambda t: transport.model_config(name, version, t),
            )
        except InferenceServerException as exc:
            raise ModelNotReady(name, _message(exc), version=version, url=self.url) from exc
        return ModelInfo(
            name=name,
            version=version,
            max_batch_size=int(config.get("max_batch_size", 0)),
            inputs=_tensor_infos(config.get("input", [])),
            outputs=_tensor_infos(config.get("output", [])),
        )

    async def _not_ready_reason(self, name: str, version: str) -> str:
        """Triton's own words for why a model is not ready, as far as it says."""
        try:
            await self._call(
                f"the metadata of {name!r}",
                lambda t: self.transport.model_metadata(name, version, t),
            )
        except InferenceServerException as exc:
            return _message(exc)
        return "Triton knows it but has not loaded it (loading, unloaded or failed to load)"

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: str = "",
        outputs: Sequence[str] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """One request: `inputs` by name (with the batch axis when the model batches).

        The inputs must be exactly the model's, in its data types (uint8 images stay
        uint8: nothing is converted here); the outputs are all of the model's unless
        named; `timeout_s` overrides the client's for this call. Raises `ValueError` for
        inputs that do not fit the model, `ModelNotReady`, `InferenceFailed` (Triton
        rejected the request), `TritonUnavailable` or `TritonTimeout`.
        """
        info = await self.model(model, version)
        batch = self._check_inputs(info, inputs)
        wanted = list(outputs) if outputs is not None else list(info.outputs)
        unknown = [name for name in wanted if name not in info.outputs]
        if unknown:
            raise ValueError(f"model {model!r} has no output {', '.join(unknown)}")
        transport = self.transport
        started = time.perf_counter()
        try:
            result = await self._call(
                f"an inference of {model!r}",
                lambda t: transport.infer(model, version, inputs, wanted, t),
                timeout_s,
            )
        except InferenceServerException as exc:
            self.stats.failures += 1
            message = _message(exc)
            if transport.is_model_gone(exc) or any(
                marker in message.lower() for marker in MODEL_GONE_MARKERS
            ):
                self.forget(model, version)
                error: TritonError = ModelNotReady(model, message, version=version, url=self.url)
            else:
                error = InferenceFailed(
                    f"Triton rejected an inference of {model!r}: {message}", url=self.url
                )
            self._observe(model, batch, started, type(error).__name__)
            raise error from exc
        except Exception as exc:
            self._observe(model, batch, started, type(exc).__name__)
            raise
        self._observe(model, batch, started, "ok")
        self.stats.requests += 1
        self.stats.items += batch
        self.stats.batch_sizes[batch] = self.stats.batch_sizes.get(batch, 0) + 1
        logger.debug(
            "Triton %s: %s x%d in %.3f s", self.url, model, batch, time.perf_counter() - started
        )
        return result

    def _observe(self, model: str, batch: int, started: float, outcome: str) -> None:
        """Tell `on_request` how an inference request ended; its failures are logged."""
        if self.on_request is None:
            return
        try:
            self.on_request(model, batch, time.perf_counter() - started, outcome)
        except Exception:
            logger.exception("Triton %s: the request observer failed", self.url)

    @staticmethod
    def _check_inputs(info: ModelInfo, inputs: Mapping[str, np.ndarray]) -> int:
        """Raise `ValueError` unless the inputs fit the model; the batch size."""
        if set(inputs) != set(info.inputs):
            raise ValueError(
                f"model {info.name!r} takes inputs {sorted(info.inputs)}, got {sorted(inputs)}"
            )
        batches = set()
        for name, array in inputs.items():
            spec = info.inputs[name]
            if array.dtype != spec.dtype:
                raise ValueError(
                    f"model {info.name!r}: input {name!r} must be {spec.dtype}, got {array.dtype}"
                )
            shape = array.shape[1:] if info.batches else array.shape
            if len(shape) != len(spec.dims) or any(
                d not in (-1, s) for d, s in zip(spec.dims, shape, strict=True)
            ):
                batch_note = " after the batch axis" if info.batches else ""
                raise ValueError(
                    f"model {info.name!r}: input {name!r} has shape {array.shape}, "
                    f"expected {list(spec.dims)}{batch_note}"
                )
            if info.batches:
                batches.add(array.shape[0])
        if not info.batches:
            return 1
        if len(batches) != 1:
            raise ValueError(f"model {info.name!r}: inputs disagree on the batch size {batches}")
        (size,) = batches
        if not 1 <= size <= info.max_batch_size:
            raise ValueError(
                f"model {info.name!r}: batch of {size}, the model takes 1 to {info.max_batch_size}"
            )
        return int(size)

    async def statistics(self, model: str, version: str = "") -> ModelStatistics:
        """Triton's counters for a model (requests taken, batches executed)."""
        try:
            stats = await self._call(
                f"the statistics of {model!r}",
                lambda t: self.transport.statistics(model, version, t),
            )
        except InferenceServerException as exc:
            raise ModelNotReady(model, _message(exc), version=version, url=self.url) from exc
        inference = stats.get("inference_stats", {})
        return ModelStatistics(
            inference_count=int(stats.get("inference_count", 0)),
            execution_count=int(stats.get("execution_count", 0)),
            success_count=int(inference.get("success", {}).get("count", 0)),
            failure_count=int(inference.get("fail", {}).get("count", 0)),
        )
