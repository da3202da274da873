"""The routing table (`routes.toml`) as data: which service owns which /api path."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Route:
    """One rule: requests whose path matches `path` (and that carry the query parameter
    `query`, or the header `header`, when the rule names one) go to `service`."""

    service: str
    path: re.Pattern[str]
    query: str | None = None
    header: str | None = None

    @property
    def conditional(self) -> bool:
        """Whether the rule looks at more than the path (an Ingress cannot)."""
        return self.query is not None or self.header is not None

    def matches(
        self, path: str, query: Mapping[str, object], headers: Mapping[str, str] | None = None
    ) -> bool:
        """True when this rule sends the request to its service (`headers` looked up by
        lower-case name, as Starlette's are)."""
        return (
            bool(self.path.match(path))
            and (self.query is None or self.query in query)
            and (self.header is None or self.header.lower() in (headers or {}))
        )


@dataclass(frozen=True)
class RoutingTable:
    """Ordered rules and the service that takes everything else."""

    routes: tuple[Route, ...]
    default: str
    services: tuple[str, ...]

    def service_for(
        self, path: str, query: Mapping[str, object], headers: Mapping[str, str] | None = None
    ) -> str:
        """The service that owns a request."""
        for route in self.routes:
            if route.matches(path, query, headers):
                return route.service
        return self.default

    @classmethod
    def parse(cls, text: str) -> RoutingTable:
        """Read a table from TOML, checking that each rule names a known service."""
        data = tomllib.loads(text)
        services = tuple(data["services"])
        default = data["default"]
        routes = tuple(
            Route(
                service=rule["service"],
                path=re.compile(rule["path"]),
                query=rule.get("query"),
                header=rule.get("header"),
            )
            for rule in data.get("route", [])
        )
        unknown = {route.service for route in routes} | {default}
        unknown -= set(services)
        if unknown:
            raise ValueError(f"routes.toml names unknown services: {sorted(unknown)}")
        return cls(routes=routes, default=default, services=services)


@cache
def routing_table() -> RoutingTable:
    """The table shipped with the gateway."""
    return RoutingTable.parse(resources.files(__package__).joinpath("routes.toml").read_text())
