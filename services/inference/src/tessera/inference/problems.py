"""Problems about the fields of a request's body."""

from __future__ import annotations

from tessera.platform.errors import Problem


def body_field(status: int, name: str, message: str) -> Problem:
    """A problem naming a field of the call's body."""
    detail = message[0].upper() + message[1:] + "."
    return Problem(status, detail, errors=[{"field": f"body.{name}", "message": message}])
