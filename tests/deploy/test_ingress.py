"""The Ingress generated from routes.toml: current, and routing like the gateway."""

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
    GATEWAY_PATHS,
    IngressPath,
    ingress_paths,
    main,
    render,
    render_json,
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
    assert own == set(GATEWAY_PATHS)


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
    return st.one_of(*per_rule, generic).filter(lambda path: "\n" not in path)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_request_paths(), with_query=st.booleans())
def test_ingress_sends_each_path_where_the_gateway_would(path: str, with_query: bool) -> None:
    """Longest-first order must agree with first-match order, or hand over to the gateway."""
    table = routing_table()
    paths = ingress_paths(table)
    backend = ingress_nginx_backend(paths, path)
    query = {route.query: "x" for route in table.routes if route.query is not None}
    expected = table.service_for(path, query if with_query else {})
    if path in GATEWAY_PATHS:
        assert backend == GATEWAY
    else:
        assert backend in (expected, GATEWAY)


@pytest.mark.parametrize(
    "path",
    ["/api/docs", "/api/docs/", "/api/docs/static/1.7.7/swagger-ui.css", "/api/schema/"],
)
def test_the_documentation_and_its_assets_go_to_the_gateway(path: str) -> None:
    assert ingress_nginx_backend(ingress_paths(routing_table()), path) == GATEWAY
