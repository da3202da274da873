"""Task creation: gathering files, building media, making jobs, as a background request."""

from tessera.ingest.creation.queue import CREATION
from tessera.ingest.creation.runner import CreationRunner

__all__ = ["CREATION", "CreationRunner"]
