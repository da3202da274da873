"""`tessera-run` (what `make run` starts): the whole fleet on one machine, on 127.0.0.1.

Starts PostgreSQL, NATS JetStream and an S3 endpoint with their state under
`--state-dir` (`.tessera/` by default), and a local Triton serving the model repository
(it loads its models while the rest comes up), migrates every service's schema, starts
the four services and the gateway, prints the URL and the admin's token, and on Ctrl-C or
SIGTERM stops everything in reverse order. A second start reuses the same state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from tessera.devstack.servers import (
    S3,
    ChildProcess,
    Nats,
    Postgres,
    Triton,
    free_port,
    http_ok,
    log_tail,
    stop_all,
)
from tessera.platform.egress import endpoint_of
from tessera.platform.migrate import migrate_packages
from tessera.platform.storage import ObjectStorage

SERVICES = ("annotations", "ingest", "export", "inference")
MIGRATIONS = tuple(f"tessera.{service}.migrations" for service in SERVICES)
BUCKET = "tessera"
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Secrets:
    """Credentials made on the first start and kept (mode 0600) in the state directory."""

    postgres_password: str
    nats_token: str
    s3_access_key: str
    s3_secret_key: str
    admin_password: str
    admin_token: str

    @classmethod
    def load_or_create(cls, path: Path) -> Secrets:
        """Read the secrets of an existing state directory, or make new ones."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls(
            postgres_password=secrets.token_urlsafe(18),
            nats_token=secrets.token_urlsafe(18),
            s3_access_key="tessera",
            s3_secret_key=secrets.token_urlsafe(24),
            admin_password=secrets.token_urlsafe(12),
            admin_token="tsr_" + secrets.token_urlsafe(32),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(made), indent=2))
        return made


class Uvicorn(ChildProcess):
    """One ASGI app served by uvicorn in a process of its own."""

    start_timeout_s = READY_TIMEOUT_S

    def __init__(
        self, state_dir: Path, *, name: str, factory: str, port: int, env: dict[str, str]
    ) -> None:
        self.name = name
        super().__init__(state_dir)
        self.factory = factory
        self.port = port
        self.env = env

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> Sequence[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            self.factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            # Forwarded headers are read by the services themselves (trusted_proxies).
            "--no-proxy-headers",
            "--timeout-graceful-shutdown",
            "10",
        ]

    def popen_kwargs(self) -> dict[str, object]:
        return {"env": {**os.environ, **self.env}}

    def ready(self) -> bool:
        return http_ok(f"{self.url}/healthz")


def service_env(
    postgres: Postgres, nats: Nats, s3: S3, keys: Secrets, state_dir: Path
) -> dict[str, str]:
    """The environment that points every service at the embedded dependencies."""
    return {
        "TESSERA_ENV": "dev",
        "TESSERA_DATABASE_URL": postgres.url(),
        "TESSERA_NATS_URL": nats.url,
        "TESSERA_NATS_TOKEN": keys.nats_token,
        "TESSERA_S3_ENDPOINT_URL": s3.url,
        # a bucket of the embedded S3 can be a cloud storage (the README's worked example)
        "TESSERA_CLOUD_STORAGE_ALLOWED_ENDPOINTS": json.dumps([endpoint_of(s3.url)]),
        "TESSERA_S3_ACCESS_KEY": keys.s3_access_key,
        "TESSERA_S3_SECRET_KEY": keys.s3_secret_key,
        "TESSERA_S3_BUCKET": BUCKET,
        "TESSERA_S3_CREATE_BUCKET": "false",
        "TESSERA_MIGRATE_ON_START": "false",
        "TESSERA_BOOTSTRAP_ADMIN_PASSWORD": keys.admin_password,
        "TESSERA_BOOTSTRAP_ADMIN_TOKEN": keys.admin_token,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(state_dir / "numba-cache")),
    }


async def _create_bucket(s3: S3) -> None:
    storage = ObjectStorage(
        bucket=BUCKET,
        endpoint_url=s3.url,
        region="us-east-1",
        access_key=s3.access_key,
        secret_key=s3.secret_key,
    )
    await storage.start()
    try:
        await storage.ensure_bucket()
    finally:
        await storage.close()


class Fleet:
    """Every process of the local fleet, started in dependency order."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port
        self.keys = Secrets.load_or_create(self.state_dir / "secrets.json")
        self.started: list[ChildProcess] = []
        self.triton: Triton | None = None
        self.s3: S3 | None = None

    def _start(self, server: ChildProcess) -> None:
        self._spawn(server)
        server.wait_ready()

    def _spawn(self, server: ChildProcess) -> None:
        print(f"  starting {server.name}", flush=True)
        self.started.append(server)
        server.spawn()

    def start(self) -> None:
        """Start everything; raises (after stopping what started) if a piece fails."""
        logs = self.state_dir / "logs"
        try:
            triton = Triton(
                self.state_dir / "triton",
                http_port=free_port(),
                grpc_port=free_port(),
                metrics_port=free_port(),
            )
            self._spawn(triton)
            postgres = Postgres(
                self.state_dir / "postgres", port=free_port(), password=self.keys.postgres_password
            )
            self._start(postgres)
            postgres.ensure_database("tessera")
            nats = Nats(self.state_dir / "nats", port=free_port(), token=self.keys.nats_token)
            self._start(nats)
            s3 = S3(
                self.state_dir / "s3",
                port=free_port(),
                access_key=self.keys.s3_access_key,
                secret_key=self.keys.s3_secret_key,
            )
            self._start(s3)
            self.s3 = s3
            print("  migrating", flush=True)
            asyncio.run(migrate_packages(postgres.url(), MIGRATIONS))
            asyncio.run(_create_bucket(s3))
            print("  waiting for triton's models", flush=True)
            triton.wait_ready()
            self.triton = triton
            env = service_env(postgres, nats, s3, self.keys, self.state_dir)
            env["TESSERA_TRITON_URL"] = triton.url
            ports = {service: free_port() for service in SERVICES}
            env["TESSERA_ANNOTATIONS_URL"] = f"http://127.0.0.1:{ports['annotations']}"
            env["TESSERA_INGEST_URL"] = f"http://127.0.0.1:{ports['ingest']}"
            env["TESSERA_SCRATCH_DIR"] = str(self.state_dir / "scratch")
            upstreams = {}
            for service in SERVICES:
                process = Uvicorn(
                    logs,
                    name=service,
                    factory=f"tessera.{service}.app:create_app",
                    port=ports[service],
                    env=env,
                )
                self._start(process)
                upstreams[service] = process.url
            gateway = Uvicorn(
                logs,
                name="gateway",
                factory="tessera.gateway.app:create_app",
                port=self.port,
                env={"TESSERA_GATEWAY_UPSTREAMS": json.dumps(upstreams)},
            )
            self._start(gateway)
            self._wait_ready(gateway.url)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not http_ok(f"{url}/readyz"):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the fleet was not ready within {READY_TIMEOUT_S:.0f}s ({url}/readyz)"
                )
            time.sleep(0.2)

    def dead_child(self) -> ChildProcess | None:
        """A process that exited although nobody asked it to."""
        return next(
            (p for p in self.started if p.process is not None and p.process.poll() is not None),
            None,
        )

    def stop(self) -> None:
        """Stop in reverse order: gateway, services, then S3, NATS, PostgreSQL and Triton."""
        stop_all(self.started, on_error=lambda message: print(message, file=sys.stderr))
        self.started.clear()

    @property
    def env_file(self) -> Path:
        """The shell file of `write_env_file`."""
        return self.state_dir / "env.sh"

    def write_env_file(self) -> None:
        """Write `env.sh` (mode 0600: it holds the token and the S3 secret): the public URL
        and the admin's token for the `tessera` CLI, and the embedded S3 endpoint and keys
        as the AWS variables that S3 tools (and `tessera storages create`) read."""
        url = f"http://127.0.0.1:{self.port}"
        names = {"TESSERA_URL": url, "TESSERA_TOKEN": self.keys.admin_token}
        if self.s3:
            names |= {
                "AWS_ENDPOINT_URL": self.s3.url,
                "AWS_ACCESS_KEY_ID": self.keys.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": self.keys.s3_secret_key,
            }
        lines = [f"export {name}={shlex.quote(value)}" for name, value in names.items()]
        self.env_file.touch(mode=0o600)
        self.env_file.chmod(0o600)
        self.env_file.write_text("\n".join(lines) + "\n")

    def banner(self) -> str:
        """What a person needs to start using the fleet."""
        url = f"http://127.0.0.1:{self.port}"
        return "\n".join(
            [
                f"Tessera is running at {url}",
                f"  API docs  {url}/api/docs",
                f"  admin     admin / {self.keys.admin_password}",
                f"  token     {self.keys.admin_token}",
                f"  try       curl -H 'Authorization: Bearer {self.keys.admin_token}' "
                f"{url}/api/server/about",
                f"  triton    {self.triton.http_url} (gRPC {self.triton.url})"
                if self.triton
                else "  triton    not started",
                f"  s3        {self.s3.url}  (key {self.keys.s3_access_key}, secret "
                f"{self.keys.s3_secret_key}; make buckets of your own for cloud storages, "
                f"{BUCKET} is Tessera's)"
                if self.s3
                else "  s3        not started",
                f"  shell     source {self.env_file}  (TESSERA_URL, TESSERA_TOKEN and the S3 "
                "endpoint and keys as AWS_* variables, for the tessera CLI and S3 tools)",
                f"  state     {self.state_dir}  (logs in {self.state_dir / 'logs'})",
                "Press Ctrl-C to stop.",
            ]
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="tessera-run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("TESSERA_STATE_DIR", ".tessera"))
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("TESSERA_PORT", "8080")))
    args = parser.parse_args(argv)

    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    fleet = Fleet(args.state_dir, args.port)
    print(f"Starting Tessera (state in {fleet.state_dir})", flush=True)
    try:
        fleet.start()
    except Exception as exc:
        print(f"Tessera failed to start: {exc}", file=sys.stderr)
        return 1
    fleet.write_env_file()
    print(fleet.banner(), flush=True)
    exit_code = 0
    while not stopping:
        dead = fleet.dead_child()
        if dead is not None:
            print(f"{dead.name} exited unexpectedly:\n{log_tail(dead.log_path)}", file=sys.stderr)
            exit_code = 1
            break
        time.sleep(0.2)
    print("Stopping Tessera", flush=True)
    fleet.stop()
    print("Stopped.", flush=True)
    return exit_code
