"""Egress checks: internal addresses refused unless their network or endpoint is allowed."""

from __future__ import annotations

import pytest

from tessera.platform.egress import EgressRefused, check_public_url, endpoint_of


def test_endpoint_of_spells_out_the_port() -> None:
    assert endpoint_of("http://127.0.0.1:9000/bucket") == "127.0.0.1:9000"
    assert endpoint_of("http://minio.local") == "minio.local:80"
    assert endpoint_of("https://s3.example.com/x") == "s3.example.com:443"


async def test_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(EgressRefused, match=r"internal address 127\.0\.0\.1"):
        await check_public_url("http://127.0.0.1:9000", ())
    await check_public_url("http://127.0.0.1:9000", ("127.0.0.0/8",))


async def test_an_allowed_endpoint_allows_that_port_only() -> None:
    await check_public_url("http://127.0.0.1:9000/b", (), ("127.0.0.1:9000",))
    with pytest.raises(EgressRefused):
        await check_public_url("http://127.0.0.1:5432", (), ("127.0.0.1:9000",))
    with pytest.raises(EgressRefused, match="only http and https"):
        await check_public_url("ftp://127.0.0.1:9000", (), ("127.0.0.1:9000",))
