"""Alembic migrations of the export schema."""

from pathlib import Path

SCHEMA = "export"
LOCATION = Path(__file__).parent
