"""RFC 9457 problem details for every error a service returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class Problem(Exception):
    """An error that reaches the client as `application/problem+json`.

    `errors` lists `{"field": ..., "message": ...}` entries when the problem is about
    particular fields of the request; `extensions` adds other members (RFC 9457 §3.2).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        errors: Sequence[dict[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def summary(self, most: int = 5) -> str:
        """The detail and the first `most` fields' messages in one line, as a request's
        result states a service's refusal."""
        named = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors[:most])
        return f"{self.detail} {named}".strip()


class Unauthorized(Problem):
    """401 with the `WWW-Authenticate` challenge for bearer tokens."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": 'Bearer realm="tessera"'})


class NotFound(Problem):
    """404 for an object that does not exist or that the caller may not see."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """Render a problem as an RFC 9457 response."""
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    body.update(problem.extensions)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def readiness_response(request: Request, service: str, checks: Mapping[str, str]) -> JSONResponse:
    """200 when every check says "ok", else 503 problem+json naming the failing ones."""
    if all(result == "ok" for result in checks.values()):
        return JSONResponse({"status": "ready", "service": service, "checks": dict(checks)})
    failing = ", ".join(name for name, result in checks.items() if result != "ok")
    problem = Problem(
        503, f"{service} is not ready: {failing} not answering", extensions={"checks": dict(checks)}
    )
    return problem_response(request, problem)


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "shapes", 3, "points")` -> `"body.shapes[3].points"`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


SUMMARISED_ERRORS = 5


def bad_request(detail: str, parameter: str) -> Problem:
    """400 problem+json naming the query parameter (`query.<parameter>`) at fault."""
    return Problem(400, detail, errors=[{"field": f"query.{parameter}", "message": detail}])


def unprocessable(errors: Sequence[tuple[str, str]], subject: str = "request") -> Problem:
    """422 problem+json listing every `(field, message)`; the detail names the first few."""
    shown = "; ".join(f"{field}: {message}" for field, message in errors[:SUMMARISED_ERRORS])
    more = len(errors) - SUMMARISED_ERRORS
    return Problem(
        422,
        f"Invalid {subject}: {shown}" + (f" (and {more} more)" if more > 0 else ""),
        title="Validation failed",
        errors=[{"field": field, "message": message} for field, message in errors],
    )


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = []
    for error in exc.errors():
        message = (
            "malformed JSON: " + str(error.get("ctx", {}).get("error", error["msg"]))
            if (error.get("type") == "json_invalid")
            else str(error["msg"])
        )
        errors.append((field_path(error.get("loc", ())), message))
    return unprocessable(errors)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` (ours, FastAPI's, Starlette's, unexpected) problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(request, _validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(request, Problem(exc.status_code, detail, headers=exc.headers))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, Problem(500, "The server failed to handle the request."))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
