"""Alembic migrations of the inference schema."""

from pathlib import Path

SCHEMA = "inference"
LOCATION = Path(__file__).parent
