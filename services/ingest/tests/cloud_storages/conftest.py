"""Fixtures of the cloud storage tests: a customer's bucket on the test S3 (rclone), and an
S3 server that enforces IAM policies (moto) for the permission tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest

from tessera.devstack.servers import free_port
from tessera.devstack.testing import Stack
from tessera.ingest.testing import png_bytes


@dataclass
class Bucket:
    """A bucket with a sync client to fill it, and the body that adds it as a storage."""

    name: str
    endpoint_url: str
    key: str
    secret_key: str
    client: Any

    def put(self, key: str, data: bytes) -> None:
        """Write one object."""
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def storage_body(self, **fields: Any) -> dict[str, Any]:
        """`POST /api/cloudstorages` for this bucket with its keys."""
        return {
            "provider_type": "AWS_S3_BUCKET",
            "resource": self.name,
            "display_name": "customer data",
            "credentials_type": "KEY_SECRET_KEY_PAIR",
            "key": self.key,
            "secret_key": self.secret_key,
            "specific_attributes": f"endpoint_url={self.endpoint_url}&region=us-east-1",
            **fields,
        }


def _client(endpoint_url: str, key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret_key,
    )  # fmt: skip


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    """Test buckets live on 127.0.0.1, which cloud storages may reach only when allowed."""
    return {"remote_allowed_networks": ("127.0.0.0/8",)}


@pytest.fixture
def customer_bucket(stack: Stack) -> Bucket:
    """A new bucket on the session's S3 server, as a customer's bucket."""
    name = f"customer-{uuid.uuid4().hex[:12]}"
    client = _client(stack.s3.url, stack.s3.access_key, stack.s3.secret_key)
    client.create_bucket(Bucket=name)
    return Bucket(name, stack.s3.url, stack.s3.access_key, stack.s3.secret_key, client)


POLICIES = {
    "list-only": ["s3:ListBucket"],
    "get-only": ["s3:GetObject"],
    "list-and-get": ["s3:ListBucket", "s3:GetObject"],
}


@dataclass
class PolicyServer:
    """An S3 server that checks IAM policies: bucket `guarded` holds set/0.png..set/2.png,
    and one user per entry of POLICIES is allowed exactly those actions."""

    endpoint_url: str
    users: dict[str, tuple[str, str]]

    def storage_body(self, user: str) -> dict[str, Any]:
        """`POST /api/cloudstorages` for bucket `guarded` with that user's keys."""
        key, secret = self.users[user]
        return {
            "provider_type": "AWS_S3_BUCKET",
            "resource": "guarded",
            "display_name": f"guarded as {user}",
            "credentials_type": "KEY_SECRET_KEY_PAIR",
            "key": key,
            "secret_key": secret,
            "specific_attributes": f"endpoint_url={self.endpoint_url}",
        }


@pytest.fixture(scope="session")
def policy_server() -> Iterator[PolicyServer]:
    """moto's S3 and IAM on 127.0.0.1, enforcing policies once it is set up."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (imported only when needed)

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        root = _client(url, "AKIAROOTROOTROOT", "root-secret")
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="AKIAROOTROOTROOT", aws_secret_access_key="root-secret",
        )  # fmt: skip
        setup_requests = 1 + 3 + 3 * len(POLICIES)
        # The first requests go unchecked (the set-up below); every later one must be
        # signed by an IAM user whose policy allows its action.
        httpx.post(f"{url}/moto-api/reset-auth", content=str(setup_requests).encode())
        root.create_bucket(Bucket="guarded")
        for i in range(3):
            root.put_object(Bucket="guarded", Key=f"set/{i}.png", Body=png_bytes(i))
        users = {}
        for name, actions in POLICIES.items():
            iam.create_user(UserName=name)
            document = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
            keys = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = (keys["AccessKeyId"], keys["SecretAccessKey"])
        yield PolicyServer(url, users)
    finally:
        httpx.post(f"{url}/moto-api/reset-auth", content=b"inf")
        server.stop()
