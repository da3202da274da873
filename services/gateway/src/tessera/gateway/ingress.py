"""The Kubernetes Ingress rules, generated from the routing table (`routes.toml`).

The Helm chart reads the output (`helm/tessera/files/routes.json`) and turns each entry
into an ingress-nginx path with `pathType: ImplementationSpecific` and
`nginx.ingress.kubernetes.io/use-regex: "true"`, so that requests go straight from the
Ingress to the service that owns them. What an Ingress cannot express is sent to the
gateway Service, which applies the full table:

- a rule with a `query` or `header` condition (an Ingress path cannot look at the query
  string or the headers): its path goes to the gateway, which picks the rule's service
  when the parameter or header is present and keeps trying the later rules otherwise;
- the gateway's own endpoints under /api (the merged OpenAPI document and its UI).

ingress-nginx writes every path of a host as a case-insensitive regular expression
location `~* "^<path>"`, ordered by descending path length, and nginx takes the first
regex location that matches. The generator therefore strips the leading `^` of each
rule (the controller adds it) and emits the paths in the controller's order; the test
suite checks that this order sends every path the same way as the gateway's
first-match table.

    python -m tessera.gateway.ingress                    # print the JSON
    python -m tessera.gateway.ingress --write FILE       # (re)write FILE
    python -m tessera.gateway.ingress --check FILE       # exit 1 when FILE is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tessera.gateway.routing import RoutingTable, routing_table

GATEWAY = "gateway"
"""The name the chart gives the gateway's Service (next to the services' names)."""

GATEWAY_PATHS = ("/api/schema", "/api/docs")
"""Paths under /api that the gateway answers itself instead of proxying, each with
everything below it (the documentation's scripts and styles live under /api/docs/)."""

DEFAULT_PATH = "/api/"
"""The catch-all path for the table's default service (a prefix, as a regex)."""

# Constructs that Python's `re` accepts but RE2 (which ingress-nginx validates paths
# with) does not: lookarounds and backreferences.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")


@dataclass(frozen=True)
class IngressPath:
    """One path of the Ingress: a regex (without the leading `^`) and its backend."""

    path: str
    service: str
    source: str


def _ingress_regex(pattern: str) -> str:
    """The rule's pattern as ingress-nginx wants it: RE2 syntax, no leading `^`."""
    if _NOT_RE2.search(pattern):
        raise ValueError(f"{pattern!r} uses lookaround or backreferences, which RE2 refuses")
    if '"' in pattern or any(character.isspace() for character in pattern):
        raise ValueError(f"{pattern!r} holds a quote or whitespace, which nginx cannot take")
    path = pattern.removeprefix("^")
    if not path.startswith("/"):
        raise ValueError(f"{pattern!r} must match from the start of the path (begin with ^/)")
    return path


def nginx_order(paths: Sequence[IngressPath]) -> list[IngressPath]:
    """Paths in the order ingress-nginx writes them as locations: longest first.

    The controller sorts by path in descending string order and then, stably, by
    descending length; nginx then takes the first regex location that matches.
    """
    by_text = sorted(paths, key=lambda entry: entry.path, reverse=True)
    return sorted(by_text, key=lambda entry: len(entry.path), reverse=True)


def ingress_paths(table: RoutingTable) -> list[IngressPath]:
    """Every path the Ingress needs, each with its backend, in ingress-nginx's order."""
    paths: list[IngressPath] = []
    seen: set[str] = set()
    for number, route in enumerate(table.routes, start=1):
        path = _ingress_regex(route.path.pattern)
        if path in seen:
            # An earlier rule with the same path either takes every request (no
            # condition) or sends them all to the gateway, which applies this rule too.
            continue
        seen.add(path)
        if not route.conditional:
            entry = IngressPath(path, route.service, f"route {number}")
        else:
            condition = (
                f"query parameter {route.query!r}"
                if route.query is not None
                else f"header {route.header!r}"
            )
            entry = IngressPath(
                path,
                GATEWAY,
                f"route {number}: the gateway dispatches on {condition} "
                f"({route.service} when present)",
            )
        paths.append(entry)
    paths.extend(
        IngressPath(f"{path}(/.*)?$", GATEWAY, "served by the gateway") for path in GATEWAY_PATHS
    )
    paths.append(IngressPath(DEFAULT_PATH, table.default, "default"))
    return nginx_order(paths)


def render(table: RoutingTable) -> dict[str, Any]:
    """The data the chart reads: the services involved and the ordered paths."""
    return {
        "generator": "python -m tessera.gateway.ingress",
        "source": "services/gateway/src/tessera/gateway/routes.toml",
        "services": [*table.services, GATEWAY],
        "paths": [asdict(entry) for entry in ingress_paths(table)],
    }


def render_json(table: RoutingTable) -> str:
    """`render` as the exact text of the committed file."""
    return json.dumps(render(table), indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: print, write or check the generated rules."""
    parser = argparse.ArgumentParser(
        prog="python -m tessera.gateway.ingress",
        description="Render the gateway's routing table as the Helm chart's Ingress paths.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="FILE", help="write the JSON to FILE")
    action.add_argument(
        "--check", type=Path, metavar="FILE", help="exit 1 unless FILE holds the current JSON"
    )
    args = parser.parse_args(argv)
    text = render_json(routing_table())
    if args.write is not None:
        args.write.write_text(text)
    elif args.check is not None:
        if not args.check.is_file() or args.check.read_text() != text:
            print(
                f"{args.check} is stale: run python -m tessera.gateway.ingress --write {args.check}"
            )
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
