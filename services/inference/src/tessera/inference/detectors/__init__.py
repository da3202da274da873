"""Detector functions: the code around a detection model (pre- and post-processing)."""
