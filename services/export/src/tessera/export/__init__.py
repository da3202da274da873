"""Tessera export service: dataset export and import in every annotation format."""

__version__ = "0.1.0"
