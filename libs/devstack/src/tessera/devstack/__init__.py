"""Embedded PostgreSQL, NATS JetStream and S3 on loopback: `make run` and the test suite."""
