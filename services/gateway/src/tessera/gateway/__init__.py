"""Tessera gateway: one base URL that sends each /api path to the service that owns it."""

__version__ = "0.1.0"
