"""Alembic migrations of the annotations schema (and of `iam`, which annotations owns)."""

from pathlib import Path

SCHEMA = "annotations"
LOCATION = Path(__file__).parent
