"""What a service passes on of its caller's request when it asks another service on the
caller's behalf: their credentials and their organization context."""

from __future__ import annotations

from fastapi import Request

FORWARDED_HEADERS = ("authorization", "x-organization")
FORWARDED_QUERY = ("org", "org_id")


def caller_credentials(request: Request) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters to send on, so the other service decides as for
    the caller."""
    headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
    params = {k: request.query_params[k] for k in FORWARDED_QUERY if k in request.query_params}
    return headers, params
