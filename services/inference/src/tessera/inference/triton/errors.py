"""What goes wrong between the inference service and Triton, as problem+json errors.

Each error is a platform `Problem`, so an endpoint that lets one through answers with
RFC 9457 problem details, and a queued request can store `detail` as its reason.
"""

from __future__ import annotations

from tessera.platform.errors import Problem


class TritonError(Problem):
    """Triton answered with an error, or could not be asked (502 unless said otherwise)."""

    def __init__(self, detail: str, *, status: int = 502, url: str = "") -> None:
        super().__init__(status, detail, extensions={"triton_url": url} if url else None)
        self.url = url


class TritonUnavailable(TritonError):
    """Triton cannot be reached (refused, reset, not ready), after the retries."""

    def __init__(self, detail: str, *, url: str = "") -> None:
        super().__init__(detail, status=503, url=url)


class TritonTimeout(TritonError):
    """Triton did not answer within the client's timeout."""

    def __init__(self, detail: str, *, url: str = "") -> None:
        super().__init__(detail, status=504, url=url)


class ModelNotReady(TritonError):
    """The model is unknown to Triton, or known but not loaded (yet or any more)."""

    def __init__(self, model: str, reason: str, *, version: str = "", url: str = "") -> None:
        label = f"{model!r} version {version}" if version else repr(model)
        super().__init__(f"model {label} is not ready on Triton: {reason}", status=503, url=url)
        self.model = model
        self.version = version
        self.reason = reason
        self.extensions["model"] = model


class InferenceFailed(TritonError):
    """Triton took the request and rejected it (bad tensor, model error)."""
