"""Tessera export service: dataset export and import in every annotation format, as requests with progress."""

__version__ = "0.1.0"
