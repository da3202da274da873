"""Tessera ingest service: task media: uploads, cloud storage, remote URLs, shares, frames, chunks and segments."""

__version__ = "0.1.0"
