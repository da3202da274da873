"""The whole fleet through the same launcher as `make run`: start, route, stop, restart."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tessera.devstack.servers import free_port

pytestmark = pytest.mark.e2e
START_LIMIT_S = 60.0


class Launcher:
    """`tessera-run` in a subprocess, as `make run` starts it."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.output = state_dir.parent / f"launcher-{port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        runs_before = self._banners()
        with self.output.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.prefix) / "bin" / "tessera-run"),
                    "--state-dir",
                    str(self.state_dir),
                    "--port",
                    str(self.port),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        while self._banners() == runs_before:
            assert self.process.poll() is None, self.output.read_text()
            assert time.monotonic() - started < START_LIMIT_S * 2, self.output.read_text()
            time.sleep(0.2)
        return time.monotonic() - started

    def _banners(self) -> int:
        return self.output.read_text().count("Tessera is running") if self.output.exists() else 0

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    @property
    def token(self) -> str:
        token: str = json.loads((self.state_dir / "secrets.json").read_text())["admin_token"]
        return token


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
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    state_dir = tmp_path / "state"
    runner = Launcher(state_dir, free_port())
    yield runner
    if runner.process is not None and runner.process.poll() is None:
        runner.process.kill()
        runner.process.wait()


def test_fleet_starts_routes_stops_and_keeps_data(launcher: Launcher) -> None:
    elapsed = launcher.start()
    assert elapsed < START_LIMIT_S, f"the fleet took {elapsed:.1f}s to start"
    base = f"http://127.0.0.1:{launcher.port}"
    auth = {"Authorization": f"Bearer {launcher.token}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        about = client.get("/api/server/about", headers=auth)
        assert about.status_code == 200
        assert about.json()["name"] == "Tessera"
        denied = client.get("/api/server/about")
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
            "/api/requests": "export",
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
        httpx.get(f"{base}/healthz")

    launcher.start()
    with httpx.Client(base_url=base, timeout=30) as client:
        me = client.get("/api/users/self", headers={"Authorization": f"Bearer {kept_token}"})
        assert me.status_code == 200
        assert me.json()["username"] == "admin"
    assert launcher.stop() == 0
    assert _processes_mentioning(str(launcher.state_dir)) == []
