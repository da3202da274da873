"""Tessera ingest service: task media into frames, chunks, segments and jobs."""

__version__ = "0.1.0"
