"""Fixtures for every test: real PostgreSQL, NATS and S3 (see tessera.devstack.testing)."""

pytest_plugins = ["tessera.devstack.testing"]
