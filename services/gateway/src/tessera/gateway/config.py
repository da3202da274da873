"""Settings of the gateway."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Environment: `TESSERA_GATEWAY_*`."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_GATEWAY_", extra="ignore")

    upstreams: dict[str, str] = {
        "annotations": "http://annotations:8000",
        "ingest": "http://ingest:8000",
        "export": "http://export:8000",
        "inference": "http://inference:8000",
    }
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 600.0
    schema_cache_s: float = 30.0
    # Peers whose X-Forwarded-* headers are believed (the cluster's ingress); none when
    # the gateway is the edge, as under `make run`. A JSON list of addresses and CIDRs.
    trusted_proxies: list[str] = []
    log_level: str = "INFO"
    log_json: bool = True
