"""Tessera inference service: model registry, auto-annotation requests, interactors and trackers over Triton."""

__version__ = "0.1.0"
