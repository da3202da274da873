"""Tessera inference service: models, auto-annotation, interactors and trackers."""

__version__ = "0.1.0"
