"""`tessera-migrate`: upgrade services' schemas (the Kubernetes migration Job runs this).

    tessera-migrate tessera.annotations.migrations tessera.ingest.migrations ...

Each argument names a migrations package exposing `SCHEMA` and `LOCATION`. The
database comes from `TESSERA_DATABASE_URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Sequence

from tessera.platform.db import migrate
from tessera.platform.settings import DatabaseSettings


async def migrate_packages(database_url: str, packages: Sequence[str]) -> None:
    """Upgrade the schema of each migrations package, in order."""
    for name in packages:
        package = importlib.import_module(name)
        await migrate(database_url, package.LOCATION, package.SCHEMA)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="tessera-migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "packages", nargs="+", help="migrations packages, e.g. tessera.annotations.migrations"
    )
    args = parser.parse_args(argv)
    settings = DatabaseSettings()
    asyncio.run(migrate_packages(settings.database_url.get_secret_value(), args.packages))
