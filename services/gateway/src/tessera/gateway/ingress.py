"""The Kubernetes Ingress rules, generated from the routing table (`routes.toml`).

The Helm chart reads the output (`helm/tessera/files/routes.json`), which holds two
lists of the same routing:

- `paths` (the chart's `ingress.pathStyle: regex`): ingress-nginx regex paths, each with
  `pathType: ImplementationSpecific` and `nginx.ingress.kubernetes.io/use-regex: "true"`,
  so that requests go straight from the Ingress to the service that owns them;
- `standard` (`ingress.pathStyle: standard`, and always for the AWS Load Balancer
  Controller's ALB, which has no regular expressions): `Exact` and `Prefix` paths only,
  for any Ingress controller. A rule becomes a direct path only where its pattern is a
  literal path (or a choice of literal words) ending in `$`, `/?$` or `(/.*)?$`, and no
  earlier rule of the table can match any request that path covers; everything else
  under `/api` goes to the gateway (`Prefix /api`), which applies the whole table.
  `standard_paths` explains the check.

In the regex list, what an Ingress cannot express is sent to the gateway Service, which
applies the full table:

- a rule with a `query` or `header` condition (an Ingress path cannot look at the query
  string or the headers): its path goes to the gateway, which picks the rule's service
  when the parameter or header is present and keeps trying the later rules otherwise;
- the gateway's own endpoints under /api (the merged OpenAPI document and its UI, and
  the merged list of background requests, `GET /api/requests`), and every rule whose
  pattern matches one of the latter (its path goes to the gateway, which answers the
  list itself and proxies the rest by the table).

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
import importlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tessera.gateway.routing import RoutingTable, routing_table

GATEWAY = "gateway"
"""The name the chart gives the gateway's Service (next to the services' names)."""

GATEWAY_PATHS = ("/api/schema", "/api/docs")
"""Paths under /api that the gateway answers itself instead of proxying, each with
everything below it (the documentation's scripts and styles live under /api/docs/)."""

GATEWAY_EXACT_PATHS = ("/api/requests",)
"""Paths that the gateway answers itself, each exactly (with or without the trailing
slash) and not what is below it: the merged list of every service's background
requests (`/api/requests/<id>` goes by the table)."""

DEFAULT_PATH = "/api/"
"""The catch-all path for the table's default service (a prefix, as a regex)."""

STANDARD_DEFAULT_PATH = "/api"
"""The `Prefix` path of the standard list that sends everything else to the gateway."""

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
        own = [p for p in GATEWAY_EXACT_PATHS if route.path.match(p) or route.path.match(p + "/")]
        if not route.conditional and not own:
            entry = IngressPath(path, route.service, f"route {number}")
        elif not route.conditional:
            entry = IngressPath(
                path,
                GATEWAY,
                f"route {number}: the gateway answers {own[0]} itself "
                f"({route.service} for the paths below it)",
            )
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
    paths.extend(
        IngressPath(f"{path}/?$", GATEWAY, "served by the gateway")
        for path in GATEWAY_EXACT_PATHS
        if f"{path}/?$" not in seen
    )
    paths.append(IngressPath(DEFAULT_PATH, table.default, "default"))
    return nginx_order(paths)


@dataclass(frozen=True)
class StandardPath:
    """One path of an Ingress without regular expressions: `Exact` or `Prefix`."""

    path: str
    pathType: str  # noqa: N815 - the Ingress field's own name, as the chart reads it
    service: str
    source: str


# A rule whose pattern is a literal path: literal characters (no ALB wildcard `*` or `?`,
# no regex metacharacter) and groups of literal words such as `(projects|tasks)`, then
# one of three endings: `(/.*)?$` (the path and everything below it: `Prefix`), `/?$`
# (with or without the trailing slash: two `Exact` paths) or `$` (`Exact`).
# (One character per repetition of the body: a nested `+` would backtrack exponentially
# on a pattern that is not of this form.)
_LITERAL_CHARACTER = r"[A-Za-z0-9_/-]"
_LITERAL_CHOICE = r"\((?:[A-Za-z0-9_-]+\|)*[A-Za-z0-9_-]+\)"
_LITERAL_FORM = re.compile(
    rf"\^(?P<body>(?:{_LITERAL_CHARACTER}|{_LITERAL_CHOICE})+)"
    r"(?P<tail>\(/\.\*\)\?\$|/\?\$|\$)"
)
_LITERAL_PART = re.compile(rf"{_LITERAL_CHARACTER}+|{_LITERAL_CHOICE}")


def _literal_forms(pattern: str) -> list[tuple[str, str]]:
    """The `(path, pathType)` pairs that cover exactly the paths `pattern` matches, or
    none when the pattern is not a literal path (it needs the gateway then)."""
    form = _LITERAL_FORM.fullmatch(pattern)
    if form is None:
        return []
    choices = [
        part[1:-1].split("|") if part.startswith("(") else [part]
        for part in _LITERAL_PART.findall(form["body"])
    ]
    bodies = ["".join(words) for words in itertools.product(*choices)]
    if any(not body.startswith("/") or body.endswith("/") or "//" in body for body in bodies):
        return []
    tail = form["tail"]
    if tail == "$":
        return [(body, "Exact") for body in bodies]
    if tail == "/?$":
        return [(path, "Exact") for body in bodies for path in (body, body + "/")]
    return [(body, "Prefix") for body in bodies]


# The parser behind `re` (private, but its tree has kept its shape since Python 2): the
# overlap check below walks the parsed pattern.
_sre_parser: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("re._constants")


def _class_may_hold(items: Sequence[tuple[Any, Any]], character: str) -> bool:
    """Whether a character class (`[...]`, `\\d`) may match `character`; True for any
    construct the check does not know."""
    negate = False
    found = False
    categories: dict[Any, Callable[[str], bool]] = {
        _sre.CATEGORY_DIGIT: str.isdecimal,
        _sre.CATEGORY_SPACE: str.isspace,
        _sre.CATEGORY_WORD: lambda c: c.isalnum() or c == "_",
    }
    negated_categories = {
        _sre.CATEGORY_NOT_DIGIT: _sre.CATEGORY_DIGIT,
        _sre.CATEGORY_NOT_SPACE: _sre.CATEGORY_SPACE,
        _sre.CATEGORY_NOT_WORD: _sre.CATEGORY_WORD,
    }
    for op, argument in items:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            found = found or character == chr(argument)
        elif op is _sre.RANGE:
            found = found or argument[0] <= ord(character) <= argument[1]
        elif op is _sre.CATEGORY and argument in categories:
            found = found or categories[argument](character)
        elif op is _sre.CATEGORY and argument in negated_categories:
            found = found or not categories[negated_categories[argument]](character)
        else:
            return True
    return found != negate


_PROGRESS = "progress"
"""A marker after one more turn of an open-ended repeat: the turn must have consumed."""


def _may_start_with(items: tuple[tuple[Any, Any], ...], text: str, position: int) -> bool:
    """Whether the pattern `items` (then nothing: `re.match` ignores what follows) can
    match some string that starts with `text[position:]`. Over-approximates: anything
    the walk does not understand counts as a match."""
    if position == len(text) or not items:
        return True
    (op, argument), rest = items[0], items[1:]
    character = text[position]
    if op == _PROGRESS:
        return position > argument and _may_start_with(rest, text, position)
    if op is _sre.LITERAL:
        return character == chr(argument) and _may_start_with(rest, text, position + 1)
    if op is _sre.NOT_LITERAL:
        return character != chr(argument) and _may_start_with(rest, text, position + 1)
    if op is _sre.ANY:
        return character != "\n" and _may_start_with(rest, text, position + 1)
    if op is _sre.IN:
        return _class_may_hold(argument, character) and _may_start_with(rest, text, position + 1)
    if op is _sre.AT:
        if argument in (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING):
            return position == 0 and _may_start_with(rest, text, position)
        # At the end: never, the text goes on past this point; anything else: maybe.
        return argument not in (_sre.AT_END, _sre.AT_END_STRING)
    if op is _sre.SUBPATTERN:
        _group, add_flags, _del_flags, pattern = argument
        if add_flags:
            return True
        return _may_start_with((*pattern, *rest), text, position)
    if op is _sre.BRANCH:
        return any(
            _may_start_with((*alternative, *rest), text, position) for alternative in argument[1]
        )
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
        low, high, pattern = argument
        unbounded = high == _sre.MAXREPEAT
        if low > 0:
            again = (op, (low - 1, high if unbounded else high - 1, pattern))
            return _may_start_with((*pattern, again, *rest), text, position)
        if _may_start_with(rest, text, position):
            return True
        if high == 0:
            return False
        again = (op, (0, high if unbounded else high - 1, pattern))
        return _may_start_with((*pattern, (_PROGRESS, position), again, *rest), text, position)
    return True


def _covers(path: str, path_type: str, request_path: str) -> bool:
    """Whether an Ingress path takes a request path (Kubernetes' rules)."""
    if path_type == "Exact":
        return request_path == path
    return request_path == path or request_path.startswith(path + "/")


def _takes_from_gateway(path: str, path_type: str) -> bool:
    """Whether an Ingress path would take requests that the gateway answers itself."""
    exact = [p for own in GATEWAY_EXACT_PATHS for p in (own, own + "/")]
    return any(_covers(path, path_type, own) for own in (*exact, *GATEWAY_PATHS)) or any(
        _covers(own, "Prefix", path) for own in GATEWAY_PATHS
    )


def _may_overlap(route: re.Pattern[str], path: str, path_type: str) -> bool:
    """Whether `route` can match a request path that the Ingress path covers."""
    if route.match(path):
        return True
    if path_type == "Exact":
        return False
    tree = _sre_parser.parse(route.pattern, route.flags)
    if tree.state.flags & re.IGNORECASE:
        return True
    return _may_start_with(tuple(tree), path + "/", 0)


def standard_paths(table: RoutingTable) -> list[StandardPath]:
    """The paths of an Ingress without regular expressions, in the AWS Load Balancer
    Controller's order (`Exact` first, then `Prefix` longest first; the Kubernetes rule
    for any controller: an exact match, else the longest prefix, wins).

    A rule without a query or header condition whose pattern is a literal path becomes
    a direct path to its service when no earlier rule (conditional or not) can match any
    request path the Ingress path covers: the gateway's first match is then that rule
    for every request the Ingress sends there, whatever its query or headers. The check
    walks each earlier rule's parsed pattern over the Ingress path (and, for a prefix,
    over the path followed by `/`), counting anything it does not understand as an
    overlap, so an unclear case goes to the gateway, never to the wrong service. Every
    other `/api` path goes to the gateway (`Prefix /api`), and so does every path that
    the gateway answers itself (`GATEWAY_PATHS`, `GATEWAY_EXACT_PATHS`): no direct path
    covers one.
    """
    paths: list[StandardPath] = []
    seen: set[tuple[str, str]] = set()
    for number, route in enumerate(table.routes, start=1):
        if route.conditional:
            continue
        earlier = table.routes[: number - 1]
        for path, path_type in _literal_forms(route.path.pattern):
            if (
                (path, path_type) in seen
                or _takes_from_gateway(path, path_type)
                or any(_may_overlap(other.path, path, path_type) for other in earlier)
            ):
                continue
            seen.add((path, path_type))
            paths.append(StandardPath(path, path_type, route.service, f"route {number}"))
    paths.append(
        StandardPath(
            STANDARD_DEFAULT_PATH,
            "Prefix",
            GATEWAY,
            "everything else under /api: the gateway applies the whole table",
        )
    )
    exact = [entry for entry in paths if entry.pathType == "Exact"]
    prefix = sorted(
        (entry for entry in paths if entry.pathType == "Prefix"),
        key=lambda entry: len(entry.path),
        reverse=True,
    )
    return [*exact, *prefix]


def render(table: RoutingTable) -> dict[str, Any]:
    """The data the chart reads: the services involved and the ordered paths."""
    return {
        "generator": "python -m tessera.gateway.ingress",
        "source": "services/gateway/src/tessera/gateway/routes.toml",
        "services": [*table.services, GATEWAY],
        "paths": [asdict(entry) for entry in ingress_paths(table)],
        "standard": [asdict(entry) for entry in standard_paths(table)],
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
