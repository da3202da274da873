"""Triton Inference Server from the inference service: an async client and a batcher.

Models live in `services/inference/models/` (one `config.pbtxt` each); the production
Triton serves them from S3, `make run` and the tests from a local Triton
(`tessera.devstack.servers.Triton`). `TESSERA_TRITON_URL` says where it is.
"""

from tessera.inference.triton.batcher import BatcherStats, FrameBatcher
from tessera.inference.triton.client import (
    ClientStats,
    ModelInfo,
    ModelStatistics,
    TensorInfo,
    TritonClient,
)
from tessera.inference.triton.errors import (
    InferenceFailed,
    ModelNotReady,
    TritonError,
    TritonTimeout,
    TritonUnavailable,
)

__all__ = [
    "BatcherStats",
    "ClientStats",
    "FrameBatcher",
    "InferenceFailed",
    "ModelInfo",
    "ModelNotReady",
    "ModelStatistics",
    "TensorInfo",
    "TritonClient",
    "TritonError",
    "TritonTimeout",
    "TritonUnavailable",
]
