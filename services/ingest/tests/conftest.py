"""Fixtures of the ingest tests: the annotations service on a socket and the fleet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.annotations.app import create_app as create_annotations
from tessera.devstack.testing import ADMIN_TOKEN, OpenService, serve_in_thread, settings_for
from tessera.ingest.testing import Fleet


@pytest.fixture
def annotations_url(service_settings: dict[str, Any]) -> Iterator[str]:
    """The annotations service on a real socket (ingest asks it over HTTP)."""
    with serve_in_thread(
        create_annotations(settings_for("annotations", **service_settings))
    ) as url:
        yield url


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    """Extra ingest settings for the `fleet` fixture (override in a test module)."""
    return {}


@pytest.fixture
async def fleet(
    open_service: OpenService,
    annotations_url: str,
    tmp_path: Path,
    ingest_overrides: dict[str, Any],
) -> AsyncIterator[Fleet]:
    """Ingest in-process (share at tmp_path/share, scratch at tmp_path/scratch) and an
    admin client of the annotations service."""
    (tmp_path / "share").mkdir(exist_ok=True)
    settings = {
        "annotations_url": annotations_url,
        "scratch_dir": tmp_path / "scratch",
        "share_root": tmp_path / "share",
        **ingest_overrides,
    }
    async with (
        open_service("ingest", **settings) as ingest,
        httpx.AsyncClient(
            base_url=annotations_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as annotations,
    ):
        yield Fleet(ingest, annotations)
