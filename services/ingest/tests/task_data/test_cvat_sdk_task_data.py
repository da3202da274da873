"""Acceptance: cvat-sdk 2.80 makes tasks through the router, from local files and from an
S3 cloud storage.

The SDK sends small files with Upload-Multiple and files over 100 MiB with TUS, then
Upload-Finish, and polls `/api/requests/{rq_id}`; for a cloud storage it sends one data
request naming the bucket's keys. The frames and chunks it reads back at original
quality are the bytes it sent, and the jobs follow segment_size and overlap.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from cvat_sdk import Client, Config, models  # type: ignore[import-untyped]
from cvat_sdk.core.proxies.tasks import ResourceType  # type: ignore[import-untyped]
from PIL import Image

from tessera.annotations.app import create_app as create_annotations
from tessera.devstack.testing import ADMIN_TOKEN, Stack, serve_in_thread, settings_for
from tessera.gateway.app import create_app as create_gateway
from tessera.gateway.config import GatewaySettings
from tessera.ingest.app import create_app as create_ingest


@pytest.fixture
def router_url(service_settings: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """Annotations and ingest behind the router, each on its own socket; the router's URL."""
    with serve_in_thread(
        create_annotations(settings_for("annotations", **service_settings))
    ) as annotations:
        ingest_settings = settings_for(
            "ingest",
            **service_settings,
            annotations_url=annotations,
            scratch_dir=tmp_path / "scratch",
            remote_allowed_networks=("127.0.0.0/8",),  # the test bucket is on loopback
        )
        with serve_in_thread(create_ingest(ingest_settings)) as ingest:
            upstreams = {
                "annotations": annotations,
                "ingest": ingest,
                "export": annotations,
                "inference": annotations,
            }
            with serve_in_thread(create_gateway(GatewaySettings(upstreams=upstreams))) as url:
                yield url


def test_cvat_sdk_creates_a_task_from_local_files(router_url: str, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{router_url}/api/auth/api_tokens", json={"name": "sdk"}, headers=admin)
    paths = []
    for i in range(7):
        path = tmp_path / f"frame_{i:02d}.png"
        Image.new("RGB", (40, 30), (i * 30, 50, 90)).save(path)
        paths.append(path)
    config = Config(status_check_period=0.2)
    with Client(router_url, config=config, check_server_version=False) as sdk:
        sdk.api_client.set_default_header("Authorization", f"Bearer {token.json()['value']}")
        task = sdk.tasks.create_from_data(
            spec={"name": "from sdk", "labels": [{"name": "car"}], "segment_size": 4, "overlap": 1},
            resource_type=ResourceType.LOCAL,
            resources=[str(p) for p in paths],
            data_params={"image_quality": 80, "chunk_size": 3},
        )
        assert task.size == 7
        assert [f.name for f in task.get_meta().frames] == [p.name for p in paths]
        for i, path in enumerate(paths):
            assert task.get_frame(i, quality="original").read() == path.read_bytes()
        buffer = io.BytesIO()
        task.download_chunk(2, buffer, quality="original")
        with zipfile.ZipFile(buffer) as archive:
            assert [archive.read(n) for n in archive.namelist()] == [paths[6].read_bytes()]
        ranges = sorted((j.start_frame, j.stop_frame) for j in task.get_jobs())
        assert ranges == [(0, 3), (3, 6)]


def test_cvat_sdk_creates_a_task_from_an_s3_cloud_storage(router_url: str, stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{router_url}/api/auth/api_tokens", json={"name": "sdk"}, headers=admin)
    s3 = boto3.client(
        "s3", endpoint_url=stack.s3.url, region_name="us-east-1",
        aws_access_key_id=stack.s3.access_key, aws_secret_access_key=stack.s3.secret_key,
    )  # fmt: skip
    s3.create_bucket(Bucket="sdk-acceptance")
    images = {}
    for i in range(6):
        buffer = io.BytesIO()
        Image.new("RGB", (48, 36), (i * 40, 80, 20)).save(buffer, format="PNG")
        images[f"scenes/{i:03d}.png"] = buffer.getvalue()
        s3.put_object(
            Bucket="sdk-acceptance", Key=f"scenes/{i:03d}.png", Body=images[f"scenes/{i:03d}.png"]
        )
    config = Config(status_check_period=0.2)
    with Client(router_url, config=config, check_server_version=False) as sdk:
        sdk.api_client.set_default_header("Authorization", f"Bearer {token.json()['value']}")
        storage, _ = sdk.api_client.cloudstorages_api.create(
            models.CloudStorageWriteRequest(
                provider_type=models.ProviderTypeEnum("AWS_S3_BUCKET"),
                resource="sdk-acceptance",
                display_name="acceptance bucket",
                credentials_type=models.CredentialsTypeEnum("KEY_SECRET_KEY_PAIR"),
                key=stack.s3.access_key,
                secret_key=stack.s3.secret_key,
                specific_attributes=f"endpoint_url={stack.s3.url}&region=us-east-1",
            )
        )
        task = sdk.tasks.create_from_data(
            spec={"name": "from s3", "labels": [{"name": "car"}], "segment_size": 4, "overlap": 2},
            resource_type=ResourceType.SHARE,
            resources=["scenes/"],
            data_params={"image_quality": 75, "chunk_size": 4, "cloud_storage_id": storage.id},
        )
        assert task.size == 6
        assert [f.name for f in task.get_meta().frames] == list(images)
        for i, data in enumerate(images.values()):
            assert task.get_frame(i, quality="original").read() == data
        buffer = io.BytesIO()
        task.download_chunk(1, buffer, quality="original")
        with zipfile.ZipFile(buffer) as archive:
            assert [archive.read(n) for n in archive.namelist()] == list(images.values())[4:]
        ranges = sorted((j.start_frame, j.stop_frame) for j in task.get_jobs())
        assert ranges == [(0, 3), (2, 5)]
