"""The whole fleet through the same launcher as `make run`: start, route, stop, restart."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tessera.devstack.fleet import Launcher, fleet_folder
from tessera.devstack.servers import free_port

pytestmark = pytest.mark.e2e


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    with fleet_folder("tessera-fleet-") as base:
        runner = Launcher(base / "state", free_port())
        try:
            yield runner
        finally:
            runner.kill()


def test_fleet_starts_routes_stops_and_keeps_data(launcher: Launcher) -> None:
    # How long it takes is a figure for benchmarks; Launcher.start gives up on a hang.
    launcher.start()
    base = f"http://127.0.0.1:{launcher.port}"
    auth = {"Authorization": f"Bearer {launcher.token}"}
    # The local Triton serves the model repository (the inference service's TESSERA_TRITON_URL).
    triton = re.search(r"triton +(http://127\.0\.0\.1:\d+)", launcher.output.read_text())
    assert triton is not None, launcher.output.read_text()
    assert httpx.get(f"{triton[1]}/v2/models/ppocr_v4_det/ready").status_code == 200
    with httpx.Client(base_url=base, timeout=30) as client:
        about = client.get("/api/server/about", headers=auth)
        assert about.status_code == 200
        assert about.json()["name"] == "Tessera"
        assert client.get("/api/server/about").status_code == 200
        denied = client.get("/api/users/self")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"

        assert client.get("/readyz").json()["checks"] == dict.fromkeys(
            ("annotations", "ingest", "export", "inference"), "ok"
        )
        for service in ("annotations", "ingest", "export", "inference"):
            health = client.get(f"/healthz/{service}")
            assert health.json() == {"status": "ok", "service": service}
            assert client.get(f"/readyz/{service}").status_code == 200

        owners = {
            "/api/users/self": "annotations",
            "/api/tasks/1/annotations": "annotations",
            "/api/tasks/1/data?type=chunk&number=0": "ingest",
            "/api/cloudstorages": "ingest",
            "/api/tasks/1/annotations?format=COCO%201.0": "export",
            "/api/requests": "gateway",  # merged from export, ingest and inference
            "/api/requests/export-nothing": "export",
            "/api/lambda/functions": "inference",
        }
        for path, service in owners.items():
            response = client.get(path, headers=auth)
            assert response.headers["x-tessera-service"] == service, path
            assert client.get(path).status_code == 401, path

        request_id = client.get("/api/users/self", headers={**auth, "X-Request-ID": "e2e-req"})
        assert request_id.headers["x-request-id"] == "e2e-req"

        malformed = client.post(
            "/api/auth/api_tokens",
            content=b'{"name": ',
            headers={**auth, "Content-Type": "application/json"},
        )
        assert malformed.status_code == 422
        assert malformed.headers["content-type"] == "application/problem+json"
        assert malformed.json()["errors"][0]["field"].startswith("body")

        schema = client.get("/api/schema").json()
        assert "/api/server/about" in schema["paths"]
        assert "/api/auth/api_tokens" in schema["paths"]
        assert (
            "Swagger" in client.get("/api/docs").text or "swagger" in client.get("/api/docs").text
        )

        created = client.post(
            "/api/auth/api_tokens", json={"name": "survives restart"}, headers=auth
        )
        assert created.status_code == 201
        kept_token = created.json()["value"]

    assert launcher.stop() == 0
    assert "Stopped." in launcher.output.read_text()
    assert _processes_mentioning(str(launcher.state_dir)) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{triton[1]}/v2/health/live")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz")

    launcher.start()
    with httpx.Client(base_url=base, timeout=30) as client:
        me = client.get("/api/users/self", headers={"Authorization": f"Bearer {kept_token}"})
        assert me.status_code == 200
        assert me.json()["username"] == "admin"
    assert launcher.stop() == 0
    assert _processes_mentioning(str(launcher.state_dir)) == []
