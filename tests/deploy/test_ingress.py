"""The Ingress generated from routes.toml: current, and routing like the gateway.

Two path lists are generated: ingress-nginx regex paths (`paths`) and standard
`Exact`/`Prefix` paths (`standard`, what the ALB and any other controller get). Both are
checked against the gateway's own first-match table with request paths generated from
every rule's regex.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route as StarletteRoute

from tessera.gateway.app import create_app
from tessera.gateway.config import GatewaySettings
from tessera.gateway.ingress import (
    DEFAULT_PATH,
    GATEWAY,
    GATEWAY_EXACT_PATHS,
    GATEWAY_PATHS,
    STANDARD_DEFAULT_PATH,
    IngressPath,
    StandardPath,
    ingress_paths,
    main,
    render,
    render_json,
    standard_paths,
)
from tessera.gateway.routing import RoutingTable, routing_table

ROOT = Path(__file__).resolve().parents[2]
ROUTES_JSON = ROOT / "helm" / "tessera" / "files" / "routes.json"


def ingress_nginx_backend(paths: list[IngressPath], path: str) -> str | None:
    """The backend ingress-nginx picks: the first `~* "^<path>"` location, in file order.

    The generator already wrote the paths in the controller's order (longest first), so
    this is nginx's own rule for regex locations: the first that matches wins.
    """
    for entry in paths:
        if re.match(entry.path, path, flags=re.IGNORECASE):
            return entry.service
    return None


def standard_backend(paths: list[StandardPath], path: str) -> str | None:
    """The backend of an Ingress with `Exact` and `Prefix` paths, as Kubernetes defines
    it and the AWS Load Balancer Controller orders its rules: an `Exact` path equal to the
    request path, else the longest `Prefix` path that matches it element by element."""
    for entry in paths:
        if entry.pathType == "Exact" and entry.path == path:
            return entry.service
    prefixes = [
        entry
        for entry in paths
        if entry.pathType == "Prefix"
        and (path == entry.path or path.startswith(entry.path.rstrip("/") + "/"))
    ]
    if not prefixes:
        return None
    return max(prefixes, key=lambda entry: len(entry.path)).service


def test_committed_routes_json_is_current() -> None:
    assert ROUTES_JSON.read_text() == render_json(routing_table()), (
        "helm/tessera/files/routes.json is stale: run "
        "python -m tessera.gateway.ingress --write helm/tessera/files/routes.json"
    )


def test_check_flag_reports_stale_and_current_files(tmp_path: Path) -> None:
    target = tmp_path / "routes.json"
    assert main(["--check", str(target)]) == 1
    assert main(["--write", str(target)]) == 0
    assert main(["--check", str(target)]) == 0
    target.write_text(target.read_text().replace("ingest", "export"))
    assert main(["--check", str(target)]) == 1


def test_paths_are_in_ingress_nginx_order_and_anchored_by_the_controller() -> None:
    paths = ingress_paths(routing_table())
    lengths = [len(entry.path) for entry in paths]
    assert lengths == sorted(lengths, reverse=True)
    assert all(entry.path.startswith("/") for entry in paths)
    assert paths[-1] == IngressPath(DEFAULT_PATH, routing_table().default, "default")


def test_query_and_header_rules_go_to_the_gateway() -> None:
    table = routing_table()
    by_path = {entry.path: entry for entry in ingress_paths(table)}
    conditional = [route for route in table.routes if route.conditional]
    assert any(route.query for route in conditional), "no query rule left to cover"
    assert any(route.header for route in conditional), "no header rule left to cover"
    for route in conditional:
        entry = by_path[route.path.pattern.removeprefix("^")]
        assert entry.service == GATEWAY
        assert repr(route.query or route.header) in entry.source


def test_every_backend_is_a_service_the_chart_deploys() -> None:
    data = render(routing_table())
    assert {entry["service"] for entry in data["paths"]} <= set(data["services"])
    assert set(data["services"]) == {"annotations", "ingest", "export", "inference", "gateway"}


def test_gateway_paths_are_the_gateways_own_api_routes() -> None:
    app = create_app(GatewaySettings())
    own = {
        route.path
        for route in app.routes
        if isinstance(route, StarletteRoute)
        and route.path.startswith("/api/")
        and "{" not in route.path
    }
    exact = {variant for path in GATEWAY_EXACT_PATHS for variant in (path, path + "/")}
    assert own == set(GATEWAY_PATHS) | exact


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("^/api/(?=x)y$", "RE2"),
        ("^/api/(a)\\1$", "RE2"),
        ('^/api/"x"$', "quote"),
        (".*/x$", "begin with"),
    ],
)
def test_patterns_ingress_nginx_cannot_take_are_refused(pattern: str, message: str) -> None:
    text = f"""
default = "annotations"
services = ["annotations"]
[[route]]
service = "annotations"
path = '{pattern}'
"""
    with pytest.raises(ValueError, match=message):
        ingress_paths(RoutingTable.parse(text))


def test_a_repeated_path_keeps_the_first_rule() -> None:
    text = """
default = "annotations"
services = ["annotations", "export"]
[[route]]
service = "export"
path = '^/api/x$'
query = "format"
[[route]]
service = "annotations"
path = '^/api/x$'
"""
    entries = [e for e in ingress_paths(RoutingTable.parse(text)) if e.path == "/api/x$"]
    assert [e.service for e in entries] == [GATEWAY]


def _request_paths() -> st.SearchStrategy[str]:
    """Paths that match some rule of the table (so every rule is exercised), plus API paths."""
    table = routing_table()
    per_rule = [st.from_regex(route.path, fullmatch=True) for route in table.routes]
    segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
    generic = st.lists(segment, min_size=1, max_size=5).map(lambda parts: "/api/" + "/".join(parts))
    own = st.sampled_from(
        [*GATEWAY_PATHS, *GATEWAY_EXACT_PATHS, *(path + "/" for path in GATEWAY_EXACT_PATHS)]
    )
    return st.one_of(*per_rule, generic, own).filter(lambda path: "\n" not in path)


def _answered_by_the_gateway(path: str) -> bool:
    """Whether the gateway answers a path itself instead of proxying it."""
    return (
        path in GATEWAY_PATHS
        or any(path.startswith(p + "/") for p in GATEWAY_PATHS)
        or path.rstrip("/") in GATEWAY_EXACT_PATHS
    )


def _conditions(with_query: bool, with_header: bool) -> tuple[dict[str, str], dict[str, str]]:
    """Every query parameter and header the table's rules look at, or none."""
    table = routing_table()
    query = {r.query: "x" for r in table.routes if r.query is not None and with_query}
    headers = {r.header.lower(): "1" for r in table.routes if r.header is not None and with_header}
    return query, headers


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_request_paths(), with_query=st.booleans(), with_header=st.booleans())
def test_standard_paths_send_each_path_where_the_gateway_would(
    path: str, with_query: bool, with_header: bool
) -> None:
    """A direct path must be right whatever the query and headers; the rest is the gateway's."""
    table = routing_table()
    query, headers = _conditions(with_query, with_header)
    backend = standard_backend(standard_paths(table), path)
    assert backend is not None, f"{path} reaches no backend"
    if _answered_by_the_gateway(path):
        assert backend == GATEWAY
    assert backend in (table.service_for(path, query, headers), GATEWAY)


def test_standard_paths_are_exact_or_prefix_and_in_the_controllers_order() -> None:
    paths = standard_paths(routing_table())
    assert {entry.pathType for entry in paths} == {"Exact", "Prefix"}
    kinds = [entry.pathType for entry in paths]
    assert kinds == sorted(kinds), "Exact paths come first"
    prefixes = [len(entry.path) for entry in paths if entry.pathType == "Prefix"]
    assert prefixes == sorted(prefixes, reverse=True)
    assert paths[-1] == StandardPath(
        STANDARD_DEFAULT_PATH,
        "Prefix",
        GATEWAY,
        "everything else under /api: the gateway applies the whole table",
    )
    for entry in paths:
        # ALB path patterns treat * and ? as wildcards; a regex character would be literal.
        assert re.fullmatch(r"/[A-Za-z0-9_/-]*", entry.path), entry.path


def test_standard_paths_route_the_literal_rules_directly() -> None:
    """Today's table: the literal rules that no earlier rule shadows go straight to their
    service; /api/requests does not (the ingest- and inference- rules come first)."""
    by_path = {(e.path, e.pathType): e.service for e in standard_paths(routing_table())}
    assert by_path[("/api/cloudstorages", "Prefix")] == "ingest"
    assert by_path[("/api/lambda", "Prefix")] == "inference"
    assert by_path[("/api/server/share", "Exact")] == "ingest"
    assert by_path[("/api/server/share/", "Exact")] == "ingest"
    assert by_path[("/api/projects/backup", "Prefix")] == "export"
    assert by_path[("/api/tasks/backup", "Prefix")] == "export"
    assert ("/api/requests", "Prefix") not in by_path


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # An earlier rule overlaps the literal one: the gateway decides.
        ([("^/api/x/[0-9]+$", "export", None), ("^/api/x(/.*)?$", "ingest", None)], []),
        # An earlier rule that cannot match below /api/x leaves it direct.
        (
            [("^/api/y/[0-9]+$", "export", None), ("^/api/x(/.*)?$", "ingest", None)],
            [("/api/x", "Prefix", "ingest")],
        ),
        # A conditional rule never becomes a direct path, and shadows later ones.
        ([("^/api/x/?$", "export", "format"), ("^/api/x/?$", "ingest", None)], []),
        # A choice of words becomes one path per word; `/?$` two exact paths.
        (
            [("^/api/(a|b)/c/?$", "ingest", None)],
            [
                ("/api/a/c", "Exact", "ingest"),
                ("/api/a/c/", "Exact", "ingest"),
                ("/api/b/c", "Exact", "ingest"),
                ("/api/b/c/", "Exact", "ingest"),
            ],
        ),
        # Anything but a literal path stays with the gateway.
        ([("^/api/x/[0-9]+$", "ingest", None), ("^/api/z.*$", "ingest", None)], []),
        # A case-insensitive earlier rule counts as overlapping.
        ([("(?i)^/API/Q$", "export", None), ("^/api/q(/.*)?$", "ingest", None)], []),
        # Prefix semantics are per path element: /api/lambdax is not below /api/lambda.
        (
            [("^/api/lambda[xy]$", "export", None), ("^/api/lambda(/.*)?$", "ingest", None)],
            [("/api/lambda", "Prefix", "ingest")],
        ),
    ],
)
def test_standard_paths_of_small_tables(
    rules: list[tuple[str, str, str | None]], expected: list[tuple[str, str, str]]
) -> None:
    text = 'default = "annotations"\nservices = ["annotations", "ingest", "export"]\n'
    for pattern, service, query in rules:
        text += f"[[route]]\nservice = \"{service}\"\npath = '{pattern}'\n"
        if query is not None:
            text += f'query = "{query}"\n'
    paths = standard_paths(RoutingTable.parse(text))
    assert [(e.path, e.pathType, e.service) for e in paths[:-1]] == expected
    assert paths[-1].path == STANDARD_DEFAULT_PATH


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_request_paths(), with_query=st.booleans())
def test_ingress_sends_each_path_where_the_gateway_would(path: str, with_query: bool) -> None:
    """Longest-first order must agree with first-match order, or hand over to the gateway."""
    table = routing_table()
    paths = ingress_paths(table)
    backend = ingress_nginx_backend(paths, path)
    query = {route.query: "x" for route in table.routes if route.query is not None}
    expected = table.service_for(path, query if with_query else {})
    if _answered_by_the_gateway(path):
        assert backend == GATEWAY
    else:
        assert backend in (expected, GATEWAY)


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs",
        "/api/docs/",
        "/api/docs/static/1.7.7/swagger-ui.css",
        "/api/schema/",
        "/api/requests",
        "/api/requests/",
    ],
)
def test_the_gateways_own_paths_go_to_the_gateway(path: str) -> None:
    assert ingress_nginx_backend(ingress_paths(routing_table()), path) == GATEWAY
    assert standard_backend(standard_paths(routing_table()), path) == GATEWAY


def test_a_literal_rule_never_takes_what_the_gateway_answers() -> None:
    text = """
default = "annotations"
services = ["annotations", "export"]
[[route]]
service = "export"
path = '^/api/requests(/.*)?$'
[[route]]
service = "export"
path = '^/api/docs/extra/?$'
"""
    table = RoutingTable.parse(text)
    assert [e.path for e in standard_paths(table)] == [STANDARD_DEFAULT_PATH]
    (entry,) = [e for e in ingress_paths(table) if e.path == "/api/requests(/.*)?$"]
    assert entry.service == GATEWAY
