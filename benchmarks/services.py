"""The services a benchmark runs against, as the tests run them: PostgreSQL (fsync off),
NATS and S3, then the named services as uvicorn processes in order, each told the URLs
of those started before it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tessera.devstack.launcher import MIGRATIONS, Uvicorn
from tessera.devstack.servers import S3, ChildProcess, Nats, Postgres, free_port, stop_all
from tessera.platform.migrate import migrate_packages


@dataclass
class Started:
    """The services' processes by name, and the ingest share."""

    processes: dict[str, Uvicorn]
    share: Path


@contextmanager
def started_services(
    base: Path, names: Sequence[str], *, token: str, env: Mapping[str, str] | None = None
) -> Iterator[Started]:
    """Start the stack under `base` (the ingest share at base/share), the admin's token
    `token`, `env` added to every service's environment; stop it all afterwards."""
    servers: list[ChildProcess] = []
    try:
        postgres = Postgres(base / "pg", port=free_port(), password=uuid.uuid4().hex, durable=False)
        servers.append(postgres.start())
        nats = Nats(base / "nats", port=free_port(), token=uuid.uuid4().hex)
        servers.append(nats.start())
        s3 = S3(base / "s3", port=free_port(), access_key="bench", secret_key=uuid.uuid4().hex)
        servers.append(s3.start())
        postgres.ensure_database("tessera")
        asyncio.run(migrate_packages(postgres.url(), MIGRATIONS))
        share = base / "share"
        share.mkdir()
        environment = {
            "TESSERA_ENV": "dev", "TESSERA_LOG_LEVEL": "WARNING",
            "TESSERA_DATABASE_URL": postgres.url(), "TESSERA_NATS_URL": nats.url,
            "TESSERA_NATS_TOKEN": nats.token, "TESSERA_S3_ENDPOINT_URL": s3.url,
            "TESSERA_S3_ACCESS_KEY": s3.access_key, "TESSERA_S3_SECRET_KEY": s3.secret_key,
            "TESSERA_S3_CREATE_BUCKET": "true", "TESSERA_MIGRATE_ON_START": "false",
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD": uuid.uuid4().hex,
            "TESSERA_BOOTSTRAP_ADMIN_TOKEN": token,
            "TESSERA_SCRATCH_DIR": str(base / "scratch"),
            "TESSERA_SHARE_ROOT": str(share),
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(base / "numba")),
            **(env or {}),
        }  # fmt: skip
        processes = {}
        for name in names:
            process = Uvicorn(base / name, name=name, port=free_port(), env=environment,
                              factory=f"tessera.{name}.app:create_app")  # fmt: skip
            servers.append(process.start())
            processes[name] = process
            environment[f"TESSERA_{name.upper()}_URL"] = process.url
        yield Started(processes, share)
    finally:
        stop_all(servers)
